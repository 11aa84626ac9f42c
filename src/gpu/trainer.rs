//! [`GpuTrainer`]: the whole training step on the GPU behind the [`Trainer`] seam.

use super::context::{Gpu, Program, ProgramBuilder, StepUniform, Storage};
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
    /// Host-readable copy of the step's scalars.
    staging: wgpu::Buffer,
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
        let gpu = Gpu::new()?;
        let net = Net::new(&params.config, batch.batch, batch.seq)?;
        let storage = Storage::new(&gpu, total, total, 2 * total, net.work_len, net.ids_len)?;
        gpu.write(&storage.params, 0, &params.data);
        gpu.write(&storage.opt, 0, &adam.m);
        gpu.write(&storage.opt, total, &adam.v);
        let build = |update: bool, backward: bool| -> Result<Program> {
            let mut pb = ProgramBuilder::new(&gpu);
            net.record_step(&mut pb, update, backward)?;
            pb.finish(&storage)
        };
        let train = build(true, true)?;
        let fwd_bwd = build(false, true)?;
        let eval = build(false, false)?;
        let staging = gpu.staging(SCALARS)?;
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
        let ids = self.net.ids_for(x, Some(y))?;
        self.gpu.write(&self.storage.ids, 0, &ids);
        self.gpu.write(&self.storage.step, 0, std::slice::from_ref(uniform));
        let out: Vec<f32> =
            prog.run(&self.gpu, Some((&self.storage.work, self.net.scalars, SCALARS, &self.staging)))?;
        let mut s = [0.0; SCALARS];
        s.copy_from_slice(&out);
        Ok(s)
    }

    /// The step uniform: Adam's α for the next update, dropout from `dropout`, clipping, and
    /// the weight decay's share `lr · weight_decay`.
    fn uniform(&self, lr: f32, clip: Option<f32>, dropout: Option<Dropout>, weight_decay: f32) -> StepUniform {
        let cfg = &self.adam_cfg;
        let alpha = cfg.step_size(lr, self.adam_step + 1);
        let p = self.net.cfg.dropout;
        let (drop_on, key0, key1, counter) = match dropout {
            Some(d) if p > 0.0 => (1, d.key.k0, d.key.k1, d.counter),
            _ => (0, 0, 0, 0),
        };
        StepUniform {
            alpha,
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

    /// Runs one training step with a GPU timestamp around each phase ([`Program::time_phases`])
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
        let dropout = Some(Dropout::new(opts.key, opts.counter));
        let u = self.uniform(opts.lr, opts.clip, dropout, opts.weight_decay);
        let ids = self.net.ids_for(x, Some(y))?;
        self.gpu.write(&self.storage.ids, 0, &ids);
        self.gpu.write(&self.storage.step, 0, std::slice::from_ref(&u));
        let out = self.train.time_phases(&self.gpu)?;
        let s: Vec<f32> = self.gpu.read(&self.storage.work, self.net.scalars, SCALARS)?;
        if s[3] != 0.0 {
            self.adam_step += 1;
        }
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
        if opts.weight_drop > 0.0 {
            return Err(Error::Config(
                "--weight-drop runs on the CPU engine only: train with --device cpu, or without --weight-drop".into(),
            ));
        }
        let dropout = Some(Dropout::new(opts.key, opts.counter));
        let u = self.uniform(opts.lr, opts.clip, dropout, opts.weight_decay);
        let s = self.run(&self.train, x, y, &u)?;
        let stats = self.stats(&s, true);
        // The device skipped the update when the step was not finite; Adam's t follows it.
        if stats.in_range {
            self.adam_step += 1;
        }
        Ok(stats)
    }

    fn eval_step(&mut self, x: &[u32], y: &[u32]) -> Result<StepStats> {
        let u = self.uniform(0.0, None, None, 0.0);
        let s = self.run(&self.eval, x, y, &u)?;
        Ok(self.stats(&s, false))
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
