//! PyTorch interop: a model as the `state_dict` of the `CharLSTM` module of
//! `../shared/anchors/torch_anchor.py` (`nn.Embedding` → `nn.LSTM(num_layers=L,
//! batch_first=True)` → `nn.Linear`), in a safetensors file, and back.
//!
//! | PyTorch name | shape | folklstm tensor |
//! |---|---|---|
//! | `emb.weight` | `[V, E]` | `embedding` `[V, E]` (the same) |
//! | `lstm.weight_ih_l{k}` | `[4H, in]` | `lstm.{k}.w_ih` `[in, 4H]`, transposed |
//! | `lstm.weight_hh_l{k}` | `[4H, H]` | `lstm.{k}.w_hh` `[H, 4H]`, transposed |
//! | `lstm.bias_ih_l{k}`, `lstm.bias_hh_l{k}` | `[4H]` each | `lstm.{k}.b` `[4H]`: their sum |
//! | `out.weight` | `[V, H]` | `dense.w` `[H, V]`, transposed |
//! | `out.bias` | `[V]` | `dense.b` `[V]` |
//!
//! Both number the gates i, f, g, o (PyTorch along the rows of its matrices, folklstm along the
//! columns of its own), so a transpose is the whole conversion; no gate moves. PyTorch adds two
//! biases where folklstm has one: importing sums them (one f32 rounding), exporting writes the
//! bias as `bias_ih` and zeros as `bias_hh`, which leaves PyTorch's forward pass unchanged.
//! Transposes and copies are exact, so export after import gives back every weight bit for bit.
//!
//! The header metadata carries what a state dict lacks: `vocab`, the characters as a JSON list
//! (index = token id, in any order: an imported model keeps its own numbering), and `sizes`,
//! `{"V", "E", "H", "L"}` as JSON, so a script can build the module before loading the weights.

use crate::checkpoint::{Checkpoint, TrainMeta};
use crate::corpus::Vocab;
use crate::error::{Error, Result};
use crate::model::{BatchConfig, ModelConfig, Params};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The value of the `format` metadata key in an exported file.
pub const FORMAT: &str = "pytorch state_dict of CharLSTM (emb, lstm, out)";

/// The tensors a `CharLSTM` state dict holds, as a message names them.
const EXPECTED: &str = "emb.weight [V, E], and for each layer k lstm.weight_ih_lk [4H, in], lstm.weight_hh_lk \
     [4H, H], lstm.bias_ih_lk [4H], lstm.bias_hh_lk [4H], then out.weight [V, H] and out.bias [V]";

/// `dst[c, r] = src[r, c]`: `src: [rows, cols]` row-major, returns `[cols, rows]`.
fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut dst = vec![0.0; src.len()];
    for r in 0..rows {
        for c in 0..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
    dst
}

/// The state dict of `params` as `(name, shape, values)`, in the module's order.
fn state_dict(params: &Params<f32>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let cfg = &params.config;
    let lo = &params.layout;
    let (v, e, h) = (cfg.vocab, cfg.embed, cfg.hidden);
    let mut out = vec![("emb.weight".to_string(), vec![v, e], params.get(&lo.embedding).to_vec())];
    for (k, l) in lo.lstm.iter().enumerate() {
        let inp = cfg.layer_input(k);
        out.push((format!("lstm.weight_ih_l{k}"), vec![4 * h, inp], transpose(params.get(&l.w_ih), inp, 4 * h)));
        out.push((format!("lstm.weight_hh_l{k}"), vec![4 * h, h], transpose(params.get(&l.w_hh), h, 4 * h)));
        out.push((format!("lstm.bias_ih_l{k}"), vec![4 * h], params.get(&l.b).to_vec()));
        out.push((format!("lstm.bias_hh_l{k}"), vec![4 * h], vec![0.0; 4 * h]));
    }
    out.push(("out.weight".into(), vec![v, h], transpose(params.get(&lo.dense_w), h, v)));
    out.push(("out.bias".into(), vec![v], params.get(&lo.dense_b).to_vec()));
    out
}

/// A model as the bytes of a safetensors file holding `CharLSTM`'s state dict (f32), with the
/// vocabulary and sizes in the header metadata.
pub fn to_bytes(params: &Params<f32>, vocab: &Vocab) -> Result<Vec<u8>> {
    let cfg = &params.config;
    if vocab.len() != cfg.vocab {
        return Err(Error::Shape(format!("vocabulary of {} characters for a model of {}", vocab.len(), cfg.vocab)));
    }
    let tensors = state_dict(params);
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), b).map_err(|e| Error::Shape(e.to_string()))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<Vec<_>>>()?;
    let chars: Vec<String> = vocab.chars().iter().map(|c| c.to_string()).collect();
    let sizes = serde_json::json!({"V": cfg.vocab, "E": cfg.embed, "H": cfg.hidden, "L": cfg.layers});
    let meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("vocab".to_string(), serde_json::Value::from(chars).to_string()),
        ("sizes".to_string(), sizes.to_string()),
    ]);
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Shape(format!("cannot serialise the state dict: {e}")))
}

/// Writes `params` and `vocab` as a `CharLSTM` state dict (atomically).
pub fn export(path: &Path, params: &Params<f32>, vocab: &Vocab) -> Result<()> {
    Ok(crate::files::write_atomic(path, &to_bytes(params, vocab)?)?)
}

/// A model read from a PyTorch state dict.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The weights in folklstm's layout (the two biases of each layer summed).
    pub params: Params<f32>,
    /// The characters, in the state dict's token-id order.
    pub vocab: Vocab,
    /// Tensors of the file outside the `emb`, `lstm` and `out` modules, which were not read
    /// (say, test data saved beside the weights).
    pub ignored: Vec<String>,
}

impl Imported {
    /// A weights-only checkpoint of the imported model at epoch 0: `sample` reads it, and
    /// `train --init-from` fine-tunes it. `source` is recorded as where it came from.
    pub fn into_checkpoint(self, source: &Path) -> Checkpoint {
        let meta = TrainMeta {
            epoch: 0,
            window: 0,
            step: 0,
            rng_seed: 0,
            batch: BatchConfig::default(),
            lr: 1e-3,
            clip: None,
            val_fraction: 0.0,
            corpus_fingerprint: String::new(),
            corpus: format!("imported from {}", source.display()),
            partial: None,
            schedule: None,
            transpose: None,
            transpose_keys: Vec::new(),
            reflow: false,
            label_parts: false,
            line_bars: None,
            mark_lines: false,
            mark_last: false,
            restate_key: false,
            tonic: None,
            weight_decay: 0.0,
            weight_drop: 0.0,
            best: None,
        };
        Checkpoint { params: self.params, vocab: self.vocab, adam: None, state: None, meta }
    }
}

/// The vocabulary of the `vocab` metadata: a JSON list of one-character strings.
fn read_vocab(meta: Option<&HashMap<String, String>>, bad: &dyn Fn(String) -> Error) -> Result<Vocab> {
    let raw = meta.and_then(|m| m.get("vocab")).ok_or_else(|| {
        bad("the header metadata has no `vocab`: a state dict does not say which character each token id is. \
             Save it with the characters (index = token id): safetensors.torch.save_file(model.state_dict(), \
             path, metadata={\"vocab\": json.dumps(chars)})"
            .into())
    })?;
    let list: Vec<String> = serde_json::from_str(raw)
        .map_err(|e| bad(format!("metadata `vocab` is not a JSON list of characters ({e}): {raw:.80}")))?;
    if let Some(s) = list.iter().find(|s| s.chars().count() != 1) {
        return Err(bad(format!(
            "metadata `vocab` holds {s:?}, which is not one character; folklstm models read characters"
        )));
    }
    Vocab::from_ordered(list.iter().filter_map(|s| s.chars().next()))
        .ok_or_else(|| bad("metadata `vocab` lists a character twice; token ids need distinct characters".into()))
}

/// Reads a `CharLSTM` state dict from the bytes of a safetensors file; `path` is for messages,
/// `dropout` is the training dropout to record (a state dict does not hold it).
///
/// Refused with a message naming what was found and what was expected: a file without the
/// `vocab` metadata, another architecture (a GRU or a plain RNN in `lstm`, an LSTM with
/// projections or two directions, other module names), shapes that do not fit together,
/// another dtype than f32, non-finite values. Tensors outside `emb`, `lstm` and `out` are not
/// read and are listed in [`Imported::ignored`].
pub fn from_bytes(bytes: &[u8], path: &Path, dropout: f32) -> Result<Imported> {
    let bad = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a readable safetensors file ({e}); is it truncated, or a .pt file?")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("unreadable header ({e})")))?;
    let meta = header.metadata().as_ref();
    if meta.and_then(|m| m.get("format")).map(String::as_str) == Some(crate::checkpoint::FORMAT) {
        return Err(bad(
            "is a folklstm checkpoint already, not a PyTorch state dict: sample or train from it as it is, \
             or convert it with folklstm export EPOCH --format torch"
                .into(),
        ));
    }
    let shapes: HashMap<String, Vec<usize>> =
        st.tensors().into_iter().map(|(name, t)| (name, t.shape().to_vec())).collect();
    let found = || {
        let mut names: Vec<String> = shapes.iter().map(|(n, s)| format!("{n} {s:?}")).collect();
        names.sort();
        let more = names.len().saturating_sub(12);
        names.truncate(12);
        format!("{}{}", names.join(", "), if more > 0 { format!(" and {more} more") } else { String::new() })
    };
    let not_charlstm = |what: String| {
        bad(format!("{what}; this is not the state dict of CharLSTM.\n  expected: {EXPECTED}\n  found: {}", found()))
    };
    let dims = |name: &str, rank: usize| -> Result<Vec<usize>> {
        match shapes.get(name) {
            Some(s) if s.len() == rank => Ok(s.clone()),
            Some(s) => Err(not_charlstm(format!("{name} has shape {s:?}, expected {rank} dimensions"))),
            None => Err(not_charlstm(format!("it lacks {name}"))),
        }
    };
    let emb = dims("emb.weight", 2)?;
    let (v, e) = (emb[0], emb[1]);
    let hh = dims("lstm.weight_hh_l0", 2)?;
    let h = hh[1];
    if hh[0] != 4 * h {
        let kind = match hh[0] / h.max(1) {
            3 if hh[0] == 3 * h => format!("3 gates of {h}: a GRU"),
            1 if hh[0] == h => "1 gate: a plain RNN".to_string(),
            _ => format!("{} rows for a hidden width of {h}", hh[0]),
        };
        return Err(not_charlstm(format!(
            "lstm.weight_hh_l0 has shape {hh:?} ({kind}); an LSTM's is [4H, H] = [{}, {h}]",
            4 * h
        )));
    }
    let layers = (0..).take_while(|k| shapes.contains_key(&format!("lstm.weight_ih_l{k}"))).count().max(1);
    let cfg = ModelConfig { vocab: v, embed: e, hidden: h, layers, dropout };
    // Every tensor of the three modules, with the shape the sizes above give it.
    let mut expected: Vec<(String, Vec<usize>)> = vec![("emb.weight".into(), vec![v, e])];
    for k in 0..layers {
        expected.push((format!("lstm.weight_ih_l{k}"), vec![4 * h, cfg.layer_input(k)]));
        expected.push((format!("lstm.weight_hh_l{k}"), vec![4 * h, h]));
        expected.push((format!("lstm.bias_ih_l{k}"), vec![4 * h]));
        expected.push((format!("lstm.bias_hh_l{k}"), vec![4 * h]));
    }
    expected.push(("out.weight".into(), vec![v, h]));
    expected.push(("out.bias".into(), vec![v]));
    for (name, shape) in &expected {
        match shapes.get(name) {
            None => return Err(not_charlstm(format!("it lacks {name} {shape:?}"))),
            Some(s) if s != shape => {
                return Err(not_charlstm(format!(
                    "{name} has shape {s:?}; with V={v}, E={e}, H={h}, L={layers} (from emb.weight and \
                     lstm.weight_hh_l0) it should be {shape:?}"
                )));
            }
            Some(_) => {}
        }
    }
    let mut ignored = Vec::new();
    for name in shapes.keys() {
        let ours = ["emb.", "lstm.", "out."].iter().any(|p| name.starts_with(p));
        if ours && !expected.iter().any(|(n, _)| n == name) {
            return Err(not_charlstm(format!(
                "it holds {name}, which CharLSTM does not have (an LSTM with proj_size, bidirectional, or \
                 more layers than lstm.weight_ih_l* shows?)"
            )));
        }
        if !ours {
            ignored.push(name.clone());
        }
    }
    ignored.sort();
    let vocab = read_vocab(meta, &bad)?;
    if vocab.len() != v {
        return Err(bad(format!("metadata `vocab` lists {} characters but emb.weight has {v} rows", vocab.len())));
    }
    cfg.validate().map_err(|e| bad(format!("model sizes: {e}")))?;
    let read = |name: &str| -> Result<Vec<f32>> {
        let t = st.tensor(name).map_err(|e| bad(format!("tensor {name}: {e}")))?;
        if t.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor {name} is {:?}; folklstm reads f32 state dicts (save {{k: v.float() for k, v in \
                 model.state_dict().items()}})",
                t.dtype()
            )));
        }
        let x: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if x.iter().any(|x| !x.is_finite()) {
            return Err(bad(format!("tensor {name} holds NaN or infinite values")));
        }
        Ok(x)
    };
    // Every size is now that of a tensor the file holds: the buffer is no larger than the file.
    let mut params = Params::<f32>::zeros(&cfg);
    let lo = params.layout.clone();
    params.get_mut(&lo.embedding).copy_from_slice(&read("emb.weight")?);
    for (k, l) in lo.lstm.iter().enumerate() {
        let inp = cfg.layer_input(k);
        params.get_mut(&l.w_ih).copy_from_slice(&transpose(&read(&format!("lstm.weight_ih_l{k}"))?, 4 * h, inp));
        params.get_mut(&l.w_hh).copy_from_slice(&transpose(&read(&format!("lstm.weight_hh_l{k}"))?, 4 * h, h));
        let (b_ih, b_hh) = (read(&format!("lstm.bias_ih_l{k}"))?, read(&format!("lstm.bias_hh_l{k}"))?);
        for ((d, a), b) in params.get_mut(&l.b).iter_mut().zip(&b_ih).zip(&b_hh) {
            *d = a + b;
        }
    }
    params.get_mut(&lo.dense_w).copy_from_slice(&transpose(&read("out.weight")?, v, h));
    params.get_mut(&lo.dense_b).copy_from_slice(&read("out.bias")?);
    if params.data.iter().any(|x| !x.is_finite()) {
        return Err(bad("the two biases of a layer add up to an infinite value".into()));
    }
    Ok(Imported { params, vocab, ignored })
}

/// Reads a `CharLSTM` state dict from a file ([`from_bytes`]).
pub fn import(path: &Path, dropout: f32) -> Result<Imported> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Checkpoint { path: path.into(), reason: "no such file".into() },
        _ => Error::io(path, e),
    })?;
    from_bytes(&bytes, path, dropout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_moves_rows_to_columns() {
        assert_eq!(transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn export_then_import_is_the_identity() {
        let cfg = ModelConfig { vocab: 4, embed: 3, hidden: 2, layers: 2, dropout: 0.1 };
        let mut p = crate::model::init_params(&cfg, 5);
        // Non-zero biases everywhere, so a dropped or misplaced bias shows.
        for (i, x) in p.data.iter_mut().enumerate() {
            *x += i as f32 * 1e-3;
        }
        let vocab = Vocab::from_ordered("ba\nc".chars()).unwrap();
        let back = from_bytes(&to_bytes(&p, &vocab).unwrap(), Path::new("t"), 0.1).unwrap();
        assert_eq!(back.params, p);
        assert_eq!(back.vocab, vocab);
        assert!(back.ignored.is_empty());
    }
}
