//! What a command needs in memory, estimated before anything of that size is allocated, so a
//! run that cannot fit is refused with a message that says what to lower instead of being
//! killed halfway. The engine's own buffers are counted by the code that allocates them
//! ([`crate::cpu::Workspace::bytes`], [`crate::cpu::CpuSampler::memory_bytes`]).

use crate::cpu::CpuSampler;
use crate::error::{Error, Result};
use crate::model::{BatchConfig, ModelConfig};

/// Bytes per MiB, for the memory messages.
const MIB: f64 = 1024.0 * 1024.0;

/// What a training run needs in memory, in bytes, part by part (see [`training_memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryNeed {
    /// Parameters, gradients and Adam's two moments (4 copies of the parameters).
    pub model: f64,
    /// The engine's buffers for one window (activations, cell states, dropout masks, logits).
    pub window: f64,
    /// Writing a checkpoint (copies of parameters and moments, their bytes, the serialised file),
    /// or reading one when resuming, whichever is more.
    pub checkpoint: f64,
    /// The corpus text, its token ids and the train/validation split.
    pub corpus: f64,
    /// The program itself: code, thread stacks, allocator slack, plots.
    pub program: f64,
}

impl MemoryNeed {
    /// The total, with 10% allowance for allocator rounding.
    pub fn total(&self) -> f64 {
        1.1 * (self.model + self.window + self.checkpoint + self.corpus + self.program)
    }

    /// "needs about 269 MiB of memory (parameters, gradients and Adam 29 MiB, ...)".
    pub fn describe(&self) -> String {
        format!(
            "needs about {:.0} MiB of memory (parameters, gradients and Adam {:.0} MiB, window buffers {:.0} MiB, \
             checkpoint writing {:.0} MiB, corpus {:.0} MiB)",
            self.total() / MIB,
            self.model / MIB,
            self.window / MIB,
            self.checkpoint / MIB,
            self.corpus / MIB
        )
    }
}

/// An upper estimate of a training run's peak memory: what the CPU engine allocates for
/// `cfg` and windows of `batch` (its buffers are sized once, before the first step), a
/// checkpoint being written, and a corpus of `corpus_bytes`; with `weight_drop`, each layer's
/// mask and dropped copy of W_hh. With the GPU engine most of the window buffers live on the
/// device instead; this counts them on the host anyway.
pub fn training_memory(cfg: &ModelConfig, batch: &BatchConfig, corpus_bytes: usize, weight_drop: bool) -> MemoryNeed {
    const F: f64 = 4.0; // bytes per f32
    let p = crate::model::ParamLayout::new(cfg).total as f64;
    let (b, h, l) = (batch.batch as f64, cfg.hidden as f64, cfg.layers as f64);
    // The engine's buffers for one window, and the carried state [L, B, H] (h and c).
    let window = crate::cpu::Workspace::<f32>::bytes(cfg, batch.batch, batch.seq, weight_drop) + F * 2.0 * l * b * h;
    // Saving: parameters and both moments copied out of the engine (3P), as bytes (3P) and as
    // the serialised file (3P), plus the carried state. Resuming: the file (3P) and the
    // decoded checkpoint (3P).
    let checkpoint = F * (9.0 * p + 4.0 * l * b * h);
    MemoryNeed {
        model: F * 4.0 * p,
        window,
        checkpoint,
        // Text, train/validation copies (2 bytes per byte), token ids (4), transient copies
        // while line endings are normalised (2).
        corpus: 8.0 * corpus_bytes as f64,
        program: 16.0 * MIB,
    }
}

/// This machine's physical memory in bytes (`MemTotal` of `/proc/meminfo`), where known.
pub fn machine_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuses up front a run that could not fit in this machine's memory at all.
pub fn check_fits(need: f64, what: &str, advice: &str) -> Result<()> {
    match machine_memory() {
        Some(have) if need > have => Err(Error::Config(format!(
            "{what} needs about {:.0} MiB of memory, more than this machine's {:.0} MiB; {advice}",
            need / MIB,
            have / MIB
        ))),
        _ => Ok(()),
    }
}

/// Bytes of memory the ABC checker may take per character of the tune it checks (measured:
/// about 220 on a single tune of a million notes, the worst case found).
pub const CHECKER_BYTES_PER_CHAR: f64 = 256.0;

/// An upper estimate of the peak memory of sampling, in bytes: reading and verifying a
/// checkpoint file of `file_bytes` (the file and its decoded tensors), then the sampler's copy of
/// the weights, its packed panels and state for `count` streams ([`CpuSampler::memory_bytes`]), the generated texts of
/// `chars` characters each (token ids and text), and the ABC checker run on one tune at a time.
pub fn sampling_memory(cfg: &ModelConfig, file_bytes: u64, count: usize, chars: usize) -> f64 {
    const PROGRAM: f64 = 16.0 * 1024.0 * 1024.0;
    let n = count as f64;
    let load = 2.0 * file_bytes as f64;
    let sampler = CpuSampler::memory_bytes(cfg, count);
    let text = n * chars as f64 * (4.0 + 4.0); // token ids, then the text (UTF-8, at most 4 bytes a character)
    let checker = CHECKER_BYTES_PER_CHAR * chars as f64;
    1.1 * (PROGRAM + load.max(sampler + text + checker))
}
