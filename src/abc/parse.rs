//! Text to [`Tune`]: split a file into tunes, read the header fields, tokenize the body.
//!
//! The parser never stops at the first mistake: it records a [`Problem`] with line and column,
//! skips the offending characters and goes on, so the checker can list every problem at once.
//! [`crate::abc::parse_tune`] turns the first problem into an error for callers who need a
//! clean tune.

use super::ast::{Accidental, Bar, BarStyle, Element, ElementKind, Field, Note, Pos, Problem, Rest, Tune, Tuplet};
use super::frac::Frac;

/// The text of one tune inside a larger text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TuneText<'a> {
    /// Position of the tune in the text, 0-based.
    pub index: usize,
    /// Line number of `lines[0]` in the whole text, 1-based.
    pub first_line: usize,
    /// The tune's lines, from its `X:` line up to (not including) the next `X:` line.
    pub lines: Vec<&'a str>,
}

/// Byte offsets in `text` of the lines that begin a tune: lines starting with `X:` (after a
/// byte-order mark on the first line). The one rule for where a tune starts, used by
/// [`split_tunes`] and by the corpus's train/validation split ([`crate::corpus::split_tunes`]).
pub fn tune_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let body = if pos == 0 { line.strip_prefix('\u{feff}').unwrap_or(line) } else { line };
        if body.starts_with("X:") {
            starts.push(pos + line.len() - body.len());
        }
        pos += line.len();
    }
    starts
}

/// Splits `text` into tunes: each starts at a line beginning with `X:` ([`tune_starts`]). Text
/// before the first `X:` is a file header and is skipped. Text with no `X:` line is one tune
/// (if not blank).
pub fn split_tunes(text: &str) -> Vec<TuneText<'_>> {
    fn lines_of(t: &str) -> Vec<&str> {
        t.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect()
    }
    let starts = tune_starts(text);
    if starts.is_empty() {
        // A byte-order mark would otherwise be read as part of the first line.
        let lines = lines_of(text.strip_prefix('\u{feff}').unwrap_or(text));
        if lines.iter().all(|l| l.trim().is_empty()) {
            return Vec::new();
        }
        return vec![TuneText { index: 0, first_line: 1, lines }];
    }
    let mut out = Vec::with_capacity(starts.len());
    // Line number of starts[k], counted incrementally (one pass over the text in all).
    let (mut line_no, mut counted_to) = (1, 0);
    for (k, &s) in starts.iter().enumerate() {
        line_no += text[counted_to..s].bytes().filter(|&b| b == b'\n').count();
        counted_to = s;
        let e = starts.get(k + 1).copied().unwrap_or(text.len());
        // A tune that is not the last ends with the newline before the next `X:` line.
        let body = if e < text.len() { &text[s..e - 1] } else { &text[s..] };
        out.push(TuneText { index: k, first_line: line_no, lines: lines_of(body) });
    }
    out
}

/// Field letters of ABC 2.1 (plus `Y:`, this edition's part playing order). Any other letter
/// is reported as an unknown field.
const KNOWN_FIELDS: &str = "ABCDFGHIKLMmNOPQRrSsTUVWwXZY+";

/// True when `line` is an information field line (`T:...`) rather than music. A note or rest
/// letter followed by a repeat (`B:|`, `e::`, `z:|`) is music; any other letter is a field
/// (`w:|` is a lyric line).
pub(crate) fn is_field_line(line: &str) -> bool {
    let mut it = line.chars();
    match (it.next(), it.next(), it.next()) {
        (Some(l), Some(':'), next) if l.is_ascii_alphabetic() || l == '+' => {
            let music_letter = matches!(l, 'A'..='G' | 'a'..='g' | 'z' | 'x');
            !(music_letter && matches!(next, Some('|') | Some(':')))
        }
        _ => false,
    }
}

/// The characters that stand for a decoration in the tune body: `.` (staccato), the default
/// redefinable symbols of ABC 2.1 (`~` roll, `H` fermata, `L` emphasis, `M` lower mordent,
/// `O` coda, `P` upper mordent, `S` segno, `T` trill, `u` up-bow, `v` down-bow), and every
/// letter a `U:` field assigns (`H`-`W`, `h`-`w` or `~`; in the file header, the tune header
/// or the body, from there on).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Symbols {
    /// Indexed by ASCII code.
    is_symbol: [bool; 128],
}

impl Default for Symbols {
    fn default() -> Self {
        let mut is_symbol = [false; 128];
        for c in ".~HLMOPSTuv".bytes() {
            is_symbol[c as usize] = true;
        }
        Symbols { is_symbol }
    }
}

impl Symbols {
    /// True when `c` is a decoration symbol.
    pub fn contains(&self, c: char) -> bool {
        c.is_ascii() && self.is_symbol[c as usize]
    }

    /// Applies a `U:` field value (`T = !trill!`, `w=!upbow!`). Errors name what is wrong.
    pub fn define(&mut self, value: &str) -> Result<(), String> {
        let v = value.trim();
        let mut chars = v.chars();
        let letter = chars.next();
        let rest = chars.as_str().trim_start();
        match letter {
            Some(c @ ('H'..='W' | 'h'..='w' | '~')) if rest.starts_with('=') => {
                self.is_symbol[c as usize] = true;
                Ok(())
            }
            _ => Err(format!("bad symbol definition 'U:{v}' (use U:T=!trill!, with a letter H-W or h-w, or ~)")),
        }
    }
}

/// The information fields of a file header: the field lines of the first block of text before
/// the first `X:` line (ABC 2.1, 2.2.2), such as `U:`, `M:` or `L:` defaults for every tune.
pub fn file_header(text: &str) -> Vec<Field> {
    let end = tune_starts(text).first().copied().unwrap_or(0);
    let head = text[..end].strip_prefix('\u{feff}').unwrap_or(&text[..end]);
    let mut fields = Vec::new();
    for (k, raw) in head.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            if !fields.is_empty() {
                break;
            }
            continue;
        }
        if is_field_line(line) {
            fields.push(field_from_line(line, Pos { line: k + 1, col: 1 }));
        }
    }
    fields
}

/// Field letters a file header may set for every tune that does not set them itself.
const FILE_HEADER_DEFAULTS: &str = "MLQ";

/// Field value with a trailing `%` comment removed (`\%` is a literal percent sign).
fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'%' && (i == 0 || b[i - 1] != b'\\') {
            return &s[..i];
        }
    }
    s
}

fn field_from_line(line: &str, pos: Pos) -> Field {
    let mut chars = line.chars();
    let letter = chars.next().unwrap_or('?');
    let rest = line.get(2..).unwrap_or("");
    Field { letter, value: strip_comment(rest).trim().to_string(), pos }
}

/// Parses one tune's lines. Returns the tune and every problem found, in text order.
/// `first_line` is the line number of `lines[0]` in the whole text.
pub fn parse_lines(lines: &[&str], first_line: usize, index: usize) -> (Tune, Vec<Problem>) {
    parse_lines_in(lines, first_line, index, &[])
}

/// [`parse_lines`] for a tune of a file whose header holds `file_fields` ([`file_header`]):
/// its `U:` symbols hold in the tune, and its `M:`, `L:` and `Q:` are the tune's own where the
/// tune does not set them (they are added to the tune's header, before its `K:`).
pub fn parse_lines_in(lines: &[&str], first_line: usize, index: usize, file_fields: &[Field]) -> (Tune, Vec<Problem>) {
    let mut symbols = Symbols::default();
    for f in file_fields.iter().filter(|f| f.letter == 'U') {
        // A bad file-header definition is reported with each tune that the file header serves.
        let _ = symbols.define(&f.value);
    }
    let mut problems = Vec::new();
    let mut header: Vec<Field> = Vec::new();
    let mut body: Vec<Element> = Vec::new();
    let mut in_header = true;
    let mut seen_any = false;
    for (k, raw) in lines.iter().enumerate() {
        let line_no = first_line + k;
        let line = *raw;
        if line.trim().is_empty() {
            if seen_any {
                // An empty line ends the tune (ABC 2.1, 2.2.1); what follows is free text.
                break;
            }
            continue;
        }
        seen_any = true;
        if line.starts_with('%') {
            continue;
        }
        let at = Pos { line: line_no, col: 1 };
        if is_field_line(line) {
            let field = field_from_line(line, at);
            if !KNOWN_FIELDS.contains(field.letter) {
                problems.push(Problem {
                    pos: at,
                    message: format!(
                        "unknown field '{}:' (ABC 2.1 defines A-D, F-I, K-W, X, Z and this edition Y)",
                        field.letter
                    ),
                });
            }
            if field.letter == 'U'
                && let Err(e) = symbols.define(&field.value)
            {
                problems.push(Problem { pos: at, message: e });
            }
            if in_header {
                if header.is_empty() && field.letter != 'X' {
                    problems.push(Problem {
                        pos: at,
                        message: "a tune must start with an X: reference number field".into(),
                    });
                }
                let is_key = field.letter == 'K';
                header.push(field);
                if is_key {
                    in_header = false;
                }
            } else {
                body.push(Element { pos: at, kind: ElementKind::Field(field) });
            }
            continue;
        }
        if in_header {
            // Music before K: — the checker reports the missing K:; read the music anyway.
            in_header = false;
        }
        Lexer::new(line, line_no, &mut body, &mut problems, &mut symbols).run();
    }
    // File-header defaults for what the tune leaves unset, placed before its K: field.
    let key_at = header.iter().position(|f| f.letter == 'K').unwrap_or(header.len());
    let inherited: Vec<Field> = file_fields
        .iter()
        .filter(|f| FILE_HEADER_DEFAULTS.contains(f.letter) && !header.iter().any(|h| h.letter == f.letter))
        .cloned()
        .collect();
    header.splice(key_at..key_at, inherited);
    let number = header.iter().find(|f| f.letter == 'X').and_then(|f| f.value.trim().parse::<u32>().ok());
    let title = header.iter().find(|f| f.letter == 'T').map(|f| f.value.clone());
    (Tune { index, number, title, first_line, header, body }, problems)
}

/// Tokenizer for one line of music.
struct Lexer<'a> {
    chars: Vec<char>,
    i: usize,
    line: usize,
    out: &'a mut Vec<Element>,
    problems: &'a mut Vec<Problem>,
    symbols: &'a mut Symbols,
}

/// Largest number accepted in a length, tuplet or ending (larger ones are typos or noise).
const MAX_NUMBER: u32 = 4096;

/// Most notes of one tuplet `(p` (ABC 2.1 gives defaults for 2 to 9; larger ones name their q).
const MAX_TUPLET: u32 = 64;

impl<'a> Lexer<'a> {
    fn new(
        line: &str,
        line_no: usize,
        out: &'a mut Vec<Element>,
        problems: &'a mut Vec<Problem>,
        symbols: &'a mut Symbols,
    ) -> Self {
        Lexer { chars: line.chars().collect(), i: 0, line: line_no, out, problems, symbols }
    }

    fn pos_at(&self, i: usize) -> Pos {
        Pos { line: self.line, col: i + 1 }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn problem(&mut self, at: usize, message: impl Into<String>) {
        let pos = self.pos_at(at);
        self.problems.push(Problem { pos, message: message.into() });
    }

    fn push(&mut self, at: usize, kind: ElementKind) {
        let pos = self.pos_at(at);
        self.out.push(Element { pos, kind });
    }

    /// Reads a decimal number of at most a few digits; `None` if there is none here.
    fn number(&mut self) -> Option<Result<u32, ()>> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        let s: String = self.chars[start..self.i].iter().collect();
        Some(match s.parse::<u32>() {
            Ok(n) if n <= MAX_NUMBER => Ok(n),
            _ => Err(()),
        })
    }

    fn run(&mut self) {
        while let Some(c) = self.peek() {
            let at = self.i;
            if self.symbols.contains(c) {
                self.i += 1;
                match (c, self.peek()) {
                    // `.|` is a dotted bar line; `.(` and `.-` a dotted slur and tie.
                    ('.', Some('|')) => self.bar(at),
                    ('.', Some('(' | '-')) => {}
                    _ => self.push(at, ElementKind::Decoration(c.to_string())),
                }
                continue;
            }
            match c {
                // `$` is a score line break (ABC 2.1, 6.1.1): layout only.
                ' ' | '\t' | 'y' | '`' | '$' => self.i += 1,
                '%' => break,
                '\\' => {
                    self.i += 1;
                    let rest: String = self.chars[self.i..].iter().collect();
                    let rest = rest.trim_start();
                    if !(rest.is_empty() || rest.starts_with('%')) {
                        self.problem(at, "a backslash '\\' may only end a line (continuation)");
                    }
                }
                '"' => {
                    if !self.quoted(at) {
                        return;
                    }
                }
                '!' | '+' => {
                    if !self.delimited_decoration(at, c) {
                        return;
                    }
                }
                '{' => {
                    if !self.grace(at) {
                        return;
                    }
                }
                '(' => {
                    self.i += 1;
                    if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.tuplet(at);
                    } else {
                        self.push(at, ElementKind::SlurStart);
                    }
                }
                ')' => {
                    self.i += 1;
                    self.push(at, ElementKind::SlurEnd);
                }
                '[' => {
                    if !self.bracket(at) {
                        return;
                    }
                }
                '|' | ':' => self.bar(at),
                ']' => {
                    self.i += 1;
                    self.problem(at, "unexpected ']' with no '[' before it");
                }
                '>' | '<' => {
                    let mut n = 0u8;
                    while self.peek() == Some(c) {
                        self.i += 1;
                        n = n.saturating_add(1);
                    }
                    if n > 3 {
                        self.problem(at, "broken rhythm has at most three '>' or '<'");
                    }
                    self.push(at, ElementKind::Broken { first_long: c == '>', count: n.min(3) });
                }
                '-' => {
                    self.i += 1;
                    self.tie(at);
                }
                '^' | '_' | '=' | 'A'..='G' | 'a'..='g' => {
                    if let Some(note) = self.note() {
                        self.push(at, ElementKind::Note(note));
                    }
                }
                'z' | 'x' => {
                    self.i += 1;
                    let length = self.length();
                    self.push(at, ElementKind::Rest(Rest { length, whole_bars: false }));
                }
                'Z' | 'X' => {
                    self.i += 1;
                    let nat = self.i;
                    let bars = match self.number() {
                        None => 1,
                        Some(Ok(n)) if n > 0 => n,
                        Some(_) => {
                            self.problem(nat, "bad number of bars after a multi-measure rest");
                            1
                        }
                    };
                    self.push(at, ElementKind::Rest(Rest { length: Frac::int(bars as i128), whole_bars: true }));
                }
                '&' => {
                    self.i += 1;
                    self.problem(at, "voice overlay '&' is not supported");
                }
                _ => {
                    self.i += 1;
                    self.problem(at, format!("unexpected character '{}'", c.escape_default()));
                }
            }
        }
    }

    /// `"..."`: a chord symbol or annotation. Returns false if the quote is unclosed (the
    /// rest of the line is skipped).
    fn quoted(&mut self, at: usize) -> bool {
        let start = at + 1;
        let Some(len) = self.chars[start..].iter().position(|&c| c == '"') else {
            self.problem(at, "unclosed chord symbol quote '\"' (the closing quote must be on the same line)");
            self.i = self.chars.len();
            return false;
        };
        let text: String = self.chars[start..start + len].iter().collect();
        self.i = start + len + 1;
        match text.chars().next() {
            Some('^' | '_' | '<' | '>' | '@') => {
                let rest: String = text.chars().skip(1).collect();
                self.push(at, ElementKind::Annotation(rest));
            }
            _ => self.push(at, ElementKind::ChordSymbol(text)),
        }
        true
    }

    /// `!trill!` or `+trill+`. Returns false if unclosed. A `!` that does not open a
    /// decoration name (no closing `!` on the line, or spaces or a bar line before it) is the
    /// score line break of older ABC (`I:linebreak !`) and is skipped.
    fn delimited_decoration(&mut self, at: usize, delim: char) -> bool {
        let start = at + 1;
        let end = self.chars[start..].iter().position(|&c| c == delim);
        let is_name =
            |len: usize| len > 0 && self.chars[start..start + len].iter().all(|c| !c.is_whitespace() && *c != '|');
        if delim == '!' && !end.is_some_and(is_name) {
            self.i = start;
            return true;
        }
        let Some(len) = end else {
            self.problem(at, format!("unclosed decoration '{delim}' (missing the closing '{delim}')"));
            self.i = self.chars.len();
            return false;
        };
        let text: String = self.chars[start..start + len].iter().collect();
        self.i = start + len + 1;
        self.push(at, ElementKind::Decoration(text));
        true
    }

    /// `{gab}`, `{/g}` (acciaccatura), `{g2a/}`, `{^f}`: grace notes with their own lengths and
    /// accidentals; a chord among them (`{[ce]}`) gives its notes in turn. Returns false if
    /// unclosed.
    fn grace(&mut self, at: usize) -> bool {
        self.i += 1;
        let mut notes = Vec::new();
        if self.peek() == Some('/') {
            self.i += 1;
        }
        loop {
            match self.peek() {
                None => {
                    self.problem(at, "unclosed grace notes '{' (missing '}')");
                    return false;
                }
                Some('}') => {
                    self.i += 1;
                    break;
                }
                Some('^' | '_' | '=' | 'A'..='G' | 'a'..='g') => {
                    if let Some(n) = self.note() {
                        notes.push(n);
                    }
                }
                Some(c) if self.symbols.contains(c) => self.i += 1,
                Some(' ' | '-' | '[' | ']' | '(' | ')') => self.i += 1,
                Some(c) => {
                    let k = self.i;
                    self.i += 1;
                    self.problem(k, format!("unexpected '{}' in grace notes", c.escape_default()));
                }
            }
        }
        self.push(at, ElementKind::Grace(notes));
        true
    }

    /// After `(` and with a digit next: `(p`, `(p:q`, `(p:q:r`.
    fn tuplet(&mut self, at: usize) {
        let p = match self.number() {
            Some(Ok(p)) if (2..=MAX_TUPLET).contains(&p) => p,
            _ => {
                self.problem(at, format!("bad tuplet: '(p' needs p from 2 to {MAX_TUPLET}"));
                return;
            }
        };
        let mut q = None;
        let mut r = None;
        if self.peek() == Some(':') && self.peek_at(1) != Some('|') {
            self.i += 1;
            match self.number() {
                Some(Ok(n)) if n > 0 => q = Some(n),
                Some(_) => self.problem(at, "bad tuplet: q in '(p:q' must be 1 or more"),
                None => {}
            }
            if self.peek() == Some(':') && self.peek_at(1) != Some('|') {
                self.i += 1;
                match self.number() {
                    Some(Ok(n)) if n > 0 => r = Some(n),
                    Some(_) => self.problem(at, "bad tuplet: r in '(p:q:r' must be 1 or more"),
                    None => {}
                }
            }
        }
        self.push(at, ElementKind::Tuplet(Tuplet { p, q, r }));
    }

    /// `[`: an ending `[1`, a bar `[|`, an inline field `[K:D]` or a chord `[ceg]`.
    /// Returns false if the rest of the line was skipped.
    fn bracket(&mut self, at: usize) -> bool {
        match (self.peek_at(1), self.peek_at(2)) {
            (Some(d), _) if d.is_ascii_digit() => {
                self.i += 1;
                self.ending(at);
                true
            }
            (Some('|'), Some(']')) => {
                // `[|]`: an invisible bar line, a bar line all the same.
                self.i += 3;
                self.push(
                    at,
                    ElementKind::Bar(Bar { style: BarStyle::Single, repeat_end: false, repeat_start: false }),
                );
                true
            }
            (Some('|'), _) => {
                self.i += 2;
                let mut repeat_start = false;
                while self.peek() == Some(':') {
                    self.i += 1;
                    repeat_start = true;
                }
                self.push(at, ElementKind::Bar(Bar { style: BarStyle::ThickThin, repeat_end: false, repeat_start }));
                true
            }
            (Some(l), Some(':')) if l.is_ascii_alphabetic() => {
                let start = at + 1;
                let Some(len) = self.chars[start..].iter().position(|&c| c == ']') else {
                    self.problem(at, "unclosed inline field '[' (missing ']')");
                    self.i = self.chars.len();
                    return false;
                };
                let text: String = self.chars[start + 2..start + len].iter().collect();
                self.i = start + len + 1;
                if !KNOWN_FIELDS.contains(l) {
                    self.problem(at, format!("unknown field '{l}:'"));
                }
                if l == 'U'
                    && let Err(e) = self.symbols.define(&text)
                {
                    self.problem(at, e);
                }
                let pos = self.pos_at(at);
                self.push(at, ElementKind::Field(Field { letter: l, value: text.trim().to_string(), pos }));
                true
            }
            _ => self.chord(at),
        }
    }

    /// Ending numbers after `[` or a bar: `1`, `1,3`, `1-3`.
    fn ending(&mut self, at: usize) {
        let mut nums = Vec::new();
        loop {
            let a = match self.number() {
                Some(Ok(n)) if (1..=64).contains(&n) => n,
                _ => {
                    self.problem(at, "bad ending number (use [1, [2, [1,3 or [1-2)");
                    return;
                }
            };
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
                let b = match self.number() {
                    Some(Ok(n)) if (a..=64).contains(&n) => n,
                    _ => {
                        self.problem(at, "bad ending range (use [1-2)");
                        return;
                    }
                };
                nums.extend(a..=b);
            } else {
                nums.push(a);
            }
            if self.peek() == Some(',') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            } else {
                break;
            }
        }
        nums.sort_unstable();
        nums.dedup();
        self.push(at, ElementKind::Ending(nums));
    }

    /// `[ceg]2-`. Returns false if unclosed.
    fn chord(&mut self, at: usize) -> bool {
        self.i += 1;
        let mut notes: Vec<Note> = Vec::new();
        loop {
            match self.peek() {
                None => {
                    self.problem(at, "unclosed chord '[' (missing ']')");
                    return false;
                }
                Some(']') => {
                    self.i += 1;
                    break;
                }
                Some('^' | '_' | '=' | 'A'..='G' | 'a'..='g') => {
                    if let Some(n) = self.note() {
                        notes.push(n);
                    }
                }
                Some('-') => {
                    self.i += 1;
                    if let Some(n) = notes.last_mut() {
                        n.tie = true;
                    }
                }
                Some(c) if c == ' ' || self.symbols.contains(c) => self.i += 1,
                Some(d @ ('!' | '+')) => {
                    // A decoration on one note of the chord (`[!accent!c e]`).
                    if !self.delimited_decoration(self.i, d) {
                        return false;
                    }
                }
                Some('|' | ':' | '[' | '"' | '(' | '{') => {
                    // Music that cannot be inside a chord: the ']' is missing. Go on from here.
                    self.problem(at, "unclosed chord '[' (missing ']')");
                    return true;
                }
                Some(c) => {
                    let k = self.i;
                    self.i += 1;
                    self.problem(k, format!("unexpected '{}' in a chord", c.escape_default()));
                }
            }
        }
        let length = self.length();
        if notes.is_empty() {
            self.problem(at, "empty chord '[]'");
            return true;
        }
        self.push(at, ElementKind::Chord { notes, length, tie: false });
        true
    }

    /// A run of `|`, `:` and `]` forming one bar line, then an optional ending number (`:|2`).
    fn bar(&mut self, at: usize) {
        let start = self.i;
        let mut s = String::new();
        while let Some(c) = self.peek() {
            let ok = match c {
                '|' | ':' => true,
                ']' => s.ends_with('|'),
                _ => false,
            };
            if !ok {
                break;
            }
            s.push(c);
            self.i += 1;
        }
        let (first, last) = match (s.find('|'), s.rfind(['|', ']'])) {
            (Some(f), Some(l)) => (f, l),
            _ => {
                if s.len() >= 2 {
                    // `::` is an end and a start of repeat at once.
                    self.push(
                        at,
                        ElementKind::Bar(Bar { style: BarStyle::Double, repeat_end: true, repeat_start: true }),
                    );
                } else {
                    self.problem(start, "stray ':' (not part of a bar line)");
                }
                return;
            }
        };
        let repeat_end = s[..first].contains(':');
        let repeat_start = s[last + 1..].contains(':');
        let middle = &s[first..=last];
        let style = if middle.ends_with(']') {
            BarStyle::ThinThick
        } else if middle.len() > 1 {
            BarStyle::Double
        } else {
            BarStyle::Single
        };
        self.push(at, ElementKind::Bar(Bar { style, repeat_end, repeat_start }));
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            let k = self.i;
            self.ending(k);
        }
    }

    /// `-`: ties the previous note or chord to the next one (also after a space: `c3 -c2`).
    fn tie(&mut self, at: usize) {
        for e in self.out.iter_mut().rev() {
            match &mut e.kind {
                ElementKind::Note(n) => {
                    n.tie = true;
                    return;
                }
                ElementKind::Chord { tie, .. } => {
                    *tie = true;
                    return;
                }
                ElementKind::SlurEnd | ElementKind::Decoration(_) => continue,
                _ => break,
            }
        }
        self.problem(at, "tie '-' with no note before it");
    }

    /// Accidental, letter, octave marks and length. `None` (with a problem) if malformed.
    fn note(&mut self) -> Option<Note> {
        let at = self.i;
        let accidental = match (self.peek(), self.peek_at(1)) {
            (Some('^'), Some('^')) => {
                self.i += 2;
                Some(Accidental::DoubleSharp)
            }
            (Some('_'), Some('_')) => {
                self.i += 2;
                Some(Accidental::DoubleFlat)
            }
            (Some('^'), _) => {
                self.i += 1;
                Some(Accidental::Sharp)
            }
            (Some('_'), _) => {
                self.i += 1;
                Some(Accidental::Flat)
            }
            (Some('='), _) => {
                self.i += 1;
                Some(Accidental::Natural)
            }
            _ => None,
        };
        let (letter, mut octave): (char, i32) = match self.peek() {
            Some(c @ 'A'..='G') => (c, 0),
            Some(c @ 'a'..='g') => (c.to_ascii_uppercase(), 1),
            _ => {
                self.problem(at, "accidental not followed by a note letter");
                return None;
            }
        };
        self.i += 1;
        while let Some(c) = self.peek() {
            match c {
                '\'' => octave += 1,
                ',' => octave -= 1,
                _ => break,
            }
            self.i += 1;
            if octave.abs() > 20 {
                self.problem(at, "too many octave marks");
                return None;
            }
        }
        let length = self.length();
        Some(Note { accidental, letter, octave, length, tie: false })
    }

    /// Length after a note, rest or chord: `2`, `/2`, `3/2`, `/`, `//`, `3/`. A bad length is
    /// reported and read as 1.
    fn length(&mut self) -> Frac {
        let at = self.i;
        let num = match self.number() {
            None => Ok(1),
            Some(r) => r,
        };
        let mut slashes = 0u32;
        while self.peek() == Some('/') {
            self.i += 1;
            slashes += 1;
        }
        let den = if slashes == 0 {
            Ok(1)
        } else {
            match self.number() {
                None => 2u32.checked_pow(slashes).ok_or(()),
                Some(Ok(d)) => 2u32.checked_pow(slashes - 1).and_then(|p| p.checked_mul(d)).ok_or(()),
                Some(Err(())) => Err(()),
            }
        };
        match (num, den) {
            (Ok(n), Ok(d)) if n > 0 && d > 0 && slashes <= 6 => Frac::new(n as i128, d as i128).unwrap_or(Frac::ONE),
            _ => {
                let text: String = self.chars[at..self.i].iter().collect();
                self.problem(at, format!("bad note length '{text}'"));
                Frac::ONE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (Tune, Vec<Problem>) {
        let lines: Vec<&str> = s.lines().collect();
        parse_lines(&lines, 1, 0)
    }

    fn body_kinds(s: &str) -> Vec<ElementKind> {
        let (t, p) = parse(&format!("X:1\nK:C\n{s}"));
        assert!(p.is_empty(), "unexpected problems: {p:?}");
        t.body.into_iter().map(|e| e.kind).collect()
    }

    fn note(s: &str) -> Note {
        match body_kinds(s).into_iter().next() {
            Some(ElementKind::Note(n)) => n,
            other => panic!("not a note: {other:?}"),
        }
    }

    fn fr(n: i128, d: i128) -> Frac {
        Frac::new(n, d).expect("test fraction")
    }

    #[test]
    fn headers_are_kept_in_order_and_end_at_k() {
        let (t, p) = parse("X: 7\nT:Title\nY:AAB\nM:4/4\nL:1/8\nR:Hornpipe\nK:G\nP:A\nGA|");
        assert!(p.is_empty());
        assert_eq!(t.number, Some(7));
        assert_eq!(t.title.as_deref(), Some("Title"));
        let letters: String = t.header.iter().map(|f| f.letter).collect();
        assert_eq!(letters, "XTYMLRK");
        assert_eq!(t.header_value('Y'), Some("AAB"));
        assert!(matches!(&t.body[0].kind, ElementKind::Field(f) if f.letter == 'P' && f.value == "A"));
    }

    #[test]
    fn notes_accidentals_octaves_lengths() {
        let n = note("^c'2");
        assert_eq!((n.accidental, n.letter, n.octave, n.length), (Some(Accidental::Sharp), 'C', 2, Frac::int(2)));
        let n = note("_B,,/2");
        assert_eq!((n.accidental, n.letter, n.octave, n.length), (Some(Accidental::Flat), 'B', -2, fr(1, 2)));
        assert_eq!(note("=e3/2").length, fr(3, 2));
        assert_eq!(note("e/").length, fr(1, 2));
        assert_eq!(note("e//").length, fr(1, 4));
        assert_eq!(note("e3/").length, fr(3, 2));
        assert_eq!(note("^^f").accidental, Some(Accidental::DoubleSharp));
        assert_eq!(note("__f").accidental, Some(Accidental::DoubleFlat));
    }

    #[test]
    fn rests_broken_rhythm_ties_and_triplets() {
        let k = body_kinds("z2 a>b c<<d (3abc (3:2:4 c3 -c2|");
        assert!(matches!(&k[0], ElementKind::Rest(r) if r.length == Frac::int(2) && !r.whole_bars));
        assert!(matches!(&k[2], ElementKind::Broken { first_long: true, count: 1 }));
        assert!(matches!(&k[5], ElementKind::Broken { first_long: false, count: 2 }));
        assert!(matches!(&k[7], ElementKind::Tuplet(Tuplet { p: 3, q: None, r: None })));
        assert!(matches!(&k[11], ElementKind::Tuplet(Tuplet { p: 3, q: Some(2), r: Some(4) })));
        // `c3 -c2`: the tie after a space belongs to c3.
        assert!(matches!(&k[12], ElementKind::Note(n) if n.tie && n.length == Frac::int(3)));
        assert!(matches!(&k[13], ElementKind::Note(n) if !n.tie));
    }

    #[test]
    fn chords_symbols_and_annotations() {
        let k = body_kinds("\"G/b\"[ceg]2- [ceg] \"^text\"!trill!~c{ga}d");
        assert_eq!(k[0], ElementKind::ChordSymbol("G/b".into()));
        assert!(
            matches!(&k[1], ElementKind::Chord { notes, length, tie: true } if notes.len() == 3 && *length == Frac::int(2))
        );
        assert_eq!(k[3], ElementKind::Annotation("text".into()));
        assert_eq!(k[4], ElementKind::Decoration("trill".into()));
        assert_eq!(k[5], ElementKind::Decoration("~".into()));
        assert!(matches!(&k[7], ElementKind::Grace(g) if g.len() == 2));
    }

    #[test]
    fn bar_lines_repeats_and_endings() {
        let k = body_kinds("|a||b|]c[|d|:e:|f::g:||:a|[1b:|[2c|1d:|2e|[1,3f[1-2g");
        let bars: Vec<(BarStyle, bool, bool)> = k
            .iter()
            .filter_map(|e| match e {
                ElementKind::Bar(b) => Some((b.style, b.repeat_end, b.repeat_start)),
                _ => None,
            })
            .collect();
        use BarStyle::*;
        assert_eq!(
            bars,
            vec![
                (Single, false, false),
                (Double, false, false),
                (ThinThick, false, false),
                (ThickThin, false, false),
                (Single, false, true),
                (Single, true, false),
                (Double, true, true),
                (Double, true, true),
                (Single, false, false),
                (Single, true, false),
                (Single, false, false),
                (Single, true, false),
                (Single, false, false),
            ]
        );
        let endings: Vec<Vec<u32>> = k
            .iter()
            .filter_map(|e| match e {
                ElementKind::Ending(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(endings, vec![vec![1], vec![2], vec![1], vec![2], vec![1, 3], vec![1, 2]]);
    }

    #[test]
    fn inline_fields_and_body_fields() {
        let k = body_kinds("ab[K:D]c\nM:3/4\nB:|");
        assert!(matches!(&k[2], ElementKind::Field(f) if f.letter == 'K' && f.value == "D"));
        assert!(matches!(&k[4], ElementKind::Field(f) if f.letter == 'M' && f.value == "3/4"));
        // `B:|` is a note and a repeat, not a field.
        assert!(matches!(&k[5], ElementKind::Note(n) if n.letter == 'B'));
    }

    #[test]
    fn comments_and_continuations() {
        let k = body_kinds("ab % comment \"unclosed\nc|\\\n% whole line\nd|");
        assert_eq!(k.len(), 6);
    }

    #[test]
    fn malformed_input_gives_positions() {
        let (_, p) = parse("X:1\nK:C\nab \"Am cd|");
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].pos.line, p[0].pos.col), (3, 4));
        assert!(p[0].message.contains("unclosed chord symbol"));

        let (_, p) = parse("X:1\nK:C\nabc/0 d|");
        assert_eq!((p[0].pos.line, p[0].pos.col), (3, 4));
        assert!(p[0].message.contains("bad note length '/0'"), "{p:?}");

        let (_, p) = parse("X:1\nJ:whatever\nK:C\nabc|");
        assert_eq!((p[0].pos.line, p[0].pos.col), (2, 1));
        assert!(p[0].message.contains("unknown field 'J:'"));

        let (_, p) = parse("X:1\nK:C\n[ceg c|");
        assert!(p[0].message.contains("unclosed chord '['"));
        assert_eq!(p[0].pos.col, 1);

        let (_, p) = parse("X:1\nK:C\n-a ^|q");
        let msgs: Vec<&str> = p.iter().map(|x| x.message.as_str()).collect();
        assert_eq!(p.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("tie"));
        assert!(msgs[1].contains("accidental not followed"));
        assert!(msgs[2].contains("unexpected character 'q'"));
        assert_eq!(p[2].pos.col, 6);
    }

    #[test]
    fn split_finds_tunes_and_their_lines() {
        let text = "% file header\n\nX:1\nK:C\nabc|\n\nX:2\nK:D\nd|\n";
        let t = split_tunes(text);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].first_line, t[1].first_line), (3, 7));
        assert_eq!(split_tunes("K:C\nabc|").len(), 1);
        assert_eq!(split_tunes("\u{feff}X:1\nK:C\nabc|\n\nX:2\nK:C\nd|").len(), 2);
        assert_eq!(split_tunes("X:1\r\nK:C\r\nabc|\r\n")[0].lines[2], "abc|");
        assert!(split_tunes("  \n\n").is_empty());
    }

    #[test]
    fn symbols_line_breaks_and_bar_forms() {
        // U: letters become decorations from their definition on; a bad definition is reported.
        let (_, p) = parse("X:1\nU:W=!trill!\nK:C\nWc|\nU:Q\nQc|");
        let msgs: Vec<String> = p.iter().map(|x| x.to_string()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("5:1: bad symbol definition 'U:Q'"), "{msgs:?}");
        assert!(msgs[1].starts_with("6:1: unexpected character 'Q'"), "{msgs:?}");
        // `$` and a lone `!` are line breaks; `!a b!` is no decoration name.
        let k = body_kinds("c$d!e !a b!|");
        let notes = k.iter().filter(|e| matches!(e, ElementKind::Note(_))).count();
        assert_eq!(notes, 5, "{k:?}");
        assert!(!k.iter().any(|e| matches!(e, ElementKind::Decoration(_))), "{k:?}");
        // `.|` and `[|]` are bar lines; `.(` and `.-` leave no staccato behind.
        let k = body_kinds("c.|d[|]e.-e .(fg)|");
        let bars = k.iter().filter(|e| matches!(e, ElementKind::Bar(_))).count();
        assert_eq!(bars, 3, "{k:?}");
        assert!(!k.iter().any(|e| matches!(e, ElementKind::Decoration(_))), "{k:?}");
        assert!(matches!(&k[4], ElementKind::Note(n) if n.tie), "{k:?}");
    }

    #[test]
    fn file_header_fields_serve_every_tune() {
        let text = "% collection\nM:6/8\nL:1/8\nU:j=!slide!\n\nM:9/9\n\nX:1\nM:3/4\nK:G\njG|";
        let fields = file_header(text);
        let letters: String = fields.iter().map(|f| f.letter).collect();
        assert_eq!(letters, "MLU", "only the first block counts");
        let tt = &split_tunes(text)[0];
        let (t, p) = parse_lines_in(&tt.lines, tt.first_line, tt.index, &fields);
        assert!(p.is_empty(), "{p:?}");
        // The tune's own M: stays; L: comes from the file header, before K:.
        let header: Vec<(char, &str)> = t.header.iter().map(|f| (f.letter, f.value.as_str())).collect();
        assert_eq!(header, vec![('X', "1"), ('M', "3/4"), ('L', "1/8"), ('K', "G")]);
    }

    #[test]
    fn empty_line_ends_the_tune() {
        let (t, _) = parse("X:1\nK:C\nab|\n\ncd|");
        assert_eq!(t.body.len(), 3);
    }
}
