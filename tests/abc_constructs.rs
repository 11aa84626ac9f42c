//! The tune body of ABC 2.1, construct by construct: every tune in `tests/abc/*.abc` (written for
//! this project from the standard) is checked (valid, readable with musical findings, or
//! unreadable, with the findings it must report) and played (its melody against the event list
//! worked out by hand in its `% events:` lines). See `tests/abc/README.md` for the format.

use std::path::{Path, PathBuf};

use folklstm::abc::frac::Frac;
use folklstm::abc::parse::{file_header, parse_lines_in};
use folklstm::abc::{check_text, render_events, split_tunes};

/// Every construct of the issue that the folder must exercise, each in at least one tune.
const CONSTRUCTS: &[&str] = &[
    "bar-lines",
    "repeats",
    "endings",
    "ending-lists",
    "decorations-short",
    "decorations-bang",
    "decorations-plus",
    "user-symbols",
    "file-header",
    "order-of-constructs",
    "grace-notes",
    "acciaccatura",
    "ties",
    "ties-across-bars",
    "slurs",
    "dotted-ties-slurs",
    "broken-rhythm",
    "tuplets",
    "chords",
    "unisons",
    "rests",
    "multi-bar-rests",
    "inline-fields",
    "continuation",
    "comments-directives",
    "lyrics",
    "line-breaks",
    "meter-C",
    "meter-C|",
    "meter-none",
    "L-1/16",
    "voices",
    "pickup",
    "syntax-errors",
    "musical-findings",
];

/// What a tune's `%` lines say it expects.
#[derive(Debug, Default)]
struct Expected {
    constructs: Vec<String>,
    verdict: String,
    findings: Vec<String>,
    /// (MIDI pitch, onset, duration), quarter notes.
    events: Vec<(u8, Frac, Frac)>,
    has_events: bool,
}

fn tune_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/abc");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "abc"))
        .collect();
    files.sort();
    files
}

/// `3/2` or `5` as a fraction.
fn frac(s: &str) -> Frac {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let n: i128 = n.parse().unwrap_or_else(|_| panic!("bad number '{s}'"));
    let d: i128 = d.parse().unwrap_or_else(|_| panic!("bad number '{s}'"));
    Frac::new(n, d).unwrap_or_else(|| panic!("bad fraction '{s}'"))
}

/// MIDI key of a scientific pitch name: `C4` 60, `C#5` 73, `Bb3` 58.
fn pitch(name: &str) -> u8 {
    let mut chars = name.chars();
    let letter = chars.next().unwrap_or_else(|| panic!("empty pitch name"));
    let base: i32 = match letter {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => panic!("bad pitch name '{name}'"),
    };
    let rest = chars.as_str();
    let (alter, octave) = match rest.strip_prefix('#') {
        Some(o) => (1, o),
        None => match rest.strip_prefix('b') {
            Some(o) => (-1, o),
            None => (0, rest),
        },
    };
    let octave: i32 = octave.parse().unwrap_or_else(|_| panic!("bad octave in '{name}'"));
    u8::try_from(12 * (octave + 1) + base + alter).unwrap_or_else(|_| panic!("pitch out of range '{name}'"))
}

/// `NOTE@ONSET+LENGTH`.
fn event(token: &str) -> (u8, Frac, Frac) {
    let (note, times) = token.split_once('@').unwrap_or_else(|| panic!("bad event '{token}'"));
    let (onset, length) = times.split_once('+').unwrap_or_else(|| panic!("bad event '{token}'"));
    (pitch(note), frac(onset), frac(length))
}

fn expected(lines: &[&str]) -> Expected {
    let mut e = Expected::default();
    for l in lines.iter().filter_map(|l| l.strip_prefix('%')).map(str::trim) {
        if let Some(v) = l.strip_prefix("construct:") {
            e.constructs.extend(v.split(',').map(|c| c.trim().to_string()));
        } else if let Some(v) = l.strip_prefix("expect:") {
            e.verdict = v.trim().to_string();
        } else if let Some(v) = l.strip_prefix("finding:") {
            e.findings.push(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("events:") {
            e.has_events = true;
            e.events.extend(v.split_whitespace().map(event));
        }
    }
    e.events.sort();
    e
}

/// A finding `L:C: text` with L counted from the tune's first line, as the checker writes it
/// (lines of the whole file).
fn in_file_lines(finding: &str, first_line: usize) -> String {
    let mut parts = finding.splitn(3, ':');
    match (parts.next().map(str::parse::<usize>), parts.next(), parts.next()) {
        (Some(Ok(line)), Some(col), Some(text)) if col.trim().parse::<usize>().is_ok() => {
            format!("{}:{}:{text}", line + first_line - 1, col.trim())
        }
        _ => finding.to_string(),
    }
}

/// One line per tune: what failed, or nothing.
fn check_tune(file: &Path, text: &str, k: usize, covered: &mut Vec<String>, tally: &mut [usize; 3]) -> Vec<String> {
    let tunes = split_tunes(text);
    let tt = &tunes[k];
    let name = format!("{} tune {}", file.file_name().and_then(|n| n.to_str()).unwrap_or("?"), k + 1);
    let exp = expected(&tt.lines);
    let mut failures = Vec::new();
    if exp.constructs.is_empty() || exp.verdict.is_empty() {
        return vec![format!("{name}: no '% construct:' or '% expect:' line")];
    }
    let report = &check_text(text)[k];
    tally[0] += 1;
    tally[1] += report.readable as usize;
    tally[2] += report.valid as usize;
    let verdict = match (report.valid, report.readable) {
        (true, _) => "valid",
        (false, true) => "readable",
        (false, false) => "unreadable",
    };
    if verdict != exp.verdict {
        failures.push(format!("{name}: expected {}, checker says {verdict}: {:?}", exp.verdict, report.problems));
    }
    for f in &exp.findings {
        let want = in_file_lines(f, tt.first_line);
        if !report.problems.iter().any(|p| p.contains(&want)) {
            failures.push(format!("{name}: no finding '{want}' in {:?}", report.problems));
        }
    }
    if exp.verdict != "unreadable" {
        if !exp.has_events {
            failures.push(format!("{name}: a readable tune needs '% events:'"));
        }
        let (tune, problems) = parse_lines_in(&tt.lines, tt.first_line, tt.index, &file_header(text));
        assert!(problems.is_empty(), "{name}: {problems:?}");
        match render_events(&tune) {
            Ok(perf) => {
                let mut got: Vec<(u8, Frac, Frac)> =
                    perf.melody.iter().map(|e| (e.pitch, e.onset, e.duration)).collect();
                got.sort();
                if got != exp.events {
                    let show = |v: &[(u8, Frac, Frac)]| {
                        v.iter().map(|(p, o, d)| format!("{p}@{o}+{d}")).collect::<Vec<_>>().join(" ")
                    };
                    failures.push(format!(
                        "{name}: melody differs\n  expected {}\n  played   {}",
                        show(&exp.events),
                        show(&got)
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: does not play: {e}")),
        }
    }
    if failures.is_empty() {
        covered.extend(exp.constructs);
    }
    failures
}

/// Every tune meets its expectations, and every construct is exercised by a tune that does.
#[test]
fn every_construct_tune_checks_and_plays_as_written_down() {
    let files = tune_files();
    assert!(files.len() >= 10, "expected the construct tunes in tests/abc, found {}", files.len());
    let mut covered: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    let mut tally = [0usize; 3];
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for k in 0..split_tunes(&text).len() {
            failures.extend(check_tune(file, &text, k, &mut covered, &mut tally));
        }
    }
    println!("construct tunes: {} tunes, {} readable, {} valid", tally[0], tally[1], tally[2]);
    for c in CONSTRUCTS {
        let n = covered.iter().filter(|x| x == c).count();
        println!("  {c:<20} {n} tune(s) passing");
    }
    let unknown: Vec<&String> = covered.iter().filter(|c| !CONSTRUCTS.contains(&c.as_str())).collect();
    assert!(unknown.is_empty(), "constructs not in the list: {unknown:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let missing: Vec<&&str> = CONSTRUCTS.iter().filter(|c| !covered.iter().any(|x| x == *c)).collect();
    assert!(missing.is_empty(), "constructs no passing tune exercises: {missing:?}");
}

/// The harness itself can fail: a wrong event list or a wrong verdict is caught.
#[test]
fn a_wrong_expectation_is_caught() {
    let text = "X:1\n% construct: ties\n% expect: valid\n% events: C5@0+2 C5@2+2\nM:2/4\nL:1/8\nK:C\nc4-|c4|]\n";
    let (mut covered, mut tally) = (Vec::new(), [0; 3]);
    let failures = check_tune(Path::new("inline.abc"), text, 0, &mut covered, &mut tally);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("melody differs"), "{failures:?}");
    assert!(covered.is_empty());
    let right = text.replace("C5@0+2 C5@2+2", "C5@0+4");
    assert!(check_tune(Path::new("inline.abc"), &right, 0, &mut covered, &mut tally).is_empty());
    let wrong_verdict = right.replace("expect: valid", "expect: unreadable");
    let failures = check_tune(Path::new("inline.abc"), &wrong_verdict, 0, &mut covered, &mut tally);
    assert!(failures.iter().any(|f| f.contains("expected unreadable")), "{failures:?}");
}
