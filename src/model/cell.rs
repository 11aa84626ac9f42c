//! The LSTM cell's math, scalar and dependency-free: the four gates, the forward step and, right
//! beside it, the backward step that inverts it, line by line.
//!
//! This is the second stop of the reading path (after the equation sheet in [`crate::model`]).
//! The same equations, applied to whole sequences one gate at a time, are
//! [`crate::model::reference`] (a plain forward and a plain BPTT backward); the fast engine runs
//! these functions for `f64` and vector versions of them for `f32` ([`crate::cpu::simd`]).

use crate::real::Real;

/// The four gate slices (i, f, g, o) of one batch row, each `[n]`: the whole row of a `[4H]`
/// pre-activation vector ([`Gates::split`]), or a block of hidden units of it.
#[derive(Debug)]
pub struct Gates<'a, R> {
    /// Input gate.
    pub i: &'a mut [R],
    /// Forget gate.
    pub f: &'a mut [R],
    /// Cell candidate.
    pub g: &'a mut [R],
    /// Output gate.
    pub o: &'a mut [R],
}

impl<'a, R> Gates<'a, R> {
    /// Splits a contiguous `[4H]` row (gate order i, f, g, o) into its gates.
    pub fn split(z: &'a mut [R]) -> Self {
        let hd = z.len() / 4;
        let (i, rest) = z.split_at_mut(hd);
        let (f, rest) = rest.split_at_mut(hd);
        let (g, o) = rest.split_at_mut(hd);
        Gates { i, f, g, o: &mut o[..hd] }
    }

    /// Units per gate.
    pub fn len(&self) -> usize {
        self.i.len()
    }

    /// True when the gates hold no unit.
    pub fn is_empty(&self) -> bool {
        self.i.is_empty()
    }
}

/// Logistic sigmoid 1 / (1 + e^-x), written so that it never overflows.
#[inline(always)]
pub fn sigmoid<R: Real>(x: R) -> R {
    if x >= R::ZERO {
        R::ONE / (R::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (R::ONE + e)
    }
}

/// LSTM cell forward for one batch row, or a block of its units.
///
/// ```text
/// z    : [4H] pre-activations (as four gate slices) x·W_ih + h_prev·W_hh + b; on return the activations
///        i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o)
/// c    = f ⊙ c_prev + i ⊙ g          c_prev, c : [H]
/// tc   = tanh(c)                      (kept for the backward pass)
/// h    = o ⊙ tc
/// ```
#[inline]
pub fn forward<R: Real>(z: Gates<'_, R>, c_prev: &[R], c: &mut [R], tc: &mut [R], h: &mut [R]) {
    let Gates { i: zi, f: zf, g: zg, o: zo } = z;
    for j in 0..c.len() {
        let i = sigmoid(zi[j]);
        let f = sigmoid(zf[j]);
        let g = zg[j].tanh();
        let o = sigmoid(zo[j]);
        let cj = f * c_prev[j] + i * g;
        let t = cj.tanh();
        zi[j] = i;
        zf[j] = f;
        zg[j] = g;
        zo[j] = o;
        c[j] = cj;
        tc[j] = t;
        h[j] = o * t;
    }
}

/// LSTM cell backward for one batch row, or a block of its units. Inverts [`forward`]:
///
/// ```text
/// dh     = dh_up + dh_rec                  gradient reaching h_t (from above, from step t+1)
/// do     = dh ⊙ tc                         from  h = o ⊙ tc
/// dc    += dh ⊙ o ⊙ (1 - tc²)              from  tc = tanh(c); dc arrives holding dc_{t+1}·f_{t+1}
/// di     = dc ⊙ g,  dg = dc ⊙ i            from  c = f ⊙ c_prev + i ⊙ g
/// df     = dc ⊙ c_prev
/// dz_i   = di ⊙ i(1-i),  dz_f = df ⊙ f(1-f),  dz_g = dg ⊙ (1-g²),  dz_o = do ⊙ o(1-o)
/// dc_prev = dc ⊙ f                         (returned in `dc`, carried to step t-1)
/// ```
/// `act` holds (i, f, g, o) on entry and (dz_i, dz_f, dz_g, dz_o) on return.
#[inline]
pub fn backward<R: Real>(act: Gates<'_, R>, c_prev: &[R], tc: &[R], dh_up: &[R], dh_rec: &[R], dc: &mut [R]) {
    let Gates { i: ai, f: af, g: ag, o: ao } = act;
    for j in 0..dc.len() {
        let (i, f, g, o) = (ai[j], af[j], ag[j], ao[j]);
        let dh = dh_up[j] + dh_rec[j];
        let t = tc[j];
        let dct = dc[j] + dh * o * (R::ONE - t * t);
        ai[j] = dct * g * i * (R::ONE - i);
        af[j] = dct * c_prev[j] * f * (R::ONE - f);
        ag[j] = dct * i * (R::ONE - g * g);
        ao[j] = dh * t * o * (R::ONE - o);
        dc[j] = dct * f;
    }
}
