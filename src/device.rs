//! Choosing the engine: CPU or GPU behind the same [`Trainer`] and [`Sampler`] seams.

use crate::backend::{Sampler, Trainer};
use crate::error::{Error, Result};
use crate::model::{BatchConfig, Params};
use crate::optim::AdamState;

/// A GPU trainer, or the reason there is none.
pub fn gpu_trainer(_params: Params<f32>, _adam: Option<AdamState>, _batch: BatchConfig) -> Result<Box<dyn Trainer>> {
    Err(Error::Gpu("this build has no GPU backend; use --device cpu".into()))
}

/// A GPU sampler, or the reason there is none.
pub fn gpu_sampler(_params: &Params<f32>) -> Result<Box<dyn Sampler>> {
    Err(Error::Gpu("this build has no GPU backend; use --device cpu".into()))
}
