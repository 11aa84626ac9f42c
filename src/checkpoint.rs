//! Checkpoints: one self-contained safetensors file per save.
//!
//! Tensors: every parameter under its canonical name (`embedding`, `lstm.0.w_ih`, ...), f32;
//! when the optimizer state is kept, Adam's moments as `adam.m.<name>` and `adam.v.<name>`; for
//! a save in the middle of an epoch (Ctrl-C), the carried state `state.h`, `state.c`
//! (`[L, B, H]`). Metadata (strings): the format and its version, the model configuration, the
//! vocabulary, the training position and settings ([`TrainMeta`], JSON), and an FNV-1a checksum
//! of all tensor bytes, so silent corruption is caught at load.
//!
//! Files are written atomically: a temporary file in the same folder, fsync, rename, fsync of
//! the folder. A crash leaves either the old file or the new one, never half of one.

use crate::corpus::Vocab;
use crate::error::{Error, Result};
use crate::model::{BatchConfig, ModelConfig, Params};
use crate::optim::AdamState;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The value of the `format` metadata key.
pub const FORMAT: &str = "folklstm-checkpoint";
/// The current format version.
pub const VERSION: u32 = 1;

/// Sums of an epoch that was interrupted, so its CSV row is right after resuming.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    /// Sum over finished windows of the window's mean loss.
    pub loss_sum: f64,
    /// Correct predictions so far.
    pub correct: u64,
    /// Positions so far.
    pub tokens: u64,
    /// Wall time spent on the epoch so far.
    pub seconds: f64,
}

/// Where training stands and how it was set up; enough to resume exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainMeta {
    /// Completed epochs.
    pub epoch: u32,
    /// Windows already done in epoch `epoch + 1` (0 at an epoch boundary).
    pub window: u32,
    /// Global step counter (the dropout masks' counter).
    pub step: u64,
    /// `--rng-seed`.
    pub rng_seed: u64,
    /// Window shape.
    pub batch: BatchConfig,
    /// Learning rate.
    pub lr: f32,
    /// Gradient clipping norm.
    pub clip: Option<f32>,
    /// Fraction of tunes held out for validation.
    pub val_fraction: f64,
    /// Fingerprint of the corpus text (hex), to refuse resuming on another corpus.
    pub corpus_fingerprint: String,
    /// Where the corpus was read from (for messages).
    pub corpus: String,
    /// Sums of the interrupted epoch, when `window > 0`.
    pub partial: Option<PartialEpoch>,
}

/// Everything a checkpoint file holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The model's parameters.
    pub params: Params<f32>,
    /// The characters the model reads and writes.
    pub vocab: Vocab,
    /// Adam's state (absent in a weights-only file).
    pub adam: Option<AdamState>,
    /// The carried (h, c), `[L, B, H]` each, when saved in the middle of an epoch.
    pub state: Option<(Vec<f32>, Vec<f32>)>,
    /// Training position and settings.
    pub meta: TrainMeta,
}

/// FNV-1a over bytes, continued from `h`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serialises a checkpoint to bytes.
pub fn to_bytes(ck: &Checkpoint) -> Result<Vec<u8>> {
    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let lo = &ck.params.layout;
    for t in lo.tensors() {
        named.push((t.name.clone(), t.shape.clone(), f32_bytes(ck.params.get(t))));
    }
    if let Some(a) = &ck.adam {
        for t in lo.tensors() {
            named.push((format!("adam.m.{}", t.name), t.shape.clone(), f32_bytes(&a.m[t.range.clone()])));
            named.push((format!("adam.v.{}", t.name), t.shape.clone(), f32_bytes(&a.v[t.range.clone()])));
        }
    }
    if let Some((h, c)) = &ck.state {
        let cfg = &ck.params.config;
        let shape = vec![cfg.layers, ck.meta.batch.batch, cfg.hidden];
        named.push(("state.h".into(), shape.clone(), f32_bytes(h)));
        named.push(("state.c".into(), shape, f32_bytes(c)));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sum = FNV_START;
    for (name, _, bytes) in &named {
        sum = fnv1a(sum, name.as_bytes());
        sum = fnv1a(sum, bytes);
    }
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("format_version".to_string(), VERSION.to_string());
    meta.insert("config".to_string(), json(&ck.params.config));
    meta.insert("vocab".to_string(), json(&ck.vocab.chars().iter().collect::<String>()));
    meta.insert("train".to_string(), json(&ck.meta));
    meta.insert("adam_step".to_string(), ck.adam.as_ref().map_or(0, |a| a.step).to_string());
    meta.insert("checksum".to_string(), format!("{sum:016x}"));
    let views: Vec<(String, TensorView)> = named
        .iter()
        .map(|(n, s, b)| {
            Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| Error::Shape(e.to_string()))?))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Shape(format!("cannot serialise checkpoint: {e}")))
}

/// JSON for a metadata string. Serialising these plain structs cannot fail.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Parses a checkpoint from bytes; `path` is for messages.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    let bad = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a readable safetensors file ({e}); is it truncated or corrupt?")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("unreadable header ({e})")))?;
    let meta = header.metadata().as_ref().ok_or_else(|| bad("no metadata: not a folklstm checkpoint".into()))?;
    let get = |k: &str| {
        meta.get(k).ok_or_else(|| bad(format!("metadata lacks `{k}`: not a folklstm checkpoint, or a damaged one")))
    };
    if get("format")? != FORMAT {
        return Err(bad(format!("format is {:?}, expected {FORMAT:?}", get("format")?)));
    }
    let version: u32 = get("format_version")?.parse().map_err(|_| bad("unreadable format_version".into()))?;
    if version != VERSION {
        return Err(bad(format!("format version {version}; this folklstm reads version {VERSION}")));
    }
    let parse = |k: &str| -> Result<serde_json::Value> {
        serde_json::from_str(get(k)?).map_err(|e| bad(format!("metadata `{k}` is not valid JSON ({e})")))
    };
    let config: ModelConfig =
        serde_json::from_value(parse("config")?).map_err(|e| bad(format!("bad model config ({e})")))?;
    config.validate().map_err(|e| bad(format!("model config: {e}")))?;
    let train: TrainMeta =
        serde_json::from_value(parse("train")?).map_err(|e| bad(format!("bad training metadata ({e})")))?;
    let vocab_s: String = serde_json::from_value(parse("vocab")?).map_err(|e| bad(format!("bad vocabulary ({e})")))?;
    let vocab = Vocab::from_chars(vocab_s.chars());
    if vocab.len() != vocab_s.chars().count() || vocab.len() != config.vocab {
        return Err(bad(format!(
            "the vocabulary has {} distinct characters but the model config says {}",
            vocab.len(),
            config.vocab
        )));
    }
    // Checksum over every tensor in name order, as written.
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut sum = FNV_START;
    for n in &names {
        sum = fnv1a(sum, n.as_bytes());
        sum = fnv1a(sum, st.tensor(n).map_err(|e| bad(e.to_string()))?.data());
    }
    if format!("{sum:016x}") != *get("checksum")? {
        return Err(bad(
            "checksum mismatch: the file is corrupt (its tensor bytes changed after it was written)".into()
        ));
    }
    let read = |name: &str, shape: &[usize]| -> Result<Option<Vec<f32>>> {
        let t = match st.tensor(name) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        if t.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor {name} is {:?}, expected F32", t.dtype())));
        }
        if t.shape() != shape {
            return Err(bad(format!("tensor {name} has shape {:?}, the model config needs {shape:?}", t.shape())));
        }
        Ok(Some(t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
    };
    let mut params = Params::<f32>::zeros(&config);
    let tensors: Vec<_> = params.layout.tensors().into_iter().cloned().collect();
    for t in &tensors {
        let v = read(&t.name, &t.shape)?.ok_or_else(|| bad(format!("tensor {} is missing", t.name)))?;
        params.get_mut(t).copy_from_slice(&v);
    }
    let adam = if names.iter().any(|n| n.starts_with("adam.")) {
        let mut a = AdamState::new(params.data.len());
        a.step = get("adam_step")?.parse().map_err(|_| bad("unreadable adam_step".into()))?;
        for t in &tensors {
            let m = read(&format!("adam.m.{}", t.name), &t.shape)?
                .ok_or_else(|| bad(format!("adam.m.{} is missing", t.name)))?;
            let v = read(&format!("adam.v.{}", t.name), &t.shape)?
                .ok_or_else(|| bad(format!("adam.v.{} is missing", t.name)))?;
            a.m[t.range.clone()].copy_from_slice(&m);
            a.v[t.range.clone()].copy_from_slice(&v);
        }
        Some(a)
    } else {
        None
    };
    let sshape = [config.layers, train.batch.batch, config.hidden];
    let state = match (read("state.h", &sshape)?, read("state.c", &sshape)?) {
        (Some(h), Some(c)) => Some((h, c)),
        (None, None) => None,
        _ => return Err(bad("only one of state.h and state.c is present".into())),
    };
    if train.window > 0 && state.is_none() {
        return Err(bad("saved in the middle of an epoch but holds no carried state".into()));
    }
    if params.data.iter().any(|x| !x.is_finite()) {
        return Err(bad("parameters contain NaN or infinite values".into()));
    }
    Ok(Checkpoint { params, vocab, adam, state, meta: train })
}

/// Writes `bytes` to `path` atomically: temporary file in the same folder, fsync, rename, fsync
/// of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all(); // best effort: not every filesystem can fsync a folder
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Saves a checkpoint atomically.
pub fn save(path: &Path, ck: &Checkpoint) -> Result<()> {
    write_atomic(path, &to_bytes(ck)?)
}

/// Loads and verifies a checkpoint.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Checkpoint { path: path.into(), reason: "no such file".into() },
        _ => Error::io(path, e),
    })?;
    from_bytes(&bytes, path)
}

/// Which save a file is: `weights.{epoch}.safetensors`, or `weights.{epoch}+{window}.safetensors`
/// for a save in the middle of epoch `epoch + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckpointId {
    /// Completed epochs.
    pub epoch: u32,
    /// Windows done in the next epoch.
    pub window: u32,
}

impl std::fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.window == 0 { write!(f, "{}", self.epoch) } else { write!(f, "{}+{}", self.epoch, self.window) }
    }
}

impl CheckpointId {
    /// Parses "40" or "40+17".
    pub fn parse(s: &str) -> Option<Self> {
        let (e, w) = match s.split_once('+') {
            Some((e, w)) => (e, w.parse().ok()?),
            None => (s, 0),
        };
        Some(CheckpointId { epoch: e.parse().ok()?, window: w })
    }

    /// The file name of this save.
    pub fn file_name(&self) -> String {
        format!("weights.{self}.safetensors")
    }
}

/// Every checkpoint in `dir`, oldest first. Temporary files are never listed.
pub fn list(dir: &Path) -> Result<Vec<(CheckpointId, PathBuf)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out: Vec<(CheckpointId, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = CheckpointId::parse(name.strip_prefix("weights.")?.strip_suffix(".safetensors")?)?;
            Some((id, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Finds the checkpoint `spec` ("100", "40+17" or "latest") in `dir`; the error lists what exists.
pub fn resolve(dir: &Path, spec: &str) -> Result<PathBuf> {
    let all = list(dir)?;
    let have = || {
        if all.is_empty() {
            format!(
                "{} holds no checkpoints (train first: folklstm train --model-dir {})",
                dir.display(),
                dir.display()
            )
        } else {
            format!("epochs available: {}", all.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>().join(", "))
        }
    };
    if spec == "latest" {
        return all
            .last()
            .map(|(_, p)| p.clone())
            .ok_or_else(|| Error::Checkpoint { path: dir.into(), reason: have() });
    }
    let id = CheckpointId::parse(spec).ok_or_else(|| Error::Checkpoint {
        path: dir.into(),
        reason: format!("{spec:?} is not an epoch number (e.g. 100), a mid-epoch save (e.g. 40+17) or `latest`"),
    })?;
    all.iter()
        .find(|(i, _)| *i == id)
        .map(|(_, p)| p.clone())
        .ok_or_else(|| Error::Checkpoint { path: dir.join(id.file_name()), reason: format!("not found; {}", have()) })
}

/// The path of a save.
pub fn path_for(dir: &Path, id: CheckpointId) -> PathBuf {
    dir.join(id.file_name())
}
