//! folklstm
pub mod abc;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod corpus;
pub mod cpu;
pub mod device;
pub mod error;
pub mod eval;
pub mod files;
pub mod gpu;
pub mod model;
pub mod optim;
pub mod plot;
pub mod real;
pub mod rng;
pub mod run;
pub mod sample;
pub mod train;

pub use error::{Error, Result};
