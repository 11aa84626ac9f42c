// matmul.wgsl: the tiled GEMM behind every dense product of the step (src/gpu/matmul.rs).
//
//   C[M, N] = op(A)[M, K] · op(B)[K, N]  (+ bias[N] when bias_off != NONE)  (+ C when acc = 1)
//
// with A(i, k) = bufA[a_off + i·a_rs + k·a_cs], B(k, j) = bufB[b_off + k·b_rs + j·b_cs] and
// C(i, j) = bufC[c_off + i·c_rs + j]: a transposed operand is the same matrix with its strides
// swapped, as in src/cpu/gemm.rs (`Mat::t()`). Which buffer A, B and C live in is an override
// constant, fixed when the pipeline is built (0 params, 1 grads, 2 work); bias is in params.
//
// Each workgroup computes a 64 x 64 tile of C with 8 x 8 invocations; each invocation owns an
// 8 x 8 block of it (rows 8·ty .., columns 8·tx ..), sixty-four running sums held as sixteen
// vec4s. K is walked in chunks of 16: both panels, A [64 rows x 16 k] and B [16 k x 64 columns],
// are staged in workgroup memory as vec4s, so each step of k costs an invocation four vec4
// reads (two of A, two of B) for 64 multiply-adds. Past the matrix edges the panels are
// zero-padded and the stores skipped, so M, N and K need not be multiples of the tile.
//
// Split K. A GEMM with few tiles and a long K (the weight gradients: K = T·B = 1024 rows) would
// leave most of a large GPU idle while each invocation walks all of K. With k_chunk > 0 the
// grid's z dimension splits K: workgroup z multiplies the slice k ∈ [z·k_chunk, (z+1)·k_chunk)
// and stores its raw partial product (no bias, no accumulation) at C + z·split_stride, a
// scratch region in work; then `sum_split` adds the S partials of each element in order of z
// and stores the sum (+ bias, + C) into the real C.

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
    k_chunk: u32,      // 0: K whole; else the slice of K per z (main, split)
    split_stride: u32, // words between partial products (main, split)
    batch: u32,        // 0: one product; else the products in `probs`, one per group of z
    // Batched products share M, K, A's strides and buffers; each has its own A, B and C and N,
    // with B and C row-major (N columns): (a_off, b_off, c_off, n).
    probs: array<vec4<u32>, 12>,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;

override A_BUF: u32 = 2u;
override B_BUF: u32 = 0u;
override C_BUF: u32 = 2u;

const TM: u32 = 64u;
const TN: u32 = 64u;
const BK: u32 = 16u;

// a_tile[kk·16 + q] = A(row0 + 4q .. row0 + 4q + 3, k0 + kk);
// b_tile[kk·16 + q] = B(k0 + kk, col0 + 4q .. col0 + 4q + 3).
var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

fn load(buf: u32, i: u32) -> f32 {
    if (buf == 0u) {
        return params[i];
    } else if (buf == 1u) {
        return grads[i];
    }
    return work[i];
}

// This invocation's slice of K: k ∈ [k_base, k_base + k_len), and where its C lives; the
// product's A and B offsets, N, and B's and C's row strides (a batched product's own).
var<private> k_base: u32;
var<private> k_len: u32;
var<private> c_base: u32;
var<private> a_at: u32;
var<private> b_at: u32;
var<private> ncols: u32;
var<private> b_rows: u32;
var<private> c_rows: u32;

// The slices K is split into (1: not split).
fn slices() -> u32 {
    if (p.k_chunk == 0u) {
        return 1u;
    }
    return (p.k + p.k_chunk - 1u) / p.k_chunk;
}

// Sets the product's operands: product `prob` of a batch, or the one product.
fn use_product(prob: u32) {
    a_at = p.a_off;
    b_at = p.b_off;
    ncols = p.n;
    b_rows = p.b_rs;
    c_rows = p.c_rs;
    if (p.batch != 0u) {
        let q = p.probs[prob];
        a_at = q.x;
        b_at = q.y;
        ncols = q.w;
        b_rows = q.w;
        c_rows = q.w;
    }
}

fn load_a(i: u32, k: u32) -> f32 {
    if (i < p.m && k < k_len) {
        return load(A_BUF, a_at + i * p.a_rs + (k_base + k) * p.a_cs);
    }
    return 0.0;
}

fn load_b(k: u32, j: u32) -> f32 {
    if (k < k_len && j < ncols) {
        return load(B_BUF, b_at + (k_base + k) * b_rows + j * p.b_cs);
    }
    return 0.0;
}

// C(i, j) = v (+ bias[j]) (+ C(i, j) when acc), inside the matrix only.
fn store(i: u32, j: u32, v: f32) {
    if (i >= p.m || j >= ncols) {
        return;
    }
    let at = c_base + i * c_rows + j;
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

// Row i, columns j .. j+3.
fn store4(i: u32, j: u32, v: vec4<f32>) {
    store(i, j, v.x);
    store(i, j + 1u, v.y);
    store(i, j + 2u, v.z);
    store(i, j + 3u, v.w);
}

@compute @workgroup_size(8, 8)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    // Grid z: product wg.z / S, slice of K wg.z % S (S = 1 when K is whole).
    let prob = wg.z / slices();
    let slice = wg.z % slices();
    use_product(prob);
    k_base = 0u;
    k_len = p.k;
    c_base = p.c_off;
    if (p.batch != 0u) {
        c_base = p.probs[prob].z;
    }
    if (p.k_chunk != 0u) {
        k_base = slice * p.k_chunk;
        k_len = min(p.k_chunk, p.k - min(k_base, p.k));
        c_base = p.c_off + wg.z * p.split_stride;
    }
    // c<r><h>: row 8·ty + r, columns 8·tx + 4h .. + 3.
    var c00 = vec4<f32>(0.0);
    var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0);
    var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0);
    var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0);
    var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0);
    var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0);
    var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0);
    var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0);
    var c71 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < k_len; k0 += BK) {
        // Stage both panels, four vec4s each per invocation, walking each operand's stride-1
        // side across neighbouring invocations.
        for (var h = 0u; h < 4u; h++) {
            let v = li + 64u * h;
            var ka = v / 16u;
            var qa = v % 16u;
            if (p.a_cs == 1u) {
                ka = v % 16u;
                qa = v / 16u;
            }
            let i = row0 + 4u * qa;
            let k = k0 + ka;
            a_tile[ka * 16u + qa] = vec4<f32>(load_a(i, k), load_a(i + 1u, k), load_a(i + 2u, k), load_a(i + 3u, k));
            var kb = v / 16u;
            var qb = v % 16u;
            if (p.b_cs != 1u) {
                kb = v % 16u;
                qb = v / 16u;
            }
            let j = col0 + 4u * qb;
            let kx = k0 + kb;
            b_tile[kb * 16u + qb] = vec4<f32>(load_b(kx, j), load_b(kx, j + 1u), load_b(kx, j + 2u), load_b(kx, j + 3u));
        }
        workgroupBarrier();
        let kend = min(BK, k_len - k0);
        for (var t = 0u; t < kend; t++) {
            let a0 = a_tile[t * 16u + 2u * lid.y];
            let a1 = a_tile[t * 16u + 2u * lid.y + 1u];
            let b0 = b_tile[t * 16u + 2u * lid.x];
            let b1 = b_tile[t * 16u + 2u * lid.x + 1u];
            c00 = fma(vec4<f32>(a0.x), b0, c00);
            c01 = fma(vec4<f32>(a0.x), b1, c01);
            c10 = fma(vec4<f32>(a0.y), b0, c10);
            c11 = fma(vec4<f32>(a0.y), b1, c11);
            c20 = fma(vec4<f32>(a0.z), b0, c20);
            c21 = fma(vec4<f32>(a0.z), b1, c21);
            c30 = fma(vec4<f32>(a0.w), b0, c30);
            c31 = fma(vec4<f32>(a0.w), b1, c31);
            c40 = fma(vec4<f32>(a1.x), b0, c40);
            c41 = fma(vec4<f32>(a1.x), b1, c41);
            c50 = fma(vec4<f32>(a1.y), b0, c50);
            c51 = fma(vec4<f32>(a1.y), b1, c51);
            c60 = fma(vec4<f32>(a1.z), b0, c60);
            c61 = fma(vec4<f32>(a1.z), b1, c61);
            c70 = fma(vec4<f32>(a1.w), b0, c70);
            c71 = fma(vec4<f32>(a1.w), b1, c71);
        }
        workgroupBarrier();
    }
    let i0 = row0 + 8u * lid.y;
    let j0 = col0 + 8u * lid.x;
    store4(i0 + 0u, j0, c00);
    store4(i0 + 0u, j0 + 4u, c01);
    store4(i0 + 1u, j0, c10);
    store4(i0 + 1u, j0 + 4u, c11);
    store4(i0 + 2u, j0, c20);
    store4(i0 + 2u, j0 + 4u, c21);
    store4(i0 + 3u, j0, c30);
    store4(i0 + 3u, j0 + 4u, c31);
    store4(i0 + 4u, j0, c40);
    store4(i0 + 4u, j0 + 4u, c41);
    store4(i0 + 5u, j0, c50);
    store4(i0 + 5u, j0 + 4u, c51);
    store4(i0 + 6u, j0, c60);
    store4(i0 + 6u, j0 + 4u, c61);
    store4(i0 + 7u, j0, c70);
    store4(i0 + 7u, j0 + 4u, c71);
}

// The second half of a split-K GEMM: C(i, j) = Σ_z partial_z(i, j) (+ bias[j]) (+ C(i, j)),
// partial_z at work[a_off + z·split_stride + i·n + j] for z < k_chunk (here: the number of
// slices S), summed in order of z. One element per invocation, rows of 256 elements; grid z:
// the product of a batch (whose partials follow the previous product's S).
@compute @workgroup_size(256)
fn sum_split(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    use_product(gid.z);
    let e = gid.x + gid.y * nwg.x * 256u;
    if (e >= p.m * ncols) {
        return;
    }
    let i = e / ncols;
    let j = e % ncols;
    let first = p.a_off + gid.z * p.k_chunk * p.split_stride;
    var s = 0.0;
    for (var z = 0u; z < p.k_chunk; z++) {
        s += work[first + z * p.split_stride + e];
    }
    c_base = p.c_off;
    if (p.batch != 0u) {
        c_base = p.probs[gid.z].z;
    }
    store(i, j, s);
}
