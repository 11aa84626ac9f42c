//! A tune in written order with the music resolved: every note has a MIDI pitch (key
//! signature and bar accidentals applied) and a duration in whole notes (unit length,
//! tuplets and broken rhythm applied). The checker measures bars on it; the player reorders it
//! into performance order.

use super::ast::{Bar, ElementKind, Note, Pos, Problem, Tune};
use super::frac::Frac;
use super::music::{KeySig, Meter, letter_index, midi_pitch, parse_part_order, parse_tempo, parse_unit_length};

/// One sounding note of a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sounding {
    /// MIDI key number (60 is middle C).
    pub pitch: u8,
    /// How long it sounds, in whole notes.
    pub duration: Frac,
    /// Tied to the same pitch in the next step.
    pub tie: bool,
}

/// What a step is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Notes struck together (one note, a chord, or none for a rest) and the time, in whole
    /// notes, until the next sound.
    Sound {
        /// The notes (empty for a rest).
        notes: Vec<Sounding>,
        /// Time to the next step, in whole notes.
        advance: Frac,
        /// A multi-measure rest `Z`: how many bars it fills.
        whole_bars: Option<u32>,
    },
    /// A bar line.
    Bar(Bar),
    /// Start of a numbered ending.
    Ending(Vec<u32>),
    /// Start of a part (`P:` in the body), with its label.
    Part(String),
    /// A chord symbol (text as written).
    ChordSymbol(String),
    /// Tempo change, microseconds per quarter note.
    Tempo(u32),
    /// Meter change.
    Meter(Meter),
    /// Key change.
    Key(KeySig),
    /// Grace notes before the next sound, each with its nominal length ([`GRACE_UNIT`] per
    /// written unit). They take no written time; the player steals their time from the sound
    /// that follows ([`crate::abc::play`]).
    Grace(Vec<Sounding>),
    /// The music from here on belongs to this voice (`V:` in the body, or the first `V:` of the
    /// header at the start); the first word of the field.
    Voice(String),
}

/// Nominal length of a grace note written with length 1 (`{g}`), in whole notes: a 32nd note
/// whatever the unit note length, so `{g2}` is a 16th and `{g/}` a 64th.
pub const GRACE_UNIT: Frac = Frac::one_over(32);

/// A step and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Where it was written.
    pub pos: Pos,
    /// What it is.
    pub kind: StepKind,
}

/// A tune's resolved music in written order, with the header settings in force at its start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// The steps, in written order.
    pub steps: Vec<Step>,
    /// Meter from the header (`None` when `M:` is absent or unreadable).
    pub meter: Option<Meter>,
    /// Unit note length from `L:` or the default for the meter.
    pub unit: Frac,
    /// Tempo at the start, microseconds per quarter note (default 120 quarters per minute).
    pub tempo: u32,
    /// Key signature at the start.
    pub key: KeySig,
    /// Part playing order from `Y:`, else from a header `P:`.
    pub order: Option<Vec<char>>,
}

impl Timeline {
    /// For each step, the index of its voice in order of first appearance (0 before any `V:`).
    pub fn voice_of_steps(&self) -> Vec<usize> {
        let mut names: Vec<&str> = Vec::new();
        let mut current = 0;
        self.steps
            .iter()
            .map(|s| {
                if let StepKind::Voice(id) = &s.kind {
                    current = match names.iter().position(|n| n == id) {
                        Some(k) => k + 1,
                        None => {
                            names.push(id);
                            names.len()
                        }
                    };
                }
                current
            })
            .collect()
    }
}

/// Default tempo: 120 quarter notes per minute.
pub const DEFAULT_TEMPO: u32 = 500_000;

fn frac(n: i128, d: i128) -> Frac {
    Frac::new(n, d).unwrap_or(Frac::ONE)
}

/// Resolves a parsed tune. Problems in field values, pitches out of MIDI range and misplaced
/// broken-rhythm marks are returned with their positions; the timeline is built regardless.
pub fn build(tune: &Tune) -> (Timeline, Vec<Problem>) {
    let mut problems: Vec<Problem> = Vec::new();
    let mut meter: Option<Meter> = None;
    let mut unit: Option<Frac> = None;
    let mut key = KeySig::default();
    let mut y_order: Option<Vec<char>> = None;
    let mut p_order: Option<Vec<char>> = None;
    let mut tempo_text: Option<(String, Pos)> = None;
    for f in &tune.header {
        match f.letter {
            'M' => match Meter::parse(&f.value) {
                Ok(m) => meter = Some(m),
                Err(e) => problems.push(Problem { pos: f.pos, message: e }),
            },
            'L' => match parse_unit_length(&f.value) {
                Ok(u) => unit = Some(u),
                Err(e) => problems.push(Problem { pos: f.pos, message: e }),
            },
            'K' => match KeySig::parse(&f.value) {
                Ok(k) => key = k,
                Err(e) => problems.push(Problem { pos: f.pos, message: e }),
            },
            'Q' => tempo_text = Some((f.value.clone(), f.pos)),
            'Y' => y_order = Some(parse_part_order(&f.value)),
            'P' => p_order = Some(parse_part_order(&f.value)),
            _ => {}
        }
    }
    let unit = unit.unwrap_or_else(|| meter.map(|m| m.default_unit()).unwrap_or_else(|| frac(1, 8)));
    let mut tempo = DEFAULT_TEMPO;
    if let Some((t, pos)) = tempo_text {
        match parse_tempo(&t, unit) {
            Ok(us) => tempo = us,
            Err(e) => problems.push(Problem { pos, message: e }),
        }
    }
    let order = y_order.or(p_order).filter(|o| !o.is_empty());
    let first_voice = tune.header.iter().find(|f| f.letter == 'V').map(|f| (voice_id(&f.value), f.pos));
    let mut b = Builder {
        steps: Vec::new(),
        problems,
        unit,
        meter,
        key: key.clone(),
        bar_acc: [None; 7],
        tuplet: None,
        pending_broken: None,
        last_sound: None,
        prev_tied: Vec::new(),
    };
    if let Some((id, pos)) = first_voice {
        b.push(pos, StepKind::Voice(id));
    }
    for e in &tune.body {
        b.element(e.pos, &e.kind);
    }
    if let Some((_, pos)) = b.pending_broken {
        b.problems.push(Problem { pos, message: "broken rhythm '>' or '<' needs a note after it".into() });
    }
    (Timeline { steps: b.steps, meter, unit, tempo, key, order }, b.problems)
}

/// The voice a `V:` field names: its first word (`V:T1 clef=treble` is voice `T1`).
fn voice_id(value: &str) -> String {
    value.split_whitespace().next().unwrap_or("").to_string()
}

struct Builder {
    steps: Vec<Step>,
    problems: Vec<Problem>,
    unit: Frac,
    meter: Option<Meter>,
    key: KeySig,
    /// Accidentals met so far in this bar, by letter (all octaves, ABC 2.1's default
    /// `%%propagate-accidentals pitch`).
    bar_acc: [Option<i8>; 7],
    /// Active tuplet: notes left and time factor q/p.
    tuplet: Option<(u32, Frac)>,
    /// Factor for the next note from a broken rhythm mark, and where the mark was.
    pending_broken: Option<(Frac, Pos)>,
    /// Index in `steps` of the last sound, while no bar line has followed it.
    last_sound: Option<usize>,
    /// Notes of the previous sound that are tied forward: (letter, octave, pitch).
    prev_tied: Vec<(char, i32, u8)>,
}

impl Builder {
    fn problem(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems.push(Problem { pos, message: message.into() });
    }

    fn push(&mut self, pos: Pos, kind: StepKind) {
        self.steps.push(Step { pos, kind });
    }

    /// Time factor for the next note from tuplets and broken rhythm (consumes one tuplet note).
    fn factor(&mut self) -> Frac {
        let mut f = Frac::ONE;
        if let Some((left, tf)) = self.tuplet {
            f = f.checked_mul(tf).unwrap_or(f);
            self.tuplet = if left > 1 { Some((left - 1, tf)) } else { None };
        }
        if let Some((bf, _)) = self.pending_broken.take() {
            f = f.checked_mul(bf).unwrap_or(f);
        }
        f
    }

    /// Pitch of a written note: its own accidental (which then holds to the bar line), else a
    /// tie from the same letter and octave just before, else an earlier accidental in the bar,
    /// else the key signature.
    fn pitch(&mut self, pos: Pos, n: &Note) -> Option<u8> {
        self.pitch_of(pos, n, true)
    }

    /// [`Builder::pitch`]; `holds`: whether an accidental holds to the bar line (not for grace
    /// notes, whose accidentals are their own).
    fn pitch_of(&mut self, pos: Pos, n: &Note, holds: bool) -> Option<u8> {
        let li = letter_index(n.letter)?;
        let alter: i32 = if let Some(a) = n.accidental {
            if holds {
                self.bar_acc[li] = Some(a.semitones());
            }
            a.semitones() as i32
        } else if let Some(&(_, _, p)) = self.prev_tied.iter().find(|(l, o, _)| *l == n.letter && *o == n.octave) {
            return Some(p);
        } else {
            self.bar_acc[li].unwrap_or(self.key.alter[li]) as i32
        };
        let p = midi_pitch(n.letter, n.octave, alter)?;
        if !(0..=127).contains(&p) {
            self.problem(pos, "note is outside the MIDI range (too many octave marks?)");
            return None;
        }
        Some(p as u8)
    }

    fn duration(&mut self, pos: Pos, length: Frac) -> Frac {
        match length.checked_mul(self.unit) {
            Some(d) => d,
            None => {
                self.problem(pos, "note length too large");
                Frac::ZERO
            }
        }
    }

    fn sound(&mut self, pos: Pos, notes: Vec<Sounding>, advance: Frac, whole_bars: Option<u32>) {
        self.prev_tied = Vec::new();
        self.last_sound = Some(self.steps.len());
        self.push(pos, StepKind::Sound { notes, advance, whole_bars });
    }

    fn element(&mut self, pos: Pos, kind: &ElementKind) {
        match kind {
            ElementKind::Note(n) => {
                let f = self.factor();
                let d = self.duration(pos, n.length);
                let d = d.checked_mul(f).unwrap_or(d);
                let pitch = self.pitch(pos, n);
                let tied: Vec<(char, i32, u8)> =
                    pitch.filter(|_| n.tie).map(|p| (n.letter, n.octave, p)).into_iter().collect();
                let notes = pitch.map(|p| Sounding { pitch: p, duration: d, tie: n.tie }).into_iter().collect();
                self.sound(pos, notes, d, None);
                self.prev_tied = tied;
            }
            ElementKind::Chord { notes: written, length, tie } => {
                let f = self.factor();
                let mut notes = Vec::new();
                let mut tied = Vec::new();
                let mut advance = None;
                for n in written {
                    let total = n.length.checked_mul(*length).unwrap_or(n.length);
                    let d = self.duration(pos, total);
                    let d = d.checked_mul(f).unwrap_or(d);
                    advance.get_or_insert(d);
                    if let Some(p) = self.pitch(pos, n) {
                        let t = n.tie || *tie;
                        if t {
                            tied.push((n.letter, n.octave, p));
                        }
                        notes.push(Sounding { pitch: p, duration: d, tie: t });
                    }
                }
                self.sound(pos, notes, advance.unwrap_or(Frac::ZERO), None);
                self.prev_tied = tied;
            }
            ElementKind::Rest(r) => {
                if r.whole_bars {
                    let bar = self.meter.and_then(|m| m.bar).unwrap_or(Frac::ONE);
                    let d = bar.checked_mul(r.length).unwrap_or(bar);
                    let n = r.length.num().clamp(0, u32::MAX as i128) as u32;
                    self.sound(pos, Vec::new(), d, Some(n));
                } else {
                    let f = self.factor();
                    let d = self.duration(pos, r.length);
                    let d = d.checked_mul(f).unwrap_or(d);
                    self.sound(pos, Vec::new(), d, None);
                }
            }
            ElementKind::Bar(b) => {
                self.bar_acc = [None; 7];
                self.last_sound = None;
                self.push(pos, StepKind::Bar(*b));
            }
            ElementKind::Ending(n) => self.push(pos, StepKind::Ending(n.clone())),
            ElementKind::Tuplet(t) => {
                let compound = self.meter.is_some_and(|m| m.num % 3 == 0 && m.num > 3 && m.den == 8);
                let q = t.q.unwrap_or(match t.p {
                    2 | 4 | 8 => 3,
                    3 | 6 => 2,
                    _ if compound => 3,
                    _ => 2,
                });
                let r = t.r.unwrap_or(t.p);
                self.tuplet = Some((r, frac(q as i128, t.p as i128)));
            }
            ElementKind::Broken { first_long, count } => {
                let short = frac(1, 1i128 << *count);
                let long = Frac::int(2).checked_sub(short).unwrap_or(Frac::ONE);
                let (before, after) = if *first_long { (long, short) } else { (short, long) };
                let Some(i) = self.last_sound else {
                    self.problem(pos, "broken rhythm '>' or '<' needs a note before it");
                    return;
                };
                if let Some(Step { kind: StepKind::Sound { notes, advance, .. }, .. }) = self.steps.get_mut(i) {
                    *advance = advance.checked_mul(before).unwrap_or(*advance);
                    for n in notes.iter_mut() {
                        n.duration = n.duration.checked_mul(before).unwrap_or(n.duration);
                    }
                }
                self.pending_broken = Some((after, pos));
            }
            ElementKind::ChordSymbol(s) => self.push(pos, StepKind::ChordSymbol(s.clone())),
            ElementKind::Field(f) => match f.letter {
                'K' => match KeySig::parse(&f.value) {
                    Ok(k) => {
                        self.key = k.clone();
                        self.bar_acc = [None; 7];
                        self.push(pos, StepKind::Key(k));
                    }
                    Err(e) => self.problem(f.pos, e),
                },
                'M' => match Meter::parse(&f.value) {
                    Ok(m) => {
                        self.meter = Some(m);
                        self.push(pos, StepKind::Meter(m));
                    }
                    Err(e) => self.problem(f.pos, e),
                },
                'L' => match parse_unit_length(&f.value) {
                    Ok(u) => self.unit = u,
                    Err(e) => self.problem(f.pos, e),
                },
                'Q' => match parse_tempo(&f.value, self.unit) {
                    Ok(t) => self.push(pos, StepKind::Tempo(t)),
                    Err(e) => self.problem(f.pos, e),
                },
                'P' => self.push(pos, StepKind::Part(f.value.trim().to_string())),
                'V' => {
                    // A new voice starts its own bars, tuplets and broken rhythm.
                    self.bar_acc = [None; 7];
                    self.tuplet = None;
                    self.last_sound = None;
                    self.prev_tied = Vec::new();
                    self.push(pos, StepKind::Voice(voice_id(&f.value)));
                }
                _ => {}
            },
            ElementKind::Grace(written) => {
                let mut notes = Vec::with_capacity(written.len());
                for n in written {
                    let d = n.length.checked_mul(GRACE_UNIT).unwrap_or(GRACE_UNIT);
                    if let Some(p) = self.pitch_of(pos, n, false) {
                        notes.push(Sounding { pitch: p, duration: d, tie: false });
                    }
                }
                if !notes.is_empty() {
                    self.push(pos, StepKind::Grace(notes));
                }
            }
            ElementKind::Annotation(_) | ElementKind::Decoration(_) | ElementKind::SlurStart | ElementKind::SlurEnd => {
            }
        }
    }
}
