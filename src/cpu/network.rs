//! The whole network on the CPU: forward over a window, softmax cross-entropy, and the
//! hand-derived backward pass (BPTT truncated at the window edge), generic over f32/f64.
//!
//! Layout conventions: inside this file activations are **time-major**, row `r = t*B + b`, so
//! the B rows of step t are one contiguous block (the recurrent GEMM of step t reads and writes
//! one block). Inputs and targets arrive batch-major `[B, T]` and are transposed once.
//! The equations are in [`crate::model`]; each function below names the ones it implements.

use super::gemm::{Mat, MatMut, col_sums, gemm, panel_gemm};
use super::kernels::CpuReal;
use super::profile::span;
use super::recurrent::{self, Panels};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, Params};
use crate::rng::{Key, stream, uniform_at};
use rayon::prelude::*;

/// The carried state: `h, c: [L, B, H]`.
#[derive(Clone, Debug, PartialEq)]
pub struct State<R> {
    /// Hidden state of each layer, `[L, B, H]`.
    pub h: Vec<R>,
    /// Cell state of each layer, `[L, B, H]`.
    pub c: Vec<R>,
}

impl<R: CpuReal> State<R> {
    /// All-zero state for `batch` streams.
    pub fn zeros(cfg: &ModelConfig, batch: usize) -> Self {
        let n = cfg.layers * batch * cfg.hidden;
        State { h: vec![R::ZERO; n], c: vec![R::ZERO; n] }
    }
}

/// Dropout of one step: masks are a function of (key, counter); see [`crate::rng`].
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    /// Key from `--rng-seed`.
    pub key: Key,
    /// Step counter.
    pub counter: u32,
    /// Weight drop (DropConnect on the recurrent weights, `train --weight-drop`): each entry of
    /// every layer's `W_hh` is dropped with this probability for the whole window, the kept ones
    /// scaled by 1/(1-p). 0: off, as in the reference design.
    pub weight_drop: f32,
}

impl Dropout {
    /// Dropout of one step with the given key and counter, weight drop off.
    pub fn new(key: Key, counter: u32) -> Dropout {
        Dropout { key, counter, weight_drop: 0.0 }
    }
}

/// What a forward pass measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Loss {
    /// Mean cross-entropy over the B*T positions (nats).
    pub loss: f64,
    /// Positions where the argmax equals the target.
    pub correct: u32,
    /// B*T.
    pub tokens: u32,
}

/// Everything one layer keeps from the forward pass for the backward pass.
#[derive(Clone, Debug, Default)]
struct LayerCache<R> {
    /// `[T*B, 4H]`: pre-activations, then activations (i, f, g, o); in the backward pass, dz.
    act: Vec<R>,
    /// `[(T+1)*B, H]`: block 0 holds c0, block t+1 holds c_t.
    c: Vec<R>,
    /// `[(T+1)*B, H]`: block 0 holds h0, block t+1 holds h_t.
    h: Vec<R>,
    /// `[T*B, H]`: tanh(c_t).
    tc: Vec<R>,
    /// `[T*B, H]`: dropout multipliers (0 or 1/(1-p)); empty when dropout is off.
    mask: Vec<R>,
    /// `[T*B, H]`: the layer's output h ⊙ mask (empty when dropout is off: the output is h).
    y: Vec<R>,
    /// `[H, 4H]`: weight drop's multipliers of `W_hh` (0 or 1/(1-p)) and the dropped weights
    /// `W_hh ⊙ mask` the window runs with; empty when weight drop is off.
    w_mask: Vec<R>,
    w_hh: Vec<R>,
}

/// Buffers for one window size, reused from step to step (no allocation in the hot loop).
#[derive(Clone, Debug)]
pub struct Workspace<R> {
    cfg: ModelConfig,
    b: usize,
    t: usize,
    /// `[T*B]` inputs, time-major.
    xt: Vec<u32>,
    /// `[T*B]` targets, time-major.
    yt: Vec<u32>,
    /// `[V, 4H]` per-symbol layer-0 input projection `embedding · W_ih0`.
    p0: Vec<R>,
    layers: Vec<LayerCache<R>>,
    /// `[T*B, V]` logits, time-major.
    logits: Vec<R>,
    /// `[T*B, V]` d loss / d logits.
    dlogits: Vec<R>,
    row_loss: Vec<f64>,
    row_correct: Vec<bool>,
    /// `[T*B, max(E, H)]` gradient w.r.t. the current layer's output (two, used in turn).
    dy: [Vec<R>; 2],
    /// `[B, H]` gradient reaching h_{t-1} through W_hh.
    dh_rec: Vec<R>,
    /// `[B, H]` gradient reaching c_{t-1}.
    dc: Vec<R>,
    /// `[V, 4H]` dz of layer 0 summed per input symbol.
    g0: Vec<R>,
    /// The current layer's W_hh (forward) or W_hhᵀ (backward), packed for the recurrent steps.
    panels: Panels<R>,
    /// Packed panels of [`panel_gemm`].
    gemm_scratch: Vec<R>,
    /// `[L, B, H]` d loss / d h0 of the last backward pass.
    pub dh0: Vec<R>,
    /// `[L, B, H]` d loss / d c0 of the last backward pass.
    pub dc0: Vec<R>,
}

impl<R: CpuReal> Workspace<R> {
    /// Buffers for windows of `batch x seq` tokens.
    pub fn new(cfg: &ModelConfig, batch: usize, seq: usize) -> Self {
        let (b, t, h, v) = (batch, seq, cfg.hidden, cfg.vocab);
        let n = b * t;
        let z = |len: usize| vec![R::ZERO; len];
        let layers = (0..cfg.layers)
            .map(|_| LayerCache {
                act: z(n * 4 * h),
                c: z((t + 1) * b * h),
                h: z((t + 1) * b * h),
                tc: z(n * h),
                mask: Vec::new(),
                y: Vec::new(),
                w_mask: Vec::new(),
                w_hh: Vec::new(),
            })
            .collect();
        let wide = cfg.embed.max(h);
        Workspace {
            cfg: *cfg,
            b,
            t,
            xt: vec![0; n],
            yt: vec![0; n],
            p0: z(v * 4 * h),
            layers,
            logits: z(n * v),
            dlogits: z(n * v),
            row_loss: vec![0.0; n],
            row_correct: vec![false; n],
            dy: [z(n * wide), z(n * wide)],
            dh_rec: z(b * h),
            dc: z(b * h),
            g0: z(v * 4 * h),
            panels: Panels::default(),
            gemm_scratch: Vec::new(),
            dh0: z(cfg.layers * b * h),
            dc0: z(cfg.layers * b * h),
        }
    }

    /// The bytes a workspace for `cfg` and windows of `batch x seq` holds at its largest: the
    /// buffers of [`Workspace::new`], field by field, plus what grows on first use (the dropout
    /// masks and outputs of training, the packed recurrent panels, `[H, 4H]` with H padded to
    /// the 32-wide panels, the GEMM's B panels, `[KC, 4H]` padded likewise, and with
    /// `weight_drop` each layer's `W_hh` mask and dropped copy). For refusing a run that cannot
    /// fit; [`Workspace::held_bytes`] is what a workspace holds.
    pub fn bytes(cfg: &ModelConfig, batch: usize, seq: usize, weight_drop: bool) -> f64 {
        let (b, t, h, v, l) = (batch as f64, seq as f64, cfg.hidden as f64, cfg.vocab as f64, cfg.layers as f64);
        let n = b * t;
        let wide = cfg.embed.max(cfg.hidden) as f64;
        let dropout = if cfg.dropout > 0.0 { 2.0 } else { 0.0 };
        let padded = |x: f64| (x / super::simd::PANEL as f64).ceil() * super::simd::PANEL as f64;
        // Per layer: act, c, h, tc, and with dropout mask and y.
        let per_layer = n * 4.0 * h + 2.0 * (t + 1.0) * b * h + n * h + dropout * n * h;
        let reals = l * per_layer
            + 2.0 * v * 4.0 * h // p0, g0
            + 2.0 * n * v // logits, dlogits
            + 2.0 * n * wide // dy, two in turn
            + 2.0 * b * h // dh_rec, dc
            + 2.0 * l * b * h // dh0, dc0
            + 4.0 * h * padded(h) // recurrent panels
            + padded(4.0 * h) * super::gemm::KC as f64 // GEMM panels (B has at most 4H columns)
            + if weight_drop { l * 2.0 * h * 4.0 * h } else { 0.0 }; // W_hh masks and dropped copies
        let others = 2.0 * n * 4.0 // xt, yt (u32)
            + n * 8.0 // row_loss (f64)
            + n; // row_correct
        reals * std::mem::size_of::<R>() as f64 + others
    }

    /// The bytes its buffers hold now (their capacities): what [`Workspace::bytes`] must bound.
    pub fn held_bytes(&self) -> usize {
        fn cap<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        let layers: usize = self
            .layers
            .iter()
            .map(|c| {
                cap(&c.act)
                    + cap(&c.c)
                    + cap(&c.h)
                    + cap(&c.tc)
                    + cap(&c.mask)
                    + cap(&c.y)
                    + cap(&c.w_mask)
                    + cap(&c.w_hh)
            })
            .sum();
        layers
            + cap(&self.xt)
            + cap(&self.yt)
            + cap(&self.p0)
            + cap(&self.logits)
            + cap(&self.dlogits)
            + cap(&self.row_loss)
            + cap(&self.row_correct)
            + cap(&self.dy[0])
            + cap(&self.dy[1])
            + cap(&self.dh_rec)
            + cap(&self.dc)
            + cap(&self.g0)
            + self.panels.held_bytes()
            + cap(&self.gemm_scratch)
            + cap(&self.dh0)
            + cap(&self.dc0)
    }

    /// Window size `(B, T)` the buffers were made for.
    pub fn window(&self) -> (usize, usize) {
        (self.b, self.t)
    }

    /// The last forward pass's logits, batch-major `[B, T, V]` (copied out; for tests and tools).
    pub fn logits_bt(&self) -> Vec<R> {
        let (b, t, v) = (self.b, self.t, self.cfg.vocab);
        let mut out = vec![R::ZERO; b * t * v];
        for ti in 0..t {
            for bi in 0..b {
                let src = &self.logits[(ti * b + bi) * v..][..v];
                out[(bi * t + ti) * v..][..v].copy_from_slice(src);
            }
        }
        out
    }

    /// The output of layer `l` from the last forward pass, time-major `[T*B, H]`
    /// (after dropout when dropout was on).
    pub fn layer_output(&self, l: usize) -> &[R] {
        layer_out(&self.layers[l], self.b * self.cfg.hidden)
    }
}

/// A layer's output y: h_0..h_{T-1} (blocks 1..=T of the cache) or, with dropout, h ⊙ mask.
fn layer_out<R>(cache: &LayerCache<R>, bh: usize) -> &[R] {
    if cache.mask.is_empty() { &cache.h[bh..] } else { &cache.y }
}

/// Checks a window's token ids and stores them time-major ([`crate::corpus::window_time_major`]).
fn load_window<R: CpuReal>(ws: &mut Workspace<R>, x: &[u32], y: Option<&[u32]>) -> Result<()> {
    let window = crate::model::BatchConfig { batch: ws.b, seq: ws.t };
    let yt = y.map(|_| &mut ws.yt[..]);
    crate::corpus::window_time_major(x, y, window, ws.cfg.vocab, &mut ws.xt, yt)
}

/// Runs `f` on each `width`-long row of `buf` (with its index), in parallel when there is enough
/// work. Each row is independent, so the result does not depend on the split.
fn for_rows<R: CpuReal>(buf: &mut [R], width: usize, f: impl Fn(usize, &mut [R]) + Sync + Send) {
    if buf.len() >= 1 << 15 {
        buf.par_chunks_mut(width).enumerate().for_each(|(r, row)| f(r, row));
    } else {
        buf.chunks_mut(width).enumerate().for_each(|(r, row)| f(r, row));
    }
}

fn check_params<R: CpuReal>(params: &Params<R>, ws: &Workspace<R>, state: &State<R>) -> Result<()> {
    if params.config != ws.cfg {
        return Err(Error::Shape(format!("parameters are for {:?}, the workspace for {:?}", params.config, ws.cfg)));
    }
    let n = ws.cfg.layers * ws.b * ws.cfg.hidden;
    if state.h.len() != n || state.c.len() != n {
        return Err(Error::Shape(format!(
            "state holds {} and {} values, needs layers*batch*hidden = {n}",
            state.h.len(),
            state.c.len()
        )));
    }
    Ok(())
}

/// Two disjoint mutable ranges of one buffer.
fn two_mut<R>(data: &mut [R], a: std::ops::Range<usize>, b: std::ops::Range<usize>) -> (&mut [R], &mut [R]) {
    assert!(a.end <= b.start || b.end <= a.start, "overlapping ranges");
    if a.start < b.start {
        let (lo, hi) = data.split_at_mut(b.start);
        (&mut lo[a], &mut hi[..b.len()])
    } else {
        let (lo, hi) = data.split_at_mut(a.start);
        (&mut hi[..a.len()], &mut lo[b])
    }
}

/// The input half of one LSTM layer for all positions at once (equations: [`crate::model`],
/// "LSTM cell", the input part of `z_t`).
///
/// ```text
/// Z = X·W_ih + b                 [T*B, 4H]: one GEMM for all T*B rows, before the time loop
/// layer 0: P = E·W_ih0 ([V, 4H]), Z[r] = P[x_r] + b     (per symbol: V ≪ T*B)
/// ```
fn input_forward<R: CpuReal>(params: &Params<R>, ws: &mut Workspace<R>, l: usize) {
    let cfg = ws.cfg;
    let (b, t, h) = (ws.b, ws.t, cfg.hidden);
    let g4 = 4 * h;
    let lay = &params.layout.lstm[l];
    let bias = params.get(&lay.b);
    let _sp = span("forward: input projection");
    // Z = X·W_ih + b for all positions at once.
    if l == 0 {
        // Per-symbol projection: P = embedding · W_ih0, [V, 4H]; then Z[r] = P[x_r] + b.
        let (v, e) = (cfg.vocab, cfg.embed);
        gemm(
            R::ONE,
            Mat::new(params.get(&params.layout.embedding), v, e),
            Mat::new(params.get(&lay.w_ih), e, g4),
            R::ZERO,
            MatMut::new(&mut ws.p0, v, g4),
        );
        let (p0, xt) = (&ws.p0, &ws.xt);
        for_rows(&mut ws.layers[0].act, g4, |r, row| {
            let p = &p0[xt[r] as usize * g4..][..g4];
            for ((z, &pv), &bv) in row.iter_mut().zip(p).zip(bias) {
                *z = pv + bv;
            }
        });
    } else {
        let (below, this) = ws.layers.split_at_mut(l);
        let x = layer_out(&below[l - 1], b * h);
        for_rows(&mut this[0].act, g4, |_, row| row.copy_from_slice(bias));
        let mut jobs = [(Mat::new(x, t * b, h), MatMut::new(&mut this[0].act, t * b, g4))];
        panel_gemm(&mut jobs, Mat::new(params.get(&lay.w_ih), h, g4), true, &mut ws.gemm_scratch);
    }
}

/// Backward of [`input_forward`]: the gradient for the layer below and, for layer 0, the
/// embedding and `W_ih0`. (For l > 0, `dW_ih = Xᵀ·dZ` shares one pass over dZ with `dW_hh`
/// in [`layer_backward`].) `dz: [T*B, 4H]` holds d loss / d Z.
///
/// ```text
/// l > 0:  dX = dZ · W_ihᵀ                              inverts Z = X·W_ih + b
/// l = 0:  G[v] = Σ_{r: x_r = v} dZ[r]                  inverts Z[r] = P[x_r] + b
///         dW_ih0 = Eᵀ · G,  dE = G · W_ih0ᵀ           inverts P = E·W_ih0
/// ```
fn input_backward<R: CpuReal>(
    params: &Params<R>,
    grads: &mut Params<R>,
    ws: &mut Workspace<R>,
    l: usize,
    dx: &mut [R],
) {
    let cfg = ws.cfg;
    let (b, t, h) = (ws.b, ws.t, cfg.hidden);
    let (g4, n) = (4 * h, b * t);
    let lay = &params.layout.lstm[l];
    let dz = &ws.layers[l].act[..];
    let _sp = span("backward: dX, layer 0");
    if l > 0 {
        // dX = dZ · W_ihᵀ
        let mut jobs = [(Mat::new(dz, n, g4), MatMut::new(&mut dx[..n * h], n, h))];
        panel_gemm(&mut jobs, Mat::new(params.get(&lay.w_ih), h, g4).t(), false, &mut ws.gemm_scratch);
    } else {
        let (v, e) = (cfg.vocab, cfg.embed);
        let xt = &ws.xt;
        // G[v] = Σ_{r: x_r = v} dZ[r], columns split in fixed chunks, rows summed in order.
        ws.g0.par_chunks_mut(g4).for_each(|row| row.fill(R::ZERO));
        let g0 = &mut ws.g0;
        for (r, &sym) in xt.iter().enumerate() {
            let src = &dz[r * g4..][..g4];
            for (a, &d) in g0[sym as usize * g4..][..g4].iter_mut().zip(src) {
                *a += d;
            }
        }
        let emb = params.get(&params.layout.embedding);
        gemm(
            R::ONE,
            Mat::new(emb, v, e).t(),
            Mat::new(&ws.g0, v, g4),
            R::ZERO,
            MatMut::new(grads.get_mut(&lay.w_ih), e, g4),
        );
        let w_ih = params.get(&lay.w_ih);
        gemm(
            R::ONE,
            Mat::new(&ws.g0, v, g4),
            Mat::new(w_ih, e, g4).t(),
            R::ZERO,
            MatMut::new(grads.get_mut(&params.layout.embedding), v, e),
        );
    }
}

/// The recurrent half of one LSTM layer: the time loop over the window (equations:
/// [`crate::model`], "LSTM cell"), after [`input_forward`] filled Z.
///
/// ```text
/// (h_{-1}, c_{-1}) = state[l]                       carried from the previous window
/// for t = 0 .. T-1:
///     z_t += h_{t-1}·W_hh                           one [B,H]x[H,4H] product per step
///     (c_t, h_t) = cell(z_t, c_{t-1})
/// state[l] = (h_{T-1}, c_{T-1})
/// ```
/// The time loop itself, with packed weight panels and a thread team, is
/// [`recurrent::forward`].
fn layer_forward<R: CpuReal>(
    params: &Params<R>,
    ws: &mut Workspace<R>,
    l: usize,
    state: &mut State<R>,
    dropout: Option<Dropout>,
) {
    let cfg = ws.cfg;
    let (b, t, h) = (ws.b, ws.t, cfg.hidden);
    let lay = &params.layout.lstm[l];
    let cache = &mut ws.layers[l];
    let bh = b * h;
    cache.h[..bh].copy_from_slice(&state.h[l * bh..][..bh]);
    cache.c[..bh].copy_from_slice(&state.c[l * bh..][..bh]);
    let _sp = span("forward: recurrent steps");
    weight_drop(cache, params.get(&lay.w_hh), l, dropout);
    let w_hh = if cache.w_hh.is_empty() { params.get(&lay.w_hh) } else { &cache.w_hh };
    recurrent::forward(&mut cache.act, &mut cache.h, &mut cache.c, &mut cache.tc, w_hh, &mut ws.panels, b, t, h);
    // Carry the final state to the next window.
    state.h[l * bh..][..bh].copy_from_slice(&cache.h[t * bh..]);
    state.c[l * bh..][..bh].copy_from_slice(&cache.c[t * bh..]);
}

/// Weight drop (DropConnect, as AWD-LSTM regularises its recurrent weights): layer `l` runs the
/// window with `W_hh ⊙ M`, one mask `M ∈ {0, 1/(1-p)}` per entry for all T steps, drawn from
/// (key, counter, layer) like the dropout masks. Its backward pass uses the same dropped
/// weights, and `dW_hh = M ⊙ d loss / d (W_hh ⊙ M)` ([`layer_backward`]). Training only; off
/// (and the cache empty) for evaluation or p = 0.
fn weight_drop<R: CpuReal>(cache: &mut LayerCache<R>, w: &[R], l: usize, dropout: Option<Dropout>) {
    match dropout {
        Some(d) if d.weight_drop > 0.0 => {
            let base = d.key.base(d.counter, stream::WEIGHT_DROP + l as u32);
            apply_mask(w, &mut cache.w_mask, &mut cache.w_hh, base, d.weight_drop);
        }
        _ => {
            cache.w_mask.clear();
            cache.w_hh.clear();
        }
    }
}

/// Inverted dropout's mask over `x` (dropout of a layer's output, weight drop of `W_hh`): sizes
/// `mask` and `out` to `x`, and sets `mask[i]` to 1/(1-p), or to 0 where the uniform number
/// `i` of stream `base` falls below `p`, and `out[i] = x[i] · mask[i]`. Each entry's draw is a
/// function of its index, so the parallel chunks give the same mask in any order.
fn apply_mask<R: CpuReal>(x: &[R], mask: &mut Vec<R>, out: &mut Vec<R>, base: u32, p: f32) {
    const CH: usize = 1 << 14;
    let keep = R::from_f64(1.0 / (1.0 - p as f64));
    mask.resize(x.len(), R::ZERO);
    out.resize(x.len(), R::ZERO);
    mask.par_chunks_mut(CH).zip(out.par_chunks_mut(CH)).zip(x.par_chunks(CH)).enumerate().for_each(
        |(ci, ((m, o), xv))| {
            for (j, ((m, o), &xv)) in m.iter_mut().zip(o.iter_mut()).zip(xv).enumerate() {
                *m = if uniform_at(base, (ci * CH + j) as u32) >= p { keep } else { R::ZERO };
                *o = xv * *m;
            }
        },
    );
}

/// Backward of [`layer_forward`]: BPTT through one layer (equations: [`crate::model`],
/// "BPTT"). `dh_up: [T*B, H]` holds d loss / d h from above (after
/// [`dropout_backward`]). On return `ws.layers[l].act` holds dZ, the layer's `b`, `W_hh` (and,
/// for l > 0, `W_ih`) gradients are in `grads`, and `ws.dh0`, `ws.dc0` hold d loss / d (h0, c0).
///
/// ```text
/// for t = T-1 .. 0:                                 dh_rec, dc start at 0 (truncation)
///     dz_t, dc = cell_backward(dh_up_t + dh_rec, dc)      inverts (c_t, h_t) = cell(z_t, c_{t-1})
///     dh_rec   = dz_t · W_hhᵀ                       inverts z_t += h_{t-1}·W_hh
/// dW_hh = H_prevᵀ · dZ                              one GEMM over all steps
/// db    = Σ_rows dZ                                 inverts Z = X·W_ih + b
/// l > 0: dW_ih = Xᵀ · dZ                            in the same pass as dW_hh
/// ```
/// The time loop itself is [`recurrent::backward`].
fn layer_backward<R: CpuReal>(params: &Params<R>, grads: &mut Params<R>, ws: &mut Workspace<R>, l: usize, dh_up: &[R]) {
    let cfg = ws.cfg;
    let (b, t, h) = (ws.b, ws.t, cfg.hidden);
    let (g4, bh, n) = (4 * h, b * h, b * t);
    let lay = params.layout.lstm[l].clone();
    {
        let cache = &mut ws.layers[l];
        // The weights the forward pass ran with: dropped ones under weight drop.
        let w_hh = if cache.w_hh.is_empty() { params.get(&lay.w_hh) } else { &cache.w_hh[..] };
        let _sp = span("backward: recurrent steps");
        let db = grads.get_mut(&lay.b);
        recurrent::backward(
            &mut cache.act,
            &cache.c,
            &cache.tc,
            dh_up,
            &mut ws.dh_rec,
            &mut ws.dc,
            db,
            w_hh,
            &mut ws.panels,
            b,
            t,
            h,
        );
        ws.dh0[l * bh..][..bh].copy_from_slice(&ws.dh_rec);
        ws.dc0[l * bh..][..bh].copy_from_slice(&ws.dc);
    }
    let _sp = span("backward: dW_hh, dW_ih");
    let cache = &ws.layers[l];
    let dz = &cache.act[..];
    // dW_hh = H_prevᵀ · dZ, H_prev = [h_{-1}, ..., h_{T-2}] = blocks 0..T of cache.h, and for
    // l > 0 dW_ih = Xᵀ · dZ in the same pass (dZ is packed once for both).
    let h_prev = Mat::new(&cache.h[..n * h], n, h).t();
    let (g_ih, g_hh) = two_mut(&mut grads.data, lay.w_ih.range.clone(), lay.w_hh.range.clone());
    if l > 0 {
        let x = layer_out(&ws.layers[l - 1], bh);
        let mut jobs = [(h_prev, MatMut::new(g_hh, h, g4)), (Mat::new(x, n, h).t(), MatMut::new(g_ih, h, g4))];
        panel_gemm(&mut jobs, Mat::new(dz, n, g4), false, &mut ws.gemm_scratch);
    } else {
        panel_gemm(&mut [(h_prev, MatMut::new(g_hh, h, g4))], Mat::new(dz, n, g4), false, &mut ws.gemm_scratch);
    }
    // Under weight drop that is d loss / d (W_hh ⊙ M); the chain rule through ⊙ M gives dW_hh.
    for (g, &m) in g_hh.iter_mut().zip(&cache.w_mask) {
        *g *= m;
    }
}

/// Inverted dropout on layer `l`'s output (equations: [`crate::model`], "Dropout"), training
/// only; without it the layer's output is h itself ([`layer_out`]).
///
/// ```text
/// y_t = h_t ⊙ m_t,   m ∈ {0, 1/(1-p)},  m = 0 with probability p
/// ```
fn dropout_forward<R: CpuReal>(ws: &mut Workspace<R>, l: usize, dropout: Option<Dropout>) {
    let cfg = ws.cfg;
    let (b, t, h) = (ws.b, ws.t, cfg.hidden);
    let bh = b * h;
    let cache = &mut ws.layers[l];
    let _sp = span("forward: dropout");
    match dropout {
        Some(d) if cfg.dropout > 0.0 => {
            let base = d.key.base(d.counter, stream::DROPOUT + l as u32);
            // mask index = (t*B + b)*H + j, the flat position in the time-major [T*B, H] output.
            apply_mask(&cache.h[bh..][..t * bh], &mut cache.mask, &mut cache.y, base, cfg.dropout);
        }
        _ => {
            cache.mask.clear();
            cache.y.clear();
        }
    }
}

/// Backward of [`dropout_forward`]: `dy: [T*B, H]` holds d loss / d y on entry and
/// d loss / d h on return.
///
/// ```text
/// dh_t = dy_t ⊙ m_t                                  inverts y_t = h_t ⊙ m_t
/// ```
fn dropout_backward<R: CpuReal>(ws: &Workspace<R>, l: usize, dy: &mut [R]) {
    let mask = &ws.layers[l].mask;
    if !mask.is_empty() {
        for (d, &m) in dy.iter_mut().zip(mask) {
            *d *= m;
        }
    }
}

/// Softmax cross-entropy, forward and backward at once, row by row (rows in parallel).
///
/// ```text
/// logits: [N, V], targets: [N]
/// m = max_j logits[r, j];  s = Σ_j e^(logits[r, j] - m)
/// loss_r   = -(logits[r, target] - m - ln s)            (row_loss, f64)
/// correct_r = argmax_j logits[r, j] == target
/// dlogits[r, j] = (e^(logits[r, j] - m) / s - [j == target]) / N     d mean-loss / d logits
/// ```
pub fn softmax_xent<R: CpuReal>(
    logits: &[R],
    targets: &[u32],
    v: usize,
    dlogits: &mut [R],
    row_loss: &mut [f64],
    row_correct: &mut [bool],
) {
    let n = targets.len();
    assert!(logits.len() == n * v && dlogits.len() == n * v && row_loss.len() == n && row_correct.len() == n);
    let inv_n = R::from_f64(1.0 / n as f64);
    dlogits.par_chunks_mut(v).zip(row_loss.par_iter_mut()).zip(row_correct.par_iter_mut()).enumerate().for_each(
        |(r, ((d, loss), correct))| {
            let row = &logits[r * v..][..v];
            let target = targets[r] as usize;
            let (mut best, mut arg) = (row[0], 0);
            for (j, &x) in row.iter().enumerate() {
                // Also moves off a NaN, so a NaN row never looks confident.
                if x > best || (best.to_f64().is_nan() && !x.to_f64().is_nan()) {
                    best = x;
                    arg = j;
                }
            }
            let mut sum = R::ZERO;
            for (dj, &x) in d.iter_mut().zip(row) {
                *dj = (x - best).exp();
                sum += *dj;
            }
            *loss = -((row[target] - best).to_f64() - sum.to_f64().ln());
            *correct = arg == target;
            let inv = inv_n / sum;
            for dj in d.iter_mut() {
                *dj *= inv;
            }
            d[target] -= inv_n;
        },
    );
}

/// Dense layer and softmax cross-entropy (equations: [`crate::model`], "Output").
///
/// ```text
/// logits = y_top · W_d + b_d                      [T*B, V]
/// p      = softmax(logits)
/// loss   = -(1/N) Σ_r log p[r, target_r]          N = T*B
/// dlogits = (p - onehot(target)) / N
/// ```
fn output_forward<R: CpuReal>(params: &Params<R>, ws: &mut Workspace<R>) -> Loss {
    let _sp = span("forward: dense + softmax");
    let cfg = ws.cfg;
    let (n, v, h) = (ws.b * ws.t, cfg.vocab, cfg.hidden);
    let db = params.get(&params.layout.dense_b);
    for_rows(&mut ws.logits, v, |_, row| row.copy_from_slice(db));
    let top = layer_out(&ws.layers[cfg.layers - 1], ws.b * h);
    gemm(
        R::ONE,
        Mat::new(top, n, h),
        Mat::new(params.get(&params.layout.dense_w), h, v),
        R::ONE,
        MatMut::new(&mut ws.logits, n, v),
    );
    softmax_xent(&ws.logits, &ws.yt, v, &mut ws.dlogits, &mut ws.row_loss, &mut ws.row_correct);
    Loss {
        loss: ws.row_loss.iter().sum::<f64>() / n as f64,
        correct: ws.row_correct.iter().filter(|&&c| c).count() as u32,
        tokens: n as u32,
    }
}

/// Backward of [`output_forward`] (whose softmax cross-entropy already left d loss / d logits
/// in `ws.dlogits`): the dense layer's gradients, and d loss / d y_top into `dy_top: [T*B, H]`.
///
/// ```text
/// dW_d = y_topᵀ · dlogits,  db_d = Σ_rows dlogits,  dy_top = dlogits · W_dᵀ
///                                                   inverts logits = y_top · W_d + b_d
/// ```
fn output_backward<R: CpuReal>(params: &Params<R>, grads: &mut Params<R>, ws: &Workspace<R>, dy_top: &mut [R]) {
    let cfg = ws.cfg;
    let (n, v, h) = (ws.b * ws.t, cfg.vocab, cfg.hidden);
    let lo = &params.layout;
    let _sp = span("backward: dense");
    let top = layer_out(&ws.layers[cfg.layers - 1], ws.b * h);
    gemm(
        R::ONE,
        Mat::new(top, n, h).t(),
        Mat::new(&ws.dlogits, n, v),
        R::ZERO,
        MatMut::new(grads.get_mut(&lo.dense_w), h, v),
    );
    col_sums(&ws.dlogits, n, v, grads.get_mut(&lo.dense_b));
    gemm(
        R::ONE,
        Mat::new(&ws.dlogits, n, v),
        Mat::new(params.get(&lo.dense_w), h, v).t(),
        R::ZERO,
        MatMut::new(dy_top, n, h),
    );
}

/// Forward pass over a window: returns the loss and leaves everything the backward pass needs in
/// `ws`. `x, y: [B, T]`. `state` holds (h0, c0) on entry and the final (h, c) on return.
/// `dropout`: `None` for evaluation.
pub fn forward<R: CpuReal>(
    params: &Params<R>,
    ws: &mut Workspace<R>,
    x: &[u32],
    y: &[u32],
    state: &mut State<R>,
    dropout: Option<Dropout>,
) -> Result<Loss> {
    check_params(params, ws, state)?;
    load_window(ws, x, Some(y))?;
    for l in 0..ws.cfg.layers {
        input_forward(params, ws, l);
        layer_forward(params, ws, l, state, dropout);
        dropout_forward(ws, l, dropout);
    }
    Ok(output_forward(params, ws))
}

/// Backward pass of the whole network after [`forward`]: fills `grads` with d loss / d params and
/// `ws.dh0`, `ws.dc0` with d loss / d (h0, c0). Each step inverts one step of [`forward`], in
/// reverse order.
pub fn backward<R: CpuReal>(params: &Params<R>, grads: &mut Params<R>, ws: &mut Workspace<R>) -> Result<()> {
    if grads.config != params.config {
        return Err(Error::Shape("gradient buffer is for another model".into()));
    }
    let n_h = ws.b * ws.t * ws.cfg.hidden;
    // d loss / d (output of the layer being processed) and of the one below, in turn.
    let [mut dy, mut dx] = std::mem::take(&mut ws.dy);
    output_backward(params, grads, ws, &mut dy[..n_h]);
    for l in (0..ws.cfg.layers).rev() {
        dropout_backward(ws, l, &mut dy[..n_h]);
        layer_backward(params, grads, ws, l, &dy[..n_h]);
        input_backward(params, grads, ws, l, &mut dx[..n_h]);
        std::mem::swap(&mut dy, &mut dx);
    }
    ws.dy = [dy, dx];
    Ok(())
}
