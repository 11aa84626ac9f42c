//! The fast CPU engine: fused-gate GEMMs through `matrixmultiply`, `rayon` across cores, explicit
//! SIMD for the elementwise gate math.

pub mod backend;
pub mod gemm;
pub mod kernels;
pub mod network;
pub mod profile;
pub mod recurrent;
pub mod sampler;
pub mod simd;
pub mod team;

pub use backend::CpuBackend;
pub use network::{Dropout, Loss, State, Workspace, backward, forward};
pub use sampler::CpuSampler;
