// lstm.wgsl: one time step of an LSTM layer, forward and backward, with the recurrent product
// and the gate nonlinearities fused into one kernel (src/gpu/lstm.rs; the CPU's version is
// src/cpu/network.rs `layer_forward` / `layer_backward` and src/model/cell.rs).
//
// Activations are time-major (row r = t·B + b), as in src/cpu/network.rs. Gate columns of the
// [.., 4H] tensors are ordered i, f, g, o.

// One layer's time step within a dispatch (20 words). A dispatch runs up to three of them, one
// per grid z: a layer wavefront, where layer l works on step t - l while layer 0 is at step t, so
// the layers' steps of one dispatch never read each other's output.
struct Lane {
    layer: u32,      // layer index l (dropout stream DROPOUT + l)
    row0: u32,       // t·B: time-major row of this step's first batch row
    z_off: u32,      // work: act block t, [B, 4H]
    hprev_off: u32,  // work: h_{t-1}, [B, H]
    cprev_off: u32,  // work: c_{t-1}, [B, H]
    c_off: u32,      // work: c_t, [B, H] (forward)
    h_off: u32,      // work: h_t, [B, H] (forward)
    tc_off: u32,     // work: tanh(c_t), [B, H]
    y_off: u32,      // work: y_t = h_t ⊙ mask_t, [B, H] (forward)
    w_off: u32,      // params: W_hh [H, 4H] (both directions)
    x_off: u32,      // forward: work: y_t of the layer below, [B, H]; NONE for layer 0
    wih_off: u32,    // forward: params: this layer's W_ih [H, 4H] (with x_off)
    bias_off: u32,   // forward: params: this layer's b [4H] (with x_off or tok_off)
    dy_off: u32,     // backward: work: d loss / d y_t, [B, H], for the top layer; else NONE
    above_off: u32,  // backward: work: dz_t of the layer above, [B, 4H] (with dy_off = NONE)
    wabove_off: u32, // backward: params: the layer above's W_ih [H, 4H]
    dc_off: u32,     // backward: this layer's carried dc, [B, H]
    dznext_off: u32, // backward: dz_{t+1}, [B, 4H], or NONE at t = T-1
    tok_off: u32,    // forward, layer 0: ids: the step's B input symbols x_t; NONE: act_t holds
                     // x_t·W_ih + b on entry (a single step run on its own)
    p0_off: u32,     // forward, layer 0: work: P = embedding·W_ih, [V, 4H] (with tok_off)
}

struct LstmParams {
    b: u32,     // batch rows B
    h: u32,     // hidden width H (every layer's; a layer above 0 reads the one below, also H)
    lanes: u32, // steps in this dispatch (the grid's z)
    pad: u32,
    lane: array<Lane, 3>,
}

@group(0) @binding(0) var<uniform> p: LstmParams;

// Tiling. A recurrent step is latency-bound: T steps per layer run one after another, each a
// small product ([B, H] x [H, 4H] forward, [B, 4H] x [4H, H] backward) whose every output is a
// long dot product. So each workgroup takes only a few hidden units (UW) of a block of RB = 16
// batch rows, and splits the dot products' k across its invocations (KS ways); the partial sums
// meet in a tree in workgroup memory, and the first few invocations finish the cell. At B = 16,
// H = 256 that is H/UW = 128 workgroups per layer and step, and no invocation runs more than
// 2·16·ceil(H/16) + 64 (forward, with the input product above layer 0) or 2·4·ceil(4H/32) + 20
// (backward, with the layer above's dy) multiply-adds and additions in sequence
// (src/gpu/lstm.rs computes these chains for `bench --plan`). The layers' steps of one
// wavefront step share the dispatch, one per grid z.
//
// Invocation li = ks + KS·(q + RQ·u): ks is its slice of k (every KS-th k, so neighbouring
// invocations read neighbouring words), q its quad of batch rows b0 + 4q .. b0 + 4q + 3, u its
// unit j = UW·wg.x + u. Rows past B read zeros and units past H compute on column H-1; neither
// is stored.
//
// Narrow batches (B <= 4: sampling one stream, tiny training batches) get the forward step's
// narrow pipeline (src/gpu/lstm.rs): one quad of rows per workgroup (FRQ = 1) and k split 64
// ways, so the same 128 invocations all work on real rows and each runs a quarter of the chain.

const UW: u32 = 2u;   // hidden units per workgroup
const RB: u32 = 16u;  // batch rows per workgroup (backward)
const RQ: u32 = 4u;   // RB / 4: quads of rows (backward)
override FRQ: u32 = 4u;  // forward: quads of rows per workgroup (4, or 1 narrow)
override KSF: u32 = 16u; // forward: ways k is split (UW·FRQ·KSF = 128 invocations: 16, or 64)
const KSB: u32 = 32u;    // backward: ways k is split (UW·RQ·KSB = 256 invocations)

// Forward: red[4·li + r] = invocation li's partial (z_i, z_f, z_g, z_o) of row 4q + r.
var<workgroup> red: array<vec4<f32>, 512>; // 4·UW·FRQ·KSF
// Backward: redb[li] = invocation li's partial dh_rec of rows 4q .. 4q + 3; reda[li] its partial
// dy from the layer above.
var<workgroup> redb: array<vec4<f32>, 256>; // UW·RQ·KSB
var<workgroup> reda: array<vec4<f32>, 256>;

// Where invocation li of workgroup wg works when k is split `ways` ways (see the tiling above).
struct Slot {
    ks: u32, // its slice of k: k = ks, ks + ways, ..
    j: u32,  // its unit (j >= H: computes, stores nothing)
    jj: u32, // min(j, H - 1): the column it reads
    b: u32,  // the first row of its quad
}

fn slot(li: u32, wg: vec3<u32>, ways: u32, rq: u32) -> Slot {
    let j = wg.x * UW + li / (ways * rq);
    return Slot(li % ways, j, min(j, p.h - 1u), wg.y * 4u * rq + 4u * ((li / ways) % rq));
}

// work[off + b·width + k], or 0 past the batch.
fn src(off: u32, width: u32, b: u32, k: u32) -> f32 {
    if (b < p.b) {
        return work[off + b * width + k];
    }
    return 0.0;
}

// The cell of batch row b, unit j of lane q, given rec = Σ_k h_{t-1}[b, k]·W_hh[k, (i f g o)·H + j]
// (plus, above layer 0, Σ_k x_t[b, k]·W_ih[k, ..]):
//   z = P[x_t] + b + rec (layer 0: row x_t of P = embedding·W_ih is x_t's input product),
//       b + rec (the layers above), or act_t + rec (a step given its input product)
//   i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o)      (stored in act_t)
//   c_t = f ⊙ c_{t-1} + i ⊙ g,   tc = tanh(c_t),   h_t = o ⊙ tc,   y_t = h_t ⊙ mask_t
fn finish_forward(q: Lane, b: u32, j: u32, rec: vec4<f32>) {
    let hd = p.h;
    if (b >= p.b || j >= hd) {
        return;
    }
    let zr = q.z_off + b * 4u * hd + j;
    var z = rec;
    if (q.x_off != NONE || q.tok_off != NONE) {
        let br = q.bias_off + j;
        z += vec4<f32>(params[br], params[br + hd], params[br + 2u * hd], params[br + 3u * hd]);
        if (q.tok_off != NONE) {
            let pr = q.p0_off + ids[q.tok_off + b] * 4u * hd + j;
            z += vec4<f32>(work[pr], work[pr + hd], work[pr + 2u * hd], work[pr + 3u * hd]);
        }
    } else {
        z += vec4<f32>(work[zr], work[zr + hd], work[zr + 2u * hd], work[zr + 3u * hd]);
    }
    let ig = sigmoid(z.x);
    let fg = sigmoid(z.y);
    let gg = tanh_safe(z.z);
    let og = sigmoid(z.w);
    let at = b * hd + j;
    let c = fg * work[q.cprev_off + at] + ig * gg;
    let tc = tanh_safe(c);
    let h = og * tc;
    work[zr] = ig;
    work[zr + hd] = fg;
    work[zr + 2u * hd] = gg;
    work[zr + 3u * hd] = og;
    work[q.c_off + at] = c;
    work[q.tc_off + at] = tc;
    work[q.h_off + at] = h;
    work[q.y_off + at] = h * dropout_mult(q.layer, q.row0 + b, j, hd);
}

// Forward's product: to acc (column r: row b + r's sums for gates i, f, g, o of unit jj), adds
// x[b + r, k]·W[k, (i f g o)·H + jj] over this invocation's slice of k (x: [B, H] in work at
// x_off, W: [H, 4H] in params at w_off).
fn gate_sums(acc: mat4x4<f32>, x_off: u32, w_off: u32, jj: u32, b: u32, ks: u32) -> mat4x4<f32> {
    let hd = p.h;
    var a = acc;
    for (var k = ks; k < hd; k += KSF) {
        let wr = w_off + k * 4u * hd + jj;
        let w = vec4<f32>(params[wr], params[wr + hd], params[wr + 2u * hd], params[wr + 3u * hd]);
        a[0] = fma(vec4<f32>(src(x_off, hd, b, k)), w, a[0]);
        a[1] = fma(vec4<f32>(src(x_off, hd, b + 1u, k)), w, a[1]);
        a[2] = fma(vec4<f32>(src(x_off, hd, b + 2u, k)), w, a[2]);
        a[3] = fma(vec4<f32>(src(x_off, hd, b + 3u, k)), w, a[3]);
    }
    return a;
}

// Forward, one step of each lane (src/cpu/network.rs `layer_forward`, cell: src/model/cell.rs
// `forward`):
//
//   z_t      = x_t·W_ih + b + h_{t-1}·W_hh     layer 0: x_t·W_ih is row x_t of P
//   i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o)      (stored over z_t)
//   c_t      = f ⊙ c_{t-1} + i ⊙ g
//   tc       = tanh(c_t)
//   h_t      = o ⊙ tc
//   y_t      = h_t ⊙ mask_t            mask ∈ {0, 1/(1-p)} (1 when dropout is off)
//
// Grid (ceil(H/UW), ceil(B/(4·FRQ)), lanes), 128 invocations. Each invocation sums, over its k slice,
// the four gate columns of its unit (one vec4 of W_hh per k, and of W_ih above layer 0) times
// four rows of h_{t-1} (and of x_t): sixteen running sums. A log2(KSF)-level tree over ks adds the
// slices; invocations ks = 0..3 of each quad then finish row 4q + ks.
@compute @workgroup_size(128)
fn forward_step(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let q = p.lane[wg.z];
    let sl = slot(li, wg, KSF, FRQ);
    let ks = sl.ks;
    let b = sl.b;
    var a = gate_sums(mat4x4<f32>(), q.hprev_off, q.w_off, sl.jj, b, ks);
    if (q.x_off != NONE) {
        a = gate_sums(a, q.x_off, q.wih_off, sl.jj, b, ks);
    }
    red[4u * li] = a[0];
    red[4u * li + 1u] = a[1];
    red[4u * li + 2u] = a[2];
    red[4u * li + 3u] = a[3];
    workgroupBarrier();
    for (var s = KSF / 2u; s > 0u; s >>= 1u) {
        if (ks < s) {
            for (var r = 0u; r < 4u; r++) {
                red[4u * li + r] += red[4u * (li + s) + r];
            }
        }
        workgroupBarrier();
    }
    if (ks < 4u) {
        finish_forward(q, b + ks, sl.j, red[4u * (li - ks) + ks]);
    }
}

// The cell backward of batch row b, unit j of lane q, given dh_rec = Σ_k dz_{t+1}[b, k]·W_hh[j, k]
// and, below the top layer, dy_above = Σ_k dz_t^{l+1}[b, k]·W_ih^{l+1}[j, k] (= d loss / d y_t):
//   dh      = dy_t ⊙ mask_t + dh_rec    inverts y_t = h_t ⊙ mask_t
//   do      = dh ⊙ tc                   from h = o ⊙ tc
//   dc     += dh ⊙ o ⊙ (1 - tc²)        from tc = tanh(c); dc arrives holding dc_{t+1}·f_{t+1}
//   di = dc ⊙ g,  dg = dc ⊙ i,  df = dc ⊙ c_{t-1}        from c = f ⊙ c_{t-1} + i ⊙ g
//   dz_i = di·i(1-i), dz_f = df·f(1-f), dz_g = dg·(1-g²), dz_o = do·o(1-o)   (stored over act_t)
//   dc      = dc ⊙ f                    carried to step t-1
fn finish_backward(q: Lane, b: u32, j: u32, dh_rec: f32, dy_above: f32) {
    let hd = p.h;
    if (b >= p.b || j >= hd) {
        return;
    }
    let at = b * hd + j;
    var dy = dy_above;
    if (q.dy_off != NONE) {
        dy = work[q.dy_off + at];
    }
    let dh = dy * dropout_mult(q.layer, q.row0 + b, j, hd) + dh_rec;
    let zr = q.z_off + b * 4u * hd + j;
    let ig = work[zr];
    let fg = work[zr + hd];
    let gg = work[zr + 2u * hd];
    let og = work[zr + 3u * hd];
    let tc = work[q.tc_off + at];
    var dc_next = 0.0;
    if (q.dznext_off != NONE) {
        dc_next = work[q.dc_off + at];
    }
    let dc = dc_next + dh * og * (1.0 - tc * tc);
    work[zr] = dc * gg * ig * (1.0 - ig);
    work[zr + hd] = dc * work[q.cprev_off + at] * fg * (1.0 - fg);
    work[zr + 2u * hd] = dc * ig * (1.0 - gg * gg);
    work[zr + 3u * hd] = dh * tc * og * (1.0 - og);
    work[q.dc_off + at] = dc * fg;
}

// Backward's product: Σ_k dz[b + r, k]·W[jj, k] for rows r = 0..3 over this invocation's slice
// of k (dz: [B, 4H] in work at dz_off; row jj of W: [H, 4H] in params at w_off).
fn row_sums(dz_off: u32, w_off: u32, jj: u32, b: u32, ks: u32) -> vec4<f32> {
    let g4 = 4u * p.h;
    let wrow = w_off + jj * g4;
    var d = vec4<f32>(0.0);
    for (var k = ks; k < g4; k += KSB) {
        let z = vec4<f32>(src(dz_off, g4, b, k), src(dz_off, g4, b + 1u, k), src(dz_off, g4, b + 2u, k), src(dz_off, g4, b + 3u, k));
        d = fma(z, vec4<f32>(params[wrow + k]), d);
    }
    return d;
}

// Backward, one step of each lane (src/cpu/network.rs `layer_backward`, cell:
// src/model/cell.rs `backward`), run for t = T-1 down to 0, the top layer one step ahead of the
// layer below:
//
//   dh_rec  = dz_{t+1} · W_hhᵀ          inverts z_{t+1} += h_t·W_hh (0 at t = T-1: truncation)
//   dy_t    = dz_t^{l+1} · W_ih^{l+1}ᵀ   below the top: inverts z^{l+1}_t = y_t·W_ih^{l+1} + ..
//   then the cell backward above.
//
// dh_rec[b, j] = Σ_k dz_{t+1}[b, k]·W_hh[j, k]: row j of W_hh is contiguous in k, so the k-split
// invocations read neighbouring words of W_hh itself (no transpose); the same for W_ih^{l+1}.
// Grid (ceil(H/UW), ceil(B/RB), lanes), 256 invocations: each sums its k slice of four rows
// (one vec4 per product), a 5-level tree adds the slices, invocations ks = 0..3 of each quad
// finish row 4q + ks.
@compute @workgroup_size(256)
fn backward_step(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let q = p.lane[wg.z];
    let sl = slot(li, wg, KSB, RQ);
    let ks = sl.ks;
    let b = sl.b;
    var d = vec4<f32>(0.0); // dh_rec of rows b .. b + 3
    var e = vec4<f32>(0.0); // dy from the layer above, rows b .. b + 3
    if (q.dznext_off != NONE) {
        d = row_sums(q.dznext_off, q.w_off, sl.jj, b, ks);
    }
    if (q.dy_off == NONE) {
        e = row_sums(q.above_off, q.wabove_off, sl.jj, b, ks);
    }
    redb[li] = d;
    reda[li] = e;
    workgroupBarrier();
    for (var s = KSB / 2u; s > 0u; s >>= 1u) {
        if (ks < s) {
            redb[li] += redb[li + s];
            reda[li] += reda[li + s];
        }
        workgroupBarrier();
    }
    if (ks < 4u) {
        finish_backward(q, b + ks, sl.j, redb[li - ks][ks], reda[li - ks][ks]);
    }
}
