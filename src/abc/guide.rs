//! An incremental ABC state for guided sampling: fed a tune one character at a time, it says
//! which next characters keep the tune valid under the checker ([`super::check_text`]).
//!
//! It accepts a subset of ABC 2.1, the one the Nottingham edition uses: header fields from
//! `X:` to `K:` (free text in `T:`, `S:`, `R:` and the like; `M:`, `L:`, `K:`, `Q:` from known
//! values; `Y:`/`P:` play orders of capital letters), and a single-voice body of notes, rests,
//! chords `[df]`, triplets `(3`, chord symbols, ties, slurs, decorations, bar lines, repeats,
//! endings and `P:`/`M:`/`K:`/`L:`/`Q:` lines. Free text in the body is kept to what it is for,
//! though the checker reads none of it: chord symbols are chords of the known types, decorations
//! are named ones, comment lines are short and hold no bars, and a chord symbol, decoration or
//! slur stands over a note, so a model cannot hide a bar of music where the bar lengths are not
//! counted. Everything it accepts is valid; what it cannot
//! decide cheaply it refuses (a short bar after a single bar line must end its line, a tuplet
//! must end before the bar line and the line's end, an ending may not follow a short bar's
//! single bar line). A stream can still run out of characters before its tune is complete:
//! the sampler reports those ([`crate::sample::GuideStats`]).
//!
//! Bar lengths mirror [`super::check`]: no bar is longer than the meter; a short bar must open
//! or close a section (start of the tune, a part or meter; a repeat sign or double bar; before
//! a part, a meter change or the end) or be completed by the first bar of the next line.
//! Durations are counted in integer ticks ([`TICKS`] per whole note), so a step is a few
//! integer operations: [`Guide`] is `Copy`, its update is O(1) and never allocates.

/// Shaped mode ([`Guide::shaped`]): the parts of a tune, unless its play order promises more.
/// Most Nottingham tunes have two (their median; 16 bars, AABB with the repeats, is the most
/// common length); left free, a model that does not count parts writes on until `--len` steers
/// it to an end.
const MAX_PARTS: u8 = 2;

/// Ticks per whole note: divisible by every duration the automaton allows (unit lengths 1/2 to
/// 1/16, note lengths in quarters of the unit, triplets at 2/3).
pub const TICKS: u32 = 2304;

/// Note length suffixes allowed after a note, rest or chord: text, numerator, denominator.
const LENGTHS: &[(&str, u32, u32)] = &[
    ("", 1, 1),
    ("2", 2, 1),
    ("3", 3, 1),
    ("4", 4, 1),
    ("5", 5, 1),
    ("6", 6, 1),
    ("7", 7, 1),
    ("8", 8, 1),
    ("12", 12, 1),
    ("16", 16, 1),
    ("/", 1, 2),
    ("/2", 1, 2),
    ("//", 1, 4),
    ("/4", 1, 4),
    ("3/2", 3, 2),
    ("3/4", 3, 4),
    ("5/2", 5, 2),
    ("7/2", 7, 2),
];

/// Meters: text, numerator, denominator of the bar in whole notes.
const METERS: &[(&str, u32, u32)] = &[
    ("6/8", 6, 8),
    ("4/4", 4, 4),
    ("3/4", 3, 4),
    ("2/4", 2, 4),
    ("2/2", 2, 2),
    ("9/8", 9, 8),
    ("12/8", 12, 8),
    ("6/4", 6, 4),
    ("5/4", 5, 4),
    ("3/8", 3, 8),
    ("3/2", 3, 2),
    ("C", 4, 4),
    ("C|", 2, 2),
];

/// Unit note lengths: text and ticks.
const UNITS: &[(&str, u32)] = &[("1/8", TICKS / 8), ("1/4", TICKS / 4), ("1/16", TICKS / 16), ("1/2", TICKS / 2)];

/// Keys: tonic and mode as the edition writes them.
const KEYS: &[&str] = &[
    "C", "G", "D", "A", "E", "B", "F", "Bb", "Eb", "Ab", "F#", "Am", "Em", "Bm", "Dm", "Gm", "Cm", "Fm", "F#m", "C#m",
    "Ador", "Ddor", "Edor", "Gdor", "Amix", "Dmix", "Gmix", "Emix",
];

/// [`Guide::key`] before the header's `K:` is written.
const NO_KEY: u8 = u8::MAX;

/// Longest bar line (run of `|`, `:` and `]`) the automaton follows.
const MAX_BAR: usize = 4;

/// Free text header fields (they do not change the music).
const TEXT_FIELDS: &[u8] = b"TSRNCOZBDHAFG";

/// Tuplets: the digit after `(`, its notes p and their time q (p notes in the time of q).
const TUPLETS: &[(u8, u32, u32)] = &[(b'2', 2, 3), (b'3', 3, 2), (b'4', 4, 3)];

/// The smallest note length in [`LENGTHS`], in quarters of the unit.
const MIN_QUARTERS: u32 = 1;

/// Most notes in a chord `[...]` (the edition's have two or three). A model that loses its way
/// inside a chord can write hundreds, where the checker's reading of the chord's length and the
/// automaton's part ways; the cap makes it close the chord.
const MAX_CHORD: usize = 4;

/// Longest field value, chord symbol or decoration the automaton follows.
const BUF: usize = 24;

/// Chord symbol types after the root (and its `#`/`b`): the edition's (`d` and `a` are its
/// diminished and augmented) and the common spellings of the same chords.
const CHORD_TYPES: &[&str] = &["", "m", "7", "m7", "6", "m6", "9", "7b9", "d", "a", "dim", "aug", "maj7", "sus4"];

/// Most chord symbols and decorations before the note they stand over (the edition writes two
/// chord symbols at most).
const MAX_SYMBOLS: u8 = 3;

/// Decorations `!name!` (or `+name+`) the guide writes: ABC 2.1's named ones (the edition uses
/// `!trill!`). Free text there would let a model hide music in it, as in chord symbols.
const DECORATIONS: &[&str] = &[
    "trill",
    "fermata",
    "accent",
    "emphasis",
    "mordent",
    "lowermordent",
    "uppermordent",
    "pralltriller",
    "roll",
    "turn",
    "tenuto",
    "staccato",
    "upbow",
    "downbow",
    "breath",
    "slide",
    "arpeggio",
    "p",
    "pp",
    "mp",
    "mf",
    "f",
    "ff",
];

/// Is `v` (the text between a chord symbol's quotes, so far) the start of a chord symbol, and
/// is it a whole one? A chord symbol: an optional leading space, then a root `A`-`G` with an
/// optional `#` or `b`, a type from [`CHORD_TYPES`] and an optional bass `/` note (`#`, `b` or
/// the edition's `+` after it), the whole optionally in parentheses; or a single space. Free
/// text between quotes would let a model write anything there (bars of music included) and
/// still pass the checker, so the guide keeps to chords.
fn chord_symbol(v: &[u8]) -> (bool, bool) {
    const NO: (bool, bool) = (false, false);
    let mut i = usize::from(v.first() == Some(&b' '));
    if i == v.len() {
        return (true, i == 1);
    }
    let paren = v[i] == b'(';
    i += usize::from(paren);
    if i == v.len() {
        return (true, false);
    }
    if !(b'A'..=b'G').contains(&v[i]) {
        return NO;
    }
    i += 1;
    if i < v.len() && matches!(v[i], b'#' | b'b') {
        i += 1;
    }
    let j = v[i..].iter().position(|&b| b == b'/' || b == b')').map_or(v.len(), |p| i + p);
    let t = &v[i..j];
    if j == v.len() {
        let prefix = CHORD_TYPES.iter().any(|w| w.as_bytes().starts_with(t));
        return (prefix, !paren && CHORD_TYPES.iter().any(|w| w.as_bytes() == t));
    }
    if !CHORD_TYPES.iter().any(|w| w.as_bytes() == t) {
        return NO;
    }
    i = j;
    if v[i] == b'/' {
        i += 1;
        if i == v.len() {
            return (true, false);
        }
        if !is_note_letter(v[i]) {
            return NO;
        }
        i += 1;
        if i < v.len() && matches!(v[i], b'#' | b'b' | b'+') {
            i += 1;
        }
        if i == v.len() {
            return (true, !paren);
        }
    }
    if paren && v[i] == b')' && i + 1 == v.len() { (true, true) } else { NO }
}

/// Where the automaton stands in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Start of a header line.
    HeaderLine,
    /// A field letter was written; `:` must follow.
    FieldColon(u8),
    /// Inside a field's value.
    FieldValue(u8),
    /// A `%` comment line (header or body), to its end.
    CommentLine,
    /// Start of a body line.
    BodyLine,
    /// Between elements of a music line.
    Music,
    /// Inside a chord symbol `"..."` (its text so far in the buffer).
    Quote,
    /// Inside a decoration `!name!` or `+name+`.
    Deco(u8),
    /// After an accidental: `^`, `_` (may double) or `=`; then a letter. The flag: in a chord.
    Accidental(u8, bool),
    /// After a note letter or rest: octave marks, then the length suffix in the buffer.
    /// Fields: upper-case letter (octave marks `,`) or lower-case (`'`); is a rest; in a chord.
    Note { upper: bool, rest: bool, chord: bool },
    /// Length suffix of a note, rest or chord (in the buffer); the flag: of a chord's `]`.
    Length { rest: bool, chord: bool },
    /// Inside a chord `[...]`, between notes.
    Chord,
    /// Length suffix of a note inside a chord (in the buffer).
    ChordNoteLength,
    /// After `(`: a `3` makes a triplet, anything else is a slur.
    Paren,
    /// After `(p` (the count of notes).
    Triplet(u8),
    /// After `[`: a digit makes an ending, a note a chord.
    Bracket,
    /// A bar line run in the buffer.
    BarRun,
    /// An ending number was written.
    Ending(u8),
    /// After `\`: the line must end.
    Continue,
    /// The tune has ended (a blank line after a complete tune).
    Ended,
}

/// The incremental state. Feed it characters with [`Guide::push`]; ask [`Guide::allows`]
/// which next ones keep the tune valid, [`Guide::may_end`] whether it may end here.
#[derive(Clone, Copy, Debug)]
pub struct Guide {
    mode: Mode,
    buf: [u8; BUF],
    len: u8,
    /// Header: letters seen (bit per capital letter), whether any line was written.
    seen: u32,
    /// Ticks of a bar of the meter in force, and of the unit note length (0 until known).
    full: u32,
    unit: u32,
    unit_set: bool,
    /// Current bar: ticks so far, whether it holds music, whether it opens a section.
    bar: u32,
    music: bool,
    opens: bool,
    /// A short bar closed by a single bar line: the ticks the next line's first bar owes.
    owe: u32,
    /// The current bar completes a short bar on the line before: it must be this long.
    target: u32,
    /// After a short bar's single bar line only the line's end may follow.
    must_eol: bool,
    /// Triplet notes still to come.
    triplet: u8,
    /// Ticks of the chord being written (its first note), notes in it.
    chord_notes: u8,
    /// A note or chord was the last element (a tie may follow).
    can_tie: bool,
    /// Repeats: `|:` open, music since it, first ending waiting for `:|`, `:|` seen in the part.
    repeat_open: bool,
    music_since_open: bool,
    first_ending: bool,
    repeat_end_seen: bool,
    /// Parts: order promised by `Y:` and by a header `P:` (bit per letter), labels in the body.
    y_order: u32,
    p_order: u32,
    /// Letters of the play order being written.
    pending: u32,
    labels: u32,
    any_note: bool,
    /// No note since the last bar line.
    last_is_bar: bool,
    /// Multiplier of a chord's length: its first note's length (numerator, denominator).
    chord_len: (u32, u32),
    /// Tuplet time factor (numerator, denominator): 2/3 for `(3`.
    factor: (u32, u32),
    /// The header's K: has been written.
    body: bool,
    /// The body line so far holds only spaces (were it to end, it would end the tune).
    blank: bool,
    /// Chord symbols, decorations and slurs since the last note, rest or chord (they stand
    /// over the next one), and whether a decoration, roll or slur is among them.
    symbols: u8,
    bound: bool,
    /// The last character ended a note, rest or chord (a slur may close here).
    after_note: bool,
    /// The body may not change the meter, or the key ([`Guide::keep_header`]).
    keep_meter: bool,
    keep_key: bool,
    /// The header's key: its place in [`KEYS`] ([`NO_KEY`] before it is written). A kept key
    /// may be restated on the line after a part label (where `train --restate-key` writes it).
    key: u8,
    /// The line before this one was a body `P:` label.
    after_label: bool,
    /// Parts of 8 bars ([`Guide::shaped`]): ticks of the part so far (the current bar's notes
    /// included), and parts completed.
    shape: bool,
    part_ticks: u32,
    parts_done: u8,
}

impl Default for Guide {
    fn default() -> Self {
        Guide::new()
    }
}

fn starts(buf: &[u8], word: &str) -> bool {
    word.as_bytes().starts_with(buf)
}

fn is_note_letter(c: u8) -> bool {
    matches!(c, b'A'..=b'G' | b'a'..=b'g')
}

fn bit(c: u8) -> u32 {
    if c.is_ascii_uppercase() { 1 << (c - b'A') } else { 0 }
}

impl Guide {
    /// The state before the first character of a tune (`X:` must come first).
    pub fn new() -> Guide {
        Guide {
            mode: Mode::HeaderLine,
            buf: [0; BUF],
            len: 0,
            seen: 0,
            full: 0,
            unit: 0,
            unit_set: false,
            bar: 0,
            music: false,
            opens: true,
            owe: 0,
            target: 0,
            must_eol: false,
            triplet: 0,
            chord_notes: 0,
            can_tie: false,
            repeat_open: false,
            music_since_open: false,
            first_ending: false,
            repeat_end_seen: false,
            y_order: 0,
            p_order: 0,
            pending: 0,
            labels: 0,
            any_note: false,
            last_is_bar: true,
            chord_len: (1, 1),
            factor: (1, 1),
            body: false,
            blank: false,
            symbols: 0,
            bound: false,
            after_note: false,
            keep_meter: false,
            keep_key: false,
            key: NO_KEY,
            after_label: false,
            shape: false,
            part_ticks: 0,
            parts_done: 0,
        }
    }

    /// The same state, refusing `M:` (if `meter`) and `K:` (if `key`) fields once the header's
    /// own have been written: a tune sampled for a meter and key the user chose stays in them.
    /// A body `K:` that restates the header's key on the line after a part label (`P:`)
    /// changes nothing and is allowed there.
    pub fn keep_header(self, meter: bool, key: bool) -> Guide {
        Guide { keep_meter: meter, keep_key: key, ..self }
    }

    /// The same state, writing tunes of two or more parts of 8 bars each, as players count
    /// them (the judge's count: a pickup and the short last bar that completes it are one bar):
    /// a part may close (a double bar, a repeat sign) only after 7.5 to 8.5 bars of music, a
    /// single bar line may not pass 8 bars, notes may not pass 8.5, and the tune ends after its
    /// second part (later only for parts its play order promises). So that the count is plain, no first and second endings, no bar
    /// left short for the next line to complete, and a body `M:` or `P:` only between parts.
    pub fn shaped(self) -> Guide {
        Guide { shape: true, ..self }
    }

    /// Characters before the end of `--len` from which a sampler should steer toward the end
    /// ([`crate::sample`]): more than the closer needs from any state (two parts of 8 bars in
    /// shaped mode), and [`Guide::close_slack`] more.
    pub fn close_window(&self) -> usize {
        if self.shape { 384 } else { crate::sample::CLOSE_WINDOW }
    }

    /// The most one character may add to what the closer needs (in shaped mode, starting a new
    /// part: 8.5 bars of the widest meter).
    pub fn close_slack(&self) -> usize {
        if self.shape { 160 } else { crate::sample::CLOSE_SLACK }
    }

    /// Would `c` keep the tune valid (some valid completion still exists)?
    pub fn allows(&self, c: char) -> bool {
        let mut g = *self;
        g.push(c)
    }

    /// Feeds one character. Returns false, leaving the state unspecified, when `c` would make
    /// the tune invalid or leaves the subset the automaton follows.
    pub fn push(&mut self, c: char) -> bool {
        if !c.is_ascii() {
            // Only free text (titles, chord symbols, comments) may hold other characters.
            return matches!(self.mode, Mode::FieldValue(l) if TEXT_FIELDS.contains(&l))
                || matches!(self.mode, Mode::CommentLine);
        }
        self.step(c as u8)
    }

    /// The tune is complete: were it to end here (at a line's start), it would be valid.
    pub fn may_end(&self) -> bool {
        matches!(self.mode, Mode::BodyLine) && self.complete()
    }

    /// A blank line ended the tune.
    pub fn ended(&self) -> bool {
        self.mode == Mode::Ended
    }

    /// The next character of a fixed way to finish the tune from here: close what is open
    /// (a chord symbol, decoration, chord, field, comment), fill a bar that must reach an exact
    /// length or a running triplet with `c`s, close the bar with a bar line that may be short
    /// (`|]`, or `:|` while a repeat or first ending is open), add the parts `Y:`/`P:` promised,
    /// then the blank line. `None` in the header (the model writes it) or when no candidate is
    /// legal. Deterministic; tries a few candidates, each an O(1) [`Guide::allows`].
    pub fn closing_char(&self) -> Option<char> {
        let first = |cands: &[u8]| cands.iter().copied().find(|&c| self.allows(c as char)).map(char::from);
        if !self.body {
            return None;
        }
        match self.mode {
            Mode::Ended | Mode::HeaderLine => None,
            Mode::FieldColon(_) => first(b":"),
            Mode::FieldValue(l) => {
                if self.allows('\n') {
                    return Some('\n');
                }
                // The first known value the buffer starts; a play order's first missing part.
                let b = self.buf();
                let next = |w: &str| {
                    let w = w.as_bytes();
                    (w.len() > b.len() && w.starts_with(b)).then(|| w[b.len()])
                };
                let next = match l {
                    b'M' => METERS.iter().find_map(|m| next(m.0)),
                    b'L' => UNITS.iter().find_map(|u| next(u.0)),
                    b'K' => KEYS.iter().find_map(|k| next(k)),
                    b'Q' => next("1/4=120"),
                    _ => None,
                };
                let letter = (b'A'..=b'Z').find(|&x| self.part_order() & !self.labels & bit(x) != 0).unwrap_or(b'A');
                first(&[next.unwrap_or(b'1'), letter, b'1', b'2', b'0'])
            }
            Mode::CommentLine | Mode::Continue => first(b"\n"),
            // Closes the symbol, or goes on to one that can close: a root or bass note, or the
            // next letter of a chord type (`7b9`, `maj7`, `dim`, `sus4`).
            Mode::Quote => first(b"\"C97jimus4)"),
            Mode::Deco(d) => {
                let b = self.buf();
                let next = DECORATIONS.iter().find_map(|w| w.as_bytes().get(b.len()).filter(|_| starts(b, w)));
                first(&[d, *next.unwrap_or(&d)])
            }
            Mode::Accidental(..) | Mode::Paren | Mode::Triplet(_) => first(b"cC"),
            Mode::Bracket => first(b"c1"),
            Mode::Chord => first(b"]c"),
            Mode::ChordNoteLength => first(b"]/"),
            Mode::BarRun => match self.buf() {
                b":" => first(b"|"),
                // Shaped, a part short of 8 bars goes on after a single bar line.
                b"|" if self.shape && !self.part_may_close() => self.commit_then_close(),
                b"|" => first(b"]|"),
                _ => self.commit_then_close(),
            },
            Mode::Note { .. } | Mode::Length { .. } | Mode::Ending(_) => {
                self.commit_then_close().or_else(|| first(b"/42"))
            }
            Mode::BodyLine => {
                let open = self.repeat_open || self.first_ending || !self.last_is_bar;
                if self.complete() {
                    first(b"\n")
                } else if self.full == 0 {
                    first(b"M")
                } else if self.owe > 0 || !self.any_note || self.symbols > 0 {
                    first(b"cz")
                } else if !open && self.parts_owed() && !(self.shape && self.part_ticks > 0) {
                    first(b"P")
                } else {
                    self.music_closer()
                }
            }
            Mode::Music => self.music_closer(),
        }
    }

    /// Parts the play order promises (`Y:`, header `P:`) that the body has not labelled yet.
    fn parts_owed(&self) -> bool {
        self.labels != 0 && self.part_order() & !self.labels != 0
    }

    /// Shaped mode: the part has enough music to close (more than 7.5 bars).
    fn part_may_close(&self) -> bool {
        2 * self.part_ticks > 15 * self.full
    }

    /// [`Guide::closing_char`] in a music line.
    fn music_closer(&self) -> Option<char> {
        let first = |cands: &[u8]| cands.iter().copied().find(|&c| self.allows(c as char)).map(char::from);
        if self.must_eol {
            first(b"\n")
        } else if self.triplet > 0 || (self.target > 0 && self.bar < self.target) || !self.any_note || self.symbols > 0
        {
            first(b"cz")
        } else if self.shape && !self.complete() {
            // Fill the part to 8 bars with notes and single bar lines, then close it (a second
            // part follows the same way).
            if self.part_may_close() {
                if self.repeat_open { first(b":|") } else { first(b"|") }
            } else if self.part_ticks == 0 && self.last_is_bar && self.parts_owed() {
                // Between parts, with a promised part to come: its `P:` line first.
                first(b"\n")
            } else {
                first(b"cz|")
            }
        } else if !self.last_is_bar || self.repeat_open || self.first_ending {
            if self.repeat_open || self.first_ending { first(b":|") } else { first(b"|") }
        } else {
            first(b"\n")
        }
    }

    /// For a pending element (note length, bar line, ending) that any non-continuing character
    /// ends: the closer's character after it, if legal here and not one that would continue the
    /// element instead (a `:` after `|]`), else a space (which ends it).
    fn commit_then_close(&self) -> Option<char> {
        let mut g = *self;
        if !g.push(' ') {
            return None;
        }
        match g.closing_char() {
            Some(c) if !"|:]/,'-0123456789".contains(c) && self.allows(c) => Some(c),
            _ => Some(' '),
        }
    }

    /// How many characters [`Guide::closing_char`] writes to end the tune (the last newline of
    /// the blank line included; 0 once ended), or `None` if that is more than `cap` or it cannot
    /// finish. At most `cap` steps of O(1) each: no allocation.
    pub fn to_finish(&self, cap: usize) -> Option<usize> {
        let mut g = *self;
        for n in 0..=cap {
            if g.ended() {
                return Some(n);
            }
            if n == cap || !g.push(g.closing_char()?) {
                return None;
            }
        }
        None
    }

    /// The play order the body must deliver: `Y:`'s if given, else the header `P:`'s.
    fn part_order(&self) -> u32 {
        if self.seen & bit(b'Y') != 0 { self.y_order } else { self.p_order }
    }

    fn complete(&self) -> bool {
        let order = self.part_order();
        (!self.shape || (self.part_ticks == 0 && self.parts_done >= 2))
            && self.any_note
            && self.last_is_bar
            && self.target == 0
            && self.triplet == 0
            && self.symbols == 0
            && !self.repeat_open
            && !self.first_ending
            && (self.labels == 0 || order & !self.labels == 0)
    }

    fn buf(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    fn put(&mut self, c: u8) -> bool {
        if (self.len as usize) < BUF {
            self.buf[self.len as usize] = c;
            self.len += 1;
            true
        } else {
            false
        }
    }

    /// The most ticks the current bar may hold.
    fn limit(&self) -> u32 {
        let bar = if self.target > 0 { self.target } else { self.full };
        if self.shape {
            // No note may take the part past 8.5 bars, nor begin a part past the last (unless a
            // part the play order promises is still to come).
            if self.parts_done >= MAX_PARTS && !self.parts_owed() {
                return 0;
            }
            bar.min((17 * self.full / 2).saturating_sub(self.part_ticks - self.bar))
        } else {
            bar
        }
    }

    fn step(&mut self, c: u8) -> bool {
        // A pending element (note length, bar line, ending) ends at the first character that
        // does not continue it; then `c` is read afresh.
        loop {
            match self.mode {
                Mode::Ended => return false,
                Mode::HeaderLine => return self.header_line(c),
                Mode::FieldColon(l) => {
                    if c != b':' {
                        return false;
                    }
                    self.mode = Mode::FieldValue(l);
                    self.len = 0;
                    self.pending = 0;
                    return true;
                }
                Mode::FieldValue(l) => return self.field_value(l, c),
                Mode::CommentLine => {
                    if c == b'\n' {
                        self.mode = if self.body { Mode::BodyLine } else { Mode::HeaderLine };
                        return true;
                    }
                    // A comment line in the body is short and holds no bars or chord symbols
                    // (the edition's: `%P:AAB`, `%%MIDI program 74`): music hidden in one would
                    // pass the checker unread.
                    return !self.body || (!matches!(c, b'|' | b'"') && self.put(c));
                }
                Mode::BodyLine => return self.body_line(c),
                Mode::Music => return self.music(c),
                Mode::Quote => {
                    if c == b'"' {
                        self.mode = Mode::Music;
                        self.symbols += 1;
                        return chord_symbol(self.buf()).1;
                    }
                    return self.put(c) && chord_symbol(self.buf()).0;
                }
                Mode::Deco(d) => {
                    if c == d {
                        self.mode = Mode::Music;
                        self.symbols += 1;
                        self.bound = true;
                        return DECORATIONS.iter().any(|w| w.as_bytes() == self.buf());
                    }
                    return self.put(c) && DECORATIONS.iter().any(|w| starts(self.buf(), w));
                }
                Mode::Accidental(a, chord) => {
                    if (a == b'^' || a == b'_') && c == a && self.len == 0 {
                        self.len = 1;
                        return true;
                    }
                    if !is_note_letter(c) {
                        return false;
                    }
                    self.len = 0;
                    return self.start_note(c, chord);
                }
                Mode::Note { upper, rest, chord } => {
                    let mark = if upper { b',' } else { b'\'' };
                    if !rest && c == mark && self.len < 2 {
                        self.len += 1;
                        return true;
                    }
                    self.len = 0;
                    self.mode = if chord { Mode::ChordNoteLength } else { Mode::Length { rest, chord: false } };
                    continue;
                }
                Mode::Length { rest, .. } => {
                    if c.is_ascii_digit() || c == b'/' {
                        if self.len as usize >= 4 {
                            return false;
                        }
                        self.buf[self.len as usize] = c;
                        self.len += 1;
                        return self.length_may_fit();
                    }
                    if !self.commit_length(rest) {
                        return false;
                    }
                    self.mode = Mode::Music;
                    continue;
                }
                Mode::ChordNoteLength => {
                    if c.is_ascii_digit() || c == b'/' {
                        if self.len >= 4 || !self.put(c) {
                            return false;
                        }
                        // The first note's length sets the chord's: some chord must still fit.
                        let g = *self;
                        return LENGTHS
                            .iter()
                            .any(|&(w, n, d)| starts(g.buf(), w) && (g.chord_notes > 0 || g.chord_fits((n, d))));
                    }
                    let b = self.buf;
                    let Some(&(_, n, d)) = LENGTHS.iter().find(|l| l.0.as_bytes() == &b[..self.len as usize]) else {
                        return false;
                    };
                    if self.chord_notes == 0 {
                        // The chord lasts as long as its first note (times its own length).
                        if !self.chord_fits((n, d)) {
                            return false;
                        }
                        self.chord_len = (n, d);
                    }
                    self.chord_notes += 1;
                    self.len = 0;
                    self.mode = Mode::Chord;
                    continue;
                }
                Mode::Chord => {
                    return match c {
                        b' ' => true,
                        b'-' => self.chord_notes > 0,
                        b']' if self.chord_notes > 0 => {
                            self.mode = Mode::Length { rest: false, chord: true };
                            self.len = 0;
                            self.length_may_fit()
                        }
                        _ if self.chord_notes as usize >= MAX_CHORD => false,
                        b'^' | b'_' | b'=' => {
                            self.mode = Mode::Accidental(c, true);
                            self.len = 0;
                            true
                        }
                        _ if is_note_letter(c) => self.start_note(c, true),
                        _ => false,
                    };
                }
                Mode::Paren => {
                    if let Some(&(_, p, q)) = TUPLETS.iter().find(|t| t.0 == c) {
                        self.factor = (q, p);
                        if self.triplet > 0 || !self.fits_triplet(p) {
                            return false;
                        }
                        self.mode = Mode::Triplet(p as u8);
                        return true;
                    }
                    if c.is_ascii_digit() {
                        return false;
                    }
                    // A slur: `c` starts the music it covers (not another slur, a bar line or
                    // the line's end).
                    if matches!(c, b'(' | b')' | b' ' | b'|' | b':' | b'\n' | b'\\') {
                        return false;
                    }
                    self.symbols += 1;
                    self.bound = true;
                    self.mode = Mode::Music;
                    continue;
                }
                Mode::Triplet(p) => {
                    if c.is_ascii_digit() || c == b':' {
                        return false;
                    }
                    self.triplet = p;
                    self.mode = Mode::Music;
                    continue;
                }
                Mode::Bracket => {
                    if c.is_ascii_digit() {
                        // Not inside the bar that must complete a short bar above: the
                        // checker reads the ending as cutting that bar short.
                        return self.symbols == 0 && self.target == 0 && self.start_ending(c);
                    }
                    self.mode = Mode::Chord;
                    self.chord_notes = 0;
                    self.chord_len = (1, 1);
                    if !(is_note_letter(c) || matches!(c, b'^' | b'_' | b'=')) || !self.chord_may_fit() {
                        return false;
                    }
                    continue;
                }
                Mode::BarRun => {
                    let ext = match c {
                        b'|' | b':' => true,
                        b']' => self.buf().last() == Some(&b'|'),
                        _ => false,
                    };
                    if ext {
                        if self.len as usize >= MAX_BAR || !self.put(c) {
                            return false;
                        }
                        return self.run_may_work();
                    }
                    let ending = c.is_ascii_digit();
                    if ending && !(self.buf() == b"|" || self.buf() == b":|") {
                        return false;
                    }
                    if !self.commit_bar() {
                        return false;
                    }
                    if ending {
                        return !self.must_eol && self.start_ending(c);
                    }
                    self.mode = Mode::Music;
                    continue;
                }
                Mode::Ending(n) => {
                    if c.is_ascii_digit() || c == b',' || c == b'-' {
                        return false;
                    }
                    if self.first_ending || (n > 1 && !self.repeat_end_seen) {
                        return false;
                    }
                    self.first_ending = n == 1;
                    self.mode = Mode::Music;
                    continue;
                }
                Mode::Continue => {
                    if c != b'\n' {
                        return false;
                    }
                    self.mode = Mode::Music;
                    continue;
                }
            }
        }
    }

    fn header_line(&mut self, c: u8) -> bool {
        if self.seen == 0 {
            // The tune starts with its X: field.
            if c != b'X' {
                return false;
            }
        } else if c == b'%' {
            self.mode = Mode::CommentLine;
            return true;
        }
        let ok = match c {
            b'X' => self.seen == 0,
            b'M' | b'L' | b'K' | b'Q' | b'Y' | b'P' => true,
            _ => TEXT_FIELDS.contains(&c),
        };
        if !ok {
            return false;
        }
        // M: is marked seen when its value is read.
        self.seen |= if c == b'M' { 0 } else { bit(c) } | 1 << 31;
        self.mode = Mode::FieldColon(c);
        true
    }

    /// Is the field value in the buffer complete (`done`) or a prefix of a good one?
    fn value_ok(&self, l: u8, done: bool) -> bool {
        let v = self.buf();
        let word = |w: &str| if done { v == w.as_bytes() } else { starts(v, w) };
        match l {
            b'X' => {
                let digits = v.iter().skip_while(|&&b| b == b' ').count();
                let lead = v.len() - digits;
                v[lead..].iter().all(u8::is_ascii_digit) && digits <= 6 && (!done || digits > 0)
            }
            b'M' => METERS.iter().any(|m| word(m.0)),
            b'L' => UNITS.iter().any(|u| word(u.0)),
            // A kept key may only be restated.
            b'K' if self.body && self.keep_key => KEYS.get(self.key as usize).is_some_and(|k| word(k)),
            b'K' => KEYS.iter().any(|k| word(k)),
            b'Q' => {
                let Some(rest) = v.strip_prefix(b"1/4=") else { return !done && starts(v, "1/4=") };
                rest.iter().all(u8::is_ascii_digit)
                    && rest.len() <= 3
                    && rest.first() != Some(&b'0')
                    && (!done || rest.len() >= 2)
            }
            b'P' if self.body => v.iter().all(u8::is_ascii_uppercase) && (!done || !v.is_empty()),
            b'Y' | b'P' => !done || self.pending != 0,
            _ => true,
        }
    }

    fn field_value(&mut self, l: u8, c: u8) -> bool {
        if c != b'\n' {
            if TEXT_FIELDS.contains(&l) {
                // `D::` or `A:|` would be a line of music, not a field.
                let first = self.len == 0;
                self.len = 1;
                return !(first && matches!(c, b':' | b'|'));
            }
            if matches!(l, b'Y' | b'P') && !self.body {
                // A play order: capital letters (spaces between groups).
                self.pending |= bit(c);
                return c.is_ascii_uppercase() || c == b' ';
            }
            return self.put(c) && self.value_ok(l, false);
        }
        if !self.value_ok(l, true) {
            return false;
        }
        let in_body = self.body;
        let v = self.buf;
        let v = &v[..self.len as usize];
        match l {
            b'M' => {
                let Some(m) = METERS.iter().find(|m| v == m.0.as_bytes()) else { return false };
                self.full = TICKS * m.1 / m.2;
                self.seen |= bit(b'M');
                if in_body {
                    self.close_section();
                }
            }
            b'L' => {
                let Some(u) = UNITS.iter().find(|u| v == u.0.as_bytes()) else { return false };
                self.unit = u.1;
                self.unit_set = true;
            }
            b'Y' => self.y_order = std::mem::take(&mut self.pending),
            b'P' if !in_body => self.p_order = std::mem::take(&mut self.pending),
            b'P' => {
                self.after_label = true;
                self.labels |= bit(v[0]);
                self.close_section();
                self.repeat_end_seen = false;
            }
            _ => {}
        }
        if l == b'K' && !in_body {
            self.body = true;
            self.key = KEYS.iter().position(|k| v == k.as_bytes()).map_or(NO_KEY, |i| i as u8);
            if !self.unit_set {
                let short = self.full > 0 && self.full < TICKS * 3 / 4;
                self.unit = if short { TICKS / 16 } else { TICKS / 8 };
            }
        }
        self.mode = if self.body { Mode::BodyLine } else { Mode::HeaderLine };
        true
    }

    /// A part or meter change: the bar before it closes a section, the next one opens one.
    fn close_section(&mut self) {
        self.owe = 0;
        self.target = 0;
        self.bar = 0;
        self.music = false;
        self.opens = true;
    }

    /// A blank line (or one of spaces only) ends the tune, if it is complete.
    fn end_tune(&mut self) -> bool {
        if !self.complete() {
            return false;
        }
        self.mode = Mode::Ended;
        true
    }

    fn body_line(&mut self, c: u8) -> bool {
        let after_label = std::mem::take(&mut self.after_label);
        match c {
            b'\n' => self.end_tune(),
            b'%' => {
                self.mode = Mode::CommentLine;
                self.len = 0;
                true
            }
            b'P' | b'M' | b'K' | b'L' | b'Q' => {
                // A part or meter change closes the bar before it (a short bar above, or one
                // that completes a short bar above, exactly); a part must not leave a repeat
                // or first ending open. Key, unit and tempo changes leave the bars alone.
                if self.triplet > 0 || self.symbols > 0 {
                    return false;
                }
                if (c == b'M' && self.keep_meter)
                    || (c == b'K' && self.keep_key && !(after_label && self.key != NO_KEY))
                {
                    return false;
                }
                // A unit change only where a bar begins: the rest of a bar broken across lines
                // (or owed by a short bar) may need a length the new unit cannot write (1/32
                // of a whole note is `/4` under `L:1/8` but `/8` under `L:1/4`), and the tune
                // could then never end.
                if c == b'L' && (self.bar > 0 || self.owe > 0) {
                    return false;
                }
                if matches!(c, b'P' | b'M') {
                    if self.target > 0 && self.bar != self.target {
                        return false;
                    }
                    // Shaped: a part or meter change only between parts.
                    if self.shape && self.part_ticks > 0 {
                        return false;
                    }
                    if c == b'P' && (self.repeat_open || self.first_ending) {
                        return false;
                    }
                }
                self.mode = Mode::FieldColon(c);
                true
            }
            // Without a meter (no M: in the header, none yet after K:) no note can be measured:
            // the line must be a field or comment (the checker accepts an M: there).
            _ if self.full == 0 => false,
            _ => {
                if self.owe > 0 {
                    // The first bar of this line completes the short bar above.
                    self.target = self.owe;
                    self.owe = 0;
                    if self.bar > 0 {
                        return false;
                    }
                }
                self.mode = Mode::Music;
                self.blank = true;
                self.music(c)
            }
        }
    }

    fn music(&mut self, c: u8) -> bool {
        if self.must_eol && !matches!(c, b'\n' | b'\\' | b' ') {
            return false;
        }
        let was_blank = self.blank;
        let after_note = std::mem::take(&mut self.after_note);
        if c != b' ' && c != b'\n' {
            self.blank = false;
        }
        // A chord symbol stands over a note: no bar line, tie or end of tune before it.
        if self.symbols > 0 && matches!(c, b'|' | b':' | b'-') {
            return false;
        }
        // A decoration, roll or slur is followed by its note, decorations or chord symbols.
        let note_start = is_note_letter(c)
            || matches!(c, b'z' | b'^' | b'_' | b'=' | b'[' | b'(' | b'!' | b'+' | b'~' | b'"' | b' ');
        if self.bound && !note_start {
            return false;
        }
        match c {
            b' ' => true,
            b'\n' if self.blank => self.end_tune(),
            b'\n' => {
                if self.triplet > 0 {
                    return false;
                }
                self.must_eol = false;
                self.can_tie = false;
                self.mode = Mode::BodyLine;
                true
            }
            b'"' | b'(' | b'[' => {
                // A chord symbol, slur, tuplet, chord or ending: a tie cannot reach past it.
                self.mode = match c {
                    b'"' => Mode::Quote,
                    b'(' => Mode::Paren,
                    _ => Mode::Bracket,
                };
                self.can_tie = false;
                self.len = 0;
                if c == b'"' {
                    return self.symbols < MAX_SYMBOLS && self.note_may_fit();
                }
                // `[` needs a chord that fits or an ending that may start; `(` a note.
                self.note_may_fit()
                    || (c == b'['
                        && !self.shape
                        && self.symbols == 0
                        && self.target == 0
                        && !self.first_ending
                        && !self.must_eol)
            }
            b'!' | b'+' => {
                self.mode = Mode::Deco(c);
                self.len = 0;
                self.symbols < MAX_SYMBOLS && self.note_may_fit()
            }
            b'~' => {
                self.symbols += 1;
                self.bound = true;
                self.symbols <= MAX_SYMBOLS && self.note_may_fit()
            }
            // Closes a slur after its last note.
            b')' => after_note,
            b'|' | b':' => {
                if self.triplet > 0 {
                    return false;
                }
                self.len = 0;
                self.put(c);
                self.mode = Mode::BarRun;
                self.can_tie = false;
                self.run_may_work()
            }
            // A tie joins one note to the next: a second `-` ties nothing.
            b'-' => std::mem::take(&mut self.can_tie),
            // Continues a line that holds music (a line of `\` alone says nothing); it ends the
            // line, which a running tuplet must not cross.
            b'\\' => {
                self.mode = Mode::Continue;
                self.triplet == 0 && !was_blank
            }
            // A comment after music on its line: the edition writes none, and free text there
            // could hold anything; comment lines stay open ([`Guide::body_line`]).
            b'%' => false,
            b'^' | b'_' | b'=' => {
                self.mode = Mode::Accidental(c, false);
                self.len = 0;
                self.note_may_fit()
            }
            b'z' => {
                self.mode = Mode::Note { upper: false, rest: true, chord: false };
                self.len = 0;
                self.note_may_fit()
            }
            _ if is_note_letter(c) => self.start_note(c, false),
            _ => false,
        }
    }

    fn start_note(&mut self, c: u8, chord: bool) -> bool {
        self.mode = Mode::Note { upper: c.is_ascii_uppercase(), rest: false, chord };
        self.len = 0;
        chord || self.note_may_fit()
    }

    /// Ticks of a note (or chord) of `num/den` units now, in a tuplet if one is running;
    /// `u32::MAX` (fits nowhere) if that is not a whole number of ticks.
    fn ticks(&self, num: u32, den: u32) -> u32 {
        let (f0, f1) = if self.triplet > 0 { self.factor } else { (1, 1) };
        let n = self.unit as u64 * num as u64 * self.chord_len.0 as u64 * f0 as u64;
        let d = den as u64 * self.chord_len.1 as u64 * f1 as u64;
        if n.is_multiple_of(d) { (n / d).min(u32::MAX as u64) as u32 } else { u32::MAX }
    }

    /// Ticks of the shortest note of a running tuplet.
    fn tuplet_min(&self) -> u32 {
        self.unit * MIN_QUARTERS / 4 * self.factor.0 / self.factor.1
    }

    /// Would a note of `t` ticks fit the bar, leaving room for the triplet's other notes and,
    /// in a bar that must reach an exact length, a remainder that notes can fill?
    fn fits(&self, t: u32) -> bool {
        let after = self.bar.saturating_add(t);
        let left = self.triplet.saturating_sub(1) as u32;
        if after.saturating_add(left * self.tuplet_min()) > self.limit() {
            return false;
        }
        if self.target > 0 {
            return self.fillable(self.target - after, left);
        }
        // Shaped: a bar that cannot end the part must be filled exactly (a single bar line may
        // not leave it short), unless this note already takes the part past 7.5 bars.
        if self.shape && 2 * (self.part_ticks + t) <= 15 * self.full {
            return self.fillable(self.limit() - after, left);
        }
        true
    }

    /// Can `rest` ticks be filled exactly by a running tuplet's `left` remaining notes and then
    /// notes of whole quarters of the unit (`grain` ticks)? The tuplet's notes of q quarters
    /// each take grain·q·f0/f1 ticks. Their quarters can sum to any S >= left (1 to 4 quarters
    /// are all note lengths), and the remainder mod grain repeats with period f1 in S, so S in
    /// left..left + f1 covers every case.
    fn fillable(&self, rest: u32, left: u32) -> bool {
        let grain = self.unit / 4;
        if left == 0 {
            return rest.is_multiple_of(grain);
        }
        let (f0, f1) = self.factor;
        (left..left + f1).any(|s| {
            let t = grain * s * f0;
            t.is_multiple_of(f1) && t / f1 <= rest && (rest - t / f1).is_multiple_of(grain)
        })
    }

    /// Can some note length still fit (a note is about to be written)? Not only the shortest:
    /// a bar that must reach an exact length, or a tuplet's last note, may need a longer one.
    fn note_may_fit(&self) -> bool {
        // The shortest first: it fits in most states, and that spares the loop on the hot path.
        self.fits(self.ticks(MIN_QUARTERS, 4)) || LENGTHS.iter().any(|&(_, n, d)| self.fits(self.ticks(n, d)))
    }

    /// Would a chord whose first note is `len` units long fit, at its shortest?
    fn chord_fits(&self, len: (u32, u32)) -> bool {
        Guide { chord_len: len, ..*self }.note_may_fit()
    }

    fn chord_may_fit(&self) -> bool {
        self.note_may_fit()
    }

    fn fits_triplet(&self, p: u32) -> bool {
        self.bar + p * self.tuplet_min() <= self.limit()
    }

    /// Is the length suffix in the buffer the start of one that fits?
    fn length_may_fit(&self) -> bool {
        let b = self.buf();
        LENGTHS.iter().any(|&(w, n, d)| starts(b, w) && self.fits(self.ticks(n, d)))
    }

    /// The note, rest or chord ends here with the length in the buffer.
    fn commit_length(&mut self, rest: bool) -> bool {
        let b = self.buf;
        let b = &b[..self.len as usize];
        let Some(&(_, n, d)) = LENGTHS.iter().find(|l| l.0.as_bytes() == b) else { return false };
        let t = self.ticks(n, d);
        if !self.fits(t) {
            return false;
        }
        self.bar += t;
        self.part_ticks += t;
        self.music = true;
        self.music_since_open = true;
        self.any_note |= !rest;
        self.last_is_bar = false;
        self.can_tie = !rest;
        self.triplet = self.triplet.saturating_sub(1);
        self.chord_len = (1, 1);
        self.symbols = 0;
        self.bound = false;
        self.after_note = true;
        self.len = 0;
        true
    }

    /// An ending's number `c`: 1, or 2 and 3 after a `:|`; never while a first ending waits.
    fn start_ending(&mut self, c: u8) -> bool {
        let n = c.wrapping_sub(b'0');
        if self.shape || !(1..=3).contains(&n) || self.first_ending || (n > 1 && !self.repeat_end_seen) {
            return false;
        }
        self.mode = Mode::Ending(n);
        true
    }

    /// Is the bar line run in the buffer, or it followed by `|`, a good bar line now?
    fn run_may_work(&self) -> bool {
        let mut w = self.buf;
        let n = self.len as usize;
        if self.bar_ok(&w[..n]).is_some() {
            return true;
        }
        if n < MAX_BAR {
            w[n] = b'|';
            return self.bar_ok(&w[..n + 1]).is_some();
        }
        false
    }

    /// What the bar line `w` does now: `None` if it would make the tune invalid, else
    /// whether it is sectional and whether it leaves a short bar owed to the next line.
    fn bar_ok(&self, w: &[u8]) -> Option<(bool, bool, bool, bool)> {
        let first = w.iter().position(|&b| b == b'|');
        let last = w.iter().rposition(|&b| b == b'|' || b == b']');
        let (repeat_end, repeat_start, style_single) = match (first, last) {
            (Some(f), Some(l)) => {
                let middle = &w[f..=l];
                (w[..f].contains(&b':'), w[l + 1..].contains(&b':'), middle.len() == 1)
            }
            // `::` is a double bar ending and starting repeats; a lone `:` is stray.
            _ if w.len() >= 2 => (true, true, false),
            _ => return None,
        };
        let sectional = repeat_end || repeat_start || !style_single;
        // `::` and `:|:` close the open repeat before they open the next.
        if repeat_start && !repeat_end && self.repeat_open && self.music_since_open {
            return None;
        }
        // The bar that must complete a short bar above holds music: a bar line first would
        // leave the short bar as it is, and the checker calls it too short.
        if self.target > 0 && !self.music {
            return None;
        }
        if self.shape {
            // A part closes at a double bar or repeat sign unless all it holds is a pickup
            // (less than a bar, before a start repeat): after 7.5 to 8.5 bars. A single bar
            // line may not leave a short bar for the next line, nor pass 8 bars.
            let closes = sectional && (repeat_end || self.part_ticks >= self.full);
            let (twice, full) = (2 * self.part_ticks, self.full);
            if closes && !(twice > 15 * full && twice <= 17 * full) {
                return None;
            }
            // No repeat opens after the last part (none could close it), and a part inside an
            // open repeat closes with its repeat sign.
            if repeat_start && self.parts_done + u8::from(closes) >= MAX_PARTS {
                return None;
            }
            if closes && self.repeat_open && self.music_since_open && !repeat_end {
                return None;
            }
            if !sectional && (self.part_ticks >= 8 * full || (self.music && self.bar < full && !self.opens)) {
                return None;
            }
        }
        let mut owes = false;
        if self.music {
            if self.target > 0 {
                if self.bar != self.target {
                    return None;
                }
            } else if self.bar < self.full && !self.opens && !sectional {
                // The next line's first bar must make up the difference with notes of whole
                // quarters of the unit (what `fits` lets an exact bar hold): a remainder left by
                // a tuplet (a third of the unit) could never be filled, and the tune never end.
                if !(self.full - self.bar).is_multiple_of(self.unit / 4) {
                    return None;
                }
                owes = true;
            }
        }
        Some((sectional, owes, repeat_end, repeat_start))
    }

    fn commit_bar(&mut self) -> bool {
        let b = self.buf;
        let w = &b[..self.len as usize];
        let Some((sectional, owes, repeat_end, repeat_start)) = self.bar_ok(w) else { return false };
        if self.music {
            self.target = 0;
            if owes {
                self.owe = self.full - self.bar;
                self.must_eol = true;
            }
        }
        if self.shape && sectional && (repeat_end || self.part_ticks >= self.full) {
            self.part_ticks = 0;
            self.parts_done = self.parts_done.saturating_add(1);
        }
        self.opens = sectional || (!self.music && self.opens);
        self.last_is_bar = true;
        self.bar = 0;
        self.music = false;
        if repeat_end {
            self.repeat_open = false;
            self.first_ending = false;
            self.repeat_end_seen = true;
        }
        if repeat_start {
            self.repeat_open = true;
            self.music_since_open = false;
        }
        self.len = 0;
        true
    }
}
