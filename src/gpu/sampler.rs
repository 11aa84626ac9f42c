//! [`GpuSampler`]: generation on the GPU, N streams one character at a time, and runs of
//! characters drawn on the device without a trip to the host per character.
//!
//! The sampler lays the network out for a window of K steps (`Net` with T = K) and records
//! one program:
//!
//! ```text
//! resume                           the state: block m -> block 0 (m = steps fed last time)
//! for k in 0 .. K:
//!     the layers' forward steps at time k (one dispatch per layer: each needs the one below)
//!     logits_draw: logits_k = y_top,k · W_d + b_d, x_{k+1} = draw(logits_k), written where
//!                  step k+1 reads its input          <- Sampler::step runs up to here (k = 0)
//! ```
//!
//! [`Sampler::run_ahead`] runs a prefix of it and reads every step's logits and draws back at
//! the end. The host redraws each with its own rule (`sample::draw`, in f64, behind the guide's
//! mask and the script where they apply: the device draws unguided, in f32) and keeps the run up
//! to the first draw it makes differently ([`Sampler::rewind`]); so the text is the host's draws
//! over the device's logits, the same as one [`Sampler::step`] at a time, with the same seed.

use super::context::{
    Cost, Family, Gpu, Kernel, Program, ProgramBuilder, StepUniform, Storage, block, cdiv, fbits, grid_1d,
};
use super::lstm::forward_steps;
use super::net::Net;
use crate::backend::{DrawRule, Sampler};
use crate::error::{Error, Result};
use crate::model::{BatchConfig, ModelConfig, Params};

pub(crate) const RESUME: Kernel = Kernel::new(Family::Sample, "resume");
pub(crate) const DRAW: Kernel = Kernel::new(Family::Sample, "logits_draw");

/// Longest run of steps one program holds.
pub(crate) const MAX_RUN: usize = 64;
/// Rows (steps × streams) a run holds at most: fewer steps per run for many streams.
const RUN_ROWS: usize = 1024;
/// Words of a run's settings in `ids` (the shader's `run_off`): m, stream 0, 1/T, top-k.
const RUN_WORDS: usize = 4;
/// Layers the resume block has room for (the shader's `slots`: two per vec4).
const MAX_LAYERS: usize = 26;

/// The device side of a sampler for one stream count.
struct Streams {
    net: Net,
    storage: Storage,
    /// resume, then per step k: the forward steps, the logits with the draw.
    program: Program,
    /// Dispatches of the program through step k (its logits and draw).
    ends: Vec<usize>,
    /// Where the run's settings start in `ids`.
    run_word: usize,
    /// `[K, N, V]` logits, then `[K, N]` draws, on their way back.
    staging: wgpu::Buffer,
    /// The state block the state stands in: steps fed since the last resume.
    at: usize,
    /// Steps the last run ahead ran (what [`Sampler::rewind`] may keep).
    ran: usize,
}

/// Runs the network one token at a time for N streams on the GPU. [`Sampler::step`] returns
/// the logits to the host, where the draw happens; [`Sampler::run_ahead`] draws on the device
/// for up to 64 steps per submission (see the module notes).
pub struct GpuSampler {
    gpu: Gpu,
    cfg: ModelConfig,
    params: wgpu::Buffer,
    streams: Option<Streams>,
    /// Longest run ahead (0: none; every step goes through the host).
    run: usize,
    /// Added to the device's draw counter (tests: device draws the host overrules).
    skew: u32,
}

impl GpuSampler {
    /// Uploads `params`; call [`Sampler::reset`] before the first step.
    pub fn new(params: &Params<f32>) -> Result<Self> {
        params.config.validate()?;
        if params.data.len() != params.layout.total {
            return Err(Error::Shape(format!(
                "parameter buffer holds {} values, the layout {}",
                params.data.len(),
                params.layout.total
            )));
        }
        let gpu = Gpu::new()?;
        let buf = gpu.storage("params", params.data.len())?;
        gpu.write(&buf, 0, &params.data);
        Ok(GpuSampler { gpu, cfg: params.config, params: buf, streams: None, run: MAX_RUN, skew: 0 })
    }

    /// The adapter in use: "name (backend)".
    pub fn adapter(&self) -> String {
        self.gpu.describe()
    }

    /// Sets the longest run [`Sampler::run_ahead`] makes (at most 64; 0: it makes
    /// none, and generation steps through the host every character). Takes effect at the next
    /// [`Sampler::reset`] with a new stream count, or now when called before the first.
    pub fn set_run_ahead(&mut self, steps: usize) {
        self.run = steps.min(MAX_RUN);
        self.streams = None;
    }

    /// For tests: the device draws with counter + `by`, so the host overrules most of its draws
    /// and every run ends early ([`Sampler::rewind`]); the text must not change.
    #[doc(hidden)]
    pub fn skew_draws(&mut self, by: u32) {
        self.skew = by;
    }

    /// Steps per run for `count` streams.
    fn run_len(&self, count: usize) -> usize {
        run_steps(count, self.run)
    }

    /// The dispatches of the program [`Sampler::reset`] recorded, in order (what
    /// [`super::plan::sample_plan`] lists); empty before the first reset.
    pub fn plan(&self) -> Vec<super::DispatchInfo> {
        self.streams.as_ref().map_or_else(Vec::new, |s| s.program.plan().to_vec())
    }

    fn build(&self, count: usize) -> Result<Streams> {
        let gpu = &self.gpu;
        let v = self.cfg.vocab;
        let k = self.run_len(count);
        let net = Net::new(&self.cfg, count, k)?;
        let run_word = net.ids_len;
        let storage = Storage::with_params(gpu, self.params.clone(), 1, 1, net.work_len, net.ids_len + RUN_WORDS)?;
        // Dropout off: the kernels read the step uniform, all zero but the draws' key and counter.
        gpu.write(&storage.step, 0, std::slice::from_ref(&StepUniform::default()));
        // P = embedding · W_ih0 once: the weights do not change while sampling.
        let mut pb = ProgramBuilder::new(gpu);
        net.record_p0(&mut pb)?;
        pb.finish(&storage)?.run::<f32>(gpu, None)?;

        let mut pb = ProgramBuilder::new(gpu);
        let ends = record_run(&mut pb, &net, run_word)?;
        let program = pb.finish(&storage)?;
        let staging = gpu.staging(k * count * (v + 1))?;
        Ok(Streams { net, storage, program, ends, run_word, staging, at: 0, ran: 0 })
    }
}

/// The streams, or the error of a sampler used before [`Sampler::reset`].
fn started(streams: &mut Option<Streams>) -> Result<&mut Streams> {
    streams.as_mut().ok_or_else(|| Error::Config("the sampler needs reset(count) before its first step".into()))
}

/// Records the sampler's program for `net` (T = the run's K steps; the run's settings at word
/// `run_word` of ids): resume, then per step the layers' forward steps and the logits with the draw.
/// Returns the dispatches through each step.
pub(crate) fn record_run(pb: &mut ProgramBuilder, net: &Net, run_word: usize) -> Result<Vec<usize>> {
    let (count, k) = (net.b, net.t);
    let (h, v, layers) = (net.cfg.hidden, net.cfg.vocab, net.cfg.layers);
    if layers > MAX_LAYERS {
        return Err(Error::Config(format!(
            "the GPU sampler takes at most {MAX_LAYERS} layers, the model has {layers}; use --device cpu"
        )));
    }
    pb.split_scratch = Some((net.split, net.split_len));
    pb.phase(RESUME_PHASE);
    let bh = count * h;
    let mut words = vec![count, v, 0, 0, 0, run_word, layers, bh, 0, 0, 0, h];
    words.extend(net.state_slots().into_iter().flat_map(|(h, c)| [h, c]));
    let [x, y, _] = grid_1d(layers * bh, 64, pb.max_groups);
    pb.dispatch(RESUME, block(&words), [x, y, 1], Cost::new(64, 1, layers * bh))?;
    let lo = &net.layout;
    let top = net.layers[layers - 1].y;
    let mut ends = Vec::with_capacity(k);
    for t in 0..k {
        pb.phase(super::net::phase::RECURRENT_FORWARD);
        for l in 0..layers {
            forward_steps(pb, (count, h), &[net.forward_args(l, t)])?;
        }
        pb.phase(DRAW_PHASE);
        let w = [
            count,
            v,
            net.logits + t * count * v,
            net.ids_x + (t + 1) * count,
            t,
            run_word,
            layers,
            bh,
            top + t * bh,
            lo.dense_w.range.start,
            lo.dense_b.range.start,
            h,
        ];
        // An invocation: the dot products of its columns, their ranks (top-k) and exponentials
        // twice, a 6-level tree, the 64 partial sums, and its walk.
        let per = v.div_ceil(64);
        let chain = per * h + 3 * per * (v + 1) + 6 + 64;
        pb.dispatch(
            DRAW,
            block(&w),
            [cdiv(count, 1), 1, 1],
            Cost::new(64, chain, count * (v * h + 64 * (chain - per * h))),
        )?;
        ends.push(pb.plan().len());
    }
    Ok(ends)
}

/// Steps per run for `count` streams when runs are at most `most` long: [`RUN_ROWS`] rows at
/// most, at least 1.
pub(crate) fn run_steps(count: usize, most: usize) -> usize {
    (RUN_ROWS / count.max(1)).clamp(1, most.clamp(1, MAX_RUN))
}

/// The phases of the sampler's own dispatches (`bench --plan`).
pub(crate) const RESUME_PHASE: &str = "resume state";
pub(crate) const DRAW_PHASE: &str = "logits and draw";

/// One token per stream, checked by the rule every engine applies to a window
/// ([`crate::corpus::window_time_major`], a window of N streams × 1 step).
fn stream_tokens(tokens: &[u32], n: usize, v: usize) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; n];
    crate::corpus::window_time_major(tokens, None, BatchConfig { batch: n, seq: 1 }, v, &mut ids, None)?;
    Ok(ids)
}

impl Sampler for GpuSampler {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn reset(&mut self, count: usize) -> Result<()> {
        crate::backend::check_stream_count(count)?;
        match &mut self.streams {
            Some(s) if s.net.b == count => {
                let zeros = vec![0.0f32; count * self.cfg.hidden];
                for (h, c) in s.net.state_slots() {
                    self.gpu.write(&s.storage.work, h, &zeros);
                    self.gpu.write(&s.storage.work, c, &zeros);
                }
                s.at = 0;
                s.ran = 0;
            }
            _ => {
                self.streams = None;
                self.streams = Some(self.build(count)?);
            }
        }
        self.gpu.check()
    }

    fn step(&mut self, tokens: &[u32], logits: &mut [f32]) -> Result<()> {
        let v = self.cfg.vocab;
        let gpu = &self.gpu;
        let s = started(&mut self.streams)?;
        let n = s.net.b;
        if logits.len() != n * v {
            return Err(Error::Shape(format!(
                "logits buffer holds {} values, needs streams*vocab = {n}*{v} = {}",
                logits.len(),
                n * v
            )));
        }
        gpu.write(&s.storage.ids, s.net.ids_x, &stream_tokens(tokens, n, v)?);
        gpu.write(&s.storage.ids, s.run_word, &[s.at as u32]);
        let copy = (&s.storage.work, s.net.logits, n * v, &s.staging, 0);
        s.program.submit_first(gpu, s.ends[0], &[copy]);
        let out: Vec<f32> = gpu.map_read(&s.staging, n * v)?;
        logits.copy_from_slice(&out);
        s.at = 1;
        s.ran = 0;
        Ok(())
    }

    fn run_ahead(
        &mut self,
        tokens: &[u32],
        steps: usize,
        counter: u32,
        rule: &DrawRule,
        logits: &mut Vec<f32>,
        drawn: &mut Vec<u32>,
    ) -> Result<usize> {
        if self.run == 0 {
            return Ok(0);
        }
        let (v, skew) = (self.cfg.vocab, self.skew);
        let gpu = &self.gpu;
        let s = started(&mut self.streams)?;
        let n = s.net.b;
        let k = steps.min(s.ends.len());
        if k == 0 {
            return Ok(0);
        }
        let top_k = rule.top_k.filter(|&t| t < v).map_or(0, |t| t.max(1)) as u32;
        gpu.write(&s.storage.ids, s.net.ids_x, &stream_tokens(tokens, n, v)?);
        gpu.write(&s.storage.ids, s.run_word, &[s.at as u32, rule.stream0, fbits(1.0 / rule.temperature), top_k]);
        let uniform = StepUniform {
            key0: rule.key.k0,
            key1: rule.key.k1,
            counter: counter.wrapping_add(skew),
            ..Default::default()
        };
        gpu.write(&s.storage.step, 0, std::slice::from_ref(&uniform));
        let copies = [
            (&s.storage.work, s.net.logits, k * n * v, &s.staging, 0),
            (&s.storage.ids, s.net.ids_x + n, k * n, &s.staging, k * n * v),
        ];
        s.program.submit_first(gpu, s.ends[k - 1], &copies);
        // One readback: the logits' bits, then the draws.
        let mut words: Vec<u32> = gpu.map_read(&s.staging, k * n * (v + 1))?;
        *drawn = words.split_off(k * n * v);
        *logits = words.into_iter().map(f32::from_bits).collect();
        s.at = k;
        s.ran = k;
        Ok(k)
    }

    fn rewind(&mut self, fed: usize) -> Result<()> {
        let s = started(&mut self.streams)?;
        if fed == 0 || fed > s.ran {
            return Err(Error::Config(format!(
                "rewind to {fed} steps of a run of {}: keep 1 to {} of them",
                s.ran, s.ran
            )));
        }
        s.at = fed;
        Ok(())
    }
}
