//! The fast CPU engine, the third stop of the reading path (after the equations in
//! [`crate::model`] and the plain [`crate::model::reference`]): the whole pass as forward/backward
//! pairs ([`network`]), the recurrent time loop over packed weight panels split across a thread
//! team ([`recurrent`], [`team`]), the GEMMs ([`gemm`]: `matrixmultiply` for the dense layer and
//! the per-symbol table, the engine's own panel kernel for the input projections and weight
//! gradients), explicit SIMD per instruction set with a scalar path ([`simd`], [`kernels`]), and
//! the sampler ([`sampler`]).

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
