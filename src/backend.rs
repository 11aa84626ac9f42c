//! The seam between the math and everything else.
//!
//! A backend computes one training step and one sampling step; the training loop, Adam's
//! bookkeeping in checkpoints, the CLI and the sampler do not know whether the numbers live in
//! RAM ([`crate::cpu::CpuBackend`]) or on a GPU ([`crate::gpu::GpuTrainer`]).

use crate::error::Result;
use crate::model::{ModelConfig, Params};
use crate::optim::AdamState;
use crate::rng::Key;

/// Per-step settings that may change while training.
#[derive(Clone, Copy, Debug)]
pub struct StepOptions {
    /// Adam learning rate.
    pub lr: f32,
    /// Clip the global gradient norm to this value before the update (None: no clipping).
    pub clip: Option<f32>,
    /// Decoupled weight decay λ (AdamW): each parameter shrinks by `1 - lr·λ` per update
    /// ([`crate::optim::adamw_update`]); 0 is plain Adam.
    pub weight_decay: f32,
    /// Weight drop on the recurrent weights ([`crate::cpu::Dropout::weight_drop`]); 0: off.
    /// The CPU engine only.
    pub weight_drop: f32,
    /// Key of the dropout masks (from `--rng-seed`).
    pub key: Key,
    /// Global step counter: the dropout masks of this step are a function of (key, counter).
    pub counter: u32,
}

/// What one training or evaluation step measured, computed from the step's own numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    /// Mean cross-entropy over the window's B*T positions, in nats.
    pub loss: f32,
    /// Positions whose argmax prediction equals the target.
    pub correct: u32,
    /// Positions in the window (B*T).
    pub tokens: u32,
    /// Global L2 norm of the gradient before clipping (0 for evaluation steps).
    pub grad_norm: f32,
    /// Whether the step was fit to apply: false when the loss or a gradient was NaN or infinite,
    /// or the gradient norm Adam would see reached `optim::MAX_UPDATE_NORM` (its f32 moments
    /// would overflow); the parameters were then left unchanged. Evaluation: the loss is finite.
    pub in_range: bool,
}

/// Trains one model: holds parameters, Adam moments and the carried (h, c) state.
pub trait Trainer {
    /// A short human-readable name ("cpu (2 threads, avx512)", "gpu (NVIDIA H100, vulkan)").
    fn describe(&self) -> String;
    /// The model's configuration.
    fn config(&self) -> &ModelConfig;
    /// Zeroes the carried (h, c) of every layer (start of an epoch, or before validation).
    fn reset_state(&mut self);
    /// Forward, backward, optional clipping and one Adam update on a window.
    /// `x`, `y`: `[B, T]` token ids and next-token targets. The final (h, c) is carried.
    /// When the loss or a gradient is not finite (or too large for Adam's f32 moments), no update is
    /// applied and `in_range` is false.
    fn train_step(&mut self, x: &[u32], y: &[u32], opts: &StepOptions) -> Result<StepStats>;
    /// [`Trainer::train_step`] on each window in turn, with its own options; the same results.
    /// An engine that can queue a step before the previous one's results are read (the GPU)
    /// does so, up to [`Trainer::queue_depth`] steps per call. A step that was not
    /// `in_range` does not stop the later ones of the call: a caller that stops there should
    /// not keep the parameters (the training loop stops without saving them).
    fn train_steps(&mut self, windows: &[(&[u32], &[u32])], opts: &[StepOptions]) -> Result<Vec<StepStats>> {
        if windows.len() != opts.len() {
            return Err(crate::error::Error::Shape(format!(
                "{} windows and {} step options",
                windows.len(),
                opts.len()
            )));
        }
        windows.iter().zip(opts).map(|(&(x, y), o)| self.train_step(x, y, o)).collect()
    }
    /// How many steps [`Trainer::train_steps`] gains from being given at once (1: none).
    fn queue_depth(&self) -> usize {
        1
    }
    /// Forward only, dropout off, carrying (h, c): loss and accuracy of a window.
    fn eval_step(&mut self, x: &[u32], y: &[u32]) -> Result<StepStats>;
    /// [`Trainer::eval_step`] on each window in turn; the same results. The GPU queues them,
    /// up to [`Trainer::queue_depth`] per readback.
    fn eval_steps(&mut self, windows: &[(&[u32], &[u32])]) -> Result<Vec<StepStats>> {
        windows.iter().map(|&(x, y)| self.eval_step(x, y)).collect()
    }
    /// A copy of the current parameters.
    fn params(&self) -> Result<Params<f32>>;
    /// A copy of the optimizer state (moments and step count).
    fn adam_state(&self) -> Result<AdamState>;
    /// The carried `(h, c)`, `[L, B, H]` each (saved when training stops mid-epoch).
    fn state(&self) -> Result<(Vec<f32>, Vec<f32>)>;
    /// Restores a carried state returned by [`Trainer::state`].
    fn set_state(&mut self, h: &[f32], c: &[f32]) -> Result<()>;
}

/// Generates text: runs the network one character at a time for N independent streams.
pub trait Sampler {
    /// The model's configuration.
    fn config(&self) -> &ModelConfig;
    /// Starts `count` fresh streams with zero state.
    fn reset(&mut self, count: usize) -> Result<()>;
    /// Feeds one token per stream (`tokens: [N]`) and writes the next-token logits `[N, V]`.
    fn step(&mut self, tokens: &[u32], logits: &mut [f32]) -> Result<()>;
    /// Runs up to `steps` steps without the host in between, for an engine that can draw where
    /// its logits are (the GPU): feeds `tokens`, then at every step k draws each stream's next
    /// token by `rule` with counter `counter + k` and feeds it to step k + 1. Leaves each step's
    /// logits in `logits: [k, N, V]` and its draws in `drawn: [k, N]`, and returns how many
    /// steps it ran (0: this engine does not run ahead; the caller calls [`Sampler::step`]).
    /// The state then stands after the steps run; see [`Sampler::rewind`].
    fn run_ahead(
        &mut self,
        _tokens: &[u32],
        _steps: usize,
        _counter: u32,
        _rule: &DrawRule,
        _logits: &mut Vec<f32>,
        _drawn: &mut Vec<u32>,
    ) -> Result<usize> {
        Ok(0)
    }
    /// After [`Sampler::run_ahead`]: keeps only the first `fed` of its steps (1 or more), as if
    /// the run had stopped there; the next step's input is then the caller's own draw of step
    /// `fed - 1`.
    fn rewind(&mut self, _fed: usize) -> Result<()> {
        Ok(())
    }
}

/// How [`Sampler::run_ahead`] draws: [`crate::sample::draw`]'s rule, with the uniform number
/// `key.uniform(counter, stream0 + s, 0)` for stream s.
#[derive(Clone, Copy, Debug)]
pub struct DrawRule {
    pub key: Key,
    pub temperature: f32,
    pub top_k: Option<usize>,
    /// The draw stream of stream 0.
    pub stream0: u32,
}

/// The rule every [`Sampler::reset`] applies to its stream count: at least one stream.
pub fn check_stream_count(count: usize) -> Result<()> {
    if count == 0 {
        return Err(crate::error::Error::Config("--count 0: needs at least 1 tune".into()));
    }
    Ok(())
}
