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
            failures
                .push(format!("refused {c:?} at line {line}: {:?}", &t[t[..i].rfind('\n').map_or(0, |k| k + 1)..i]));
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
fn invalid_corpus_tunes_are_refused_no_later_than_the_checker_finds_them() {
    let Some(tunes) = corpus_tunes() else { return };
    let (mut invalid, mut late) = (0, Vec::new());
    for t in &tunes {
        let report = &check_text(t)[0];
        if report.valid {
            continue;
        }
        invalid += 1;
        let Some(at) = first_refused(t) else {
            // Every character accepted: the automaton must then refuse to end the tune here.
            let mut g = Guide::new();
            t.chars().for_each(|c| assert!(g.push(c)));
            assert!(!g.may_end(), "invalid tune accepted whole: {:?}\n{t}", report.problems);
            continue;
        };
        let line = t[..at].matches('\n').count() + 1;
        let col = t[..at].rfind('\n').map_or(at, |k| at - k - 1) + 1;
        // The checker's first finding with a position ("line:col: message").
        let first = report.problems.iter().find_map(|p| {
            let mut it = p.splitn(3, ':');
            let l: usize = it.next()?.trim().parse().ok()?;
            let c: usize = it.next()?.trim().parse().ok()?;
            (l > 0).then(|| (l, c, it.next().unwrap_or("").to_string()))
        });
        if let Some((l, c, msg)) = first {
            // A bar's length is reported at the bar's start; the automaton refuses the note
            // that overflows it or the bar line that closes it short, later on that line.
            let ok = line < l || (line == l && (col <= c || msg.contains("bar too")));
            if !ok {
                late.push(format!("refused at {line}:{col}, checker at {l}:{c}:{msg}"));
            }
        }
    }
    assert!(invalid > 0, "no invalid tune in the corpus to try");
    assert!(late.is_empty(), "{} of {invalid} invalid tunes refused late:\n{}", late.len(), late.join("\n"));
}

/// The characters the walks below draw from: those of the shipped model's vocabulary.
const ALPHABET: &str = "\n !\"#%&'()+,-./0123456789:=ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_abcdefghijklmnopqrstuvwxyz|~";

/// A walk of legal characters chosen by `picks`; lines are kept short (a newline, else a bar
/// line, is preferred past 24 characters) and the tune ends as soon as it may after `min_len`.
/// Returns the text and whether it ended; panics at a dead end (no legal character).
fn walk(picks: &[u32], min_len: usize) -> (String, bool) {
    let mut g = Guide::new();
    let mut text = String::new();
    let mut col = 0;
    for (k, &r) in picks.iter().enumerate() {
        if g.may_end() && k >= min_len {
            assert!(g.push('\n') && g.ended());
            return (text, true);
        }
        let ok: Vec<char> = ALPHABET.chars().filter(|&c| g.allows(c)).collect();
        assert!(!ok.is_empty(), "dead end after {text:?} in {g:?}");
        // Long lines end; past `min_len` bar lines and repeat ends are favoured half the time.
        let prefer = ['\n', '|', '"', ']', '!', '+'];
        let closing = [':', '|', '\n'];
        let c = match (prefer.iter().find(|p| ok.contains(p)), closing.iter().find(|p| ok.contains(p))) {
            (Some(&p), _) if col > 24 => p,
            (_, Some(&p)) if k >= min_len && r % 2 == 0 => p,
            _ => ok[(r / 2) as usize % ok.len()],
        };
        assert!(g.push(c), "{c:?} allowed but refused after {text:?}");
        text.push(c);
        if g.ended() {
            return (text, true);
        }
        col = if c == '\n' { 0 } else { col + 1 };
    }
    (text, false)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Any sequence of legal draws that the automaton lets end is a valid tune.
    #[test]
    fn legal_walks_end_in_valid_tunes(picks in proptest::collection::vec(any::<u32>(), 3000), min_len in 0usize..400) {
        let (text, ended) = walk(&picks, min_len);
        if ended {
            let reports = check_text(&text);
            prop_assert_eq!(reports.len(), 1, "{}", text);
            prop_assert!(reports[0].valid, "{:?}\n{}", reports[0].problems, text);
        }
    }
}

#[test]
fn walks_do_reach_the_end_of_a_tune() {
    // The property above means something only if walks end: a fair share of these must
    // (random headers and repeats left open make many run out of characters first).
    let mut ended = 0;
    let mut x = 12345u64;
    for _ in 0..100 {
        let picks: Vec<u32> = (0..3000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 33) as u32
            })
            .collect();
        ended += usize::from(walk(&picks, 50).1);
    }
    assert!(ended >= 20, "only {ended} of 100 walks ended");
}

/// `folklstm sample 100` from the repository root with `args`; returns stderr.
fn sample_shipped(args: &[&str]) -> String {
    let o = common::folk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["sample", "100", "--count", "50", "--seed", "X: 1\n", "--len", "2000", "--rng-seed", "1"])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

/// The number after `key` in the stderr line starting with `line` ("checker: 50 tunes, 49 valid").
fn count_in(stderr: &str, line: &str, key: &str) -> u32 {
    let l = stderr.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line:?} line: {stderr}"));
    let at = l.find(key).unwrap_or_else(|| panic!("no {key:?} in {l}")) + key.len();
    l[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn guided_sampling_of_the_shipped_model_is_valid_and_no_more_copied_than_free() {
    let Some(jigs) = shared_dir("data").map(|d| d.join("nottingham-jigs.abc")) else {
        skip(Need::Data, "no ../shared/data corpus");
        return;
    };
    let corpus = jigs.to_str().unwrap();
    let guided = sample_shipped(&["--guided", "--corpus", corpus]);
    assert!(guided.contains("sampling: guided"), "{guided}");
    // 50 tunes, each ended by the guide: at least 49 valid (98%).
    assert_eq!(count_in(&guided, "checker:", "checker:"), 50, "{guided}");
    let valid = count_in(&guided, "checker:", "tunes,");
    assert!(valid >= 49, "{valid} of 50 valid with guidance:\n{guided}");
    let free = sample_shipped(&["--free", "--one-tune", "--corpus", corpus]);
    assert!(free.contains("sampling: free"), "{free}");
    let copies = |e: &str| count_in(e, "judge: originality", "near copies");
    assert!(copies(&guided) <= copies(&free), "near copies guided {} free {}", copies(&guided), copies(&free));
}

#[test]
fn guided_sampling_refuses_a_seed_it_cannot_follow_with_a_clear_error() {
    let o = common::folk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["sample", "100", "--seed", "T:no number first\n", "--len", "20", "--guided"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--free") && err.contains("--seed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
