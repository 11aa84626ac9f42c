//! Choosing the engine, for every command: the CPU or the GPU behind the same [`Trainer`] and
//! [`Sampler`] seams, and what `--device auto` falls back to.

use crate::backend::{Sampler, Trainer};
use crate::cpu::{CpuBackend, CpuSampler};
use crate::error::Result;
use crate::model::{BatchConfig, Params};
use crate::optim::AdamState;
use std::io::Write;

/// Which engine runs the steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// The CPU engine.
    Cpu,
    /// The wgpu (Vulkan) engine.
    Gpu,
    /// The GPU when an adapter exists, else the CPU.
    Auto,
}

/// A trainer for `device`.
pub fn trainer(
    device: Device,
    params: Params<f32>,
    adam: Option<AdamState>,
    batch: BatchConfig,
    threads: Option<usize>,
    log: &mut dyn Write,
) -> Result<Box<dyn Trainer>> {
    let cpu =
        |params, adam| -> Result<Box<dyn Trainer>> { Ok(Box::new(CpuBackend::new(params, adam, batch, threads)?)) };
    match device {
        Device::Cpu => cpu(params, adam),
        Device::Gpu => gpu_trainer(params, adam, batch),
        Device::Auto => match gpu_trainer(params.clone(), adam.clone(), batch) {
            Ok(t) => Ok(t),
            Err(e) => {
                let _ = writeln!(log, "no usable GPU ({e}); training on the CPU");
                cpu(params, adam)
            }
        },
    }
}

/// A sampler for `device`; `--device auto` without a usable GPU says so on `log` and uses the CPU.
pub fn sampler(
    device: Device,
    params: &Params<f32>,
    threads: Option<usize>,
    log: &mut dyn Write,
) -> Result<Box<dyn Sampler>> {
    let cpu = || -> Result<Box<dyn Sampler>> { Ok(Box::new(CpuSampler::new(params, threads)?)) };
    match device {
        Device::Cpu => cpu(),
        Device::Gpu => gpu_sampler(params),
        Device::Auto => gpu_sampler(params).or_else(|e| {
            let _ = writeln!(log, "no usable GPU ({e}); using the CPU");
            cpu()
        }),
    }
}

/// A GPU trainer, or the reason there is none (no adapter: a message that says what to install).
pub fn gpu_trainer(params: Params<f32>, adam: Option<AdamState>, batch: BatchConfig) -> Result<Box<dyn Trainer>> {
    Ok(Box::new(crate::gpu::GpuTrainer::new(params, adam, batch)?))
}

/// A GPU sampler, or the reason there is none.
pub fn gpu_sampler(params: &Params<f32>) -> Result<Box<dyn Sampler>> {
    Ok(Box::new(crate::gpu::GpuSampler::new(params)?))
}
