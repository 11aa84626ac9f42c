// embed.wgsl: the embedding and dense helpers around the GEMMs (src/gpu/embed.rs): the
// per-symbol gather of layer 0's input projection and its scatter-add in the backward pass,
// bias gradients (column sums), a transpose, and a copy.
//
// One parameter block serves all entry points; each names the fields it reads.

struct HelperParams {
    rows: u32,
    cols: u32,
    src_off: u32,
    dst_off: u32,
    bias_off: u32, // params offset of a [cols] bias, or NONE
    ids_off: u32,  // ids offset of the row -> symbol map (gather) or the row lists (scatter)
    csr_off: u32,  // ids offset of the [V+1] row-list starts (scatter)
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: HelperParams;

// Layer 0's input projection, gathered (src/cpu/network.rs `layer_forward`, l == 0):
//   Z[r, :] = P[x_r, :] + b           P = embedding · W_ih0, [V, 4H], in work
// rows = T·B, cols = 4H; src = P, dst = Z (work), ids_off = x (time-major).
@compute @workgroup_size(64, 4)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let r = gid.y;
    if (c >= p.cols || r >= p.rows) {
        return;
    }
    var v = work[p.src_off + ids[p.ids_off + r] * p.cols + c];
    if (p.bias_off != NONE) {
        v += params[p.bias_off + c];
    }
    work[p.dst_off + r * p.cols + c] = v;
}

// Its backward, a scatter-add by symbol (src/cpu/network.rs `layer_backward`, l == 0):
//   G[v, :] = Σ_{r : x_r = v} dZ[r, :]        rows ascending, like the CPU's loop
// rows = V, cols = 4H; the rows of symbol v are ids[ids_off + csr[v] .. ids_off + csr[v+1]],
// csr = ids[csr_off ..]. One invocation per (v, column): no atomics, a fixed order.
@compute @workgroup_size(64, 4)
fn scatter_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let v = gid.y;
    if (c >= p.cols || v >= p.rows) {
        return;
    }
    let start = ids[p.csr_off + v];
    let end = ids[p.csr_off + v + 1u];
    var sum = 0.0;
    for (var q = start; q < end; q++) {
        sum += work[p.src_off + ids[p.ids_off + q] * p.cols + c];
    }
    work[p.dst_off + v * p.cols + c] = sum;
}

// Bias gradient: db[c] = Σ_r dZ[r, c] (src/cpu/gemm.rs `col_sums`), rows in order.
// src in work [rows, cols], dst in grads [cols].
@compute @workgroup_size(64)
fn col_sums(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.cols) {
        return;
    }
    var sum = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        sum += work[p.src_off + r * p.cols + c];
    }
    grads[p.dst_off + c] = sum;
}

// dst[c, r] = src[r, c]: src in params [rows, cols], dst in work [cols, rows] (W_hhᵀ for the
// backward step). 16 x 16 tiles through workgroup memory so both sides move in order.
var<workgroup> ttile: array<f32, 272>; // 16 x 17: the padding column avoids bank conflicts

@compute @workgroup_size(16, 16)
fn transpose(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let r = wg.y * 16u + lid.y;
    let c = wg.x * 16u + lid.x;
    if (r < p.rows && c < p.cols) {
        ttile[lid.y * 17u + lid.x] = params[p.src_off + r * p.cols + c];
    }
    workgroupBarrier();
    let r2 = wg.y * 16u + lid.x;
    let c2 = wg.x * 16u + lid.y;
    if (r2 < p.rows && c2 < p.cols) {
        work[p.dst_off + c2 * p.rows + r2] = ttile[lid.x * 17u + lid.y];
    }
}

// work[dst + i] = work[src + i] for i < rows·cols (carrying the final (h, c) to the next window).
@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.cols;
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < n) {
        work[p.dst_off + i] = work[p.src_off + i];
    }
}
