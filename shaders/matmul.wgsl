// matmul.wgsl: the tiled GEMM behind every dense product of the step (src/gpu/matmul.rs).
//
//   C[M, N] = op(A)[M, K] · op(B)[K, N]  (+ C when acc = 1)  (+ bias[N] when bias_off != NONE)
//
// with A(i, k) = bufA[a_off + i·a_rs + k·a_cs], B(k, j) = bufB[b_off + k·b_rs + j·b_cs] and
// C(i, j) = bufC[c_off + i·c_rs + j]: a transposed operand is the same matrix with its strides
// swapped, as in src/cpu/gemm.rs (`Mat::t()`). Which buffer A, B and C live in is an override
// constant, fixed when the pipeline is built (0 params, 1 grads, 2 work); bias is in params.
//
// Each workgroup computes a 64 x 64 tile of C with 16 x 16 invocations, each owning a 4 x 4 block
// of outputs (rows ty + 16·a, columns tx + 16·b). K is walked in chunks of 16: the A and B
// chunks are staged in workgroup memory, zero-padded past the matrix edges, so M, N and K need
// not be multiples of the tile.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    c_rs: u32,
    bias_off: u32,
    acc: u32,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;

override A_BUF: u32 = 2u;
override B_BUF: u32 = 0u;
override C_BUF: u32 = 2u;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [BK][BM]
var<workgroup> b_tile: array<f32, 1024>; // [BK][BN]

fn load(buf: u32, i: u32) -> f32 {
    if (buf == 0u) {
        return params[i];
    } else if (buf == 1u) {
        return grads[i];
    }
    return work[i];
}

fn load_c(i: u32) -> f32 {
    if (C_BUF == 1u) {
        return grads[i];
    }
    return work[i];
}

fn store_c(i: u32, v: f32) {
    if (C_BUF == 1u) {
        grads[i] = v;
    } else {
        work[i] = v;
    }
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // Stage A[row0.., k0..] and B[k0.., col0..]: 1024 values each, 4 per invocation. The walk
        // order follows whichever stride is 1, so neighbouring invocations read neighbouring words.
        for (var q = 0u; q < 4u; q++) {
            let l = li + 256u * q;
            var i: u32;
            var ka: u32;
            if (p.a_cs == 1u) {
                ka = l % BK;
                i = l / BK;
            } else {
                i = l % BM;
                ka = l / BM;
            }
            var av = 0.0;
            if (row0 + i < p.m && k0 + ka < p.k) {
                av = load(A_BUF, p.a_off + (row0 + i) * p.a_rs + (k0 + ka) * p.a_cs);
            }
            a_tile[ka * BM + i] = av;
            var j: u32;
            var kb: u32;
            if (p.b_cs == 1u) {
                j = l % BN;
                kb = l / BN;
            } else {
                kb = l % BK;
                j = l / BK;
            }
            var bv = 0.0;
            if (k0 + kb < p.k && col0 + j < p.n) {
                bv = load(B_BUF, p.b_off + (k0 + kb) * p.b_rs + (col0 + j) * p.b_cs);
            }
            b_tile[kb * BN + j] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var x = 0u; x < 4u; x++) {
                a[x] = a_tile[kk * BM + lid.y + 16u * x];
                b[x] = b_tile[kk * BN + lid.x + 16u * x];
            }
            for (var x = 0u; x < 4u; x++) {
                for (var y = 0u; y < 4u; y++) {
                    acc[x][y] = fma(a[x], b[y], acc[x][y]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var x = 0u; x < 4u; x++) {
        let i = row0 + lid.y + 16u * x;
        for (var y = 0u; y < 4u; y++) {
            let j = col0 + lid.x + 16u * y;
            if (i < p.m && j < p.n) {
                let at = p.c_off + i * p.c_rs + j;
                var v = acc[x][y];
                if (p.acc == 1u) {
                    v += load_c(at);
                }
                if (p.bias_off != NONE) {
                    v += params[p.bias_off + j];
                }
                store_c(at, v);
            }
        }
    }
}
