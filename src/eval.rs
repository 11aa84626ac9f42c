//! `folklstm eval`: how well a checkpoint predicts a corpus it may never have seen.

use crate::backend::Sampler;
use crate::corpus::Vocab;
use crate::error::{Error, Result};

/// What an evaluation measured, all computed from the model's own predictions.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EvalReport {
    /// Mean cross-entropy of the next character, nats per character.
    pub nats: f64,
    /// The same in bits per character.
    pub bits: f64,
    /// Fraction of characters whose argmax prediction was right.
    pub accuracy: f64,
    /// Characters scored.
    pub scored: u64,
    /// Characters outside the model's vocabulary, skipped (not scored, not fed).
    pub unknown: u64,
    /// Parallel streams used.
    pub streams: usize,
}

/// Scores `text` with any [`Sampler`]: the text is cut into `streams` contiguous pieces (as
/// training does), each read from a zero state one character at a time, and every character
/// after the first of its piece is predicted from all the characters before it in the piece.
/// Characters outside the vocabulary are skipped and counted.
pub fn evaluate(sampler: &mut dyn Sampler, vocab: &Vocab, text: &str, streams: usize) -> Result<EvalReport> {
    let (ids, unknown) = vocab.encode_lossy(text);
    let v = sampler.config().vocab;
    if ids.len() < 2 {
        return Err(Error::Config(format!(
            "the text has {} character(s) in the model's vocabulary; evaluation needs at least 2",
            ids.len()
        )));
    }
    let n = streams.clamp(1, ids.len() / 2);
    let len = ids.len() / n;
    sampler.reset(n)?;
    let mut logits = vec![0.0f32; n * v];
    let mut tokens = vec![0u32; n];
    let (mut nats, mut correct, mut scored) = (0.0f64, 0u64, 0u64);
    for k in 0..len - 1 {
        for (s, t) in tokens.iter_mut().enumerate() {
            *t = ids[s * len + k];
        }
        sampler.step(&tokens, &mut logits)?;
        for s in 0..n {
            let row = &logits[s * v..(s + 1) * v];
            let target = ids[s * len + k + 1] as usize;
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            nats += lse - row[target] as f64;
            let arg = row.iter().enumerate().fold(0, |best, (j, &x)| if x > row[best] { j } else { best });
            correct += (arg == target) as u64;
            scored += 1;
        }
    }
    let mean = nats / scored as f64;
    Ok(EvalReport {
        nats: mean,
        bits: mean / std::f64::consts::LN_2,
        accuracy: correct as f64 / scored as f64,
        scored,
        unknown: unknown as u64,
        streams: n,
    })
}
