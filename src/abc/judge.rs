//! How good is a tune, beyond "it parses"? The measures that people who run folk-tune
//! generation contests and plagiarism checks use, computed for each tune and summed over a
//! batch:
//! - **valid**: the checker's verdict ([`super::check_text`]);
//! - **structure**: the parts (from `P:` in the body, else from repeat marks and double bars),
//!   bars per part, the form (`AABB`), whether the part order promised by `Y:`/`P:` is
//!   delivered, whether the repeats are balanced, whether the last note is the tonic of `K:`;
//! - **originality** against a corpus ([`CorpusIndex`]): the nearest corpus tune and its
//!   similarity (edit distance over the note sequence), the share of 4-bar windows found
//!   verbatim in the corpus, whether the first two full bars are a corpus tune's, and a
//!   near-copy verdict;
//! - **style**: meter, key and mode, length in bars; the batch's distributions are compared
//!   with the corpus's by total variation distance.
//!
//! # The note sequence
//! A tune is compared with another as the sequence of its sounds in written order: each note or
//! chord is one symbol (its highest pitch, as MIDI key, with the written key signature and
//! accidentals applied, and its time to the next sound), each rest one symbol. Chord symbols,
//! decorations, grace notes, spaces, line breaks, bar-line variants and repeat marks are not
//! symbols, so two transcriptions of the same melody that differ in those compare equal.
//! Similarity is `1 - d / max(n, m)`, with `d` the edit distance (insert, delete, substitute,
//! each cost 1) between sequences of `n` and `m` symbols.
//!
//! # The near-copy threshold
//! A tune is a near copy when its similarity to the nearest corpus tune is at least
//! [`NEAR_COPY_SIMILARITY`] (0.70) or at least [`NEAR_COPY_WINDOWS`] (half) of its 4-bar windows
//! occur verbatim in the corpus. Calibration on the 534 tunes of the five Nottingham files in
//! `../shared/data`, each against all the others (`tests/judge.rs` holds it): the nearest other
//! tune has median similarity 0.29 and 90th percentile 0.45; above 0.65 there is a gap up to
//! 0.77, and every pair above the gap is two versions of one tune (the same title twice, or
//! known relatives such as "Red Cigar" and "Reg's Cigar"), 25 tunes in all. A tune with every
//! tenth note changed keeps a similarity of at least 0.88 to its original. The 0.70 line sits in
//! the gap, below every edited copy and above every pair of distinct tunes.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::ast::{ElementKind, Field, Problem, Tune};
use super::frac::Frac;
use super::music::Meter;
use super::parse::{self, TuneText};
use super::timeline::{StepKind, Timeline};

/// Similarity to the nearest corpus tune at or above which a tune is a near copy.
pub const NEAR_COPY_SIMILARITY: f64 = 0.70;
/// Share of 4-bar windows found verbatim in the corpus at or above which a tune is a near copy.
pub const NEAR_COPY_WINDOWS: f64 = 0.5;

/// How `folklstm sample` marks what it wrote: a comment line (the checker skips `%` lines, in a
/// tune and before the first) that [`provenance`] reads back, e.g.
/// `% folklstm sample: guided, temperature 1, rng-seed 4`.
pub const PROVENANCE: &str = "% folklstm sample: ";

/// The provenance line `sample` writes first: `guided` (the guide masked the characters that
/// would break the tune) or `free`, and the draw settings that reproduce the tunes.
pub fn provenance_line(guided: bool, temperature: f32, top_k: Option<usize>, rng_seed: u64) -> String {
    let top_k = top_k.map(|k| format!(", top-k {k}")).unwrap_or_default();
    let how = if guided { "guided" } else { "free" };
    format!("{PROVENANCE}{how}, temperature {temperature}{top_k}, rng-seed {rng_seed}")
}

/// What a text's first provenance line says (after [`PROVENANCE`]): `None` when it has none,
/// e.g. a corpus file or tunes sampled before `sample` wrote one.
pub fn provenance(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix(PROVENANCE)).map(str::trim_end)
}
/// Bars in a window of the verbatim-window measure.
pub const WINDOW_BARS: usize = 4;
/// Notes in the n-grams that pick the candidates for the exact edit distance.
const GRAM: usize = 5;
/// Candidates (corpus tunes sharing the most n-grams) whose edit distance is computed exactly.
const CANDIDATES: usize = 12;

/// A key as the corpus would write it (`G`, `Am`, `Dmix`) and its parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyName {
    /// Canonical spelling: tonic, then `m` for minor or the mode's three letters (`Edor`).
    pub name: String,
    /// Pitch class of the tonic, 0 = C.
    pub tonic: u8,
    /// `major`, `minor`, `dorian`, `mixolydian`, `phrygian`, `lydian` or `locrian`.
    pub mode: &'static str,
}

impl KeyName {
    /// Reads the tonic and mode of a `K:` value (`G`, `Am`, `D mix`, `F#m`, `Bb major`);
    /// `None` for keys with no tonic (`none`, bagpipe keys, clef-only values).
    pub fn parse(value: &str) -> Option<KeyName> {
        let v = value.trim();
        let mut chars = v.chars();
        let letter = chars.next().filter(char::is_ascii_uppercase)?;
        // The tonic's pitch class, from the one letter-to-semitone table (`None` past G).
        let natural = super::music::midi_pitch(letter, 0, 0)?;
        let rest = chars.as_str();
        let (acc, acc_text, rest) = if let Some(r) = rest.strip_prefix('#') {
            (1, "#", r)
        } else if let Some(r) = rest.strip_prefix('b') {
            (-1, "b", r)
        } else {
            (0, "", rest)
        };
        let mode_word = rest.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let (mode, suffix) = match mode_word.as_str() {
            "" => ("major", ""),
            "m" => ("minor", "m"),
            w if w.starts_with('=') || w.starts_with('^') || w.starts_with('_') => ("major", ""),
            w if w.contains('=') => ("major", ""),
            w => match w.get(..3) {
                Some("maj") | Some("ion") => ("major", ""),
                Some("min") | Some("aeo") => ("minor", "m"),
                Some("dor") => ("dorian", "dor"),
                Some("mix") => ("mixolydian", "mix"),
                Some("phr") => ("phrygian", "phr"),
                Some("lyd") => ("lydian", "lyd"),
                Some("loc") => ("locrian", "loc"),
                _ => return None,
            },
        };
        Some(KeyName { name: format!("{letter}{acc_text}{suffix}"), tonic: (natural + acc).rem_euclid(12) as u8, mode })
    }
}

/// One part of a tune as written: from a `P:` label, a start repeat `|:`, a double bar or the
/// end of a repeat to the next.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section {
    /// Its letter in the form: the `P:` label, else `A`, `B`, ... in order of appearance (a
    /// section that repeats an earlier one's notes gets that one's letter).
    pub label: String,
    /// Bars played on the first pass (first endings only), counting a pickup and the bar it
    /// completes as one, and a lone pickup as none: `8` for a usual jig part.
    pub bars: f64,
    /// Closed by a repeat sign: played twice.
    pub repeated: bool,
    /// Similarity of its notes to the most similar earlier section (None for the first).
    pub like_earlier: Option<f64>,
}

/// What the judge reads from one tune, corpus-independent.
#[derive(Clone, Debug, Serialize)]
pub struct Features {
    /// Position in its file, 0-based.
    pub index: usize,
    /// `X:` number.
    pub number: Option<u32>,
    /// First `T:`.
    pub title: Option<String>,
    /// No syntax error: the checker's findings, if any, are musical ones.
    pub readable: bool,
    /// The checker's verdict.
    pub valid: bool,
    /// The checker's first problem, if any.
    pub first_problem: Option<String>,
    /// Where an invalid tune first breaks ([`Breakage`]); `None` for a valid tune.
    pub breaks: Option<Breakage>,
    /// Problems found by the checker.
    pub problems: usize,
    /// `M:` as written in the header (`6/8`), if any.
    pub meter: Option<String>,
    /// `K:` of the header.
    pub key: Option<KeyName>,
    /// Length in bars (written order, first endings).
    pub bars: f64,
    /// The parts.
    pub sections: Vec<Section>,
    /// The form, one letter per section played (`AABB`).
    pub form: String,
    /// Part order promised by `Y:` (or a header `P:`), when there is one.
    pub promised_order: Option<String>,
    /// Every part of the promised order is written in the body.
    pub order_delivered: Option<bool>,
    /// Every start repeat `|:` is closed by an end repeat before the next start or the end.
    pub repeats_balanced: bool,
    /// The last written note is the tonic of the key in force (None: no note, or no tonic).
    pub ends_on_tonic: Option<bool>,
    /// Note symbols (see the module docs), written order.
    #[serde(skip)]
    pub notes: Vec<u32>,
    /// Hash of each bar's notes, written order (bars with no notes left out).
    #[serde(skip)]
    bar_hashes: Vec<u64>,
    /// Hash of the first two full bars.
    #[serde(skip)]
    opening: Option<u64>,
}

impl Features {
    /// A short name for tables: `X:12 "Title"`, or `#k` by position.
    pub fn name(&self) -> String {
        let n = self.number.map(|n| format!("X:{n}")).unwrap_or_else(|| format!("#{}", self.index + 1));
        match &self.title {
            Some(t) => format!("{n} \"{t}\""),
            None => n,
        }
    }
}

fn note_symbol(pitch: u8, advance: Frac) -> u32 {
    // Time in 1/192 of a whole note: exact for every length down to 64th-note triplets.
    let t = (advance.to_f64() * 192.0).round().clamp(0.0, 65_535.0) as u32;
    ((pitch as u32) << 16) | t
}

fn hash_symbols(symbols: &[u32]) -> u64 {
    symbols.iter().fold(crate::hash::FNV1A_START, |h, s| crate::hash::fnv1a(h, &s.to_le_bytes()))
}

/// The bar length of a meter in whole notes (free meter: none).
pub(crate) fn bar_length(m: Option<Meter>) -> Option<Frac> {
    m.and_then(|m| m.bar).filter(|b| b.is_positive())
}

#[derive(Default)]
struct OpenSection {
    label: Option<String>,
    bars: f64,
    repeated: bool,
    notes: Vec<u32>,
    has_music: bool,
    /// First and last line of its notes and rests (later endings included).
    lines: Option<(usize, usize)>,
}

/// Sections, bar hashes and note symbols of a timeline.
struct Walk {
    sections: Vec<(OpenSection, Vec<u32>)>,
    notes: Vec<u32>,
    bars: Vec<(u64, Frac)>,
    last_pitches: Vec<u8>,
    balanced: bool,
}

fn walk(tl: &Timeline) -> Walk {
    let mut w =
        Walk { sections: Vec::new(), notes: Vec::new(), bars: Vec::new(), last_pitches: Vec::new(), balanced: true };
    let mut cur = OpenSection::default();
    let mut meter_bar = bar_length(tl.meter);
    let mut later_ending = false;
    let mut bar_notes: Vec<u32> = Vec::new();
    let mut bar_time = Frac::ZERO;
    let mut open_repeat = false;
    let mut music_since_open = false;
    // A section with no music yet (a `|:` just after `P:B`) keeps its label for the next.
    let close = |cur: &mut OpenSection, w: &mut Walk| {
        let mut c = std::mem::take(cur);
        if c.has_music {
            let notes = c.notes.clone();
            w.sections.push((c, notes));
        } else {
            cur.label = c.label.take();
        }
    };
    let end_bar = |bar_notes: &mut Vec<u32>, bar_time: &mut Frac, w: &mut Walk| {
        if !bar_notes.is_empty() {
            w.bars.push((hash_symbols(bar_notes), *bar_time));
        }
        bar_notes.clear();
        *bar_time = Frac::ZERO;
    };
    let steps = &tl.steps;
    for (i, step) in steps.iter().enumerate() {
        match &step.kind {
            StepKind::Sound { notes, advance, whole_bars } => {
                let line = step.pos.line;
                cur.lines = Some(cur.lines.map_or((line, line), |(a, _)| (a, line)));
                if let Some(n) = whole_bars {
                    if !later_ending {
                        cur.bars += *n as f64;
                    }
                    continue;
                }
                let pitch = notes.iter().map(|n| n.pitch).max().unwrap_or(0);
                let sym = note_symbol(pitch, *advance);
                w.notes.push(sym);
                bar_notes.push(sym);
                music_since_open = true;
                bar_time = bar_time.checked_add(*advance).unwrap_or(bar_time);
                if !notes.is_empty() {
                    w.last_pitches = notes.iter().map(|n| n.pitch).collect();
                }
                if !later_ending {
                    cur.has_music = true;
                    cur.notes.push(sym);
                    if let Some(b) = meter_bar {
                        cur.bars += advance.to_f64() / b.to_f64();
                    }
                }
            }
            StepKind::Bar(b) => {
                end_bar(&mut bar_notes, &mut bar_time, &mut w);
                if b.repeat_end {
                    cur.repeated = true;
                    open_repeat = false;
                }
                if b.repeat_start {
                    // `|: || |:` (an empty repeat, as some transcribers write before a part)
                    // leaves nothing unclosed.
                    if open_repeat && music_since_open {
                        w.balanced = false;
                    }
                    open_repeat = true;
                    music_since_open = false;
                }
                // A repeat end followed by an ending keeps the section open until the endings
                // are over; otherwise repeat signs and double bars close it.
                let ending_follows = steps[i + 1..]
                    .iter()
                    .find(|s| !matches!(s.kind, StepKind::ChordSymbol(_)))
                    .is_some_and(|s| matches!(s.kind, StepKind::Ending(_)));
                let double = !matches!(b.style, super::ast::BarStyle::Single);
                // A pickup written before the start repeat (`d|:ABA...`) belongs to the part it
                // leads into.
                let pickup_only = !b.repeat_end && !cur.repeated && cur.bars < 0.999;
                if ((b.repeat_end && !ending_follows) || b.repeat_start || (double && !b.repeat_end)) && !pickup_only {
                    close(&mut cur, &mut w);
                    later_ending = false;
                }
            }
            StepKind::Ending(passes) => {
                later_ending = !passes.contains(&1);
            }
            StepKind::Part(label) => {
                end_bar(&mut bar_notes, &mut bar_time, &mut w);
                close(&mut cur, &mut w);
                later_ending = false;
                cur.label = Some(label.clone());
            }
            StepKind::Meter(m) => meter_bar = bar_length(Some(*m)),
            _ => {}
        }
    }
    end_bar(&mut bar_notes, &mut bar_time, &mut w);
    close(&mut cur, &mut w);
    if open_repeat && !w.sections.last().is_some_and(|(s, _)| s.repeated) {
        w.balanced = false;
    }
    w
}

/// Where a section the judge counts is written, and its length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SectionSpan {
    /// First line (1-based) with one of its notes or rests.
    pub first_line: usize,
    /// Last line with one of its notes or rests (later endings included).
    pub last_line: usize,
    /// Its bars as [`Section::bars`] counts them.
    pub bars: f64,
}

/// The sections of a one-voice timeline as [`features`] counts them, with their lines.
pub(crate) fn section_spans(tl: &Timeline) -> Vec<SectionSpan> {
    walk(tl)
        .sections
        .iter()
        .filter_map(|(s, _)| {
            s.lines.map(|(first_line, last_line)| SectionSpan { first_line, last_line, bars: whole_bars(s.bars) })
        })
        .collect()
}

/// Reads one tune as `check` does (with the fields of its file's header, `file_fields`):
/// parses it, builds its timeline, runs the checker, measures its structure. A tune with
/// several voices is measured on its first voice.
pub fn features(tt: &TuneText<'_>, file_fields: &[Field]) -> Features {
    let (tune, tl, problems, readable) = super::all_problems(tt, file_fields);
    from_parts(&tune, &first_voice(tl), readable, &problems)
}

/// Where an invalid tune first breaks: the kind of the checker's first problem (the one
/// written earliest; problems of the whole tune, such as a missing `M:`, come last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Breakage {
    /// A header field missing, out of place or unreadable (`X:`, `M:`, `K:`, a bad value).
    Header,
    /// Music the parser cannot read (a stray character, an unclosed chord or quote).
    Syntax,
    /// A bar longer than the meter, or shorter where it may not be.
    BarLength,
    /// A repeat or numbered ending left open or out of order.
    Repeats,
    /// A part the play order promises is missing from the body.
    Parts,
    /// The tune stops without a closing bar line (or has no notes).
    Unfinished,
}

impl Breakage {
    /// Every kind, in the order summaries list them.
    pub const ALL: [Breakage; 6] = [
        Breakage::Header,
        Breakage::Syntax,
        Breakage::BarLength,
        Breakage::Repeats,
        Breakage::Parts,
        Breakage::Unfinished,
    ];

    /// The kind of `p`, a problem of `tune`: by where it is (a header line is the header's,
    /// whatever the message) and then by the checker's message; the parser's messages are
    /// syntax.
    pub fn of(p: &Problem, tune: &Tune) -> Breakage {
        let m = p.message.as_str();
        let in_header = p.pos.line > 0 && tune.header.iter().any(|f| f.pos.line == p.pos.line);
        if in_header
            || m.starts_with("missing ")
            || m.starts_with("X: must be a number")
            || m.starts_with("a tune must start with an X:")
        {
            Breakage::Header
        } else if m.starts_with("bar too ") {
            Breakage::BarLength
        } else if m.contains("repeat '|:'") || m.contains("ending") {
            Breakage::Repeats
        } else if m.starts_with("the play order") {
            Breakage::Parts
        } else if m == "the tune does not end with a bar line" || m == "the tune has no notes" {
            Breakage::Unfinished
        } else {
            Breakage::Syntax
        }
    }

    /// How summaries name it.
    pub fn name(self) -> &'static str {
        match self {
            Breakage::Header => "header",
            Breakage::Syntax => "syntax",
            Breakage::BarLength => "bar length",
            Breakage::Repeats => "repeats",
            Breakage::Parts => "parts",
            Breakage::Unfinished => "unfinished",
        }
    }
}

/// The steps of the first voice that has notes (all steps when the tune has one voice).
fn first_voice(mut tl: Timeline) -> Timeline {
    let voices = tl.voice_of_steps();
    if voices.iter().all(|&v| v == voices[0]) {
        return tl;
    }
    let sounding = |v: usize| {
        tl.steps
            .iter()
            .zip(&voices)
            .any(|(s, &w)| w == v && matches!(&s.kind, StepKind::Sound { notes, .. } if !notes.is_empty()))
    };
    let max = voices.iter().copied().max().unwrap_or(0);
    let Some(keep) = (0..=max).find(|&v| sounding(v)) else { return tl };
    let steps = std::mem::take(&mut tl.steps);
    tl.steps = steps.into_iter().zip(voices).filter(|(_, v)| *v == keep).map(|(s, _)| s).collect();
    tl
}

fn last_key(tune: &Tune) -> Option<KeyName> {
    let body_key = tune.body.iter().rev().find_map(|e| match &e.kind {
        ElementKind::Field(f) if f.letter == 'K' => Some(f.value.as_str()),
        _ => None,
    });
    body_key.or(tune.header_value('K')).and_then(KeyName::parse)
}

/// Bars of a part as players count them: a pickup of up to half a bar (with no last bar to
/// complete it) is not a bar, a short last bar or pickup of more than half a bar is (`8.33` and
/// `7.75` are 8 bars). Bars of a free meter are not counted (0).
fn whole_bars(raw: f64) -> f64 {
    (raw - 0.5 - 1e-9).ceil().max(0.0)
}

/// The meter of the first note: an `M:` in the body before any note (the corpus writes
/// `M:4/4` in the header and `M:6/8` after `K:` in some tunes), else the header's.
fn first_meter(tune: &Tune) -> Option<&str> {
    let early = tune
        .body
        .iter()
        .take_while(|e| !matches!(e.kind, ElementKind::Note(_) | ElementKind::Chord { .. } | ElementKind::Rest(_)))
        .filter_map(|e| match &e.kind {
            ElementKind::Field(f) if f.letter == 'M' => Some(f.value.as_str()),
            _ => None,
        })
        .last();
    early.or(tune.header_value('M'))
}

/// The features of `tune` (its timeline `tl`) with the checker's `problems` (earliest first).
fn from_parts(tune: &Tune, tl: &Timeline, readable: bool, problems: &[Problem]) -> Features {
    let w = walk(tl);
    // Letters: P: labels as written; else A, B, ... with a section that repeats an earlier
    // one's notes (similarity at least 0.8) taking that one's letter.
    let mut sections: Vec<Section> = Vec::new();
    let written: HashSet<&str> = w.sections.iter().filter_map(|(s, _)| s.label.as_deref()).collect();
    let mut used: HashSet<String> = written.iter().map(|l| l.to_string()).collect();
    for (k, (s, notes)) in w.sections.iter().enumerate() {
        let best = (0..k).map(|j| (j, similarity(&w.sections[j].1, notes))).max_by(|a, b| a.1.total_cmp(&b.1));
        let label = match (&s.label, best) {
            (Some(l), _) => l.clone(),
            (None, Some((j, sim))) if sim >= 0.8 => sections[j].label.clone(),
            (None, _) => {
                // The first letter no written label and no earlier section has taken.
                let l = ('A'..='Z').map(|c| c.to_string()).find(|c| !used.contains(c)).unwrap_or_else(|| "?".into());
                used.insert(l.clone());
                l
            }
        };
        sections.push(Section {
            label,
            bars: whole_bars(s.bars),
            repeated: s.repeated,
            like_earlier: best.map(|(_, v)| (v * 1000.0).round() / 1000.0),
        });
    }
    let form: String = sections.iter().map(|s| if s.repeated { s.label.repeat(2) } else { s.label.clone() }).collect();
    let body_parts: HashSet<String> = tl
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Part(l) => Some(l.clone()),
            _ => None,
        })
        .collect();
    let promised: Option<String> = tl.order.as_ref().map(|o| o.iter().collect());
    let order_delivered = tl.order.as_ref().map(|o| o.iter().all(|c| body_parts.contains(&c.to_string())));
    let key = tune.header_value('K').and_then(KeyName::parse);
    let ends_on_tonic = match (last_key(tune), w.last_pitches.is_empty()) {
        (Some(k), false) => Some(w.last_pitches.iter().any(|p| p % 12 == k.tonic)),
        _ => None,
    };
    // The opening: the first two bars after a pickup (a first bar shorter than the meter's).
    let full = bar_length(tl.meter);
    let skip = usize::from(matches!((w.bars.first(), full), (Some((_, t)), Some(b)) if *t < b));
    let opening = (w.bars.len() >= skip + 2).then(|| {
        let (a, b) = (w.bars[skip].0, w.bars[skip + 1].0);
        crate::hash::fnv1a(a, &b.to_le_bytes())
    });
    Features {
        index: tune.index,
        number: tune.number,
        title: tune.title.clone(),
        readable,
        valid: problems.is_empty(),
        first_problem: problems.first().map(|p| p.to_string()),
        breaks: problems.first().map(|p| Breakage::of(p, tune)),
        problems: problems.len(),
        meter: first_meter(tune).map(|m| m.split_whitespace().collect::<String>()),
        key,
        bars: sections.iter().map(|s| s.bars).sum::<f64>(),
        sections,
        form,
        promised_order: promised,
        order_delivered,
        repeats_balanced: w.balanced,
        ends_on_tonic,
        notes: w.notes,
        bar_hashes: w.bars.iter().map(|b| b.0).collect(),
        opening,
    }
}

/// Every tune of `text`, read by [`features`].
pub fn read_tunes(text: &str) -> Vec<Features> {
    let file_fields = parse::file_header(text);
    parse::split_tunes(text).iter().map(|tt| features(tt, &file_fields)).collect()
}

/// Edit distance between two symbol sequences (insert, delete, substitute: cost 1 each).
pub fn edit_distance(a: &[u32], b: &[u32]) -> usize {
    let (a, b) = if a.len() < b.len() { (b, a) } else { (a, b) };
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let up = row[j + 1];
            let sub = diag + usize::from(x != b[j]);
            row[j + 1] = sub.min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// `1 - edit_distance / max(len)`: 1 for equal sequences, 0 for nothing in common (two empty
/// sequences are equal).
pub fn similarity(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len().max(b.len());
    if n == 0 {
        return 1.0;
    }
    1.0 - edit_distance(a, b) as f64 / n as f64
}

/// Counts of meters, keys, modes and lengths in a set of tunes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StyleCounts {
    /// Tunes per `M:` value.
    pub meters: BTreeMap<String, usize>,
    /// Tunes per key (`G`, `Am`, `Dmix`).
    pub keys: BTreeMap<String, usize>,
    /// Tunes per mode.
    pub modes: BTreeMap<String, usize>,
    /// Tunes per length band (`<=16`, `17-24`, `25-32`, `33-48`, `>48` bars).
    pub lengths: BTreeMap<String, usize>,
}

fn length_band(bars: f64) -> &'static str {
    match bars.round() as i64 {
        ..=16 => "<=16",
        17..=24 => "17-24",
        25..=32 => "25-32",
        33..=48 => "33-48",
        _ => ">48",
    }
}

impl StyleCounts {
    /// Adds one tune.
    pub fn add(&mut self, f: &Features) {
        let none = || "(none)".to_string();
        *self.meters.entry(f.meter.clone().unwrap_or_else(none)).or_default() += 1;
        *self.keys.entry(f.key.as_ref().map(|k| k.name.clone()).unwrap_or_else(none)).or_default() += 1;
        *self.modes.entry(f.key.as_ref().map(|k| k.mode.to_string()).unwrap_or_else(none)).or_default() += 1;
        *self.lengths.entry(length_band(f.bars).to_string()).or_default() += 1;
    }

    /// Counts over tunes.
    pub fn of<'a>(tunes: impl IntoIterator<Item = &'a Features>) -> StyleCounts {
        let mut s = StyleCounts::default();
        tunes.into_iter().for_each(|f| s.add(f));
        s
    }
}

/// Total variation distance between two count tables: half the sum of the absolute
/// differences of their shares; 0 for equal distributions, 1 for disjoint ones.
pub fn tvd(a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>) -> f64 {
    let (na, nb) = (a.values().sum::<usize>() as f64, b.values().sum::<usize>() as f64);
    if na == 0.0 || nb == 0.0 {
        return if na == nb { 0.0 } else { 1.0 };
    }
    let keys: HashSet<&String> = a.keys().chain(b.keys()).collect();
    0.5 * keys
        .into_iter()
        .map(|k| (*a.get(k).unwrap_or(&0) as f64 / na - *b.get(k).unwrap_or(&0) as f64 / nb).abs())
        .sum::<f64>()
}

/// A corpus tune, as the index keeps it.
#[derive(Clone, Debug)]
pub struct CorpusTune {
    /// Which file it came from.
    pub file: String,
    /// Its features.
    pub features: Features,
}

/// The corpus, indexed for fast originality checks: n-grams of notes to pick candidates,
/// 4-bar windows and openings to look up verbatim.
pub struct CorpusIndex {
    /// The tunes, in file order.
    pub tunes: Vec<CorpusTune>,
    grams: HashMap<u64, Vec<u32>>,
    windows: HashMap<u64, Vec<u32>>,
    openings: HashMap<u64, Vec<u32>>,
    /// Style counts of the corpus.
    pub style: StyleCounts,
}

fn grams(notes: &[u32]) -> HashSet<u64> {
    notes.windows(GRAM).map(hash_symbols).collect()
}

fn windows_of(f: &Features) -> Vec<u64> {
    f.bar_hashes
        .windows(WINDOW_BARS)
        .map(|w| w.iter().fold(crate::hash::FNV1A_START, |h, b| crate::hash::fnv1a(h, &b.to_le_bytes())))
        .collect()
}

/// How a tune stands against a corpus.
#[derive(Clone, Debug, Serialize)]
pub struct Originality {
    /// The most similar corpus tune (its name and file), if the corpus has any candidate.
    pub nearest: Option<String>,
    /// Index of that tune in [`CorpusIndex::tunes`].
    #[serde(skip)]
    pub nearest_index: Option<usize>,
    /// Its similarity (0..1).
    pub similarity: f64,
    /// Share of the tune's 4-bar windows found verbatim in the corpus (None: under 4 bars).
    pub window_share: Option<f64>,
    /// The first two full bars are those of a corpus tune.
    pub same_opening: bool,
    /// The near-copy verdict.
    pub near_copy: bool,
}

impl CorpusIndex {
    /// Indexes the tunes of `files` (name, text).
    pub fn build(files: &[(String, String)]) -> CorpusIndex {
        let mut tunes = Vec::new();
        for (name, text) in files {
            for f in read_tunes(text) {
                tunes.push(CorpusTune { file: name.clone(), features: f });
            }
        }
        let mut grams_ix: HashMap<u64, Vec<u32>> = HashMap::new();
        let mut windows = HashMap::new();
        let mut openings: HashMap<u64, Vec<u32>> = HashMap::new();
        for (k, t) in tunes.iter().enumerate() {
            for g in grams(&t.features.notes) {
                grams_ix.entry(g).or_default().push(k as u32);
            }
            for w in windows_of(&t.features) {
                let list: &mut Vec<u32> = windows.entry(w).or_default();
                if list.last() != Some(&(k as u32)) {
                    list.push(k as u32);
                }
            }
            if let Some(o) = t.features.opening {
                openings.entry(o).or_default().push(k as u32);
            }
        }
        let style = StyleCounts::of(tunes.iter().map(|t| &t.features));
        CorpusIndex { tunes, grams: grams_ix, windows, openings, style }
    }

    /// Nearest corpus tune and the verbatim measures of `f`. `exclude` leaves out corpus tunes
    /// (e.g. the tune itself, when judging a corpus against itself).
    pub fn originality(&self, f: &Features, exclude: &dyn Fn(usize) -> bool) -> Originality {
        let mut shared: HashMap<u32, u32> = HashMap::new();
        for g in grams(&f.notes) {
            if let Some(list) = self.grams.get(&g) {
                for &k in list {
                    *shared.entry(k).or_default() += 1;
                }
            }
        }
        let mut cands: Vec<(u32, u32)> = shared.into_iter().filter(|(k, _)| !exclude(*k as usize)).collect();
        cands.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        cands.truncate(CANDIDATES);
        let mut best: Option<(usize, f64)> = None;
        for (k, _) in cands {
            let other = &self.tunes[k as usize].features.notes;
            let (n, m) = (f.notes.len(), other.len());
            // The length difference alone bounds the similarity from above: skip hopeless ones.
            let bound = 1.0 - n.abs_diff(m) as f64 / n.max(m).max(1) as f64;
            if best.is_some_and(|(_, s)| bound <= s) {
                continue;
            }
            let s = similarity(&f.notes, other);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((k as usize, s));
            }
        }
        let ws = windows_of(f);
        let window_share = (!ws.is_empty()).then(|| {
            let found = ws
                .iter()
                .filter(|w| self.windows.get(w).is_some_and(|ks| ks.iter().any(|&k| !exclude(k as usize))))
                .count();
            found as f64 / ws.len() as f64
        });
        let same_opening =
            f.opening.and_then(|o| self.openings.get(&o)).is_some_and(|ks| ks.iter().any(|&k| !exclude(k as usize)));
        let similarity = best.map_or(0.0, |b| b.1);
        Originality {
            nearest: best.map(|(k, _)| format!("{} ({})", self.tunes[k].features.name(), self.tunes[k].file)),
            nearest_index: best.map(|b| b.0),
            similarity: (similarity * 1000.0).round() / 1000.0,
            window_share: window_share.map(|w| (w * 1000.0).round() / 1000.0),
            same_opening,
            near_copy: similarity >= NEAR_COPY_SIMILARITY || window_share.is_some_and(|w| w >= NEAR_COPY_WINDOWS),
        }
    }
}

/// One tune's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// Which file it came from.
    pub file: String,
    /// What the tune is.
    #[serde(flatten)]
    pub features: Features,
    /// Against the corpus, when one was given.
    pub originality: Option<Originality>,
}

/// The summary over all judged tunes.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Tunes judged.
    pub tunes: usize,
    /// Valid by the checker.
    pub valid: usize,
    /// Readable (no syntax error), valid or not.
    pub readable: usize,
    /// Shaped like a dance tune ([`structured`]).
    pub structured: usize,
    /// Median number of parts.
    pub median_parts: f64,
    /// Form strings and their counts (`AABB`: 300).
    pub forms: BTreeMap<String, usize>,
    /// Tunes promising a part order; of those, how many deliver it.
    pub order_promised: usize,
    /// See `order_promised`.
    pub order_delivered: usize,
    /// Repeats balanced.
    pub repeats_balanced: usize,
    /// Tunes with two or more parts of 8 bars each.
    pub two_eight_bar_parts: usize,
    /// Invalid tunes by where they first break ([`Breakage`]).
    pub breaks: BTreeMap<Breakage, usize>,
    /// Tunes with a last note and a tonic; of those, how many end on the tonic.
    pub tonic_known: usize,
    /// See `tonic_known`.
    pub ends_on_tonic: usize,
    /// Near copies of a corpus tune (None without a corpus).
    pub near_copies: Option<usize>,
    /// Tunes opening with a corpus tune's first two bars.
    pub same_opening: Option<usize>,
    /// Median similarity to the nearest corpus tune.
    pub median_similarity: Option<f64>,
    /// Mean share of 4-bar windows found verbatim in the corpus.
    pub mean_window_share: Option<f64>,
    /// Valid and not a near copy.
    pub valid_and_original: Option<usize>,
    /// The batch's style counts.
    pub style: StyleCounts,
    /// Total variation distances from the corpus's style: meter, key, mode, length.
    pub style_distance: Option<BTreeMap<String, f64>>,
}

/// Whether a tune is shaped like a dance tune: every part a whole number of 4-bar phrases (at
/// least one), 8 bars or more in all.
pub fn structured(f: &Features) -> bool {
    !f.sections.is_empty() && f.sections.iter().all(|s| s.bars >= 4.0 && s.bars % 4.0 == 0.0) && f.bars >= 8.0
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) })
}

/// Sums verdicts; `corpus` adds the style distances.
pub fn summarize(verdicts: &[Verdict], corpus: Option<&CorpusIndex>) -> Summary {
    let count = |p: &dyn Fn(&Verdict) -> bool| verdicts.iter().filter(|v| p(v)).count();
    let with_corpus = corpus.is_some();
    let orig = |p: &dyn Fn(&Originality) -> bool| {
        with_corpus.then(|| verdicts.iter().filter(|v| v.originality.as_ref().is_some_and(p)).count())
    };
    let style = StyleCounts::of(verdicts.iter().map(|v| &v.features));
    let style_distance = corpus.map(|c| {
        BTreeMap::from([
            ("meter".to_string(), tvd(&style.meters, &c.style.meters)),
            ("key".to_string(), tvd(&style.keys, &c.style.keys)),
            ("mode".to_string(), tvd(&style.modes, &c.style.modes)),
            ("length".to_string(), tvd(&style.lengths, &c.style.lengths)),
        ])
        .into_iter()
        .map(|(k, v)| (k, (v * 1000.0).round() / 1000.0))
        .collect()
    });
    let mut forms = BTreeMap::new();
    let mut breaks = BTreeMap::new();
    for v in verdicts {
        *forms.entry(v.features.form.clone()).or_default() += 1;
        if let Some(b) = v.features.breaks {
            *breaks.entry(b).or_default() += 1;
        }
    }
    Summary {
        tunes: verdicts.len(),
        valid: count(&|v| v.features.valid),
        readable: count(&|v| v.features.readable),
        structured: count(&|v| structured(&v.features)),
        median_parts: median(verdicts.iter().map(|v| v.features.sections.len() as f64).collect()).unwrap_or(0.0),
        forms,
        order_promised: count(&|v| v.features.order_delivered.is_some()),
        order_delivered: count(&|v| v.features.order_delivered == Some(true)),
        repeats_balanced: count(&|v| v.features.repeats_balanced),
        two_eight_bar_parts: count(&|v| v.features.sections.iter().filter(|s| s.bars == 8.0).count() >= 2),
        breaks,
        tonic_known: count(&|v| v.features.ends_on_tonic.is_some()),
        ends_on_tonic: count(&|v| v.features.ends_on_tonic == Some(true)),
        near_copies: orig(&|o| o.near_copy),
        same_opening: orig(&|o| o.same_opening),
        median_similarity: with_corpus
            .then(|| median(verdicts.iter().filter_map(|v| v.originality.as_ref().map(|o| o.similarity)).collect()))
            .flatten(),
        mean_window_share: with_corpus
            .then(|| {
                let w: Vec<f64> =
                    verdicts.iter().filter_map(|v| v.originality.as_ref().and_then(|o| o.window_share)).collect();
                (!w.is_empty()).then(|| w.iter().sum::<f64>() / w.len() as f64)
            })
            .flatten(),
        valid_and_original: with_corpus
            .then(|| count(&|v| v.features.valid && v.originality.as_ref().is_some_and(|o| !o.near_copy))),
        style,
        style_distance,
    }
}

/// Judges every tune of `files` (name, text), against `corpus` when given, in parallel.
pub fn judge(files: &[(String, String)], corpus: Option<&CorpusIndex>) -> Vec<Verdict> {
    use rayon::prelude::*;
    let texts: Vec<(String, TuneTextOwned, std::sync::Arc<Vec<Field>>)> = files
        .iter()
        .flat_map(|(name, text)| {
            let file_fields = std::sync::Arc::new(parse::file_header(text));
            parse::split_tunes(text)
                .into_iter()
                .map(|tt| (name.clone(), TuneTextOwned::from(&tt), file_fields.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    texts
        .par_iter()
        .map(|(name, t, file_fields)| {
            let features = features(&t.borrowed(), file_fields);
            let originality = corpus.map(|c| c.originality(&features, &|_| false));
            Verdict { file: name.clone(), features, originality }
        })
        .collect()
}

/// A [`TuneText`] that owns its lines, to hand across threads.
struct TuneTextOwned {
    index: usize,
    first_line: usize,
    lines: Vec<String>,
}

impl TuneTextOwned {
    fn from(tt: &TuneText<'_>) -> Self {
        TuneTextOwned {
            index: tt.index,
            first_line: tt.first_line,
            lines: tt.lines.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn borrowed(&self) -> TuneText<'_> {
        TuneText {
            index: self.index,
            first_line: self.first_line,
            lines: self.lines.iter().map(|s| s.as_str()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_of_known_pairs() {
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 2, 3]), 0);
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 3]), 1);
        assert_eq!(edit_distance(&[1, 2, 3], &[4, 5, 6]), 3);
        assert_eq!(edit_distance(&[], &[4, 5]), 2);
        // kitten -> sitting: 3.
        let s = |t: &str| t.bytes().map(u32::from).collect::<Vec<_>>();
        assert_eq!(edit_distance(&s("kitten"), &s("sitting")), 3);
        assert!((similarity(&s("kitten"), &s("sitting")) - (1.0 - 3.0 / 7.0)).abs() < 1e-12);
    }

    #[test]
    fn keys_read_with_their_modes() {
        let k = |v: &str| KeyName::parse(v).map(|k| (k.name, k.tonic, k.mode));
        assert_eq!(k("G"), Some(("G".into(), 7, "major")));
        assert_eq!(k("Am"), Some(("Am".into(), 9, "minor")));
        assert_eq!(k("D mix"), Some(("Dmix".into(), 2, "mixolydian")));
        assert_eq!(k("F#m"), Some(("F#m".into(), 6, "minor")));
        assert_eq!(k("Bb Major"), Some(("Bb".into(), 10, "major")));
        assert_eq!(k("Edorian"), Some(("Edor".into(), 4, "dorian")));
        assert_eq!(k("none"), None);
    }

    #[test]
    fn tvd_of_known_tables() {
        let t = |v: &[(&str, usize)]| v.iter().map(|(k, n)| (k.to_string(), *n)).collect::<BTreeMap<_, _>>();
        assert_eq!(tvd(&t(&[("6/8", 10)]), &t(&[("6/8", 3)])), 0.0);
        assert_eq!(tvd(&t(&[("6/8", 10)]), &t(&[("3/4", 3)])), 1.0);
        assert!((tvd(&t(&[("6/8", 1), ("3/4", 1)]), &t(&[("6/8", 1)])) - 0.5).abs() < 1e-12);
    }
}
