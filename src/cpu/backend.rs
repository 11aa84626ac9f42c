//! [`CpuBackend`]: the CPU engine behind the [`Trainer`] seam.

use super::network::{Dropout, Loss, State, Workspace, backward, forward};
use crate::backend::{StepOptions, StepStats, Trainer};
use crate::error::{Error, Result};
use crate::model::{BatchConfig, ModelConfig, Params};
use crate::optim::{AdamConfig, AdamState, adamw_update, clip_global_norm};

/// Trains a model on the CPU with its own `rayon` pool.
pub struct CpuBackend {
    params: Params<f32>,
    grads: Params<f32>,
    adam: AdamState,
    adam_cfg: AdamConfig,
    ws: Workspace<f32>,
    state: State<f32>,
    pool: rayon::ThreadPool,
    batch: BatchConfig,
}

impl CpuBackend {
    /// A trainer for windows of `batch`, starting from `params` and (when resuming) `adam`.
    /// `threads`: size of the thread pool (None: one per core).
    pub fn new(
        params: Params<f32>,
        adam: Option<AdamState>,
        batch: BatchConfig,
        threads: Option<usize>,
    ) -> Result<Self> {
        params.config.validate()?;
        batch.validate()?;
        let n = params.data.len();
        let adam = adam.unwrap_or_else(|| AdamState::new(n));
        if adam.m.len() != n || adam.v.len() != n {
            return Err(Error::Shape(format!("optimizer state holds {} moments for {n} parameters", adam.m.len())));
        }
        let pool = super::team::pool(threads)?;
        let cfg = params.config;
        Ok(CpuBackend {
            grads: Params::zeros(&cfg),
            ws: Workspace::new(&cfg, batch.batch, batch.seq),
            state: State::zeros(&cfg, batch.batch),
            params,
            adam,
            adam_cfg: AdamConfig::default(),
            pool,
            batch,
        })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Forward and backward without an update (gradients stay in [`Self::grads`]).
    pub fn forward_backward(&mut self, x: &[u32], y: &[u32], dropout: Option<Dropout>) -> Result<Loss> {
        let CpuBackend { params, grads, ws, state, pool, .. } = self;
        pool.install(|| {
            let loss = forward(params, ws, x, y, state, dropout)?;
            backward(params, grads, ws)?;
            Ok(loss)
        })
    }

    /// The gradients of the last step (before clipping).
    pub fn grads(&self) -> &Params<f32> {
        &self.grads
    }

    /// The carried state.
    pub fn state(&self) -> &State<f32> {
        &self.state
    }

    /// The batch shape.
    pub fn batch(&self) -> BatchConfig {
        self.batch
    }
}

impl Trainer for CpuBackend {
    fn describe(&self) -> String {
        format!("cpu ({} threads, {})", self.threads(), super::simd::isa().name())
    }

    fn config(&self) -> &ModelConfig {
        &self.params.config
    }

    fn reset_state(&mut self) {
        self.state = State::zeros(&self.params.config, self.batch.batch);
    }

    fn train_step(&mut self, x: &[u32], y: &[u32], opts: &StepOptions) -> Result<StepStats> {
        let loss = self.forward_backward(
            x,
            y,
            Some(Dropout { key: opts.key, counter: opts.counter, weight_drop: opts.weight_drop }),
        )?;
        let CpuBackend { params, grads, adam, adam_cfg, pool, .. } = self;
        pool.install(|| {
            let _sp = super::profile::span("gradient norm + Adam");
            let norm = match opts.clip {
                Some(c) => clip_global_norm(&mut grads.data, c),
                None => crate::optim::global_norm(&grads.data),
            };
            let in_range = crate::optim::update_is_safe(loss.loss, norm, opts.clip);
            if in_range {
                adamw_update(&mut params.data, &grads.data, adam, adam_cfg, opts.lr, opts.weight_decay);
            }
            Ok(StepStats {
                loss: loss.loss as f32,
                correct: loss.correct,
                tokens: loss.tokens,
                grad_norm: norm as f32,
                in_range,
            })
        })
    }

    fn eval_step(&mut self, x: &[u32], y: &[u32]) -> Result<StepStats> {
        let CpuBackend { params, ws, state, pool, .. } = self;
        let loss = pool.install(|| forward(params, ws, x, y, state, None))?;
        Ok(StepStats {
            loss: loss.loss as f32,
            correct: loss.correct,
            tokens: loss.tokens,
            grad_norm: 0.0,
            in_range: loss.loss.is_finite(),
        })
    }

    fn params(&self) -> Result<Params<f32>> {
        Ok(self.params.clone())
    }

    fn adam_state(&self) -> Result<AdamState> {
        Ok(self.adam.clone())
    }

    fn state(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((self.state.h.clone(), self.state.c.clone()))
    }

    fn set_state(&mut self, h: &[f32], c: &[f32]) -> Result<()> {
        let n = self.state.h.len();
        if h.len() != n || c.len() != n {
            return Err(Error::Shape(format!("state of {} and {} values, the model needs {n}", h.len(), c.len())));
        }
        self.state.h.copy_from_slice(h);
        self.state.c.copy_from_slice(c);
        Ok(())
    }
}
