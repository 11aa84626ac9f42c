//! What the fast CPU engine needs of its scalar type beyond arithmetic: a GEMM, the LSTM cell
//! and the recurrent panel kernel. `f64` (gradient checks, fixtures) runs them as plain scalar
//! code; `f32` (training, sampling) runs the SIMD versions of [`super::simd`] for the instruction
//! set this CPU has.

use super::simd::{self, panel_kernel_scalar};
use crate::model::cell::{self, Gates};
use crate::real::Real;

/// A [`Real`] the CPU engine can compute in.
pub trait CpuReal: Real {
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

    /// The LSTM cell forward on one row; see [`cell::forward`]. `f32` overrides this
    /// with SIMD.
    fn cell_forward(z: Gates<'_, Self>, c_prev: &[Self], c: &mut [Self], tc: &mut [Self], h: &mut [Self]) {
        cell::forward(z, c_prev, c, tc, h)
    }

    /// The LSTM cell backward on one row; see [`cell::backward`]. `f32` overrides this
    /// with SIMD.
    fn cell_backward(
        act: Gates<'_, Self>,
        c_prev: &[Self],
        tc: &[Self],
        dh_up: &[Self],
        dh_rec: &[Self],
        dc: &mut [Self],
    ) {
        cell::backward(act, c_prev, tc, dh_up, dh_rec, dc)
    }

    /// The panel kernel's block: `out[r][j] (+)= Σ_k a[r·rsa + k·csa] · panel[k·32 + j]` for
    /// every row `r` of `out` and `j < out[r].len() <= 32`; `panel: [K, 32]`.
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
        panel_kernel_scalar(a, rsa, csa, k, panel, Self::panel_strip(), out, accumulate)
    }

    /// Columns per contiguous strip of a packed panel ([`simd::panel_strip`]): every packer
    /// places element `(kk, j)` at [`simd::panel_at`]. `f32` asks for the instruction set in use.
    fn panel_strip() -> usize {
        simd::PANEL
    }

    /// Rows per [`CpuReal::panel_kernel`] call that fill whole register tiles (for callers that
    /// block rows). `f32` asks [`simd::panel_rows`] for the instruction set in use.
    fn panel_rows() -> usize {
        16
    }
}

/// `gemm_raw` through the `matrixmultiply` routine of the type's precision.
macro_rules! gemm_raw {
    ($gemm:path) => {
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
            unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
        }
    };
}

impl CpuReal for f64 {
    gemm_raw!(matrixmultiply::dgemm);
}

impl CpuReal for f32 {
    gemm_raw!(matrixmultiply::sgemm);
    fn cell_forward(z: Gates<'_, f32>, c_prev: &[f32], c: &mut [f32], tc: &mut [f32], h: &mut [f32]) {
        simd::cell_forward(simd::isa(), z, c_prev, c, tc, h)
    }
    fn cell_backward(act: Gates<'_, f32>, c_prev: &[f32], tc: &[f32], dh_up: &[f32], dh_rec: &[f32], dc: &mut [f32]) {
        simd::cell_backward(simd::isa(), act, c_prev, tc, dh_up, dh_rec, dc)
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
        simd::panel_kernel(simd::isa(), a, rsa, csa, k, panel, out, accumulate)
    }
    fn panel_rows() -> usize {
        simd::panel_rows(simd::isa())
    }
    fn panel_strip() -> usize {
        simd::panel_strip(simd::isa())
    }
}
