//! Is a tune musically well formed? Header fields present, every complete bar as long as the
//! meter, repeats balanced, a closing bar line, parts of the play order present.
//!
//! Which bars may be short: the first bar of the tune, of a part, after a meter change or
//! after a repeat sign or double bar (a pickup), and the last bar of the tune, of a part,
//! before a meter change or before a repeat sign or double bar (the bar the pickup
//! completes). Every other bar must equal the meter exactly; no bar may be longer.

use super::ast::{BarStyle, ElementKind, Pos, Problem, Tune};
use super::frac::Frac;
use super::music::Meter;
use std::borrow::Cow;

use super::timeline::{Step, StepKind, Timeline};

/// Well-formedness problems of a parsed tune and its timeline (syntax problems are the
/// parser's and are not repeated here).
pub fn check(tune: &Tune, tl: &Timeline) -> Vec<Problem> {
    let mut problems = Vec::new();
    let whole = Pos::default();
    let first = Pos { line: tune.first_line, col: 1 };
    match tune.header.iter().find(|f| f.letter == 'X') {
        None => problems.push(Problem { pos: first, message: "missing X: reference number field".into() }),
        Some(f) if tune.number.is_none() => {
            problems.push(Problem { pos: f.pos, message: format!("X: must be a number, not '{}'", f.value) })
        }
        _ => {}
    }
    // An M: written just after K: (before any note) still sets the meter of every bar.
    let meter_before_music = tune
        .body
        .iter()
        .take_while(|e| !matches!(e.kind, ElementKind::Note(_) | ElementKind::Chord { .. } | ElementKind::Rest(_)))
        .any(|e| matches!(&e.kind, ElementKind::Field(f) if f.letter == 'M'));
    if tune.header_value('M').is_none() && !meter_before_music {
        problems.push(Problem { pos: whole, message: "missing M: meter field in the header".into() });
    }
    if tune.header_value('K').is_none() {
        problems.push(Problem {
            pos: whole,
            message: "missing K: key field (it must end the header, before the music)".into(),
        });
    }
    if !tl.steps.iter().any(|s| matches!(&s.kind, StepKind::Sound { notes, .. } if !notes.is_empty())) {
        problems.push(Problem { pos: whole, message: "the tune has no notes".into() });
    }
    for steps in voice_streams(tl) {
        bars(&steps, tl.meter, &mut problems);
        repeats(&steps, &mut problems);
    }
    parts(tl, &mut problems);
    problems
}

/// The steps of each voice in written order, each voice checked on its own (`P:` parts belong
/// to every voice); the whole timeline when the tune has one voice.
fn voice_streams(tl: &Timeline) -> Vec<Cow<'_, [Step]>> {
    if !tl.steps.iter().any(|s| matches!(s.kind, StepKind::Voice(_))) {
        return vec![Cow::Borrowed(&tl.steps[..])];
    }
    let voices = tl.voice_of_steps();
    let count = voices.iter().copied().max().unwrap_or(0) + 1;
    let mut streams: Vec<Vec<Step>> = vec![Vec::new(); count];
    for (s, &v) in tl.steps.iter().zip(&voices) {
        if matches!(s.kind, StepKind::Part(_)) {
            streams.iter_mut().for_each(|st| st.push(s.clone()));
        } else {
            streams[v].push(s.clone());
        }
    }
    // Voice 0 holds what comes before the first `V:`: only parts, when the body starts with one.
    streams
        .into_iter()
        .filter(|st| st.iter().any(|s| matches!(s.kind, StepKind::Sound { .. })))
        .map(Cow::Owned)
        .collect()
}

/// `d` as a count of the meter's beat units (`7/8` in 6/8), for messages.
fn in_units(d: Frac, m: &Meter) -> String {
    match d.checked_mul(Frac::int(m.den as i128)) {
        Some(n) if n.den() == 1 => format!("{}/{}", n.num(), m.den),
        _ => d.to_string(),
    }
}

/// One bar as written, between two bar lines (or a bar line and a section boundary).
struct MeasuredBar {
    start: Pos,
    /// Where the bar line that closes it stands.
    end: Pos,
    length: Frac,
    has_music: bool,
    /// Opens the tune, a part, a meter or a section after a repeat sign or double bar.
    opens_section: bool,
    /// Closes with a repeat sign or double bar, or before a part, a meter change or the end.
    closes_section: bool,
    /// Made only of a multi-measure rest of this many bars.
    rest_bars: Option<u32>,
    meter: Option<Meter>,
}

fn bars(steps: &[Step], meter: Option<Meter>, problems: &mut Vec<Problem>) {
    let mut meter = meter;
    let mut measured: Vec<MeasuredBar> = Vec::new();
    let new_bar = |start: Pos, opens: bool, meter: Option<Meter>| MeasuredBar {
        start,
        end: start,
        length: Frac::ZERO,
        has_music: false,
        opens_section: opens,
        closes_section: false,
        rest_bars: None,
        meter,
    };
    let mut bar = new_bar(Pos::default(), true, meter);
    let mut last_is_bar = true;
    for (i, s) in steps.iter().enumerate() {
        match &s.kind {
            StepKind::Sound { advance, whole_bars, .. } => {
                if !bar.has_music {
                    bar.start = s.pos;
                    bar.rest_bars = *whole_bars;
                } else {
                    bar.rest_bars = None;
                }
                bar.has_music = true;
                bar.length = bar.length.checked_add(*advance).unwrap_or(bar.length);
                last_is_bar = false;
            }
            StepKind::Bar(b) => {
                let sectional = b.repeat_end || b.repeat_start || b.style != BarStyle::Single;
                // A section also ends if a part or meter change follows, or the tune ends.
                // Chord symbols, key and tempo changes between do not count: `|` then `K:G`
                // then `P:B` still closes the part.
                let next = steps[i + 1..]
                    .iter()
                    .find(|x| !matches!(x.kind, StepKind::ChordSymbol(_) | StepKind::Key(_) | StepKind::Tempo(_)));
                bar.end = s.pos;
                bar.closes_section = sectional
                    || matches!(next.map(|x| &x.kind), None | Some(StepKind::Part(_)) | Some(StepKind::Meter(_)));
                // An empty bar (`|` at a line start after `|`) passes its opening on.
                let opens = sectional || (!bar.has_music && bar.opens_section);
                let done = std::mem::replace(&mut bar, new_bar(s.pos, opens, meter));
                if done.has_music {
                    measured.push(done);
                }
                last_is_bar = true;
            }
            StepKind::Part(_) | StepKind::Meter(_) => {
                if let StepKind::Meter(m) = &s.kind {
                    meter = Some(*m);
                }
                let mut done = std::mem::replace(&mut bar, new_bar(s.pos, true, meter));
                if done.has_music {
                    done.closes_section = true;
                    measured.push(done);
                }
            }
            _ => {}
        }
    }
    if bar.has_music {
        bar.closes_section = true;
        measured.push(bar);
    }
    let mut k = 0;
    while k < measured.len() {
        let b = &measured[k];
        k += 1;
        let (Some(m), Some(full)) = (b.meter, b.meter.and_then(|m| m.bar)) else {
            continue;
        };
        if let Some(n) = b.rest_bars
            && Some(b.length) == full.checked_mul(Frac::int(n as i128))
        {
            continue;
        }
        let say = |what: &str, len: Frac| {
            format!(
                "bar too {what}: {} where M:{}/{} {} {}",
                in_units(len, &m),
                m.num,
                m.den,
                if what == "long" { "allows" } else { "needs" },
                in_units(full, &m)
            )
        };
        if b.length > full {
            problems.push(Problem { pos: b.start, message: say("long", b.length) });
        } else if b.length < full && !(b.opens_section || b.closes_section) {
            // A bar split in two by a bar line at a line end (a new strain's pickup written
            // on a new line after a single bar line) is one complete bar.
            if let Some(next) = measured.get(k)
                && next.meter == b.meter
                && next.start.line > b.end.line
                && b.length.checked_add(next.length) == Some(full)
            {
                k += 1;
                continue;
            }
            problems.push(Problem { pos: b.start, message: say("short", b.length) });
        }
    }
    if !last_is_bar {
        let pos =
            steps.iter().rev().find(|s| matches!(s.kind, StepKind::Sound { .. })).map(|s| s.pos).unwrap_or_default();
        problems.push(Problem { pos, message: "the tune does not end with a bar line".into() });
    }
}

/// Every `|:` must be closed by a `:|` (or `::`) before the next `|:` and before its part
/// ends; a first ending `[1` must be closed by a `:|`, and a later ending `[2` must follow one.
fn repeats(steps: &[Step], problems: &mut Vec<Problem>) {
    let mut open: Option<Pos> = None;
    // A first ending waiting for its `:|`.
    let mut first_ending: Option<Pos> = None;
    let mut repeat_end_seen = false;
    let mut music_since_open = false;
    let unclosed_ending = |p: Pos| Problem { pos: p, message: "first ending '[1' is not closed by ':|'".into() };
    for s in steps {
        match &s.kind {
            StepKind::Bar(b) => {
                if b.repeat_end {
                    open = None;
                    first_ending = None;
                    repeat_end_seen = true;
                }
                if b.repeat_start {
                    // `|: || |:` (an empty repeat, as in some tunes here) is harmless.
                    if let Some(p) = open.filter(|_| music_since_open) {
                        problems.push(Problem {
                            pos: p,
                            message: "repeat '|:' is not closed by ':|' before the next '|:'".into(),
                        });
                    }
                    open = Some(s.pos);
                    music_since_open = false;
                }
            }
            StepKind::Sound { .. } => music_since_open = true,
            StepKind::Ending(n) => {
                if let Some(p) = first_ending.take() {
                    problems.push(unclosed_ending(p));
                }
                if n.first() == Some(&1) {
                    first_ending = Some(s.pos);
                } else if !repeat_end_seen {
                    problems.push(Problem {
                        pos: s.pos,
                        message: "ending with no ':|' before it to come back from".into(),
                    });
                }
            }
            StepKind::Part(_) => {
                if let Some(p) = open.take() {
                    problems.push(Problem {
                        pos: p,
                        message: "repeat '|:' is not closed by ':|' before the part ends".into(),
                    });
                }
                if let Some(p) = first_ending.take() {
                    problems.push(unclosed_ending(p));
                }
                repeat_end_seen = false;
            }
            _ => {}
        }
    }
    if let Some(p) = open {
        problems.push(Problem { pos: p, message: "repeat '|:' is never closed by ':|'".into() });
    }
    if let Some(p) = first_ending {
        problems.push(unclosed_ending(p));
    }
}

/// Every part named in the play order must exist in the body.
fn parts(tl: &Timeline, problems: &mut Vec<Problem>) {
    let Some(order) = &tl.order else { return };
    let labels: Vec<&str> = tl
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Part(l) => Some(l.as_str()),
            _ => None,
        })
        .collect();
    if labels.is_empty() {
        return;
    }
    let mut missing: Vec<char> = order.iter().copied().filter(|c| !labels.iter().any(|l| l.starts_with(*c))).collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        let list: String = missing.iter().collect();
        problems.push(Problem {
            pos: Pos::default(),
            message: format!("the play order names parts with no P: section in the body: {list}"),
        });
    }
}
