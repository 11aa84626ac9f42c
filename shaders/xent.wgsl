// xent.wgsl: softmax cross-entropy over the logits and the step's loss and accuracy
// (src/gpu/xent.rs; the CPU's version is src/cpu/network.rs `output_forward`).

struct XentParams {
    rows: u32,        // N = T·B positions
    v: u32,           // vocabulary V
    logits_off: u32,  // work: [N, V]
    dlogits_off: u32, // work: [N, V], or NONE (evaluation: no gradient)
    ids_off: u32,     // ids: targets, [N] (time-major)
    loss_off: u32,    // work: per-row loss [N], then per-row hit (1 or 0) [N]
    out_off: u32,     // work: scalars; [0] = Σ loss, [1] = Σ hits (reduce)
    inv_n: f32,       // 1 / N
}

@group(0) @binding(0) var<uniform> p: XentParams;

// One invocation per row r:
//   best   = max_j logits[r, j], arg its first index      (a NaN row never looks confident)
//   loss_r = -(logits[r, y_r] - best - ln Σ_j e^{logits[r, j] - best})
//   hit_r  = arg == y_r
//   dlogits[r, :] = (softmax(logits[r, :]) - onehot(y_r)) / N
@compute @workgroup_size(64)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= p.rows) {
        return;
    }
    let row = p.logits_off + r * p.v;
    let tgt = ids[p.ids_off + r];
    var best = work[row];
    var arg = 0u;
    for (var j = 1u; j < p.v; j++) {
        let x = work[row + j];
        if (x > best || (is_nan(best) && !is_nan(x))) {
            best = x;
            arg = j;
        }
    }
    var sum = 0.0;
    for (var j = 0u; j < p.v; j++) {
        sum += exp(work[row + j] - best);
    }
    work[p.loss_off + r] = -((work[row + tgt] - best) - log(sum));
    work[p.loss_off + p.rows + r] = select(0.0, 1.0, arg == tgt);
    if (p.dlogits_off != NONE) {
        let d = p.dlogits_off + r * p.v;
        let inv = p.inv_n / sum;
        for (var j = 0u; j < p.v; j++) {
            work[d + j] = exp(work[row + j] - best) * inv;
        }
        work[d + tgt] -= p.inv_n;
    }
}

var<workgroup> red: array<f32, 512>;

// Σ loss_r and Σ hit_r over the N rows, by one workgroup: invocation i sums rows i, i+256, ...
// in order, then a fixed tree halves the 256 partial sums (deterministic, no atomics).
@compute @workgroup_size(256)
fn reduce_loss(@builtin(local_invocation_index) li: u32) {
    var l = 0.0;
    var h = 0.0;
    for (var r = li; r < p.rows; r += 256u) {
        l += work[p.loss_off + r];
        h += work[p.loss_off + p.rows + r];
    }
    red[li] = l;
    red[256u + li] = h;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w >>= 1u) {
        if (li < w) {
            red[li] += red[li + w];
            red[256u + li] += red[256u + li + w];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        work[p.out_off] = red[0];
        work[p.out_off + 1u] = red[256];
    }
}
