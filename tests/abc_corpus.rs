//! The ABC tools against real data: the checker on the cleaned Nottingham Music Database, and
//! `folklstm midi` against the melody MIDI files the edition's editors rendered from the same
//! ABC files.
//!
//! The corpus is not in the repository. It is found where every other test looks for it (see
//! `common::shared_dir`): `$FOLKLSTM_SHARED/data`, else `<crate>/../shared/data`; without it these
//! tests record the skip and pass, unless `FOLKLSTM_REQUIRE_DATA=1` (as in CI), where they fail.

mod common;

use std::path::{Path, PathBuf};

use folklstm::abc::check_text;
use folklstm::abc::cli::{MidiArgs, run_midi};
use midly::{MidiMessage, Smf, Timing, TrackEventKind};

/// The corpus folder, or `None` (with the skip recorded) when it is absent and not required.
fn data_dir() -> Option<PathBuf> {
    let dir = common::shared_dir("data")?;
    if dir.join("nottingham-hpps.abc").is_file() {
        return Some(dir);
    }
    common::skip(common::Need::Data, &format!("{} lacks nottingham-hpps.abc", dir.display()));
    None
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The checker must call at least 98% of these cleaned, real tunes valid.
#[test]
fn checker_accepts_the_nottingham_corpus() {
    let Some(dir) = data_dir() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("nottingham-") && n.ends_with(".abc"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "expected the five nottingham-*.abc files");
    let (mut total, mut valid) = (0, 0);
    for f in &files {
        let reports = check_text(&read(f));
        let v = reports.iter().filter(|r| r.valid).count();
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        println!("{name}: {} tunes, {v} valid", reports.len());
        for r in reports.iter().filter(|r| !r.valid) {
            println!(
                "  invalid X:{} {:?}: {}",
                r.number.map(|n| n.to_string()).unwrap_or_default(),
                r.title.as_deref().unwrap_or(""),
                r.problems.join("; ")
            );
        }
        total += reports.len();
        valid += v;
    }
    let pct = 100.0 * valid as f64 / total as f64;
    println!("overall: {total} tunes, {valid} valid ({pct:.1}%)");
    assert!(total >= 500, "expected the edition's 534 tunes, found {total}");
    assert!(pct >= 98.0, "only {pct:.1}% valid");
}

/// Melody of a MIDI file as (pitch, onset in quarter notes from the first note), sorted by
/// onset then pitch. `tracks`: which tracks hold the melody (`None`: all).
fn melody(bytes: &[u8], tracks: Option<&[usize]>) -> Vec<(u8, f64)> {
    let smf = Smf::parse(bytes).expect("valid MIDI");
    let tpq = match smf.header.timing {
        Timing::Metrical(t) => t.as_int() as f64,
        Timing::Timecode(..) => panic!("timecode MIDI"),
    };
    let mut notes: Vec<(u64, u8)> = Vec::new();
    for (k, track) in smf.tracks.iter().enumerate() {
        if tracks.is_some_and(|t| !t.contains(&k)) {
            continue;
        }
        let mut now = 0u64;
        for ev in track {
            now += ev.delta.as_int() as u64;
            if let TrackEventKind::Midi { message: MidiMessage::NoteOn { key, vel }, .. } = ev.kind
                && vel.as_int() > 0
            {
                notes.push((now, key.as_int()));
            }
        }
    }
    notes.sort();
    let t0 = notes.first().map(|n| n.0).unwrap_or(0);
    notes.iter().map(|&(t, p)| (p, (t - t0) as f64 / tpq)).collect()
}

/// Onsets may differ by this much (in quarter notes) and still count as equal: the editors'
/// files round onsets to 1/1024 of a quarter (a triplet's 1/3 becomes 341/1024) and ours to
/// 1/960, so two renderings of the same time differ by under 1/1000; any real difference
/// (the smallest note in these tunes is 1/8 of a quarter, a sixteenth-triplet step 1/6) is
/// far above 1/512.
const ONSET_TOLERANCE: f64 = 1.0 / 512.0;

/// First index where two melodies differ, `None` when they match.
fn first_difference(ours: &[(u8, f64)], theirs: &[(u8, f64)]) -> Option<usize> {
    let n = ours.len().min(theirs.len());
    for i in 0..n {
        if ours[i].0 != theirs[i].0 || (ours[i].1 - theirs[i].1).abs() > ONSET_TOLERANCE {
            return Some(i);
        }
    }
    (ours.len() != theirs.len()).then_some(n)
}

fn show(m: &[(u8, f64)], i: usize) -> String {
    m.iter().skip(i.saturating_sub(2)).take(6).map(|(p, t)| format!("{p}@{t:.3}")).collect::<Vec<_>>().join(" ")
}

/// `folklstm midi` on every tune that has an editors' rendering: at least 88 of the 194
/// melodies must match exactly. The rest differ by the editors' converter's five departures
/// from ABC 2.1, which we do not copy (see the quirk tests in src/abc/play.rs).
#[test]
fn midi_matches_the_editors_rendering() {
    let Some(dir) = data_dir() else { return };
    let out = tempfile::tempdir().expect("temp dir");
    let mut refs: Vec<(String, u32, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir.join("midi-melody")).expect("midi-melody folder") {
        let path = entry.expect("dir entry").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let split = stem.find(|c: char| c.is_ascii_digit()).unwrap_or(stem.len());
        let (name, num) = stem.split_at(split);
        if let Ok(x) = num.parse::<u32>() {
            refs.push((name.to_string(), x, path.clone()));
        }
    }
    refs.sort();
    assert_eq!(refs.len(), 194, "expected 194 reference MIDI files");
    let verbose = std::env::var("FOLKLSTM_PEER_VERBOSE").is_ok();
    let mut matched = 0;
    let mut differ = Vec::new();
    for (name, x, path) in &refs {
        let output = out.path().join(format!("{name}{x}.mid"));
        let args =
            MidiArgs { input: dir.join(format!("nottingham-{name}.abc")), output: output.clone(), tune: Some(*x) };
        let written = run_midi(&args).unwrap_or_else(|e| panic!("{name} X:{x}: {e}"));
        assert_eq!(written, vec![output.clone()]);
        let ours = melody(&std::fs::read(&output).expect("our MIDI"), Some(&[0]));
        let theirs = melody(&std::fs::read(path).expect("their MIDI"), None);
        match first_difference(&ours, &theirs) {
            None => matched += 1,
            Some(i) => {
                if verbose {
                    println!(
                        "{name}{x}: differs at note {i} (ours {} notes, theirs {})\n  ours:   {}\n  theirs: {}",
                        ours.len(),
                        theirs.len(),
                        show(&ours, i),
                        show(&theirs, i)
                    );
                }
                differ.push(format!("{name}{x}"));
            }
        }
    }
    println!("exact melody matches: {matched} of {}", refs.len());
    println!("differ: {}", differ.join(" "));
    assert!(matched >= 88, "only {matched} of 194 match");
}
