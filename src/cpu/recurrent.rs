//! The sequential part of an LSTM layer: the T recurrent steps, forward and backward.
//!
//! Each step is a small product `[B, H] x [H, 4H]` (forward) or `[B, 4H] x [4H, H]` (backward)
//! followed by the elementwise cell. A general GEMM would repack the whole weight matrix on
//! every one of those 64 steps; here the weights are packed once per call into 32-column
//! panels ([`Panels`]), and each step is split by blocks of 32 hidden units: a worker computes
//! the four gates of its units for every batch row with [`Real::panel_kernel`], then runs the
//! cell on them while they are still in cache. One parallel region (one synchronisation) per
//! step. Every unit block is computed the same way whoever computes it, so results do not
//! depend on the number of threads.

use crate::real::{Gates, PANEL, Real};
use rayon::prelude::*;

/// A weight matrix packed into `[K, 32]` column panels, each contiguous.
#[derive(Clone, Debug, Default)]
pub struct Panels<R> {
    k: usize,
    data: Vec<R>,
}

impl<R: Real> Panels<R> {
    /// Packs `count` panels of depth `k`; `at(panel, row, col)` gives the element or None
    /// (zero padding past the matrix edge).
    fn pack(
        &mut self,
        k: usize,
        count: usize,
        at: impl Fn(usize, usize, usize) -> Option<R> + Sync,
    ) {
        self.k = k;
        self.data.resize(count * k * PANEL, R::ZERO);
        self.data
            .par_chunks_mut(k * PANEL)
            .enumerate()
            .for_each(|(p, dst)| {
                for kk in 0..k {
                    for j in 0..PANEL {
                        dst[kk * PANEL + j] = at(p, kk, j).unwrap_or(R::ZERO);
                    }
                }
            });
    }

    fn panel(&self, p: usize) -> &[R] {
        &self.data[p * self.k * PANEL..(p + 1) * self.k * PANEL]
    }

    /// Packs `w_hh: [H, 4H]` for the forward step: gate g's units 32p.. go to panel `g*np + p`.
    pub fn pack_forward(&mut self, w_hh: &[R], hd: usize) {
        let np = hd.div_ceil(PANEL);
        self.pack(hd, 4 * np, |q, kk, j| {
            let (g, unit) = (q / np, (q % np) * PANEL + j);
            (unit < hd).then(|| w_hh[kk * 4 * hd + g * hd + unit])
        });
    }

    /// Packs `W_hhᵀ: [4H, H]` for the backward step: units 32p.. go to panel p.
    pub fn pack_backward(&mut self, w_hh: &[R], hd: usize) {
        let np = hd.div_ceil(PANEL);
        self.pack(4 * hd, np, |p, kk, j| {
            let unit = p * PANEL + j;
            (unit < hd).then(|| w_hh[unit * 4 * hd + kk])
        });
    }
}

/// Splits each `[4H]` row of `z` into per-panel gate pieces: `out[p][row]` holds the i, f, g, o
/// slices of units 32p.. of that row.
fn gate_pieces<'a, R>(z: &'a mut [R], hd: usize, np: usize) -> Vec<Vec<Gates<'a, R>>> {
    let mut out: Vec<Vec<Gates<'a, R>>> = (0..np).map(|_| Vec::new()).collect();
    for row in z.chunks_exact_mut(4 * hd) {
        let Gates { i, f, g, o } = Gates::split(row);
        let mut it = [i, f, g, o].map(|s| s.chunks_mut(PANEL));
        for piece in out.iter_mut() {
            let [a, b, c, d] = &mut it;
            if let (Some(i), Some(f), Some(g), Some(o)) = (a.next(), b.next(), c.next(), d.next()) {
                piece.push(Gates { i, f, g, o });
            }
        }
    }
    out
}

/// Splits each `[H]` row of `x` into per-panel pieces: `out[p][row]`.
fn unit_pieces<R>(x: &mut [R], hd: usize, np: usize) -> Vec<Vec<&mut [R]>> {
    let mut out: Vec<Vec<&mut [R]>> = (0..np).map(|_| Vec::new()).collect();
    for row in x.chunks_exact_mut(hd) {
        for (piece, s) in out.iter_mut().zip(row.chunks_mut(PANEL)) {
            piece.push(s);
        }
    }
    out
}

/// Read-only version of [`unit_pieces`].
fn unit_pieces_ref<R>(x: &[R], hd: usize, np: usize) -> Vec<Vec<&[R]>> {
    let mut out: Vec<Vec<&[R]>> = (0..np).map(|_| Vec::new()).collect();
    for row in x.chunks_exact(hd) {
        for (piece, s) in out.iter_mut().zip(row.chunks(PANEL)) {
            piece.push(s);
        }
    }
    out
}

/// `out[r] (+)= a[r] · panel` for all rows, in blocks of 8 rows. `a: [rows, lda]`.
fn rows_times_panel<R: Real>(
    a: &[R],
    lda: usize,
    k: usize,
    panel: &[R],
    out: &mut [&mut [R]],
    accumulate: bool,
) {
    for (blk, o) in out.chunks_mut(8).enumerate() {
        R::panel_kernel(&a[blk * 8 * lda..], lda, k, panel, o, accumulate);
    }
}

/// Minimum number of unit blocks per task, so a step forms about one task per thread.
fn min_len(np: usize) -> usize {
    np.div_ceil(rayon::current_num_threads().max(1))
}

/// The T forward steps of one layer.
///
/// ```text
/// act: [T*B, 4H]   holds x_t·W_ih + b on entry, the activations (i, f, g, o) on return
/// h, c: [(T+1)*B, H]  block 0 holds (h0, c0); block t+1 receives (h_t, c_t)
/// tc: [T*B, H]     receives tanh(c_t)
/// for t: z_t += h_{t-1}·W_hh;  (c_t, h_t) = cell(z_t, c_{t-1})
/// ```
#[allow(clippy::too_many_arguments)]
pub fn forward<R: Real>(
    act: &mut [R],
    h: &mut [R],
    c: &mut [R],
    tc: &mut [R],
    w: &Panels<R>,
    b: usize,
    t: usize,
    hd: usize,
) {
    let (np, bh, g4) = (hd.div_ceil(PANEL), b * hd, 4 * hd);
    for ti in 0..t {
        let z = &mut act[ti * b * g4..(ti + 1) * b * g4];
        let (h_done, h_next) = h.split_at_mut((ti + 1) * bh);
        let h_prev = &h_done[ti * bh..];
        let (c_done, c_next) = c.split_at_mut((ti + 1) * bh);
        let c_prev = unit_pieces_ref(&c_done[ti * bh..], hd, np);
        let zs = gate_pieces(z, hd, np);
        let cs = unit_pieces(&mut c_next[..bh], hd, np);
        let tcs = unit_pieces(&mut tc[ti * bh..(ti + 1) * bh], hd, np);
        let hs = unit_pieces(&mut h_next[..bh], hd, np);
        zs.into_par_iter()
            .zip(cs)
            .zip(tcs)
            .zip(hs)
            .zip(c_prev)
            .enumerate()
            .with_min_len(min_len(np))
            .for_each(|(p, ((((mut zp, mut cp), mut tcp), mut hp), cprev))| {
                // z_t[:, gate g, units of p] += h_{t-1} · W_hh[:, gate g, units of p]
                for g in 0..4 {
                    let mut outs: Vec<&mut [R]> = zp
                        .iter_mut()
                        .map(|gs| match g {
                            0 => &mut *gs.i,
                            1 => &mut *gs.f,
                            2 => &mut *gs.g,
                            _ => &mut *gs.o,
                        })
                        .collect();
                    rows_times_panel(h_prev, hd, hd, w.panel(g * np + p), &mut outs, true);
                }
                for (r, gs) in zp.into_iter().enumerate() {
                    R::cell_forward(gs, cprev[r], cp[r], tcp[r], hp[r]);
                }
            });
    }
}

/// The T backward steps of one layer (BPTT through the window, truncated at its start).
///
/// ```text
/// act: [T*B, 4H]  holds the activations on entry, dz_t on return
/// dh_up: [T*B, H] d loss / d h_t from above (after the dropout mask)
/// for t = T-1 .. 0:
///     dh_rec = dz_{t+1} · W_hhᵀ   (0 at t = T-1)
///     (dz_t, dc) = cell_backward(act_t, c_{t-1}, tanh c_t, dh_up_t + dh_rec, dc)
/// on return dh_rec = dz_0 · W_hhᵀ = d loss / d h0 and dc = d loss / d c0
/// ```
#[allow(clippy::too_many_arguments)]
pub fn backward<R: Real>(
    act: &mut [R],
    c: &[R],
    tc: &[R],
    dh_up: &[R],
    dh_rec: &mut [R],
    dc: &mut [R],
    wt: &Panels<R>,
    b: usize,
    t: usize,
    hd: usize,
) {
    let (np, bh, g4) = (hd.div_ceil(PANEL), b * hd, 4 * hd);
    dc.fill(R::ZERO);
    for ti in (0..t).rev() {
        let (cur, later) = act.split_at_mut((ti + 1) * b * g4);
        let dz_next: Option<&[R]> = (ti + 1 < t).then(|| &later[..b * g4]);
        let zs = gate_pieces(&mut cur[ti * b * g4..], hd, np);
        let dhs = unit_pieces(dh_rec, hd, np);
        let dcs = unit_pieces(dc, hd, np);
        let cprev = unit_pieces_ref(&c[ti * bh..(ti + 1) * bh], hd, np);
        let tcs = unit_pieces_ref(&tc[ti * bh..(ti + 1) * bh], hd, np);
        let ups = unit_pieces_ref(&dh_up[ti * bh..(ti + 1) * bh], hd, np);
        zs.into_par_iter()
            .zip(dhs)
            .zip(dcs)
            .zip(cprev)
            .zip(tcs)
            .zip(ups)
            .enumerate()
            .with_min_len(min_len(np))
            .for_each(|(p, (((((zp, mut dhp), mut dcp), cp), tcp), up))| {
                match dz_next {
                    Some(dz) => rows_times_panel(dz, g4, g4, wt.panel(p), &mut dhp, false),
                    None => dhp.iter_mut().for_each(|s| s.fill(R::ZERO)),
                }
                for (r, gs) in zp.into_iter().enumerate() {
                    R::cell_backward(gs, cp[r], tcp[r], up[r], dhp[r], dcp[r]);
                }
            });
    }
    // d loss / d h0 = dz_0 · W_hhᵀ
    let dz0 = &act[..b * g4];
    unit_pieces(dh_rec, hd, np)
        .into_par_iter()
        .enumerate()
        .for_each(|(p, mut dhp)| rows_times_panel(dz0, g4, g4, wt.panel(p), &mut dhp, false));
}
