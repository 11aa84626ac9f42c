//! The network: configuration, parameters, initialisation, and the math.

pub mod config;
pub mod init;
pub mod params;
pub mod reference;

pub use config::{BatchConfig, ModelConfig};
pub use init::init_params;
pub use params::{LstmRefs, ParamLayout, Params, TensorRef};
