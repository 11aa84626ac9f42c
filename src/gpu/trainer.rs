//! [`GpuTrainer`]: the whole training step on the GPU behind the [`Trainer`] seam.

use super::context::{ALPHAS, Gpu, Program, ProgramBuilder, StepUniform, Storage};
use super::net::{Net, SCALARS};
use crate::backend::{StepOptions, StepStats, Trainer};
use crate::cpu::Dropout;
use crate::error::{Error, Result};
use crate::model::{BatchConfig, ModelConfig, Params};
use crate::optim::{AdamConfig, AdamState};

/// Trains a model on the GPU: parameters, gradients, Adam's moments, activations and the
/// carried (h, c) stay on the device; a step uploads its tokens and reads back five numbers.
pub struct GpuTrainer {
    gpu: Gpu,
    net: Net,
    storage: Storage,
    /// Forward, loss, backward, norm, Adam, carry: one submission per training step.
    train: Program,
    /// Forward, loss, backward, norm, carry (no update): [`GpuTrainer::forward_backward`].
    fwd_bwd: Program,
    /// Forward, loss, carry: [`Trainer::eval_step`].
    eval: Program,
    /// Host-readable copy of the scalars of up to [`ALPHAS`] queued steps.
    staging: wgpu::Buffer,
    /// Adam's t after the last step read back (the device counts it, scalar 5).
    adam_step: u64,
    adam_cfg: AdamConfig,
    batch: BatchConfig,
}

impl GpuTrainer {
    /// A trainer for windows of `batch`, starting from `params` and (when resuming) `adam`.
    /// Fails with [`Error::Gpu`] when there is no adapter or the model does not fit.
    pub fn new(params: Params<f32>, adam: Option<AdamState>, batch: BatchConfig) -> Result<Self> {
        params.config.validate()?;
        batch.validate()?;
        let total = params.data.len();
        if params.layout.total != total {
            return Err(Error::Shape(format!(
                "parameter buffer holds {total} values, the layout {}",
                params.layout.total
            )));
        }
        let adam = adam.unwrap_or_else(|| AdamState::new(total));
        if adam.m.len() != total || adam.v.len() != total {
            return Err(Error::Shape(format!("optimizer state holds {} moments for {total} parameters", adam.m.len())));
        }
        // The device counts Adam's t in 32 bits.
        if adam.step > (u32::MAX as usize - ALPHAS) as u64 {
            return Err(Error::Shape(format!("Adam's step count {} is beyond what the GPU counts", adam.step)));
        }
        let gpu = Gpu::new()?;
        let net = Net::new(&params.config, batch.batch, batch.seq)?;
        let storage = Storage::new(&gpu, total, total, 2 * total, net.work_len, net.ids_len)?;
        gpu.write(&storage.params, 0, &params.data);
        gpu.write(&storage.opt, 0, &adam.m);
        gpu.write(&storage.opt, total, &adam.v);
        gpu.write(&storage.work, net.scalars + 5, &[adam.step as u32]);
        let build = |update: bool, backward: bool| -> Result<Program> {
            let mut pb = ProgramBuilder::new(&gpu);
            net.record_step(&mut pb, update, backward)?;
            pb.finish(&storage)
        };
        let train = build(true, true)?;
        let fwd_bwd = build(false, true)?;
        let eval = build(false, false)?;
        let staging = gpu.staging(ALPHAS * SCALARS)?;
        gpu.check()?;
        Ok(GpuTrainer {
            gpu,
            net,
            storage,
            train,
            fwd_bwd,
            eval,
            staging,
            adam_step: adam.step,
            adam_cfg: AdamConfig::default(),
            batch,
        })
    }

    /// The adapter in use: "name (backend)".
    pub fn adapter(&self) -> String {
        self.gpu.describe()
    }

    /// Dispatches recorded into one training step's single submission.
    pub fn dispatches_per_step(&self) -> usize {
        self.train.len()
    }

    /// What each dispatch of the training step was recorded with, in order.
    pub fn plan(&self) -> Vec<super::DispatchInfo> {
        self.train.plan().to_vec()
    }

    /// The batch shape.
    pub fn batch(&self) -> BatchConfig {
        self.batch
    }

    /// Uploads the window and the step's uniform, runs `prog` in one submission and reads the
    /// scalars back.
    fn run(&self, prog: &Program, x: &[u32], y: &[u32], uniform: &StepUniform) -> Result<[f32; SCALARS]> {
        self.upload(x, y, uniform)?;
        let out: Vec<f32> =
            prog.run(&self.gpu, Some((&self.storage.work, self.net.scalars, SCALARS, &self.staging)))?;
        let mut s = [0.0; SCALARS];
        s.copy_from_slice(&out);
        Ok(s)
    }

    /// Submits `prog` once per window (at most [`ALPHAS`]), each after its window and uniform,
    /// with a copy of its scalars, without waiting; then reads all the scalars at once.
    fn queued(
        &self,
        prog: &Program,
        windows: &[(&[u32], &[u32])],
        uniforms: &[StepUniform],
    ) -> Result<Vec<[f32; SCALARS]>> {
        debug_assert!(windows.len() <= ALPHAS && windows.len() == uniforms.len());
        for (i, (&(x, y), u)) in windows.iter().zip(uniforms).enumerate() {
            self.upload(x, y, u)?;
            let scalars = (&self.storage.work, self.net.scalars, SCALARS);
            prog.submit_and_copy(&self.gpu, scalars, (&self.staging, i * SCALARS));
        }
        let words: Vec<f32> = self.gpu.map_read(&self.staging, windows.len() * SCALARS)?;
        words.chunks_exact(SCALARS).map(|s| s.try_into().map_err(|_| Error::Gpu("short readback".into()))).collect()
    }

    /// Uploads a window and a step's uniform (ordered before the next submission).
    fn upload(&self, x: &[u32], y: &[u32], uniform: &StepUniform) -> Result<()> {
        let ids = self.net.ids_for(x, Some(y))?;
        self.gpu.write(&self.storage.ids, 0, &ids);
        self.gpu.write(&self.storage.step, 0, std::slice::from_ref(uniform));
        Ok(())
    }

    /// The train program's step uniform for `opts`.
    fn train_uniform(&self, opts: &StepOptions) -> StepUniform {
        self.uniform(opts.lr, opts.clip, Some(Dropout::new(opts.key, opts.counter)), opts.weight_decay)
    }

    /// The step uniform: Adam's α for the next update, dropout from `dropout`, clipping, and
    /// the weight decay's share `lr · weight_decay`.
    fn uniform(&self, lr: f32, clip: Option<f32>, dropout: Option<Dropout>, weight_decay: f32) -> StepUniform {
        let cfg = &self.adam_cfg;
        let p = self.net.cfg.dropout;
        let (drop_on, key0, key1, counter) = match dropout {
            Some(d) if p > 0.0 => (1, d.key.k0, d.key.k1, d.counter),
            _ => (0, 0, 0, 0),
        };
        StepUniform {
            alpha_base: self.adam_step as u32,
            alphas: StepUniform::alphas(cfg, lr, self.adam_step),
            one_minus_b1: 1.0 - cfg.beta1,
            one_minus_b2: 1.0 - cfg.beta2,
            eps: cfg.eps,
            clip: clip.unwrap_or(f32::NAN),
            drop_p: p,
            drop_keep: (1.0 / (1.0 - p as f64)) as f32,
            drop_on,
            key0,
            key1,
            counter,
            decay: lr * weight_decay,
        }
    }

    fn stats(&self, s: &[f32; SCALARS], backward: bool) -> StepStats {
        let n = self.net.n();
        let loss = (s[0] as f64 / n as f64) as f32;
        StepStats {
            loss,
            correct: s[1] as u32,
            tokens: n as u32,
            grad_norm: if backward { s[2] } else { 0.0 },
            in_range: if backward { s[3] != 0.0 } else { loss.is_finite() },
        }
    }

    /// Forward and backward without an update: the gradients stay on the device
    /// ([`GpuTrainer::grads`]) and the final (h, c) is carried. `x, y: [B, T]`.
    pub fn forward_backward(&mut self, x: &[u32], y: &[u32], dropout: Option<Dropout>) -> Result<StepStats> {
        let u = self.uniform(0.0, None, dropout, 0.0);
        let s = self.run(&self.fwd_bwd, x, y, &u)?;
        Ok(self.stats(&s, true))
    }

    /// Runs one training step with a GPU timestamp around each phase (one compute pass per phase)
    /// and returns the GPU seconds of each phase, in order; the step *is* applied. `None` when
    /// the adapter has no timestamp queries (nothing is run then).
    pub fn time_step_phases(
        &mut self,
        x: &[u32],
        y: &[u32],
        opts: &StepOptions,
    ) -> Result<Option<Vec<(&'static str, f64)>>> {
        if !self.gpu.timestamps {
            return Ok(None);
        }
        self.upload(x, y, &self.train_uniform(opts))?;
        let out = self.train.time_phases(&self.gpu)?;
        let s: Vec<f32> = self.gpu.read(&self.storage.work, self.net.scalars, SCALARS)?;
        self.adam_step = s[5].to_bits() as u64;
        Ok(out)
    }

    /// The gradients of the last step, before clipping (copied from the device).
    pub fn grads(&self) -> Result<Params<f32>> {
        let mut g = Params::zeros(&self.net.cfg);
        g.data = self.gpu.read(&self.storage.grads, 0, self.net.layout.total)?;
        Ok(g)
    }
}

impl Trainer for GpuTrainer {
    fn describe(&self) -> String {
        let info = &self.gpu.info;
        let soft = if info.device_type == wgpu::DeviceType::Cpu { ", software" } else { "" };
        format!("gpu ({}, {}{soft})", info.name, info.backend)
    }

    fn config(&self) -> &ModelConfig {
        &self.net.cfg
    }

    fn reset_state(&mut self) {
        let zeros = vec![0.0f32; self.net.b * self.net.cfg.hidden];
        for (h, c) in self.net.state_slots() {
            self.gpu.write(&self.storage.work, h, &zeros);
            self.gpu.write(&self.storage.work, c, &zeros);
        }
    }

    fn train_step(&mut self, x: &[u32], y: &[u32], opts: &StepOptions) -> Result<StepStats> {
        Ok(self.train_steps(&[(x, y)], std::slice::from_ref(opts))?[0])
    }

    /// Queues each step's window, uniform and program, and a copy of its scalars, without
    /// waiting: step n+1 is submitted before step n's numbers are read, and all of them are read
    /// once at the end (per 16 steps). The device counts Adam's t itself (a step that
    /// is not finite leaves it, and the parameters, unchanged), so no step waits for the last.
    fn train_steps(&mut self, windows: &[(&[u32], &[u32])], opts: &[StepOptions]) -> Result<Vec<StepStats>> {
        if windows.len() != opts.len() {
            return Err(Error::Shape(format!("{} windows and {} step options", windows.len(), opts.len())));
        }
        if opts.iter().any(|o| o.weight_drop > 0.0) {
            return Err(Error::Config(
                "--weight-drop runs on the CPU engine only: train with --device cpu, or without --weight-drop".into(),
            ));
        }
        let mut out = Vec::with_capacity(windows.len());
        for (ws, os) in windows.chunks(ALPHAS).zip(opts.chunks(ALPHAS)) {
            // Every step of the chunk takes its α from a table that starts at the chunk's t.
            let uniforms: Vec<StepUniform> = os.iter().map(|o| self.train_uniform(o)).collect();
            for s in self.queued(&self.train, ws, &uniforms)? {
                out.push(self.stats(&s, true));
                self.adam_step = s[5].to_bits() as u64;
            }
        }
        Ok(out)
    }

    fn queue_depth(&self) -> usize {
        ALPHAS
    }

    fn eval_step(&mut self, x: &[u32], y: &[u32]) -> Result<StepStats> {
        Ok(self.eval_steps(&[(x, y)])?[0])
    }

    /// Queues the windows as `train_steps` does: each submitted before the previous one's loss
    /// is read, all read at once per 16.
    fn eval_steps(&mut self, windows: &[(&[u32], &[u32])]) -> Result<Vec<StepStats>> {
        let mut out = Vec::with_capacity(windows.len());
        for ws in windows.chunks(ALPHAS) {
            let uniforms = vec![self.uniform(0.0, None, None, 0.0); ws.len()];
            out.extend(self.queued(&self.eval, ws, &uniforms)?.iter().map(|s| self.stats(s, false)));
        }
        Ok(out)
    }

    fn params(&self) -> Result<Params<f32>> {
        let mut p = Params::zeros(&self.net.cfg);
        p.data = self.gpu.read(&self.storage.params, 0, self.net.layout.total)?;
        Ok(p)
    }

    fn state(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let bh = self.net.b * self.net.cfg.hidden;
        let (mut h, mut c) = (Vec::new(), Vec::new());
        for (ho, co) in self.net.state_slots() {
            h.extend(self.gpu.read::<f32>(&self.storage.work, ho, bh)?);
            c.extend(self.gpu.read::<f32>(&self.storage.work, co, bh)?);
        }
        Ok((h, c))
    }

    fn set_state(&mut self, h: &[f32], c: &[f32]) -> Result<()> {
        let bh = self.net.b * self.net.cfg.hidden;
        let n = self.net.cfg.layers * bh;
        if h.len() != n || c.len() != n {
            return Err(Error::Shape(format!(
                "state of {} and {} values, the model needs layers*batch*hidden = {n}",
                h.len(),
                c.len()
            )));
        }
        for (l, (ho, co)) in self.net.state_slots().into_iter().enumerate() {
            self.gpu.write(&self.storage.work, ho, &h[l * bh..][..bh]);
            self.gpu.write(&self.storage.work, co, &c[l * bh..][..bh]);
        }
        self.gpu.check()
    }

    fn adam_state(&self) -> Result<AdamState> {
        let n = self.net.layout.total;
        let mv: Vec<f32> = self.gpu.read(&self.storage.opt, 0, 2 * n)?;
        Ok(AdamState { step: self.adam_step, m: mv[..n].to_vec(), v: mv[n..].to_vec() })
    }
}
