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
//! every dispatch of forward, loss, backward, clipping and Adam runs (`bench --device gpu
//! --plan` lists them: 64 fused recurrent steps per layer each way, the GEMMs and the helpers),
//! and five numbers (loss sum, hits, ‖g‖, finiteness, clip scale) come back. Parameters, gradients,
//! Adam's moments, activations and the carried (h, c) never leave the device; `params()` and
//! `adam_state()` copy them out for checkpoints, in the CPU engine's layout, so a run can move
//! between devices.
//!
//! Numbers: f32 throughout, as on the CPU; dropout masks are bit-identical to the CPU's (the
//! counter RNG is integer-only); everything else differs from the CPU by summation order only
//! (`tests/gpu_*.rs` hold each kernel, a step's gradients, a 20-step loss curve and sampled tunes
//! against the CPU engine).
//!
//! Tuning: the recurrent steps bound a step's latency (T per layer each way, one after
//! another), so they are shaped for a large GPU: a workgroup takes 2 hidden units (all four
//! gates) of 16 batch rows and splits each dot product's k over its invocations, which meet in
//! a tree in workgroup memory (H/2 workgroups per step, a few hundred dependent operations per
//! invocation; see `shaders/lstm.wgsl`). The GEMMs keep an 8 × 8 block of a 64 × 64 tile per
//! invocation and read workgroup memory as vec4s. [`plan`] lists every dispatch with its
//! workgroups and longest chain and bounds the step's time on an H100-class GPU.
//!
//! Sampling (`sampler.rs`, `shaders/sample.wgsl`): one character per stream is the layers'
//! forward steps (a narrow variant for up to four streams) and one kernel computing the logits,
//! and sampling draws runs of up to 64 characters on the device, checked by the host's own
//! draws (guide and script included) when the run comes back.

mod adam;
mod context;
mod embed;
pub mod kernels;
mod lstm;
mod matmul;
mod net;
pub mod plan;
mod sampler;
mod trainer;
mod xent;

pub use context::{AdapterReport, DispatchInfo, NO_ADAPTER, SOFTWARE_LABEL, adapter_info, adapter_report, is_software};
pub use kernels::KernelRunner;
pub use sampler::GpuSampler;
pub use trainer::GpuTrainer;
