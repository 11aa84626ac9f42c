//! The GPU backend: the whole training step and sampling in WGSL compute shaders, through
//! `wgpu` (Vulkan).
//!
//! Start with [`GpuTrainer`] and [`GpuSampler`], the twins of [`crate::cpu::CpuBackend`] and
//! the CPU sampler. `net.rs` is the GPU twin of `src/cpu/network.rs`: it lays out every
//! activation in one device buffer and records the step as a list of kernel dispatches. Each
//! kernel family has a shader in `shaders/` and a small Rust file here that fills its
//! parameter block: `matmul` (tiled GEMM), `lstm` (fused recurrent step, forward and backward),
//! `embed` (per-symbol gather/scatter, bias sums, transpose, copy), `xent` (softmax
//! cross-entropy), `adam` (norm, clipping, update). `context.rs` holds the device, the one
//! bind-group layout all kernels share, and programs (dispatch lists submitted at once).
//!
//! A training step is one queue submission: the window's token ids and a 48-byte uniform go up,
//! every dispatch of forward, loss, backward, clipping and Adam runs, and five numbers (loss
//! sum, hits, ‖g‖, finiteness, clip scale) come back.

mod adam;
mod context;
mod embed;
pub mod kernels;
mod lstm;
mod matmul;
mod net;
mod sampler;
mod trainer;
mod xent;

pub use context::{NO_ADAPTER, adapter_info};
pub use kernels::KernelRunner;
pub use sampler::GpuSampler;
pub use trainer::GpuTrainer;
