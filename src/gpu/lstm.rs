//! Host side of `shaders/lstm.wgsl`: one time step of an LSTM layer, forward and backward, with
//! the recurrent product and the gate math fused.

use super::context::{Cost, Family, Kernel, ProgramBuilder, block, cdiv};
use crate::error::Result;

const FORWARD: Kernel = Kernel::new(Family::Lstm, "forward_step");
const BACKWARD: Kernel = Kernel::new(Family::Lstm, "backward_step");

/// Batch rows (RB) and hidden units (FU) per workgroup, as in the shader.
const RB: usize = 16;
const FU: usize = 64;

/// Word offsets in `work` (and `params` for `w` in the forward step) of one step's tensors.
/// Shapes: `z, dznext: [B, 4H]`; `hprev, cprev, c, h, tc, y, dy, dc: [B, H]`;
/// `w`: forward `W_hh [H, 4H]` in params, backward `W_hhᵀ [4H, H]` in work.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StepArgs {
    pub b: usize,
    pub h: usize,
    pub layer: usize,
    /// t·B: the time-major row of the step's first batch row (dropout index).
    pub row0: usize,
    pub z: usize,
    pub hprev: usize,
    pub cprev: usize,
    pub c: usize,
    pub h_out: usize,
    pub tc: usize,
    pub y: usize,
    pub w: usize,
    pub dy: usize,
    pub dc: usize,
    /// dz_{t+1}; None at t = T-1 (truncation: dh_rec and the carried dc start at 0).
    pub dznext: Option<usize>,
}

impl StepArgs {
    fn words(&self) -> [usize; 16] {
        [
            self.b,
            self.h,
            self.layer,
            self.row0,
            self.z,
            self.hprev,
            self.cprev,
            self.c,
            self.h_out,
            self.tc,
            self.y,
            self.w,
            self.dy,
            self.dc,
            self.dznext.unwrap_or(u32::MAX as usize),
            0,
        ]
    }
}

/// Records one forward step: `z_t += h_{t-1}·W_hh`, the gates, `c_t`, `tanh(c_t)`, `h_t`, and
/// `y_t = h_t ⊙ mask_t`.
pub(crate) fn forward_step(pb: &mut ProgramBuilder, a: &StepArgs) -> Result<()> {
    // Each invocation: 16 rows x 4 gates of its unit over all H of k.
    let cost = Cost::new(FU as u32, RB * 4 * a.h, a.b * 4 * a.h * a.h);
    pb.dispatch(FORWARD, block(&a.words()), [cdiv(a.h, FU), cdiv(a.b, RB), 1], cost)
}

/// Records one backward step: `dh_rec = dz_{t+1}·W_hhᵀ`, then the cell backward, leaving dz_t over
/// the activations at `z` and `dc_{t-1}` in `dc`.
pub(crate) fn backward_step(pb: &mut ProgramBuilder, a: &StepArgs) -> Result<()> {
    // Each invocation: 16 rows of its unit over all 4H of k.
    let cost = Cost::new(FU as u32, RB * 4 * a.h, a.b * 4 * a.h * a.h);
    pb.dispatch(BACKWARD, block(&a.words()), [cdiv(a.h, FU), cdiv(a.b, RB), 1], cost)
}
