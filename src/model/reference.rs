//! The readable reference: the LSTM exactly as the equations of [`crate::model`] read, one gate
//! at a time, one time step at a time, with `ndarray` and no fusion, no SIMD, no per-symbol
//! tricks, no threads, no dropout. It holds a plain forward AND a plain backward:
//!
//! - [`forward`]: logits and final state of a window.
//! - [`backward`]: the same forward keeping every step, the softmax cross-entropy loss, and
//!   hand-written backpropagation through time: the gradient of every parameter and of the
//!   initial state (h0, c0). Every backward line quotes the forward line it inverts.
//!
//! They exist to be read and to hold the fast engine honest in tests (`tests/engine.rs`,
//! `tests/sampler.rs`). The fast versions of the same math are [`crate::cpu::network`] (the
//! whole pass: one input-projection GEMM for all positions, the per-symbol projection of layer
//! 0, dense and softmax) and [`crate::cpu::recurrent`] (the BPTT time loop, with the recurrent
//! weights packed into panels and each step split over a thread team).

use super::cell::sigmoid;
use super::{Params, TensorRef};
use crate::real::Real;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, LinalgScalar, s};

/// What the reference forward pass returns.
#[derive(Clone, Debug)]
pub struct ReferenceOutput<R> {
    /// `[B, T, V]` logits.
    pub logits: Vec<R>,
    /// `[L, B, H]` final hidden state.
    pub h: Vec<R>,
    /// `[L, B, H]` final cell state.
    pub c: Vec<R>,
}

fn view2<R>(p: &[R], rows: usize, cols: usize) -> ArrayView2<'_, R> {
    ArrayView2::from_shape((rows, cols), p).expect("parameter shape")
}

/// One LSTM layer's weights, viewed inside the flat parameter buffer.
struct Lstm<'a, R> {
    /// `[in, 4H]`, gate columns i, f, g, o.
    w_ih: ArrayView2<'a, R>,
    /// `[H, 4H]`
    w_hh: ArrayView2<'a, R>,
    /// `[4H]`
    b: ArrayView1<'a, R>,
    /// H
    hd: usize,
}

impl<'a, R: Real> Lstm<'a, R> {
    fn new(params: &'a Params<R>, l: usize) -> Self {
        let (cfg, lay) = (params.config, &params.layout.lstm[l]);
        let hd = cfg.hidden;
        Lstm {
            w_ih: view2(params.get(&lay.w_ih), cfg.layer_input(l), 4 * hd),
            w_hh: view2(params.get(&lay.w_hh), hd, 4 * hd),
            b: ArrayView1::from(params.get(&lay.b)),
            hd,
        }
    }

    /// Gate `k`'s own weights and bias (k = 0, 1, 2, 3 for i, f, g, o): columns `[k*H, (k+1)*H)`,
    /// `(W_ih_k: [in, H], W_hh_k: [H, H], b_k: [H])`.
    fn gate(&self, k: usize) -> (ArrayView2<'_, R>, ArrayView2<'_, R>, ArrayView1<'_, R>) {
        let cols = k * self.hd..(k + 1) * self.hd;
        (self.w_ih.slice(s![.., cols.clone()]), self.w_hh.slice(s![.., cols.clone()]), self.b.slice(s![cols]))
    }
}

/// Everything one step of one layer computed: its inputs and every intermediate the backward
/// pass needs. All `[B, H]` except `x: [B, in]`.
struct Step<R> {
    /// x_t, the layer's input (embedding rows for layer 0, h_t of the layer below otherwise).
    x: Array2<R>,
    /// h_{t-1}
    h_prev: Array2<R>,
    /// c_{t-1}
    c_prev: Array2<R>,
    /// i = σ(z_i), input gate
    i: Array2<R>,
    /// f = σ(z_f), forget gate
    f: Array2<R>,
    /// g = tanh(z_g), cell candidate
    g: Array2<R>,
    /// o = σ(z_o), output gate
    o: Array2<R>,
    /// c_t
    c: Array2<R>,
    /// tanh(c_t)
    tc: Array2<R>,
    /// h_t
    h: Array2<R>,
}

/// One time step of one layer (equations: [`crate::model`], "LSTM cell"), one gate at a time.
fn step<R: Real + LinalgScalar>(lstm: &Lstm<'_, R>, x: Array2<R>, h_prev: Array2<R>, c_prev: Array2<R>) -> Step<R> {
    // z_k = x_t·W_ih_k + h_{t-1}·W_hh_k + b_k     [B, H], gate k's quarter of z_t
    let pre = |k: usize| -> Array2<R> {
        let (wx, wh, b) = lstm.gate(k);
        x.dot(&wx) + h_prev.dot(&wh) + b
    };
    let i = pre(0).mapv(sigmoid);
    let f = pre(1).mapv(sigmoid);
    let g = pre(2).mapv(|z| z.tanh());
    let o = pre(3).mapv(sigmoid);
    let c = &f * &c_prev + &i * &g;
    let tc = c.mapv(|z| z.tanh());
    let h = &o * &tc;
    Step { x, h_prev, c_prev, i, f, g, o, c, tc, h }
}

/// The forward pass with everything kept: `steps[l][t]`, the logits of each step
/// (`logits[t]: [B, V]`), and the final state (`[L, B, H]` each).
struct Trace<R> {
    steps: Vec<Vec<Step<R>>>,
    logits: Vec<Array2<R>>,
    h: Vec<R>,
    c: Vec<R>,
}

/// Runs the forward pass without dropout and keeps every step. `x: [B, T]`, `h0, c0: [L, B, H]`.
fn trace<R: Real + LinalgScalar>(params: &Params<R>, x: &[u32], batch: usize, h0: &[R], c0: &[R]) -> Trace<R> {
    let cfg = params.config;
    let (v, e, hd) = (cfg.vocab, cfg.embed, cfg.hidden);
    let t_len = x.len() / batch;
    let lo = &params.layout;
    let emb = view2(params.get(&lo.embedding), v, e);
    // inputs[t]: [B, in] for the current layer; starts as the embedding rows of the tokens.
    let mut inputs: Vec<Array2<R>> =
        (0..t_len).map(|t| Array2::from_shape_fn((batch, e), |(b, j)| emb[[x[b * t_len + t] as usize, j]])).collect();
    let (mut steps, mut h_out, mut c_out) = (Vec::new(), Vec::new(), Vec::new());
    for l in 0..cfg.layers {
        let lstm = Lstm::new(params, l);
        let mut h = Array2::from_shape_vec((batch, hd), h0[l * batch * hd..][..batch * hd].to_vec()).expect("h0");
        let mut c = Array2::from_shape_vec((batch, hd), c0[l * batch * hd..][..batch * hd].to_vec()).expect("c0");
        let mut layer = Vec::with_capacity(t_len);
        for x_t in inputs {
            let st = step(&lstm, x_t, h, c);
            (h, c) = (st.h.clone(), st.c.clone());
            layer.push(st);
        }
        // The next layer's inputs are this layer's outputs h_t.
        inputs = layer.iter().map(|st| st.h.clone()).collect();
        steps.push(layer);
        h_out.extend(h.iter().copied());
        c_out.extend(c.iter().copied());
    }
    let w = view2(params.get(&lo.dense_w), hd, v);
    let b: Array1<R> = ArrayView1::from(params.get(&lo.dense_b)).to_owned();
    // logits_t = y_t · W_d + b_d     [B, V]
    let logits = inputs.iter().map(|y| y.dot(&w) + &b).collect();
    Trace { steps, logits, h: h_out, c: c_out }
}

/// Forward pass without dropout. `x: [B, T]` token ids, `h0, c0: [L, B, H]`.
pub fn forward<R: Real + LinalgScalar>(
    params: &Params<R>,
    x: &[u32],
    batch: usize,
    h0: &[R],
    c0: &[R],
) -> ReferenceOutput<R> {
    let v = params.config.vocab;
    let t_len = x.len() / batch;
    let tr = trace(params, x, batch, h0, c0);
    let mut logits = vec![R::ZERO; batch * t_len * v];
    for (t, z) in tr.logits.iter().enumerate() {
        for bi in 0..batch {
            for j in 0..v {
                logits[(bi * t_len + t) * v + j] = z[[bi, j]];
            }
        }
    }
    ReferenceOutput { logits, h: tr.h, c: tr.c }
}

/// What the reference backward pass returns.
#[derive(Clone, Debug)]
pub struct ReferenceGradients<R> {
    /// Mean softmax cross-entropy over the B·T positions (nats).
    pub loss: f64,
    /// d loss / d every parameter, laid out like the parameters (and like the engine's gradients).
    pub grads: Params<R>,
    /// `[L, B, H]` d loss / d h0.
    pub dh0: Vec<R>,
    /// `[L, B, H]` d loss / d c0.
    pub dc0: Vec<R>,
}

/// Copies a gradient held as an array into its tensor of the flat gradient buffer.
fn store<'a, R: Copy + Default + 'a>(grads: &mut Params<R>, t: &TensorRef, a: impl IntoIterator<Item = &'a R>) {
    let dst = grads.get_mut(t);
    let mut n = 0;
    for (d, &x) in dst.iter_mut().zip(a) {
        *d = x;
        n += 1;
    }
    assert_eq!(n, t.len(), "{}: gradient shape", t.name);
}

/// Loss and gradients without dropout, by plain backpropagation through time (equations:
/// [`crate::model`], "Backward"). `x, y: [B, T]` inputs and targets, `h0, c0: [L, B, H]`.
///
/// Runs [`forward`]'s computation keeping every step, then goes backward: softmax
/// cross-entropy and the dense layer one step at a time, then each layer from the top down,
/// t = T-1 down to 0, gate by gate. Each backward line quotes the forward line it inverts.
pub fn backward<R: Real + LinalgScalar>(
    params: &Params<R>,
    x: &[u32],
    y: &[u32],
    batch: usize,
    h0: &[R],
    c0: &[R],
) -> ReferenceGradients<R> {
    let cfg = params.config;
    let (v, e, hd, layers) = (cfg.vocab, cfg.embed, cfg.hidden, cfg.layers);
    let t_len = x.len() / batch;
    assert_eq!(y.len(), x.len(), "one target per input");
    let n = batch * t_len;
    let lo = &params.layout;
    let tr = trace(params, x, batch, h0, c0);
    let mut grads = Params::zeros(&cfg);

    // ---- Softmax cross-entropy and the dense layer, one step at a time. ----
    let w_d = view2(params.get(&lo.dense_w), hd, v);
    let inv_n = R::from_f64(1.0 / n as f64);
    let mut loss = 0.0f64;
    let mut dw_d = Array2::<R>::zeros((hd, v));
    let mut db_d = Array1::<R>::zeros(v);
    // dy[t]: [B, H] d loss / d (output of the layer being worked on) at step t; the top layer's first.
    let mut dy: Vec<Array2<R>> = Vec::with_capacity(t_len);
    for (t, z) in tr.logits.iter().enumerate() {
        let mut dlogits = Array2::<R>::zeros((batch, v)); // [B, V]
        for bi in 0..batch {
            let row = z.row(bi); // [V]
            let target = y[bi * t_len + t] as usize;
            // p = softmax(row) = e^(row - m) / s, shifted by the row's max m (same p, no overflow)
            let m = row.fold(row[0], |m, &a| if a > m { a } else { m });
            let ex = row.mapv(|a| (a - m).exp());
            let s = ex.sum();
            // loss_r = -log p[target] = -(row[target] - m - ln s)
            loss -= (row[target] - m).to_f64() - s.to_f64().ln();
            // from  loss = -(1/N) Σ_r log p[r, target_r]:   dlogits_r = (p_r - onehot(target_r)) / N
            for j in 0..v {
                dlogits[[bi, j]] = ex[j] / s * inv_n;
            }
            dlogits[[bi, target]] -= inv_n;
        }
        let y_top = &tr.steps[layers - 1][t].h; // [B, H]
        // from  logits_t = y_t · W_d + b_d:
        dw_d += &y_top.t().dot(&dlogits); //       [H, V] += [H, B]·[B, V]
        db_d += &dlogits.sum_axis(Axis(0)); //      [V]
        dy.push(dlogits.dot(&w_d.t())); //          dy_t = dlogits_t · W_dᵀ    [B, H]
    }
    loss /= n as f64;
    store(&mut grads, &lo.dense_w, &dw_d);
    store(&mut grads, &lo.dense_b, &db_d);

    // ---- The LSTM layers, top down; in each, t = T-1 down to 0. ----
    let mut dh0 = vec![R::ZERO; layers * batch * hd];
    let mut dc0 = vec![R::ZERO; layers * batch * hd];
    let mut d_emb = Array2::<R>::zeros((v, e));
    for l in (0..layers).rev() {
        let lstm = Lstm::new(params, l);
        let n_in = cfg.layer_input(l);
        let mut dw_ih = Array2::<R>::zeros((n_in, 4 * hd));
        let mut dw_hh = Array2::<R>::zeros((hd, 4 * hd));
        let mut db = Array1::<R>::zeros(4 * hd);
        // dx[t]: [B, in] d loss / d x_t, this layer's input at step t (the dy of the layer below).
        let mut dx: Vec<Array2<R>> = vec![Array2::zeros((batch, n_in)); t_len];
        // What step t+1 sends back to h_t and c_t; nothing after the window's last step
        // (truncated BPTT).
        let mut dh_next = Array2::<R>::zeros((batch, hd)); // [B, H]
        let mut dc_next = Array2::<R>::zeros((batch, hd)); // [B, H]
        for t in (0..t_len).rev() {
            // Everything in this step is [B, H] unless marked.
            let st = &tr.steps[l][t];
            // from  y_t = h_t  and  z_{t+1} = x_{t+1}·W_ih + h_t·W_hh + b:  h_t feeds both, so their
            // gradients add (dy_t from the layer above or the dense layer, dh_next from step t+1)
            let dh = &dy[t] + &dh_next;
            // from  h_t = o ⊙ tanh(c_t)
            let d_o = &dh * &st.tc;
            let d_tc = &dh * &st.o;
            // from  tanh(c_t)  and  c_{t+1} = f_{t+1} ⊙ c_t + i_{t+1} ⊙ g_{t+1}  (dc_next, from step t+1)
            let dc = &d_tc * &st.tc.mapv(|a| R::ONE - a * a) + &dc_next;
            // from  c_t = f ⊙ c_{t-1} + i ⊙ g
            let d_f = &dc * &st.c_prev;
            let d_i = &dc * &st.g;
            let d_g = &dc * &st.i;
            dc_next = &dc * &st.f; // d c_{t-1}, carried to step t-1
            // from  i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o);   σ' = σ(1-σ), tanh' = 1 - tanh²
            let dz_i = d_i * &st.i.mapv(|a| a * (R::ONE - a));
            let dz_f = d_f * &st.f.mapv(|a| a * (R::ONE - a));
            let dz_g = d_g * &st.g.mapv(|a| R::ONE - a * a);
            let dz_o = d_o * &st.o.mapv(|a| a * (R::ONE - a));
            // from  z_k = x_t·W_ih_k + h_{t-1}·W_hh_k + b_k, gate by gate (columns [k*H, (k+1)*H))
            let mut dh_prev = Array2::<R>::zeros((batch, hd)); // [B, H]
            for (k, dz) in [dz_i, dz_f, dz_g, dz_o].iter().enumerate() {
                let cols = k * hd..(k + 1) * hd;
                let (w_ih_k, w_hh_k, _) = lstm.gate(k);
                let mut dw_ih_k = dw_ih.slice_mut(s![.., cols.clone()]);
                dw_ih_k += &st.x.t().dot(dz); //          [in, H] += [in, B]·[B, H]
                let mut dw_hh_k = dw_hh.slice_mut(s![.., cols.clone()]);
                dw_hh_k += &st.h_prev.t().dot(dz); //     [H, H]  += [H, B]·[B, H]
                let mut db_k = db.slice_mut(s![cols]);
                db_k += &dz.sum_axis(Axis(0)); //         [H]
                dx[t] += &dz.dot(&w_ih_k.t()); //        [B, in] += [B, H]·[H, in]
                dh_prev += &dz.dot(&w_hh_k.t()); //      [B, H]  += [B, H]·[H, H]
            }
            dh_next = dh_prev; // d h_{t-1}, carried to step t-1
        }
        // What reached h_{-1} and c_{-1} is the gradient of the initial state.
        let bh = batch * hd;
        dh0[l * bh..][..bh].iter_mut().zip(&dh_next).for_each(|(d, &a)| *d = a);
        dc0[l * bh..][..bh].iter_mut().zip(&dc_next).for_each(|(d, &a)| *d = a);
        let lay = &lo.lstm[l];
        store(&mut grads, &lay.w_ih, &dw_ih);
        store(&mut grads, &lay.w_hh, &dw_hh);
        store(&mut grads, &lay.b, &db);
        if l > 0 {
            // from  x_t = h_t of the layer below (its y_t): dx is that layer's dy
            dy = dx;
        } else {
            // from  x_t = E[token_t], row by row: each position's dx row is added to its token's
            // row of dE (a plain scatter-add, one position at a time)
            for (t, dx_t) in dx.iter().enumerate() {
                for bi in 0..batch {
                    let tok = x[bi * t_len + t] as usize;
                    let mut d_row = d_emb.row_mut(tok);
                    d_row += &dx_t.row(bi);
                }
            }
        }
    }
    store(&mut grads, &lo.embedding, &d_emb);
    ReferenceGradients { loss, grads, dh0, dc0 }
}
