//! The parsed form of one tune: header fields and a flat list of body elements, each with the
//! line and column it came from. No music theory here: lengths are still multiples of `L:`,
//! pitches are still letters; [`crate::abc::timeline`] turns them into sound.

use super::frac::Frac;

/// A place in the input text: 1-based line of the whole text given, 1-based column in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    /// Line number, 1-based.
    pub line: usize,
    /// Column number in characters, 1-based.
    pub col: usize,
}

/// An information field such as `T:Title` or `M:6/8`, in the header or the body (as a whole
/// line or inline as `[K:D]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field letter (`X`, `T`, `M`, ...).
    pub letter: char,
    /// The text after the colon, trimmed.
    pub value: String,
    /// Where the letter stands.
    pub pos: Pos,
}

/// An accidental written before a note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Accidental {
    /// `^^`
    DoubleSharp,
    /// `^`
    Sharp,
    /// `=`
    Natural,
    /// `_`
    Flat,
    /// `__`
    DoubleFlat,
}

impl Accidental {
    /// Semitones this accidental sets the note to, relative to the natural letter.
    pub fn semitones(self) -> i8 {
        match self {
            Accidental::DoubleSharp => 2,
            Accidental::Sharp => 1,
            Accidental::Natural => 0,
            Accidental::Flat => -1,
            Accidental::DoubleFlat => -2,
        }
    }
}

/// One written note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Explicit accidental, if any.
    pub accidental: Option<Accidental>,
    /// Note letter, upper case `A`..`G`.
    pub letter: char,
    /// Octave relative to the octave of middle C (`C` = 0, `c` = 1, `c'` = 2, `C,` = -1).
    pub octave: i32,
    /// Length as a multiple of the unit note length `L:` (`A3/2` is 3/2).
    pub length: Frac,
    /// A tie `-` follows the note (also when written after a space, `c3 -c2`).
    pub tie: bool,
}

/// A rest: `z` (or the invisible `x`), or a multi-measure rest `Z4`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rest {
    /// Length as a multiple of `L:`; for a multi-measure rest, the number of bars.
    pub length: Frac,
    /// `Z`/`X`: length counts whole bars.
    pub whole_bars: bool,
}

/// Thin/thick appearance of a bar line; repeats are separate flags on [`Bar`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarStyle {
    /// `|`
    Single,
    /// `||`
    Double,
    /// `|]`: end of a piece or section.
    ThinThick,
    /// `[|`
    ThickThin,
}

/// A bar line, with its repeat marks: `|:` starts, `:|` ends, `::` does both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// How it is drawn.
    pub style: BarStyle,
    /// Has a leading `:` (end of a repeated section).
    pub repeat_end: bool,
    /// Has a trailing `:` (start of a repeated section).
    pub repeat_start: bool,
}

/// A tuplet mark `(p:q:r`: the next `r` notes take the time of `q` (default by `p` and meter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuplet {
    /// Notes played.
    pub p: u32,
    /// In the time of this many (`None`: the standard default).
    pub q: Option<u32>,
    /// Number of notes affected (`None`: `p`).
    pub r: Option<u32>,
}

/// What a body element is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElementKind {
    /// A single note.
    Note(Note),
    /// Notes struck together `[ceg]`, with a length multiplier after `]` and a possible tie.
    Chord {
        /// The notes, each with its own length.
        notes: Vec<Note>,
        /// Multiplier written after `]`.
        length: Frac,
        /// A tie `-` follows the chord.
        tie: bool,
    },
    /// A rest.
    Rest(Rest),
    /// A bar line.
    Bar(Bar),
    /// Start of a numbered ending `[1`, `|2`, `[1,3`, `[1-2`: the pass numbers it plays on.
    Ending(Vec<u32>),
    /// A tuplet mark.
    Tuplet(Tuplet),
    /// Broken rhythm between the previous and next notes: `>` (`true`, first note long) or
    /// `<`, and how many marks (1 to 3).
    Broken {
        /// `>`: the first note is lengthened.
        first_long: bool,
        /// Number of `>`/`<` characters.
        count: u8,
    },
    /// A chord symbol in quotes, `"Am"` (text without the quotes).
    ChordSymbol(String),
    /// An annotation in quotes, `"^text"` (text without quotes and placement mark).
    Annotation(String),
    /// A decoration, `~`, `T`, `!trill!`, `+fermata+`, or a letter a `U:` field defines (text
    /// without the delimiters). It does not change timing.
    Decoration(String),
    /// Grace notes `{gab}` or `{/g}`: they take no written time; the player steals their time
    /// from the note after them ([`crate::abc::play`]).
    Grace(Vec<Note>),
    /// `(` opening a slur.
    SlurStart,
    /// `)` closing a slur.
    SlurEnd,
    /// A field in the body, on its own line (`K:D`) or inline (`[K:D]`).
    Field(Field),
}

/// One element of a tune body and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// Where it starts in the text.
    pub pos: Pos,
    /// What it is.
    pub kind: ElementKind,
}

/// A syntax or well-formedness problem at a place in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where it is (line 0 when it concerns the whole tune).
    pub pos: Pos,
    /// What is wrong, in words.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pos.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}:{}: {}", self.pos.line, self.pos.col, self.message)
        }
    }
}

/// One parsed tune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tune {
    /// Position of the tune in its text, 0-based.
    pub index: usize,
    /// The `X:` reference number, when present and numeric.
    pub number: Option<u32>,
    /// The first `T:` title.
    pub title: Option<String>,
    /// Line of the tune's first line in the whole text, 1-based.
    pub first_line: usize,
    /// Header fields from `X:` to `K:`, in order (any letter is kept as text).
    pub header: Vec<Field>,
    /// The body: notes, bars, chord symbols and body fields, in written order.
    pub body: Vec<Element>,
}

impl Tune {
    /// The value of the first header field with this letter.
    pub fn header_value(&self, letter: char) -> Option<&str> {
        self.header.iter().find(|f| f.letter == letter).map(|f| f.value.as_str())
    }
}
