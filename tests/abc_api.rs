//! The ABC library API and the `check`/`midi` runners on small hand-written tunes: reports,
//! exit codes, file naming, atomic writes, error messages, and no panic on any input.

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
    let code = run_check(&CheckArgs { files, quiet }, &mut out).expect("check runs");
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
    assert_eq!(text.lines().last(), Some("2 tunes, 1 valid (50.0%)"));

    let (_, quiet) = check_output(vec![bad], true);
    assert!(!quiet.contains("\"Good\""), "{quiet}");

    let good = dir.path().join("good.abc");
    std::fs::write(&good, TWO_TUNES.split("\n\n").next().expect("first tune")).expect("write");
    let (code, text) = check_output(vec![good], false);
    assert_eq!(code, 0);
    assert_eq!(text.lines().last(), Some("1 tunes, 1 valid (100.0%)"));

    let mut out = Vec::new();
    let err = run_check(&CheckArgs { files: vec![dir.path().join("missing.abc")], quiet: false }, &mut out)
        .expect_err("missing file");
    assert!(err.to_string().contains("missing.abc"), "{err}");
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
    '>', '"', '-', '~', '.', '!', '+', '{', '}', '%', '\\', 'm', '7', '#', '&', 'y', '9', '0',
];

fn exercise(text: &str) {
    let reports = check_text(text);
    for r in &reports {
        assert_eq!(r.valid, r.problems.is_empty());
    }
    if let Ok(t) = parse_tune(text) {
        let _ = tune_to_midi(&t);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Random bytes never panic the parser, the checker or the MIDI writer.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    /// Random ABC-ish text after a valid header never panics either.
    #[test]
    fn random_abc_never_panics(
        header in prop::sample::select(vec!["X:1\nK:G\n", "X:1\nM:6/8\nY:ABA\nK:D\nP:A\n", "X:2\nM:2/4\nL:1/16\nQ:1/4=100\nK:Am\n", ""]),
        body in proptest::collection::vec(prop::sample::select(ABC_CHARS), 0..300),
    ) {
        let text: String = header.chars().chain(body).collect();
        exercise(&text);
    }
}
