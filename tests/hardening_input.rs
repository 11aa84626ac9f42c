//! Hostile or broken input: damaged and forged checkpoints, odd corpora, out-of-range command
//! line values. Each must end in a clear error (naming the problem) and never in a panic.

mod common;
use common::hardening::*;
use folklstm::checkpoint::{self, Checkpoint};
use folklstm::{Error, corpus::Vocab};
use serde_json::Value;
use std::path::Path;

/// A real checkpoint (with Adam's moments) written by `folklstm train`, and its folder.
fn real_checkpoint() -> (tempfile::TempDir, Vec<u8>) {
    let dir = setup();
    assert_ok(&train(dir.path(), &["--epochs", "1"]));
    let bytes = std::fs::read(dir.path().join("model/weights.1.safetensors")).unwrap();
    (dir, bytes)
}

/// The header (JSON) of a safetensors file and where its data starts.
fn header(bytes: &[u8]) -> (Value, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), 8 + n)
}

/// A safetensors file from a header and data bytes.
fn file(header: &Value, data: &[u8]) -> Vec<u8> {
    let mut h = serde_json::to_vec(header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// The header of `bytes` changed by `f`, with the same data.
fn edit(bytes: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let (mut h, start) = header(bytes);
    f(&mut h);
    file(&h, &bytes[start..])
}

/// `from_bytes` fails with a checkpoint error whose message holds `needle`.
fn expect_err(bytes: &[u8], needle: &str) -> String {
    match checkpoint::from_bytes(bytes, Path::new("x.safetensors")) {
        Ok(_) => panic!("accepted (wanted an error with {needle:?})"),
        Err(e @ Error::Checkpoint { .. }) => {
            let m = e.to_string();
            assert!(m.contains(needle), "{m:?} lacks {needle:?}");
            m
        }
        Err(e) => panic!("not a checkpoint error: {e}"),
    }
}

#[test]
fn a_checkpoint_truncated_anywhere_is_a_clear_error() {
    let (dir, bytes) = real_checkpoint();
    let mut rng = Rng::new(3);
    let lengths: Vec<usize> = (0..4096.min(bytes.len()))
        .chain((0..300).map(|_| 4096 + rng.below((bytes.len() - 4096) as u64) as usize))
        .chain([bytes.len() - 1])
        .collect();
    for &n in &lengths {
        let e = expect_err(&bytes[..n], "");
        assert!(e.contains("truncated") || e.contains("empty"), "length {n}: {e}");
    }
    // Through the command line: an error naming the file, exit 1, no panic.
    let path = dir.path().join("model/weights.1.safetensors");
    let (_, data_start) = header(&bytes);
    for n in [0, 1, 8, 9, data_start - 1, data_start, data_start + 5, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..n]).unwrap();
        let o = folk(dir.path()).args(["sample", "1", "--len", "5"]).output().unwrap();
        assert_error(&o, &["weights.1.safetensors"]);
        assert_eq!(o.status.code(), Some(1));
        let o = train(dir.path(), &["--epochs", "2", "--resume"]);
        assert_error(&o, &["weights.1.safetensors"]);
    }
}

#[test]
fn every_bit_flip_in_the_header_and_sampled_flips_in_the_data_are_caught() {
    let (_dir, bytes) = real_checkpoint();
    let (_, data_start) = header(&bytes);
    let mut flipped = bytes.clone();
    for bit in 0..data_start * 8 {
        flipped[bit / 8] ^= 1 << (bit % 8);
        if let Ok(ck) = checkpoint::from_bytes(&flipped, Path::new("x")) {
            panic!(
                "a flip of bit {} of byte {} in the header went unnoticed: epoch {}",
                bit % 8,
                bit / 8,
                ck.meta.epoch
            );
        }
        flipped[bit / 8] ^= 1 << (bit % 8);
    }
    let mut rng = Rng::new(5);
    for _ in 0..3000 {
        let bit = data_start * 8 + rng.below(((bytes.len() - data_start) * 8) as u64) as usize;
        flipped[bit / 8] ^= 1 << (bit % 8);
        expect_err(&flipped, "checksum mismatch");
        flipped[bit / 8] ^= 1 << (bit % 8);
    }
    assert_eq!(flipped, bytes);
    checkpoint::from_bytes(&bytes, Path::new("x")).unwrap();
}

#[test]
fn wrong_dtypes_and_shapes_are_named() {
    let (_dir, bytes) = real_checkpoint();
    let (h, _) = header(&bytes);
    let shape = h["embedding"]["shape"].clone();
    // Same byte size, other type: caught by the type check, not the checksum.
    expect_err(&edit(&bytes, |h| h["embedding"]["dtype"] = "I32".into()), "tensor embedding is I32, expected F32");
    expect_err(&edit(&bytes, |h| h["adam.v.dense.b"]["dtype"] = "U32".into()), "tensor adam.v.dense.b is U32");
    // Another size: the safetensors structure no longer adds up.
    expect_err(&edit(&bytes, |h| h["embedding"]["dtype"] = "F64".into()), "truncated or corrupt");
    // Transposed: same bytes, wrong shape.
    let t = Value::from(vec![shape[1].clone(), shape[0].clone()]);
    expect_err(&edit(&bytes, |h| h["embedding"]["shape"] = t), "tensor embedding has shape");
    let flat: u64 = shape.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).product();
    expect_err(
        &edit(&bytes, |h| h["adam.m.embedding"]["shape"] = Value::from(vec![flat])),
        "adam.m.embedding has shape",
    );
    // A tensor renamed, a tensor missing, a stranger.
    expect_err(
        &edit(&bytes, |h| {
            let t = h.as_object_mut().unwrap().remove("dense.b").unwrap();
            h["dense.bias"] = t;
        }),
        "unexpected tensor \"dense.bias\"",
    );
}

/// Set in the child process that [`headers_claiming_huge_sizes_are_refused_without_allocating`]
/// starts: the path of the real checkpoint to forge from.
const FORGED_CHILD: &str = "FOLKLSTM_FORGED_CHECKPOINT";

/// The memory the forged-header checks may take beyond what the process has mapped when they
/// start: 16 MiB, about 300 times the 56 KB checkpoint (parsing it copies it a few times), and
/// far below what any forged claim below asks for: the smallest, `vocab` 1,000,000, would need
/// 1,000,000 x (8 + 16 + 1) f32 = 100 MB of parameters (embedding, dense weights and bias); the others gigabytes to exabytes.
const FORGED_MARGIN: u64 = 16 << 20;

/// `VmSize` of this process, from /proc/self/status, in bytes.
fn vm_size() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmSize:")).expect("VmSize in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn headers_claiming_huge_sizes_are_refused_without_allocating() {
    // The checks run in a child process (this test, re-run) whose address space is capped at
    // what it has mapped plus FORGED_MARGIN (RLIMIT_AS): an attempt to allocate what a forged
    // header claims fails there and aborts the child ("memory allocation of N bytes failed"),
    // even where the kernel would have overcommitted the memory without touching it.
    if let Some(path) = std::env::var_os(FORGED_CHILD) {
        let bytes = std::fs::read(path).unwrap();
        let cap = vm_size() + FORGED_MARGIN;
        let lim = libc::rlimit { rlim_cur: cap, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: setrlimit reads the struct; it has no other preconditions.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0, "{}", std::io::Error::last_os_error());
        forged_headers_are_refused(&bytes);
        eprintln!(
            "forged headers refused within an address space of {} MiB (VmSize now {} MiB)",
            cap >> 20,
            vm_size() >> 20
        );
        return;
    }
    let (dir, _) = real_checkpoint();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "headers_claiming_huge_sizes_are_refused_without_allocating", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(FORGED_CHILD, dir.path().join("model/weights.1.safetensors"))
        .output()
        .unwrap();
    let text = all_output(&out);
    assert!(out.status.success(), "child failed ({:?}):\n{text}", out.status);
    assert!(
        text.contains("1 passed") && text.contains("forged headers refused"),
        "the child did not run the checks:\n{text}"
    );
}

/// Every forged size claim in the header of `bytes` (a real checkpoint) is a clear error.
fn forged_headers_are_refused(bytes: &[u8]) {
    // The header length field.
    for claim in [u64::MAX, 1 << 40, 100_000_001, bytes.len() as u64] {
        let mut b = bytes.to_vec();
        b[..8].copy_from_slice(&claim.to_le_bytes());
        expect_err(&b, "");
    }
    // A tensor whose shape multiplies past usize, and one past the file.
    let big = Value::from(vec![1u64 << 31, 1 << 31, 1 << 31]);
    expect_err(&edit(bytes, |h| h["dense.b"]["shape"] = big), "truncated or corrupt");
    expect_err(&edit(bytes, |h| h["dense.b"]["data_offsets"][1] = Value::from(1u64 << 50)), "truncated or corrupt");
    // A model config claiming sizes whose parameters would take terabytes: refused by the tensor
    // count or shapes first (the header checksum is dropped, as in files written before it).
    let forged = |cfg: &str| {
        edit(bytes, |h| {
            let m = h["__metadata__"].as_object_mut().unwrap();
            m.remove("header_checksum");
            let mut c: Value = serde_json::from_str(m["config"].as_str().unwrap()).unwrap();
            for (k, v) in serde_json::from_str::<Value>(cfg).unwrap().as_object().unwrap() {
                c[k] = v.clone();
            }
            m.insert("config".into(), c.to_string().into());
        })
    };
    expect_err(&forged(r#"{"embed":65536,"hidden":65536,"layers":65536}"#), "needs 196611");
    expect_err(&forged(r#"{"embed":65536,"hidden":65536}"#), "the model config needs [65536");
    expect_err(&forged(r#"{"hidden":65536}"#), "has shape");
    expect_err(&forged(r#"{"hidden":65537}"#), "65536");
    expect_err(&forged(r#"{"hidden":0}"#), "--hidden is 0");
    expect_err(&forged(r#"{"dropout":1.5}"#), "dropout");
    expect_err(&forged(r#"{"vocab":1000000}"#), "model config says 1000000");
    // The same with its header checksum kept: caught as a damaged header.
    let honest = edit(bytes, |h| {
        let m = h["__metadata__"].as_object_mut().unwrap();
        m.insert("config".into(), m["config"].as_str().unwrap().replace("\"hidden\":16", "\"hidden\":65536").into());
    });
    expect_err(&honest, "header checksum mismatch");
}

#[test]
fn missing_metadata_or_a_vocabulary_that_does_not_match_is_named() {
    let (_dir, bytes) = real_checkpoint();
    expect_err(&edit(&bytes, |h| drop(h.as_object_mut().unwrap().remove("__metadata__"))), "no metadata");
    for key in ["format", "format_version", "config", "vocab", "train", "adam_step", "checksum"] {
        let b = edit(&bytes, |h| drop(h["__metadata__"].as_object_mut().unwrap().remove(key)));
        expect_err(&b, &format!("metadata lacks `{key}`"));
    }
    expect_err(&edit(&bytes, |h| h["__metadata__"]["note"] = "hi".into()), "unexpected metadata key \"note\"");
    expect_err(&edit(&bytes, |h| h["__metadata__"]["format"] = "other".into()), "format is \"other\"");
    expect_err(&edit(&bytes, |h| h["__metadata__"]["format_version"] = "2".into()), "format version 2");
    // A vocabulary edited in place: the header checksum catches it; in a file written before
    // header checksums, the vocabulary/config/tensor checks do.
    let vocab_edit = |keep_sum: bool, f: fn(&str) -> String| {
        edit(&bytes, |h| {
            let m = h["__metadata__"].as_object_mut().unwrap();
            if !keep_sum {
                m.remove("header_checksum");
            }
            let v: String = serde_json::from_str(m["vocab"].as_str().unwrap()).unwrap();
            m.insert("vocab".into(), serde_json::to_string(&f(&v)).unwrap().into());
        })
    };
    expect_err(&vocab_edit(true, |v| v.replacen('A', "@", 1)), "header checksum mismatch");
    expect_err(&vocab_edit(false, |v| format!("{v}\u{e9}")), "distinct characters but the model config says");
    expect_err(&vocab_edit(false, |v| v.chars().rev().collect()), "not a sorted list");
    expect_err(&vocab_edit(false, |v| format!("{v}{}", v.chars().last().unwrap())), "not a sorted list");
    // A file written before header checksums existed still loads, unchanged.
    let old = edit(&bytes, |h| drop(h["__metadata__"].as_object_mut().unwrap().remove("header_checksum")));
    assert_eq!(
        checkpoint::from_bytes(&old, Path::new("x")).unwrap(),
        checkpoint::from_bytes(&bytes, Path::new("x")).unwrap()
    );
    // Written by a buggy program: the vocabulary does not match the config, or the config
    // does not match the tensors.
    let good = checkpoint::from_bytes(&bytes, Path::new("x")).unwrap();
    let v = good.vocab.len();
    let mut ck: Checkpoint = good.clone();
    ck.vocab = Vocab::from_text("abc");
    expect_err(
        &checkpoint::to_bytes(&ck).unwrap(),
        &format!("has 3 distinct characters but the model config says {v}"),
    );
    let mut ck = good.clone();
    ck.params.config.vocab = v + 1;
    ck.vocab = Vocab::from_chars(good.vocab.chars().iter().copied().chain(['\u{e9}']));
    expect_err(&checkpoint::to_bytes(&ck).unwrap(), &format!("has shape [{v}], the model config needs [{}]", v + 1));
}

/// Writes `content` as `name` in `dir` and trains on it; the output.
fn train_on(dir: &Path, name: &str, content: &[u8], extra: &[&str]) -> std::process::Output {
    std::fs::write(dir.join(name), content).unwrap();
    let model = format!("{name}.model");
    folk(dir)
        .args(["train", "--data", name, "--epochs", "1", "--model-dir", &model])
        .args(SMALL)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn broken_corpora_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Binary: random bytes (not UTF-8), and bytes that are valid UTF-8 but control codes.
    let mut rng = Rng::new(9);
    let random: Vec<u8> = (0..5000).map(|_| rng.below(256) as u8).collect();
    assert_error(&train_on(d, "random.bin", &random, &[]), &["random.bin", "not UTF-8"]);
    let mut elf = b"\x7fELF\x02\x01\x01\x00".to_vec();
    elf.extend(corpus().bytes());
    assert_error(&train_on(d, "elf.abc", &elf, &[]), &["elf.abc", "control character U+007F", "binary"]);
    let nul = format!("{}\0\0\0", corpus());
    assert_error(&train_on(d, "nul.abc", nul.as_bytes(), &[]), &["NUL", "line 281"]);
    // Invalid UTF-8 in otherwise good text: the offset of the bad byte.
    let mut latin1 = corpus().into_bytes();
    latin1.splice(100..100, [0xe9]);
    assert_error(&train_on(d, "latin1.abc", &latin1, &[]), &["not UTF-8", "offset 100"]);
    // Too small to learn from.
    assert_error(&train_on(d, "one.abc", b"X", &[]), &["one.abc", "1 distinct character", "at least 2"]);
    assert_error(&train_on(d, "empty.abc", b"", &[]), &["empty"]);
    assert_error(&train_on(d, "bom.abc", "\u{feff}".as_bytes(), &[]), &["empty"]);
    assert_error(&train_on(d, "short.abc", b"X:1\nabc\n", &[]), &["short.abc", "8 characters make no window", "= 68"]);
    // A folder without .abc files.
    std::fs::create_dir(d.join("txt")).unwrap();
    std::fs::write(d.join("txt/tunes.txt"), corpus()).unwrap();
    std::fs::create_dir(d.join("txt/folder.abc")).unwrap();
    let o = folk(d).args(["train", "--data", "txt", "--epochs", "1"]).args(SMALL).output().unwrap();
    assert_error(&o, &["txt", "no .abc files"]);
    // The same corpus errors from eval.
    assert_error(
        &folk(d).args(["eval", "1", "--data", "random.bin", "--model-dir", "nowhere"]).output().unwrap(),
        &["no checkpoints"],
    );
}

#[test]
fn crlf_and_a_byte_order_mark_are_normalised_not_learned() {
    let dir = setup();
    let d = dir.path();
    let crlf = corpus().replace('\n', "\r\n");
    let o = train_on(d, "crlf.abc", format!("\u{feff}{crlf}").as_bytes(), &["--rng-seed", "4"]);
    assert_ok(&o);
    let ck = checkpoint::load(&d.join("crlf.abc.model/weights.1.safetensors")).unwrap();
    assert!(!ck.vocab.chars().contains(&'\r'), "\\r was learned: {:?}", ck.vocab.chars());
    assert!(!ck.vocab.chars().contains(&'\u{feff}'), "the BOM was learned");
    assert_eq!(ck.vocab, Vocab::from_text(&corpus()));
    // Normalised text is the same corpus: the LF file trains the same model and resumes it.
    let o = train_on(d, "lf.abc", corpus().as_bytes(), &["--rng-seed", "4"]);
    assert_ok(&o);
    let lf = checkpoint::load(&d.join("lf.abc.model/weights.1.safetensors")).unwrap();
    assert_eq!(lf.params, ck.params);
    let o = folk(d)
        .args([
            "train",
            "--data",
            "tunes.abc",
            "--epochs",
            "2",
            "--resume",
            "--model-dir",
            "crlf.abc.model",
            "--rng-seed",
            "4",
        ])
        .args(SMALL)
        .output()
        .unwrap();
    assert_ok(&o);
    // Old Mac line ends (a lone \r) too.
    let cr = corpus().replace('\n', "\r");
    assert_ok(&train_on(d, "cr.abc", cr.as_bytes(), &["--rng-seed", "4"]));
    let ck = checkpoint::load(&d.join("cr.abc.model/weights.1.safetensors")).unwrap();
    assert_eq!(ck.params, lf.params);
    // Nothing sampled holds \r either.
    let o = folk(d)
        .args(["sample", "1", "--model-dir", "crlf.abc.model", "--len", "300", "--rng-seed", "1"])
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(!o.stdout.contains(&b'\r'));
}

#[test]
fn a_huge_single_line_trains_and_evaluates_within_bounded_memory() {
    // 2 MB without a line break: one "tune", one line. Text handled line by line or tune by tune
    // with a copy per step (a quadratic slip) would show in memory long before it showed in time.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line: String = "|ABcd efga gfed cBAG".repeat(100_000);
    let tiny = ["--embed", "4", "--hidden", "4", "--layers", "1", "--batch", "64", "--seq", "512", "--threads", "1"];
    std::fs::write(d.join("line.abc"), &line).unwrap();
    let mut c = folk(d);
    c.args(["train", "--data", "line.abc", "--epochs", "1", "--val-fraction", "0.1"]).args(tiny);
    let (o, train_peak) = output_with_peak_rss(c);
    assert_ok(&o);
    // Training announces what it needs (the corpus counted in) and must stay within it.
    let need = announced_need(&all_output(&o)).unwrap_or_else(|| panic!("no 'needs about N MiB': {}", all_output(&o)));
    let mut c = folk(d);
    c.args(["eval", "1", "--data", "line.abc", "--streams", "512"]);
    let (o, eval_peak) = output_with_peak_rss(c);
    assert_ok(&o);
    // Eval holds the text (2 MB), its ids (4 bytes a character, 8 MB) and a tiny model: the bound
    // is what the same binary takes to print its help (code, libraries, allocator) plus 8 times
    // those 10 MB, room for a few copies but not for one per line, step or stream.
    let (o, base) = output_with_peak_rss({
        let mut c = folk(d);
        c.arg("--help");
        c
    });
    assert_ok(&o);
    let eval_bound = base + 8 * 5 * line.len() as u64;
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    eprintln!(
        "train: peak {:.1} MiB of an announced {:.1}; eval: peak {:.1} MiB, bound {:.1} (--help: {:.1})",
        mib(train_peak),
        mib(need),
        mib(eval_peak),
        mib(eval_bound),
        mib(base)
    );
    assert!(train_peak <= need, "train: peak {train_peak} bytes above the announced {need}");
    assert!(eval_peak <= eval_bound, "eval: peak {eval_peak} bytes above {eval_bound}");
    let ck = checkpoint::load(&d.join("model/weights.1.safetensors")).unwrap();
    assert_eq!(ck.vocab, Vocab::from_text(&line));
}

/// Runs `args` in `dir` and expects a clear error holding `needles`.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) {
    let o = folk(dir).args(args).output().unwrap();
    assert_error(&o, needles);
}

#[test]
fn out_of_range_command_line_values_are_refused_naming_the_flag() {
    let dir = setup();
    let d = dir.path();
    let tr = |extra: &[&str], needles: &[&str]| {
        let args = [&["train", "--data", "tunes.abc", "--epochs", "1", "--model-dir", "m"][..], extra].concat();
        refused(d, &args, needles)
    };
    tr(&["--batch", "0"], &["--batch 0"]);
    tr(&["--batch", "-1"], &["'-1'", "--batch"]);
    tr(&["--seq", "0"], &["--seq 0"]);
    tr(&["--batch", "100000"], &["--batch 100000", "65536"]);
    tr(&["--hidden", "0"], &["--hidden is 0"]);
    tr(&["--embed", "0"], &["--embed is 0"]);
    tr(&["--layers", "0"], &["--layers is 0"]);
    tr(&["--hidden", "-3"], &["'-3'", "--hidden"]);
    tr(&["--hidden", "65536", "--embed", "65536"], &["needs about", "MiB of memory, more than this machine"]);
    tr(&["--epochs", "0"], &["--epochs 0"]);
    tr(&["--epochs", "-5"], &["'-5'", "--epochs"]);
    tr(&["--freq", "0"], &["--freq 0"]);
    tr(&["--lr", "-1"], &["--lr -1", "positive"]);
    tr(&["--lr", "0"], &["--lr 0", "positive"]);
    tr(&["--lr", "NaN"], &["--lr NaN"]);
    tr(&["--lr", "inf"], &["--lr inf"]);
    tr(&["--clip", "0"], &["--clip", "positive"]);
    tr(&["--clip", "-1"], &["--clip", "positive"]);
    tr(&["--dropout", "1.5"], &["--dropout is 1.5"]);
    tr(&["--dropout", "-0.1"], &["--dropout is -0.1"]);
    tr(&["--dropout", "1"], &["--dropout is 1"]);
    tr(&["--val-fraction", "1"], &["--val-fraction 1"]);
    tr(&["--val-fraction", "-0.5"], &["--val-fraction -0.5"]);
    tr(&["--threads", "0"], &["--threads 0"]);
    tr(&["--rng-seed", "-1"], &["'-1'", "--rng-seed"]);
    assert!(!d.join("m").join("weights.1.safetensors").exists());

    assert_ok(&train(d, &["--epochs", "1"]));
    let sa = |extra: &[&str], needles: &[&str]| refused(d, &[&["sample", "1"][..], extra].concat(), needles);
    sa(&["--len", "0"], &["--len 0"]);
    sa(&["--len", "-1"], &["'-1'", "--len"]);
    sa(&["--len", "1000001"], &["--len 1000001", "limit of 1000000"]);
    sa(&["--len", "99999999999999999999"], &["--len"]);
    sa(&["--count", "0"], &["--count 0"]);
    sa(&["--count", "4097"], &["--count 4097", "limit of 4096"]);
    sa(&["--count", "4096", "--len", "100000"], &["409600000 characters", "limit of 16777216"]);
    sa(&["--top-k", "0"], &["--top-k 0"]);
    sa(&["--top-k", "-2"], &["'-2'", "--top-k"]);
    sa(&["--temperature", "0"], &["--temperature 0"]);
    sa(&["--temperature", "-1"], &["--temperature -1"]);
    sa(&["--temperature", "NaN"], &["--temperature NaN"]);
    sa(&["--temperature", "inf"], &["--temperature inf"]);
    sa(&["--threads", "0"], &["--threads 0"]);
    sa(&["--seed", "X:1\n\u{1F3BB}"], &["--seed text", "outside the model's vocabulary"]);
    // A seed near the argument size limit plus a --len that together pass the per-tune limit.
    let long_seed = "ABc ".repeat(25_000);
    sa(&["--seed", &long_seed, "--len", "950000"], &["--seed (100000 characters)", "limit of 1000000"]);
    let ev = |extra: &[&str], needles: &[&str]| {
        refused(d, &[&["eval", "1", "--data", "tunes.abc"][..], extra].concat(), needles)
    };
    ev(&["--streams", "0"], &["--streams 0"]);
    ev(&["--streams", "5000"], &["--streams 5000", "4096"]);
    ev(&["--threads", "0"], &["--threads 0"]);
}

#[test]
fn a_seed_longer_than_the_training_window_primes_the_model() {
    // The LSTM has no fixed context: a seed of any length (here 60x the 16-step window) is fed
    // character by character and printed first; the limits count it.
    let dir = setup();
    let d = dir.path();
    assert_ok(&train(d, &["--epochs", "1"]));
    let seed: String = corpus().chars().take(1000).collect();
    let o = folk(d)
        .args(["sample", "1", "--seed", &seed, "--len", "200", "--count", "3", "--rng-seed", "5", "--free"])
        .output()
        .unwrap();
    assert_ok(&o);
    let out = common::tunes_text(&o.stdout);
    let tunes: Vec<&str> = out.trim_end_matches('\n').split("\n\n").filter(|t| t.starts_with("X: 1\n")).collect();
    assert!(out.matches(&seed).count() == 3, "each tune starts with the seed");
    assert!(!tunes.is_empty());
    assert_eq!(out.chars().count(), 3 * (1000 + 200) + 2 * 2 + 1);
    // Priming with a different long seed changes what follows (the seed is really read).
    let other: String = corpus().chars().skip(1000).take(1000).collect();
    let o2 =
        folk(d).args(["sample", "1", "--seed", &other, "--len", "200", "--rng-seed", "5", "--free"]).output().unwrap();
    assert_ok(&o2);
    let tail2: String = common::tunes_text(&o2.stdout).chars().skip(1000).collect();
    let tail1: String = out.chars().skip(1000).take(200).collect();
    assert_ne!(tail1, tail2.trim_end());
}

#[test]
fn a_damaged_newest_checkpoint_points_to_an_earlier_one_and_a_damaged_log_is_not_fatal() {
    let dir = setup();
    let d = dir.path();
    assert_ok(&train(d, &["--epochs", "2"]));
    let newest = d.join("model/weights.2.safetensors");
    let mut b = std::fs::read(&newest).unwrap();
    let n = b.len();
    b[n - 3] ^= 1;
    std::fs::write(&newest, &b).unwrap();
    let o = train(d, &["--epochs", "3", "--resume"]);
    assert_error(&o, &["weights.2.safetensors", "checksum mismatch", "--resume 1"]);
    // Following the advice works, and a log with binary garbage in it does not stop it.
    let csv = d.join("logs/training_log.csv");
    let mut log = std::fs::read(&csv).unwrap();
    log.extend([0xff, 0xfe, b'\n', b'9', b',', 0x80, b'\n']);
    std::fs::write(&csv, log).unwrap();
    assert_ok(&train(d, &["--epochs", "3", "--resume", "1"]));
    let text = std::fs::read_to_string(&csv).unwrap();
    let epochs: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(epochs, ["1", "2", "3"], "{text}");
}

/// The fuzz targets' seeds (`fuzz/seeds`, see fuzz/README.md) are inputs the targets accept:
/// the checkpoints load and survive the round trip the `checkpoint` target asserts, and the
/// tunes are valid ABC by the checker the `abc` target runs. A seed left behind by a format
/// change would make fuzzing start from rejects, and CI does not build the fuzz crate.
#[test]
fn the_fuzz_seeds_are_inputs_the_targets_accept() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let files = |sub: &str| {
        let mut v: Vec<_> = std::fs::read_dir(seeds.join(sub)).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        assert!(!v.is_empty(), "no seeds in fuzz/seeds/{sub}");
        v
    };
    for p in files("checkpoint") {
        let bytes = std::fs::read(&p).unwrap();
        let ck = checkpoint::from_bytes(&bytes, &p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let again = checkpoint::to_bytes(&ck).unwrap();
        assert_eq!(checkpoint::from_bytes(&again, &p).unwrap(), ck, "{}: round trip", p.display());
    }
    for p in files("abc") {
        let text = std::fs::read_to_string(&p).unwrap();
        let reports = folklstm::abc::check_text(&text);
        assert!(!reports.is_empty(), "{}: no tune", p.display());
        for r in reports {
            assert!(r.valid && r.problems.is_empty(), "{}: {:?}", p.display(), r.problems);
        }
    }
}
