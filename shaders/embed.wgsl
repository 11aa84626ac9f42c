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
    // col_sums and copy work on a list of regions, one per grid z: (src, dst, cols, 0) for
    // col_sums, (src, dst, 0, 0) for copy; so one dispatch serves every layer.
    list: array<vec4<u32>, 14>,
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

// Bias gradient: db[c] = Σ_r dZ[r, c] (src/cpu/gemm.rs `col_sums`), for each region
// (src, dst, cols) of the list: src in work [rows, cols], dst in grads [cols].
//
// A workgroup takes 16 columns with 16 invocations each: invocation (x, y) sums rows y, y + 16,
// y + 32, .. of column 16·wg.x + x (neighbouring x read neighbouring words), then a 4-level tree
// over y adds the 16 partial sums. So no invocation walks more than ceil(rows/16) + 4 additions
// (the reference step's 1024 rows: 68, instead of 1024 in one invocation). The order is fixed:
// the result does not depend on timing, but differs from the CPU's row-order sum by rounding.
const CS_SLICES: u32 = 16u;
var<workgroup> csum: array<f32, 256>; // [y][x]

@compute @workgroup_size(16, 16)
fn col_sums(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let item = p.list[wg.z];
    let cols = item.z;
    let c = wg.x * 16u + lid.x;
    var sum = 0.0;
    if (c < cols) {
        for (var r = lid.y; r < p.rows; r += CS_SLICES) {
            sum += work[item.x + r * cols + c];
        }
    }
    csum[lid.y * 16u + lid.x] = sum;
    workgroupBarrier();
    for (var s = CS_SLICES / 2u; s > 0u; s >>= 1u) {
        if (lid.y < s) {
            csum[lid.y * 16u + lid.x] += csum[(lid.y + s) * 16u + lid.x];
        }
        workgroupBarrier();
    }
    if (lid.y == 0u && c < cols) {
        grads[item.y + c] = csum[lid.x];
    }
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

// work[dst + i] = work[src + i] for i < rows·cols, for each region (src, dst) of the list
// (carrying every layer's final (h, c) to the next window).
@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = p.rows * p.cols;
    let i = gid.x + gid.y * nwg.x * 256u;
    let item = p.list[gid.z];
    if (i < n) {
        work[item.y + i] = work[item.x + i];
    }
}
