//! Host side of `shaders/xent.wgsl`: softmax cross-entropy per row and the step's loss sum.

use super::context::{Cost, Family, Kernel, ProgramBuilder, block, cdiv, fbits};
use crate::error::Result;

/// Word offsets (in work, targets in ids) of one softmax cross-entropy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct XentArgs {
    /// Rows N.
    pub rows: usize,
    /// Vocabulary V.
    pub v: usize,
    /// `logits: [N, V]`.
    pub logits: usize,
    /// `dlogits: [N, V]`, or None for evaluation.
    pub dlogits: Option<usize>,
    /// Targets `[N]` in the ids buffer.
    pub targets: usize,
    /// Per-row loss `[N]`, then per-row hit `[N]`.
    pub rows_out: usize,
    /// Scalars: `[0]` Σ loss, `[1]` Σ hits.
    pub out: usize,
}

/// Records the per-row loss, hit and `dlogits = (softmax - onehot) / N`, then their sums.
pub(crate) fn softmax_xent(pb: &mut ProgramBuilder, a: &XentArgs) -> Result<()> {
    let mut w = block(&[a.rows, a.v, a.logits, a.dlogits.unwrap_or(u32::MAX as usize), a.targets, a.rows_out, a.out]);
    w[7] = fbits((1.0 / a.rows as f64) as f32);
    // One row per invocation: three passes over its V logits (max, Σ exp, dlogits).
    let rows = Cost::new(64, 3 * a.v, 3 * a.v * a.rows);
    pb.dispatch(Kernel::new(Family::Xent, "softmax_xent"), w, [cdiv(a.rows, 64), 1, 1], rows)?;
    // One workgroup of 256: a strided pass over the rows, then an 8-level tree.
    let sums = Cost::new(256, a.rows.div_ceil(256) + 8, 2 * a.rows);
    pb.dispatch(Kernel::new(Family::Xent, "reduce_loss"), w, [1, 1, 1], sums)
}
