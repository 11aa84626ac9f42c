//! PyTorch models in and out (`folklstm::torch`, `folklstm import`, `export --format torch`),
//! against `../shared/fixtures/torch-charlstm.safetensors`: the state dict of the anchor's
//! `CharLSTM` as PyTorch saved it, with its own forward pass (see the fixture README).

mod common;
use common::hardening::{assert_error, setup, stderr};
use common::{corpus, fixture_bytes, folk, rel_err, tensor_f64, tensor_ids};
use folklstm::cpu::{State, Workspace, forward};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

const FIXTURE: &str = "torch-charlstm.safetensors";

/// Every tensor of a safetensors file as (dtype, shape, bytes), and its metadata.
type Tensors = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;

fn tensors(bytes: &[u8]) -> (Tensors, HashMap<String, String>) {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let mut out: Tensors =
        st.tensors().into_iter().map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let meta = SafeTensors::read_metadata(bytes).unwrap().1.metadata().clone().unwrap_or_default();
    (out, meta)
}

fn serialize(t: &Tensors, meta: HashMap<String, String>) -> Vec<u8> {
    let views: Vec<(String, TensorView)> =
        t.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

#[test]
fn importing_the_pytorch_fixture_reproduces_its_forward_pass() {
    let Some(bytes) = fixture_bytes(FIXTURE) else { return };
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let m = folklstm::torch::from_bytes(&bytes, Path::new(FIXTURE), 0.0).unwrap();
    let cfg = m.params.config;
    assert_eq!((cfg.vocab, cfg.embed, cfg.hidden, cfg.layers), (11, 6, 5, 2));
    // The fixture numbers its characters in its own order ("2" last): ids are kept as they are.
    assert_eq!(m.vocab.chars().last(), Some(&'2'));
    assert!(m.ignored.iter().all(|n| n.starts_with("expected.")) && m.ignored.len() == 6, "{:?}", m.ignored);
    let x = tensor_ids(&st, "expected.x");
    let (b, t) = (3, 7);
    let f32s = |name: &str| tensor_f64(&st, name).into_iter().map(|v| v as f32).collect::<Vec<f32>>();
    let mut state = State { h: f32s("expected.h0"), c: f32s("expected.c0") };
    let mut ws = Workspace::<f32>::new(&cfg, b, t);
    // Targets only feed the loss, which the fixture does not hold: any valid ids will do.
    forward(&m.params, &mut ws, &x, &x, &mut state, None).unwrap();
    // Both sides compute in f32 with different summation orders (and the two biases summed
    // once here, added separately by PyTorch): each rounding is at most 6e-8 relative, and
    // these tiny sizes (dot products of at most 6 terms, 7 steps, 2 layers) chain a few dozen
    // of them: about 1e-6 of each tensor's scale is what agreement means (the fixture README's
    // figure). Measured: 9e-8 (logits), 2.1e-7 (hT, cT); 2e-6 leaves a 10x margin for other
    // instruction sets, while a wrong gate order, transpose or bias changes the outputs by O(1)
    // of their scale.
    for (name, got, want) in [
        ("logits", ws.logits_bt(), "expected.logits"),
        ("hT", state.h.clone(), "expected.hT"),
        ("cT", state.c.clone(), "expected.cT"),
    ] {
        let err = rel_err(&got, &tensor_f64(&st, want));
        eprintln!("{name}: {err:e}");
        assert!(err < 2e-6, "{name}: relative error {err:e}");
    }
}

#[test]
fn export_after_import_gives_back_the_weights_bit_for_bit_with_one_bias() {
    let Some(bytes) = fixture_bytes(FIXTURE) else { return };
    let m = folklstm::torch::from_bytes(&bytes, Path::new(FIXTURE), 0.0).unwrap();
    let out = folklstm::torch::to_bytes(&m.params, &m.vocab).unwrap();
    let (orig, orig_meta) = tensors(&bytes);
    let (back, meta) = tensors(&out);
    let orig: HashMap<&str, _> = orig.iter().map(|(n, d, s, b)| (n.as_str(), (d, s, b))).collect();
    assert_eq!(back.len(), orig.len() - 6, "every weight of the fixture, and nothing else");
    let f32s = |b: &[u8]| b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<f32>>();
    for (name, dtype, shape, data) in &back {
        let (d0, s0, b0) = orig[name.as_str()];
        assert_eq!((dtype, shape), (d0, s0), "{name}");
        if name.contains("bias_ih") {
            // The sum of PyTorch's two biases, in f32, as PyTorch would add them.
            let hh = f32s(orig[name.replace("_ih", "_hh").as_str()].2);
            let want: Vec<f32> = f32s(b0).iter().zip(&hh).map(|(a, b)| a + b).collect();
            assert_eq!(f32s(data), want, "{name}");
            assert!(hh.iter().any(|&x| x != 0.0), "the fixture's second bias is non-zero");
        } else if name.contains("bias_hh") {
            assert!(f32s(data).iter().all(|&x| x.to_bits() == 0), "{name} is +0.0");
        } else {
            assert_eq!(data, b0, "{name} bit for bit");
        }
    }
    let list = |m: &HashMap<String, String>| serde_json::from_str::<Vec<String>>(&m["vocab"]).unwrap();
    assert_eq!(list(&meta), list(&orig_meta), "the same characters in the same order");
    let sizes: serde_json::Value = serde_json::from_str(&meta["sizes"]).unwrap();
    assert_eq!(sizes, serde_json::json!({"V": 11, "E": 6, "H": 5, "L": 2}));
    // And the exported file imports to the same model.
    let again = folklstm::torch::from_bytes(&out, Path::new("back"), 0.0).unwrap();
    assert_eq!((again.params, again.vocab), (m.params, m.vocab));
}

/// The fixture's weights with an edit, imported: the error message.
fn import_err(bytes: &[u8], edit: impl FnOnce(&mut Tensors, &mut HashMap<String, String>)) -> String {
    let (mut t, mut meta) = tensors(bytes);
    edit(&mut t, &mut meta);
    let e = folklstm::torch::from_bytes(&serialize(&t, meta), Path::new("edited.safetensors"), 0.0);
    e.expect_err("an edited state dict must be refused").to_string()
}

fn assert_has(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "{n:?} missing from: {msg}");
    }
}

#[test]
fn other_architectures_and_missing_vocabularies_are_refused_with_what_was_found() {
    let Some(bytes) = fixture_bytes(FIXTURE) else { return };
    // No vocabulary: say how to save one.
    let e = import_err(&bytes, |_, m| drop(m.remove("vocab")));
    assert_has(&e, &["no `vocab`", "save_file", "json.dumps(chars)"]);
    let e = import_err(&bytes, |_, m| drop(m.insert("vocab".into(), "[\"a\", \"bc\"]".into())));
    assert_has(&e, &["\"bc\"", "not one character"]);
    let e = import_err(&bytes, |_, m| drop(m.insert("vocab".into(), "[\"a\", \"b\"]".into())));
    assert_has(&e, &["2 characters", "11 rows"]);
    // A GRU under the same names: 3 gates.
    let e = import_err(&bytes, |t, _| {
        for (_, _, s, b) in t.iter_mut().filter(|x| x.0.starts_with("lstm.")) {
            s[0] = 15;
            b.truncate(b.len() / 20 * 15);
        }
    });
    assert_has(&e, &["a GRU", "[15, 5]", "expected: emb.weight [V, E]", "found: "]);
    // Other names for the same modules.
    let e = import_err(&bytes, |t, _| {
        for x in t.iter_mut().filter(|x| x.0.starts_with("emb.")) {
            x.0 = x.0.replace("emb.", "embedding.");
        }
    });
    assert_has(&e, &["lacks emb.weight", "found: ", "embedding.weight [11, 6]"]);
    // A shape that does not fit the others.
    let e = import_err(&bytes, |t, _| {
        let x = t.iter_mut().find(|x| x.0 == "out.bias").unwrap();
        x.2 = vec![10];
        x.3.truncate(40);
    });
    assert_has(&e, &["out.bias has shape [10]", "should be [11]"]);
    // An LSTM with projections: a tensor CharLSTM does not have.
    let e = import_err(&bytes, |t, _| {
        let w = t.iter().find(|x| x.0 == "lstm.weight_hh_l0").unwrap().clone();
        t.push(("lstm.weight_hr_l0".into(), w.1, w.2, w.3));
    });
    assert_has(&e, &["lstm.weight_hr_l0", "does not have"]);
    // Half precision: say how to convert.
    let e = import_err(&bytes, |t, _| {
        let x = t.iter_mut().find(|x| x.0 == "out.bias").unwrap();
        x.1 = Dtype::F16;
        x.3.truncate(22);
    });
    assert_has(&e, &["out.bias is F16", "v.float()"]);
    // Not a state dict at all, and a folklstm checkpoint.
    let e = folklstm::torch::from_bytes(b"not a file", Path::new("x"), 0.0).unwrap_err().to_string();
    assert_has(&e, &["not a readable safetensors file"]);
    let ck = folklstm::torch::from_bytes(&bytes, Path::new(FIXTURE), 0.0).unwrap().into_checkpoint(Path::new(FIXTURE));
    let ours = folklstm::checkpoint::to_bytes(&ck).unwrap();
    let e = folklstm::torch::from_bytes(&ours, Path::new("x"), 0.0).unwrap_err().to_string();
    assert_has(&e, &["a folklstm checkpoint already", "--format torch"]);
}

#[test]
fn import_writes_a_checkpoint_that_samples_exports_and_fine_tunes() {
    let Some(fixture) = common::shared_dir("fixtures").map(|d| d.join(FIXTURE)) else { return };
    let dir = setup();
    let d = dir.path();
    let o = folk(d).arg("import").arg(&fixture).args(["-o", "imported"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_has(&out, &["imported/weights.0.safetensors", "ignored 6 tensors"]);
    // sample reads it; the characters are the fixture's.
    let o =
        folk(d).args(["sample", "0", "--model-dir", "imported", "--len", "40", "--rng-seed", "1"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.chars().all(|c| "\n :ABCabc|2".contains(c)) && text.chars().count() == 41, "{text:?}");
    // export --format torch writes the same weights PyTorch gave (bias_hh now folded into bias_ih).
    let o = folk(d)
        .args(["export", "0", "--model-dir", "imported", "--format", "torch", "-o", "back.safetensors"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let orig = folklstm::torch::import(&fixture, 0.0).unwrap();
    let back = folklstm::torch::import(&d.join("back.safetensors"), 0.0).unwrap();
    assert_eq!((&back.params.data, &back.vocab), (&orig.params.data, &orig.vocab));
    // A second import into a folder with checkpoints is refused; so is a missing vocabulary.
    let o = folk(d).arg("import").arg(&fixture).args(["-o", "imported"]).output().unwrap();
    assert_error(&o, &["imported", "already holds checkpoints"]);
    let (t, mut meta) = tensors(&std::fs::read(&fixture).unwrap());
    meta.remove("vocab");
    std::fs::write(d.join("novocab.safetensors"), serialize(&t, meta)).unwrap();
    let o = folk(d).args(["import", "novocab.safetensors", "-o", "other"]).output().unwrap();
    assert_error(&o, &["novocab.safetensors", "no `vocab`", "json.dumps(chars)"]);
    assert!(!d.join("other/weights.0.safetensors").exists());
    // Fine-tuning: a corpus in the model's characters trains from the imported weights.
    let text: String = corpus().chars().map(|c| if "\n :ABCabc|2".contains(c) { c } else { 'a' }).collect();
    std::fs::write(d.join("small.txt"), &text).unwrap();
    let tune = |extra: &[&str]| {
        folk(d)
            .args(["train", "--data", "small.txt", "--model-dir", "tuned", "--epochs", "1", "--batch", "4"])
            .args(["--seq", "16", "--threads", "1"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = tune(&["--init-from", "imported/weights.0.safetensors"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tuned = folklstm::checkpoint::load(&d.join("tuned/weights.1.safetensors")).unwrap();
    assert_eq!(tuned.vocab, orig.vocab, "fine-tuning keeps the model's numbering");
    assert_ne!(tuned.params.data, orig.params.data, "the weights moved");
    // ... and resumes like any run.
    let o = folk(d)
        .args(["train", "--data", "small.txt", "--model-dir", "tuned", "--epochs", "2", "--resume"])
        .args(["--threads", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("tuned/weights.2.safetensors").is_file());
    // A corpus with characters the model lacks cannot be fine-tuned on: say which.
    let o = folk(d)
        .args(["train", "--data", "tunes.abc", "--model-dir", "tuned2", "--init-from"])
        .arg("imported/weights.0.safetensors")
        .args(["--batch", "4", "--seq", "16"])
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("outside the model's vocabulary"), "{}", stderr(&o));
}
