//! The network: configuration, parameters, initialisation, and the math.

pub mod config;
pub mod params;

pub use config::{BatchConfig, ModelConfig};
pub use params::{LstmRefs, ParamLayout, Params, TensorRef};
