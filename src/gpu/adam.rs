//! Host side of `shaders/adam.wgsl`: the global gradient norm, clipping and the Adam update.

use super::context::{Cost, Family, Kernel, ProgramBuilder, block, grid_1d};
use crate::error::Result;

/// Gradient elements summed by one workgroup of the norm's first stage.
const CHUNK: usize = 4096;

/// Records ‖g‖ over `n` gradients (two stages through `parts` in work), the finiteness flag
/// (loss sum at `out`, ‖g‖) and the clipping scale, into the scalars at `out`; with `counts`
/// (an update follows), a finite step also advances Adam's t at `out + 5`.
pub(crate) fn grad_norm(pb: &mut ProgramBuilder, n: usize, parts: usize, out: usize, counts: bool) -> Result<()> {
    let nparts = n.div_ceil(CHUNK);
    let w = block(&[n, CHUNK, nparts, parts, out, counts as usize]);
    let g = grid_1d(nparts, 1, pb.max_groups);
    // 256 invocations per workgroup: a strided pass, then an 8-level tree.
    let sumsq = Cost::new(256, CHUNK / 256 + 8, n);
    pb.dispatch(Kernel::new(Family::Adam, "sumsq"), w, g, sumsq)?;
    let norm = Cost::new(256, nparts.div_ceil(256) + 8, nparts);
    pb.dispatch(Kernel::new(Family::Adam, "norm"), w, [1, 1, 1], norm)
}

/// Number of partial sums [`grad_norm`] needs room for.
pub(crate) fn norm_parts(n: usize) -> usize {
    n.div_ceil(CHUNK)
}

/// Records one Adam update of all `n` parameters (skipped on the device when the step's
/// finiteness flag at `out + 3` is 0), at the step size of the t at `out + 5`.
pub(crate) fn update(pb: &mut ProgramBuilder, n: usize, out: usize) -> Result<()> {
    let w = block(&[n, CHUNK, 0, 0, out]);
    let g = grid_1d(n, 256, pb.max_groups);
    // Per parameter: clip scale, m, v, sqrt, the step: five dependent operations.
    pb.dispatch(Kernel::new(Family::Adam, "update"), w, g, Cost::new(256, 5, 5 * n))
}
