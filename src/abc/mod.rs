//! ABC notation: parse and check tunes, write MIDI.
//!
//! The pipeline, one module per stage:
//! - [`parse`]: text to [`Tune`] (header fields and body elements, with line and column);
//! - [`timeline`]: a tune in written order with pitches and durations resolved;
//! - [`check`]: is the tune well formed (headers, bar lengths, repeats, closing bar line);
//! - [`play`]: performance order (parts, repeats, endings, ties) as timed notes;
//! - [`midi`]: those notes as a standard MIDI file;
//! - [`guide`]: the incremental state that says which next characters keep a tune valid
//!   (guided sampling).
//!
//! [`transpose`] rewrites a tune in another key (checked against the timeline), for training
//! on transposed copies.
//!
//! Beside the pipeline: [`judge`] measures tunes beyond validity (structure, originality against
//! a corpus, style), and [`prime`] writes a tune's header in a corpus's layout for the sampler.
//!
//! [`check_text`] and [`write_midi`] are the entry points the CLI uses ([`cli`]).

pub mod ast;
pub mod check;
pub mod cli;
mod error;
pub mod frac;
pub mod guide;
pub mod judge;
pub mod midi;
pub mod music;
pub mod parse;
pub mod play;
pub mod prime;
pub mod reflow;
pub mod timeline;
pub mod transpose;

use std::path::{Path, PathBuf};

pub use ast::{Pos, Problem, Tune};
pub use error::AbcError;
pub use parse::{TuneText, split_tunes};
pub use play::{NoteEvent, Performance};

/// The checker's verdict on one tune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TuneReport {
    /// Position of the tune in the text, 0-based.
    pub index: usize,
    /// The `X:` number, when present and numeric.
    pub number: Option<u32>,
    /// The first `T:` title.
    pub title: Option<String>,
    /// True when the tune parses and is well formed (no problems).
    pub valid: bool,
    /// True when the tune can be read: no syntax error (unknown symbol, unclosed chord,
    /// unreadable field value...). A readable tune may still have musical findings (a bar's
    /// length against the meter, a repeat never closed, no closing bar line).
    pub readable: bool,
    /// Human-readable problems, each starting with `line:col:` where it applies.
    pub problems: Vec<String>,
}

/// Parse, timeline and checker problems of one tune, sorted by position (whole-tune problems
/// last), and whether the tune is readable: the parser's and the timeline's problems are
/// syntax errors, the checker's are musical findings.
pub(crate) fn all_problems(
    tt: &TuneText<'_>,
    file_fields: &[ast::Field],
) -> (Tune, timeline::Timeline, Vec<Problem>, bool) {
    let (tune, mut problems) = parse::parse_lines_in(&tt.lines, tt.first_line, tt.index, file_fields);
    let (tl, more) = timeline::build(&tune);
    problems.extend(more);
    let readable = problems.is_empty();
    problems.extend(check::check(&tune, &tl));
    problems.sort_by_key(|p| (p.pos.line == 0, p.pos.line, p.pos.col));
    (tune, tl, problems, readable)
}

/// Parses and checks every tune in `text` (tunes start at lines beginning with `X:`; text
/// with no `X:` line is one tune; a file header before the first `X:` serves every tune).
pub fn check_text(text: &str) -> Vec<TuneReport> {
    let file_fields = parse::file_header(text);
    split_tunes(text)
        .iter()
        .map(|tt| {
            let (tune, _, problems, readable) = all_problems(tt, &file_fields);
            TuneReport {
                index: tune.index,
                number: tune.number,
                title: tune.title.clone(),
                valid: problems.is_empty(),
                readable,
                problems: problems.iter().map(|p| p.to_string()).collect(),
            }
        })
        .collect()
}

/// How many tunes `text` holds and how many of them the checker calls valid, e.g. for the
/// sampler's one-line report (format it with [`cli::summary_line`]).
pub fn count_valid(text: &str) -> (usize, usize) {
    let reports = check_text(text);
    let valid = reports.iter().filter(|r| r.valid).count();
    (reports.len(), valid)
}

fn parse_error(tune: &Tune, p: &Problem) -> AbcError {
    AbcError::Parse {
        tune: tune.number,
        index: tune.index,
        line: p.pos.line,
        col: p.pos.col,
        message: p.message.clone(),
    }
}

/// Parses the first tune in `text`; the first syntax problem, if any, is the error (with
/// tune number, line and column).
pub fn parse_tune(text: &str) -> Result<Tune, AbcError> {
    let tunes = split_tunes(text);
    let tt = tunes.first().ok_or(AbcError::NoTunes)?;
    parse_text_strict(tt, &parse::file_header(text))
}

fn parse_text_strict(tt: &TuneText<'_>, file_fields: &[ast::Field]) -> Result<Tune, AbcError> {
    let (tune, problems) = parse::parse_lines_in(&tt.lines, tt.first_line, tt.index, file_fields);
    match problems.first() {
        Some(p) => Err(parse_error(&tune, p)),
        None => Ok(tune),
    }
}

/// Plays a tune out (part order, repeats, endings, ties) into timed melody and chord notes.
/// Fails on unreadable field values (`K:`, `M:`, `L:`, `Q:`) and notes outside MIDI range.
pub fn render_events(tune: &Tune) -> Result<Performance, AbcError> {
    let (tl, problems) = timeline::build(tune);
    if let Some(p) = problems.first() {
        return Err(parse_error(tune, p));
    }
    play::perform(&tl).map_err(AbcError::Midi)
}

/// The bytes of a standard MIDI file for one tune (melody track and chord track).
pub fn tune_to_midi(tune: &Tune) -> Result<Vec<u8>, AbcError> {
    let perf = render_events(tune)?;
    let title = tune.title.clone().unwrap_or_default();
    midi::midi_bytes(&perf, &title)
}

/// Writes a MIDI file for each tune of `text` that parses and plays (numbered as
/// [`write_midi`] does when there are several); tunes that do not are skipped and returned with
/// the reason, so one bad generated tune does not cost the others.
pub fn write_midi_lenient(text: &str, out: &Path) -> (Vec<PathBuf>, Vec<(usize, AbcError)>) {
    let tunes = split_tunes(text);
    let file_fields = parse::file_header(text);
    let many = tunes.len() > 1;
    remove_stale_midi_temps(out);
    let (mut written, mut skipped) = (Vec::new(), Vec::new());
    for tt in &tunes {
        let path = if many { numbered(out, tt.index + 1) } else { out.to_path_buf() };
        let result = parse_text_strict(tt, &file_fields)
            .and_then(|t| tune_to_midi(&t))
            .and_then(|bytes| Ok(crate::files::write_atomic(&path, &bytes)?));
        match result {
            Ok(()) => written.push(path),
            Err(e) => skipped.push((tt.index + 1, e)),
        }
    }
    (written, skipped)
}

/// Removes the temporary files that a killed `midi` run left beside `out` (for `out` itself or
/// its numbered siblings), so they do not pile up; see [`crate::files::remove_stale_temp_files`].
fn remove_stale_midi_temps(out: &Path) {
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = out.extension().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "mid".into());
    let ours = |name: &str| {
        out.file_name().is_some_and(|f| f.to_string_lossy() == name)
            || name
                .strip_prefix(&format!("{stem}-"))
                .and_then(|r| r.strip_suffix(&format!(".{ext}")))
                .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
    };
    crate::files::remove_stale_temp_files(dir, ours);
}

/// `out` with `-k` before its extension: `song.mid` -> `song-2.mid` (`.mid` when it has none).
fn numbered(out: &Path, k: usize) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "tune".into());
    let ext = out.extension().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "mid".into());
    out.with_file_name(format!("{stem}-{k}.{ext}"))
}

/// Writes one MIDI file per tune (OUT-1.mid, OUT-2.mid... by position when several; exactly
/// `out` when one, or when `tune` picks one by its X: number). Returns the paths. Every tune
/// is rendered before anything is written, so a bad tune leaves no partial set behind.
pub fn write_midi(text: &str, out: &Path, tune: Option<u32>) -> Result<Vec<PathBuf>, AbcError> {
    let texts = split_tunes(text);
    if texts.is_empty() {
        return Err(AbcError::NoTunes);
    }
    let file_fields = parse::file_header(text);
    let tunes: Vec<Tune> = match tune {
        None => texts.iter().map(|tt| parse_text_strict(tt, &file_fields)).collect::<Result<_, _>>()?,
        Some(wanted) => {
            // Only the tune asked for has to parse cleanly.
            let numbers: Vec<Option<u32>> =
                texts.iter().map(|tt| parse::parse_lines(&tt.lines, tt.first_line, tt.index).0.number).collect();
            let Some(k) = numbers.iter().position(|n| *n == Some(wanted)) else {
                let available: Vec<String> = numbers.iter().flatten().map(|n| n.to_string()).collect();
                return Err(AbcError::NoSuchTune {
                    wanted,
                    available: if available.is_empty() { "no numbers".into() } else { available.join(", ") },
                });
            };
            vec![parse_text_strict(&texts[k], &file_fields)?]
        }
    };
    let single = tunes.len() == 1;
    let mut files = Vec::with_capacity(tunes.len());
    for t in &tunes {
        let path = if single { out.to_path_buf() } else { numbered(out, t.index + 1) };
        files.push((path, tune_to_midi(t)?));
    }
    remove_stale_midi_temps(out);
    let mut written = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        crate::files::write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}
