//! End-to-end tests of `folklstm train` and `folklstm sample` on small corpora written here.

mod common;
use common::hardening::{setup, stderr};
use common::{SMALL, corpus, folk};
use folklstm::checkpoint;
use std::path::Path;

fn train(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut c = folk(dir);
    c.args(["train", "--data", "tunes.abc", "--epochs", "2", "--freq", "1"]).args(SMALL).args(extra);
    c.output().unwrap()
}

/// The error path: non-zero exit, a message containing `needle`, and no panic.
fn assert_error(o: &std::process::Output, needle: &str) {
    let e = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {e}");
    assert!(e.contains(needle), "stderr lacks {needle:?}: {e}");
    assert!(!e.contains("panicked") && !e.contains("RUST_BACKTRACE"), "panic: {e}");
}

#[test]
fn train_writes_checkpoints_and_log_then_sample_prints_tunes() {
    let dir = setup();
    let o = train(dir.path(), &["--val-fraction", "0.2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for e in [1, 2] {
        assert!(dir.path().join(format!("model/weights.{e}.safetensors")).is_file());
    }
    let csv = std::fs::read_to_string(dir.path().join("logs/training_log.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(folklstm::run::CSV_HEADER));
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(String::from).collect()).collect();
    assert_eq!(rows.len(), 2);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 8);
        assert_eq!(r[0], (i + 1).to_string());
        for v in &r[1..] {
            let x: f64 = v.parse().unwrap_or_else(|_| panic!("not a number: {v:?} in {csv}"));
            assert!(x.is_finite() && x >= 0.0);
        }
    }
    // Learning happens: the second epoch's loss is below the first's and below ln(V).
    let l1: f64 = rows[0][1].parse().unwrap();
    let l2: f64 = rows[1][1].parse().unwrap();
    assert!(l2 < l1, "loss did not fall: {l1} -> {l2}");
    // ln(V): the loss of guessing uniformly over the corpus's symbols.
    let vocab: std::collections::HashSet<char> = corpus().chars().collect();
    let uniform = (vocab.len() as f64).ln();
    assert!(l2 < uniform, "epoch 2's loss {l2} is not below ln(V) = {uniform}");
    let sample = |seed: &str| {
        folk(dir.path()).args(["sample", "2", "--len", "200", "--free", "--rng-seed", seed]).output().unwrap()
    };
    let a = sample("7");
    assert!(a.status.success(), "{}", stderr(&a));
    let text = common::tunes_text(&a.stdout);
    let text = text.strip_suffix('\n').unwrap();
    assert_eq!(text.chars().count(), 200, "{text:?}");
    assert!(text.chars().all(|c| vocab.contains(&c)));
    assert_eq!(a.stdout, sample("7").stdout, "same --rng-seed, same text");
    assert_ne!(a.stdout, sample("8").stdout);
    // latest == 2; a seed is printed first; --count makes several tunes.
    let b = folk(dir.path())
        .args([
            "sample",
            "latest",
            "--len",
            "50",
            "--rng-seed",
            "7",
            "--seed",
            "X: 1\n",
            "--count",
            "3",
            "--top-k",
            "5",
            "--free",
        ])
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", stderr(&b));
    let out = common::tunes_text(&b.stdout);
    assert_eq!(out.matches("X: 1\n").count(), 3, "{out}");
    // 3 tunes of 5 + 50 characters, 2 blank-line separators, a final newline.
    assert_eq!(out.chars().count(), 3 * 55 + 2 * 2 + 1);
}

#[test]
fn resume_gives_the_same_weights_as_an_uninterrupted_run() {
    let straight = setup();
    let o = train(straight.path(), &["--epochs", "4", "--rng-seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let split = setup();
    assert!(train(split.path(), &["--epochs", "2", "--rng-seed", "3"]).status.success());
    let o = train(split.path(), &["--epochs", "4", "--rng-seed", "3", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = checkpoint::load(&straight.path().join("model/weights.4.safetensors")).unwrap();
    let b = checkpoint::load(&split.path().join("model/weights.4.safetensors")).unwrap();
    assert_eq!(a.params.data, b.params.data, "weights differ");
    assert_eq!(a.adam, b.adam, "optimizer state differs");
    let csv = std::fs::read_to_string(split.path().join("logs/training_log.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "header + 4 epochs, appended on resume: {csv}");
    // Resuming with another model size is refused.
    let o = train(split.path(), &["--epochs", "5", "--rng-seed", "3", "--resume", "--hidden", "32"]);
    assert_error(&o, "--hidden");
}

/// A regulariser flag of `train` (`--weight-decay`, `--weight-drop`) at `value`: the log names
/// it (`says`), the checkpoint records it (`recorded`), a resumed run without the flag continues
/// it (bit for bit the uninterrupted run), a different value on resume and each of `bad` up front
/// are refused; and the run differs from the same run without it. Returns the two runs' final
/// checkpoints (with, without).
fn a_regulariser_is_recorded_and_continued(
    flag: &str,
    value: &str,
    says: &str,
    recorded: fn(&checkpoint::TrainMeta) -> f32,
    bad: &[&str],
) -> (checkpoint::Checkpoint, checkpoint::Checkpoint) {
    let args = ["--rng-seed", "4", flag, value];
    let straight = setup();
    let o = train(straight.path(), &[&args[..], &["--epochs", "3"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(says), "the log names {flag}");
    let split = setup();
    assert!(train(split.path(), &args).status.success());
    let o = train(split.path(), &["--epochs", "3", "--rng-seed", "4", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = checkpoint::load(&straight.path().join("model/weights.3.safetensors")).unwrap();
    let b = checkpoint::load(&split.path().join("model/weights.3.safetensors")).unwrap();
    assert_eq!(recorded(&a.meta), value.parse::<f32>().unwrap());
    assert_eq!(a.params.data, b.params.data, "the resumed run did not continue {flag}");
    let o = train(split.path(), &["--epochs", "4", "--rng-seed", "4", "--resume", flag, "0.125"]);
    assert_error(&o, &format!("{flag} {value}"));
    let plain = setup();
    assert!(train(plain.path(), &["--rng-seed", "4", "--epochs", "3"]).status.success());
    let c = checkpoint::load(&plain.path().join("model/weights.3.safetensors")).unwrap();
    assert_eq!(recorded(&c.meta), 0.0);
    assert_ne!(a.params.data, c.params.data, "{flag} changed nothing");
    for v in bad {
        let d = setup();
        assert_error(&train(d.path(), &[flag, v]), flag);
    }
    (a, c)
}

/// `--weight-decay` (AdamW): as [`a_regulariser_is_recorded_and_continued`], and it shrinks the
/// weights against the run without it.
#[test]
fn weight_decay_is_recorded_and_a_resumed_run_continues_it() {
    let (a, c) = a_regulariser_is_recorded_and_continued(
        "--weight-decay",
        "0.5",
        "weight decay: 0.5",
        |m| m.weight_decay,
        &["-1", "NaN", "1000"],
    );
    let norm = |p: &[f32]| p.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    assert!(norm(&a.params.data) < norm(&c.params.data), "the decay did not shrink the weights");
}

/// `--weight-drop` (DropConnect on `W_hh`): as [`a_regulariser_is_recorded_and_continued`].
#[test]
fn weight_drop_is_recorded_and_a_resumed_run_continues_it() {
    a_regulariser_is_recorded_and_continued(
        "--weight-drop",
        "0.3",
        "weight drop: 0.3",
        |m| m.weight_drop,
        &["-0.1", "1", "NaN"],
    );
}

/// `--reflow`: the log says what was reflowed, the checkpoint records it, and a resume must name
/// it as the first run did (it decides the training text).
#[test]
fn reflow_is_recorded_and_a_resume_must_repeat_it() {
    let dir = setup();
    let o = train(dir.path(), &["--reflow", "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("reflow: 40 tunes at 4 bars a line"), "{out}");
    let ck = checkpoint::load(&dir.path().join("model/weights.1.safetensors")).unwrap();
    assert!(ck.meta.reflow);
    assert_error(&train(dir.path(), &["--epochs", "2", "--resume"]), "--reflow");
    let o = train(dir.path(), &["--epochs", "2", "--resume", "--reflow"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = setup();
    assert!(train(plain.path(), &["--epochs", "1"]).status.success());
    let p = checkpoint::load(&plain.path().join("model/weights.1.safetensors")).unwrap();
    assert!(!p.meta.reflow);
    assert_eq!(p.meta.corpus_fingerprint, ck.meta.corpus_fingerprint, "the fingerprint is the files'");
    assert_ne!(p.params.data, ck.params.data, "the reflowed text is what trained");
}

/// A flag that rewrites the reflowed text: alone it asks for `--reflow`; with it one epoch trains
/// and the log says `says`; a resume without the flag is refused naming it, and one with it
/// trains epoch 2. Returns the run's folder and its epoch-1 checkpoint.
fn reflow_flag_run(flag: &str, says: &str) -> (tempfile::TempDir, checkpoint::Checkpoint) {
    let dir = setup();
    assert_error(&train(dir.path(), &[flag, "--epochs", "1"]), "add --reflow");
    let o = train(dir.path(), &["--reflow", flag, "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(says), "{out}");
    let ck = checkpoint::load(&dir.path().join("model/weights.1.safetensors")).unwrap();
    assert!(ck.meta.reflow);
    assert_error(&train(dir.path(), &["--epochs", "2", "--resume", "--reflow"]), flag);
    let o = train(dir.path(), &["--epochs", "2", "--resume", "--reflow", flag]);
    assert!(o.status.success(), "{}", stderr(&o));
    (dir, ck)
}

/// `--label-parts` needs `--reflow`, is recorded, must be repeated on resume, and its `Y:`
/// reaches the style the sampler writes headers from.
#[test]
fn labelled_parts_are_recorded_and_a_resume_must_repeat_them() {
    let (dir, ck) = reflow_flag_run("--label-parts", "reflow: 40 tunes at 4 bars a line; parts labelled in");
    assert!(ck.meta.label_parts && !ck.meta.mark_lines);
    let style = std::fs::read_to_string(dir.path().join("model/style.json")).unwrap();
    assert!(style.contains("\"Y:\""), "the labelled corpus's headers give Y:: {style}");
    // `eval --as-trained` scores the text rewritten as the checkpoint's training rewrote it.
    let eval = |dir: &Path, extra: &[&str]| {
        let o =
            folk(dir).args(["eval", "1", "--data", "tunes.abc", "--model-dir", "model"]).args(extra).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        (String::from_utf8_lossy(&o.stdout).into_owned(), stderr(&o))
    };
    let (written, said) = eval(dir.path(), &[]);
    assert!(!said.contains("reflow"), "{said}");
    let (trained, said) = eval(dir.path(), &["--as-trained"]);
    assert!(said.contains("reflow: 40 tunes at 4 bars a line; parts labelled in"), "{said}");
    assert_ne!(written, trained, "the labelled text is another text");
    // A checkpoint trained on the text as written scores the same either way, and says so.
    let plain = setup();
    assert!(train(plain.path(), &["--epochs", "1"]).status.success());
    let (a, _) = eval(plain.path(), &[]);
    let (b, said) = eval(plain.path(), &["--as-trained"]);
    assert_eq!(a, b);
    assert!(said.contains("as written"), "{said}");
}

/// `--line-bars N` reflows to N bars a line: it needs `--reflow`, is recorded in the checkpoint
/// (and only when not the default four), a resume must repeat it, and `eval --as-trained`
/// rewrites the text to the checkpoint's line length.
#[test]
fn line_bars_are_recorded_and_a_resume_must_repeat_them() {
    let dir = setup();
    assert_error(&train(dir.path(), &["--line-bars", "8", "--epochs", "1"]), "add --reflow");
    assert_error(&train(dir.path(), &["--reflow", "--line-bars", "0", "--epochs", "1"]), "1 or more");
    let o = train(dir.path(), &["--reflow", "--line-bars", "8", "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("reflow: 40 tunes at 8 bars a line"), "{out}");
    let ck = checkpoint::load(&dir.path().join("model/weights.1.safetensors")).unwrap();
    assert!(ck.meta.reflow);
    assert_eq!(ck.meta.line_bars, Some(8));
    assert_error(&train(dir.path(), &["--epochs", "2", "--resume", "--reflow"]), "--line-bars 8");
    assert_error(&train(dir.path(), &["--epochs", "2", "--resume", "--reflow", "--line-bars", "4"]), "--line-bars 8");
    let o = train(dir.path(), &["--epochs", "2", "--resume", "--reflow", "--line-bars", "8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = folk(dir.path())
        .args(["eval", "2", "--data", "tunes.abc", "--model-dir", "model", "--as-trained"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("reflow: 40 tunes at 8 bars a line"), "{}", stderr(&o));
    // Four bars a line, said or not, is the default and is not written into the checkpoint.
    let four = setup();
    assert!(train(four.path(), &["--reflow", "--line-bars", "4", "--epochs", "1"]).status.success());
    let ck = checkpoint::load(&four.path().join("model/weights.1.safetensors")).unwrap();
    assert_eq!(ck.meta.line_bars, None);
    assert!(train(four.path(), &["--epochs", "2", "--resume", "--reflow"]).status.success());
}

/// `--mark-lines` needs `--reflow`, says how many tunes it marked, is recorded in the
/// checkpoint, and a resume must repeat it.
#[test]
fn marked_lines_are_recorded_and_a_resume_must_repeat_them() {
    let (_dir, ck) = reflow_flag_run("--mark-lines", "reflow: 40 tunes at 4 bars a line; second lines marked in");
    assert!(ck.meta.mark_lines && !ck.meta.label_parts);
}

/// `--mark-last` needs `--reflow --mark-lines`, says how many tunes it marked, is recorded in the
/// checkpoint, a resume must repeat it, and `eval --as-trained` marks the last parts as the
/// training did.
#[test]
fn marked_last_parts_are_recorded_and_a_resume_must_repeat_them() {
    let dir = setup();
    assert_error(&train(dir.path(), &["--reflow", "--mark-last", "--epochs", "1"]), "add --reflow --mark-lines");
    let o = train(dir.path(), &["--reflow", "--mark-lines", "--mark-last", "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("reflow: 40 tunes at 4 bars a line; second lines and last parts marked in 40"), "{out}");
    let ck = checkpoint::load(&dir.path().join("model/weights.1.safetensors")).unwrap();
    assert!(ck.meta.mark_lines && ck.meta.mark_last);
    assert_error(&train(dir.path(), &["--epochs", "2", "--resume", "--reflow", "--mark-lines"]), "--mark-last");
    let resumed = train(dir.path(), &["--epochs", "2", "--resume", "--reflow", "--mark-lines", "--mark-last"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    // As trained is the corpus marked with the last parts: the same score as that text as written.
    let eval = |data: &str, extra: &[&str]| eval_epoch_2(dir.path(), data, extra);
    let layout = folklstm::train::layout(false, None, true, true, false);
    let marked = folklstm::abc::reflow::reflow_text(&common::corpus(), layout).text;
    assert!(marked.contains("| ") && marked.contains(" |"), "{marked}");
    std::fs::write(dir.path().join("marked.abc"), &marked).unwrap();
    assert_eq!(eval("tunes.abc", &["--as-trained"]), eval("marked.abc", &[]));
    assert_ne!(eval("tunes.abc", &[]), eval("marked.abc", &[]));
}

#[test]
fn restated_keys_are_recorded_and_a_resume_must_repeat_them() {
    let dir = setup();
    // Two-part tunes (a repeated part, then another after a double bar), in a major and a minor key.
    let two_parts: String = (0..24)
        .map(|i| {
            let key = if i % 2 == 0 { "G" } else { "Em" };
            format!("X: {}\nT:Tune {i}\nM:6/8\nK:{key}\n|:GAB c2A|d2e fed:|\n|:gfe d2B|A3 G3:|\n\n", i + 1)
        })
        .collect();
    std::fs::write(dir.path().join("tunes.abc"), &two_parts).unwrap();
    assert_error(&train(dir.path(), &["--restate-key", "--epochs", "1"]), "add --reflow --label-parts");
    let o = train(dir.path(), &["--reflow", "--label-parts", "--restate-key", "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("parts labelled in 24 (had labels: 0); key restated in 24"), "{out}");
    let ck = checkpoint::load(&dir.path().join("model/weights.1.safetensors")).unwrap();
    assert!(ck.meta.label_parts && ck.meta.restate_key);
    assert_error(&train(dir.path(), &["--epochs", "2", "--resume", "--reflow", "--label-parts"]), "--restate-key");
    let resumed = train(dir.path(), &["--epochs", "2", "--resume", "--reflow", "--label-parts", "--restate-key"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    // As trained is the corpus with its keys restated: the same score as that text as written.
    let eval = |data: &str, extra: &[&str]| eval_epoch_2(dir.path(), data, extra);
    let layout = folklstm::train::layout(true, None, false, false, true);
    let restated = folklstm::abc::reflow::reflow_text(&two_parts, layout).text;
    assert!(restated.contains("P:B\nK:Em\n") && restated.contains("P:B\nK:G\n"), "{restated}");
    std::fs::write(dir.path().join("restated.abc"), &restated).unwrap();
    assert_eq!(eval("tunes.abc", &["--as-trained"]), eval("restated.abc", &[]));
    let unrestated =
        folklstm::abc::reflow::reflow_text(&two_parts, folklstm::train::layout(true, None, false, false, false));
    std::fs::write(dir.path().join("labelled.abc"), &unrestated.text).unwrap();
    assert_ne!(eval("labelled.abc", &[]), eval("restated.abc", &[]));
}

/// `train --tonic G`: every tune written on G (its mode kept), recorded, resumed only with it;
/// `sample --key` writes the tune on G and moves it to the key asked.
#[test]
fn a_model_on_one_tonic_is_recorded_and_sample_moves_its_tunes_to_the_key_asked() {
    let dir = setup();
    let tunes: String = (0..24)
        .map(|i| {
            let key = ["D", "A", "Am", "G"][i % 4];
            format!("X: {}\nT:Tune {i}\nM:6/8\nL:1/8\nK:{key}\n|:GAB c2A|d2e fed:|\n|:g2e d2B|A3 G3:|\n\n", i + 1)
        })
        .collect();
    std::fs::write(dir.path().join("tunes.abc"), &tunes).unwrap();
    assert_error(&train(dir.path(), &["--tonic", "Am", "--epochs", "1"]), "--tonic \"Am\" is not a tonic");
    assert_error(
        &train(dir.path(), &["--tonic", "G", "--transpose-keys", "G,D", "--epochs", "1"]),
        "drop --transpose/--transpose-keys or --tonic",
    );
    let o = train(dir.path(), &["--tonic", "G", "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("tonic G: 18 of 24 tunes transposed to it, 6 on it already"), "{out}");
    let ck = checkpoint::load(&dir.path().join("model/weights.1.safetensors")).unwrap();
    assert_eq!(ck.meta.tonic.as_deref(), Some("G"));
    assert_eq!(checkpoint::read_tonic(&dir.path().join("model/weights.1.safetensors")).unwrap().as_deref(), Some("G"));
    assert_error(&train(dir.path(), &["--epochs", "2", "--resume"]), "was trained with --tonic G");
    let resumed = train(dir.path(), &["--epochs", "2", "--resume", "--tonic", "G"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    // As trained is every tune on G.
    let on_g = folklstm::train::retone(&tunes, "G").unwrap().text;
    assert!(on_g.contains("K:Gm\n") && !on_g.contains("K:D\n") && !on_g.contains("K:Am\n"), "{on_g}");
    std::fs::write(dir.path().join("on_g.abc"), &on_g).unwrap();
    assert_eq!(eval_epoch_2(dir.path(), "tunes.abc", &["--as-trained"]), eval_epoch_2(dir.path(), "on_g.abc", &[]));
    assert_ne!(eval_epoch_2(dir.path(), "tunes.abc", &[]), eval_epoch_2(dir.path(), "on_g.abc", &[]));
    // Guided tunes for --key D are written in G and moved down 5 semitones: valid, in D.
    let o = folk(dir.path())
        .args(["sample", "2", "--count", "3", "--len", "600", "--meter", "6/8", "--key", "D", "--rng-seed", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("tunes for --key D are written in G and moved -5 semitones"), "{err}");
    assert!(err.contains("tonic: every tune moved -5 semitones to the --key asked"), "{err}");
    let text = common::tunes_text(&o.stdout);
    let reports = folklstm::abc::check_text(&text);
    assert_eq!(reports.len(), 3, "{text}");
    assert!(reports.iter().all(|r| r.valid), "{text}");
    let keys: Vec<&str> = text.lines().filter(|l| l.starts_with("K:")).collect();
    assert_eq!(keys, ["K:D", "K:D", "K:D"], "{text}");
    // No key asked: each tune moves to a key of its mode drawn from the corpus's (style.json:
    // D, A and G major, A minor), its music moved with it.
    let o = folk(dir.path())
        .args(["sample", "2", "--count", "12", "--len", "600", "--meter", "6/8", "--rng-seed", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("each is moved to a key of its mode drawn from the corpus's keys"), "{}", stderr(&o));
    let text = common::tunes_text(&o.stdout);
    let judged = folklstm::abc::judge::read_tunes(&text);
    assert_eq!(judged.len(), 12, "{text}");
    // (A model this small writes other keys too, some of other modes: those stay as written.)
    let names: std::collections::BTreeSet<String> = judged
        .iter()
        .filter_map(|f| f.key.clone().filter(|k| k.mode == "major" || k.mode == "minor"))
        .map(|k| k.name)
        .collect();
    assert!(names.iter().all(|k| ["D", "A", "G", "Am"].contains(&k.as_str())), "{names:?}\n{text}");
    assert!(names.len() >= 2, "twelve tunes all in {names:?}");
}

/// `eval 2 --data DATA --model-dir model EXTRA` in `dir`: the scores (nats, bits, accuracy) of
/// its last line.
fn eval_epoch_2(dir: &Path, data: &str, extra: &[&str]) -> String {
    let o = folk(dir).args(["eval", "2", "--data", data, "--model-dir", "model"]).args(extra).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    out.lines().last().unwrap().split_whitespace().skip(1).take(3).collect::<Vec<_>>().join(" ")
}

/// The CSV rows without the two timing columns (seconds, chars/s), which differ run to run.
fn csv_numbers(dir: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(dir.join("logs/training_log.csv")).unwrap();
    csv.lines().map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",")).collect()
}

/// Windows per epoch, from the line `training ... (N chars, V symbols, W windows of ...)`.
fn windows_per_epoch(stdout: &[u8]) -> usize {
    let out = String::from_utf8_lossy(stdout);
    let line = out.lines().find(|l| l.starts_with("training ")).expect("the training line");
    let before = line.split(" windows of ").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().expect("windows per epoch")
}

/// A deterministic stop in the middle of epoch 2 (`--stop-after`, the same path as Ctrl-C):
/// the save is a mid-epoch one holding the carried (h, c) and the partial sums, and resuming
/// from it gives the uninterrupted run's weights, optimizer state and CSV rows, bit for bit.
#[test]
fn a_stop_mid_epoch_saves_there_and_resume_matches_an_uninterrupted_run() {
    let args = ["--epochs", "3", "--rng-seed", "5", "--val-fraction", "0.2"];
    let straight = setup();
    let o = train(straight.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let per_epoch = windows_per_epoch(&o.stdout);
    assert!(per_epoch >= 2, "the corpus must give at least 2 windows per epoch, has {per_epoch}");
    // All of epoch 1 and about half of epoch 2.
    let w = per_epoch / 2;
    let stop = (per_epoch + w).to_string();
    let dir = setup();
    let o = train(dir.path(), &[&args[..], &["--stop-after", &stop]].concat());
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let id = format!("1+{w}");
    assert!(err.contains(&format!("stopped after {stop} steps")) && err.contains(&format!("--resume {id}")), "{err}");
    let mid = checkpoint::load(&dir.path().join(format!("model/weights.{id}.safetensors"))).unwrap();
    assert_eq!((mid.meta.epoch, mid.meta.window), (1, w as u32));
    assert!(mid.meta.window > 0 && mid.state.is_some() && mid.meta.partial.is_some(), "not a mid-epoch save");
    // Nothing of epoch 2 is logged before it is complete.
    assert_eq!(csv_numbers(dir.path()), csv_numbers(straight.path())[..2]);
    let o = train(dir.path(), &[&args[..], &["--resume"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let a = checkpoint::load(&straight.path().join("model/weights.3.safetensors")).unwrap();
    let b = checkpoint::load(&dir.path().join("model/weights.3.safetensors")).unwrap();
    assert_eq!(a.params.data, b.params.data, "weights differ after the stop and resume");
    assert_eq!(a.adam, b.adam, "optimizer state differs after the stop and resume");
    // Epoch 2's row (loss, accuracy, validation) is the same sum as the uninterrupted run's.
    assert_eq!(csv_numbers(dir.path()), csv_numbers(straight.path()));
}

/// A real SIGINT: the run saves where it is, exits with 130 and says how to resume. The run
/// asks for far more epochs than it can finish before the signal, so the signal always lands.
#[test]
fn ctrl_c_saves_and_says_how_to_resume() {
    let dir = setup();
    let child = folk(dir.path())
        .args(["train", "--data", "tunes.abc", "--freq", "1", "--epochs", "100000", "--rng-seed", "5"])
        .args(SMALL)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = dir.path().join("model/weights.1.safetensors");
    let t0 = std::time::Instant::now();
    while !first.exists() && t0.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(first.exists(), "no checkpoint after 120 s");
    let killed = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.starts_with("interrupted: saved "), "{err}");
    let saved = err.lines().next().unwrap().trim_start_matches("interrupted: saved ");
    let ck = checkpoint::load(&dir.path().join(saved)).unwrap();
    let id = folklstm::run::CheckpointId { epoch: ck.meta.epoch, window: ck.meta.window };
    assert!(err.contains(&format!("resume with: folklstm train --resume {id} ")), "{err}");
    assert_eq!(ck.state.is_some(), ck.meta.window > 0, "a mid-epoch save carries (h, c); an epoch-end one does not");
}

#[test]
fn corpus_errors_are_clear() {
    let dir = setup();
    let o = folk(dir.path()).args(["train", "--epochs", "1"]).output().unwrap();
    assert_error(&o, "Nottingham");
    assert!(stderr(&o).contains("data/input.txt") && stderr(&o).contains("data/README.md"));
    std::fs::write(dir.path().join("empty.abc"), "").unwrap();
    assert_error(&folk(dir.path()).args(["train", "--data", "empty.abc"]).output().unwrap(), "empty");
    std::fs::write(dir.path().join("bin.abc"), [0x58u8, 0x3a, 0xff, 0xfe, 0x00]).unwrap();
    assert_error(&folk(dir.path()).args(["train", "--data", "bin.abc"]).output().unwrap(), "not UTF-8");
    std::fs::write(dir.path().join("short.abc"), "X:1\nabc\n").unwrap();
    let o = folk(dir.path()).args(["train", "--data", "short.abc"]).output().unwrap();
    assert_error(&o, "short.abc");
    assert!(stderr(&o).contains("1040"), "{}", stderr(&o));
    std::fs::create_dir(dir.path().join("nothing")).unwrap();
    assert_error(&folk(dir.path()).args(["train", "--data", "nothing"]).output().unwrap(), "no .abc files");
}

#[test]
fn sample_errors_are_clear() {
    let dir = setup();
    assert_error(&folk(dir.path()).args(["sample", "100"]).output().unwrap(), "no checkpoints");
    assert!(train(dir.path(), &["--epochs", "1"]).status.success());
    assert_error(&folk(dir.path()).args(["sample", "100"]).output().unwrap(), "epochs available: 1");
    assert_error(&folk(dir.path()).args(["sample", "1", "--seed", "X:1\n€µ"]).output().unwrap(), "'€', 'µ'");
    assert_error(&folk(dir.path()).args(["sample", "1", "--temperature", "0"]).output().unwrap(), "--temperature");
    assert_error(&folk(dir.path()).args(["sample", "1", "--temperature", "-1"]).output().unwrap(), "--temperature");
    assert_error(&folk(dir.path()).args(["sample", "1", "--len", "0"]).output().unwrap(), "--len 0");
    assert_error(&folk(dir.path()).args(["sample", "1", "--top-k", "0"]).output().unwrap(), "--top-k 0");
    // A truncated and a corrupted checkpoint.
    let path = dir.path().join("model/weights.1.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_error(&folk(dir.path()).args(["sample", "1"]).output().unwrap(), "truncated or corrupt");
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 10] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    assert_error(&folk(dir.path()).args(["sample", "1"]).output().unwrap(), "checksum");
}

#[test]
fn checkpoint_round_trip_is_exact() {
    use folklstm::checkpoint::{Checkpoint, TrainMeta};
    use folklstm::corpus::Vocab;
    use folklstm::model::{BatchConfig, ModelConfig, init_params};
    use folklstm::optim::AdamState;
    let cfg = ModelConfig { vocab: 5, embed: 3, hidden: 4, layers: 2, dropout: 0.1 };
    let params = init_params(&cfg, 9);
    let n = params.data.len();
    let mut adam = AdamState::new(n);
    adam.step = 17;
    adam.m.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32 * 0.5);
    adam.v.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32 * 0.25);
    let batch = BatchConfig { batch: 2, seq: 3 };
    let ck = Checkpoint {
        params,
        vocab: Vocab::from_text("abcde"),
        adam: Some(adam),
        state: Some((vec![0.5; 16], vec![-0.5; 16])),
        meta: TrainMeta {
            epoch: 3,
            window: 2,
            step: 99,
            rng_seed: 4,
            batch,
            lr: 1e-3,
            clip: Some(1.0),
            val_fraction: 0.1,
            corpus_fingerprint: "0123456789abcdef".into(),
            corpus: "x.abc".into(),
            partial: Some(Default::default()),
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
        },
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.3+2.safetensors");
    checkpoint::save(&path, &ck).unwrap();
    assert_eq!(checkpoint::load(&path).unwrap(), ck);
    assert_eq!(folklstm::run::resolve(dir.path(), "latest").unwrap(), path);
    assert_eq!(folklstm::run::resolve(dir.path(), "3+2").unwrap(), path);
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn eval_plot_check_and_midi_commands() {
    let dir = setup();
    assert!(train(dir.path(), &[]).status.success());
    // eval: a text with characters the model never saw; they are counted, not crashed on.
    std::fs::write(dir.path().join("other.abc"), format!("{}€€\n", corpus())).unwrap();
    let o = folk(dir.path()).args(["eval", "2", "--data", "tunes.abc", "other.abc"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    let rows: Vec<Vec<&str>> = out.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "{out}");
    let nats: f64 = rows[0][1].parse().unwrap();
    let bits: f64 = rows[0][2].parse().unwrap();
    assert!(nats > 0.0 && (bits - nats / std::f64::consts::LN_2).abs() < 1e-3, "{out}");
    assert_eq!(rows[1][5], "2", "two unknown characters: {out}");
    assert!(stderr(&o).contains("outside the model's vocabulary"));
    // plot: an SVG with both panels.
    let o = folk(dir.path()).args(["plot"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(dir.path().join("logs/training_log.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("accuracy") && svg.contains("loss"));
    // check: exit 0 for valid tunes, 1 with a summary line for invalid ones.
    std::fs::write(dir.path().join("good.abc"), "X:1\nT:t\nM:2/4\nL:1/8\nK:G\nGABc|dedB|G4|]\n").unwrap();
    let o = folk(dir.path()).args(["check", "good.abc"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    std::fs::write(dir.path().join("bad.abc"), "X:1\nT:t\nM:2/4\nL:1/8\nK:G\nGABc|ded|G4|]\n").unwrap();
    let o = folk(dir.path()).args(["check", "bad.abc"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 tunes, 0 valid (0.0%)"));
    // midi, and sample --midi with its checker report.
    let o = folk(dir.path()).args(["midi", "good.abc", "-o", "good.mid"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&std::fs::read(dir.path().join("good.mid")).unwrap()[..4], b"MThd");
    let o = folk(dir.path())
        .args([
            "sample",
            "2",
            "--rng-seed",
            "1",
            "--count",
            "2",
            "--seed",
            "X: 1\nT:Tune 1\nM:6/8\nK:G\n",
            "--len",
            "30",
            "--midi",
            "s.mid",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("checker: 2 tunes,"), "{}", stderr(&o));
}

#[test]
fn export_writes_a_weights_only_checkpoint_that_samples_but_does_not_resume() {
    let dir = setup();
    assert!(train(dir.path(), &[]).status.success());
    let o = folk(dir.path()).args(["export", "2", "-o", "small/weights.2.safetensors"]).output().unwrap();
    assert!(!o.status.success(), "a missing output folder is an error, not a panic");
    std::fs::create_dir(dir.path().join("small")).unwrap();
    let o = folk(dir.path()).args(["export", "2", "-o", "small/weights.2.safetensors"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let full = checkpoint::load(&dir.path().join("model/weights.2.safetensors")).unwrap();
    let small = checkpoint::load(&dir.path().join("small/weights.2.safetensors")).unwrap();
    assert_eq!(full.params, small.params);
    assert!(small.adam.is_none());
    let sample =
        |d: &str| folk(dir.path()).args(["sample", "2", "--model-dir", d, "--rng-seed", "4"]).output().unwrap().stdout;
    assert_eq!(sample("model"), sample("small"), "same weights, same tune");
    let o = folk(dir.path())
        .args(["train", "--data", "tunes.abc", "--model-dir", "small", "--resume", "--epochs", "3"])
        .args(SMALL)
        .output()
        .unwrap();
    assert_error(&o, "weights only");
}

/// `bench --grid` with shape flags measures that one shape and says which instruction set ran.
#[test]
fn bench_grid_measures_the_shape_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let o = folk(dir.path())
        .args(["bench", "--grid", "--steps", "1", "--batch", "3", "--seq", "5", "--embed", "6", "--hidden", "7"])
        .args(["--layers", "2", "--threads", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let isa = folklstm::cpu::simd::isa().name();
    assert!(out.lines().next() == Some(&format!("instruction set: {isa}")[..]), "{out}");
    let row = out.lines().find(|l| l.starts_with("B3 T5 E6 H7 L2 ")).unwrap_or_else(|| panic!("{out}"));
    // shape (5 fields), engine "cpu (1 threads, ISA)" (4), then ms/step, chars/s, GFLOP/s, % peak.
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(f[5..9].join(" "), format!("cpu (1 threads, {isa})"), "{row}");
    let (ms, chars): (f64, f64) = (f[9].parse().unwrap(), f[10].parse().unwrap());
    // chars/s = 15 characters a step / the step's time; the time is printed to 0.01 ms, so the
    // true time lies within 0.005 ms of the printed one (chars/s to the unit: negligible).
    assert!(ms >= 0.0 && chars > 0.0, "{row}");
    let (lo, hi) = ((ms - 0.005).max(0.0) / 1e3, (ms + 0.005) / 1e3);
    assert!(chars * lo <= 15.5 && chars * hi >= 14.5, "{row}");
    assert_eq!(out.lines().filter(|l| l.starts_with('B')).count(), 1, "one shape: {out}");
}
