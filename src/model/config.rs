//! Model and training sizes. The reference design's values are the defaults, not constants.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The network's shape: Embedding(vocab -> embed) -> layers x [LSTM(hidden), Dropout] -> Dense(vocab).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Number of symbols (characters) the model reads and writes.
    pub vocab: usize,
    /// Embedding width E.
    pub embed: usize,
    /// LSTM hidden width H (each layer).
    pub hidden: usize,
    /// Number of stacked LSTM layers L.
    pub layers: usize,
    /// Dropout probability applied to each LSTM layer's output during training.
    pub dropout: f32,
}

impl ModelConfig {
    /// The reference design for a given vocabulary: E=512, H=256, L=3, dropout 0.2.
    pub fn reference(vocab: usize) -> Self {
        ModelConfig { vocab, embed: 512, hidden: 256, layers: 3, dropout: 0.2 }
    }

    /// Input width of LSTM layer `l`: E for the first layer, H above it.
    pub fn layer_input(&self, l: usize) -> usize {
        if l == 0 { self.embed } else { self.hidden }
    }

    /// Checks every size is usable; the message names the offending value.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.vocab < 2 {
            return bad(format!("vocabulary has {} symbols, needs at least 2", self.vocab));
        }
        if self.vocab > u32::MAX as usize / 2 {
            return bad(format!("vocabulary of {} symbols is too large", self.vocab));
        }
        for (name, v) in [("embed", self.embed), ("hidden", self.hidden), ("layers", self.layers)] {
            if v == 0 {
                return bad(format!("--{name} is 0, needs at least 1"));
            }
            if v > 1 << 16 {
                return bad(format!("--{name} is {v}, the most this engine supports is 65536"));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) || self.dropout.is_nan() {
            return bad(format!("--dropout is {}, needs 0 <= p < 1", self.dropout));
        }
        Ok(())
    }
}

/// How the corpus is cut into training windows: `batch` contiguous streams walked `seq` steps at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConfig {
    /// Number of parallel streams B.
    pub batch: usize,
    /// Window length T (steps of truncated BPTT).
    pub seq: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { batch: 16, seq: 64 }
    }
}

impl BatchConfig {
    /// Checks the sizes are usable.
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 || self.seq == 0 {
            return Err(Error::Config(format!(
                "--batch {} and --seq {} must both be at least 1",
                self.batch, self.seq
            )));
        }
        if self.batch > 1 << 16 || self.seq > 1 << 16 {
            return Err(Error::Config(format!("--batch {} or --seq {} is larger than 65536", self.batch, self.seq)));
        }
        Ok(())
    }
}
