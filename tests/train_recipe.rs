//! What a recipe search trains with: `--keep-best` (the checkpoint of the lowest validation
//! loss, resolved as `best`), learning-rate schedules that a resume continues, a corpus of
//! several files, and transposed copies of the training tunes. Tiny models on the tests' own
//! corpus; each run takes well under a second or two.

mod common;
use common::folk;
use common::hardening::{all_output, assert_error, setup, stderr, train};
use folklstm::checkpoint;
use folklstm::optim::{LrSchedule, LrShape};
use std::path::Path;

/// The CSV log's rows, as columns.
fn csv_rows(dir: &Path) -> Vec<Vec<String>> {
    let csv = std::fs::read_to_string(dir.join("logs/training_log.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(folklstm::run::CSV_HEADER));
    lines.map(|l| l.split(',').map(String::from).collect()).collect()
}

/// (epoch, val_loss) of the row with the lowest validation loss.
fn lowest_val(rows: &[Vec<String>]) -> (u32, f64) {
    rows.iter()
        .map(|r| (r[0].parse().unwrap(), r[3].parse::<f64>().unwrap()))
        .fold((0, f64::INFINITY), |best, x| if x.1 < best.1 { x } else { best })
}

#[test]
fn keep_best_writes_the_lowest_validation_checkpoint_and_sample_eval_resolve_best() {
    let dir = setup();
    let o = train(dir.path(), &["--epochs", "3", "--val-fraction", "0.3", "--keep-best", "--lr", "0.01"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let best_path = dir.path().join("model").join(folklstm::run::BEST_FILE);
    let best = checkpoint::load(&best_path).unwrap();
    let (epoch, val) = lowest_val(&csv_rows(dir.path()));
    let record = best.meta.best.expect("the best file records itself");
    assert_eq!((record.epoch, best.meta.epoch), (epoch, epoch));
    // The CSV rounds to 6 decimals.
    assert!((record.val_loss - val).abs() < 1e-6, "{record:?} vs {val}");
    // Its weights are that epoch's.
    let same = checkpoint::load(&dir.path().join(format!("model/weights.{epoch}.safetensors"))).unwrap();
    assert_eq!(best.params.data, same.params.data);
    // `latest` is still the newest epoch, `best` the file; sample and eval find it.
    assert_eq!(folklstm::run::resolve(&dir.path().join("model"), "best").unwrap(), best_path);
    assert!(folklstm::run::resolve(&dir.path().join("model"), "latest").unwrap().ends_with("weights.3.safetensors"));
    let s = folk(dir.path()).args(["sample", "best", "--len", "20", "--rng-seed", "1"]).output().unwrap();
    assert!(s.status.success(), "{}", stderr(&s));
    let e = folk(dir.path()).args(["eval", "best", "--data", "tunes.abc", "--streams", "4"]).output().unwrap();
    assert!(e.status.success(), "{}", stderr(&e));
    // A folder without one says how it comes to be.
    let none = setup();
    let o = folk(none.path()).args(["sample", "best"]).output().unwrap();
    assert_error(&o, &["weights.best.safetensors", "--keep-best"]);
    // A new run into a folder holding a best file of an earlier run is refused.
    std::fs::copy(&best_path, none.path().join("model.best")).unwrap();
    std::fs::create_dir(none.path().join("model")).unwrap();
    std::fs::rename(none.path().join("model.best"), none.path().join("model").join(folklstm::run::BEST_FILE)).unwrap();
    assert_error(
        &train(none.path(), &["--epochs", "1", "--val-fraction", "0.3"]),
        &["weights.best.safetensors", "--resume"],
    );
}

#[test]
fn keep_best_needs_validation_text() {
    let dir = setup();
    assert_error(&train(dir.path(), &["--epochs", "1", "--keep-best"]), &["--keep-best", "--val-fraction"]);
    // A single tune holds nothing out.
    std::fs::write(dir.path().join("one.abc"), common::corpus().split("\n\n\n").next().unwrap()).unwrap();
    let o = folk(dir.path())
        .args(["train", "--data", "one.abc", "--epochs", "1", "--val-fraction", "0.5", "--keep-best"])
        .args(["--batch", "1", "--seq", "8", "--embed", "4", "--hidden", "4", "--layers", "1"])
        .output()
        .unwrap();
    assert_error(&o, &["--keep-best", "held nothing out"]);
}

#[test]
fn a_resume_keeps_the_best_record_and_never_replaces_a_better_best() {
    let dir = setup();
    let flags = ["--val-fraction", "0.3", "--keep-best", "--lr", "0.01"];
    assert!(train(dir.path(), &[&["--epochs", "2"][..], &flags].concat()).status.success());
    let o = train(dir.path(), &[&["--epochs", "4", "--resume"][..], &flags].concat());
    assert!(o.status.success(), "{}", all_output(&o));
    let four = checkpoint::load(&dir.path().join("model/weights.4.safetensors")).unwrap();
    let (epoch, _) = lowest_val(&csv_rows(dir.path()));
    assert_eq!(four.meta.best.unwrap().epoch, epoch, "the record runs through the resume");
    // A best file better than anything this run reaches (as one left by a run resumed from an
    // earlier epoch can be) stays as it is.
    let best_path = dir.path().join("model").join(folklstm::run::BEST_FILE);
    let mut best = checkpoint::load(&best_path).unwrap();
    best.meta.best = Some(checkpoint::BestRecord { epoch: 4, val_loss: 1e-3 });
    checkpoint::save(&best_path, &best).unwrap();
    let before = std::fs::read(&best_path).unwrap();
    let o = train(dir.path(), &[&["--epochs", "6", "--resume", "2"][..], &flags].concat());
    assert!(o.status.success(), "{}", all_output(&o));
    assert!(all_output(&o).contains("best so far: epoch 4"), "{}", all_output(&o));
    assert_eq!(std::fs::read(&best_path).unwrap(), before, "a worse epoch replaced the best");
    let six = checkpoint::load(&dir.path().join("model/weights.6.safetensors")).unwrap();
    assert_eq!(six.meta.best.unwrap().val_loss, 1e-3);
}

#[test]
fn a_schedule_is_logged_recorded_and_continued_exactly_by_a_resume() {
    let sched = ["--lr", "0.01", "--lr-schedule", "cosine", "--lr-min", "0.001", "--warmup", "5"];
    let straight = setup();
    let o = train(straight.path(), &[&["--epochs", "4"][..], &sched].concat());
    assert!(o.status.success(), "{}", all_output(&o));
    let a = checkpoint::load(&straight.path().join("model/weights.4.safetensors")).unwrap();
    let steps = a.meta.step / 4;
    // The same run stopped after two epochs (as Ctrl-C would), then resumed naming no schedule:
    // the checkpoint's goes on, over its 4 epochs.
    let split = setup();
    let half = (2 * steps).to_string();
    let o = train(split.path(), &[&["--epochs", "4", "--stop-after", &half][..], &sched].concat());
    assert!(o.status.success(), "{}", all_output(&o));
    let o = train(split.path(), &["--epochs", "4", "--resume"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let b = checkpoint::load(&split.path().join("model/weights.4.safetensors")).unwrap();
    assert!(a.params.data == b.params.data && a.adam == b.adam, "a resume changed the curve");
    let want = LrSchedule { shape: LrShape::Cosine, lr: 0.01, lr_min: 0.001, warmup: 5, epochs: 4 };
    assert_eq!(a.meta.schedule, Some(want));
    // The log's lr column: the rate of each epoch's last step, by the schedule itself.
    // Every column but the two timings (seconds, chars/s) is the same.
    let numbers =
        |d: &Path| -> Vec<Vec<String>> { csv_rows(d).into_iter().map(|r| [&r[..5], &r[7..]].concat()).collect() };
    assert_eq!(numbers(straight.path()), numbers(split.path()));
    let rows = csv_rows(straight.path());
    for r in &rows {
        let e: u64 = r[0].parse().unwrap();
        let lr: f32 = r[7].parse().unwrap();
        assert_eq!(lr, want.lr_at(e * steps - 1, steps), "epoch {e}");
    }
    // The last step is one short of the curve's end, so its rate is a hair above --lr-min.
    let last: f32 = rows[3][7].parse().unwrap();
    assert!(last > 0.001 && last < 0.001 + 1e-6, "the cosine ends at --lr-min: {last}");
    assert!(all_output(&o).contains("learning rate: cosine from 0.01 to 0.001 over 4 epochs, 5 warm-up steps"));
    // Another schedule on resume is refused, saying what to do.
    let o = train(split.path(), &["--epochs", "5", "--resume", "--lr-schedule", "step"]);
    assert_error(&o, &["resume without the --lr-schedule"]);
    let o = train(setup().path(), &["--epochs", "1", "--lr-schedule", "cosine", "--lr-min", "1"]);
    assert_error(&o, &["--lr-min 1"]);
}

#[test]
fn several_files_and_folders_train_as_one_corpus_split_by_whole_tunes() {
    let dir = setup();
    let text = common::corpus();
    let tunes: Vec<&str> = text.split_inclusive("\n\n\n").collect();
    std::fs::create_dir(dir.path().join("parts")).unwrap();
    std::fs::write(dir.path().join("parts/a.abc"), tunes[..25].concat()).unwrap();
    // The second file starts with a header comment and has no blank line at its end.
    let b = format!("% second file\n{}", tunes[25..].concat().trim_end());
    std::fs::write(dir.path().join("parts/b.abc"), &b).unwrap();
    let files = ["parts/a.abc", "parts/b.abc"];
    let o = folk(dir.path())
        .args(["train", "--corpus"])
        .args(files)
        .args(["--epochs", "1", "--val-fraction", "0.25"])
        .args(common::SMALL)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", all_output(&o));
    assert!(all_output(&o).contains("corpus: 2 files, 40 tunes"), "{}", all_output(&o));
    // The folder gives the same text: the same corpus, so it resumes that run.
    let o = folk(dir.path())
        .args(["train", "--data", "parts", "--epochs", "2", "--val-fraction", "0.25", "--resume"])
        .args(common::SMALL)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", all_output(&o));
    // The split: whole tunes from both files, every tune once.
    let paths: Vec<_> = files.iter().map(|f| dir.path().join(f)).collect();
    let (all, read) = folklstm::corpus::load_texts(&paths).unwrap();
    assert_eq!(read.len(), 2);
    let (train_text, val) = folklstm::corpus::split_train_val(&all, 0.25, 0);
    let count = |t: &str| folklstm::abc::check_text(t).len();
    assert_eq!((count(&all), count(&train_text) + count(&val)), (40, 40));
    assert!(count(&val) > 0 && folklstm::abc::check_text(&val).iter().all(|r| r.valid), "whole tunes: {val}");
    // A file named twice would count twice.
    let o = folk(dir.path()).args(["train", "--data", "parts", "parts/b.abc"]).args(common::SMALL).output().unwrap();
    assert_error(&o, &["named twice"]);
}

#[test]
fn transposed_copies_come_from_training_tunes_only() {
    let dir = setup();
    let o = train(dir.path(), &["--epochs", "1", "--val-fraction", "0.25", "--transpose", "-1..1"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let out = all_output(&o);
    let line = out.lines().find(|l| l.starts_with("transposed copies:")).expect(&out);
    // "transposed copies: W of T tunes x 2 shift(s) [-1, 1] ...": T is the training tunes.
    let nums: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let (written, tunes) = (nums[0], nums[1]);
    let (_, val) = folklstm::corpus::split_train_val(&common::corpus(), 0.25, 0);
    let held_out = folklstm::abc::check_text(&val).len();
    assert!(held_out > 0);
    assert_eq!(tunes, 40 - held_out, "{line}");
    assert_eq!(written, 2 * tunes, "{line}");
    // The run records the range; resuming without it is refused, as it changes the text.
    let ck = checkpoint::load(&dir.path().join("model/weights.1.safetensors")).unwrap();
    assert_eq!(ck.meta.transpose, Some((-1, 1)));
    assert_error(&train(dir.path(), &["--epochs", "2", "--val-fraction", "0.25", "--resume"]), &["--transpose -1..1"]);
    assert_error(&train(dir.path(), &["--epochs", "1", "--transpose", "3..1"]), &["--transpose 3..1"]);
    assert_error(&train(dir.path(), &["--epochs", "1", "--transpose", "up"]), &["LOW..HIGH"]);
}

#[test]
fn copies_in_listed_keys_come_from_training_tunes_and_a_resume_keeps_the_list() {
    let dir = setup();
    let o = train(dir.path(), &["--epochs", "1", "--val-fraction", "0.25", "--transpose-keys", "G,D,Em"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let out = all_output(&o);
    let line = out.lines().find(|l| l.starts_with("transposed copies:")).expect(&out);
    // Every tune of the tests' corpus is in G: one copy in D each (5 semitones down), none in
    // G again, none in E minor (another mode).
    let nums: Vec<usize> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let (_, val) = folklstm::corpus::split_train_val(&common::corpus(), 0.25, 0);
    let tunes = 40 - folklstm::abc::check_text(&val).len();
    assert_eq!((nums[0], nums[1]), (tunes, tunes), "{line}");
    assert!(line.contains("in the keys G,D,Em") && line.contains("shifts [-5]"), "{line}");
    let ck = checkpoint::load(&dir.path().join("model/weights.1.safetensors")).unwrap();
    assert_eq!(ck.meta.transpose_keys, ["G", "D", "Em"]);
    assert_error(
        &train(dir.path(), &["--epochs", "2", "--val-fraction", "0.25", "--resume"]),
        &["--transpose-keys G,D,Em"],
    );
    let o = train(dir.path(), &["--epochs", "2", "--val-fraction", "0.25", "--resume", "--transpose-keys", "G,D,Em"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let fresh = setup();
    assert_error(&train(fresh.path(), &["--epochs", "1", "--transpose-keys", "G,H"]), &["\"H\" is not a key"]);
    assert_error(
        &train(fresh.path(), &["--epochs", "1", "--transpose-keys", "D", "--transpose", "-1..1"]),
        &["pass one of them"],
    );
}

#[test]
fn the_shared_files_read_as_one_corpus_hold_out_whole_tunes_from_each() {
    let Some(data) = common::shared_dir("data") else { return };
    let (folder, files) = folklstm::corpus::load_text(&data).unwrap();
    assert_eq!(files.len(), 5);
    // The five files named one by one give the folder's text.
    let (listed, _) = folklstm::corpus::load_texts(&files).unwrap();
    assert_eq!(listed, folder);
    let count = |t: &str| folklstm::abc::parse::tune_starts(t).len();
    assert_eq!(count(&folder), 534);
    let (train_text, val) = folklstm::corpus::split_train_val(&folder, 0.1, 0);
    assert_eq!(count(&train_text) + count(&val), 534);
    // Held-out tunes come from every file (each file's tunes keep their file's titles).
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let titles: Vec<&str> = text.lines().filter(|l| l.starts_with("T:")).collect();
        let held = val.lines().filter(|l| titles.contains(l)).count();
        assert!(held > 0, "no validation tune from {}", f.display());
    }
    // The transposed copies of the training tunes: all but the unreadable one, each shift.
    let copies = folklstm::abc::transpose::augment(&train_text, -2, 2);
    let tunes = count(&train_text);
    assert_eq!(copies.tunes, tunes);
    assert!(copies.written + 4 >= 4 * tunes, "{}", copies.describe());
    common::note("transpose", &copies.describe());
}

#[test]
fn an_f16_export_is_half_the_weights_and_evaluates_within_a_hair_of_f32() {
    let dir = setup();
    let o = train(dir.path(), &["--epochs", "3", "--lr", "0.01"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let export = |extra: &[&str]| {
        folk(dir.path()).args(["export", "latest", "--model-dir", "model"]).args(extra).output().unwrap()
    };
    assert!(export(&["-o", "w32.safetensors"]).status.success());
    let o = export(&["-o", "w16.safetensors", "--f16"]);
    assert!(o.status.success(), "{}", all_output(&o));
    assert_error(&export(&["-o", "t.safetensors", "--f16", "--format", "torch"]), &["--f16"]);
    let (p32, p16) = (dir.path().join("w32.safetensors"), dir.path().join("w16.safetensors"));
    let a = checkpoint::load(&p32).unwrap();
    let b = checkpoint::load(&p16).unwrap();
    // Two bytes fewer per weight; the header differs only in a few offset digits.
    let n = a.params.data.len() as i64;
    let saved = std::fs::metadata(&p32).unwrap().len() as i64 - std::fs::metadata(&p16).unwrap().len() as i64;
    assert!((saved - 2 * n).abs() < 200, "{saved} bytes saved for {n} weights");
    // Each weight rounded to f16: within 2^-11 relative (half a unit in the last of 11
    // significant bits), or 2^-25 absolute for the subnormals below 2^-14.
    for (x, y) in a.params.data.iter().zip(&b.params.data) {
        assert!((x - y).abs() <= (x.abs() * 2f32.powi(-11)).max(2f32.powi(-25)), "{x} -> {y}");
    }
    let text = common::corpus();
    let l32 = folklstm::Model::load(&p32).unwrap().evaluate(&text).unwrap().nats;
    let l16 = folklstm::Model::load(&p16).unwrap().evaluate(&text).unwrap().nats;
    eprintln!("loss f32 {l32:.6}, f16 {l16:.6}, difference {:.2e} nats/char", (l32 - l16).abs());
    // Tolerance: every weight moves by at most 2^-11 ≈ 4.9e-4 of itself, so each pre-activation
    // moves by at most that fraction of the sum of its terms' sizes (of order 1 here), and the
    // cross-entropy by at most about twice the largest logit shift: a bound of a few 1e-3; the
    // roundings have random signs and mostly cancel (about 1e-5 is seen). 2e-3 nats/char is the
    // bound with room, and far below what training changes (an epoch moves the loss by > 0.1).
    assert!((l32 - l16).abs() < 2e-3, "f32 {l32} vs f16 {l16}");
    // The f16 file is a checkpoint like any other: sample and eval read it.
    std::fs::create_dir(dir.path().join("half")).unwrap();
    std::fs::rename(&p16, dir.path().join("half/weights.3.safetensors")).unwrap();
    let s = folk(dir.path()).args(["sample", "3", "--model-dir", "half", "--len", "20"]).output().unwrap();
    assert!(s.status.success(), "{}", stderr(&s));
    let e = folk(dir.path()).args(["eval", "3", "--model-dir", "half", "--data", "tunes.abc"]).output().unwrap();
    assert!(e.status.success(), "{}", stderr(&e));
}
