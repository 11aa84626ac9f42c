// lstm.wgsl: one time step of an LSTM layer, forward and backward, with the recurrent product
// and the gate nonlinearities fused into one kernel (src/gpu/lstm.rs; the CPU's version is
// src/cpu/network.rs `layer_forward` / `layer_backward` and src/model/cell.rs).
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

const RB: u32 = 16u;  // batch rows per workgroup
const FU: u32 = 64u;  // hidden units per workgroup (one per invocation)
const KC: u32 = 128u; // chunk of the reduction staged in workgroup memory

// tile[kk·RB/4 + q] = rows b0 + 4q .. b0 + 4q + 3 of h_{t-1} (forward) or dz_{t+1}
// (backward) at reduction index k0 + kk: the RB rows of one k are four vec4s.
var<workgroup> tile: array<vec4<f32>, 512>; // KC·RB/4

fn src(off: u32, width: u32, b: u32, k: u32) -> f32 {
    if (b < p.b && k < width) {
        return work[off + b * width + k];
    }
    return 0.0;
}

// Stages one chunk: tile for k0 .. k0 + KC, zero past the edges. Invocation li fills
// 8 vec4s; neighbouring invocations read neighbouring k.
fn stage(off: u32, width: u32, b0: u32, k0: u32, li: u32) {
    for (var q = 0u; q < RB / 4u; q++) {
        for (var h = 0u; h < KC / FU; h++) {
            let kk = li + FU * h;
            let k = k0 + kk;
            let b = b0 + 4u * q;
            tile[kk * (RB / 4u) + q] = vec4<f32>(
                src(off, width, b, k),
                src(off, width, b + 1u, k),
                src(off, width, b + 2u, k),
                src(off, width, b + 3u, k),
            );
        }
    }
}

// The cell of batch row b, unit j, given Σ_k h_{t-1}[b, k]·W_hh[k, (i f g o)·H + j]:
//   i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o)      (stored over z_t)
//   c_t = f ⊙ c_{t-1} + i ⊙ g,   tc = tanh(c_t),   h_t = o ⊙ tc,   y_t = h_t ⊙ mask_t
fn finish_forward(b: u32, j: u32, rec: vec4<f32>) {
    let hd = p.h;
    if (b >= p.b || j >= hd) {
        return;
    }
    let zr = p.z_off + b * 4u * hd + j;
    let z = vec4<f32>(work[zr], work[zr + hd], work[zr + 2u * hd], work[zr + 3u * hd]) + rec;
    let ig = sigmoid(z.x);
    let fg = sigmoid(z.y);
    let gg = tanh_safe(z.z);
    let og = sigmoid(z.w);
    let at = b * hd + j;
    let c = fg * work[p.cprev_off + at] + ig * gg;
    let tc = tanh_safe(c);
    let h = og * tc;
    work[zr] = ig;
    work[zr + hd] = fg;
    work[zr + 2u * hd] = gg;
    work[zr + 3u * hd] = og;
    work[p.c_off + at] = c;
    work[p.tc_off + at] = tc;
    work[p.h_off + at] = h;
    work[p.y_off + at] = h * dropout_mult(p.layer, p.row0 + b, j, hd);
}

// Forward, one step (src/cpu/network.rs `layer_forward`, cell: src/model/cell.rs `forward`):
//
//   z_t     += h_{t-1} · W_hh          z_t holds x_t·W_ih + b on entry
//   i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o)      (stored over z_t)
//   c_t      = f ⊙ c_{t-1} + i ⊙ g
//   tc       = tanh(c_t)
//   h_t      = o ⊙ tc
//   y_t      = h_t ⊙ mask_t            mask ∈ {0, 1/(1-p)} (1 when dropout is off)
//
// Workgroup of 64 invocations, one hidden unit j each, for RB = 16 batch rows: each invocation
// keeps the four gate sums of its unit for 16 rows (64 outputs, sixteen vec4s). h_{t-1} is staged
// in workgroup memory, four rows to a vec4, and read by all invocations at once (a broadcast);
// each invocation loads its unit's four W_hh columns once per k and uses them for all 16 rows.
@compute @workgroup_size(64)
fn forward_step(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let hd = p.h;
    let g4 = 4u * hd;
    let j = wg.x * FU + li;
    let jj = min(j, hd - 1u); // past the edge: compute on a valid column, store nothing
    let b0 = wg.y * RB;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var a8 = vec4<f32>(0.0);
    var a9 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0);
    var a13 = vec4<f32>(0.0);
    var a14 = vec4<f32>(0.0);
    var a15 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < hd; k0 += KC) {
        stage(p.hprev_off, hd, b0, k0, li);
        workgroupBarrier();
        let kend = min(KC, hd - k0);
        for (var kk = 0u; kk < kend; kk++) {
            let wr = p.w_off + (k0 + kk) * g4 + jj;
            let w = vec4<f32>(params[wr], params[wr + hd], params[wr + 2u * hd], params[wr + 3u * hd]);
                let h0 = tile[kk * 4u + 0u];
                let h1 = tile[kk * 4u + 1u];
                let h2 = tile[kk * 4u + 2u];
                let h3 = tile[kk * 4u + 3u];
                a0 = fma(vec4<f32>(h0.x), w, a0);
                a1 = fma(vec4<f32>(h0.y), w, a1);
                a2 = fma(vec4<f32>(h0.z), w, a2);
                a3 = fma(vec4<f32>(h0.w), w, a3);
                a4 = fma(vec4<f32>(h1.x), w, a4);
                a5 = fma(vec4<f32>(h1.y), w, a5);
                a6 = fma(vec4<f32>(h1.z), w, a6);
                a7 = fma(vec4<f32>(h1.w), w, a7);
                a8 = fma(vec4<f32>(h2.x), w, a8);
                a9 = fma(vec4<f32>(h2.y), w, a9);
                a10 = fma(vec4<f32>(h2.z), w, a10);
                a11 = fma(vec4<f32>(h2.w), w, a11);
                a12 = fma(vec4<f32>(h3.x), w, a12);
                a13 = fma(vec4<f32>(h3.y), w, a13);
                a14 = fma(vec4<f32>(h3.z), w, a14);
                a15 = fma(vec4<f32>(h3.w), w, a15);
        }
        workgroupBarrier();
    }
    finish_forward(b0 + 0u, j, a0);
    finish_forward(b0 + 1u, j, a1);
    finish_forward(b0 + 2u, j, a2);
    finish_forward(b0 + 3u, j, a3);
    finish_forward(b0 + 4u, j, a4);
    finish_forward(b0 + 5u, j, a5);
    finish_forward(b0 + 6u, j, a6);
    finish_forward(b0 + 7u, j, a7);
    finish_forward(b0 + 8u, j, a8);
    finish_forward(b0 + 9u, j, a9);
    finish_forward(b0 + 10u, j, a10);
    finish_forward(b0 + 11u, j, a11);
    finish_forward(b0 + 12u, j, a12);
    finish_forward(b0 + 13u, j, a13);
    finish_forward(b0 + 14u, j, a14);
    finish_forward(b0 + 15u, j, a15);
}

// The cell backward of batch row b, unit j, given dh_rec = Σ_k dz_{t+1}[b, k]·W_hh[j, k]:
//   dh      = dy_t ⊙ mask_t + dh_rec    inverts y_t = h_t ⊙ mask_t
//   do      = dh ⊙ tc                   from h = o ⊙ tc
//   dc     += dh ⊙ o ⊙ (1 - tc²)        from tc = tanh(c); dc arrives holding dc_{t+1}·f_{t+1}
//   di = dc ⊙ g,  dg = dc ⊙ i,  df = dc ⊙ c_{t-1}        from c = f ⊙ c_{t-1} + i ⊙ g
//   dz_i = di·i(1-i), dz_f = df·f(1-f), dz_g = dg·(1-g²), dz_o = do·o(1-o)   (stored over act_t)
//   dc      = dc ⊙ f                    carried to step t-1
fn finish_backward(b: u32, j: u32, dh_rec: f32) {
    let hd = p.h;
    if (b >= p.b || j >= hd) {
        return;
    }
    let at = b * hd + j;
    let dh = work[p.dy_off + at] * dropout_mult(p.layer, p.row0 + b, j, hd) + dh_rec;
    let zr = p.z_off + b * 4u * hd + j;
    let ig = work[zr];
    let fg = work[zr + hd];
    let gg = work[zr + 2u * hd];
    let og = work[zr + 3u * hd];
    let tc = work[p.tc_off + at];
    var dc_next = 0.0;
    if (p.dznext_off != NONE) {
        dc_next = work[p.dc_off + at];
    }
    let dc = dc_next + dh * og * (1.0 - tc * tc);
    work[zr] = dc * gg * ig * (1.0 - ig);
    work[zr + hd] = dc * work[p.cprev_off + at] * fg * (1.0 - fg);
    work[zr + 2u * hd] = dc * ig * (1.0 - gg * gg);
    work[zr + 3u * hd] = dh * tc * og * (1.0 - og);
    work[p.dc_off + at] = dc * fg;
}

// Backward, one step (src/cpu/network.rs `layer_backward`, cell: src/model/cell.rs
// `backward`), run for t = T-1 down to 0:
//
//   dh_rec  = dz_{t+1} · W_hhᵀ          inverts z_{t+1} += h_t·W_hh (0 at t = T-1: truncation)
//   then the cell backward above.
//
// W_hhᵀ ([4H, H], made by the transpose kernel) lets the 64 invocations read 64 neighbouring
// words per k. Same shape as the forward: one unit per invocation, RB = 16 rows, dz_{t+1}
// staged in workgroup memory and broadcast.
@compute @workgroup_size(64)
fn backward_step(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let hd = p.h;
    let g4 = 4u * hd;
    let j = wg.x * FU + li;
    let jj = min(j, hd - 1u);
    let b0 = wg.y * RB;
    var d0 = vec4<f32>(0.0); // rows 0 .. 3
    var d1 = vec4<f32>(0.0); // rows 4 .. 7
    var d2 = vec4<f32>(0.0); // rows 8 .. 11
    var d3 = vec4<f32>(0.0); // rows 12 .. 15
    if (p.dznext_off != NONE) {
        for (var k0 = 0u; k0 < g4; k0 += KC) {
            stage(p.dznext_off, g4, b0, k0, li);
            workgroupBarrier();
            let kend = min(KC, g4 - k0);
            for (var kk = 0u; kk < kend; kk++) {
                let w = work[p.w_off + (k0 + kk) * hd + jj];
                let z0 = tile[kk * 4u + 0u];
                let z1 = tile[kk * 4u + 1u];
                let z2 = tile[kk * 4u + 2u];
                let z3 = tile[kk * 4u + 3u];
                d0 = fma(z0, vec4<f32>(w), d0);
                d1 = fma(z1, vec4<f32>(w), d1);
                d2 = fma(z2, vec4<f32>(w), d2);
                d3 = fma(z3, vec4<f32>(w), d3);
            }
            workgroupBarrier();
        }
    }
    finish_backward(b0 + 0u, j, d0.x);
    finish_backward(b0 + 1u, j, d0.y);
    finish_backward(b0 + 2u, j, d0.z);
    finish_backward(b0 + 3u, j, d0.w);
    finish_backward(b0 + 4u, j, d1.x);
    finish_backward(b0 + 5u, j, d1.y);
    finish_backward(b0 + 6u, j, d1.z);
    finish_backward(b0 + 7u, j, d1.w);
    finish_backward(b0 + 8u, j, d2.x);
    finish_backward(b0 + 9u, j, d2.y);
    finish_backward(b0 + 10u, j, d2.z);
    finish_backward(b0 + 11u, j, d2.w);
    finish_backward(b0 + 12u, j, d3.x);
    finish_backward(b0 + 13u, j, d3.y);
    finish_backward(b0 + 14u, j, d3.z);
    finish_backward(b0 + 15u, j, d3.w);
}
