//! Host side of `shaders/lstm.wgsl`: time steps of LSTM layers, forward and backward, with the
//! recurrent product, the layer's input product (above layer 0) and the gate math fused. One
//! dispatch runs one step of up to [`LANES`] layers side by side: the layer wavefront of
//! `net.rs`, where the layers' steps of one dispatch never read each other's output.

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

/// The forward step for batches of at most [`NARROW_RB`] rows: one quad of rows per workgroup
/// and k split [`NARROW_KSF`] ways (the shader's overrides FRQ and KSF), the same 128
/// invocations per workgroup with a quarter of the chain.
const NARROW_RB: usize = 4;
const NARROW_KSF: usize = 64;
const FORWARD_NARROW: Kernel = Kernel {
    overrides: &[("FRQ", (NARROW_RB / 4) as u32), ("KSF", NARROW_KSF as u32)],
    ..Kernel::new(Family::Lstm, "forward_step")
};

/// Layer steps one dispatch holds (the shader's `array<Lane, 3>`, what a 64-word parameter
/// block has room for); more layers take more dispatches per wavefront step.
pub(crate) const LANES: usize = 3;

/// Words of one lane in the parameter block (the shader's `Lane`).
const LANE_WORDS: usize = 20;

const NONE: usize = u32::MAX as usize;

/// Workgroups of one dispatch of `rb` rows per workgroup: `(ceil(H/UW), ceil(B/rb), lanes)`.
fn grid(b: usize, h: usize, rb: usize, lanes: usize) -> [u32; 3] {
    [cdiv(h, UW), cdiv(b, rb), lanes as u32]
}

/// Word offsets in `work` (and `params` for the weights) of one layer's step. Shapes:
/// `z, dznext, above: [B, 4H]`; `hprev, cprev, c, h, tc, y, x, dy, dc: [B, H]`; `w, w_ih,
/// w_above: [H, 4H]` and `bias: [4H]` in params.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StepArgs {
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
    /// This layer's W_hh.
    pub w: usize,
    /// Forward, above layer 0: the layer below's y_t, this layer's W_ih and b (`z` is then
    /// written, not read).
    pub input: Option<(usize, usize, usize)>,
    /// Forward, layer 0: the step's B input symbols (in ids), P = embedding·W_ih [V, 4H] (in
    /// work) and b. With neither this nor `input`, `z` holds x_t·W_ih + b on entry.
    pub symbols: Option<(usize, usize, usize)>,
    /// Backward: d loss / d y_t for the top layer; below it, None, and `above` gives the layer
    /// above's dz_t and W_ih, from which the step computes d loss / d y_t itself.
    pub dy: Option<usize>,
    pub above: Option<(usize, usize)>,
    /// Backward: this layer's carried dc.
    pub dc: usize,
    /// dz_{t+1}; None at t = T-1 (truncation: dh_rec and the carried dc start at 0).
    pub dznext: Option<usize>,
}

impl StepArgs {
    fn words(&self) -> [usize; LANE_WORDS] {
        let (x, w_ih, bias) = self.input.unwrap_or((NONE, 0, 0));
        let (tok, p0, bias) = match self.symbols {
            Some((tok, p0, b)) => (tok, p0, b),
            None => (NONE, 0, bias),
        };
        let (above, w_above) = self.above.unwrap_or((NONE, 0));
        [
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
            x,
            w_ih,
            bias,
            self.dy.unwrap_or(NONE),
            above,
            w_above,
            self.dc,
            self.dznext.unwrap_or(NONE),
            tok,
            p0,
        ]
    }
}

/// The parameter block of one dispatch: `[B, H, lanes, 0]`, then each lane's words.
fn lanes_block(b: usize, h: usize, steps: &[StepArgs]) -> [u32; 64] {
    debug_assert!(steps.len() <= LANES);
    let mut words = vec![b, h, steps.len(), 0];
    for s in steps {
        words.extend(s.words());
    }
    block(&words)
}

/// Records forward steps of several layers (each `input` set above layer 0), [`LANES`] per
/// dispatch: `z_t = x_t·W_ih + b + h_{t-1}·W_hh`, the gates, `c_t`, `tanh(c_t)`, `h_t`, and
/// `y_t = h_t ⊙ mask_t`. The steps must not read each other's output.
pub(crate) fn forward_steps(pb: &mut ProgramBuilder, (b, h): (usize, usize), steps: &[StepArgs]) -> Result<()> {
    let (kernel, rb, ksf) = if b <= NARROW_RB { (FORWARD_NARROW, NARROW_RB, NARROW_KSF) } else { (FORWARD, RB, KSF) };
    for chunk in steps.chunks(LANES) {
        // An invocation: 4 rows x 4 gates per k of its slice of H, once for h_{t-1} and once
        // more for x_t above layer 0, then log2(ksf) tree levels adding those 16 sums.
        let products = chunk.len() + chunk.iter().filter(|s| s.input.is_some()).count();
        let per_k = if chunk.iter().any(|s| s.input.is_some()) { 32 } else { 16 };
        let chain = per_k * h.div_ceil(ksf) + 16 * ksf.ilog2() as usize;
        let cost = Cost::new((UW * rb / 4 * ksf) as u32, chain, products * b * 4 * h * h);
        pb.dispatch(kernel, lanes_block(b, h, chunk), grid(b, h, rb, chunk.len()), cost)?;
    }
    Ok(())
}

/// Records backward steps of several layers, [`LANES`] per dispatch: `dh_rec = dz_{t+1}·W_hhᵀ`
/// (reading `W_hh [H, 4H]` by rows), below the top `dy_t = dz_t^{l+1}·W_ih^{l+1}ᵀ`, then the
/// cell backward, leaving dz_t over the activations at `z` and `dc_{t-1}` in `dc`.
pub(crate) fn backward_steps(pb: &mut ProgramBuilder, (b, h): (usize, usize), steps: &[StepArgs]) -> Result<()> {
    for chunk in steps.chunks(LANES) {
        // An invocation: 4 rows per k of its slice of 4H, for dz_{t+1} and for the layer
        // above's dz_t, then log2(KSB) tree levels adding 4 sums (two trees side by side).
        let products = chunk.iter().map(|s| s.dznext.is_some() as usize + s.above.is_some() as usize).sum::<usize>();
        let most = chunk.iter().map(|s| s.dznext.is_some() as usize + s.above.is_some() as usize).max().unwrap_or(0);
        let chain = most * 4 * (4 * h).div_ceil(KSB) + 4 * KSB.ilog2() as usize;
        let cost = Cost::new((UW * RB / 4 * KSB) as u32, chain, products * b * 4 * h * h);
        pb.dispatch(BACKWARD, lanes_block(b, h, chunk), grid(b, h, RB, chunk.len()), cost)?;
    }
    Ok(())
}
