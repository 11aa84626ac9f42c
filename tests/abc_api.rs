//! The ABC library API and the `check`/`midi` runners on small hand-written tunes: reports,
//! exit codes, file naming, atomic writes, error messages, and no panic on any input.

mod common;

use std::path::PathBuf;

use folklstm::abc::cli::summary_line;
use folklstm::abc::cli::{CheckArgs, MidiArgs, run_check, run_midi};
use folklstm::abc::{AbcError, check_text, count_valid, parse_tune, render_events, tune_to_midi, write_midi};
use midly::{MidiMessage, Smf, TrackEventKind};
use proptest::prelude::*;

const TWO_TUNES: &str = "\
X:1
T:Good
M:3/4
L:1/8
K:D
A2|:d2 f2 a2|g2 e2 c2|d6:|

X:2
T:Bad bar
M:3/4
L:1/8
K:D
d2 f2 a2|g2 e2|d6|
";

#[test]
fn check_text_reports_each_tune_with_positions() {
    let r = check_text(TWO_TUNES);
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].index, r[0].number, r[0].title.as_deref(), r[0].valid), (0, Some(1), Some("Good"), true));
    assert!(r[0].problems.is_empty());
    assert!(!r[1].valid);
    assert_eq!(r[1].problems, vec!["13:10: bar too short: 2/4 where M:3/4 needs 3/4"]);
}

#[test]
fn count_valid_feeds_the_sampler_report() {
    assert_eq!(count_valid(TWO_TUNES), (2, 1));
    assert_eq!(summary_line(2, 1), "2 tunes, 1 valid (50.0%)");
    assert_eq!(count_valid(""), (0, 0));
}

/// Without L:, the unit is 1/16 below 3/4 and 1/8 from 3/4 up (ABC 2.1, 3.1.7).
#[test]
fn default_unit_length_follows_the_meter() {
    // Eight notes fill 2/4 only as sixteenths; six fill 3/4 only as eighths.
    assert!(check_text("X:1\nM:2/4\nK:C\ncdefgabc|cdefgabc|\n")[0].valid);
    assert!(!check_text("X:1\nM:2/4\nK:C\ncdef|cdef|cdef|\n")[0].valid);
    // A bar split over a line break (a strain's pickup on its own line) is one bar.
    assert!(check_text("X:1\nM:2/4\nK:C\ncdefgabc|cdefga|\nbc|cdefgabc|\n")[0].valid);
    assert!(!check_text("X:1\nM:2/4\nK:C\ncdefgabc|cdefga|bc|cdefgabc|\n")[0].valid);
    assert!(check_text("X:1\nM:3/4\nK:C\ncdefga|cdefga|\n")[0].valid);
    assert!(check_text("X:1\nM:3/4\nL:1/4\nK:C\ncde|cde|\n")[0].valid);
}

#[test]
fn checker_requires_headers_and_a_closing_bar_line() {
    let r = check_text("T:No number\nabc");
    assert_eq!(r.len(), 1);
    let all = r[0].problems.join("\n");
    assert!(all.contains("X:"), "{all}");
    assert!(all.contains("missing M:"), "{all}");
    assert!(all.contains("missing K:"), "{all}");
    assert!(all.contains("does not end with a bar line"), "{all}");
    // M: right after K:, before the music, still gives every bar its meter.
    assert!(check_text("X:1\nK:D\nM:6/8\ndef gfe|\n")[0].valid);
    assert!(!check_text("X:1\nK:D\nde|\nM:6/8\ndef gfe|\n")[0].valid);
}

#[test]
fn checker_accepts_pickups_endings_and_parts() {
    let tune = "X:3\nT:Parts\nY:AAB\nM:6/8\nK:G\nP:A\nd|gfe dcB|[1A3 A2:|[2A3 A2||\nP:B\nB|c3 c2c|d3 d2:|\n";
    let r = check_text(tune);
    assert!(r[0].valid, "{:?}", r[0].problems);
}

/// The bar before a part or meter change ends its section and may be short, even with key or
/// tempo changes written between; before plain music it must be full.
#[test]
fn a_short_bar_before_a_part_change_stays_short_across_key_and_tempo_lines() {
    let head = "X:1\nM:2/4\nL:1/8\nK:D\nP:A\nd|defg|ab|\n";
    for between in ["", "K:G\n", "Q:1/4=90\nK:G\n"] {
        for change in ["P:B\n", "M:3/4\n"] {
            let t = format!("{head}{between}{change}abc|def|\n");
            assert!(check_text(&t)[0].valid, "{t:?}: {:?}", check_text(&t)[0].problems);
        }
        let t = format!("{head}{between}abc|def|\n");
        assert!(!check_text(&t)[0].valid, "{t:?}: the short bar is owed nothing");
    }
}

#[test]
fn checker_rejects_long_bars_unbalanced_repeats_and_missing_parts() {
    let r = check_text("X:1\nM:2/4\nL:1/8\nK:C\nabcde|:ab cd|");
    let all = r[0].problems.join("\n");
    assert!(all.contains("5:1: bar too long: 5/8"), "{all}");
    assert!(all.contains("never closed"), "{all}");
    let r = check_text("X:1\nY:AC\nM:2/4\nL:1/8\nK:C\nP:A\nabcd|\n");
    assert!(r[0].problems.join("").contains("no P: section in the body: C"));
}

fn check_output(files: Vec<PathBuf>, quiet: bool) -> (i32, String) {
    let mut out = Vec::new();
    let code = run_check(&CheckArgs { files, quiet, lenient: false }, &mut out).expect("check runs");
    (code, String::from_utf8(out).expect("utf-8 report"))
}

#[test]
fn run_check_prints_report_and_summary_and_sets_exit_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("two.abc");
    std::fs::write(&bad, TWO_TUNES).expect("write");
    let (code, text) = check_output(vec![bad.clone()], false);
    assert_eq!(code, 1);
    assert!(text.contains("X:1 \"Good\": ok"), "{text}");
    assert!(text.contains("X:2 \"Bad bar\": INVALID"), "{text}");
    assert!(text.contains("  13:10: bar too short"), "{text}");
    assert_eq!(text.lines().last(), Some("2 tunes, 1 valid (50.0%), 2 readable (100.0%)"));

    let (_, quiet) = check_output(vec![bad], true);
    assert!(!quiet.contains("\"Good\""), "{quiet}");

    let good = dir.path().join("good.abc");
    std::fs::write(&good, TWO_TUNES.split("\n\n").next().expect("first tune")).expect("write");
    let (code, text) = check_output(vec![good], false);
    assert_eq!(code, 0);
    assert_eq!(text.lines().last(), Some("1 tunes, 1 valid (100.0%), 1 readable (100.0%)"));

    let mut out = Vec::new();
    let err =
        run_check(&CheckArgs { files: vec![dir.path().join("missing.abc")], quiet: false, lenient: false }, &mut out)
            .expect_err("missing file");
    assert!(err.to_string().contains("missing.abc"), "{err}");
}

/// `--lenient` passes tunes with musical findings but not tunes with syntax errors; the
/// verdict words say which level a tune fails.
#[test]
fn lenient_check_passes_readable_tunes_and_names_unreadable_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |name: &str, text: &str, lenient: bool, quiet: bool| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let mut out = Vec::new();
        let code = run_check(&CheckArgs { files: vec![path], quiet, lenient }, &mut out).expect("check runs");
        (code, String::from_utf8(out).expect("utf-8 report"))
    };
    // TWO_TUNES: one valid, one with a short bar (readable).
    let (code, text) = run("two.abc", TWO_TUNES, true, false);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("X:2 \"Bad bar\": readable"), "{text}");
    assert!(text.contains("  13:10: bar too short"), "{text}");
    let (_, quiet) = run("two.abc", TWO_TUNES, true, true);
    assert_eq!(quiet.lines().count(), 1, "{quiet}");
    let unreadable = format!("{TWO_TUNES}\nX:3\nT:Open chord\nM:3/4\nK:D\n[df a2|\n");
    let (code, text) = run("three.abc", &unreadable, true, true);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("X:3 \"Open chord\": UNREADABLE"), "{text}");
    assert!(text.contains("unclosed chord"), "{text}");
    assert_eq!(text.lines().last(), Some("3 tunes, 1 valid (33.3%), 2 readable (66.7%)"));
    let (code, text) = run("three.abc", &unreadable, false, true);
    assert_eq!(code, 1);
    assert!(text.contains("X:2 \"Bad bar\": INVALID"), "{text}");
}

fn melody_pitches(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read MIDI");
    let smf = Smf::parse(&bytes).expect("valid MIDI");
    assert_eq!(smf.tracks.len(), 2, "melody track and chord track");
    smf.tracks[0]
        .iter()
        .filter_map(|e| match e.kind {
            TrackEventKind::Midi { message: MidiMessage::NoteOn { key, vel }, .. } if vel.as_int() > 0 => {
                Some(key.as_int())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn write_midi_names_one_file_per_tune_and_picks_by_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("song.mid");
    let files = write_midi(TWO_TUNES, &out, None).expect("writes");
    assert_eq!(files, vec![dir.path().join("song-1.mid"), dir.path().join("song-2.mid")]);
    // Tune 1: pickup A, then the repeated three bars (D major: f and c are sharp).
    assert_eq!(melody_pitches(&files[0]), vec![69, 74, 78, 81, 79, 76, 73, 74, 74, 78, 81, 79, 76, 73, 74]);
    let picked = write_midi(TWO_TUNES, &out, Some(2)).expect("writes");
    assert_eq!(picked, vec![out.clone()]);
    assert_eq!(melody_pitches(&out), vec![74, 78, 81, 79, 76, 74]);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");

    let err = write_midi(TWO_TUNES, &out, Some(9)).expect_err("no X:9");
    assert_eq!(err.to_string(), "no tune with X:9 in the input (it has X: 1, 2)");
}

#[test]
fn run_midi_reads_the_file_and_reports_bad_paths() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.abc");
    std::fs::write(&input, TWO_TUNES).expect("write");
    let args = MidiArgs { input: input.clone(), output: dir.path().join("one.mid"), tune: Some(1) };
    assert_eq!(run_midi(&args).expect("midi"), vec![dir.path().join("one.mid")]);
    let args = MidiArgs { input, output: dir.path().join("no/such/folder/x.mid"), tune: Some(1) };
    let err = run_midi(&args).expect_err("folder missing");
    assert!(matches!(err, AbcError::Io { .. }), "{err}");
    assert!(err.to_string().contains("x.mid"), "{err}");
}

#[test]
fn parse_errors_carry_tune_line_and_column() {
    let err = parse_tune("X:4\nK:C\nab \"Am cd|").expect_err("unclosed quote");
    match &err {
        AbcError::Parse { tune, line, col, .. } => assert_eq!((*tune, *line, *col), (Some(4), 3, 4)),
        other => panic!("wrong error {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "tune X:4, line 3, column 4: unclosed chord symbol quote '\"' (the closing quote must be on the same line)"
    );
    let err = write_midi("X:1\nK:C\nab|\n\nX:2\nK:C\nc/0|\n", &PathBuf::from("x.mid"), None)
        .expect_err("bad length in tune 2");
    assert_eq!(err.to_string(), "tune X:2, line 7, column 2: bad note length '/0'");
    let err = render_events(&parse_tune("X:1\nK:Q\nab|").expect("parses")).expect_err("bad key");
    assert!(err.to_string().contains("bad key 'Q'"), "{err}");
    assert!(matches!(write_midi("  \n", &PathBuf::from("x.mid"), None), Err(AbcError::NoTunes)));
}

#[test]
fn tempo_and_chords_reach_the_midi_file() {
    let tune = parse_tune("X:1\nM:2/4\nL:1/8\nQ:1/4=90\nK:G\n\"G\"GABc|\"D7\"d4|").expect("parses");
    let bytes = tune_to_midi(&tune).expect("midi");
    let smf = Smf::parse(&bytes).expect("valid");
    let tempo = smf.tracks[0].iter().find_map(|e| match e.kind {
        TrackEventKind::Meta(midly::MetaMessage::Tempo(t)) => Some(t.as_int()),
        _ => None,
    });
    assert_eq!(tempo, Some(666_667));
    let chord_notes = smf.tracks[1]
        .iter()
        .filter(|e| {
            matches!(e.kind, TrackEventKind::Midi { message: MidiMessage::NoteOn { vel, .. }, .. } if vel.as_int() > 0)
        })
        .count();
    // G: bass and three notes; D7: bass and four notes.
    assert_eq!(chord_notes, 9);
}

/// Characters of ABC music and headers, to build random near-ABC text.
const ABC_CHARS: &[char] = &[
    'X', 'T', 'M', 'L', 'K', 'P', 'Y', 'Q', ':', '1', '2', '3', '4', '6', '8', '/', '\n', ' ', '|', '[', ']', 'A', 'B',
    'C', 'D', 'E', 'F', 'G', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'z', 'Z', 'x', ',', '\'', '^', '_', '=', '(', ')', '<',
    '>', '"', '-', '~', '.', '!', '+', '{', '}', '%', '\\', 'm', '7', '#', '&', 'y', '9', '0', 'U', 'V', 'W', 'w', '$',
];

fn exercise(text: &str) {
    // Whatever the text, checking it joined to another tune gives the two reports joined.
    let own = format!("X:{text}");
    assert_joined_reports(&own, &own);
    assert_joined_reports(TWO_TUNES, &own);
    assert_joined_reports(&own, TWO_TUNES);
    if let Ok(t) = parse_tune(text) {
        let _ = tune_to_midi(&t);
    }
}

proptest! {
    #![proptest_config(common::prop_config(400))]

    /// Random bytes never panic the parser, the checker or the MIDI writer.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    /// Random ABC-ish text after a valid header never panics either.
    #[test]
    fn random_abc_never_panics(
        header in prop::sample::select(vec!["X:1\nK:G\n", "X:1\nM:6/8\nY:ABA\nK:D\nP:A\n", "X:2\nM:2/4\nL:1/16\nQ:1/4=100\nK:Am\n", "X:3\nM:C|\nU:W=!trill!\nV:1\nV:2\nK:C\nV:1\n", ""]),
        body in proptest::collection::vec(prop::sample::select(ABC_CHARS), 0..300),
    ) {
        let text: String = header.chars().chain(body).collect();
        exercise(&text);
    }
}

/// `check_text(a + "\n" + b)` must be `check_text(a)` followed by `check_text(b)` with b's tune
/// indices moved on by a's tune count and its `line:col:` positions by a's line count: the
/// checker judges each tune on its own. Needs an `X:` line in `a` (else `a` alone is one tune
/// but, joined, a file header that is skipped) and `b` starting with `X:` (else b's first lines
/// would join a's last tune). The joining newline keeps a's last tune's lines as they were.
fn assert_joined_reports(a: &str, b: &str) {
    assert!(a.lines().any(|l| l.starts_with("X:")) && b.starts_with("X:"));
    let (ra, rb) = (check_text(a), check_text(b));
    let joined = check_text(&format!("{a}\n{b}"));
    let lines_a = a.split('\n').count();
    let mut want = ra.clone();
    for mut r in rb {
        r.index += ra.len();
        r.problems = r.problems.iter().map(|p| shift_line(p, lines_a)).collect();
        want.push(r);
    }
    assert_eq!(joined, want, "joined reports of\n{a:?}\nand\n{b:?}");
    let (n, valid) = count_valid(&format!("{a}\n{b}"));
    assert_eq!((n, valid), (want.len(), want.iter().filter(|r| r.valid).count()));
    assert_eq!(want.iter().filter(|r| r.valid).count(), want.iter().filter(|r| r.problems.is_empty()).count());
}

/// A problem `LINE:COL: message` moved down by `by` lines (whole-tune problems have no position).
fn shift_line(problem: &str, by: usize) -> String {
    let mut parts = problem.splitn(3, ':');
    let (l, c, rest) = (parts.next(), parts.next(), parts.next());
    match (l.and_then(|l| l.parse::<usize>().ok()), c.and_then(|c| c.parse::<usize>().ok()), rest) {
        (Some(l), Some(c), Some(rest)) => format!("{}:{c}:{rest}", l + by),
        _ => problem.to_string(),
    }
}

/// Real tunes: the Nottingham files in the shared folder (when present) and `common::corpus()`.
fn real_tunes() -> Vec<String> {
    let mut texts = vec![common::corpus()];
    if let Some(dir) = common::shared_dir("data") {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "abc"))
            .collect();
        files.sort();
        assert!(files.len() >= 5, "expected the five Nottingham files in {}", dir.display());
        texts.extend(files.iter().map(|f| std::fs::read_to_string(f).unwrap()));
    }
    texts.iter().flat_map(|t| folklstm::corpus::split_tunes(t).into_iter().map(String::from)).collect()
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

/// A note's length in units of L: `A` 1, `A2` 2, `A/` and `A/2` 1/2, `A//` 1/4, `A3/2` 3/2.
fn note_length(token: &str) -> (i64, i64) {
    let rest: String = token.chars().skip_while(|c| !c.is_ascii_digit() && *c != '/').collect();
    let (num, den) = rest.split_once('/').map_or((rest.as_str(), None), |(n, d)| (n, Some(d)));
    let num: i64 = if num.is_empty() { 1 } else { num.parse().unwrap() };
    let den: i64 = match den {
        None => 1,
        Some("") => 2,
        Some(d) if d.chars().all(|c| c == '/') => 1 << (d.len() + 1),
        Some(d) => d.parse().unwrap(),
    };
    (num, den)
}

/// The tokens of a bar of plain notes: `Some(list of (char offset, token, is_note))` when the
/// bar holds only notes and rests with accidentals, octave marks and lengths, spaces and chord
/// symbols; `None` for anything else (ties, tuplets, broken rhythm, chords, decorations, grace
/// notes, inline fields), which this test leaves alone.
fn plain_bar(bar: &[char]) -> Option<Vec<(usize, String, bool)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bar.len() {
        let c = bar[i];
        if c == ' ' {
            i += 1;
        } else if c == '"' {
            let close = bar[i + 1..].iter().position(|&x| x == '"')?;
            i += close + 2;
        } else if "^_=ABCDEFGabcdefgz".contains(c) {
            let start = i;
            while i < bar.len() && "^_=".contains(bar[i]) {
                i += 1;
            }
            if i == bar.len() || !"ABCDEFGabcdefgz".contains(bar[i]) {
                return None;
            }
            let is_note = bar[i] != 'z';
            i += 1;
            while i < bar.len() && ",'".contains(bar[i]) {
                i += 1;
            }
            while i < bar.len() && (bar[i].is_ascii_digit() || bar[i] == '/') {
                i += 1;
            }
            out.push((start, bar[start..i].iter().collect(), is_note));
        } else {
            return None;
        }
    }
    Some(out)
}

/// A full bar in the middle of a music line of a valid tune: single bar lines on both sides,
/// a bar of plain notes before it and after it on the same line (so it neither opens nor
/// closes a section, and is not a bar split across lines), and plain notes itself.
struct MiddleBar {
    /// Line index in the tune's text (0-based).
    line: usize,
    /// Char offsets of its opening and closing bar lines in that line.
    open: usize,
    close: usize,
    tokens: Vec<(usize, String, bool)>,
}

fn single_bar_line(l: &[char], at: usize) -> bool {
    let before = at.checked_sub(1).map(|i| l[i]);
    let after = l.get(at + 1).copied();
    !matches!(before, Some(':' | '|' | '[' | ']')) && !matches!(after, Some(':' | '|' | ']' | '[' | '0'..='9'))
}

fn middle_bars(tune: &str) -> Vec<MiddleBar> {
    let mut out = Vec::new();
    let mut in_body = false;
    for (li, line) in tune.lines().enumerate() {
        let l: Vec<char> = line.chars().collect();
        let field = l.len() >= 2 && l[1] == ':' && l[0].is_ascii_alphabetic() && !matches!(l.get(2), Some('|' | ':'));
        if field {
            in_body |= l[0] == 'K';
            continue;
        }
        if !in_body || line.contains('%') || line.contains('\\') {
            continue;
        }
        let bars: Vec<usize> = (0..l.len()).filter(|&i| l[i] == '|').collect();
        for w in bars.windows(2) {
            let (open, close) = (w[0], w[1]);
            if !single_bar_line(&l, open) || !single_bar_line(&l, close) {
                continue;
            }
            let prev_start = bars.iter().rev().find(|&&b| b < open).map_or(0, |b| b + 1);
            let next_end = bars.iter().find(|&&b| b > close).copied().unwrap_or(l.len());
            let has_note = |t: &Option<Vec<(usize, String, bool)>>| t.as_ref().is_some_and(|t| t.iter().any(|x| x.2));
            let (before, after) = (plain_bar(&l[prev_start..open]), plain_bar(&l[close + 1..next_end]));
            let this = plain_bar(&l[open + 1..close]);
            // Two tokens at least, so that deleting a note leaves music in the bar.
            if has_note(&before) && has_note(&after) && has_note(&this) && this.as_ref().is_some_and(|t| t.len() >= 2) {
                out.push(MiddleBar { line: li, open, close, tokens: this.unwrap() });
            }
        }
    }
    out
}

/// The tune's `M:` as (num, den) and `L:` as (1, den) from its header; None for `M:C`, `M:none`
/// and the like, or a tune that changes meter or unit in its body (left alone).
fn meter_and_unit(tune: &str) -> Option<((i64, i64), (i64, i64))> {
    let field =
        |k: &str| tune.lines().filter(|l| l.starts_with(k)).map(|l| l[2..].trim().to_string()).collect::<Vec<_>>();
    let (m, l) = (field("M:"), field("L:"));
    if m.len() != 1 || l.len() > 1 || tune.contains("[M:") || tune.contains("[L:") {
        return None;
    }
    let (a, b) = m[0].split_once('/')?;
    let meter = (a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?);
    let unit = match l.first() {
        Some(u) => {
            let (a, b) = u.split_once('/')?;
            (a.trim().parse().ok()?, b.trim().parse().ok()?)
        }
        // ABC 2.1: 1/16 below 3/4, else 1/8.
        None if 4 * meter.0 < 3 * meter.1 => (1, 16),
        None => (1, 8),
    };
    Some((meter, unit))
}

/// A valid tune's text, its middle bars, its meter and its unit note length.
type TuneWithBars = (String, Vec<MiddleBar>, (i64, i64), (i64, i64));

/// The valid real tunes with their middle bars, meter and unit.
fn valid_tunes_with_middle_bars() -> Vec<TuneWithBars> {
    let mut out = Vec::new();
    for t in real_tunes() {
        let r = check_text(&t);
        if r.len() != 1 || !r[0].valid {
            continue;
        }
        let Some((meter, unit)) = meter_and_unit(&t) else { continue };
        let bars = middle_bars(&t);
        if !bars.is_empty() {
            out.push((t, bars, meter, unit));
        }
    }
    out
}

#[test]
fn deleting_a_note_from_a_full_middle_bar_of_a_valid_tune_makes_that_bar_too_short() {
    let tunes = valid_tunes_with_middle_bars();
    let mut checked = 0;
    for (tune, bars, meter, unit) in &tunes {
        for (k, bar) in bars.iter().enumerate() {
            // Delete one note of the bar (a different one from bar to bar).
            let notes: Vec<&(usize, String, bool)> = bar.tokens.iter().filter(|t| t.2).collect();
            let (at, token, _) = notes[k % notes.len()];
            let mut lines: Vec<String> = tune.split('\n').map(String::from).collect();
            let l: Vec<char> = lines[bar.line].chars().collect();
            let start = bar.open + 1 + at;
            let end = start + token.chars().count();
            lines[bar.line] = l[..start].iter().chain(&l[end..]).collect();
            let edited = lines.join("\n");
            // The bar was full (the tune is valid and the bar neither opens nor closes a
            // section), so it is now short by the note: (M - note·L), in the meter's units
            // when that is a whole number of them, as the checker words it (src/abc/check.rs).
            let (n, d) = note_length(token);
            let (num, den) = (meter.0 * d * unit.1 - meter.1 * n * unit.0, meter.1 * d * unit.1);
            let g = gcd(num, den);
            let (num, den) = (num / g, den / g);
            let len = if (num * meter.1) % den == 0 {
                format!("{}/{}", num * meter.1 / den, meter.1)
            } else if den == 1 {
                num.to_string()
            } else {
                format!("{num}/{den}")
            };
            let want = format!("bar too short: {len} where M:{}/{} needs {}/{}", meter.0, meter.1, meter.0, meter.1);
            let r = check_text(&edited);
            assert_eq!(r.len(), 1);
            assert_eq!(
                r[0].problems.len(),
                1,
                "deleting {token:?} from line {}:\n{edited}\n{:?}",
                bar.line + 1,
                r[0].problems
            );
            let p = &r[0].problems[0];
            // The problem stands on the bar's line, at a column inside the bar.
            let (line, col, msg) = {
                let mut it = p.splitn(3, ':');
                let line: usize = it.next().unwrap().parse().unwrap();
                let col: usize = it.next().unwrap().parse().unwrap();
                (line, col, it.next().unwrap().trim_start().to_string())
            };
            assert_eq!(msg, want, "deleting {token:?} from line {}:\n{edited}", bar.line + 1);
            assert_eq!(line, bar.line + 1, "{p}");
            assert!(
                col > bar.open + 1 && col <= bar.close - token.chars().count() + 1,
                "{p}: bar spans {}..{}",
                bar.open,
                bar.close
            );
            checked += 1;
        }
    }
    eprintln!("{checked} notes deleted in {} valid tunes", tunes.len());
    assert!(
        tunes.len() >= 40 && checked >= 200,
        "only {checked} bars in {} tunes: the test would prove little",
        tunes.len()
    );
}

#[test]
fn a_repeat_left_open_at_the_end_of_a_valid_tune_is_never_closed_and_closing_it_is_valid() {
    let tunes = valid_tunes_with_middle_bars();
    let mut checked = 0;
    for (tune, bars, _, _) in &tunes {
        // Only tunes that end with a sectional bar line: a new strain after it leaves the old
        // last bar closing a section, so nothing but the new repeat can change.
        let body = tune.trim_end();
        if !(body.ends_with(":|") || body.ends_with("|]") || body.ends_with("||")) {
            continue;
        }
        let b = &bars[0];
        let line: Vec<char> = tune.lines().nth(b.line).unwrap().chars().collect();
        let bar: String = line[b.open + 1..b.close].iter().collect();
        let strain_line = body.split('\n').count() + 1;
        // A new strain of the same full bar twice, its repeat left open...
        let open = format!("{body}\n|:{bar}|{bar}|\n");
        let r = check_text(&open);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].problems, vec![format!("{strain_line}:1: repeat '|:' is never closed by ':|'")], "{open}");
        // ... and closed.
        let closed = format!("{body}\n|:{bar}|{bar}:|\n");
        assert_eq!(check_text(&closed)[0].problems, Vec::<String>::new(), "{closed}");
        checked += 1;
    }
    eprintln!("{checked} valid tunes given an open repeat");
    assert!(checked >= 30, "only {checked} tunes: the test would prove little");
}

#[test]
fn checking_real_tunes_joined_gives_their_reports_joined() {
    let tunes = real_tunes();
    let invalid = tunes.iter().filter(|t| check_text(t).iter().any(|r| !r.valid)).count();
    eprintln!("{} tunes, {invalid} invalid", tunes.len());
    assert!(invalid > 0, "no invalid tune: the join would not be tested with problems in it");
    // (A file's first piece may start with a file header before its X: line: fine as `a`.)
    for w in tunes.windows(2).filter(|w| w[1].starts_with("X:")) {
        assert_joined_reports(&w[0], &w[1]);
    }
    // Whole files joined: the reports of many tunes at once.
    let half = (tunes.len() / 2..).find(|&i| tunes[i].starts_with("X:")).unwrap();
    assert_joined_reports(&tunes[..half].concat(), &tunes[half..].concat());
}
