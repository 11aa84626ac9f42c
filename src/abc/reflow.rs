//! Reflow: a tune's body rewritten with a line break after every fourth complete bar and at
//! the end of every part (`train --reflow`), so that a model reading the text can count parts
//! by lines instead of bars. Only the layout moves: the result must have the same timeline
//! (every note, bar line, ending and chord symbol, in order) and pass the checker as the
//! original did, or the tune is left as written.

use super::frac::Frac;
use super::judge::bar_length;
use super::parse;
use super::timeline::{StepKind, Timeline};

/// Complete bars per line.
pub const BARS_PER_LINE: usize = 4;

/// Why a tune was left as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    /// It does not pass the checker (or cannot be read), or has a free meter.
    NotValid,
    /// It has voices or multi-bar rests, whose layout reflowing would have to understand.
    Unsupported,
    /// The reflowed text did not read back as the same music (or did not pass the checker).
    Mismatch,
}

impl Kept {
    /// A short name for counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Kept::NotValid => "not valid",
            Kept::Unsupported => "voices or multi-bar rests",
            Kept::Mismatch => "changed by reflowing",
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

/// Where to break: (1-based line, 1-based column of the bar line's first character).
fn breaks(tl: &Timeline) -> Result<Vec<(usize, usize)>, Kept> {
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
                let part_end = b.repeat_end || b.style != super::ast::BarStyle::Single;
                if part_end || in_line >= BARS_PER_LINE {
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

/// The tune reflowed, or why it is left as written.
pub fn reflow_tune(text: &str) -> Result<String, Kept> {
    let tl = read(text)?;
    let mut wanted = breaks(&tl)?;
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

/// A corpus reflowed tune by tune ([`reflow_text`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reflowed {
    /// The text, every tune reflowed or as written.
    pub text: String,
    /// Tunes reflowed.
    pub reflowed: usize,
    /// Tunes left as written, by reason ([`Kept::kind`]).
    pub kept: std::collections::BTreeMap<&'static str, usize>,
}

impl Reflowed {
    /// One line for the training log.
    pub fn describe(&self) -> String {
        let kept: Vec<String> = self.kept.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let kept = if kept.is_empty() { String::new() } else { format!("; left as written: {}", kept.join(", ")) };
        format!("reflow: {} tunes at {BARS_PER_LINE} bars a line{kept}", self.reflowed)
    }
}

/// Every tune of `text` reflowed ([`reflow_tune`]); text between tunes is kept.
pub fn reflow_text(text: &str) -> Reflowed {
    let starts = parse::tune_starts(text);
    let mut r =
        Reflowed { text: text[..starts.first().copied().unwrap_or(text.len())].to_string(), ..Default::default() };
    for (k, &s) in starts.iter().enumerate() {
        let tune = &text[s..starts.get(k + 1).copied().unwrap_or(text.len())];
        // The tune's own text ends at its first blank line; what follows is kept as it was.
        let body_end = tune.find("\n\n").map_or(tune.len(), |i| i + 1);
        let (own, rest) = tune.split_at(body_end);
        match reflow_tune(own).and_then(|t| check_same(own, &t).map(|_| t)) {
            Ok(t) => {
                r.text.push_str(&t);
                r.reflowed += 1;
            }
            Err(e) => {
                r.text.push_str(own);
                *r.kept.entry(e.kind()).or_default() += 1;
            }
        }
        r.text.push_str(rest);
    }
    r
}

/// Whether `new` reads back as the same music as `old`, passing the checker.
fn check_same(old: &str, new: &str) -> Result<(), Kept> {
    let (a, b) = (read(old)?, read(new).map_err(|_| Kept::Mismatch)?);
    if kinds(&a) != kinds(&b)
        || (a.meter, a.unit, a.key.clone(), &a.order) != (b.meter, b.unit, b.key.clone(), &b.order)
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
        let got = reflow_tune(tune).unwrap();
        assert_eq!(got, want);
        check_same(tune, &got).unwrap();
        // Reflowing twice changes nothing more.
        assert_eq!(reflow_tune(&got).unwrap(), got);
    }

    #[test]
    fn a_tune_that_is_not_valid_is_left_as_written_and_counted() {
        // The second bar is one eighth too long.
        let bad = "X:2\nM:6/8\nL:1/8\nK:D\nABc def|ABc defg|\nABc def|]\n";
        assert_eq!(reflow_tune(bad), Err(Kept::NotValid));
        let good = "X:3\nM:3/4\nL:1/4\nK:D\nABc|def|\nABc|def|ABc|def|]\n";
        let text = format!("% a file header\n\n{bad}\n{good}");
        let r = reflow_text(&text);
        assert_eq!((r.reflowed, r.kept.get("not valid").copied()), (1, Some(1)), "{r:?}");
        let want = format!("% a file header\n\n{bad}\nX:3\nM:3/4\nL:1/4\nK:D\nABc|def|ABc|def|\nABc|def|]\n");
        assert_eq!(r.text, want);
        assert!(r.describe().contains("1 tunes at 4 bars a line; left as written: 1 not valid"), "{}", r.describe());
    }
}
