//! Parameters as one flat buffer with named views.
//!
//! All tensors of the model live back to back in one `Vec`, in a fixed order. Adam, gradient
//! clipping, checkpoints and the GPU upload see one slice; the math sees named sub-slices.
//! Names and shapes match the PyTorch fixtures and the checkpoint files:
//!
//! | name | shape |
//! |---|---|
//! | `embedding` | `[V, E]` |
//! | `lstm.{l}.w_ih` | `[in_l, 4H]` (in_0 = E, else H), gate columns i, f, g, o |
//! | `lstm.{l}.w_hh` | `[H, 4H]` |
//! | `lstm.{l}.b` | `[4H]` (one bias per layer) |
//! | `dense.w` | `[H, V]` |
//! | `dense.b` | `[V]` |

use super::config::ModelConfig;
use crate::error::{Error, Result};
use std::ops::Range;

/// One named tensor inside the flat buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    /// Canonical name (as in checkpoints and fixtures).
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Where its elements sit in the flat buffer.
    pub range: Range<usize>,
}

impl TensorRef {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.range.len()
    }
    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

/// The three tensors of one LSTM layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LstmRefs {
    /// Input weights `[in, 4H]`.
    pub w_ih: TensorRef,
    /// Recurrent weights `[H, 4H]`.
    pub w_hh: TensorRef,
    /// Bias `[4H]`.
    pub b: TensorRef,
}

/// Where every tensor of a model lives in the flat parameter buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    /// `[V, E]`
    pub embedding: TensorRef,
    /// One entry per LSTM layer, bottom first.
    pub lstm: Vec<LstmRefs>,
    /// `[H, V]`
    pub dense_w: TensorRef,
    /// `[V]`
    pub dense_b: TensorRef,
    /// Total number of parameters.
    pub total: usize,
}

impl ParamLayout {
    /// Lays out the tensors of `cfg` in canonical order.
    pub fn new(cfg: &ModelConfig) -> Self {
        let mut off = 0;
        let mut next = |name: String, shape: Vec<usize>| {
            let n: usize = shape.iter().product();
            let t = TensorRef { name, shape, range: off..off + n };
            off += n;
            t
        };
        let (v, e, h) = (cfg.vocab, cfg.embed, cfg.hidden);
        let embedding = next("embedding".into(), vec![v, e]);
        let lstm = (0..cfg.layers)
            .map(|l| LstmRefs {
                w_ih: next(format!("lstm.{l}.w_ih"), vec![cfg.layer_input(l), 4 * h]),
                w_hh: next(format!("lstm.{l}.w_hh"), vec![h, 4 * h]),
                b: next(format!("lstm.{l}.b"), vec![4 * h]),
            })
            .collect();
        let dense_w = next("dense.w".into(), vec![h, v]);
        let dense_b = next("dense.b".into(), vec![v]);
        ParamLayout { embedding, lstm, dense_w, dense_b, total: off }
    }

    /// Every tensor, in buffer order.
    pub fn tensors(&self) -> Vec<&TensorRef> {
        let mut out = vec![&self.embedding];
        for l in &self.lstm {
            out.extend([&l.w_ih, &l.w_hh, &l.b]);
        }
        out.extend([&self.dense_w, &self.dense_b]);
        out
    }

    /// Looks a tensor up by its canonical name.
    pub fn find(&self, name: &str) -> Option<&TensorRef> {
        self.tensors().into_iter().find(|t| t.name == name)
    }
}

/// A model's parameters (or their gradients, or an optimizer moment): one flat buffer plus its layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Params<R> {
    /// The configuration the layout was built from.
    pub config: ModelConfig,
    /// Where each tensor sits in `data`.
    pub layout: ParamLayout,
    /// All values, back to back.
    pub data: Vec<R>,
}

impl<R: Copy + Default> Params<R> {
    /// All-zero parameters for `cfg` (use `model::init` for a trainable start).
    pub fn zeros(cfg: &ModelConfig) -> Self {
        let layout = ParamLayout::new(cfg);
        let data = vec![R::default(); layout.total];
        Params { config: *cfg, layout, data }
    }

    /// The elements of one tensor.
    pub fn get(&self, t: &TensorRef) -> &[R] {
        &self.data[t.range.clone()]
    }

    /// The elements of one tensor, mutable.
    pub fn get_mut(&mut self, t: &TensorRef) -> &mut [R] {
        &mut self.data[t.range.clone()]
    }

    /// The elements of the tensor called `name`, mutable.
    pub fn by_name_mut(&mut self, name: &str) -> Result<&mut [R]> {
        let r = self
            .layout
            .find(name)
            .ok_or_else(|| Error::Shape(format!("the model has no tensor named {name}")))?
            .range
            .clone();
        Ok(&mut self.data[r])
    }

    /// Converts every element with `f` (e.g. f32 <-> f64), keeping the layout.
    pub fn map<S>(&self, f: impl Fn(R) -> S) -> Params<S> {
        Params { config: self.config, layout: self.layout.clone(), data: self.data.iter().map(|&x| f(x)).collect() }
    }
}
