//! Checkpoints: one self-contained safetensors file per save.
//!
//! Tensors: every parameter under its canonical name (`embedding`, `lstm.0.w_ih`, ...), f32;
//! when the optimizer state is kept, Adam's moments as `adam.m.<name>` and `adam.v.<name>`; for
//! a save in the middle of an epoch (Ctrl-C), the carried state `state.h`, `state.c`
//! (`[L, B, H]`). A weights-only file may store the parameters as f16 instead ([`save_f16`],
//! half the size); they load as f32. Metadata (strings): the format and its version, the model configuration, the
//! vocabulary, the training position and settings ([`TrainMeta`], JSON), and an FNV-1a checksum
//! of all tensor bytes, so silent corruption is caught at load.
//!
//! This module is the file format alone. Files are written atomically ([`crate::files`]): a
//! crash leaves either the old file or the new one, never half of one. Where checkpoints live
//! in a run folder, their names and how `latest` or `40+17` finds one: [`crate::run`].

use crate::corpus::Vocab;
use crate::error::{Error, Result};
use crate::hash::{FNV1A_START, fnv1a};
use crate::model::{BatchConfig, ModelConfig, ParamLayout, Params};
use crate::optim::AdamState;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

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
    /// The learning-rate schedule (`train --lr-schedule`); absent: a constant `lr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::optim::LrSchedule>,
    /// The semitone range of transposed copies added to the training tunes (`train --transpose`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transpose: Option<(i32, i32)>,
    /// The keys of the transposed copies added to the training tunes (`train --transpose-keys`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transpose_keys: Vec<String>,
    /// The corpus was reflowed to four bars a line before training (`train --reflow`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub reflow: bool,
    /// Its tunes' parts were labelled (`train --reflow --label-parts`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub label_parts: bool,
    /// The second lines of its parts were marked (`train --reflow --mark-lines`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub mark_lines: bool,
    /// The bar lines of its tunes' last parts were marked too (`train --mark-last`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub mark_last: bool,
    /// The key was restated after its tunes' part labels (`train --reflow --restate-key`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub restate_key: bool,
    /// Every tune was transposed to this tonic, keeping its mode (`train --tonic G`); `sample`
    /// moves the tunes it writes to the `--key` asked, or to keys drawn from the corpus's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tonic: Option<String>,
    /// Complete bars a reflowed line, when not four (`train --reflow --line-bars N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_bars: Option<usize>,
    /// Decoupled weight decay λ (`train --weight-decay`); absent: 0, plain Adam.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_decay: f32,
    /// Weight drop on the recurrent weights (`train --weight-drop`); absent: 0, off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_drop: f32,
    /// The lowest validation loss so far and its epoch (`train --keep-best`), which
    /// `weights.best.safetensors` holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<BestRecord>,
}

/// The best epoch of a run by validation loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestRecord {
    /// The epoch (1-based).
    pub epoch: u32,
    /// Its validation loss, nats per character.
    pub val_loss: f64,
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

/// Serde's test for fields written only when set (`TrainMeta::weight_decay`).
fn is_false(x: &bool) -> bool {
    !*x
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

fn f32_bytes(v: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    // safetensors stores little-endian: on a little-endian machine the f32s are already those
    // bytes, so they are viewed in place instead of copied (a checkpoint save then needs no
    // second copy of every tensor).
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(v))
    } else {
        std::borrow::Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
}

/// Little-endian f16 bytes of `v`, rounded to nearest (even); None when a value is beyond
/// f16's range (65504) and would become infinite.
fn f16_bytes(v: &[f32]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len() * 2);
    for &x in v {
        let h = half::f16::from_f32(x);
        if !h.is_finite() {
            return None;
        }
        out.extend_from_slice(&h.to_le_bytes());
    }
    Some(out)
}

/// Serialises a checkpoint to bytes.
pub fn to_bytes(ck: &Checkpoint) -> Result<Vec<u8>> {
    to_bytes_as(ck, Dtype::F32)
}

/// A tensor as it is written: name, shape, bytes, type.
type Stored<'a> = (String, Vec<usize>, std::borrow::Cow<'a, [u8]>, Dtype);

/// Serialises a checkpoint with its parameters stored as `dtype` (F32, or F16 for a
/// weights-only checkpoint).
fn to_bytes_as(ck: &Checkpoint, dtype: Dtype) -> Result<Vec<u8>> {
    let mut named: Vec<Stored<'_>> = Vec::new();
    let lo = &ck.params.layout;
    for t in lo.tensors() {
        let bytes = match dtype {
            Dtype::F16 => std::borrow::Cow::Owned(f16_bytes(ck.params.get(t)).ok_or_else(|| {
                Error::Config(format!("tensor {} holds values beyond f16's range (65504); store it as f32", t.name))
            })?),
            _ => f32_bytes(ck.params.get(t)),
        };
        named.push((t.name.clone(), t.shape.clone(), bytes, dtype));
    }
    if let Some(a) = &ck.adam {
        for t in lo.tensors() {
            named.push((format!("adam.m.{}", t.name), t.shape.clone(), f32_bytes(&a.m[t.range.clone()]), Dtype::F32));
            named.push((format!("adam.v.{}", t.name), t.shape.clone(), f32_bytes(&a.v[t.range.clone()]), Dtype::F32));
        }
    }
    if let Some((h, c)) = &ck.state {
        let cfg = &ck.params.config;
        let shape = vec![cfg.layers, ck.meta.batch.batch, cfg.hidden];
        named.push(("state.h".into(), shape.clone(), f32_bytes(h), Dtype::F32));
        named.push(("state.c".into(), shape, f32_bytes(c), Dtype::F32));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut sum = FNV1A_START;
    for (name, _, bytes, _) in &named {
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
    let hsum = header_checksum(&meta);
    meta.insert("header_checksum".to_string(), hsum);
    let views: Vec<(String, TensorView)> = named
        .iter()
        .map(|(n, s, b, d)| {
            Ok((n.clone(), TensorView::new(*d, s.clone(), b).map_err(|e| Error::Shape(e.to_string()))?))
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Shape(format!("cannot serialise checkpoint: {e}")))
}

/// JSON for a metadata string. Serialising these plain structs cannot fail.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The metadata keys a checkpoint holds; any other key means the header was damaged (or written
/// by a newer folklstm). `header_checksum` is absent in files written before it existed.
const META_KEYS: [&str; 8] =
    ["format", "format_version", "config", "vocab", "train", "adam_step", "checksum", "header_checksum"];

/// FNV-1a over the metadata (every key but `header_checksum`, in key order, each key and value
/// followed by a 0 byte), so a damaged header value (an epoch, a vocabulary character, the
/// learning rate) is caught like damaged tensor bytes.
fn header_checksum(meta: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = meta.keys().filter(|k| *k != "header_checksum").collect();
    keys.sort();
    let mut sum = FNV1A_START;
    for k in keys {
        sum = fnv1a(sum, k.as_bytes());
        sum = fnv1a(sum, &[0]);
        sum = fnv1a(sum, meta[k].as_bytes());
        sum = fnv1a(sum, &[0]);
    }
    format!("{sum:016x}")
}

/// Parses a checkpoint from bytes; `path` is for messages.
///
/// Everything is checked before anything is allocated from what the file claims: the
/// safetensors structure (header size, offsets, dtype sizes), the metadata and its checksum,
/// the presence, dtype and shape of every tensor the model configuration needs, the tensor
/// checksum. So no file, however damaged or hostile, makes this panic or allocate more than
/// about the size of the file itself.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    let bad = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    if bytes.is_empty() {
        return Err(bad("the file is empty (0 bytes); was the save interrupted before it began?".into()));
    }
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
    let mut unknown: Vec<&String> = meta.keys().filter(|k| !META_KEYS.contains(&k.as_str())).collect();
    unknown.sort();
    if let Some(k) = unknown.first() {
        return Err(bad(format!(
            "unexpected metadata key {k:?}: the header is damaged, or the file is not a folklstm checkpoint"
        )));
    }
    if let Some(k) = META_KEYS.iter().find(|k| **k != "header_checksum" && !meta.contains_key(**k)) {
        return Err(bad(format!("metadata lacks `{k}`: not a folklstm checkpoint, or a damaged one")));
    }
    if let Some(want) = meta.get("header_checksum")
        && *want != header_checksum(meta)
    {
        return Err(bad(
            "header checksum mismatch: the file's metadata is corrupt (it changed after it was written)".into()
        ));
    }
    let parse = |k: &str| -> Result<serde_json::Value> {
        serde_json::from_str(get(k)?).map_err(|e| bad(format!("metadata `{k}` is not valid JSON ({e})")))
    };
    let config: ModelConfig =
        serde_json::from_value(parse("config")?).map_err(|e| bad(format!("bad model config ({e})")))?;
    config.validate().map_err(|e| bad(format!("model config: {e}")))?;
    let train: TrainMeta =
        serde_json::from_value(parse("train")?).map_err(|e| bad(format!("bad training metadata ({e})")))?;
    train.batch.validate().map_err(|e| bad(format!("training metadata: {e}")))?;
    let vocab_s: String = serde_json::from_value(parse("vocab")?).map_err(|e| bad(format!("bad vocabulary ({e})")))?;
    // Token ids are positions in the list. A model trained here has a sorted vocabulary; one
    // imported from PyTorch keeps its own order, which the header checksum then protects. Files
    // written before header checksums existed always held a sorted list, so for them any other
    // order means damage (it would scramble every id).
    let vocab = Vocab::from_ordered(vocab_s.chars())
        .filter(|v| v.is_sorted() || meta.contains_key("header_checksum"))
        .ok_or_else(|| bad("the vocabulary is not a sorted list of distinct characters; the file is damaged".into()))?;
    if vocab.len() != config.vocab {
        return Err(bad(format!(
            "the vocabulary has {} distinct characters but the model config says {}",
            vocab.len(),
            config.vocab
        )));
    }
    // Structure before size: the model needs 3 tensors per layer and 3 more, so a config that
    // claims more layers than the file has tensors is refused before a layout is built.
    let names: Vec<String> = {
        let mut n: Vec<String> = st.names().into_iter().map(String::from).collect();
        n.sort();
        n
    };
    let needed = config.layers.saturating_mul(3).saturating_add(3);
    if names.len() < needed {
        return Err(bad(format!(
            "holds {} tensors but its model config ({} layers) needs {needed}; the file is damaged",
            names.len(),
            config.layers
        )));
    }
    let layout = ParamLayout::new(&config);
    // Every tensor present is an expected one, with the dtype and shape the config gives it.
    let has_adam = names.iter().any(|n| n.starts_with("adam."));
    let has_state = names.iter().any(|n| n.starts_with("state."));
    let sshape = vec![config.layers, train.batch.batch, config.hidden];
    let mut expected: HashMap<String, Vec<usize>> = HashMap::new();
    for t in layout.tensors() {
        expected.insert(t.name.clone(), t.shape.clone());
        if has_adam {
            expected.insert(format!("adam.m.{}", t.name), t.shape.clone());
            expected.insert(format!("adam.v.{}", t.name), t.shape.clone());
        }
    }
    if has_state {
        expected.insert("state.h".into(), sshape.clone());
        expected.insert("state.c".into(), sshape.clone());
    }
    for n in &names {
        let shape = expected
            .get(n)
            .ok_or_else(|| bad(format!("holds an unexpected tensor {n:?}: not a checkpoint of this model")))?;
        let t = st.tensor(n).map_err(|e| bad(format!("tensor {n}: {e}")))?;
        // Parameters may be stored as f16 in a weights-only file; optimizer state and the
        // carried state are always f32.
        let is_param = !n.starts_with("adam.") && !n.starts_with("state.");
        if !(t.dtype() == Dtype::F32 || (t.dtype() == Dtype::F16 && is_param && !has_adam && !has_state)) {
            return Err(bad(format!("tensor {n} is {:?}, expected F32", t.dtype())));
        }
        if t.shape() != shape.as_slice() {
            return Err(bad(format!("tensor {n} has shape {:?}, the model config needs {shape:?}", t.shape())));
        }
    }
    if let Some(missing) = expected.keys().filter(|k| !names.contains(k)).min() {
        return Err(bad(format!("tensor {missing} is missing")));
    }
    // Checksum over every tensor in name order, as written.
    let mut sum = FNV1A_START;
    for n in &names {
        sum = fnv1a(sum, n.as_bytes());
        sum = fnv1a(sum, st.tensor(n).map_err(|e| bad(e.to_string()))?.data());
    }
    if format!("{sum:016x}") != *get("checksum")? {
        return Err(bad(
            "checksum mismatch: the file is corrupt (its tensor bytes changed after it was written)".into()
        ));
    }
    // Shapes and sizes are verified: copying can no longer fail or over-allocate.
    let read_into = |name: &str, dst: &mut [f32]| -> Result<()> {
        let t = st.tensor(name).map_err(|e| bad(format!("tensor {name}: {e}")))?;
        if t.dtype() == Dtype::F16 {
            for (d, b) in dst.iter_mut().zip(t.data().chunks_exact(2)) {
                *d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        } else {
            for (d, b) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
                *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Ok(())
    };
    let mut params = Params::<f32> { config, layout: layout.clone(), data: vec![0.0; layout.total] };
    for t in layout.tensors() {
        read_into(&t.name, &mut params.data[t.range.clone()])?;
    }
    if params.data.iter().any(|x| !x.is_finite()) {
        return Err(bad("parameters contain NaN or infinite values".into()));
    }
    let adam = if has_adam {
        let mut a = AdamState::new(params.data.len());
        a.step = get("adam_step")?.parse().map_err(|_| bad("unreadable adam_step".into()))?;
        for t in layout.tensors() {
            read_into(&format!("adam.m.{}", t.name), &mut a.m[t.range.clone()])?;
            read_into(&format!("adam.v.{}", t.name), &mut a.v[t.range.clone()])?;
        }
        Some(a)
    } else {
        None
    };
    let state = if has_state {
        let n = sshape.iter().product();
        let (mut h, mut c) = (vec![0.0; n], vec![0.0; n]);
        read_into("state.h", &mut h)?;
        read_into("state.c", &mut c)?;
        Some((h, c))
    } else {
        None
    };
    if train.window > 0 && state.is_none() {
        return Err(bad("saved in the middle of an epoch but holds no carried state".into()));
    }
    Ok(Checkpoint { params, vocab, adam, state, meta: train })
}

/// Saves a checkpoint atomically.
pub fn save(path: &Path, ck: &Checkpoint) -> Result<()> {
    Ok(crate::files::write_atomic(path, &to_bytes(ck)?)?)
}

/// Saves a weights-only checkpoint atomically with its parameters stored as f16: half the
/// size, each weight rounded to 11 significant bits (a relative change of at most 2^-11).
/// Refused for a checkpoint that holds optimizer or carried state (resuming needs f32), or
/// whose weights exceed f16's range.
pub fn save_f16(path: &Path, ck: &Checkpoint) -> Result<()> {
    if ck.adam.is_some() || ck.state.is_some() {
        return Err(Error::Config(
            "only a weights-only checkpoint is stored as f16 (training state stays f32 to resume exactly)".into(),
        ));
    }
    Ok(crate::files::write_atomic(path, &to_bytes_as(ck, Dtype::F16)?)?)
}

/// Loads and verifies a checkpoint.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Checkpoint { path: path.into(), reason: "no such file".into() },
        _ => Error::io(path, e),
    })?;
    from_bytes(&bytes, path)
}

/// The model configuration and the file size of the checkpoint at `path`, from its header
/// alone (the tensors are not read), so a caller can say how much memory loading and using it
/// will take before it does. [`load`] verifies everything this trusts.
pub fn read_config(path: &Path) -> Result<(ModelConfig, u64)> {
    let (metadata, size) = read_metadata(path)?;
    let bad = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    let config: ModelConfig = metadata
        .get("config")
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or_else(|| bad("metadata lacks a readable `config`: not a folklstm checkpoint, or a damaged one".into()))?;
    config.validate().map_err(|e| bad(format!("model config: {e}")))?;
    Ok((config, size))
}

/// The tonic a checkpoint's tunes were all written on (`train --tonic`), from its header alone:
/// `sample` needs it before it writes the start of a tune for `--key`.
pub fn read_tonic(path: &Path) -> Result<Option<String>> {
    let (metadata, _) = read_metadata(path)?;
    let meta: Option<TrainMeta> = metadata.get("train").and_then(|t| serde_json::from_str(t).ok());
    Ok(meta.and_then(|m| m.tonic))
}

/// The `__metadata__` of a checkpoint's header, and the file's size.
fn read_metadata(path: &Path) -> Result<(HashMap<String, String>, u64)> {
    use std::io::Read;
    let bad = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    let mut f = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad("no such file".into()),
        _ => Error::io(path, e),
    })?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| bad(format!("only {size} bytes: truncated, or not a checkpoint")))?;
    let n = u64::from_le_bytes(len);
    // safetensors' own limit on a header (100 MB); a checkpoint's is a few KiB.
    if n > 100_000_000 || n > size.saturating_sub(8) {
        return Err(bad(format!("its header claims {n} bytes in a file of {size}; is it truncated or corrupt?")));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    #[derive(Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__")]
        metadata: HashMap<String, String>,
    }
    let h: Header = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("unreadable header ({e}); is it truncated or corrupt?")))?;
    Ok((h.metadata, size))
}
