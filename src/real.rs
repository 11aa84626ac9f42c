//! The scalar type of the math: `f32` for training, `f64` for gradient checks and fixtures.
//!
//! The CPU engine is generic over [`Real`], so the gradient check runs the very code path that
//! trains, only in double precision. The trait carries what differs between the two: the GEMM
//! (`matrixmultiply::sgemm` / `dgemm`) and the elementwise LSTM cell, which `f32` runs with
//! explicit SIMD ([`crate::cpu::simd`]) and `f64` with the scalar code in this file.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar the engine can compute in.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
    + 'static
{
    /// 0
    const ZERO: Self;
    /// 1
    const ONE: Self;
    /// Name for messages ("f32").
    const NAME: &'static str;
    /// Conversion from f64 (rounding for f32).
    fn from_f64(x: f64) -> Self;
    /// Conversion to f64 (exact).
    fn to_f64(self) -> f64;
    /// e^x
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Not NaN and not infinite.
    fn is_finite(self) -> bool;

    /// `C = alpha * A B + beta * C` through `matrixmultiply` (`sgemm` or `dgemm`).
    ///
    /// # Safety
    /// The strides must describe views that lie inside the buffers the pointers point into:
    /// `A` is `m x k`, `B` is `k x n`, `C` is `m x n`; `C` must not alias `A` or `B`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );

    /// The LSTM cell forward on one row; see [`cell_forward_scalar`]. `f32` overrides this
    /// with SIMD.
    fn cell_forward(z: Gates<'_, Self>, c_prev: &[Self], c: &mut [Self], tc: &mut [Self], h: &mut [Self]) {
        cell_forward_scalar(z, c_prev, c, tc, h)
    }

    /// The LSTM cell backward on one row; see [`cell_backward_scalar`]. `f32` overrides this
    /// with SIMD.
    fn cell_backward(
        act: Gates<'_, Self>,
        c_prev: &[Self],
        tc: &[Self],
        dh_up: &[Self],
        dh_rec: &[Self],
        dc: &mut [Self],
    ) {
        cell_backward_scalar(act, c_prev, tc, dh_up, dh_rec, dc)
    }

    /// The panel kernel's block: `out[r][j] (+)= Σ_k a[r·rsa + k·csa] · panel[k·32 + j]` for
    /// every row `r` of `out` (at most 8) and `j < out[r].len() <= 32`; `panel: [K, 32]`.
    /// Accumulates into `out` when `accumulate`, else overwrites. `f32` overrides with SIMD.
    #[allow(clippy::too_many_arguments)]
    fn panel_kernel(
        a: &[Self],
        rsa: usize,
        csa: usize,
        k: usize,
        panel: &[Self],
        out: &mut [&mut [Self]],
        accumulate: bool,
    ) {
        panel_kernel_scalar(a, rsa, csa, k, panel, out, accumulate)
    }
}

/// Width of a packed weight panel in the recurrent kernels (columns).
pub const PANEL: usize = 32;

/// The scalar recurrent block kernel (see [`Real::panel_kernel`]).
#[allow(clippy::too_many_arguments)]
pub fn panel_kernel_scalar<R: Real>(
    a: &[R],
    rsa: usize,
    csa: usize,
    k: usize,
    panel: &[R],
    out: &mut [&mut [R]],
    accumulate: bool,
) {
    for (r, row) in out.iter_mut().enumerate() {
        let mut acc = [R::ZERO; PANEL];
        for (kk, w) in panel.chunks_exact(PANEL).take(k).enumerate() {
            let av = a[r * rsa + kk * csa];
            for (x, &wv) in acc.iter_mut().zip(w) {
                *x += av * wv;
            }
        }
        for (o, &x) in row.iter_mut().zip(&acc) {
            *o = if accumulate { *o + x } else { x };
        }
    }
}

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

/// LSTM cell forward for one batch row, or a block of its units (scalar reference).
///
/// ```text
/// z    : [4H] pre-activations (as four gate slices) x·W_ih + h_prev·W_hh + b; on return the activations
///        i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o)
/// c    = f ⊙ c_prev + i ⊙ g          c_prev, c : [H]
/// tc   = tanh(c)                      (kept for the backward pass)
/// h    = o ⊙ tc
/// ```
#[inline]
pub fn cell_forward_scalar<R: Real>(z: Gates<'_, R>, c_prev: &[R], c: &mut [R], tc: &mut [R], h: &mut [R]) {
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

/// LSTM cell backward for one batch row (scalar reference). Inverts [`cell_forward_scalar`]:
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
pub fn cell_backward_scalar<R: Real>(
    act: Gates<'_, R>,
    c_prev: &[R],
    tc: &[R],
    dh_up: &[R],
    dh_rec: &[R],
    dc: &mut [R],
) {
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

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAME: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract of `gemm_raw`.
        unsafe { matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAME: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn ln(self) -> Self {
        f32::ln(self)
    }
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract of `gemm_raw`.
        unsafe { matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
    fn cell_forward(z: Gates<'_, f32>, c_prev: &[f32], c: &mut [f32], tc: &mut [f32], h: &mut [f32]) {
        crate::cpu::simd::cell_forward(crate::cpu::simd::isa(), z, c_prev, c, tc, h)
    }
    fn cell_backward(act: Gates<'_, f32>, c_prev: &[f32], tc: &[f32], dh_up: &[f32], dh_rec: &[f32], dc: &mut [f32]) {
        crate::cpu::simd::cell_backward(crate::cpu::simd::isa(), act, c_prev, tc, dh_up, dh_rec, dc)
    }
    fn panel_kernel(
        a: &[f32],
        rsa: usize,
        csa: usize,
        k: usize,
        panel: &[f32],
        out: &mut [&mut [f32]],
        accumulate: bool,
    ) {
        crate::cpu::simd::panel_kernel(crate::cpu::simd::isa(), a, rsa, csa, k, panel, out, accumulate)
    }
}
