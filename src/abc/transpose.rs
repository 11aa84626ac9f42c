//! Transposition: a tune rewritten `n` semitones up or down, as a musician would write it in
//! the new key.
//!
//! - `K:` (in the header, on a body line or inline `[K:...]`) moves its tonic by `n` semitones
//!   and keeps its mode; of the two spellings six fifths away (F# or Gb major) the one in the
//!   direction of the shift is taken, otherwise the key with at most 6 sharps or 5 flats.
//! - Every note moves by the number of letter steps the tonic moved (G to A: one step, so `B`
//!   becomes `c`, with its octave marks), then gets the accidental that gives exactly the old
//!   pitch plus `n`: written where the note had one, or where the new key signature and the
//!   accidentals earlier in the bar (ABC 2.1: they hold to the bar line, for the letter in every
//!   octave, as [`super::timeline`] reads them) would give another pitch; grace notes' own
//!   accidentals hold for them alone.
//! - Chord symbols in quotes (`"G"`, `"D7"`, `"Em"`, `"A/c+"`, `"Gm/bb"`) move root and bass the
//!   same way, keeping their quality and how the bass is written.
//!
//! A tune is transposed only when that is safe: it must parse without syntax errors, its keys
//! must be plain tonic and mode (not `K:none`, the bagpipe keys `HP`/`Hp`, or explicit
//! accidentals), its chord symbols readable, and every note within MIDI range and spelled with
//! at most a double accidental. Then the result is checked against the original by the
//! timeline: the same steps, every sounding pitch (grace notes too) exactly `n` higher, every
//! chord symbol's root and bass `n` higher, and no new problem for the checker. A tune that
//! fails any of this is refused with the reason ([`Refusal`]), never half transposed.

use super::music::{KeySig, letter_index, midi_pitch, parse_chord_symbol};
use super::parse;
use super::timeline::{Sounding, StepKind, Timeline};

/// The largest shift, in semitones, either way.
pub const MAX_SHIFT: i32 = 11;

/// Letters in scale order from C, for counting letter steps.
const SCALE: [char; 7] = ['C', 'D', 'E', 'F', 'G', 'A', 'B'];

/// Why a tune was left untransposed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// The tune has a syntax error (or is no single tune): the text is not understood well
    /// enough to rewrite.
    Unreadable(String),
    /// A key that has no transposed spelling here: none or missing, `HP`/`Hp`, explicit
    /// accidentals, more sharps or flats than a key holds.
    Key(String),
    /// A quoted text that looks like a chord symbol but is not one the parser reads.
    Chord(String),
    /// A note that would leave MIDI's range or need more than a double sharp or flat.
    Range(String),
    /// The rewritten tune did not sound `n` semitones away from the original (a construct
    /// this rewriting does not follow); it is dropped rather than kept wrong.
    Mismatch(String),
}

impl Refusal {
    /// A short name of the kind of refusal, for counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Unreadable(_) => "unreadable",
            Refusal::Key(_) => "key",
            Refusal::Chord(_) => "chord symbol",
            Refusal::Range(_) => "range",
            Refusal::Mismatch(_) => "mismatch",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unreadable(s) => write!(f, "unreadable: {s}"),
            Refusal::Key(s) => write!(f, "key: {s}"),
            Refusal::Chord(s) => write!(f, "chord symbol: {s}"),
            Refusal::Range(s) => write!(f, "range: {s}"),
            Refusal::Mismatch(s) => write!(f, "mismatch: {s}"),
        }
    }
}

/// The key in force while rewriting: the new signature and how many letter steps notes move.
#[derive(Clone, Copy, Debug)]
struct KeyShift {
    /// Alteration of each letter in the new key, indexed A=0 .. G=6.
    alter: [i8; 7],
    /// Letter steps up (negative: down) from an old note to its new one.
    steps: i32,
}

/// Position of a major key's tonic on the circle of fifths (sharps positive), indexed A..G.
const MAJOR_FIFTHS: [i32; 7] = [3, 5, 0, 2, 4, -1, 1];

/// The tonic of the major key with `fifths` sharps (flats negative) ... or of any key whose
/// tonic sits at `fifths` on the circle: the letter and its alteration.
fn tonic_at(fifths: i32) -> (char, i32) {
    const ORDER: [char; 7] = ['F', 'C', 'G', 'D', 'A', 'E', 'B'];
    (ORDER[(fifths + 1).rem_euclid(7) as usize], (fifths + 1).div_euclid(7))
}

/// Pitch class of a letter with an alteration.
fn pitch_class(letter: char, alter: i32) -> i32 {
    midi_pitch(letter, 0, alter).map_or(0, |p| p.rem_euclid(12))
}

/// Index of a letter in [`SCALE`].
fn scale_index(letter: char) -> usize {
    SCALE.iter().position(|&c| c == letter.to_ascii_uppercase()).unwrap_or(0)
}

/// The letter `steps` letter steps from `letter`, and how many octaves that crosses.
fn step_letter(letter: char, steps: i32) -> (char, i32) {
    let k = scale_index(letter) as i32 + steps;
    (SCALE[k.rem_euclid(7) as usize], k.div_euclid(7))
}

/// A `K:` value (the text after `K:`, comment and all) moved by `n` semitones: the new text and
/// the key it sets.
fn transpose_key(raw: &str, n: i32) -> Result<(String, KeyShift), Refusal> {
    let (value, comment) = match raw.find('%') {
        Some(i) => raw.split_at(i),
        None => (raw, ""),
    };
    let words: Vec<&str> = value.split_whitespace().collect();
    let Some(first) = words.first() else {
        return Err(Refusal::Key("K: names no key".into()));
    };
    if first.eq_ignore_ascii_case("none") || *first == "HP" || *first == "Hp" || first.contains('=') {
        return Err(Refusal::Key(format!("K:{} has no tonic to move", value.trim())));
    }
    if words[1..].iter().any(|w| w.starts_with(['^', '_', '='])) {
        return Err(Refusal::Key(format!("K:{} has explicit accidentals", value.trim())));
    }
    let old = KeySig::parse(value).map_err(Refusal::Key)?;
    let start = value.len() - value.trim_start().len();
    let mut cs = value[start..].chars();
    let letter = cs.next().unwrap_or('C');
    let acc = match cs.next() {
        Some('#') => 1,
        Some('b') => -1,
        _ => 0,
    };
    let tonic_len = if acc == 0 { 1 } else { 2 };
    let li = letter_index(letter).ok_or_else(|| Refusal::Key(format!("K:{} has no tonic", value.trim())))?;
    let tonic_fifths = MAJOR_FIFTHS[li] + 7 * acc;
    let mode = old.fifths as i32 - tonic_fifths;
    // The new signature: n semitones is 7n fifths; of the spellings, at most 6 sharps or 5 flats,
    // and for the one six fifths away, the side the shift goes to.
    let mut fifths = (old.fifths as i32 + 7 * n + 5).rem_euclid(12) - 5;
    if fifths == 6 && n < 0 {
        fifths = -6;
    }
    let (new_letter, new_acc) = tonic_at(fifths - mode);
    if !(-1..=1).contains(&new_acc) {
        return Err(Refusal::Key(format!("K:{} moved by {n} needs a double sharp or flat in its tonic", value.trim())));
    }
    let name = format!(
        "{new_letter}{}",
        match new_acc {
            1 => "#",
            -1 => "b",
            _ => "",
        }
    );
    let text = format!("{}{name}{}{comment}", &value[..start], &value[start + tonic_len..]);
    let new = KeySig::parse(&text[..text.len() - comment.len()]).map_err(Refusal::Key)?;
    if new.fifths as i32 != fifths || (pitch_class(new_letter, new_acc) - pitch_class(letter, acc) - n) % 12 != 0 {
        return Err(Refusal::Key(format!("K:{} has no clean transposition by {n}", value.trim())));
    }
    // Letter steps: the tonic's, taken in the direction of the shift (C to D is 1 step up for
    // n = 2, B to C 1 up for n = 1, C to B 1 down for n = -1).
    let up = (scale_index(new_letter) as i32 - scale_index(letter) as i32).rem_euclid(7);
    let target = n as f64 * 7.0 / 12.0;
    let steps = if (up as f64 - target).abs() <= ((up - 7) as f64 - target).abs() { up } else { up - 7 };
    Ok((text, KeyShift { alter: new.alter, steps }))
}

/// How an accidental is written, by its semitones (-2..=2).
fn accidental_text(alter: i32) -> &'static str {
    match alter {
        2 => "^^",
        1 => "^",
        -1 => "_",
        -2 => "__",
        _ => "=",
    }
}

/// A chord symbol's note name (`F#`, `Bb`, or a bass such as `f+`, `bb`, `d-`) moved by `n`
/// semitones and `steps` letters: the new name, written in the old one's style.
fn transpose_note_name(letter: char, marks: &str, n: i32, steps: i32) -> Result<String, Refusal> {
    let mut alter = 0;
    for c in marks.chars() {
        alter += match c {
            '#' | '+' => 1,
            'b' | '-' => -1,
            _ => return Err(Refusal::Chord(format!("'{letter}{marks}' is not a note name"))),
        };
    }
    let pc = pitch_class(letter, alter) + n;
    let (mut new_letter, _) = step_letter(letter, steps);
    let mut new_alter = (pc - pitch_class(new_letter, 0) + 6).rem_euclid(12) - 6;
    if new_alter.abs() > 1 {
        // A chromatic chord whose letter-step spelling would need a double accidental: the
        // nearest plain name, a sharp for a sharp and a flat for a flat.
        let (l, _) = step_letter(new_letter, new_alter.signum());
        new_letter = l;
        new_alter = (pc - pitch_class(new_letter, 0) + 6).rem_euclid(12) - 6;
    }
    let lower = letter.is_ascii_lowercase();
    let sharp = if marks.contains('+') || (lower && !marks.contains('#')) { '+' } else { '#' };
    let flat = if marks.contains('-') { '-' } else { 'b' };
    let mut out = String::new();
    out.push(if lower { new_letter.to_ascii_lowercase() } else { new_letter });
    for _ in 0..new_alter.abs() {
        out.push(if new_alter > 0 { sharp } else { flat });
    }
    Ok(out)
}

/// The text of a quoted chord symbol moved by `n` semitones; annotations and text that is no
/// chord (`"Fine"`) stay as they are.
fn transpose_chord(text: &str, n: i32, steps: i32) -> Result<String, Refusal> {
    if text.starts_with(['^', '_', '<', '>', '@']) {
        return Ok(text.to_string());
    }
    let open = text.len() - text.trim_start_matches([' ', '(']).len();
    let body = &text[open..];
    let root = body.chars().next().filter(|c| ('A'..='G').contains(c));
    if parse_chord_symbol(text).is_none() {
        // Free text stays ("Fine", "From here"); a word that starts like a chord (a root, then
        // a digit or a quality's first letter) but is none the parser reads (`"Gmaj13"`) might
        // be a chord, and moving only some of a tune's chords would be wrong.
        let after_root = body.get(1..).unwrap_or("").trim_start_matches(['#', 'b']);
        let chord_like = after_root.is_empty() || after_root.starts_with(|c: char| "0123456789mMdas+-/(o".contains(c));
        return match root {
            Some(_) if chord_like && !body.trim_end().contains(char::is_whitespace) => {
                Err(Refusal::Chord(format!("\"{text}\" is not a chord symbol this transposition reads")))
            }
            _ => Ok(text.to_string()),
        };
    }
    let Some(root) = root else { return Ok(text.to_string()) };
    let rest = &body[1..];
    let marks = if rest.starts_with(['#', 'b']) { &rest[..1] } else { "" };
    let mut out = format!("{}{}", &text[..open], transpose_note_name(root, marks, n, steps)?);
    let after = &rest[marks.len()..];
    match after.split_once('/') {
        Some((quality, bass)) => {
            let mut bc = bass.chars();
            let bl = bc.next().unwrap_or('C');
            let tail: String = bc.as_str().chars().take_while(|c| matches!(c, '#' | '+' | 'b' | '-')).collect();
            let left = &bc.as_str()[tail.len()..];
            out.push_str(quality);
            out.push('/');
            out.push_str(&transpose_note_name(bl, &tail, n, steps)?);
            out.push_str(left);
        }
        None => out.push_str(after),
    }
    Ok(out)
}

/// Rewrites the music of a tune line by line, keeping the new key and the bar's accidentals.
struct Rewriter<'a> {
    n: i32,
    /// The key in force (None until the first `K:`).
    key: Option<KeyShift>,
    /// Accidentals written so far in this bar of the new tune, by letter (A=0 .. G=6).
    bar_acc: [Option<i8>; 7],
    /// The original's pitches in written order (notes, chord notes, grace notes).
    pitches: std::slice::Iter<'a, u8>,
}

impl Rewriter<'_> {
    fn set_key(&mut self, raw: &str, out: &mut String) -> Result<(), Refusal> {
        let (text, key) = transpose_key(raw, self.n)?;
        out.push_str(&text);
        self.key = Some(key);
        self.bar_acc = [None; 7];
        Ok(())
    }

    /// One note at `chars[i..]` (accidental, letter, octave marks; the length stays as it is),
    /// written into `out`; returns the index after it. `holds`: its accidental holds to the bar
    /// line (not for grace notes).
    fn note(&mut self, chars: &[char], mut i: usize, holds: bool, out: &mut String) -> Result<usize, Refusal> {
        let mut had_accidental = false;
        while i < chars.len() && matches!(chars[i], '^' | '_' | '=') {
            had_accidental = true;
            i += 1;
        }
        let Some(&letter) = chars.get(i).filter(|c| c.is_ascii_alphabetic()) else {
            return Err(Refusal::Unreadable("an accidental without a note".into()));
        };
        i += 1;
        let mut octave = if letter.is_ascii_lowercase() { 1 } else { 0 };
        while i < chars.len() && matches!(chars[i], '\'' | ',') {
            octave += if chars[i] == '\'' { 1 } else { -1 };
            i += 1;
        }
        let key = self.key.ok_or_else(|| Refusal::Key("music before any K: field".into()))?;
        let Some(&old) = self.pitches.next() else {
            return Err(Refusal::Mismatch("more notes in the text than the timeline holds".into()));
        };
        let want = old as i32 + self.n;
        let (new_letter, carry) = step_letter(letter, key.steps);
        let new_octave = octave + carry;
        let natural = midi_pitch(new_letter, new_octave, 0).unwrap_or(0);
        let alter = want - natural;
        if !(0..=127).contains(&want) || alter.abs() > 2 {
            return Err(Refusal::Range(format!("note {letter} (MIDI {old}) cannot move by {}", self.n)));
        }
        let li = letter_index(new_letter).unwrap_or(0);
        let implied = self.bar_acc[li].unwrap_or(key.alter[li]) as i32;
        if had_accidental || implied != alter {
            out.push_str(accidental_text(alter));
            if holds {
                self.bar_acc[li] = Some(alter as i8);
            }
        }
        if new_octave >= 1 {
            out.push(new_letter.to_ascii_lowercase());
            out.extend(std::iter::repeat_n('\'', (new_octave - 1) as usize));
        } else {
            out.push(new_letter);
            out.extend(std::iter::repeat_n(',', (-new_octave) as usize));
        }
        Ok(i)
    }

    /// One line of music (the tokens as [`super::parse`]'s lexer reads them).
    fn music_line(&mut self, line: &str, out: &mut String) -> Result<(), Refusal> {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let mut grace = false;
        let copy_to = |out: &mut String, from: usize, to: usize| out.extend(&chars[from..to]);
        while i < chars.len() {
            let c = chars[i];
            match c {
                '%' => {
                    copy_to(out, i, chars.len());
                    return Ok(());
                }
                '"' => {
                    let Some(len) = chars[i + 1..].iter().position(|&c| c == '"') else {
                        return Err(Refusal::Unreadable("an unclosed quote".into()));
                    };
                    let text: String = chars[i + 1..i + 1 + len].iter().collect();
                    let steps = self.key.map_or(0, |k| k.steps);
                    out.push('"');
                    out.push_str(&transpose_chord(&text, self.n, steps)?);
                    out.push('"');
                    i += len + 2;
                }
                '!' | '+' => {
                    // `!trill!`, `+trill+`; a lone `!` (no name up to the next one) is a line break.
                    let end = chars[i + 1..].iter().position(|&d| d == c);
                    let named = end.is_some_and(|len| {
                        c == '+'
                            || (len > 0 && chars[i + 1..i + 1 + len].iter().all(|d| !d.is_whitespace() && *d != '|'))
                    });
                    let to = match end {
                        Some(len) if named => i + len + 2,
                        _ => i + 1,
                    };
                    copy_to(out, i, to);
                    i = to;
                }
                '[' if chars.get(i + 2) == Some(&':') && chars.get(i + 1).is_some_and(|l| l.is_ascii_alphabetic()) => {
                    let Some(len) = chars[i..].iter().position(|&c| c == ']') else {
                        return Err(Refusal::Unreadable("an unclosed inline field".into()));
                    };
                    let value: String = chars[i + 3..i + len].iter().collect();
                    copy_to(out, i, i + 3);
                    match chars[i + 1] {
                        'K' => self.set_key(&value, out)?,
                        l => {
                            if l == 'V' {
                                self.bar_acc = [None; 7];
                            }
                            out.push_str(&value);
                        }
                    }
                    out.push(']');
                    i += len + 1;
                }
                '(' if chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                    // A tuplet `(p:q:r`: its colons are no bar line.
                    let mut j = i + 1;
                    for _ in 0..3 {
                        while j < chars.len() && chars[j].is_ascii_digit() {
                            j += 1;
                        }
                        if chars.get(j) == Some(&':') && chars.get(j + 1) != Some(&'|') {
                            j += 1;
                        } else {
                            break;
                        }
                    }
                    copy_to(out, i, j);
                    i = j;
                }
                '|' | ':' => {
                    self.bar_acc = [None; 7];
                    out.push(c);
                    i += 1;
                }
                '{' | '}' => {
                    grace = c == '{';
                    out.push(c);
                    i += 1;
                }
                '^' | '_' | '=' | 'A'..='G' | 'a'..='g' => i = self.note(&chars, i, !grace, out)?,
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Ok(())
    }
}

/// The pitches of a timeline in written order: each sound's notes, then grace notes where they
/// stand.
fn pitches(tl: &Timeline) -> Vec<u8> {
    let mut out = Vec::new();
    for s in &tl.steps {
        match &s.kind {
            StepKind::Sound { notes, .. } | StepKind::Grace(notes) => out.extend(notes.iter().map(|n| n.pitch)),
            _ => {}
        }
    }
    out
}

/// The one tune of `text`, parsed and resolved, and its problems; refused when it is not
/// exactly one tune or has a syntax error.
pub(crate) fn read_one(text: &str) -> Result<(Timeline, Vec<super::Problem>), Refusal> {
    let tunes = parse::split_tunes(text);
    let [tt] = tunes.as_slice() else {
        return Err(Refusal::Unreadable(format!("{} tunes where one was expected", tunes.len())));
    };
    let (tune, mut syntax) = parse::parse_lines_in(&tt.lines, tt.first_line, tt.index, &[]);
    let (tl, more) = super::timeline::build(&tune);
    syntax.extend(more);
    if let Some(p) = syntax.first() {
        return Err(Refusal::Unreadable(p.to_string()));
    }
    let findings = super::check::check(&tune, &tl);
    Ok((tl, findings))
}

/// Whether `new` sounds exactly `n` semitones from `old`: the same steps, every pitch and
/// every chord symbol's root and bass moved by `n`.
fn same_music_moved(old: &Timeline, new: &Timeline, n: i32) -> Result<(), Refusal> {
    let mismatch = |what: String| Err(Refusal::Mismatch(what));
    let moved = |x: &[Sounding], y: &[Sounding]| {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(u, v)| v.pitch as i32 == u.pitch as i32 + n && u.duration == v.duration && u.tie == v.tie)
    };
    if old.steps.len() != new.steps.len() {
        return mismatch(format!("{} steps became {}", old.steps.len(), new.steps.len()));
    }
    for (a, b) in old.steps.iter().zip(&new.steps) {
        let ok = match (&a.kind, &b.kind) {
            (StepKind::Sound { notes: x, advance: p, .. }, StepKind::Sound { notes: y, advance: q, .. }) => {
                p == q && moved(x, y)
            }
            (StepKind::Grace(x), StepKind::Grace(y)) => moved(x, y),
            (StepKind::ChordSymbol(x), StepKind::ChordSymbol(y)) => {
                match (parse_chord_symbol(x), parse_chord_symbol(y)) {
                    (Some(u), Some(v)) => {
                        u.intervals == v.intervals
                            && (v.root - u.root - n).rem_euclid(12) == 0
                            && (v.bass - u.bass - n).rem_euclid(12) == 0
                    }
                    (None, None) => x == y,
                    _ => false,
                }
            }
            (StepKind::Key(_), StepKind::Key(_)) => true,
            (x, y) => std::mem::discriminant(x) == std::mem::discriminant(y) && x == y,
        };
        if !ok {
            return mismatch(format!("{}: {:?} became {:?}", a.pos.line, a.kind, b.kind));
        }
    }
    Ok(())
}

/// One tune (the text of a single tune: `X:` line, header, body, and whatever follows it) moved
/// `n` semitones, checked against the original as the module docs say. Text before the `X:`
/// line and after the tune's end (its first empty line) is kept as it is.
pub fn transpose_tune(text: &str, n: i32) -> Result<String, Refusal> {
    if n.abs() > MAX_SHIFT {
        return Err(Refusal::Range(format!("a shift of {n} semitones (at most {MAX_SHIFT} either way)")));
    }
    let (old_tl, old_problems) = read_one(text)?;
    let old_pitches = pitches(&old_tl);
    let mut rw = Rewriter { n, key: None, bar_acc: [None; 7], pitches: old_pitches.iter() };
    let mut out = String::with_capacity(text.len() + 64);
    let (mut started, mut seen_any, mut ended) = (false, false, false);
    for piece in text.split_inclusive('\n') {
        let line = piece.strip_suffix('\n').unwrap_or(piece);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let eol = &piece[line.len()..];
        started |= line.starts_with("X:");
        if !started || ended {
            out.push_str(piece);
            continue;
        }
        if line.trim().is_empty() {
            ended = seen_any;
            out.push_str(piece);
            continue;
        }
        seen_any = true;
        if line.starts_with('%') {
            out.push_str(piece);
        } else if parse::is_field_line(line) {
            if let Some(value) = line.strip_prefix("K:") {
                out.push_str("K:");
                rw.set_key(value, &mut out)?;
            } else {
                if line.starts_with("V:") {
                    rw.bar_acc = [None; 7];
                }
                out.push_str(line);
            }
            out.push_str(eol);
        } else {
            rw.music_line(line, &mut out)?;
            out.push_str(eol);
        }
    }
    if rw.pitches.next().is_some() {
        return Err(Refusal::Mismatch("the timeline holds notes the text rewriting did not meet".into()));
    }
    let (new_tl, new_problems) = read_one(&out).map_err(|e| Refusal::Mismatch(format!("the result is {e}")))?;
    same_music_moved(&old_tl, &new_tl, n)?;
    if new_problems.len() != old_problems.len() {
        return Err(Refusal::Mismatch(format!(
            "the checker finds {} problem(s) in the result, {} in the original",
            new_problems.len(),
            old_problems.len()
        )));
    }
    Ok(out)
}

/// Transposed copies of the tunes of a text ([`augment`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Copies {
    /// The copies, shift after shift, each tune in its original order.
    pub text: String,
    /// The shifts made (the range without 0).
    pub shifts: Vec<i32>,
    /// Tunes in the text.
    pub tunes: usize,
    /// Copies written.
    pub written: usize,
    /// Copies left out, by [`Refusal::kind`].
    pub refused: std::collections::BTreeMap<&'static str, usize>,
    /// The keys asked for ([`augment_to_keys`]; empty for a range of shifts).
    pub keys: Vec<String>,
    /// ([`augment_to_keys`]) tunes not copied: their header key has no listed key's mode, or no
    /// tonic (`K:none`).
    pub other_mode: usize,
}

impl Copies {
    /// One line for a training log.
    pub fn describe(&self) -> String {
        let left_out: usize = self.refused.values().sum();
        let why: Vec<String> = self.refused.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let left_out = if left_out > 0 { format!("; {left_out} left out ({})", why.join(", ")) } else { String::new() };
        if self.keys.is_empty() {
            format!(
                "transposed copies: {} of {} tunes x {} shift(s) {:?} added to the training text{left_out}",
                self.written,
                self.tunes,
                self.shifts.len(),
                self.shifts,
            )
        } else {
            format!(
                "transposed copies: {} of {} tunes in the keys {} added to the training text \
                 (shifts {:?}; {} tunes with no key of a listed mode){left_out}",
                self.written,
                self.tunes,
                self.keys.join(","),
                self.shifts,
                self.other_mode,
            )
        }
    }
}

/// Every tune of `text` (tunes start at `X:` lines; text before the first is not a tune)
/// transposed by each shift from `low` to `high` but 0; the tunes that cannot be transposed
/// safely are left out and counted.
pub fn augment(text: &str, low: i32, high: i32) -> Copies {
    let starts = parse::tune_starts(text);
    let mut copies =
        Copies { tunes: starts.len(), shifts: (low..=high).filter(|&n| n != 0).collect(), ..Default::default() };
    for &n in &copies.shifts.clone() {
        for (k, &s) in starts.iter().enumerate() {
            let tune = &text[s..starts.get(k + 1).copied().unwrap_or(text.len())];
            add_copy(&mut copies, transpose_tune(tune, n));
        }
    }
    finish(copies)
}

/// Appends one transposed tune to the copies, or counts why it was left out.
fn add_copy(copies: &mut Copies, made: Result<String, Refusal>) {
    match made {
        Ok(t) => {
            if !copies.text.is_empty() && !copies.text.ends_with("\n\n") {
                copies.text.push_str(if copies.text.ends_with('\n') { "\n" } else { "\n\n" });
            }
            copies.text.push_str(&t);
            copies.written += 1;
        }
        Err(e) => *copies.refused.entry(e.kind()).or_default() += 1,
    }
}

/// The copies with their text ending in a newline.
fn finish(mut copies: Copies) -> Copies {
    if !copies.text.is_empty() && !copies.text.ends_with('\n') {
        copies.text.push('\n');
    }
    copies
}

/// A corpus with every tune moved to one tonic ([`to_tonic`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Retoned {
    /// The text: each tune on the tonic, the text between tunes as it was.
    pub text: String,
    /// The tonic (its canonical name, e.g. `G`).
    pub tonic: String,
    /// Tunes in the text.
    pub tunes: usize,
    /// Tunes transposed to the tonic.
    pub moved: usize,
    /// Tunes on the tonic already.
    pub there: usize,
    /// Tunes left out, by [`Refusal::kind`] (`no key` for a tune whose header names no tonic).
    pub left_out: std::collections::BTreeMap<&'static str, usize>,
}

impl Retoned {
    /// One line for a training log.
    pub fn describe(&self) -> String {
        let why: Vec<String> = self.left_out.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let left_out = if why.is_empty() { String::new() } else { format!("; left out: {}", why.join(", ")) };
        format!(
            "tonic {}: {} of {} tunes transposed to it, {} on it already{left_out}",
            self.tonic, self.moved, self.tunes, self.there
        )
    }
}

/// The header key of a tune (its `K:` line before the first blank line).
pub fn header_key(tune: &str) -> Option<super::judge::KeyName> {
    tune.lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| l.strip_prefix("K:"))
        .and_then(super::judge::KeyName::parse)
}

/// Every tune of `text` moved to the tonic `to` (a pitch class, 0 = C; `name` its spelling for
/// the log), keeping its mode: a G major tune stays, a D major one moves up 5 semitones, an A
/// minor one down 2 to G minor ([`nearest_shift`], at most 6 down or 5 up). `train --tonic G`
/// writes the whole corpus so, and the model learns every tune's ending on one note instead of
/// remembering a key it read hundreds of characters earlier; `sample --key` moves its tunes to
/// the key asked. A tune that cannot be transposed safely, or names no tonic, is left out and
/// counted: a tune on another tonic would teach the model the very thing this removes.
pub fn to_tonic(text: &str, to: u8, name: &str) -> Retoned {
    let starts = parse::tune_starts(text);
    let mut r = Retoned {
        text: text[..starts.first().copied().unwrap_or(text.len())].to_string(),
        tonic: name.to_string(),
        tunes: starts.len(),
        ..Default::default()
    };
    for (k, &s) in starts.iter().enumerate() {
        let tune = &text[s..starts.get(k + 1).copied().unwrap_or(text.len())];
        let made = match header_key(tune) {
            None => Err("no key"),
            Some(own) if own.tonic == to => {
                r.there += 1;
                Ok(tune.to_string())
            }
            Some(own) => {
                transpose_tune(tune, nearest_shift(own.tonic, to)).map_err(|e| e.kind()).inspect(|_| r.moved += 1)
            }
        };
        match made {
            Ok(t) => {
                if !r.text.is_empty() && !r.text.ends_with("\n\n") {
                    r.text.push_str(if r.text.ends_with('\n') { "\n" } else { "\n\n" });
                }
                r.text.push_str(&t);
            }
            Err(why) => *r.left_out.entry(why).or_default() += 1,
        }
    }
    if !r.text.is_empty() && !r.text.ends_with('\n') {
        r.text.push('\n');
    }
    r
}

/// The shift, within -6..=5 semitones (the nearest octave of the new key), that moves a tonic
/// of pitch class `from` to pitch class `to`.
pub fn nearest_shift(from: u8, to: u8) -> i32 {
    let n = (i32::from(to) - i32::from(from)).rem_euclid(12);
    if n > 5 { n - 12 } else { n }
}

/// Every tune of `text` copied into each of `keys` (canonical names such as `G`, `D`, `Em`:
/// [`super::judge::KeyName`]) that has the mode of the tune's header `K:` and another tonic,
/// moved by [`nearest_shift`] (at most 6 semitones down or 5 up, so a copy stays near the
/// original's range). A tune whose mode no listed key has is not copied; one that cannot be
/// transposed safely is left out and counted, as in [`augment`]. A corpus whose tunes crowd
/// into a few keys keeps to them, where a range of shifts would spread it over keys it hardly
/// uses.
pub fn augment_to_keys(text: &str, keys: &[super::judge::KeyName]) -> Copies {
    let starts = parse::tune_starts(text);
    let mut copies =
        Copies { tunes: starts.len(), keys: keys.iter().map(|k| k.name.clone()).collect(), ..Default::default() };
    for (k, &s) in starts.iter().enumerate() {
        let tune = &text[s..starts.get(k + 1).copied().unwrap_or(text.len())];
        let own = header_key(tune);
        let Some(own) = own.filter(|o| keys.iter().any(|t| t.mode == o.mode)) else {
            copies.other_mode += 1;
            continue;
        };
        for target in keys.iter().filter(|t| t.mode == own.mode && t.tonic != own.tonic) {
            let n = nearest_shift(own.tonic, target.tonic);
            if !copies.shifts.contains(&n) {
                copies.shifts.push(n);
            }
            add_copy(&mut copies, transpose_tune(tune, n));
        }
    }
    copies.shifts.sort_unstable();
    finish(copies)
}
