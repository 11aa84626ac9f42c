//! Explicit SIMD for the elementwise LSTM math: sigmoid, tanh, the c/h update and their
//! derivatives, and the recurrent panel kernel, with runtime feature detection (AVX-512F,
//! AVX2+FMA), a portable path for every other CPU, and a scalar reference.
//!
//! The vector kernels are written once (the `kernels!` macro) over a handful of primitive
//! operations that each instruction set defines (`avx2`, `avx512` modules from intrinsics; the
//! `portable` module from 8-lane arrays the compiler vectorizes for its target, NEON on
//! aarch64); the scalar path is [`crate::model::cell::forward`] and
//! [`crate::model::cell::backward`], which also serve `f64`. Tests hold every other path
//! against the scalar path.
//!
//! Approximations (f32): `exp` is Cephes' `expf` (range reduction by ln 2 split in two parts and
//! a degree-5 polynomial, about 1 ulp); `tanh` is a [13/6] rational approximation clamped at
//! |x| = 7.9053 (beyond which tanh rounds to ±1 in f32); `sigmoid(x) = 1 / (1 + exp(-x))` with
//! `exp`'s argument clamped to [-87.3, 88.4], so no input (even ±inf) makes NaN or Inf.

use crate::model::cell::{self, Gates};
use std::sync::OnceLock;

/// An instruction set the elementwise kernels can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Element-at-a-time code (libm's exp and tanh): the readable reference every other path
    /// is tested against; used only when `FOLKLSTM_SIMD=scalar` asks for it.
    Scalar,
    /// 8-lane blocks in plain Rust (`[f32; 8]` arrays, `mul_add` where the target has FMA, no
    /// bounds checks in the inner loops) that the compiler vectorizes for whatever it targets:
    /// SSE2 or AVX2 on x86-64 (per `-C target-cpu`), NEON on aarch64. The default wherever no
    /// hand-written path applies (Apple Silicon, ARM servers, x86 without AVX2).
    Portable,
    /// 8 lanes, AVX2 + FMA.
    Avx2,
    /// 16 lanes, AVX-512F.
    Avx512,
}

impl Isa {
    /// Lower-case name for messages and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run `self`.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar | Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every instruction set this CPU can run, scalar first.
    pub fn all_available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Portable, Isa::Avx2, Isa::Avx512].into_iter().filter(|i| i.available()).collect()
    }
}

/// The instruction set the engine uses: the best available, or a lower one named by the
/// environment variable `FOLKLSTM_SIMD` (`scalar`, `portable`, `avx2`, `avx512`), read once.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let best = *Isa::all_available().last().unwrap_or(&Isa::Scalar);
        match std::env::var("FOLKLSTM_SIMD").ok().as_deref() {
            Some("scalar") => Isa::Scalar,
            Some("portable") => Isa::Portable,
            Some("avx2") if Isa::Avx2.available() => Isa::Avx2,
            Some("avx512") if Isa::Avx512.available() => Isa::Avx512,
            _ => best,
        }
    })
}

fn check_cell(hd: usize, gates: &[usize], others: &[usize]) {
    assert!(gates.iter().chain(others).all(|&n| n == hd), "cell kernel: inconsistent lengths");
}

/// LSTM cell forward on one row (or a block of its units) with instruction set `isa` (see
/// [`crate::model::cell::forward`] for the equations). Panics if `isa` is not available
/// on this CPU or the slice lengths disagree (both are programming errors).
pub fn cell_forward(isa: Isa, z: Gates<'_, f32>, c_prev: &[f32], c: &mut [f32], tc: &mut [f32], h: &mut [f32]) {
    check_cell(c.len(), &[z.i.len(), z.f.len(), z.g.len(), z.o.len()], &[c_prev.len(), tc.len(), h.len()]);
    assert!(isa.available(), "{} is not available on this CPU", isa.name());
    match isa {
        Isa::Scalar => cell::forward(z, c_prev, c, tc, h),
        // SAFETY: the lengths agree (checked above), which is all the kernels' pointer arithmetic relies on.
        Isa::Portable => unsafe { portable::cell_forward(z, c_prev, c, tc, h) },
        // SAFETY: the feature is present (checked above) and the lengths agree (checked above),
        // which is all the kernels' pointer arithmetic relies on.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::cell_forward(z, c_prev, c, tc, h) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::cell_forward(z, c_prev, c, tc, h) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!(),
    }
}

/// LSTM cell backward on one row (or a block of its units) with instruction set `isa` (see
/// [`crate::model::cell::backward`] for the equations).
pub fn cell_backward(
    isa: Isa,
    act: Gates<'_, f32>,
    c_prev: &[f32],
    tc: &[f32],
    dh_up: &[f32],
    dh_rec: &[f32],
    dc: &mut [f32],
) {
    check_cell(
        dc.len(),
        &[act.i.len(), act.f.len(), act.g.len(), act.o.len()],
        &[c_prev.len(), tc.len(), dh_up.len(), dh_rec.len()],
    );
    assert!(isa.available(), "{} is not available on this CPU", isa.name());
    match isa {
        Isa::Scalar => cell::backward(act, c_prev, tc, dh_up, dh_rec, dc),
        // SAFETY: as in `cell_forward`.
        Isa::Portable => unsafe { portable::cell_backward(act, c_prev, tc, dh_up, dh_rec, dc) },
        // SAFETY: as in `cell_forward`.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::cell_backward(act, c_prev, tc, dh_up, dh_rec, dc) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::cell_backward(act, c_prev, tc, dh_up, dh_rec, dc) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!(),
    }
}

/// The register tile of the panel kernel on `isa`: rows per tile and columns per pass.
///
/// Each row of a tile needs 2 accumulator vectors, and the tile 2 vectors of the panel row
/// and 1 broadcast of A. AVX-512 (32 zmm, 16 lanes): 8 rows x 32 columns, 16 + 2 + 1 = 19
/// registers, the whole panel width in one pass. AVX2 (16 ymm, 8 lanes): 6 rows x 16
/// columns, 12 + 2 + 1 = 15 registers, two passes per panel (a 4 x 32 tile would need 16
/// accumulators + 4 + 1 = 21 and spill to the stack in the inner loop).
pub fn panel_tile(isa: Isa) -> (usize, usize) {
    match isa {
        Isa::Avx512 => (8, 32),
        // The portable path has the AVX2 path's 8 lanes, and the same tile keeps it within 16
        // vector registers where the target has 256-bit ones (x86-64-v3); on NEON (32 128-bit
        // registers) each 8-lane value is two registers: 24 accumulators + 4 + 2 still fit.
        Isa::Avx2 | Isa::Portable => (6, 16),
        Isa::Scalar => (8, 32),
    }
}

/// Rows per call of [`panel_kernel`] that fill whole register tiles on `isa` (callers that
/// block rows use it: 2 tiles on AVX-512, 4 on AVX2).
pub fn panel_rows(isa: Isa) -> usize {
    match isa {
        Isa::Avx2 | Isa::Portable => 24,
        _ => 16,
    }
}

/// The recurrent kernel's block (see [`crate::cpu::kernels::CpuReal::panel_kernel`]) with
/// instruction set `isa`: rows in register tiles ([`panel_tile`]), the rows left over in
/// tiles of 4, 2, 1; the weight panel streamed once per tile and pass. Partial panels (fewer
/// than 32 columns, only when H is not a multiple of 32) take the scalar path.
#[allow(clippy::too_many_arguments)]
pub fn panel_kernel(
    isa: Isa,
    a: &[f32],
    rsa: usize,
    csa: usize,
    k: usize,
    panel: &[f32],
    out: &mut [&mut [f32]],
    accumulate: bool,
) {
    let rows = out.len();
    assert!(panel.len() >= k * PANEL, "panel_kernel: panel shorter than K x 32");
    assert!(rows == 0 || k == 0 || (rows - 1) * rsa + (k - 1) * csa < a.len(), "panel_kernel: A too short");
    if isa == Isa::Scalar || k == 0 || out.iter().any(|r| r.len() != PANEL) {
        return panel_kernel_scalar(a, rsa, csa, k, panel, panel_strip(isa), out, accumulate);
    }
    assert!(isa.available(), "{} is not available on this CPU", isa.name());
    let (tile, width) = panel_tile(isa);
    // Column passes outside, row tiles inside: one pass's strip of the panel (K x width,
    // contiguous: see [`panel_strip`]) is read by every row tile while it is still in L1.
    for col0 in (0..PANEL).step_by(width) {
        let mut r0 = 0;
        while r0 < rows {
            let left = rows - r0;
            let n = [tile, 4, 2, 1].into_iter().find(|&t| t <= left).unwrap_or(1);
            let o = &mut out[r0..r0 + n];
            let ap = a[r0 * rsa..].as_ptr();
            let bp = panel.as_ptr();
            macro_rules! tile {
                ($m:ident, $n:literal) => {
                    $m::panel::<$n>(ap, rsa, csa, k, bp, col0, o, accumulate)
                };
            }
            // SAFETY: the feature is present (checked above); element (r, kk) of A for r < rows,
            // kk < K lies inside `a` and every output row holds 32 (both checked above); the
            // panel holds K x 32 and col0 + width <= 32.
            unsafe {
                match (isa, n) {
                    (Isa::Portable, 6) => tile!(portable, 6),
                    (Isa::Portable, 4) => tile!(portable, 4),
                    (Isa::Portable, 2) => tile!(portable, 2),
                    (Isa::Portable, _) => tile!(portable, 1),
                    #[cfg(target_arch = "x86_64")]
                    (Isa::Avx512, 8) => tile!(avx512, 8),
                    #[cfg(target_arch = "x86_64")]
                    (Isa::Avx512, 4) => tile!(avx512, 4),
                    #[cfg(target_arch = "x86_64")]
                    (Isa::Avx512, 2) => tile!(avx512, 2),
                    #[cfg(target_arch = "x86_64")]
                    (Isa::Avx512, _) => tile!(avx512, 1),
                    #[cfg(target_arch = "x86_64")]
                    (_, 6) => tile!(avx2, 6),
                    #[cfg(target_arch = "x86_64")]
                    (_, 4) => tile!(avx2, 4),
                    #[cfg(target_arch = "x86_64")]
                    (_, 2) => tile!(avx2, 2),
                    #[cfg(target_arch = "x86_64")]
                    _ => tile!(avx2, 1),
                    #[cfg(not(target_arch = "x86_64"))]
                    _ => unreachable!(),
                }
            }
            r0 += n;
        }
    }
}

/// Width of a packed weight panel in the recurrent kernels (columns).
pub const PANEL: usize = 32;

/// Columns of one contiguous strip of a packed panel on `isa`: the columns one register-tile
/// pass reads ([`panel_tile`]). A `[K, 32]` panel is stored as `32 / strip` strips of
/// `[K, strip]`, one after the other, so a pass streams one contiguous block: with AVX2's two
/// 16-column passes over a `[K, 32]` row-major panel, each pass would read every other cache
/// line (a 128-byte stride), which uses only half of L1's sets and evicts the panel between
/// the row tiles that share it. AVX-512 and the scalar path read all 32 columns at once.
pub fn panel_strip(isa: Isa) -> usize {
    panel_tile(isa).1
}

/// Where element `(kk, j)` of a `[k, 32]` panel lives when packed in strips of `strip` columns
/// (see [`panel_strip`]).
#[inline(always)]
pub fn panel_at(k: usize, strip: usize, kk: usize, j: usize) -> usize {
    (j / strip) * k * strip + kk * strip + j % strip
}

/// Packs the `[k, nu]` block whose element `(kk, j)` is `src[off + kk * rs + j]` into
/// `dst: [k, 32]`, in strips of `strip` columns ([`panel_at`]), zero from column `nu` on. A
/// strip wholly past column `nu` (fewer than 16 columns left on AVX2) is zeroed without reading
/// `src`: its start may lie past the end of `src`.
pub fn pack_strips<R: crate::real::Real>(
    dst: &mut [R],
    src: &[R],
    off: usize,
    rs: usize,
    k: usize,
    nu: usize,
    strip: usize,
) {
    for (s0, strip_dst) in (0..PANEL).step_by(strip).zip(dst.chunks_exact_mut(k * strip)) {
        let n = nu.saturating_sub(s0).min(strip);
        for (kk, d) in strip_dst.chunks_exact_mut(strip).enumerate() {
            if n > 0 {
                d[..n].copy_from_slice(&src[off + kk * rs + s0..][..n]);
            }
            d[n..].fill(R::ZERO);
        }
    }
}

/// Packs a logical `[k, 32]` row-major panel into the strips of `isa` (for tests and callers
/// that build a panel whole).
pub fn pack_panel(isa: Isa, logical: &[f32], k: usize) -> Vec<f32> {
    let strip = panel_strip(isa);
    let mut out = vec![0.0; k * PANEL];
    for kk in 0..k {
        for j in 0..PANEL {
            out[panel_at(k, strip, kk, j)] = logical[kk * PANEL + j];
        }
    }
    out
}

/// The scalar recurrent block kernel (see [`crate::cpu::kernels::CpuReal::panel_kernel`]) over
/// a panel packed in strips of `strip` columns ([`panel_at`]).
#[allow(clippy::too_many_arguments)]
pub fn panel_kernel_scalar<R: crate::real::Real>(
    a: &[R],
    rsa: usize,
    csa: usize,
    k: usize,
    panel: &[R],
    strip: usize,
    out: &mut [&mut [R]],
    accumulate: bool,
) {
    for (r, row) in out.iter_mut().enumerate() {
        let mut acc = [R::ZERO; PANEL];
        for (acc_s, strip_w) in acc.chunks_mut(strip).zip(panel.chunks(k * strip)) {
            for (kk, w) in strip_w.chunks_exact(strip).take(k).enumerate() {
                let av = a[r * rsa + kk * csa];
                for (x, &wv) in acc_s.iter_mut().zip(w) {
                    *x += av * wv;
                }
            }
        }
        for (o, &x) in row.iter_mut().zip(&acc) {
            *o = if accumulate { *o + x } else { x };
        }
    }
}

/// Width of a matrix-vector panel: 4 gates x 32 units.
pub const GEMV_COLS: usize = 128;

/// `acc += x · panel` for a `[K, 128]` panel (`K = x.len()`): the batch-1 sampler's
/// matrix-vector kernel, 128 accumulators in registers (8 AVX-512 vectors; AVX2 does the
/// two halves one after the other to stay within its 16 registers).
pub fn gemv128(isa: Isa, x: &[f32], panel: &[f32], acc: &mut [f32; GEMV_COLS]) {
    assert!(panel.len() >= x.len() * GEMV_COLS, "gemv128: panel shorter than K x 128");
    assert!(isa.available(), "{} is not available on this CPU", isa.name());
    match isa {
        // SAFETY: feature checked above; the panel holds K x 128 elements (checked above).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::gemv(x, panel.as_ptr(), 0, acc) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe {
            avx2::gemv(x, panel.as_ptr(), 0, acc);
            avx2::gemv(x, panel.as_ptr(), 64, acc);
        },
        // SAFETY: the panel holds K x 128 elements (checked above).
        Isa::Portable => unsafe {
            portable::gemv(x, panel.as_ptr(), 0, acc);
            portable::gemv(x, panel.as_ptr(), 64, acc);
        },
        _ => {
            for (&xk, w) in x.iter().zip(panel.chunks_exact(GEMV_COLS)) {
                for (a, &wv) in acc.iter_mut().zip(w) {
                    *a += xk * wv;
                }
            }
        }
    }
}

/// Which elementwise function [`map`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// e^x
    Exp,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// tanh(x)
    Tanh,
}

/// Applies `f` in place to every element with instruction set `isa`.
pub fn map(isa: Isa, f: Func, x: &mut [f32]) {
    assert!(isa.available(), "{} is not available on this CPU", isa.name());
    match isa {
        Isa::Scalar => {
            for v in x.iter_mut() {
                *v = match f {
                    Func::Exp => v.exp(),
                    Func::Sigmoid => cell::sigmoid(*v),
                    Func::Tanh => v.tanh(),
                }
            }
        }
        // SAFETY: the kernel stays inside `x`.
        Isa::Portable => unsafe { portable::map(f, x) },
        // SAFETY: feature checked above; the kernel stays inside `x`.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::map(f, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::map(f, x) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!(),
    }
}

/// The kernels, written once over the primitive operations each instruction-set module defines
/// ([`isa_module`]): `V` (the vector type), `L` (lanes), `splat`, `zero`, `load`, `store`,
/// `add`, `sub`, `mul`, `div`, `fmadd` (a*b+c), `fnmadd` (c-a*b), `min`, `max`, `round_pow2`
/// (nearest integer n of x as float, and 2^n).
macro_rules! kernels {
    ($(#[$attr:meta])*) => {
        /// Loads `n <= L` elements (the rest zero).
        #[inline]
        $(#[$attr])*
        unsafe fn ld(p: *const f32, n: usize) -> V {
            if n == L {
                // SAFETY: the caller guarantees L readable elements at p.
                unsafe { load(p) }
            } else {
                let mut buf = [0.0f32; L];
                // SAFETY: the caller guarantees n readable elements at p; buf holds L >= n.
                unsafe {
                    std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
                    load(buf.as_ptr())
                }
            }
        }

        /// Stores the first `n <= L` lanes.
        #[inline]
        $(#[$attr])*
        unsafe fn st(p: *mut f32, v: V, n: usize) {
            if n == L {
                // SAFETY: the caller guarantees L writable elements at p.
                unsafe { store(p, v) }
            } else {
                let mut buf = [0.0f32; L];
                // SAFETY: buf holds L elements; the caller guarantees n writable elements at p.
                unsafe {
                    store(buf.as_mut_ptr(), v);
                    std::ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
                }
            }
        }

        /// Cephes expf: x = n ln2 + r, e^x = 2^n e^r, e^r by a degree-5 polynomial.
        #[inline]
        $(#[$attr])*
        fn vexp(x: V) -> V {
            // Operand order matters: x86 min/max return their second operand when one is NaN, so a
            // NaN input stays NaN (divergence must stay visible) while ±inf is clamped.
            let x = min(splat(88.376_26), max(splat(-87.336_54), x));
            let (fx, pow2n) = round_pow2(mul(x, splat(std::f32::consts::LOG2_E)));
            let r = fnmadd(fx, splat(0.693_359_4), x);
            let r = fnmadd(fx, splat(-2.121_944_4e-4), r);
            let mut p = splat(1.987_569_1e-4);
            p = fmadd(p, r, splat(1.398_199_9e-3));
            p = fmadd(p, r, splat(8.333_452e-3));
            p = fmadd(p, r, splat(4.166_579_6e-2));
            p = fmadd(p, r, splat(1.666_666_5e-1));
            p = fmadd(p, r, splat(0.5)); // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
            let y = fmadd(p, mul(r, r), add(r, splat(1.0)));
            mul(y, pow2n)
        }

        #[inline]
        $(#[$attr])*
        fn vsigmoid(x: V) -> V {
            div(splat(1.0), add(splat(1.0), vexp(sub(splat(0.0), x))))
        }

        /// tanh as a [13/6] rational function of x, clamped where tanh(x) rounds to ±1.
        #[inline]
        $(#[$attr])*
        fn vtanh(x: V) -> V {
            let x = min(splat(7.905_311), max(splat(-7.905_311), x)); // NaN stays NaN, as in vexp
            let x2 = mul(x, x);
            let mut p = splat(-2.760_768_5e-16);
            p = fmadd(x2, p, splat(2.000_188e-13));
            p = fmadd(x2, p, splat(-8.604_672e-11));
            p = fmadd(x2, p, splat(5.122_297e-8));
            p = fmadd(x2, p, splat(1.485_722_4e-5));
            p = fmadd(x2, p, splat(6.372_619_3e-4));
            p = fmadd(x2, p, splat(4.893_524_6e-3));
            p = mul(x, p);
            let mut q = splat(1.198_258_4e-6);
            q = fmadd(x2, q, splat(1.185_347e-4));
            q = fmadd(x2, q, splat(2.268_434_6e-3));
            q = fmadd(x2, q, splat(4.893_525e-3));
            div(p, q)
        }

        /// See [`crate::model::cell::forward`].
        $(#[$attr])*
        pub(super) unsafe fn cell_forward(
            z: Gates<'_, f32>,
            c_prev: &[f32],
            c: &mut [f32],
            tc: &mut [f32],
            h: &mut [f32],
        ) {
            let hd = c.len();
            let (zi, zf, zg, zo) = (z.i.as_mut_ptr(), z.f.as_mut_ptr(), z.g.as_mut_ptr(), z.o.as_mut_ptr());
            let mut j = 0;
            while j < hd {
                let n = L.min(hd - j);
                // SAFETY: j + n <= hd and every slice holds hd elements (checked by the caller).
                unsafe {
                    let i = vsigmoid(ld(zi.add(j), n));
                    let f = vsigmoid(ld(zf.add(j), n));
                    let g = vtanh(ld(zg.add(j), n));
                    let o = vsigmoid(ld(zo.add(j), n));
                    let cn = fmadd(f, ld(c_prev.as_ptr().add(j), n), mul(i, g));
                    let t = vtanh(cn);
                    st(zi.add(j), i, n);
                    st(zf.add(j), f, n);
                    st(zg.add(j), g, n);
                    st(zo.add(j), o, n);
                    st(c.as_mut_ptr().add(j), cn, n);
                    st(tc.as_mut_ptr().add(j), t, n);
                    st(h.as_mut_ptr().add(j), mul(o, t), n);
                }
                j += L;
            }
        }

        /// See [`crate::model::cell::backward`].
        $(#[$attr])*
        pub(super) unsafe fn cell_backward(
            act: Gates<'_, f32>,
            c_prev: &[f32],
            tc: &[f32],
            dh_up: &[f32],
            dh_rec: &[f32],
            dc: &mut [f32],
        ) {
            let hd = dc.len();
            let (pi, pf, pg, po) = (act.i.as_mut_ptr(), act.f.as_mut_ptr(), act.g.as_mut_ptr(), act.o.as_mut_ptr());
            let one = splat(1.0);
            let mut j = 0;
            while j < hd {
                let n = L.min(hd - j);
                // SAFETY: as in cell_forward.
                unsafe {
                    let i = ld(pi.add(j), n);
                    let f = ld(pf.add(j), n);
                    let g = ld(pg.add(j), n);
                    let o = ld(po.add(j), n);
                    let t = ld(tc.as_ptr().add(j), n);
                    let cp = ld(c_prev.as_ptr().add(j), n);
                    let dh = add(ld(dh_up.as_ptr().add(j), n), ld(dh_rec.as_ptr().add(j), n));
                    let dct = fmadd(mul(dh, o), fnmadd(t, t, one), ld(dc.as_ptr().add(j), n));
                    st(pi.add(j), mul(mul(dct, g), mul(i, sub(one, i))), n);
                    st(pf.add(j), mul(mul(dct, cp), mul(f, sub(one, f))), n);
                    st(pg.add(j), mul(mul(dct, i), fnmadd(g, g, one)), n);
                    st(po.add(j), mul(mul(dh, t), mul(o, sub(one, o))), n);
                    st(dc.as_mut_ptr().add(j), mul(dct, f), n);
                }
                j += L;
            }
        }

        /// Applies one of the elementwise functions in place.
        $(#[$attr])*
        pub(super) unsafe fn map(func: super::Func, x: &mut [f32]) {
            let p = x.as_mut_ptr();
            let mut j = 0;
            while j < x.len() {
                let n = L.min(x.len() - j);
                // SAFETY: j + n <= x.len().
                unsafe {
                    let v = ld(p.add(j), n);
                    let r = match func {
                        super::Func::Exp => vexp(v),
                        super::Func::Sigmoid => vsigmoid(v),
                        super::Func::Tanh => vtanh(v),
                    };
                    st(p.add(j), r, n);
                }
                j += L;
            }
        }

        /// `MR` rows x `2L` columns (`col0..col0 + 2L` of a 32-column panel) of
        /// `out (+)= A · panel`, in `MR x 2` accumulators: see `super::panel_kernel` for the
        /// tile shapes. Each output element is one chain of FMAs over k in order, from zero,
        /// whatever the tile, so the tiling never changes a bit of the result.
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        pub(super) unsafe fn panel<const MR: usize>(
            a: *const f32,
            rsa: usize,
            csa: usize,
            k: usize,
            b: *const f32,
            col0: usize,
            out: &mut [&mut [f32]],
            accumulate: bool,
        ) {
            let mut acc = [[zero(); 2]; MR];
            for kk in 0..k {
                // SAFETY: the caller guarantees K x 32 panel elements, col0 + 2L <= 32, and
                // element (r, kk) of A for r < MR.
                unsafe {
                    let row = b.add(col0 * k + kk * 2 * L);
                    let bv = [load(row), load(row.add(L))];
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let av = splat(*a.add(r * rsa + kk * csa));
                        acc_r[0] = fmadd(av, bv[0], acc_r[0]);
                        acc_r[1] = fmadd(av, bv[1], acc_r[1]);
                    }
                }
            }
            for (row, acc_r) in out.iter_mut().zip(&acc) {
                let p = row[col0..].as_mut_ptr();
                for (q, &v) in acc_r.iter().enumerate() {
                    // SAFETY: every output row holds 32 elements (checked by the caller).
                    unsafe {
                        let v = if accumulate { add(load(p.add(q * L)), v) } else { v };
                        store(p.add(q * L), v);
                    }
                }
            }
        }

        /// `acc[off..off + 8L] += x · panel[:, off..off + 8L]` for a `[K, 128]` panel: eight
        /// independent accumulator vectors (AVX-512 covers the 128 columns in one pass, AVX2 in
        /// two, staying within its 16 registers).
        $(#[$attr])*
        pub(super) unsafe fn gemv(x: &[f32], panel: *const f32, off: usize, acc: &mut [f32]) {
            let mut v = [zero(); 8];
            for (q, r) in v.iter_mut().enumerate() {
                // SAFETY: acc holds 8L elements from off.
                *r = unsafe { load(acc.as_ptr().add(off + q * L)) };
            }
            for (k, &xk) in x.iter().enumerate() {
                let xb = splat(xk);
                for (q, r) in v.iter_mut().enumerate() {
                    // SAFETY: the caller guarantees K x 128 panel elements.
                    *r = fmadd(xb, unsafe { load(panel.add(k * 128 + off + q * L)) }, *r);
                }
            }
            for (q, r) in v.iter().enumerate() {
                // SAFETY: acc holds 8L elements from off.
                unsafe { store(acc.as_mut_ptr().add(off + q * L), *r) };
            }
        }

        /// 12 independent FMA chains (enough to cover FMA latency x throughput) for `iters`
        /// rounds; returns the FLOPs done and a sum that keeps the loop from being optimised away.
        $(#[$attr])*
        pub(super) unsafe fn fma_loop(iters: usize) -> (f64, f32) {
            let (m, c) = (splat(0.999_999), splat(1e-7));
            let mut acc = [splat(1.0); 12];
            for _ in 0..iters {
                for x in acc.iter_mut() {
                    *x = fmadd(*x, m, c);
                }
            }
            let mut buf = [0.0f32; L];
            let sum = acc.iter().fold(zero(), |s, &x| add(s, x));
            // SAFETY: buf holds L floats.
            unsafe { store(buf.as_mut_ptr(), sum) };
            (iters as f64 * 12.0 * L as f64 * 2.0, buf.iter().sum())
        }
    };
}

/// Defines one instruction set's primitive operations from its intrinsics, then expands the
/// shared kernels over them.
#[cfg(target_arch = "x86_64")]
macro_rules! isa_module {
    ($name:ident, $feat:literal, $v:ty, $lanes:literal,
     splat: $splat:ident, load: $load:ident, store: $store:ident, zero: $zero:ident,
     add: $add:ident, sub: $sub:ident, mul: $mul:ident, div: $div:ident,
     fmadd: $fmadd:ident, fnmadd: $fnmadd:ident, min: $min:ident, max: $max:ident,
     cvt: $cvt:ident, cvt_back: $cvtb:ident, add_i: $addi:ident, splat_i: $spli:ident,
     shl23: $shl:ident, cast: $cast:ident) => {
        mod $name {
            use super::Gates;
            use std::arch::x86_64::*;
            type V = $v;
            const L: usize = $lanes;

            #[inline]
            #[target_feature(enable = $feat)]
            fn splat(x: f32) -> V {
                $splat(x)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn zero() -> V {
                $zero()
            }
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn load(p: *const f32) -> V {
                // SAFETY: the caller guarantees L readable floats at p (unaligned load).
                unsafe { $load(p) }
            }
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn store(p: *mut f32, v: V) {
                // SAFETY: the caller guarantees L writable floats at p (unaligned store).
                unsafe { $store(p, v) }
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn add(a: V, b: V) -> V {
                $add(a, b)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn sub(a: V, b: V) -> V {
                $sub(a, b)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn mul(a: V, b: V) -> V {
                $mul(a, b)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn div(a: V, b: V) -> V {
                $div(a, b)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn fmadd(a: V, b: V, c: V) -> V {
                $fmadd(a, b, c)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn fnmadd(a: V, b: V, c: V) -> V {
                $fnmadd(a, b, c)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn min(a: V, b: V) -> V {
                $min(a, b)
            }
            #[inline]
            #[target_feature(enable = $feat)]
            fn max(a: V, b: V) -> V {
                $max(a, b)
            }
            /// The nearest integer n of each lane (as float) and 2^n.
            #[inline]
            #[target_feature(enable = $feat)]
            fn round_pow2(x: V) -> (V, V) {
                let n = $cvt(x);
                (($cvtb(n)), $cast($shl::<23>($addi(n, $spli(127)))))
            }

            kernels!(#[target_feature(enable = $feat)]);
        }
    };
}

#[cfg(target_arch = "x86_64")]
isa_module!(avx2, "avx2,fma", __m256, 8,
    splat: _mm256_set1_ps, load: _mm256_loadu_ps, store: _mm256_storeu_ps, zero: _mm256_setzero_ps,
    add: _mm256_add_ps, sub: _mm256_sub_ps, mul: _mm256_mul_ps, div: _mm256_div_ps,
    fmadd: _mm256_fmadd_ps, fnmadd: _mm256_fnmadd_ps, min: _mm256_min_ps, max: _mm256_max_ps,
    cvt: _mm256_cvtps_epi32, cvt_back: _mm256_cvtepi32_ps, add_i: _mm256_add_epi32, splat_i: _mm256_set1_epi32,
    shl23: _mm256_slli_epi32, cast: _mm256_castsi256_ps);

#[cfg(target_arch = "x86_64")]
isa_module!(avx512, "avx512f", __m512, 16,
    splat: _mm512_set1_ps, load: _mm512_loadu_ps, store: _mm512_storeu_ps, zero: _mm512_setzero_ps,
    add: _mm512_add_ps, sub: _mm512_sub_ps, mul: _mm512_mul_ps, div: _mm512_div_ps,
    fmadd: _mm512_fmadd_ps, fnmadd: _mm512_fnmadd_ps, min: _mm512_min_ps, max: _mm512_max_ps,
    cvt: _mm512_cvtps_epi32, cvt_back: _mm512_cvtepi32_ps, add_i: _mm512_add_epi32, splat_i: _mm512_set1_epi32,
    shl23: _mm512_slli_epi32, cast: _mm512_castsi512_ps);

/// The portable path: the same kernels over 8-lane arrays, each primitive operation a loop of
/// eight independent lanes that the compiler turns into the target's vector instructions (two
/// SSE or NEON registers per value, or one AVX register with `-C target-cpu=x86-64-v3`).
mod portable {
    use super::Gates;
    type V = [f32; 8];
    const L: usize = 8;

    /// Applies `f` lane by lane (a fixed-length loop the compiler unrolls and vectorizes).
    #[inline(always)]
    fn lanes(a: V, b: V, f: impl Fn(f32, f32) -> f32) -> V {
        let mut r = a;
        for i in 0..L {
            r[i] = f(a[i], b[i]);
        }
        r
    }
    #[inline(always)]
    fn splat(x: f32) -> V {
        [x; L]
    }
    #[inline(always)]
    fn zero() -> V {
        [0.0; L]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: the caller guarantees L readable floats at p (unaligned read).
        unsafe { std::ptr::read_unaligned(p as *const V) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: V) {
        // SAFETY: the caller guarantees L writable floats at p (unaligned write).
        unsafe { std::ptr::write_unaligned(p as *mut V, v) }
    }
    #[inline(always)]
    fn add(a: V, b: V) -> V {
        lanes(a, b, |x, y| x + y)
    }
    #[inline(always)]
    fn sub(a: V, b: V) -> V {
        lanes(a, b, |x, y| x - y)
    }
    #[inline(always)]
    fn mul(a: V, b: V) -> V {
        lanes(a, b, |x, y| x * y)
    }
    #[inline(always)]
    fn div(a: V, b: V) -> V {
        lanes(a, b, |x, y| x / y)
    }
    /// `a * b + c`, fused where the target has a fused multiply-add (without one, `mul_add`
    /// would be a call to libm's software `fmaf` per lane).
    #[inline(always)]
    fn fma1(a: f32, b: f32, c: f32) -> f32 {
        #[cfg(any(target_feature = "fma", target_arch = "aarch64"))]
        {
            a.mul_add(b, c)
        }
        #[cfg(not(any(target_feature = "fma", target_arch = "aarch64")))]
        {
            a * b + c
        }
    }
    #[inline(always)]
    fn fmadd(a: V, b: V, c: V) -> V {
        let mut r = c;
        for i in 0..L {
            r[i] = fma1(a[i], b[i], c[i]);
        }
        r
    }
    #[inline(always)]
    fn fnmadd(a: V, b: V, c: V) -> V {
        let mut r = c;
        for i in 0..L {
            r[i] = fma1(-a[i], b[i], c[i]);
        }
        r
    }
    /// x86's `min`: the second operand when either is NaN (the kernels rely on it).
    #[inline(always)]
    fn min(a: V, b: V) -> V {
        lanes(a, b, |x, y| if x < y { x } else { y })
    }
    /// x86's `max`: the second operand when either is NaN.
    #[inline(always)]
    fn max(a: V, b: V) -> V {
        lanes(a, b, |x, y| if x > y { x } else { y })
    }
    /// The nearest integer n of each lane (ties to even, as `cvtps2dq`) and 2^n, for |x| <= 2^21:
    /// adding 1.5 * 2^23 leaves n in the low mantissa bits (integer arithmetic only, so it
    /// vectorizes on every target; the callers clamp x to about ±128).
    #[inline(always)]
    fn round_pow2(x: V) -> (V, V) {
        const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23, bits 0x4B40_0000
        let (mut n, mut p) = (x, x);
        for i in 0..L {
            let t = x[i] + MAGIC;
            n[i] = t - MAGIC;
            let k = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
            p[i] = f32::from_bits((k.wrapping_add(127) << 23) as u32);
        }
        (n, p)
    }

    kernels!();
}

/// Runs `iters` rounds of 12 independent fused multiply-adds on full vectors of `isa`;
/// returns the FLOPs done (to keep the loop from being optimised away, the result is folded in).
fn fma_loop(isa: Isa, iters: usize) -> (f64, f32) {
    match isa {
        // SAFETY: the feature is checked by `available` before this is reached.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.available() => unsafe { avx512::fma_loop(iters) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if isa.available() => unsafe { avx2::fma_loop(iters) },
        // SAFETY: plain Rust; nothing to check.
        Isa::Portable => unsafe { portable::fma_loop(iters) },
        _ => {
            let mut acc = [1.0f32; 12];
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = a.mul_add(0.999_999, 1e-7);
                }
            }
            (iters as f64 * 24.0, acc.iter().sum())
        }
    }
}

/// The machine's peak single-precision FMA rate in GFLOP/s, measured: every thread of the
/// current rayon pool runs an FMA loop of the widest instruction set for about `seconds`, the
/// per-thread rates are added up, and the best of three such runs is kept.
pub fn fma_peak_gflops(seconds: f64) -> f64 {
    let isa = isa();
    // Calibrate the iteration count on one thread, then run on all at once.
    let mut iters = 1 << 16;
    loop {
        let t0 = std::time::Instant::now();
        std::hint::black_box(fma_loop(isa, iters));
        let dt = t0.elapsed().as_secs_f64();
        if dt > seconds / 8.0 || iters > 1 << 30 {
            iters = ((iters as f64) * seconds / dt.max(1e-9)) as usize;
            break;
        }
        iters *= 4;
    }
    // The best of three runs: a peak is what the machine can do, not what a busy moment allows.
    (0..3)
        .map(|_| {
            let rates: Vec<f64> = rayon::broadcast(|_| {
                let t0 = std::time::Instant::now();
                let (flops, sink) = fma_loop(isa, iters);
                std::hint::black_box(sink);
                flops / t0.elapsed().as_secs_f64()
            });
            rates.iter().sum::<f64>() / 1e9
        })
        .fold(0.0, f64::max)
}
