//! Choosing the engine: CPU or GPU behind the same [`Trainer`] and [`Sampler`] seams.

use crate::backend::{Sampler, Trainer};
use crate::error::Result;
use crate::model::{BatchConfig, Params};
use crate::optim::AdamState;

/// A GPU trainer, or the reason there is none (no adapter: a message that says what to install).
pub fn gpu_trainer(params: Params<f32>, adam: Option<AdamState>, batch: BatchConfig) -> Result<Box<dyn Trainer>> {
    Ok(Box::new(crate::gpu::GpuTrainer::new(params, adam, batch)?))
}

/// A GPU sampler, or the reason there is none.
pub fn gpu_sampler(params: &Params<f32>) -> Result<Box<dyn Sampler>> {
    Ok(Box::new(crate::gpu::GpuSampler::new(params)?))
}
