// matmul.wgsl: the tiled GEMM behind every dense product of the step (src/gpu/matmul.rs).
//
//   C[M, N] = op(A)[M, K] · op(B)[K, N]  (+ bias[N] when bias_off != NONE)  (+ C when acc = 1)
//
// with A(i, k) = bufA[a_off + i·a_rs + k·a_cs], B(k, j) = bufB[b_off + k·b_rs + j·b_cs] and
// C(i, j) = bufC[c_off + i·c_rs + j]: a transposed operand is the same matrix with its strides
// swapped, as in src/cpu/gemm.rs (`Mat::t()`). Which buffer A, B and C live in is an override
// constant, fixed when the pipeline is built (0 params, 1 grads, 2 work); bias is in params.
//
// Each workgroup computes a 32 x 128 tile of C with 64 invocations; invocation x owns columns
// x and x + 64 for all 32 rows (64 outputs, as sixteen vec4 running sums over row quads). K is
// walked in chunks of 16: the A panel [32 rows x 16 k] is staged in workgroup memory, where
// every invocation reads the same element at the same time (a broadcast), and each B element
// is loaded once, by the invocation that owns its column, and reused for 32 rows from
// registers. (Per-invocation loads are what a software rasteriser such as lavapipe pays most
// for, and what a GPU's memory system likes least; 32 FMAs per loaded B element keep both low.) Rows, columns and k past the matrix edges are zero-padded or skipped, so M, N and
// K need not be multiples of the tile.

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

const BM: u32 = 32u;
const BN: u32 = 128u;
const BK: u32 = 16u;

// a_tile[kk·8 + q] = A(row0 + 4q .. row0 + 4q + 3, k0 + kk).
var<workgroup> a_tile: array<vec4<f32>, 128>;

fn load(buf: u32, i: u32) -> f32 {
    if (buf == 0u) {
        return params[i];
    } else if (buf == 1u) {
        return grads[i];
    }
    return work[i];
}

fn load_a(i: u32, k: u32) -> f32 {
    if (i < p.m && k < p.k) {
        return load(A_BUF, p.a_off + i * p.a_rs + k * p.a_cs);
    }
    return 0.0;
}

fn load_b(k: u32, j: u32) -> f32 {
    if (j < p.n) {
        return load(B_BUF, p.b_off + k * p.b_rs + j * p.b_cs);
    }
    return 0.0;
}

// C(i, j) = v (+ C(i, j) when acc) (+ bias[j]), inside the matrix only.
fn store(i: u32, j: u32, v: f32) {
    if (i >= p.m || j >= p.n) {
        return;
    }
    let at = p.c_off + i * p.c_rs + j;
    var x = v;
    if (p.bias_off != NONE) {
        x += params[p.bias_off + j];
    }
    if (C_BUF == 1u) {
        if (p.acc == 1u) {
            x += grads[at];
        }
        grads[at] = x;
    } else {
        if (p.acc == 1u) {
            x += work[at];
        }
        work[at] = x;
    }
}

fn store4(i: u32, j: u32, v: vec4<f32>) {
    store(i, j, v.x);
    store(i + 1u, j, v.y);
    store(i + 2u, j, v.z);
    store(i + 3u, j, v.w);
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let row0 = wg.y * BM;
    let j0 = wg.x * BN + li;
    let j1 = j0 + 64u;
    // c<col><quad>: column j0 or j1, rows row0 + 4·quad .. + 3.
    var c00 = vec4<f32>(0.0);
    var c01 = vec4<f32>(0.0);
    var c02 = vec4<f32>(0.0);
    var c03 = vec4<f32>(0.0);
    var c04 = vec4<f32>(0.0);
    var c05 = vec4<f32>(0.0);
    var c06 = vec4<f32>(0.0);
    var c07 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0);
    var c11 = vec4<f32>(0.0);
    var c12 = vec4<f32>(0.0);
    var c13 = vec4<f32>(0.0);
    var c14 = vec4<f32>(0.0);
    var c15 = vec4<f32>(0.0);
    var c16 = vec4<f32>(0.0);
    var c17 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // Stage the A panel: 128 vec4s, two per invocation, walking the stride-1 side of A.
        for (var h = 0u; h < 2u; h++) {
            let l = li + 64u * h;
            var kk: u32;
            var q: u32;
            if (p.a_cs == 1u) {
                kk = l % BK;
                q = l / BK;
            } else {
                kk = l / 8u;
                q = l % 8u;
            }
            let i = row0 + 4u * q;
            let k = k0 + kk;
            a_tile[kk * 8u + q] = vec4<f32>(load_a(i, k), load_a(i + 1u, k), load_a(i + 2u, k), load_a(i + 3u, k));
        }
        workgroupBarrier();
        let kend = min(BK, p.k - k0);
        for (var t = 0u; t < kend; t++) {
            let b0 = vec4<f32>(load_b(k0 + t, j0));
            let b1 = vec4<f32>(load_b(k0 + t, j1));
            let a0 = a_tile[t * 8u + 0u];
            let a1 = a_tile[t * 8u + 1u];
            let a2 = a_tile[t * 8u + 2u];
            let a3 = a_tile[t * 8u + 3u];
            let a4 = a_tile[t * 8u + 4u];
            let a5 = a_tile[t * 8u + 5u];
            let a6 = a_tile[t * 8u + 6u];
            let a7 = a_tile[t * 8u + 7u];
            c00 = fma(a0, b0, c00);
            c01 = fma(a1, b0, c01);
            c02 = fma(a2, b0, c02);
            c03 = fma(a3, b0, c03);
            c04 = fma(a4, b0, c04);
            c05 = fma(a5, b0, c05);
            c06 = fma(a6, b0, c06);
            c07 = fma(a7, b0, c07);
            c10 = fma(a0, b1, c10);
            c11 = fma(a1, b1, c11);
            c12 = fma(a2, b1, c12);
            c13 = fma(a3, b1, c13);
            c14 = fma(a4, b1, c14);
            c15 = fma(a5, b1, c15);
            c16 = fma(a6, b1, c16);
            c17 = fma(a7, b1, c17);
        }
        workgroupBarrier();
    }
    store4(row0 + 0u, j0, c00);
    store4(row0 + 4u, j0, c01);
    store4(row0 + 8u, j0, c02);
    store4(row0 + 12u, j0, c03);
    store4(row0 + 16u, j0, c04);
    store4(row0 + 20u, j0, c05);
    store4(row0 + 24u, j0, c06);
    store4(row0 + 28u, j0, c07);
    store4(row0 + 0u, j1, c10);
    store4(row0 + 4u, j1, c11);
    store4(row0 + 8u, j1, c12);
    store4(row0 + 12u, j1, c13);
    store4(row0 + 16u, j1, c14);
    store4(row0 + 20u, j1, c15);
    store4(row0 + 24u, j1, c16);
    store4(row0 + 28u, j1, c17);
}
