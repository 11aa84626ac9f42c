//! Host side of `shaders/lstm.wgsl`: one time step of an LSTM layer, forward and backward, with
//! the recurrent product and the gate math fused.

use super::context::{Cost, Family, Kernel, ProgramBuilder, block, cdiv};
use crate::error::Result;

const FORWARD: Kernel = Kernel::new(Family::Lstm, "forward_step");
const BACKWARD: Kernel = Kernel::new(Family::Lstm, "backward_step");

/// Hidden units (UW) and batch rows (RB) per workgroup, and the ways the dot products' k is
/// split across a workgroup forward (KSF) and backward (KSB), as in the shader.
const UW: usize = 2;
const RB: usize = 16;
const KSF: usize = 16;
const KSB: usize = 32;

/// Workgroups of one step: `(ceil(H/UW), ceil(B/RB))`.
fn grid(b: usize, h: usize) -> [u32; 3] {
    [cdiv(h, UW), cdiv(b, RB), 1]
}

/// Word offsets in `work` (and `params` for `w` in the forward step) of one step's tensors.
/// Shapes: `z, dznext: [B, 4H]`; `hprev, cprev, c, h, tc, y, dy, dc: [B, H]`;
/// `w`: `W_hh [H, 4H]` in params.
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
    // An invocation: 4 rows x 4 gates per k of its slice of H, then log2(KSF) tree levels
    // adding those 16 sums.
    let chain = 16 * a.h.div_ceil(KSF) + 16 * KSF.ilog2() as usize;
    let cost = Cost::new((UW * RB / 4 * KSF) as u32, chain, a.b * 4 * a.h * a.h);
    pb.dispatch(FORWARD, block(&a.words()), grid(a.b, a.h), cost)
}

/// Records one backward step: `dh_rec = dz_{t+1}·W_hhᵀ` (reading `W_hh [H, 4H]` by rows), then
/// the cell backward, leaving dz_t over the activations at `z` and `dc_{t-1}` in `dc`.
pub(crate) fn backward_step(pb: &mut ProgramBuilder, a: &StepArgs) -> Result<()> {
    // An invocation: 4 rows per k of its slice of 4H, then log2(KSB) tree levels adding 4 sums.
    let chain = 4 * (4 * a.h).div_ceil(KSB) + 4 * KSB.ilog2() as usize;
    let cost = Cost::new((UW * RB / 4 * KSB) as u32, chain, a.b * 4 * a.h * a.h);
    pb.dispatch(BACKWARD, block(&a.words()), grid(a.b, a.h), cost)
}
