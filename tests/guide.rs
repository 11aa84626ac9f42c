//! The guided-sampling automaton against the checker: every prefix of every valid tune of the
//! corpus is accepted; the first character it refuses in an invalid tune is at or before the
//! checker's first finding; any walk of allowed characters ends in a valid tune.

mod common;

use common::{Need, shared_dir, skip};
use folklstm::abc::guide::Guide;
use folklstm::abc::{check_text, split_tunes};
use proptest::prelude::*;

/// Each tune of the corpus as its own text (lines up to the blank line, newline-terminated).
fn corpus_tunes() -> Option<Vec<String>> {
    let Some(dir) = shared_dir("data") else {
        skip(Need::Data, "no ../shared/data corpus");
        return None;
    };
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).ok()?.flatten().map(|e| e.path()).collect();
    files.sort();
    for f in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "abc")) {
        let text = std::fs::read_to_string(&f).ok()?;
        for tt in split_tunes(&text) {
            let lines: Vec<&str> = tt.lines.iter().copied().take_while(|l| !l.trim().is_empty()).collect();
            out.push(lines.join("\n") + "\n");
        }
    }
    Some(out)
}

/// Feeds `text`; the byte offset of the first refused character, if any.
fn first_refused(text: &str) -> Option<usize> {
    let mut g = Guide::new();
    text.char_indices().find(|&(_, c)| !g.push(c)).map(|(i, _)| i)
}

#[test]
fn every_prefix_of_every_valid_corpus_tune_is_accepted() {
    let Some(tunes) = corpus_tunes() else { return };
    assert!(tunes.len() > 500, "{} tunes", tunes.len());
    let mut valid = 0;
    let mut failures = Vec::new();
    for t in &tunes {
        if !check_text(t).iter().all(|r| r.valid) {
            continue;
        }
        valid += 1;
        let mut g = Guide::new();
        if let Some((i, c)) = t.char_indices().find(|&(_, c)| !g.push(c)) {
            let line = t[..i].lines().count();
            if std::env::var("GUIDE_DUMP").is_ok() {
                let _ = std::fs::write(format!("/tmp/guide_fail_{}.abc", failures.len()), t);
            }
            failures.push(format!("refused {c:?} at line {line}: {:?}", &t[t[..i].rfind('\n').map_or(0, |k| k + 1)..i]));
            continue;
        }
        if !g.may_end() || !g.push('\n') || !g.ended() {
            failures.push(format!("not complete at its end: {:?}", t.lines().next()));
        }
    }
    assert!(valid > 400, "only {valid} valid tunes");
    assert!(failures.is_empty(), "{} of {valid} valid tunes refused:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn debug_one() {
    let t = std::env::var("GUIDE_DEBUG").unwrap_or_default();
    let mut g = Guide::new();
    for c in t.chars() {
        let ok = g.push(c);
        eprintln!("{c:?} {ok} {g:?}");
        if !ok {
            break;
        }
    }
}
