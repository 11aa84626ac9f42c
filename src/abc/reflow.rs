//! Reflow: a tune's body rewritten with a line break after every fourth complete bar (or every
//! `n`th: `train --reflow --line-bars N`) and at the end of every part (`train --reflow`), so
//! that a model reading the text can count parts by lines instead of bars. Only the layout moves: the result must have the same timeline
//! (every note, bar line, ending and chord symbol, in order) and pass the checker as the
//! original did, or the tune is left as written.
//!
//! With parts labelled (`train --reflow --label-parts`), a reflowed tune that names no parts
//! gets the Nottingham edition's own part notation: a `P:A`, `P:B`, ... line before each part
//! the judge counts, and a `Y:` header field listing them (`Y:AB`); 224 of its 534 tunes label
//! their parts with `P:` lines already, 172 of them with a `Y:` as well. A model then reads
//! which part it is in, and how many the tune promised, from the text instead of counting them
//! over hundreds of characters.

use super::ast::{Bar, BarStyle};
use super::frac::Frac;
use super::judge::{bar_length, section_spans};
use super::parse;
use super::timeline::{StepKind, Timeline};

/// Complete bars per line unless asked otherwise (`train --line-bars`).
pub const BARS_PER_LINE: usize = 4;

/// How [`reflow_text`] lays a corpus out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Complete bars a line (`train --line-bars`, default [`BARS_PER_LINE`]).
    pub line_bars: usize,
    /// Label the parts of tunes that name none ([`label_parts`], `train --label-parts`).
    pub label_parts: bool,
    /// Space the bar lines of every second line of a part ([`mark_lines`], `train --mark-lines`).
    pub mark_lines: bool,
    /// With `mark_lines`, mark the last part's bar lines as well ([`mark_last`], `train
    /// --mark-last`).
    pub mark_last: bool,
    /// Restate the key after each part label ([`restate_key`], `train --restate-key`).
    pub restate_key: bool,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout { line_bars: BARS_PER_LINE, label_parts: false, mark_lines: false, mark_last: false, restate_key: false }
    }
}

/// Why a tune was left as written (or, when labelling its parts, left unlabelled).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    /// It does not pass the checker (or cannot be read), or has a free meter.
    NotValid,
    /// It has voices or multi-bar rests, whose layout reflowing would have to understand.
    Unsupported,
    /// The reflowed text did not read back as the same music (or did not pass the checker).
    Mismatch,
    /// (Labelling) a part starts on the line where the one before it ends.
    MidLine,
    /// (Labelling) more parts than letters, or no part with notes.
    Parts,
    /// (Labelling) the labelled text did not read back as the same music and parts (or did not
    /// pass the checker: a repeat around two parts, cut by a label).
    Labelling,
    /// (Marking lines) the spaced text did not read back as the same music.
    Marking,
    /// (Restating keys) the text did not read back as the same music.
    Restating,
}

impl Kept {
    /// A short name for counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Kept::NotValid => "not valid",
            Kept::Unsupported => "voices or multi-bar rests",
            Kept::Mismatch => "changed by reflowing",
            Kept::MidLine => "a part starting mid-line",
            Kept::Parts => "no parts or too many",
            Kept::Labelling => "changed by labelling",
            Kept::Marking => "changed by marking",
            Kept::Restating => "changed by restating the key",
        }
    }
}

/// Reads one tune: its timeline, or why it is left alone.
fn read(text: &str) -> Result<Timeline, Kept> {
    let (tl, findings) = super::transpose::read_one(text).map_err(|_| Kept::NotValid)?;
    if !findings.is_empty() {
        return Err(Kept::NotValid);
    }
    Ok(tl)
}

/// The timeline's steps without their positions.
fn kinds(tl: &Timeline) -> Vec<&StepKind> {
    tl.steps.iter().map(|s| &s.kind).collect()
}

/// A bar line that ends a part: a repeat's end or any bar line but a single one.
fn ends_part(b: &Bar) -> bool {
    b.repeat_end || b.style != BarStyle::Single
}

/// Where to break: (1-based line, 1-based column of the bar line's first character).
fn breaks(tl: &Timeline, per_line: usize) -> Result<Vec<(usize, usize)>, Kept> {
    let mut full = bar_length(tl.meter).ok_or(Kept::NotValid)?;
    let (mut bar_time, mut in_line) = (Frac::ZERO, 0usize);
    let mut out = Vec::new();
    for step in &tl.steps {
        match &step.kind {
            StepKind::Sound { whole_bars: Some(_), .. } | StepKind::Voice(_) => return Err(Kept::Unsupported),
            StepKind::Sound { advance, .. } => {
                bar_time = bar_time.checked_add(*advance).ok_or(Kept::NotValid)?;
            }
            StepKind::Meter(m) => {
                full = bar_length(Some(*m)).ok_or(Kept::NotValid)?;
            }
            StepKind::Part(_) => in_line = 0,
            StepKind::Bar(b) => {
                in_line += usize::from(bar_time == full);
                bar_time = Frac::ZERO;
                if ends_part(b) || in_line >= per_line {
                    out.push((step.pos.line, step.pos.col));
                    in_line = 0;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Where the bar line starting at character `at` of `line` ends (exclusive), and whether a
/// line may break there: not before an ending's number written onto the bar line (`:|2`).
fn bar_end(line: &[char], at: usize) -> (usize, bool) {
    let mut i = at;
    if line.get(i) == Some(&'[') {
        i += 1;
    }
    while i < line.len() && matches!(line[i], '|' | ':' | ']') {
        i += 1;
    }
    (i, !line.get(i).is_some_and(|c| c.is_ascii_digit()))
}

/// The tune reflowed to `per_line` complete bars a line (at least 1), or why it is left as
/// written.
pub fn reflow_tune(text: &str, per_line: usize) -> Result<String, Kept> {
    let tl = read(text)?;
    let mut wanted = breaks(&tl, per_line.max(1))?;
    wanted.sort_unstable();
    // Music lines are joined into one stream, broken where `wanted` says; any other line
    // (fields, comments, the header) ends the stream and is written as it was.
    let mut lines: Vec<String> = Vec::new();
    let mut stream = String::new();
    let flush = |stream: &mut String, lines: &mut Vec<String>| {
        lines.extend(stream.trim_end_matches([' ', '\n']).split('\n').filter(|l| !l.is_empty()).map(String::from));
        stream.clear();
    };
    let mut in_body = false;
    let mut next = wanted.iter().peekable();
    for (k, raw) in text.split('\n').enumerate() {
        let line_no = k + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let music = in_body && !line.trim().is_empty() && !line.starts_with('%') && !parse::is_field_line(line);
        if !music {
            flush(&mut stream, &mut lines);
            lines.push(line.to_string());
            in_body |= line.starts_with("K:");
            continue;
        }
        let chars: Vec<char> = line.strip_suffix('\\').unwrap_or(line).chars().collect();
        let mut from = 0;
        while let Some(&&(l, col)) = next.peek() {
            if l != line_no {
                break;
            }
            next.next();
            let (end, may) = bar_end(&chars, col - 1);
            if may && end > from {
                stream.extend(&chars[from..end]);
                stream.push('\n');
                from = end;
                while chars.get(from) == Some(&' ') {
                    from += 1;
                }
            }
        }
        stream.extend(&chars[from..]);
    }
    flush(&mut stream, &mut lines);
    Ok(lines.join("\n"))
}

/// Labels the parts of a (reflowed) tune: `Ok(None)` when it labels them already (a body `P:`,
/// a `Y:` or a header `P:`), else the tune with a `P:` line before each part's first line and
/// a `Y:` field naming the parts in written order, placed before the header's first `M:`,
/// `L:`, `R:`, `Q:` or `K:` line. Parts are the judge's sections, so labelling moves none of
/// them: the result must read back with the same music, parts and bars, and pass the checker.
pub fn label_parts(text: &str) -> Result<Option<String>, Kept> {
    let tl = read(text)?;
    if tl.order.is_some() || tl.steps.iter().any(|s| matches!(s.kind, StepKind::Part(_))) {
        return Ok(None);
    }
    if tl.steps.iter().any(|s| matches!(s.kind, StepKind::Voice(_))) {
        return Err(Kept::Unsupported);
    }
    let spans = section_spans(&tl);
    if spans.is_empty() || spans.len() > 26 {
        return Err(Kept::Parts);
    }
    if spans.windows(2).any(|w| w[1].first_line <= w[0].last_line) {
        return Err(Kept::MidLine);
    }
    let letters: Vec<char> = (b'A'..=b'Z').take(spans.len()).map(char::from).collect();
    let lines: Vec<&str> = text.split('\n').collect();
    let header_at = lines
        .iter()
        .position(|l| ["M:", "L:", "R:", "Q:", "K:"].iter().any(|f| l.starts_with(f)))
        .ok_or(Kept::NotValid)?;
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + spans.len() + 1);
    let mut next = spans.iter().zip(&letters).peekable();
    let mut moved = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        if k == header_at {
            out.push(format!("Y:{}", letters.iter().collect::<String>()));
        }
        let mut line = line.to_string();
        if let Some((_, letter)) = next.next_if(|(s, _)| s.first_line == k + 1) {
            // A repeat that starts this part is written at the end of the line before it
            // (`::`, `:||:`): it moves across the label, onto the part's first line.
            if let Some(last) = out.iter_mut().rev().find(|l| !l.trim().is_empty()) {
                let music = !last.starts_with('%') && !parse::is_field_line(last);
                if let Some((end, start)) = split_repeat_start(last.trim_end()).filter(|_| music) {
                    *last = end;
                    line = format!("{start}{line}");
                    // The part's first line is the next one written, after the label.
                    moved.push(out.len() + 2);
                }
            }
            out.push(format!("P:{letter}"));
        }
        out.push(line);
    }
    let new = out.join("\n");
    check_labelled(&tl, &new, &letters, &moved)?;
    Ok(Some(new))
}

/// A music line ending with a bar line that starts a repeat, split into the line ending with
/// the bar line's closing half and the repeat start: `...E2:|:` into (`...E2:|`, `|:`).
fn split_repeat_start(line: &str) -> Option<(String, &'static str)> {
    let head = line.trim_end_matches(['|', ':']);
    let bar = &line[head.len()..];
    if !bar.ends_with(':') || !bar.contains('|') && bar != "::" {
        return None;
    }
    // The bar line without its start (`:||:` is `:||` and `|:`); `::` reads as `:||:`, and
    // `|||:` as the double bar `||` and a start.
    let end = match bar.trim_end_matches(':') {
        "" | ":" => ":||",
        e if e.ends_with("|||") => &e[..e.len() - 1],
        e => e,
    };
    Some((format!("{head}{end}"), "|:"))
}

/// The steps without part labels, with each repeat start that [`label_parts`] moved onto a
/// part's first line (the 1-based lines `moved`, column 1) joined again to the bar line it was
/// split from (`:|` `P:B` `|:` read as `:|:`).
fn without_labels(tl: &Timeline, moved: &[usize]) -> Vec<StepKind> {
    let mut out: Vec<StepKind> = Vec::new();
    for s in &tl.steps {
        let was_moved = s.pos.col == 1 && moved.contains(&s.pos.line);
        match (out.last_mut(), &s.kind) {
            (_, StepKind::Part(_)) => {}
            (Some(StepKind::Bar(a)), StepKind::Bar(b)) if was_moved && b.repeat_start && !a.repeat_start => {
                a.repeat_start = true;
            }
            (_, k) => out.push(k.clone()),
        }
    }
    out
}

/// Whether `new` is the tune of timeline `a` with its parts labelled `letters`: the same music without the labels,
/// the same parts with the same bars, the order promised, the checker passed.
fn check_labelled(a: &Timeline, new: &str, letters: &[char], moved: &[usize]) -> Result<(), Kept> {
    let b = read(new).map_err(|_| Kept::Labelling)?;
    let labels = b.steps.iter().filter(|s| matches!(s.kind, StepKind::Part(_))).count();
    let bars = |tl: &Timeline| section_spans(tl).iter().map(|s| s.bars).collect::<Vec<f64>>();
    if without_labels(&b, moved) != kinds(a).into_iter().cloned().collect::<Vec<_>>()
        || labels != letters.len()
        || b.order.as_deref() != Some(letters)
        || bars(a) != bars(&b)
        || (a.meter, a.unit, a.key.clone()) != (b.meter, b.unit, b.key.clone())
    {
        return Err(Kept::Labelling);
    }
    Ok(())
}

/// Marks which line of its part each music line of a (reflowed) tune is: the bar lines inside
/// every second line of a part (its second, fourth, ... line, counted from a `P:` field or the
/// line after a part's closing bar line) get a space either side, `|` becoming ` | `. A model
/// reading the text then sees at every bar whether it is in the first or the second half of an
/// 8-bar part, where a line break alone would have to be remembered across a line of music.
/// Spaces beside a bar line change no note, beam or bar: the result must read back as the same
/// music and pass the checker, or the tune is left unmarked.
pub fn mark_lines(text: &str) -> Result<String, Kept> {
    mark(text, false)
}

/// [`mark_lines`], and the tune's last part marked too (`train --mark-last`): the bar lines
/// inside the last part's lines get one space, before them on its odd lines (`a |b`) and after
/// them on its even ones (`a| b`), where the other parts' lines keep `a|b` and `a | b`. A model
/// then reads at every bar whether the part it is writing is the tune's last, which it decides
/// once, on the part's first line (a few characters after the `P:` label, and for the first
/// part after the header's `Y:`), instead of remembering across two lines of music which part it
/// is in when the part's closing bar line asks whether the tune ends there.
pub fn mark_last(text: &str) -> Result<String, Kept> {
    mark(text, true)
}

/// The bar-line marks of [`mark_lines`], with `last` those of [`mark_last`].
fn mark(text: &str, last: bool) -> Result<String, Kept> {
    let tl = read(text)?;
    // Each bar line by (1-based line, 1-based column), with the index of its line within its
    // part and its part's number.
    let mut bars: Vec<(usize, usize, usize, usize)> = Vec::new();
    let (mut line, mut index, mut part, mut part_ended) = (0usize, 0usize, 0usize, true);
    for s in &tl.steps {
        match &s.kind {
            StepKind::Part(_) => part_ended = true,
            StepKind::Bar(b) => {
                if s.pos.line != line {
                    if part_ended {
                        index = 0;
                        part += 1;
                    } else {
                        index += 1;
                    }
                    line = s.pos.line;
                }
                part_ended = ends_part(b);
                bars.push((s.pos.line, s.pos.col, index, part));
            }
            _ => {}
        }
    }
    // (line, column, space before, space after) of each bar line to space.
    let spaced: Vec<(usize, usize, bool, bool)> = bars
        .iter()
        .filter_map(|&(l, c, index, p)| match (index % 2 == 1, last && p == part) {
            (false, false) => None,
            (true, false) => Some((l, c, true, true)),
            (false, true) => Some((l, c, true, false)),
            (true, true) => Some((l, c, false, true)),
        })
        .collect();
    if spaced.is_empty() {
        return Ok(text.to_string());
    }
    let mut out: Vec<String> = Vec::new();
    for (k, line) in text.split('\n').enumerate() {
        let cols: Vec<(usize, bool, bool)> =
            spaced.iter().filter(|s| s.0 == k + 1).map(|&(_, c, before, after)| (c - 1, before, after)).collect();
        if cols.is_empty() {
            out.push(line.to_string());
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut new = String::with_capacity(line.len() + 2 * cols.len());
        let mut from = 0;
        for (c, before, after) in cols {
            let (end, _) = bar_end(&chars, c);
            // Neither a bar line opening the line nor the one closing it: only those between bars.
            if c == 0 || c < from || chars[end..].iter().all(|&ch| ch == ' ' || ch == '\\') {
                continue;
            }
            new.extend(&chars[from..c]);
            if before && chars[c - 1] != ' ' {
                new.push(' ');
            }
            new.extend(&chars[c..end]);
            if after && !matches!(chars.get(end), Some(' ') | Some('0'..='9')) {
                new.push(' ');
            }
            from = end;
        }
        new.extend(&chars[from..]);
        out.push(new);
    }
    let new = out.join("\n");
    same_music(&tl, &new).map_err(|_| Kept::Marking)?;
    Ok(new)
}

/// Restates the key in force after each `P:` part label of a (labelled) tune (`train
/// --restate-key`): a `K:` line written as the last `K:` line above it, unless a `K:` line is
/// beside the label already (the header's, before the first part). A model reading the text
/// then meets the tonic and mode a few characters before each part, instead of remembering the
/// header's across hundreds of characters of music when it writes the part's closing cadence:
/// a minor tune's mode is written nowhere else. A `K:` that restates the key in force changes
/// no note: the result must read back as the same music and pass the checker, or the tune is
/// left as it was.
pub fn restate_key(text: &str) -> Result<String, Kept> {
    let tl = read(text)?;
    let lines: Vec<&str> = text.split('\n').collect();
    let is_key = |l: &str| l.starts_with("K:");
    let mut key: Option<&str> = None;
    let mut out: Vec<&str> = Vec::with_capacity(lines.len() + 8);
    // 1-based lines of the new text that restate the key.
    let mut added: Vec<usize> = Vec::new();
    for (k, &line) in lines.iter().enumerate() {
        out.push(line);
        if is_key(line) {
            key = Some(line.trim_end());
            continue;
        }
        let label = line.starts_with("P:")
            && key.is_some()
            && tl.steps.iter().any(|s| matches!(s.kind, StepKind::Part(_)) && s.pos.line == k + 1);
        let beside = k.checked_sub(1).is_some_and(|j| is_key(lines[j])) || lines.get(k + 1).is_some_and(|l| is_key(l));
        if let (true, false, Some(key)) = (label, beside, key) {
            out.push(key);
            added.push(out.len());
        }
    }
    if added.is_empty() {
        return Ok(text.to_string());
    }
    let new = out.join("\n");
    let b = read(&new).map_err(|_| Kept::Restating)?;
    let without: Vec<&StepKind> = b
        .steps
        .iter()
        .filter(|s| !(matches!(s.kind, StepKind::Key(_)) && added.contains(&s.pos.line)))
        .map(|s| &s.kind)
        .collect();
    if without != kinds(&tl)
        || (tl.meter, tl.unit, tl.key.clone(), &tl.order) != (b.meter, b.unit, b.key.clone(), &b.order)
    {
        return Err(Kept::Restating);
    }
    Ok(new)
}

/// A corpus reflowed tune by tune ([`reflow_text`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reflowed {
    /// The text, every tune reflowed or as written.
    pub text: String,
    /// Tunes reflowed.
    pub reflowed: usize,
    /// Tunes left as written, by reason ([`Kept::kind`]).
    pub kept: std::collections::BTreeMap<&'static str, usize>,
    /// The layout asked for.
    pub layout: Layout,
    /// Reflowed tunes whose parts were labelled.
    pub labelled: usize,
    /// Reflowed tunes that labelled their parts already.
    pub had_labels: usize,
    /// Reflowed tunes left unlabelled, by reason.
    pub unlabelled: std::collections::BTreeMap<&'static str, usize>,
    /// Reflowed tunes with lines marked ([`mark_lines`]; tunes whose parts are one line each
    /// have none to mark).
    pub marked: usize,
    /// Reflowed tunes left unmarked, by reason.
    pub unmarked: std::collections::BTreeMap<&'static str, usize>,
    /// Reflowed tunes with the key restated after their part labels ([`restate_key`]).
    pub restated: usize,
    /// Reflowed tunes whose key was not restated, by reason.
    pub unrestated: std::collections::BTreeMap<&'static str, usize>,
}

impl Reflowed {
    /// One line for the training log.
    pub fn describe(&self) -> String {
        let list = |m: &std::collections::BTreeMap<&'static str, usize>| {
            m.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<String>>().join(", ")
        };
        let kept =
            if self.kept.is_empty() { String::new() } else { format!("; left as written: {}", list(&self.kept)) };
        let labels = match (self.layout.label_parts, self.unlabelled.is_empty()) {
            (false, _) => String::new(),
            (true, true) => format!("; parts labelled in {} (had labels: {})", self.labelled, self.had_labels),
            (true, false) => format!(
                "; parts labelled in {} (had labels: {}; left unlabelled: {})",
                self.labelled,
                self.had_labels,
                list(&self.unlabelled)
            ),
        };
        let what = if self.layout.mark_last { "second lines and last parts" } else { "second lines" };
        let marks = match (self.layout.mark_lines, self.unmarked.is_empty()) {
            (false, _) => String::new(),
            (true, true) => format!("; {what} marked in {}", self.marked),
            (true, false) => {
                format!("; {what} marked in {} (left unmarked: {})", self.marked, list(&self.unmarked))
            }
        };
        let keys = match (self.layout.restate_key, self.unrestated.is_empty()) {
            (false, _) => String::new(),
            (true, true) => format!("; key restated in {}", self.restated),
            (true, false) => format!("; key restated in {} (not in: {})", self.restated, list(&self.unrestated)),
        };
        format!("reflow: {} tunes at {} bars a line{kept}{labels}{marks}{keys}", self.reflowed, self.layout.line_bars)
    }
}

impl Reflowed {
    /// `tune` with its key restated ([`restate_key`]), counted; as it was if it cannot be.
    fn restate(&mut self, tune: String) -> String {
        match restate_key(&tune) {
            Ok(k) => {
                self.restated += usize::from(k != tune);
                k
            }
            Err(e) => {
                *self.unrestated.entry(e.kind()).or_default() += 1;
                tune
            }
        }
    }
}

/// Every tune of `text` reflowed to `layout.line_bars` bars a line ([`reflow_tune`]), with
/// `layout.label_parts` its parts labelled ([`label_parts`]) and with `layout.mark_lines` the
/// second lines of its parts marked ([`mark_lines`]), and with `layout.restate_key` the key
/// restated after each part label ([`restate_key`]; in a valid tune left as written too); text
/// between tunes is kept.
pub fn reflow_text(text: &str, layout: Layout) -> Reflowed {
    let starts = parse::tune_starts(text);
    let mut r = Reflowed {
        text: text[..starts.first().copied().unwrap_or(text.len())].to_string(),
        layout,
        ..Default::default()
    };
    for (k, &s) in starts.iter().enumerate() {
        let tune = &text[s..starts.get(k + 1).copied().unwrap_or(text.len())];
        // The tune's own text ends at its first blank line; what follows is kept as it was.
        let body_end = tune.find("\n\n").map_or(tune.len(), |i| i + 1);
        let (own, rest) = tune.split_at(body_end);
        match reflow_tune(own, layout.line_bars).and_then(|t| check_same(own, &t).map(|_| t)) {
            Ok(t) => {
                r.reflowed += 1;
                let t = match if layout.label_parts { label_parts(&t) } else { Ok(None) } {
                    Ok(Some(l)) => {
                        r.labelled += 1;
                        l
                    }
                    Ok(None) => {
                        r.had_labels += usize::from(layout.label_parts);
                        t
                    }
                    Err(e) => {
                        *r.unlabelled.entry(e.kind()).or_default() += 1;
                        t
                    }
                };
                let t = if layout.mark_lines {
                    match mark(&t, layout.mark_last) {
                        Ok(m) => {
                            r.marked += usize::from(m != t);
                            m
                        }
                        Err(e) => {
                            *r.unmarked.entry(e.kind()).or_default() += 1;
                            t
                        }
                    }
                } else {
                    t
                };
                let t = if layout.restate_key { r.restate(t) } else { t };
                r.text.push_str(&t);
            }
            Err(e) => {
                *r.kept.entry(e.kind()).or_default() += 1;
                // A tune left as written still has its labels' keys restated where it can (it is
                // counted as left already when it cannot be).
                match layout.restate_key.then(|| restate_key(own).ok()).flatten() {
                    Some(k) => {
                        r.restated += usize::from(k != own);
                        r.text.push_str(&k);
                    }
                    None => r.text.push_str(own),
                }
            }
        }
        r.text.push_str(rest);
    }
    r
}

/// Whether `new` reads back as the same music as `old`, passing the checker.
fn check_same(old: &str, new: &str) -> Result<(), Kept> {
    same_music(&read(old)?, new)
}

/// Whether `new` reads back as the music of timeline `a` (the same steps, meter, unit, key and
/// play order), passing the checker.
fn same_music(a: &Timeline, new: &str) -> Result<(), Kept> {
    let b = read(new).map_err(|_| Kept::Mismatch)?;
    if kinds(a) != kinds(&b) || (a.meter, a.unit, a.key.clone(), &a.order) != (b.meter, b.unit, b.key.clone(), &b.order)
    {
        return Err(Kept::Mismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_after_every_fourth_complete_bar_and_at_the_end_of_each_part() {
        // A pickup, a line continued with `\`, a line of five bars, endings written onto the
        // bar lines (`|1`, `:|2`: no break may fall before their numbers), a body P: line.
        let tune = "X:1\nT:Test\nM:6/8\nL:1/8\nK:G\n\
                    d|\"G\"g2g B^AB|d2d G3|\"Em\"GAB \"Am\"A2A|\\\n\
                    \"D7\"ABc \"G\"BAG|\"G\"g2g B^AB|\n\
                    d2d G2G|\"Em\"GAB \"Am\"A2G|1\"D7\"FGA \"G\"G2:|2\"D7\"FGA \"G\"G3||\n\
                    P:B\n\
                    |:B2B e2e|c2A FBA|G2F E3|EFG ABc|B^c^d e2e|\n\
                    f2f f2e|^def BAF|E3 E3:|\n";
        let want = "X:1\nT:Test\nM:6/8\nL:1/8\nK:G\n\
                    d|\"G\"g2g B^AB|d2d G3|\"Em\"GAB \"Am\"A2A|\"D7\"ABc \"G\"BAG|\n\
                    \"G\"g2g B^AB|d2d G2G|\"Em\"GAB \"Am\"A2G|1\"D7\"FGA \"G\"G2:|2\"D7\"FGA \"G\"G3||\n\
                    P:B\n\
                    |:B2B e2e|c2A FBA|G2F E3|EFG ABc|\n\
                    B^c^d e2e|f2f f2e|^def BAF|E3 E3:|\n";
        let got = reflow_tune(tune, BARS_PER_LINE).unwrap();
        assert_eq!(got, want);
        check_same(tune, &got).unwrap();
        // Reflowing twice changes nothing more.
        assert_eq!(reflow_tune(&got, BARS_PER_LINE).unwrap(), got);
        // At eight bars a line each part of this tune is one line: the first part's eight
        // complete bars end on `:|2`, which cannot start a line, so its second ending stays.
        let want8 = "X:1\nT:Test\nM:6/8\nL:1/8\nK:G\n\
                     d|\"G\"g2g B^AB|d2d G3|\"Em\"GAB \"Am\"A2A|\"D7\"ABc \"G\"BAG|\"G\"g2g B^AB|d2d G2G|\
                     \"Em\"GAB \"Am\"A2G|1\"D7\"FGA \"G\"G2:|2\"D7\"FGA \"G\"G3||\n\
                     P:B\n\
                     |:B2B e2e|c2A FBA|G2F E3|EFG ABc|B^c^d e2e|f2f f2e|^def BAF|E3 E3:|\n";
        let got8 = reflow_tune(tune, 8).unwrap();
        assert_eq!(got8, want8);
        check_same(tune, &got8).unwrap();
        // From four to eight bars a line and back: the layouts are each other's.
        assert_eq!(reflow_tune(&got, 8).unwrap(), got8);
        assert_eq!(reflow_tune(&got8, BARS_PER_LINE).unwrap(), got);
    }

    #[test]
    fn every_second_line_of_a_part_has_its_inner_bar_lines_spaced() {
        // An 8-bar part and a 16-bar one: the second line of each, and the fourth of the long
        // one, are marked; a bar line opening or closing a line is left alone.
        let tune = "X:1\nM:3/4\nL:1/4\nK:D\nABc|def|ABc|def|\nABc|def|ABc|d3:|\n\
                    |:fed|cBA|fed|cBA|\nfed|cBA|fed|cBA|\nfed|cBA|fed|cBA|\nfed|cBA|fed|c3:|\n";
        let want = "X:1\nM:3/4\nL:1/4\nK:D\nABc|def|ABc|def|\nABc | def | ABc | d3:|\n\
                    |:fed|cBA|fed|cBA|\nfed | cBA | fed | cBA|\nfed|cBA|fed|cBA|\nfed | cBA | fed | c3:|\n";
        let got = mark_lines(tune).unwrap();
        assert_eq!(got, want);
        assert_eq!(mark_lines(&got).unwrap(), got, "marking twice changes nothing more");
        // A `P:` line starts a part's count again; an ending's number stays on its bar line.
        let named = "X:2\nM:6/8\nL:1/8\nK:G\nP:A\nGAB c2d|e2d c2B|\nGAB c2d|1e2d c3:|2e2d G3||\nP:B\ng2g f2f|e3 d3|\n";
        let want_named =
            "X:2\nM:6/8\nL:1/8\nK:G\nP:A\nGAB c2d|e2d c2B|\nGAB c2d |1e2d c3 :|2e2d G3||\nP:B\ng2g f2f|e3 d3|\n";
        assert_eq!(mark_lines(named).unwrap(), want_named);
        // Through the corpus path: counted, and said.
        let r = reflow_text(tune, Layout { mark_lines: true, ..Layout::default() });
        assert_eq!((r.marked, r.text.as_str()), (1, want));
        assert!(r.describe().ends_with("; second lines marked in 1"), "{}", r.describe());
    }

    #[test]
    fn the_last_part_is_marked_on_every_line_and_the_second_lines_stay_told_apart() {
        // The same two parts as above: the first keeps mark_lines' marks; every inner bar line
        // of the last gets one space, before it on the part's odd lines, after it on its even.
        let tune = "X:1\nM:3/4\nL:1/4\nK:D\nABc|def|ABc|def|\nABc|def|ABc|d3:|\n\
                    |:fed|cBA|fed|cBA|\nfed|cBA|fed|cBA|\nfed|cBA|fed|cBA|\nfed|cBA|fed|c3:|\n";
        let want = "X:1\nM:3/4\nL:1/4\nK:D\nABc|def|ABc|def|\nABc | def | ABc | d3:|\n\
                    |:fed |cBA |fed |cBA|\nfed| cBA| fed| cBA|\nfed |cBA |fed |cBA|\nfed| cBA| fed| c3:|\n";
        let got = mark_last(tune).unwrap();
        assert_eq!(got, want);
        assert_eq!(mark_last(&got).unwrap(), got, "marking twice changes nothing more");
        // Labelled parts: the part after the last `P:` is the last; a one-part tune is all last.
        let named = "X:2\nM:6/8\nL:1/8\nK:G\nP:A\nGAB c2d|e2d c2B|\nGAB c2d|1e2d c3:|2e2d G3||\nP:B\ng2g f2f|e3 d3|\n";
        let want_named =
            "X:2\nM:6/8\nL:1/8\nK:G\nP:A\nGAB c2d|e2d c2B|\nGAB c2d |1e2d c3 :|2e2d G3||\nP:B\ng2g f2f |e3 d3|\n";
        assert_eq!(mark_last(named).unwrap(), want_named);
        let one = "X:3\nM:6/8\nL:1/8\nK:G\nGAB c2d|e2d c2B|\nGAB c2d|e2d c3|]\n";
        assert_eq!(mark_last(one).unwrap(), "X:3\nM:6/8\nL:1/8\nK:G\nGAB c2d |e2d c2B|\nGAB c2d| e2d c3|]\n");
        let r = reflow_text(tune, Layout { mark_lines: true, mark_last: true, ..Layout::default() });
        assert_eq!((r.marked, r.text.as_str()), (1, want));
        assert!(r.describe().ends_with("; second lines and last parts marked in 1"), "{}", r.describe());
    }

    #[test]
    fn the_key_in_force_is_restated_after_each_part_label_but_the_first() {
        // Part A follows the header's K: (nothing to restate); part B modulates to the relative
        // major with a K: line of its own; part C gets the key in force above it, as written.
        let tune = "X:1\nY:ABC\nM:6/8\nL:1/8\nK:Em\nP:A\nEFG B2e|d3 B3:|\nP:B\nK:G\nGAB d2g|g3 d3:|\n\
                    P:C\nd2B A2F|G3 G3|]\n";
        let want = "X:1\nY:ABC\nM:6/8\nL:1/8\nK:Em\nP:A\nEFG B2e|d3 B3:|\nP:B\nK:G\nGAB d2g|g3 d3:|\n\
                    P:C\nK:G\nd2B A2F|G3 G3|]\n";
        let got = restate_key(tune).unwrap();
        assert_eq!(got, want);
        assert_eq!(restate_key(&got).unwrap(), got, "restating twice changes nothing more");
        let minor = "X:2\nM:3/4\nL:1/4\nK:Ador\nP:A\nABc|e3:|\nP:B\nagf|e3:|\n";
        assert_eq!(restate_key(minor).unwrap(), "X:2\nM:3/4\nL:1/4\nK:Ador\nP:A\nABc|e3:|\nP:B\nK:Ador\nagf|e3:|\n");
        // No labels, nothing to restate; a tune that is not valid is left alone.
        let plain = "X:3\nM:3/4\nL:1/4\nK:D\nABc|def:|\n";
        assert_eq!(restate_key(plain).unwrap(), plain);
        assert_eq!(restate_key("X:4\nM:3/4\nL:1/4\nK:D\nP:A\nABcd|\nP:B\nABc|\n"), Err(Kept::NotValid));
        // Through the corpus path, after labelling: counted, and said.
        let r = reflow_text(
            "X:5\nM:3/4\nL:1/4\nK:Dm\nABc|def:|\n|:fed|cBA:|\n",
            Layout { label_parts: true, restate_key: true, ..Layout::default() },
        );
        let labelled = "X:5\nY:AB\nM:3/4\nL:1/4\nK:Dm\nP:A\nABc|def:|\nP:B\nK:Dm\n|:fed|cBA:|\n";
        assert_eq!((r.restated, r.text.as_str()), (1, labelled));
        assert!(r.describe().ends_with("; key restated in 1"), "{}", r.describe());
    }

    #[test]
    fn a_tune_that_is_not_valid_is_left_as_written_and_counted() {
        // The second bar is one eighth too long.
        let bad = "X:2\nM:6/8\nL:1/8\nK:D\nABc def|ABc defg|\nABc def|]\n";
        assert_eq!(reflow_tune(bad, BARS_PER_LINE), Err(Kept::NotValid));
        let good = "X:3\nM:3/4\nL:1/4\nK:D\nABc|def|\nABc|def|ABc|def|]\n";
        let text = format!("% a file header\n\n{bad}\n{good}");
        let r = reflow_text(&text, Layout::default());
        assert_eq!((r.reflowed, r.kept.get("not valid").copied()), (1, Some(1)), "{r:?}");
        let want = format!("% a file header\n\n{bad}\nX:3\nM:3/4\nL:1/4\nK:D\nABc|def|ABc|def|\nABc|def|]\n");
        assert_eq!(r.text, want);
        assert!(r.describe().contains("1 tunes at 4 bars a line; left as written: 1 not valid"), "{}", r.describe());
    }

    #[test]
    fn parts_are_labelled_where_the_judge_counts_them_and_a_repeat_start_moves_past_the_label() {
        // Part A ends on `::`, which also starts part B's repeat; part B has a pickup and two
        // endings; part C follows a double bar. The pickup of A stays in A.
        let tune = "X:1\nT:Test\nS:someone\nM:6/8\nL:1/8\nK:G\n\
                    d|g2g B^AB|d2d G3|GAB A2A|ABc BAG|\n\
                    g2g B^AB|d2d G2G|GAB A2G|FGA G3::\n\
                    B|c2A FBA|G2F E3|EFG ABc|B^c^d e2e|\n\
                    f2f f2e|^def BAF|E3 EFG|1E3 E2:|2E3 E3||\n\
                    c3 c3|B3 B3|A3 A3|G3 G3|]\n";
        let want = "X:1\nT:Test\nS:someone\nY:ABC\nM:6/8\nL:1/8\nK:G\nP:A\n\
                    d|g2g B^AB|d2d G3|GAB A2A|ABc BAG|\n\
                    g2g B^AB|d2d G2G|GAB A2G|FGA G3:||\n\
                    P:B\n\
                    |:B|c2A FBA|G2F E3|EFG ABc|B^c^d e2e|\n\
                    f2f f2e|^def BAF|E3 EFG|1E3 E2:|2E3 E3||\n\
                    P:C\n\
                    c3 c3|B3 B3|A3 A3|G3 G3|]\n";
        let got = label_parts(tune).unwrap().expect("the tune names no parts");
        assert_eq!(got, want);
        // The judge reads the labels as the parts it counted before, and the promise kept.
        let (before, after) = (&super::super::judge::read_tunes(tune)[0], &super::super::judge::read_tunes(&got)[0]);
        let bars = |f: &super::super::judge::Features| f.sections.iter().map(|s| s.bars).collect::<Vec<_>>();
        assert_eq!((bars(before), bars(after)), (vec![8.0, 8.0, 4.0], vec![8.0, 8.0, 4.0]));
        assert_eq!((after.form.as_str(), after.order_delivered, after.valid), ("AABBC", Some(true), true));
        // A labelled tune is labelled already.
        assert_eq!(label_parts(&got), Ok(None));
        // Reflowing and labelling in one pass over a file gives the same and counts it.
        let r = reflow_text(tune, Layout { label_parts: true, ..Layout::default() });
        assert_eq!((r.text.as_str(), r.reflowed, r.labelled), (want, 1, 1));
        assert!(r.describe().ends_with("; parts labelled in 1 (had labels: 0)"), "{}", r.describe());
        assert_eq!(reflow_text(tune, Layout::default()).labelled, 0);
    }

    #[test]
    fn a_tune_whose_parts_cannot_be_labelled_is_left_unlabelled_and_counted() {
        // A part that starts in the middle of a line (the repeat start after `def|`).
        let mid = "X:1\nM:3/4\nL:1/4\nK:D\nABc|def|:gfe|dcB:|\n";
        assert_eq!(label_parts(mid), Err(Kept::MidLine));
        // One repeat around two parts: a label between them would cut it.
        let across = "X:2\nM:3/4\nL:1/4\nK:D\nABc|def:|\n|:gfe|dcB||\nABc|dcB:|\n";
        assert_eq!(label_parts(across), Err(Kept::Labelling));
        // Labels written already: nothing to do.
        let named = "X:3\nM:3/4\nL:1/4\nK:D\nP:A\nABc|def:|\nP:B\ngfe|dcB:|\n";
        assert_eq!(label_parts(named), Ok(None));
        let r = reflow_text(&format!("{mid}\n{across}\n{named}"), Layout { label_parts: true, ..Layout::default() });
        assert_eq!((r.reflowed, r.labelled, r.had_labels), (3, 0, 1), "{r:?}");
        assert_eq!(r.unlabelled.values().sum::<usize>(), 2, "{r:?}");
        assert!(
            r.describe().contains("left unlabelled: 1 a part starting mid-line, 1 changed by labelling"),
            "{}",
            r.describe()
        );
    }

    #[test]
    fn a_bar_line_that_starts_a_repeat_splits_into_its_end_and_the_start() {
        for (line, end) in [
            ("ab::", "ab:||"),
            ("ab:|:", "ab:|"),
            ("ab:||:", "ab:||"),
            ("ab||:", "ab||"),
            ("ab|:", "ab|"),
            ("ab|||:", "ab||"),
        ] {
            assert_eq!(split_repeat_start(line), Some((end.to_string(), "|:")), "{line}");
        }
        for line in ["ab:|", "ab||", "ab|]", "ab|", "ab"] {
            assert_eq!(split_repeat_start(line), None, "{line}");
        }
    }
}
