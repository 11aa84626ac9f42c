//! Matrix views and the two GEMMs of the CPU engine: [`gemm`], `matrixmultiply` underneath with
//! C split over `rayon` workers (the dense layer, the per-symbol table of layer 0), and
//! [`panel_gemm`], the engine's own panel kernel for products that share one B (the input
//! projections, the weight gradients). Neither split changes the bits of the result, so results
//! are identical whatever the thread count.

use super::kernels::CpuReal;
use rayon::prelude::*;

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a, R> {
    /// The buffer the view reads from.
    pub data: &'a [R],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row stride in elements.
    pub rs: usize,
    /// Column stride in elements.
    pub cs: usize,
}

impl<'a, R> Mat<'a, R> {
    /// A row-major `rows x cols` matrix stored densely at the start of `data`.
    pub fn new(data: &'a [R], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }

    /// The transpose (a view; nothing is copied).
    pub fn t(self) -> Self {
        Mat { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// A dense row-major output matrix: element (i, j) is `data[i * ld + j]`.
#[derive(Debug)]
pub struct MatMut<'a, R> {
    /// The buffer written to.
    pub data: &'a mut [R],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row stride (leading dimension), at least `cols`.
    pub ld: usize,
}

impl<'a, R> MatMut<'a, R> {
    /// A dense row-major `rows x cols` matrix at the start of `data`.
    pub fn new(data: &'a mut [R], rows: usize, cols: usize) -> Self {
        MatMut { data, rows, cols, ld: cols }
    }
}

/// A raw pointer that may cross threads: each task writes a disjoint set of C's columns.
#[derive(Clone, Copy)]
struct SendPtr<R>(*mut R);
// SAFETY: used only to hand disjoint column ranges of one output buffer to rayon tasks; no two
// tasks touch the same element, and the buffer outlives the scope (borrowed mutably for it).
unsafe impl<R> Send for SendPtr<R> {}
// SAFETY: as above.
unsafe impl<R> Sync for SendPtr<R> {}

/// Below this many multiply-adds a GEMM runs on the calling thread (rayon's hand-off would cost
/// more than it saves).
const PAR_MIN_MACS: usize = 1 << 18;

/// How to split a GEMM over `threads` workers: along M (rows of C) when M is the larger side,
/// else along N, in `threads` pieces aligned to 16 (a multiple of every matrixmultiply kernel's
/// MR and NR). matrixmultiply blocks only the K dimension in a way that affects rounding (its
/// KC blocks are summed in order), and every tile of C runs the same kernel, so element (i, j)
/// gets the same bits whichever piece computes it: the split changes speed, never results.
/// Fewer, larger pieces matter: each piece packs the whole of the other operand.
fn split(m: usize, n: usize, threads: usize) -> (bool, usize) {
    let by_rows = m > n;
    let len = if by_rows { m } else { n };
    (by_rows, len.div_ceil(threads.max(1)).next_multiple_of(16).max(16))
}

/// `C = alpha * A·B + beta * C`.
///
/// Panics when the shapes disagree or a view reaches outside its buffer (programming errors:
/// every shape here derives from a validated model configuration).
pub fn gemm<R: CpuReal>(alpha: R, a: Mat<'_, R>, b: Mat<'_, R>, beta: R, c: MatMut<'_, R>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && c.rows == m && c.cols == n, "gemm: [{m}x{k}]·[{}x{n}] into [{}x{}]", b.rows, c.rows, c.cols);
    assert!(a.fits() && b.fits(), "gemm: an input view reaches outside its buffer");
    assert!(c.ld >= n && (m == 0 || n == 0 || (m - 1) * c.ld + n <= c.data.len()), "gemm: output too small");
    if m == 0 || n == 0 {
        return;
    }
    let cp = SendPtr(c.data.as_mut_ptr());
    let ld = c.ld;
    // Computes the block rows i0..i1, columns j0..j1 of C.
    let run = |i0: usize, i1: usize, j0: usize, j1: usize| {
        // Rebinding makes the closure capture the Send wrapper, not its raw-pointer field.
        #[allow(clippy::redundant_locals)]
        let cp = cp;
        // SAFETY: the views were bounds-checked above, so rows i0..i1 of A, columns j0..j1 of B
        // and that block of C lie inside their buffers; blocks given to different tasks are
        // disjoint; C does not alias A or B (C is borrowed mutably, they immutably).
        unsafe {
            R::gemm_raw(
                i1 - i0,
                k,
                j1 - j0,
                alpha,
                a.data.as_ptr().add(i0 * a.rs),
                a.rs as isize,
                a.cs as isize,
                b.data.as_ptr().add(j0 * b.cs),
                b.rs as isize,
                b.cs as isize,
                beta,
                cp.0.add(i0 * ld + j0),
                ld as isize,
                1,
            )
        }
    };
    let threads = rayon::current_num_threads();
    if m * n * k < PAR_MIN_MACS || threads == 1 {
        run(0, m, 0, n);
    } else {
        let (by_rows, w) = split(m, n, threads);
        let len = if by_rows { m } else { n };
        (0..len.div_ceil(w)).into_par_iter().for_each(|ci| {
            let (p0, p1) = (ci * w, ((ci + 1) * w).min(len));
            if by_rows { run(p0, p1, 0, n) } else { run(0, m, p0, p1) }
        });
    }
}

/// Column sums: `out[j] = sum_i x[i, j]` for a row-major `x: [rows, cols]`, summed in row order
/// (deterministic; columns split over threads in fixed chunks).
pub fn col_sums<R: CpuReal>(x: &[R], rows: usize, cols: usize, out: &mut [R]) {
    assert!(x.len() >= rows * cols && out.len() == cols);
    out.par_chunks_mut(256).enumerate().for_each(|(ci, o)| {
        let j0 = ci * 256;
        o.fill(R::ZERO);
        for r in 0..rows {
            let row = &x[r * cols + j0..r * cols + j0 + o.len()];
            for (a, &v) in o.iter_mut().zip(row) {
                *a += v;
            }
        }
    });
}

/// Depth of one packed block of B in [`panel_gemm`]: a `[256, 32]` f32 panel is 32 KiB, so a
/// worker's panels for one block sit in its L2 while every row of A streams past them.
pub(crate) const KC: usize = 256;

/// `C_j (+)= A_j · B` for each job `(A_j, C_j)`, all sharing `B: [K, N]`, with the engine's
/// own kernel ([`CpuReal::panel_kernel`]) instead of `matrixmultiply`.
///
/// B is packed into `[KC, 32]` column panels, each worker packing only the panels of the
/// columns it computes (so nothing is packed twice and no worker waits for another); a row-major
/// A is read in place, a transposed one is copied row-major one block of rows at a time.
/// Sharing B between jobs packs it once for, e.g., both `dW_hh = H_prevᵀ·dZ` and
/// `dW_ih = Xᵀ·dZ`. Every element of C is summed in the same order (K blocks in order, each
/// from zero) whatever the number of workers.
pub fn panel_gemm<R: CpuReal>(
    jobs: &mut [(Mat<'_, R>, MatMut<'_, R>)],
    b: Mat<'_, R>,
    accumulate: bool,
    scratch: &mut Vec<R>,
) {
    use super::simd::{PANEL, pack_strips, panel_at};
    use super::team::{Shared, run_team};
    let (k, n) = (b.rows, b.cols);
    assert!(b.fits(), "panel_gemm: B reaches outside its buffer");
    for (a, c) in jobs.iter() {
        assert!(a.cols == k && a.fits() && c.cols == n && c.rows == a.rows, "panel_gemm: shapes disagree");
        assert!(c.ld >= n && (c.rows == 0 || (c.rows - 1) * c.ld + n <= c.data.len()), "panel_gemm: C too small");
    }
    if k == 0 {
        if !accumulate {
            for (_, c) in jobs.iter_mut() {
                c.data.chunks_mut(c.ld).for_each(|r| r[..n].fill(R::ZERO));
            }
        }
        return;
    }
    let np = n.div_ceil(PANEL);
    let strip = R::panel_strip();
    scratch.resize(np * KC * PANEL, R::ZERO);
    let sw = Shared(scratch.as_mut_ptr());
    let cs: Vec<(Mat<'_, R>, Shared<R>, usize, usize)> =
        jobs.iter_mut().map(|(a, c)| (*a, Shared(c.data.as_mut_ptr()), c.ld, c.rows)).collect();
    let nt = rayon::current_num_threads().clamp(1, np);
    run_team(nt, |me| {
        let mine = me * np / nt..(me + 1) * np / nt;
        let mut outs: Vec<&mut [R]> = Vec::with_capacity(8);
        let block = R::panel_rows();
        let mut a_pack = vec![R::ZERO; block * KC.min(k)];
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            for p in mine.clone() {
                let (j0, nu) = (p * PANEL, PANEL.min(n - p * PANEL));
                // SAFETY: panel p of the scratch lies in it (resized above) and only this worker
                // writes or reads it.
                let dst = unsafe { sw.slice_mut(p * KC * PANEL, kc * PANEL) };
                if b.cs == 1 {
                    pack_strips(dst, b.data, k0 * b.rs + j0, b.rs, kc, nu, strip);
                } else {
                    dst.fill(R::ZERO);
                    for j in 0..nu {
                        for kk in 0..kc {
                            dst[panel_at(kc, strip, kk, j)] = b.data[(k0 + kk) * b.rs + (j0 + j) * b.cs];
                        }
                    }
                }
            }
            for &(a, c, ld, m) in &cs {
                for r0 in (0..m).step_by(block) {
                    let rows = block.min(m - r0);
                    // A given transposed (a column-major view, e.g. H_prevᵀ for dW_hh) is copied
                    // row-major first: read in place, each k would touch a new cache line for a
                    // few floats, and the next row tile would read the same lines again.
                    let (a_blk, rsa, csa) = if a.cs == 1 {
                        (&a.data[r0 * a.rs + k0..], a.rs, 1)
                    } else {
                        for kk in 0..kc {
                            for r in 0..rows {
                                a_pack[r * kc + kk] = a.data[(r0 + r) * a.rs + (k0 + kk) * a.cs];
                            }
                        }
                        (&a_pack[..], kc, 1)
                    };
                    for p in mine.clone() {
                        let (j0, nu) = (p * PANEL, PANEL.min(n - p * PANEL));
                        outs.clear();
                        // SAFETY: rows r0.. and columns j0..j0+nu of C lie inside it (asserted
                        // above) and columns of panel p are written by this worker only.
                        outs.extend((r0..r0 + rows).map(|r| unsafe { c.slice_mut(r * ld + j0, nu) }));
                        // SAFETY: this worker's own panel, packed above.
                        let panel = unsafe { sw.slice(p * KC * PANEL, kc * PANEL) };
                        R::panel_kernel(a_blk, rsa, csa, kc, panel, &mut outs, accumulate || k0 > 0);
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn gemm_matches_naive_including_transposes_and_parallel_split() {
        // 70 x 130 x 90 crosses PAR_MIN_MACS, so the column split is exercised.
        let (m, k, n) = (70, 130, 90);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 7919) % 101) as f64 / 50.0 - 1.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 104_729) % 97) as f64 / 48.0 - 1.0).collect();
        let want = naive(&a, &b, m, k, n);
        let mut c = vec![1.0; m * n];
        gemm(1.0, Mat::new(&a, m, k), Mat::new(&b, k, n), 0.0, MatMut::new(&mut c, m, n));
        // The inputs are multiples of 1/50 and 1/48, not dyadic, so neither side is exact and
        // the summation order matters. Both sides use the same f64 inputs (|a|, |b| <= 1); a sum
        // of K = 130 products errs by at most γ_K·Σ|a·b| <= 130 · 1.1e-16 · 130 = 1.9e-12 in
        // any order, so the two differ by at most 3.8e-12. 1e-9 leaves a wide margin and still
        // fails for a wrong index or a missing block (errors of order 1).
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-9);
        }
        // A^T stored as [k, m]: (A^T)^T == A.
        let mut at = vec![0.0; k * m];
        for i in 0..m {
            for p in 0..k {
                at[p * m + i] = a[i * k + p];
            }
        }
        let mut c2 = want.clone();
        // C = A·B - want: not an exact cancellation (see above), within the same 3.8e-12.
        gemm(1.0, Mat::new(&at, k, m).t(), Mat::new(&b, k, n), -1.0, MatMut::new(&mut c2, m, n));
        assert!(c2.iter().all(|x| x.abs() < 1e-9), "beta=-1 should cancel to within rounding");
    }

    #[test]
    fn panel_gemm_matches_naive() {
        // K = 600 spans three K blocks; M = 21 leaves a 5-row tail; N = 70 a 6-column panel.
        let (m, k, n) = (21, 600, 70);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 31) % 17) as f64 / 8.0 - 1.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 7) % 13) as f64 / 8.0 - 0.75).collect();
        let want = naive(&a, &b, m, k, n);
        // A given transposed ([k, m] storage viewed as its transpose), B given transposed too.
        let mut at = vec![0.0; k * m];
        let mut bt = vec![0.0; n * k];
        for i in 0..m {
            for p in 0..k {
                at[p * m + i] = a[i * k + p];
            }
        }
        for p in 0..k {
            for j in 0..n {
                bt[j * k + p] = b[p * n + j];
            }
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut scratch = Vec::new();
        let (mut c1, mut c2) = (vec![7.0; m * n], vec![1.0; m * n]);
        pool.install(|| {
            let mut jobs = [
                (Mat::new(&a, m, k), MatMut::new(&mut c1, m, n)),
                (Mat::new(&at, k, m).t(), MatMut::new(&mut c2, m, n)),
            ];
            panel_gemm(&mut jobs, Mat::new(&bt, n, k).t(), false, &mut scratch);
        });
        // Sums of products of multiples of 1/8 below 2^20 are exact in f64 in any order.
        assert_eq!(c1, want);
        assert_eq!(c2, want);
        let mut c3 = want.clone();
        panel_gemm(&mut [(Mat::new(&a, m, k), MatMut::new(&mut c3, m, n))], Mat::new(&b, k, n), true, &mut scratch);
        assert!(c3.iter().zip(&want).all(|(x, w)| *x == 2.0 * w), "accumulate adds");
        // The same in f32, whose panels are packed in the instruction set's strips (16 columns
        // on AVX2): the last panel's 6 columns leave its second strip past B's last column.
        // Products of multiples of 1/8 are multiples of 1/64, the sums stay below 2^10, so
        // every partial sum fits f32's 24-bit significand and the result is exact too.
        let (a32, b32): (Vec<f32>, Vec<f32>) =
            (a.iter().map(|&v| v as f32).collect(), b.iter().map(|&v| v as f32).collect());
        let mut c4 = vec![3.0f32; m * n];
        let mut scratch32 = Vec::new();
        pool.install(|| {
            panel_gemm(
                &mut [(Mat::new(&a32, m, k), MatMut::new(&mut c4, m, n))],
                Mat::new(&b32, k, n),
                false,
                &mut scratch32,
            )
        });
        assert!(c4.iter().zip(&want).all(|(x, w)| *x as f64 == *w), "f32 panels");
    }

    #[test]
    fn col_sums_add_rows() {
        let x: Vec<f32> = (0..3 * 300).map(|i| i as f32).collect();
        let mut out = vec![0.0; 300];
        col_sums(&x, 3, 300, &mut out);
        for (j, &o) in out.iter().enumerate() {
            assert_eq!(o, (j + (300 + j) + (600 + j)) as f32);
        }
    }
}
