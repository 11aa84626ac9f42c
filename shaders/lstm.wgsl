// lstm.wgsl: one time step of an LSTM layer, forward and backward, with the recurrent product
// and the gate nonlinearities fused into one kernel (src/gpu/lstm.rs; the CPU's version is
// src/cpu/network.rs `layer_forward` / `layer_backward` and src/real.rs).
//
// Activations are time-major (row r = t·B + b), as in src/cpu/network.rs. Gate columns of the
// [.., 4H] tensors are ordered i, f, g, o.

struct LstmParams {
    b: u32,          // batch rows B
    h: u32,          // hidden width H
    layer: u32,      // layer index l (dropout stream DROPOUT + l)
    row0: u32,       // t·B: time-major row of this step's first batch row
    z_off: u32,      // work: act block t, [B, 4H]
    hprev_off: u32,  // work: h_{t-1}, [B, H]
    cprev_off: u32,  // work: c_{t-1}, [B, H]
    c_off: u32,      // work: c_t, [B, H] (forward)
    h_off: u32,      // work: h_t, [B, H] (forward)
    tc_off: u32,     // work: tanh(c_t), [B, H]
    y_off: u32,      // work: y_t = h_t ⊙ mask_t, [B, H] (forward)
    w_off: u32,      // forward: params W_hh [H, 4H]; backward: work W_hhᵀ [4H, H]
    dy_off: u32,     // work: d loss / d y_t, [B, H] (backward)
    dc_off: u32,     // work: carried dc, [B, H] (backward)
    dznext_off: u32, // work: dz_{t+1}, [B, 4H], or NONE at t = T-1 (backward)
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: LstmParams;

const RB: u32 = 4u;   // batch rows per workgroup
const KS: u32 = 4u;   // the reduction is split into KS slices, one per invocation row
const KC: u32 = 256u; // chunk of the reduction staged in workgroup memory
const FU: u32 = 32u;  // hidden units per workgroup, forward
const BU: u32 = 64u;  // hidden units per workgroup, backward

var<workgroup> tile: array<f32, 1024>; // [RB][KC]: rows of h_{t-1} (forward) or dz_{t+1} (backward)
var<workgroup> part: array<f32, 2048>; // partial sums of the KS slices

// Forward, one step (src/cpu/network.rs `layer_forward`, cell: src/real.rs `cell_forward_scalar`):
//
//   z_t     += h_{t-1} · W_hh          z_t holds x_t·W_ih + b on entry
//   i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o)      (stored over z_t)
//   c_t      = f ⊙ c_{t-1} + i ⊙ g
//   tc       = tanh(c_t)
//   h_t      = o ⊙ tc
//   y_t      = h_t ⊙ mask_t            mask ∈ {0, 1/(1-p)} (1 when dropout is off)
//
// Workgroup (32, 4): 32 hidden units j × KS slices of the H-long dot products, for RB batch
// rows. Each invocation accumulates 4 gates × RB rows = 16 outputs over its slice; the slices
// meet in workgroup memory, then invocation (u, s) finishes the cell of batch row b0 + s.
@compute @workgroup_size(32, 4)
fn forward_step(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let u = lid.x;
    let s = lid.y;
    let hd = p.h;
    let g4 = 4u * hd;
    let j = wg.x * FU + u;
    let b0 = wg.y * RB;
    var acc: array<f32, 16>; // [row][gate]
    for (var k0 = 0u; k0 < hd; k0 += KC) {
        for (var q = 0u; q < 8u; q++) {
            let l = li + 128u * q;
            let r = l / KC;
            let k = k0 + l % KC;
            var v = 0.0;
            if (b0 + r < p.b && k < hd) {
                v = work[p.hprev_off + (b0 + r) * hd + k];
            }
            tile[l] = v;
        }
        workgroupBarrier();
        let ka = s * (KC / KS);
        let kb = min(ka + KC / KS, hd - k0);
        if (j < hd) {
            for (var kk = ka; kk < kb; kk++) {
                let w = p.w_off + (k0 + kk) * g4 + j;
                let wi = params[w];
                let wf = params[w + hd];
                let wgg = params[w + 2u * hd];
                let wo = params[w + 3u * hd];
                for (var r = 0u; r < RB; r++) {
                    let hv = tile[r * KC + kk];
                    acc[r * 4u] = fma(hv, wi, acc[r * 4u]);
                    acc[r * 4u + 1u] = fma(hv, wf, acc[r * 4u + 1u]);
                    acc[r * 4u + 2u] = fma(hv, wgg, acc[r * 4u + 2u]);
                    acc[r * 4u + 3u] = fma(hv, wo, acc[r * 4u + 3u]);
                }
            }
        }
        workgroupBarrier();
    }
    // part[s][r][gate][u]
    for (var x = 0u; x < 16u; x++) {
        part[(s * 16u + x) * FU + u] = acc[x];
    }
    workgroupBarrier();
    let b = b0 + s;
    if (j >= hd || b >= p.b) {
        return;
    }
    let zr = p.z_off + b * g4;
    var z: array<f32, 4>;
    for (var gate = 0u; gate < 4u; gate++) {
        var sum = 0.0;
        for (var sl = 0u; sl < KS; sl++) {
            sum += part[(sl * 16u + s * 4u + gate) * FU + u];
        }
        z[gate] = work[zr + gate * hd + j] + sum;
    }
    let ig = sigmoid(z[0]);
    let fg = sigmoid(z[1]);
    let gg = tanh_safe(z[2]);
    let og = sigmoid(z[3]);
    let c = fg * work[p.cprev_off + b * hd + j] + ig * gg;
    let tc = tanh_safe(c);
    let h = og * tc;
    work[zr + j] = ig;
    work[zr + hd + j] = fg;
    work[zr + 2u * hd + j] = gg;
    work[zr + 3u * hd + j] = og;
    work[p.c_off + b * hd + j] = c;
    work[p.tc_off + b * hd + j] = tc;
    work[p.h_off + b * hd + j] = h;
    work[p.y_off + b * hd + j] = h * dropout_mult(p.layer, p.row0 + b, j, hd);
}

// Backward, one step (src/cpu/network.rs `layer_backward`, cell: src/real.rs
// `cell_backward_scalar`), run for t = T-1 down to 0:
//
//   dh_rec  = dz_{t+1} · W_hhᵀ          inverts z_{t+1} += h_t·W_hh (0 at t = T-1: truncation)
//   dh      = dy_t ⊙ mask_t + dh_rec    inverts y_t = h_t ⊙ mask_t
//   do      = dh ⊙ tc                   from h = o ⊙ tc
//   dc     += dh ⊙ o ⊙ (1 - tc²)        from tc = tanh(c); dc arrives holding dc_{t+1}·f_{t+1}
//   di = dc ⊙ g,  dg = dc ⊙ i,  df = dc ⊙ c_{t-1}        from c = f ⊙ c_{t-1} + i ⊙ g
//   dz_i = di·i(1-i), dz_f = df·f(1-f), dz_g = dg·(1-g²), dz_o = do·o(1-o)   (stored over act_t)
//   dc      = dc ⊙ f                    carried to step t-1
//
// W_hhᵀ ([4H, H], made by the transpose kernel) makes the 4H-long dot products read W in
// order across neighbouring invocations. Workgroup (64, 4): 64 hidden units × KS slices, for RB
// batch rows.
@compute @workgroup_size(64, 4)
fn backward_step(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    let u = lid.x;
    let s = lid.y;
    let hd = p.h;
    let g4 = 4u * hd;
    let j = wg.x * BU + u;
    let b0 = wg.y * RB;
    var acc: array<f32, 4>; // [row]
    if (p.dznext_off != NONE) {
        for (var k0 = 0u; k0 < g4; k0 += KC) {
            for (var q = 0u; q < 4u; q++) {
                let l = li + 256u * q;
                let r = l / KC;
                let k = k0 + l % KC;
                var v = 0.0;
                if (b0 + r < p.b && k < g4) {
                    v = work[p.dznext_off + (b0 + r) * g4 + k];
                }
                tile[l] = v;
            }
            workgroupBarrier();
            let ka = s * (KC / KS);
            let kb = min(ka + KC / KS, g4 - k0);
            if (j < hd) {
                for (var kk = ka; kk < kb; kk++) {
                    let w = work[p.w_off + (k0 + kk) * hd + j];
                    for (var r = 0u; r < RB; r++) {
                        acc[r] = fma(tile[r * KC + kk], w, acc[r]);
                    }
                }
            }
            workgroupBarrier();
        }
    }
    // part[s][r][u]
    for (var r = 0u; r < RB; r++) {
        part[(s * RB + r) * BU + u] = acc[r];
    }
    workgroupBarrier();
    let b = b0 + s;
    if (j >= hd || b >= p.b) {
        return;
    }
    var dh_rec = 0.0;
    for (var sl = 0u; sl < KS; sl++) {
        dh_rec += part[(sl * RB + s) * BU + u];
    }
    let at = b * hd + j;
    let dh = work[p.dy_off + at] * dropout_mult(p.layer, p.row0 + b, j, hd) + dh_rec;
    let zr = p.z_off + b * g4;
    let ig = work[zr + j];
    let fg = work[zr + hd + j];
    let gg = work[zr + 2u * hd + j];
    let og = work[zr + 3u * hd + j];
    let tc = work[p.tc_off + at];
    var dc_next = 0.0;
    if (p.dznext_off != NONE) {
        dc_next = work[p.dc_off + at];
    }
    let dc = dc_next + dh * og * (1.0 - tc * tc);
    work[zr + j] = dc * gg * ig * (1.0 - ig);
    work[zr + hd + j] = dc * work[p.cprev_off + at] * fg * (1.0 - fg);
    work[zr + 2u * hd + j] = dc * ig * (1.0 - gg * gg);
    work[zr + 3u * hd + j] = dh * tc * og * (1.0 - og);
    work[p.dc_off + at] = dc * fg;
}
