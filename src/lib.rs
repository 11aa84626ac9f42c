//! folklstm
pub mod abc;
pub mod backend;
pub mod corpus;
pub mod cpu;
pub mod error;
pub mod gpu;
pub mod model;
pub mod optim;
pub mod real;
pub mod rng;

pub use error::{Error, Result};
