// sample.wgsl: generation without a trip to the host per character (src/gpu/sampler.rs).
//
// A run of K characters is one program: K times the layers' forward steps and `logits_draw`,
// which computes every stream's logits and picks its next character where the logits are,
// writing it where the next step reads its input. The host reads the K steps' logits and draws
// back at the end, redraws each with its own rule (src/sample.rs `draw`, in f64) and keeps the
// run up to the first draw it would have made differently (`resume` then restarts from there).

struct SampleParams {
    b: u32,          // streams N
    v: u32,          // vocabulary V
    logits_off: u32, // logits_draw: work: this step's logits, [N, V] (written)
    out_off: u32,    // logits_draw: ids: where the drawn characters go, [N] (the next inputs)
    step: u32,       // logits_draw: k, the step within the run: its draws use counter S.counter + k
    run_off: u32,    // ids: the run's settings, written before each run: m (the block the
                     // state stands in), the draw stream of stream 0 (stream s draws as
                     // that + s), 1 / temperature (f32 bits), top-k (0: all)
    layers: u32,     // resume: layers L
    bh: u32,         // resume: words of one state block, B·H
    y_off: u32,      // logits_draw: work: the top layer's output y_k, [N, H]
    w_off: u32,      // logits_draw: params: W_d, [H, V]
    bias_off: u32,   // logits_draw: params: b_d, [V]
    h: u32,          // hidden width H
    // resume: (h, c) of layer 2i in .xy and of layer 2i + 1 in .zw: where each layer's state
    // block 0 starts in work (block m starts m·bh words later).
    slots: array<vec4<u32>, 13>,
}

@group(0) @binding(0) var<uniform> p: SampleParams;

// Copies every layer's (h, c) from block m to block 0, where the next run's
// first step reads it: after a run of m steps the state stands in block m (m = 0: it stands in
// block 0 already, and the copy is of each word onto itself).
@compute @workgroup_size(64)
fn resume(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= p.layers * p.bh) {
        return;
    }
    let l = i / p.bh;
    let e = i % p.bh;
    let src_at = ids[p.run_off] * p.bh + e;
    let s = p.slots[l / 2u];
    var h = s.x;
    var c = s.y;
    if (l % 2u == 1u) {
        h = s.z;
        c = s.w;
    }
    work[h + e] = work[h + src_at];
    work[c + e] = work[c + src_at];
}

const DW: u32 = 64u; // invocations of `draw`, one workgroup per stream

var<workgroup> part: array<f32, 64>;
var<workgroup> chosen: u32;

// Whether column j of the row at `row` survives top-k: fewer than top_k columns rank above it
// (a larger logit, or an equal one at a smaller index: the host's stable order).
fn kept(row: u32, j: u32, top_k: u32) -> bool {
    if (top_k == 0u || top_k >= p.v) {
        return true;
    }
    let x = work[row + j];
    var rank = 0u;
    for (var i = 0u; i < p.v; i++) {
        let y = work[row + i];
        if (y > x || (y == x && i < j)) {
            rank++;
        }
    }
    return rank < top_k;
}

// One stream's logits and its next character (src/sample.rs `draw`, in f32):
//   logit_j = b_d[j] + Σ_k y[s, k]·W_d[k, j]            (src/cpu/network.rs's output layer)
//   x_j = logit_j / T over the kept columns,  w_j = e^{x_j - max x},  goal = u · Σ w
//   the first j (in column order) with goal < w_0 + .. + w_j; none (rounding): the last kept
// with u = Key::uniform(S.counter + step, stream0 + s, 0), the host's number for this draw.
// Invocation li takes columns li·per .. li·per + per - 1; the partial sums meet in workgroup
// memory, and the invocation whose range holds the goal walks it. Sampler::step runs this too
// and reads only the logits.
@compute @workgroup_size(64)
fn logits_draw(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let s = wg.x;
    let row = p.logits_off + s * p.v;
    let per = (p.v + DW - 1u) / DW;
    let lo = min(li * per, p.v);
    let hi = min(lo + per, p.v);
    let y = p.y_off + s * p.h;
    for (var j = lo; j < hi; j++) {
        var z = 0.0;
        for (var k = 0u; k < p.h; k++) {
            z = fma(work[y + k], params[p.w_off + k * p.v + j], z);
        }
        work[row + j] = z + params[p.bias_off + j];
    }
    // Every invocation reads the whole row below (top-k ranks).
    storageBarrier();
    let stream0 = ids[p.run_off + 1u];
    let inv_t = bitcast<f32>(ids[p.run_off + 2u]);
    let top_k = ids[p.run_off + 3u];
    var m = bitcast<f32>(0xff800000u); // -inf
    for (var j = lo; j < hi; j++) {
        if (kept(row, j, top_k)) {
            m = max(m, work[row + j] * inv_t);
        }
    }
    part[li] = m;
    if (li == 0u) {
        chosen = NONE;
    }
    workgroupBarrier();
    for (var w = DW / 2u; w > 0u; w >>= 1u) {
        if (li < w) {
            part[li] = max(part[li], part[li + w]);
        }
        workgroupBarrier();
    }
    let mx = part[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = lo; j < hi; j++) {
        if (kept(row, j, top_k)) {
            sum += exp(work[row + j] * inv_t - mx);
        }
    }
    part[li] = sum;
    workgroupBarrier();
    // Σ of the ranges before this one, and of all, added in the same order by every invocation.
    var before = 0.0;
    var total = 0.0;
    for (var i = 0u; i < DW; i++) {
        if (i == li) {
            before = total;
        }
        total += part[i];
    }
    let u = rng_uniform(S.counter + p.step, stream0 + s, 0u);
    let goal = u * total;
    if (sum > 0.0 && goal >= before && goal < before + sum) {
        var pick = NONE;
        var last = NONE;
        var acc = before;
        for (var j = lo; j < hi; j++) {
            if (kept(row, j, top_k)) {
                last = j;
                acc += exp(work[row + j] * inv_t - mx);
                if (goal < acc) {
                    pick = j;
                    break;
                }
            }
        }
        chosen = select(pick, last, pick == NONE);
    }
    workgroupBarrier();
    if (li == 0u) {
        var t = chosen;
        if (t == NONE) {
            // The goal fell past the last partial sum by rounding: the last kept column.
            t = 0u;
            for (var j = p.v; j > 0u; j--) {
                if (kept(row, j - 1u, top_k)) {
                    t = j - 1u;
                    break;
                }
            }
        }
        ids[p.out_off + s] = t;
    }
}
