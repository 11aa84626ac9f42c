//! folklstm: a from-scratch character-level LSTM that learns folk tunes in ABC notation, and
//! any other text.
//!
//! # Start here
//! A trained [`Model`]: load one ([`Model::load`], [`Model::shipped`], [`Model::import_torch`]),
//! then write text or tunes ([`Model::sample`], [`Model::tunes`]) or score a text
//! ([`Model::evaluate`]). A [`Training`] run trains one on a corpus, with a callback after each
//! epoch. The `folklstm` command line is built on the same calls.
//!
//! ```
//! use folklstm::{Model, SampleOptions};
//!
//! let model = Model::shipped()?; // model/weights.100.safetensors: 100 epochs of Nottingham jigs
//! let opts = SampleOptions {
//!     seed_text: Some("X: 1\nT:A New Jig\nM:6/8\nK:G\n".into()), // prime it with a header
//!     temperature: 0.8,
//!     len: 1000, // the most it writes; the tune ends where the next would begin
//!     ..Default::default()
//! };
//! let tune = model.tunes(&opts)?.next().unwrap()?;
//! println!("{tune}");
//! # assert!(tune.starts_with("X: 1\nT:A New Jig\n"));
//! # Ok::<(), folklstm::Error>(())
//! ```
//!
//! PyTorch models come in and go out as the state dict of a `CharLSTM` module ([`torch`]).
//!
//! # Reading the internals
//! - **The math**: [`model`] (the equation sheet), then [`model::cell`] (one step, forward and
//!   backward side by side), [`model::reference`] (a plain forward and a plain BPTT backward),
//!   then the fast engine, [`cpu::network`] and [`cpu::recurrent`].
//! - **Training**: [`train::train`] (the epoch loop) on any [`backend::Trainer`], chosen by
//!   [`device`]; checkpoints are [`checkpoint`]'s format in [`run`]'s folder.
//! - **Writing tunes**: [`sample::generate`] on any [`backend::Sampler`]; [`abc`] checks the
//!   tunes and turns them into MIDI; [`serve`] puts both behind a local web page.
//!
//! Module map: [`api`] (the facade above), [`model`] (config, parameters, init, the readable
//! math), [`cpu`] and [`gpu`] (the two engines), [`optim`] (Adam), [`corpus`] (text,
//! vocabulary, windows), [`train`], [`sample`], [`serve`] (the web page and its API), [`eval`],
//! [`bench`](mod@bench), [`checkpoint`], [`torch`] (PyTorch state dicts), [`run`], [`files`]
//! (atomic writes), [`memory`] (memory estimates), [`interrupt`] (Ctrl-C), [`abc`], [`plot`],
//! [`rng`], [`hash`], [`real`] (the scalar type), [`error`].
pub mod abc;
pub mod api;
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
pub mod torch;
pub mod train;

pub use api::{Model, SHIPPED, Training, Tunes};
pub use device::Device;
pub use error::{Error, Result};
pub use eval::EvalReport;
pub use sample::SampleOptions;
pub use train::{EpochReport, Flow, Outcome};
