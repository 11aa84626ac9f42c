//! folklstm: a from-scratch character-level LSTM that learns folk tunes in ABC notation.
//!
//! Where to start reading:
//! - **The math**: [`model`] (the equation sheet), then [`model::cell`] (one step, forward and
//!   backward side by side), [`model::reference`] (a plain forward and a plain BPTT backward),
//!   then the fast engine, [`cpu::network`] and [`cpu::recurrent`].
//! - **Training**: [`train::train`] (the epoch loop) on any [`backend::Trainer`], chosen by
//!   [`device`]; checkpoints are [`checkpoint`]'s format in [`run`]'s folder.
//! - **Writing tunes**: [`sample::generate`] on any [`backend::Sampler`]; [`abc`] checks the
//!   tunes and turns them into MIDI; [`serve`] puts both behind a local web page.
//!
//! Module map: [`model`] (config, parameters, init, the readable math), [`cpu`] and [`gpu`] (the
//! two engines), [`optim`] (Adam), [`corpus`] (text, vocabulary, windows), [`train`], [`sample`],
//! [`serve`] (the web page and its API), [`eval`], [`bench`](mod@bench), [`checkpoint`], [`run`], [`files`] (atomic writes), [`memory`] (memory
//! estimates), [`interrupt`] (Ctrl-C), [`abc`], [`plot`], [`rng`], [`hash`], [`real`] (the scalar
//! type), [`error`].
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
pub mod hash;
pub mod interrupt;
pub mod memory;
pub mod model;
pub mod optim;
pub mod plot;
pub mod real;
pub mod rng;
pub mod run;
pub mod sample;
pub mod serve;
pub mod train;

pub use error::{Error, Result};
