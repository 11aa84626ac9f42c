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

/// `check` refuses a tune with no M: before its first note; the guide refuses the music (it has
/// no bar length to follow), bar lines included (a model once filled 2,000 characters with bar
/// lines there and never finished), not the K:, so an M: line may still follow the key; and the
/// closer writes that M: line.
#[test]
fn music_waits_for_a_meter() {
    let no_meter = "X: 1\nT:t\nK:G\nGAB|\n";
    assert_eq!(first_refused(no_meter), Some(no_meter.find("GAB").unwrap()), "a note before any M:");
    let bars = "X: 1\nT:t\nK:G\n|:|\n";
    assert_eq!(first_refused(bars), Some(bars.find("|:").unwrap()), "a bar line before any M:");
    let mut g = Guide::new();
    "X: 1\nT:t\nK:G\n".chars().for_each(|c| assert!(g.push(c)));
    let tail = close(g, 200).expect("the closer finishes a tune that has no meter yet");
    assert!(tail.starts_with("M:"), "{tail:?}");
    let reports = check_text(&format!("X: 1\nT:t\nK:G\n{tail}"));
    assert!(reports.len() == 1 && reports[0].valid, "{tail:?}: {reports:?}");
    let late = "X: 1\nT:t\nK:G\nM:3/4\nGAB|GAB|]\n\n";
    assert_eq!(first_refused(late), None, "M: after K:, before the music");
    let reports = check_text(late);
    assert!(reports.len() == 1 && reports[0].valid, "the checker agrees: {reports:?}");
    let reports = check_text(&late.replace("M:3/4\n", ""));
    assert!(!reports[0].valid, "and calls the tune without M: invalid: {reports:?}");
}

/// Free text is where a lost model hides music the checker does not read: between a chord
/// symbol's quotes, in a decoration, a comment after the music or a comment line. The guide
/// keeps each to what it is for, while the edition's own (in the corpus test above) still pass.
#[test]
fn the_guide_allows_no_music_in_free_text() {
    let head = "X: 1\nT:t\nM:6/8\nL:1/8\nK:G\n";
    let tune = |body: &str| format!("{head}{body}");
    // Text that ends a tune the checker calls valid, for each case below.
    let ok = |body: &str| {
        let t = tune(body);
        assert!(check_text(&t).iter().all(|r| r.valid), "the checker refuses {t:?}");
        first_refused(&t)
    };
    for good in [
        "\"G\"GAB \"Am7/g\"c2d|\"(E7)\"e3 \"D\"\"D7\"d3|]\n\n",
        "\"Bb\"B3 \"F#m\"f3|\"C#d\"c3 \" Em\"e3|]\n\n",
        "!trill!G3 ~A3|(GAB) c3|]\n%%MIDI program 74\n\n",
    ] {
        assert_eq!(ok(good), None, "refused the edition's kind of text in {good:?}");
    }
    for (bad, at) in [
        ("\"G2A|B2c\"GAB c3|]\n\n", "2A|"),
        ("\"fededef\"GAB c3|]\n\n", "fededef"),
        // `fe` may still become `fermata`.
        ("!fedcba!GAB c3|]\n\n", "dcba"),
        ("GAB c3|]%d2e|\n\n", "%d2e"),
        ("GAB c3|\n%GAB|cde|\ndef g3|]\n\n", "|cde"),
        ("GAB ~\nc3|]\n\n", "\nc3"),
        ("((GAB) c3|]\n\n", "(GAB"),
        ("GAB c3|\n\\\ndef g3|]\n\n", "\\\nd"),
        ("GAB \"D\"|c3|]\n\n", "|c3"),
        ("G2-B- -c3|]\n\n", "-c3"),
    ] {
        let want = tune(bad).find(at);
        assert!(want.is_some(), "{at:?} not in {bad:?}");
        assert_eq!(first_refused(&tune(bad)), want, "{bad:?}: should be refused at {at:?}");
    }
}

/// A tune sampled for a meter and key the user chose (`keep_header`) keeps them: the body
/// may not change either, where it otherwise may.
#[test]
fn a_kept_header_refuses_meter_and_key_changes() {
    let t = "X: 1\nT:t\nM:6/8\nK:G\nGAB c3|\nM:3/4\nK:D\nd2 e2 f2|]\n\n";
    let refused = |g: Guide| {
        let mut g = g;
        t.char_indices().find(|&(_, c)| !g.push(c)).map(|(i, _)| i)
    };
    assert_eq!(refused(Guide::new()), None, "meter and key changes are allowed by default");
    assert_eq!(refused(Guide::new().keep_header(true, false)), t.find("M:3/4"));
    assert_eq!(refused(Guide::new().keep_header(false, true)), t.find("K:D"));
    // A kept key may be restated on the line after a part label (where `train --restate-key`
    // writes it), never changed there.
    let labelled = t.replace("M:3/4\nK:D", "P:B\nK:D");
    let mut g = Guide::new().keep_header(false, true);
    let at = labelled.char_indices().find(|&(_, c)| !g.push(c)).map(|(i, _)| i);
    assert_eq!(at, labelled.find("K:D").map(|i| i + 2), "after a label, only the key's value is refused");
    let restated = "X: 1\nT:t\nM:6/8\nK:Em\nP:A\nGAB c3|\nP:B\nK:Em\nd2e f3|]\n\n";
    let mut g = Guide::new().keep_header(true, true);
    assert_eq!(restated.char_indices().find(|&(_, c)| !g.push(c)), None);
    let mut g = Guide::new().keep_header(true, true);
    let relative = restated.replace("K:Em\nd2e", "K:E\nd2e");
    let at = relative.char_indices().find(|&(_, c)| !g.push(c)).map(|(i, _)| i);
    assert_eq!(at, relative.find("K:E\nd2e").map(|i| i + 3), "the major of the same tonic is another key");
    // Only after a part label: a second K: line anywhere else is refused, as before.
    let mut g = Guide::new().keep_header(true, true);
    let unlabelled = restated.replace("P:B\n", "");
    let at = unlabelled.char_indices().find(|&(_, c)| !g.push(c)).map(|(i, _)| i);
    assert_eq!(at, unlabelled.find("K:Em\nd2e"));
}

/// The characters the walks below draw from: those of the shipped model's vocabulary.
const ALPHABET: &str = "\n !\"#%&'()+,-./0123456789:=ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_abcdefghijklmnopqrstuvwxyz|~";

/// A walk of legal characters chosen by `picks`; lines are kept short (a newline, else a bar
/// line, is preferred past 24 characters) and the tune ends as soon as it may after `min_len`.
/// Returns the text and whether it ended; panics at a dead end (no legal character).
fn walk(picks: &[u32], min_len: usize) -> (String, bool) {
    walk_from(Guide::new(), picks, min_len)
}

/// [`walk`] from the state `g` (e.g. [`Guide::shaped`]).
fn walk_from(mut g: Guide, picks: &[u32], min_len: usize) -> (String, bool) {
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
    #![proptest_config(common::prop_config(400))]

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

/// The closer's text from `g`: what `closing_char` writes until the tune ends (at most `cap`);
/// `Err` with what it wrote and its state where it got stuck.
fn close(mut g: Guide, cap: usize) -> Result<String, String> {
    let mut text = String::new();
    while !g.ended() {
        let stuck = |t: &str, g: &Guide| format!("closer stuck after {t:?} in {g:?}");
        let c = g.closing_char().ok_or_else(|| stuck(&text, &g))?;
        if text.len() >= cap || !g.push(c) {
            return Err(stuck(&text, &g));
        }
        text.push(c);
    }
    Ok(text)
}

#[test]
fn the_closer_ends_every_corpus_tune_from_anywhere_in_its_body_in_a_valid_tune() {
    // Cut each valid corpus tune every 7 characters of its body; from each cut the closer must
    // end the tune in a valid one, within `to_finish`'s count, and no legal next character may
    // raise what it needs by more than `CLOSE_SLACK` (what the sampler's budget relies on).
    let Some(tunes) = corpus_tunes() else { return };
    let (mut cuts, mut worst_need, mut worst_growth) = (0, 0, 0);
    let mut failures = Vec::new();
    for t in tunes.iter().filter(|t| check_text(t).iter().all(|r| r.valid)) {
        let mut g = Guide::new();
        for (i, c) in t.char_indices() {
            assert!(g.push(c));
            if g.closing_char().is_none() || i % 7 != 0 {
                continue;
            }
            cuts += 1;
            let head = &t[..i + c.len_utf8()];
            let tail = match close(g, 400) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("no end after {head:?}: {e}"));
                    continue;
                }
            };
            let need = g.to_finish(400);
            if need != Some(tail.chars().count()) {
                failures.push(format!("to_finish {need:?} but the closer wrote {tail:?}"));
            }
            let whole = format!("{head}{tail}");
            let reports = check_text(&whole);
            if reports.len() != 1 || !reports[0].valid {
                failures.push(format!("invalid: {:?}\n{whole}", reports.first().map(|r| &r.problems)));
            }
            let need = need.unwrap_or(0);
            worst_need = worst_need.max(need);
            for c in ALPHABET.chars() {
                let mut h = g;
                if h.push(c)
                    && let Some(n) = h.to_finish(400)
                {
                    worst_growth = worst_growth.max(n.saturating_sub(need));
                }
            }
        }
    }
    eprintln!(
        "{cuts} cuts; the closer needed at most {worst_need} characters; one character added at most {worst_growth}"
    );
    assert!(cuts > 10_000, "{cuts} cuts");
    assert!(
        failures.is_empty(),
        "{} of {cuts} cuts:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    assert!(worst_need + folklstm::sample::CLOSE_SLACK < folklstm::sample::CLOSE_WINDOW, "need {worst_need}");
    assert!(worst_growth <= folklstm::sample::CLOSE_SLACK, "one character added {worst_growth}");
}

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 0, ..common::prop_config(200) })]

    /// From any state a walk of legal characters reaches in the body, the closer ends the tune
    /// in a valid one.
    #[test]
    fn the_closer_ends_random_walks_in_valid_tunes(picks in proptest::collection::vec(any::<u32>(), 600), min_len in 0usize..400) {
        let (text, _) = walk(&picks, min_len);
        let mut g = Guide::new();
        for c in text.chars() {
            prop_assert!(g.push(c));
        }
        // A header without M: is closed by an M: line first (no note fits before one).
        if g.closing_char().is_some() && !g.ended() {
            let tail = close(g, 2000);
            prop_assert!(tail.is_ok(), "no end after {:?}: {:?}", text, tail);
            let whole = format!("{text}{}", tail.unwrap_or_default());
            let reports = check_text(&whole);
            prop_assert_eq!(reports.len(), 1, "{}", whole);
            prop_assert!(reports[0].valid, "{:?}\n{}", reports[0].problems, whole);
        }
    }
}

/// `folklstm sample 100 ARGS` from the repository root: (stdout, stderr), after checking success.
fn run_shipped(args: &[&str]) -> (String, String) {
    let o = common::folk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["sample", "100"])
        .args(args)
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{err}");
    (out, err)
}

#[test]
fn streams_short_of_len_are_steered_to_a_valid_end() {
    // --len 260 leaves 4/4 tunes (which this model of jigs writes long) too little room: without
    // the budget most would be cut off unfinished (invalid). With it every stream ends valid,
    // some of them steered; the same seed gives the same tunes.
    let args = ["--meter", "4/4", "--count", "24", "--len", "260", "--rng-seed", "3"];
    let (out, err) = run_shipped(&args);
    assert_eq!(count_in(&err, "checker:", "checker:"), 24, "{err}");
    assert_eq!(count_in(&err, "checker:", "tunes,"), 24, "{err}");
    let l = err.lines().find(|l| l.starts_with("sampling: guided (")).unwrap_or_else(|| panic!("{err}"));
    // The number just before `key` in the sampling line.
    let before = |key: &str| -> u32 {
        let head = &l[..l.find(key).unwrap_or_else(|| panic!("no {key:?} in {l}"))];
        head.trim_end().rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(count_in(&err, "sampling:", "draws in"), 24, "{l}");
    assert!(before(" tune(s) steered") > 0, "no stream needed steering: {l}");
    assert_eq!((before(" at a dead end"), before(" ran out of --len")), (0, 0), "{l}");
    assert_eq!(run_shipped(&args).0, out, "same seed, same tunes");
}

#[test]
fn judge_reports_how_the_tunes_were_sampled() {
    let dir = tempfile::tempdir().unwrap();
    let folk = || common::folk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    for (name, extra) in [("g.abc", &[][..]), ("f.abc", &["--free", "--one-tune"][..])] {
        let (out, err) = run_shipped(
            &[&["--seed", "X: 1\n", "--len", "800", "--rng-seed", "2", "--temperature", "0.9"][..], extra].concat(),
        );
        assert_eq!(count_in(&err, "checker:", "checker:"), 1, "the provenance line is no tune: {err}");
        std::fs::write(dir.path().join(name), out).unwrap();
    }
    std::fs::write(dir.path().join("plain.abc"), "X: 1\nT:t\nM:6/8\nK:G\nabc def|\n").unwrap();
    let o = folk()
        .arg("judge")
        .arg("-q")
        .args(["g.abc", "f.abc", "plain.abc"].map(|f| dir.path().join(f)))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().find(|l| l.starts_with("sampling: ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("sampling: guided, temperature 0.9, rng-seed 2 ("), "{line}");
    assert!(line.contains("; free, temperature 0.9, rng-seed 2 (") && line.contains("; unknown ("), "{line}");
    let o = folk().args(["judge", "--json"]).arg(dir.path().join("g.abc")).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sampling"][0]["sampling"], "guided, temperature 0.9, rng-seed 2", "{v}");
}

/// `sample --meter 3/4 --key D` (guided): every tune is valid and stays in 3/4 and D, though the
/// shipped model learnt only jigs and, left to itself, writes `M:6/8` lines.
#[test]
fn a_chosen_meter_and_key_hold_for_the_whole_tune() {
    let (out, err) =
        run_shipped(&["--count", "12", "--meter", "3/4", "--key", "D", "--len", "1500", "--rng-seed", "3"]);
    let tunes: Vec<&str> = out.split("\n\n").filter(|t| t.contains("X:")).collect();
    assert_eq!(tunes.len(), 12, "{err}");
    for t in &tunes {
        let fields: Vec<&str> = t.lines().filter(|l| l.starts_with("M:") || l.starts_with("K:")).collect();
        assert_eq!(fields, ["M:3/4", "K:D"], "{t}");
        assert!(check_text(t).iter().all(|r| r.valid), "{t}");
    }
}

/// A bar that must reach an exact length (it completes a short bar on the line above) ending
/// in a tuplet: its last note must be longer than the shortest, and the guide must still see
/// that a note fits (it once asked only about the shortest, and the closer stalled there while
/// a sampled stream wrote `)` to the end of `--len`). A slur closes once, after a note.
#[test]
fn an_exact_bar_ending_in_a_tuplet_can_be_closed() {
    let head = "X: 1\nT:t\nM:4/4\nL:1/8\nK:G\nGABc defg|A2B2c2|\n(3c2B/2-";
    let mut g = Guide::new();
    assert!(head.chars().all(|c| g.push(c)), "the guide refuses the start");
    assert!(g.allows('c'), "a note of half the unit completes the tuplet and the bar");
    let end = close(g, 60).unwrap();
    let tune = format!("{head}{end}");
    assert!(check_text(&tune).iter().all(|r| r.valid), "{tune}");
    assert!(!g.allows(')'), "a slur closing after a tie, not a note");
    assert_eq!(first_refused("X: 1\nT:t\nM:3/4\nK:G\n(GAB)) c3|]\n\n"), Some(24), "a second `)`");
}

/// A tuplet inside a bar of exact length: each of its notes must leave a remainder that its
/// other notes and whole notes after it can fill (a sampled stream once wrote a `(4` tuplet
/// whose last note would have needed a third of the unit, and stalled on spaces).
#[test]
fn a_tuplet_in_an_exact_bar_leaves_a_remainder_notes_can_fill() {
    // The second line's first bar owes 3 eighths: A2 leaves 1 eighth (288 ticks) for the
    // tuplet. `(4` notes take 3/4 of their length; g/2 (108 ticks) would leave 180, which three
    // more `(4` notes (54 ticks at least each, in steps of 54) and whole quarters of the unit
    // (72) cannot make; g// (54) leaves 234 = 3 x 54 + 72.
    let head = "X: 1\nT:t\nM:4/4\nL:1/8\nK:G\nGABc defg|A2 B2 c|\nA2 (4g/";
    let mut g = Guide::new();
    assert!(head.chars().all(|c| g.push(c)), "the guide refuses the start");
    assert!(!g.allows('2'), "g/2 leaves a remainder no notes can fill");
    assert!(g.push('/'));
    let end = close(g, 60).unwrap();
    let tune = format!("{head}/{end}");
    assert!(check_text(&tune).iter().all(|r| r.valid), "{tune}");
}

/// An ending may not start the line whose first bar must complete a short bar above (the
/// checker reads the short bar as closed there, too short); a sampled tune did that after a
/// `\` continuation.
#[test]
fn an_ending_does_not_cut_an_owed_bar() {
    let t = "X: 1\nT:t\nM:4/4\nL:1/8\nK:G\n|:GABc defg|A2 B2 c|\\\n [1A3 B2 c:|]\n\n";
    assert!(!check_text(t)[0].valid, "the checker refuses it");
    assert_eq!(first_refused(t), Some(t.find("1A3").unwrap()));
}

/// A bar line may not open the line whose first bar must complete a short bar above (sampled
/// tunes wrote `::` or `|` there after a `\` continuation; the checker calls the short bar too
/// short).
#[test]
fn a_bar_line_does_not_skip_an_owed_bar() {
    let t = "X: 1\nT:t\nM:4/4\nL:1/8\nK:G\n|:GABc defg|A2 B2 c|\\\n ::A3 B2 c:|]\n\n";
    assert!(!check_text(t)[0].valid, "the checker refuses it");
    assert_eq!(first_refused(t), Some(t.find("::A3").unwrap()));
}

/// A unit change (`L:`) only where a bar begins: a sampled shaped hornpipe broke a line 1/32 of
/// a whole note before its bar's end, wrote `L:1/4`, and then no note the guide writes fitted
/// (`c/4` under `L:1/8`, `c/8` under `L:1/4`): it wrote field lines until `--len` ran out.
#[test]
fn a_unit_change_waits_for_the_bar_to_end() {
    let head = "X: 1\nT:t\nM:4/4\nL:1/8\nK:D\nd3/2e/2d3/2e/2 d/4e/2f3/2A/2F3/4G/4\n";
    for shaped in [false, true] {
        let new = || if shaped { Guide::new().shaped() } else { Guide::new() };
        let mut g = new();
        assert!(head.chars().all(|c| g.push(c)), "{head}");
        assert!(!g.allows('L'), "shaped {shaped}: L: mid-bar");
        assert!(g.allows('K') && g.allows('c'), "shaped {shaped}: a key change or the bar's last note");
        // Once the bar is whole, the unit may change, and the tune can still be finished.
        let mut g = new();
        let whole = format!("{head}c/4|\nL:1/4\n");
        assert!(whole.chars().all(|c| g.push(c)), "shaped {shaped}: {whole}");
        assert!(g.to_finish(2000).is_some(), "shaped {shaped}");
    }
    // The checker agrees that the finished tune is valid.
    let done = "X: 1\nT:t\nM:4/4\nL:1/8\nK:D\nd3/2e/2d3/2e/2 d/4e/2f3/2A/2F3/4G/4\nc/4|\nL:1/4\nA4|]\n\n";
    assert!(check_text(done)[0].valid, "{:?}", check_text(done)[0].problems);
    assert_eq!(first_refused(done), None);
}

/// A single bar line may leave a short bar for the next line to complete only when notes can
/// complete it: a sampled 4/4 tune closed a bar a third of the unit short after a tuplet, ended
/// the line, and then no note fitted the owed bar; the stream wrote spaces to the end of
/// `--len` and the tune never ended.
#[test]
fn a_short_bar_owes_only_what_notes_can_fill() {
    // (3A2Bc takes 8/3 of the unit; with d2 d2 d the bar is 23/3 units of 8: a third short.
    let head = "X: 1\nT:t\nM:4/4\nL:1/8\nK:G\nGABc defg|(3A2Bc d2 d2 d|";
    let mut g = Guide::new();
    assert!(head.chars().all(|c| g.push(c)), "the guide refuses the start");
    assert!(!g.allows('\n') && !g.allows(' ') && !g.allows('\\'), "a single bar line that owes a third of the unit");
    assert!(g.allows('|') && g.allows(']'), "a sectional bar line may close the short bar");
    let end = close(g, 60).unwrap();
    let tune = format!("{head}{end}");
    assert!(check_text(&tune).iter().all(|r| r.valid), "{tune}");
    // A short bar of whole quarters of the unit is still owed to the next line.
    let owed = "X: 1\nT:t\nM:4/4\nL:1/8\nK:G\nGABc defg|A2 B2 c/|\\\nB/2 c d2|e2 f2 g2 a2|]\n\n";
    assert_eq!(first_refused(owed), None, "{owed}");
    assert!(check_text(owed).iter().all(|r| r.valid), "{owed}");
}

/// Shaped mode as the judge reads the result: two or more parts, every one of 8 bars.
fn eight_bar_parts(text: &str) -> Result<usize, String> {
    let f = folklstm::abc::judge::read_tunes(text).pop().ok_or("no tune")?;
    let bars: Vec<f64> = f.sections.iter().map(|s| s.bars).collect();
    if bars.len() >= 2 && bars.iter().all(|&b| b == 8.0) {
        Ok(bars.len())
    } else {
        Err(format!("parts of {bars:?} bars"))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 0, ..common::prop_config(200) })]

    /// Shaped (`sample --shape`): any walk of legal characters that the automaton lets end is a
    /// valid tune of two or more 8-bar parts; and from wherever a walk stops, the closer ends
    /// the tune so.
    #[test]
    fn shaped_walks_and_their_closer_end_in_tunes_of_8_bar_parts(picks in proptest::collection::vec(any::<u32>(), 3000), min_len in 0usize..400) {
        let (text, ended) = walk_from(Guide::new().shaped(), &picks, min_len);
        let mut g = Guide::new().shaped();
        for c in text.chars() {
            prop_assert!(g.push(c));
        }
        let whole = if ended {
            text
        } else if g.closing_char().is_some() {
            let tail = close(g, 2000);
            prop_assert!(tail.is_ok(), "no end after {:?}: {:?}", text, tail);
            format!("{text}{}", tail.unwrap_or_default())
        } else {
            // Still in the header: nothing to judge yet.
            return Ok(());
        };
        let reports = check_text(&whole);
        prop_assert_eq!(reports.len(), 1, "{}", whole);
        prop_assert!(reports[0].valid, "{:?}\n{}", reports[0].problems, whole);
        let parts = eight_bar_parts(&whole);
        prop_assert!(parts.is_ok(), "{:?}\n{}", parts, whole);
    }
}

/// Two dead ends sampling met while shaped mode was built: a `[` after a full bar (endings
/// are refused in shaped mode, so only a chord could follow, and none fits), and a tuplet note
/// leaving a remainder no note can fill in a bar that must be full (a single bar line may not
/// leave it short). Unshaped, both are legal (an ending may follow; the short bar may close at
/// a double bar). From the first part, the closer ends the tune after the second.
#[test]
fn shaped_mode_refuses_what_would_leave_no_way_on() {
    let head = "X: 1\nT:t\nM:6/8\nL:1/8\nK:G\nGAB cde|";
    let (mut shaped, mut plain) = (Guide::new().shaped(), Guide::new());
    assert!(head.chars().all(|c| shaped.push(c) && plain.push(c)));
    let after = |g: Guide, s: &str| {
        let mut g = g;
        assert!(s.chars().all(|c| g.push(c)), "{s}");
        g
    };
    assert!(!after(shaped, "fed cBA").allows('['), "a `[` after a full bar, shaped");
    assert!(after(plain, "fed cBA").allows('['), "unshaped, `[` may start an ending");
    // 1440 ticks, then (3 c/2 (96) c/4 (48): the last triplet note must take the 144 left
    // (c3/4); any shorter one leaves what no note fills (c/ would leave 48).
    let t = "fed cB(3c/2c/4c";
    assert!(!after(shaped, t).allows('/') && after(shaped, t).allows('3'), "shaped");
    assert!(after(plain, t).allows('/'), "unshaped, the bar may close short at a double bar");
    let text = format!("{head}{}", close(shaped, 2000).unwrap());
    assert!(check_text(&text)[0].valid, "{text}");
    assert_eq!(eight_bar_parts(&text), Ok(2), "the closer ends after the second part: {text}");
}
