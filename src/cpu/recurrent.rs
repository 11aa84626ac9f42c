//! The sequential part of an LSTM layer: the T recurrent steps, forward and backward.
//!
//! Each step is a small product `[B, H] x [H, 4H]` (forward) or `[B, 4H] x [4H, H]` (backward)
//! followed by the elementwise cell. A general GEMM would repack the whole weight matrix on
//! every one of those 64 steps; here the weights are packed once per call into 32-column
//! panels ([`Panels`]), and each step is split by blocks of 32 hidden units: a member of a
//! thread team ([`super::team`]) computes the four gates of its units for every batch row with
//! [`CpuReal::panel_kernel`], then runs the cell on them while they are still in cache, and waits
//! at a barrier for the others. Every unit block is computed the same way whoever computes it,
//! so results do not depend on the number of threads.

use super::kernels::CpuReal;
use super::simd::{PANEL, pack_strips, panel_at};
use super::team::{Shared, SpinBarrier, run_team};
use crate::model::cell::Gates;

/// A weight matrix packed into `[K, 32]` column panels, each contiguous.
#[derive(Clone, Debug, Default)]
pub struct Panels<R> {
    k: usize,
    data: Vec<R>,
}

impl<R: CpuReal> Panels<R> {
    /// Bytes its buffer holds (capacity).
    pub(crate) fn held_bytes(&self) -> usize {
        self.data.capacity() * std::mem::size_of::<R>()
    }

    /// Makes room for `count` panels of depth `k`.
    fn prepare(&mut self, k: usize, count: usize) {
        self.k = k;
        self.data.resize(count * k * PANEL, R::ZERO);
    }

    /// Fills `dst: [H, 32]` (packed in strips, [`panel_at`]) with gate `g`'s columns for units
    /// 32p.. of `w_hh: [H, 4H]` (zero past the last unit).
    fn pack_forward_panel(dst: &mut [R], w_hh: &[R], hd: usize, g: usize, p: usize) {
        let (u0, nu) = (p * PANEL, PANEL.min(hd - p * PANEL));
        pack_strips(dst, w_hh, g * hd + u0, 4 * hd, hd, nu, R::panel_strip());
    }

    /// Fills `dst: [4H, 32]` (packed in strips, [`panel_at`]) with the rows of `w_hh: [H, 4H]`
    /// for units 32p.., transposed: element `(k, j)` is `w_hh[32p + j][k]` (zero past the last
    /// unit).
    fn pack_backward_panel(dst: &mut [R], w_hh: &[R], hd: usize, p: usize) {
        let (u0, nu, strip) = (p * PANEL, PANEL.min(hd - p * PANEL), R::panel_strip());
        if nu < PANEL {
            dst.fill(R::ZERO);
        }
        for j in 0..nu {
            for (kk, &v) in w_hh[(u0 + j) * 4 * hd..][..4 * hd].iter().enumerate() {
                dst[panel_at(4 * hd, strip, kk, j)] = v;
            }
        }
    }
}

/// `out[r] (+)= a[r] · panel` for all rows (the kernel tiles them). `a: [rows, lda]`.
fn rows_times_panel<R: CpuReal>(a: &[R], lda: usize, k: usize, panel: &[R], out: &mut [&mut [R]], accumulate: bool) {
    R::panel_kernel(a, lda, 1, k, panel, out, accumulate);
}

/// The unit blocks (panels) member `me` of a team of `n` owns: a fixed, contiguous share.
fn my_panels(me: usize, n: usize, np: usize) -> std::ops::Range<usize> {
    me * np / n..(me + 1) * np / n
}

/// The T forward steps of one layer.
///
/// ```text
/// act: [T*B, 4H]   holds x_t·W_ih + b on entry, the activations (i, f, g, o) on return
/// h, c: [(T+1)*B, H]  block 0 holds (h0, c0); block t+1 receives (h_t, c_t)
/// tc: [T*B, H]     receives tanh(c_t)
/// for t: z_t += h_{t-1}·W_hh;  (c_t, h_t) = cell(z_t, c_{t-1})
/// ```
/// A team of threads splits the hidden units by 32-unit blocks; each member computes the four
/// gates and the cell of its blocks for every batch row, then waits for the others: h_t is
/// complete before anyone starts step t+1.
#[allow(clippy::too_many_arguments)]
pub fn forward<R: CpuReal>(
    act: &mut [R],
    h: &mut [R],
    c: &mut [R],
    tc: &mut [R],
    w_hh: &[R],
    panels: &mut Panels<R>,
    b: usize,
    t: usize,
    hd: usize,
) {
    let (np, bh, g4) = (hd.div_ceil(PANEL), b * hd, 4 * hd);
    assert!(act.len() >= t * b * g4 && h.len() >= (t + 1) * bh && c.len() >= (t + 1) * bh && tc.len() >= t * bh);
    assert!(w_hh.len() == hd * g4, "w_hh must be [H, 4H]");
    panels.prepare(hd, 4 * np);
    let pk = hd * PANEL;
    let sw = Shared(panels.data.as_mut_ptr());
    let n = rayon::current_num_threads().clamp(1, np);
    let barrier = SpinBarrier::new(n);
    let (sa, sh, sc, stc) =
        (Shared(act.as_mut_ptr()), Shared(h.as_mut_ptr()), Shared(c.as_mut_ptr()), Shared(tc.as_mut_ptr()));
    run_team(n, |me| {
        // Each member packs the panels it will use (they stay in its core's cache); no one
        // else reads them, so no barrier is needed before use.
        for p in my_panels(me, n, np) {
            for g in 0..4 {
                // SAFETY: panel g*np+p lies in the buffer (prepared above) and belongs to this member only.
                let dst = unsafe { sw.slice_mut((g * np + p) * pk, pk) };
                Panels::pack_forward_panel(dst, w_hh, hd, g, p);
            }
        }
        // SAFETY: written above by this member; nobody writes it during the steps.
        let panel = |q: usize| unsafe { sw.slice(q * pk, pk) };
        let mut outs: Vec<&mut [R]> = Vec::with_capacity(b);
        for ti in 0..t {
            // SAFETY (all accesses below): the ranges lie inside the buffers (asserted above).
            // Block ti of h (h_{t-1}) is only read during step ti: it was completed before the
            // previous barrier (or is h0). Block ti of c likewise. Each member writes only its
            // own units (columns u0..u0+nu of its panels) of block ti of act and tc and block
            // ti+1 of h and c, which nobody else touches during step ti.
            let h_prev = unsafe { sh.slice(ti * bh, bh) };
            for p in my_panels(me, n, np) {
                let (u0, nu) = (p * PANEL, PANEL.min(hd - p * PANEL));
                let zrow = |r: usize, g: usize| unsafe { sa.slice_mut((ti * b + r) * g4 + g * hd + u0, nu) };
                for g in 0..4 {
                    outs.clear();
                    outs.extend((0..b).map(|r| zrow(r, g)));
                    // z_t[:, gate g, units of p] += h_{t-1} · W_hh[:, gate g, units of p]
                    rows_times_panel(h_prev, hd, hd, panel(g * np + p), &mut outs, true);
                }
                outs.clear();
                for r in 0..b {
                    let o = r * hd + u0;
                    let gates = Gates { i: zrow(r, 0), f: zrow(r, 1), g: zrow(r, 2), o: zrow(r, 3) };
                    let (c_prev, c_new) = unsafe { (sc.slice(ti * bh + o, nu), sc.slice_mut((ti + 1) * bh + o, nu)) };
                    let (tc_t, h_new) =
                        unsafe { (stc.slice_mut(ti * bh + o, nu), sh.slice_mut((ti + 1) * bh + o, nu)) };
                    R::cell_forward(gates, c_prev, c_new, tc_t, h_new);
                }
            }
            barrier.wait();
        }
    });
}

/// The T backward steps of one layer (BPTT through the window, truncated at its start).
///
/// ```text
/// act: [T*B, 4H]  holds the activations on entry, dz_t on return
/// dh_up: [T*B, H] d loss / d h_t from above (after the dropout mask)
/// db: [4H]        receives Σ_t Σ_rows dz_t, the bias gradient
/// for t = T-1 .. 0:
///     dh_rec = dz_{t+1} · W_hhᵀ   (0 at t = T-1)
///     (dz_t, dc) = cell_backward(act_t, c_{t-1}, tanh c_t, dh_up_t + dh_rec, dc)
/// on return dh_rec = dz_0 · W_hhᵀ = d loss / d h0 and dc = d loss / d c0
/// ```
/// Split over a team by unit blocks as in [`forward`].
#[allow(clippy::too_many_arguments)]
pub fn backward<R: CpuReal>(
    act: &mut [R],
    c: &[R],
    tc: &[R],
    dh_up: &[R],
    dh_rec: &mut [R],
    dc: &mut [R],
    db: &mut [R],
    w_hh: &[R],
    panels: &mut Panels<R>,
    b: usize,
    t: usize,
    hd: usize,
) {
    let (np, bh, g4) = (hd.div_ceil(PANEL), b * hd, 4 * hd);
    assert!(act.len() >= t * b * g4 && c.len() >= t * bh && tc.len() >= t * bh && dh_up.len() >= t * bh);
    assert!(dh_rec.len() >= bh && dc.len() >= bh && db.len() == g4 && w_hh.len() == hd * g4);
    dc.fill(R::ZERO);
    db.fill(R::ZERO);
    panels.prepare(g4, np);
    let pk = g4 * PANEL;
    let sw = Shared(panels.data.as_mut_ptr());
    let n = rayon::current_num_threads().clamp(1, np);
    let barrier = SpinBarrier::new(n);
    let (sa, sdh, sdc, sdb) =
        (Shared(act.as_mut_ptr()), Shared(dh_rec.as_mut_ptr()), Shared(dc.as_mut_ptr()), Shared(db.as_mut_ptr()));
    run_team(n, |me| {
        for p in my_panels(me, n, np) {
            // SAFETY: panel p lies in the buffer (prepared above) and belongs to this member only.
            Panels::pack_backward_panel(unsafe { sw.slice_mut(p * pk, pk) }, w_hh, hd, p);
        }
        // SAFETY: written above by this member; nobody writes it afterwards.
        let panel = |p: usize| unsafe { sw.slice(p * pk, pk) };
        let mut outs: Vec<&mut [R]> = Vec::with_capacity(b);
        let dh_of = |p: usize, outs: &mut Vec<&mut [R]>, dz: Option<&[R]>| {
            let (u0, nu) = (p * PANEL, PANEL.min(hd - p * PANEL));
            outs.clear();
            // SAFETY: member-owned units of dh_rec (see below).
            outs.extend((0..b).map(|r| unsafe { sdh.slice_mut(r * hd + u0, nu) }));
            match dz {
                Some(dz) => rows_times_panel(dz, g4, g4, panel(p), outs, false),
                None => outs.iter_mut().for_each(|s| s.fill(R::ZERO)),
            }
        };
        for ti in (0..t).rev() {
            // SAFETY (all accesses below): ranges lie inside the buffers (asserted above).
            // Block ti+1 of act (dz_{t+1}) is only read during step ti: every member finished
            // writing it before the previous barrier. Each member reads and writes only its own
            // units of block ti of act and of dh_rec and dc; c, tc and dh_up are read-only.
            let dz_next = (ti + 1 < t).then(|| unsafe { sa.slice((ti + 1) * b * g4, b * g4) });
            for p in my_panels(me, n, np) {
                dh_of(p, &mut outs, dz_next);
                outs.clear();
                let (u0, nu) = (p * PANEL, PANEL.min(hd - p * PANEL));
                for r in 0..b {
                    let z = |g: usize| unsafe { sa.slice_mut((ti * b + r) * g4 + g * hd + u0, nu) };
                    let gates = Gates { i: z(0), f: z(1), g: z(2), o: z(3) };
                    let o = r * hd + u0;
                    let (dh, dcr) = unsafe { (sdh.slice(o, nu), sdc.slice_mut(o, nu)) };
                    R::cell_backward(
                        gates,
                        &c[ti * bh + o..][..nu],
                        &tc[ti * bh + o..][..nu],
                        &dh_up[ti * bh + o..][..nu],
                        dh,
                        dcr,
                    );
                }
                // db += Σ_rows dz_t for this member's units (time T-1 down to 0, rows in order:
                // a fixed order, whatever the team size).
                for g in 0..4 {
                    // SAFETY: this member's units of gate g in db, and of block ti of act.
                    let acc = unsafe { sdb.slice_mut(g * hd + u0, nu) };
                    for r in 0..b {
                        let dz = unsafe { sa.slice((ti * b + r) * g4 + g * hd + u0, nu) };
                        acc.iter_mut().zip(dz).for_each(|(a, &d)| *a += d);
                    }
                }
            }
            barrier.wait();
        }
        // d loss / d h0 = dz_0 · W_hhᵀ; dz_0 is complete after the last barrier.
        // SAFETY: block 0 of act is no longer written by anyone.
        let dz0 = unsafe { sa.slice(0, b * g4) };
        for p in my_panels(me, n, np) {
            dh_of(p, &mut outs, Some(dz0));
        }
    });
}
