//! The readable reference forward pass: the LSTM exactly as the equations read, one gate at a
//! time, one time step at a time, with `ndarray` and no fusion, no SIMD, no per-symbol tricks.
//! It exists to be read and to hold the fast engine ([`crate::cpu`]) honest in tests.

use super::Params;
use crate::model::cell::sigmoid;
use crate::real::Real;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, LinalgScalar, s};

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

/// Forward pass without dropout. `x: [B, T]` token ids, `h0, c0: [L, B, H]`.
pub fn forward<R: Real + LinalgScalar>(
    params: &Params<R>,
    x: &[u32],
    batch: usize,
    h0: &[R],
    c0: &[R],
) -> ReferenceOutput<R> {
    let cfg = params.config;
    let (v, e, hd) = (cfg.vocab, cfg.embed, cfg.hidden);
    let t_len = x.len() / batch;
    let lo = &params.layout;
    let emb = view2(params.get(&lo.embedding), v, e);
    // inputs[t]: [B, in] for the current layer; starts as the embedding rows of the tokens.
    let mut inputs: Vec<Array2<R>> =
        (0..t_len).map(|t| Array2::from_shape_fn((batch, e), |(b, j)| emb[[x[b * t_len + t] as usize, j]])).collect();
    let (mut h_out, mut c_out) = (Vec::new(), Vec::new());
    for (l, lay) in lo.lstm.iter().enumerate() {
        let n_in = cfg.layer_input(l);
        let w_ih = view2(params.get(&lay.w_ih), n_in, 4 * hd);
        let w_hh = view2(params.get(&lay.w_hh), hd, 4 * hd);
        let bias = ArrayView1::from(params.get(&lay.b));
        // The four gates' own weight matrices, bias vectors: columns [k*H, (k+1)*H).
        let gate = |k: usize| {
            (
                w_ih.slice(s![.., k * hd..(k + 1) * hd]),
                w_hh.slice(s![.., k * hd..(k + 1) * hd]),
                bias.slice(s![k * hd..(k + 1) * hd]),
            )
        };
        let (gi, gf, gg, go) = (gate(0), gate(1), gate(2), gate(3));
        let mut h = Array2::from_shape_vec((batch, hd), h0[l * batch * hd..][..batch * hd].to_vec()).expect("h0");
        let mut c = Array2::from_shape_vec((batch, hd), c0[l * batch * hd..][..batch * hd].to_vec()).expect("c0");
        for x_t in inputs.iter_mut() {
            let pre = |(wx, wh, b): &(ArrayView2<R>, ArrayView2<R>, ArrayView1<R>)| -> Array2<R> {
                x_t.dot(wx) + h.dot(wh) + b
            };
            let i = pre(&gi).mapv(sigmoid);
            let f = pre(&gf).mapv(sigmoid);
            let g = pre(&gg).mapv(|z| z.tanh());
            let o = pre(&go).mapv(sigmoid);
            c = &f * &c + &i * &g;
            h = &o * &c.mapv(|z| z.tanh());
            *x_t = h.clone();
        }
        h_out.extend(h.iter().copied());
        c_out.extend(c.iter().copied());
    }
    let w = view2(params.get(&lo.dense_w), hd, v);
    let b: Array1<R> = ArrayView1::from(params.get(&lo.dense_b)).to_owned();
    let mut logits = vec![R::ZERO; batch * t_len * v];
    for (t, y) in inputs.iter().enumerate() {
        let z = y.dot(&w) + &b;
        for bi in 0..batch {
            for j in 0..v {
                logits[(bi * t_len + t) * v + j] = z[[bi, j]];
            }
        }
    }
    ReferenceOutput { logits, h: h_out, c: c_out }
}
