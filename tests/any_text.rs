//! `train`, `sample` and `eval` on text that is not ABC (verse with non-ASCII characters), as
//! char-rnn users expect: validation by paragraph, no checker line, and ABC-only flags refused
//! with the reason.

mod common;
use common::hardening::{assert_error, stderr};
use common::{SMALL, folk};
use std::path::Path;

/// About 6,000 characters of verse in stanzas of four lines, with accents and a dash.
fn poem() -> String {
    let words = ["the", "sea", "is", "calm", "tonight", "où", "la", "mer", "große", "Welle", "—", "light"];
    let mut s = String::new();
    for stanza in 0..60 {
        for line in 0..4 {
            let w: Vec<&str> = (0..5).map(|k| words[(stanza * 7 + line * 3 + k * k) % words.len()]).collect();
            s.push_str(&w.join(" "));
            s.push_str(",\n");
        }
        s.push('\n');
    }
    s
}

fn train(dir: &Path) -> std::process::Output {
    folk(dir)
        .args(["train", "--data", "poem.txt", "--epochs", "2", "--freq", "1", "--val-fraction", "0.3"])
        .args(SMALL)
        .output()
        .unwrap()
}

#[test]
fn a_poem_trains_samples_and_evaluates_without_abc_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = poem();
    std::fs::write(d.join("poem.txt"), &text).unwrap();
    let o = train(d);
    assert!(o.status.success(), "{}", stderr(&o));
    // Stanzas were held out for validation: every row has a validation loss.
    let csv = std::fs::read_to_string(d.join("logs/training_log.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    for r in &rows {
        let val_loss: f64 = r.split(',').nth(3).unwrap().parse().unwrap_or_else(|_| panic!("no val_loss: {csv}"));
        assert!(val_loss.is_finite() && val_loss > 0.0, "{csv}");
    }
    // Sampling writes the poem's characters and no checker line.
    let o = folk(d).args(["sample", "2", "--len", "300", "--rng-seed", "5", "--seed", "la mer"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(out.starts_with("la mer") && out.chars().count() == 6 + 300 + 1, "{out:?}");
    assert!(out.chars().all(|c| text.contains(c)), "{out:?}");
    assert!(!stderr(&o).contains("checker"), "{}", stderr(&o));
    // ABC-only flags say why they cannot apply.
    for flag in [&["--one-tune"][..], &["--midi", "poem.mid"]] {
        let o = folk(d).args(["sample", "2", "--rng-seed", "5"]).args(flag).output().unwrap();
        assert_error(&o, &[flag[0], "works on ABC tunes", "not trained on ABC", "'X'", "--len"]);
        assert!(!d.join("poem.mid").exists());
    }
    // eval scores it like any corpus.
    let o = folk(d).args(["eval", "2", "--data", "poem.txt"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let row = String::from_utf8(o.stdout).unwrap();
    let fields: Vec<&str> = row.lines().nth(1).unwrap().split_whitespace().collect();
    let nats: f64 = fields[1].parse().unwrap();
    assert!(nats > 0.0 && nats < (text.chars().collect::<std::collections::HashSet<_>>().len() as f64).ln(), "{row}");
}

#[test]
fn a_text_of_one_line_trains_and_says_it_held_nothing_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("poem.txt"), poem().replace('\n', " ")).unwrap();
    let o = train(d);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("--val-fraction 0.3 held nothing out"), "{out}");
}
