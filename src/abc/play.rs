//! Performance order: parts in their playing order, repeats and numbered endings played out
//! as a musician would, ties joined into single notes. The result is a list of timed notes
//! ready for MIDI.
//!
//! Rules (ABC 2.1 plus this edition's conventions):
//! - `Y:` is the part order; without it a header `P:` with an order; each listed part plays
//!   with its own internal repeats. With no order, the whole body plays straight through.
//! - A `:|` goes back to the last `|:`, or to the end of the previous repeated section, or to
//!   the start of the part or tune; the second time it is passed through. So `|: A :| B :|`
//!   plays A A B B.
//! - A numbered ending `[n` plays on pass n; on other passes it is skipped to the ending that
//!   matches, or past its end (the next `:|`, `||`, `|]`, `|:`).
//! - Tied notes are one note; an accidental holds to the bar line (resolved in
//!   [`crate::abc::timeline`]).
//! - Grace notes (`{g}`, `{/g}` alike) are played before the beat: they steal their time from
//!   the start of the sound that follows them, which starts that much later and is that much
//!   shorter. Each lasts its nominal length ([`crate::abc::timeline::GRACE_UNIT`], a 32nd note
//!   per written unit); a group longer than half the following sound is scaled down to half of
//!   it. Grace notes before a note that continues a tie, or at the very end, are not played.
//! - Decorations do not change timing; a multi-measure rest `Z4` lasts four bars.
//! - With several voices (`V:`), only the first voice that sounds is played (and its chord
//!   symbols); part (`P:`) and tempo (`Q:`) changes from every voice apply.

use super::ast::BarStyle;
use super::frac::Frac;
use super::music::{KeySig, Meter, parse_chord_symbol};
use super::timeline::{Sounding, StepKind, Timeline};

/// One note to sound, in quarter notes from the start of the performance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteEvent {
    /// MIDI key number.
    pub pitch: u8,
    /// Start, in quarter notes from the start.
    pub onset: Frac,
    /// Length, in quarter notes.
    pub duration: Frac,
}

/// A tune rendered for playback: melody, chord accompaniment and the meta events, all timed in
/// quarter notes from the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Performance {
    /// Melody notes, by onset.
    pub melody: Vec<NoteEvent>,
    /// Accompaniment notes from the chord symbols, by onset.
    pub chords: Vec<NoteEvent>,
    /// Tempo changes: (onset, microseconds per quarter note); the first is at 0.
    pub tempos: Vec<(Frac, u32)>,
    /// Meter changes: (onset, meter); the first is at 0 when the tune has a meter.
    pub meters: Vec<(Frac, Meter)>,
    /// Key signature at the start.
    pub key: KeySig,
    /// Total length in quarter notes.
    pub end: Frac,
}

/// Most steps one performance may play (a guard against pathological part orders).
const MAX_PLAYED_STEPS: usize = 2_000_000;

/// The steps of the first voice that sounds, with the part and tempo changes of every voice;
/// `None` when the tune has one voice.
fn first_voice(tl: &Timeline) -> Option<Timeline> {
    if !tl.steps.iter().any(|s| matches!(s.kind, StepKind::Voice(_))) {
        return None;
    }
    let voices = tl.voice_of_steps();
    let first =
        tl.steps.iter().zip(&voices).find(|(s, _)| matches!(s.kind, StepKind::Sound { .. })).map(|(_, v)| *v)?;
    let steps = tl
        .steps
        .iter()
        .zip(&voices)
        .filter(|(s, v)| **v == first || matches!(s.kind, StepKind::Part(_) | StepKind::Tempo(_)))
        .map(|(s, _)| s.clone())
        .collect();
    Some(Timeline { steps, ..tl.clone() })
}

/// Where the grace notes before a sound go: onsets and durations (whole notes) for the
/// graces, and how much later the sound starts. `room`: the sound's shortest written length.
fn place_graces(graces: &[Sounding], t: Frac, room: Frac) -> Option<(Vec<NoteEvent>, Frac)> {
    let mut total = Frac::ZERO;
    for g in graces {
        total = total.checked_add(g.duration)?;
    }
    let half = room.checked_mul(Frac::one_over(2))?;
    if !total.is_positive() || !half.is_positive() {
        return Some((Vec::new(), Frac::ZERO));
    }
    let scale = if total > half { half.checked_div(total)? } else { Frac::ONE };
    let mut at = t;
    let mut events = Vec::with_capacity(graces.len());
    for g in graces {
        let d = g.duration.checked_mul(scale)?;
        events.push(NoteEvent { pitch: g.pitch, onset: at, duration: d });
        at = at.checked_add(d)?;
    }
    Some((events, at.checked_sub(t)?))
}

/// Plays a timeline out. Errors only when the performance would be absurdly long.
pub fn perform(tl: &Timeline) -> Result<Performance, String> {
    let voice = first_voice(tl);
    let tl = voice.as_ref().unwrap_or(tl);
    let order = play_order(tl)?;
    let mut graces: Vec<Sounding> = Vec::new();
    let mut t = Frac::ZERO; // whole notes
    let mut melody: Vec<NoteEvent> = Vec::new(); // onsets/durations in whole notes until the end
    let mut open_ties: Vec<(u8, usize)> = Vec::new();
    let mut tempos = vec![(Frac::ZERO, tl.tempo)];
    let mut meters: Vec<(Frac, Meter)> = tl.meter.iter().map(|m| (Frac::ZERO, *m)).collect();
    let mut chord_changes: Vec<(Frac, String)> = Vec::new();
    let overflow = || "the tune is too long to render".to_string();
    for &i in &order {
        let Some(step) = tl.steps.get(i) else {
            continue;
        };
        match &step.kind {
            StepKind::Grace(notes) => graces.extend(notes.iter().cloned()),
            StepKind::Sound { notes, advance, .. } => {
                let ends_at_t = |e: usize| melody[e].onset.checked_add(melody[e].duration) == Some(t);
                let continues_tie = notes.iter().any(|n| open_ties.iter().any(|&(p, e)| p == n.pitch && ends_at_t(e)));
                let mut delay = Frac::ZERO;
                if !graces.is_empty() && !continues_tie {
                    // Half the shortest of the sound's notes (a chord's notes may differ).
                    let room = notes.iter().map(|n| n.duration).fold(*advance, Frac::min);
                    let (events, d) = place_graces(&graces, t, room).ok_or_else(overflow)?;
                    melody.extend(events);
                    delay = d;
                }
                graces.clear();
                let mut still_open = Vec::new();
                for n in notes {
                    let joined = open_ties
                        .iter()
                        .find(|(p, e)| *p == n.pitch && melody[*e].onset.checked_add(melody[*e].duration) == Some(t));
                    let e = match joined {
                        Some(&(_, e)) => {
                            let ev = &mut melody[e];
                            ev.duration = ev.duration.checked_add(n.duration).ok_or_else(overflow)?;
                            e
                        }
                        None => {
                            let onset = t.checked_add(delay).ok_or_else(overflow)?;
                            let duration = n.duration.checked_sub(delay).ok_or_else(overflow)?;
                            melody.push(NoteEvent { pitch: n.pitch, onset, duration });
                            melody.len() - 1
                        }
                    };
                    if n.tie {
                        still_open.push((n.pitch, e));
                    }
                }
                open_ties = still_open;
                t = t.checked_add(*advance).ok_or_else(overflow)?;
            }
            StepKind::Tempo(us) => tempos.push((t, *us)),
            StepKind::Meter(m) => meters.push((t, *m)),
            StepKind::ChordSymbol(s) => chord_changes.push((t, s.clone())),
            _ => {}
        }
    }
    let quarters = |x: Frac| x.checked_mul(Frac::int(4)).ok_or_else(overflow);
    for ev in &mut melody {
        ev.onset = quarters(ev.onset)?;
        ev.duration = quarters(ev.duration)?;
    }
    melody.sort_by(|a, b| a.onset.cmp(&b.onset).then(a.pitch.cmp(&b.pitch)));
    let end = quarters(t)?;
    let chords = accompaniment(&chord_changes, t)?;
    for x in tempos.iter_mut() {
        x.0 = quarters(x.0)?;
    }
    for x in meters.iter_mut() {
        x.0 = quarters(x.0)?;
    }
    Ok(Performance {
        melody,
        chords,
        tempos: dedup_at_same_time(tempos),
        meters: dedup_at_same_time(meters),
        key: tl.key.clone(),
        end,
    })
}

/// Keeps the last of several changes at the same moment.
fn dedup_at_same_time<T>(v: Vec<(Frac, T)>) -> Vec<(Frac, T)> {
    let mut out: Vec<(Frac, T)> = Vec::with_capacity(v.len());
    for (t, x) in v {
        if out.last().is_some_and(|(lt, _)| *lt == t) {
            out.pop();
        }
        out.push((t, x));
    }
    out
}

/// Chord notes from the chord symbols: each sounds (bass note plus chord in close position
/// above C3) until the next symbol or the end. Of several symbols at one moment (alternative
/// harmonies written one after another) the first readable one is played; text that is not
/// a chord (`" "`) is skipped. Times in whole notes in, quarter notes out.
fn accompaniment(changes: &[(Frac, String)], end: Frac) -> Result<Vec<NoteEvent>, String> {
    let overflow = || "the tune is too long to render".to_string();
    let mut picked: Vec<(Frac, super::music::ChordName)> = Vec::new();
    for (t, s) in changes {
        if picked.last().is_some_and(|(lt, _)| lt == t) {
            continue;
        }
        if let Some(c) = parse_chord_symbol(s) {
            picked.push((*t, c));
        }
    }
    let mut out = Vec::new();
    for (k, (t, c)) in picked.iter().enumerate() {
        let until = picked.get(k + 1).map(|x| x.0).unwrap_or(end);
        let dur = until.checked_sub(*t).ok_or_else(overflow)?;
        if !dur.is_positive() {
            continue;
        }
        let onset = t.checked_mul(Frac::int(4)).ok_or_else(overflow)?;
        let duration = dur.checked_mul(Frac::int(4)).ok_or_else(overflow)?;
        let bass = 36 + c.bass;
        out.push(NoteEvent { pitch: bass as u8, onset, duration });
        for iv in &c.intervals {
            let p = 48 + c.root + iv;
            if (0..=127).contains(&p) {
                out.push(NoteEvent { pitch: p as u8, onset, duration });
            }
        }
    }
    Ok(out)
}

/// Indices of `tl.steps` in the order they are played.
pub fn play_order(tl: &Timeline) -> Result<Vec<usize>, String> {
    let steps = &tl.steps;
    // Sections: the text before the first P:, then one per P: in the body.
    let mut sections: Vec<(Option<&str>, usize, usize)> = Vec::new();
    let mut start = 0;
    let mut label: Option<&str> = None;
    for (i, s) in steps.iter().enumerate() {
        if let StepKind::Part(l) = &s.kind {
            sections.push((label, start, i));
            label = Some(l.as_str());
            start = i + 1;
        }
    }
    sections.push((label, start, steps.len()));
    let mut played = Vec::new();
    let has_parts = sections.len() > 1;
    match (&tl.order, has_parts) {
        (Some(order), true) => {
            let (_, s0, e0) = sections[0];
            if steps[s0..e0].iter().any(|s| matches!(s.kind, StepKind::Sound { .. })) {
                play_range(tl, s0, e0, &mut played)?;
            }
            for &c in order {
                let found = sections[1..]
                    .iter()
                    .find(|(l, _, _)| *l == Some(c.encode_utf8(&mut [0u8; 4])))
                    .or_else(|| sections[1..].iter().find(|(l, _, _)| l.is_some_and(|l| l.starts_with(c))));
                if let Some(&(_, s, e)) = found {
                    play_range(tl, s, e, &mut played)?;
                }
            }
        }
        _ => play_range(tl, 0, steps.len(), &mut played)?,
    }
    Ok(played)
}

fn is_closing_bar(kind: &StepKind) -> bool {
    matches!(kind, StepKind::Bar(b) if b.repeat_start || b.style != BarStyle::Single)
}

/// How many times the `:|` at `at` jumps back to `from`: once, or for endings `[1,2 ... [3`
/// as many times as the highest ending number requires.
fn jump_limit(tl: &Timeline, from: usize, at: usize, end: usize) -> u32 {
    let steps = &tl.steps;
    let mut max_ending = 0u32;
    let mut j = from;
    while j < end {
        match &steps[j].kind {
            StepKind::Ending(n) => {
                max_ending = max_ending.max(n.iter().copied().max().unwrap_or(0));
            }
            StepKind::Bar(b) if j > at && b.repeat_start => break,
            k if j > at && is_closing_bar(k) && !matches!(k, StepKind::Bar(b) if b.repeat_end) => {
                break;
            }
            StepKind::Part(_) => break,
            _ => {}
        }
        j += 1;
    }
    max_ending.saturating_sub(1).max(1)
}

/// Plays steps `start..end` with their repeats and endings, appending step indices to `out`.
fn play_range(tl: &Timeline, start: usize, end: usize, out: &mut Vec<usize>) -> Result<(), String> {
    let steps = &tl.steps;
    let mut pc = start;
    let mut repeat_from = start;
    let mut pass = 1u32;
    let mut jumps: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    // In an ending played on a later pass: the repeated section is over at the next
    // double bar.
    let mut in_last_ending = false;
    while pc < end {
        if out.len() > MAX_PLAYED_STEPS {
            return Err(
                "the tune is too long to render (its repeats and part order play more than 2 million notes)".into()
            );
        }
        match &steps[pc].kind {
            StepKind::Bar(b) => {
                out.push(pc);
                if b.repeat_end {
                    let limit = jump_limit(tl, repeat_from, pc, end);
                    let done = jumps.entry(pc).or_insert(0);
                    if *done < limit {
                        *done += 1;
                        pass += 1;
                        pc = repeat_from;
                        in_last_ending = false;
                        continue;
                    }
                    repeat_from = pc + 1;
                    pass = 1;
                    in_last_ending = false;
                } else if b.repeat_start || (in_last_ending && b.style != BarStyle::Single) {
                    repeat_from = pc + 1;
                    pass = 1;
                    in_last_ending = false;
                }
                pc += 1;
            }
            StepKind::Ending(nums) => {
                if nums.contains(&pass) {
                    if pass > 1 {
                        in_last_ending = true;
                    }
                    pc += 1;
                    continue;
                }
                // Not this pass: go to the ending that matches, if any before a new section.
                let mut j = pc + 1;
                let mut target = None;
                while j < end {
                    match &steps[j].kind {
                        StepKind::Ending(n) if n.contains(&pass) => {
                            target = Some(j);
                            break;
                        }
                        StepKind::Bar(b) if b.repeat_start => break,
                        StepKind::Part(_) => break,
                        _ => {}
                    }
                    j += 1;
                }
                if let Some(j) = target {
                    pc = j;
                    continue;
                }
                // No ending for this pass: skip this one to its end.
                let mut j = pc + 1;
                while j < end {
                    match &steps[j].kind {
                        StepKind::Ending(_) => break,
                        k if is_closing_bar(k) || matches!(k, StepKind::Bar(b) if b.repeat_end) => {
                            break;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if let Some(StepKind::Bar(b)) = steps.get(j).map(|s| &s.kind)
                    && b.repeat_end
                    && j < end
                {
                    // The repeat this ending closed is over.
                    repeat_from = j + 1;
                    pass = 1;
                    pc = j + 1;
                    continue;
                }
                pc = j;
            }
            StepKind::Part(_) => {
                // Playing straight through: a new part starts a new section for `:|`.
                out.push(pc);
                repeat_from = pc + 1;
                pass = 1;
                in_last_ending = false;
                pc += 1;
            }
            _ => {
                out.push(pc);
                pc += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abc::parse_tune;
    use crate::abc::timeline::build;

    /// Pitches of the melody in performance order.
    fn melody(abc: &str) -> Vec<u8> {
        perf(abc).melody.iter().map(|e| e.pitch).collect()
    }

    fn perf(abc: &str) -> Performance {
        let tune = parse_tune(abc).expect("test tune parses");
        let (tl, p) = build(&tune);
        assert!(p.is_empty(), "{p:?}");
        perform(&tl).expect("renders")
    }

    /// MIDI pitches of C D E F G A B c d e f g (C major, middle C = 60).
    fn p(names: &str) -> Vec<u8> {
        names
            .chars()
            .map(|c| match c {
                'C' => 60,
                'D' => 62,
                'E' => 64,
                'F' => 65,
                'G' => 67,
                'A' => 69,
                'B' => 71,
                'c' => 72,
                'd' => 74,
                'e' => 76,
                'f' => 77,
                'g' => 79,
                _ => panic!("test note {c}"),
            })
            .collect()
    }

    fn q(n: i128, d: i128) -> Frac {
        Frac::new(n, d).expect("test fraction")
    }

    #[test]
    fn simple_repeat() {
        assert_eq!(melody("X:1\nL:1/4\nK:C\n|:CD:|E|"), p("CDCDE"));
    }

    /// Quirk 4 of the editors' converter: `|: A :| B :|` must play A A B B, not A A B A A B.
    #[test]
    fn quirk4_repeat_without_start_goes_back_to_previous_repeat_end() {
        assert_eq!(melody("X:1\nL:1/4\nK:C\n|:CD:|EF:|"), p("CDCDEFEF"));
        assert_eq!(melody("X:1\nL:1/4\nK:C\nCD:|EF:|"), p("CDCDEFEF"));
    }

    #[test]
    fn first_and_second_endings() {
        assert_eq!(melody("X:1\nL:1/4\nK:C\n|:CD|[1E:|[2F|]G|"), p("CDECDFG"));
        assert_eq!(melody("X:1\nL:1/4\nK:C\n|:CD|1E:|2F|"), p("CDECDF"));
        // Multi-bar second ending, then a section repeated on its own.
        assert_eq!(melody("X:1\nL:1/4\nK:C\n|:C|[1D:|[2E|F||G:|"), p("CDCEFGG"));
        // Three passes.
        assert_eq!(melody("X:1\nL:1/4\nK:C\n|:C|[1,2D:|[3E|"), p("CDCDCE"));
    }

    #[test]
    fn double_repeat_sign() {
        assert_eq!(melody("X:1\nL:1/4\nK:C\n|:CD::EF:|"), p("CDCDEFEF"));
    }

    #[test]
    fn part_order_from_y_and_header_p() {
        let t = "X:1\nY:ABA\nL:1/4\nK:C\nP:A\nC:|\nP:B\nD|";
        assert_eq!(melody(t), p("CCDCC"));
        let t = "X:1\nP:BA\nL:1/4\nK:C\nP:A\nC|\nP:B\nD|";
        assert_eq!(melody(t), p("DC"));
    }

    /// Quirk 3 of the editors' converter: a tune with parts but no play order plays all its
    /// parts straight through, not only the first.
    #[test]
    fn quirk3_no_order_plays_straight_through() {
        let t = "X:1\nL:1/4\nK:C\nP:A\nC:|\nP:B\nD:|\nP:C\nE|";
        assert_eq!(melody(t), p("CCDDE"));
    }

    #[test]
    fn key_change_in_a_part_does_not_leak_into_a_repeated_earlier_part() {
        let t = "X:1\nY:ABA\nL:1/4\nK:G\nP:A\nF|\nP:B\nK:F\nB|";
        assert_eq!(melody(t), vec![66, 70, 66]);
    }

    /// Quirk 1 of the editors' converter: a tie joins two notes into one, it does not strike
    /// the second. Also when written after a space (`c3 -c2`), and across a bar line.
    #[test]
    fn quirk1_tied_notes_are_one_note() {
        let pf = perf("X:1\nM:4/4\nL:1/8\nK:C\nc3 -c2 d3|e4-|e4|");
        let got: Vec<(u8, Frac, Frac)> = pf.melody.iter().map(|e| (e.pitch, e.onset, e.duration)).collect();
        assert_eq!(got, vec![(72, q(0, 1), q(5, 2)), (74, q(5, 2), q(3, 2)), (76, q(4, 1), q(4, 1)),]);
    }

    /// A tie across a bar line keeps the accidental of the first note.
    #[test]
    fn tie_carries_its_accidental_over_the_bar() {
        assert_eq!(melody("X:1\nL:1/4\nK:C\n^c2-|c2 c2|"), vec![73, 72]);
    }

    /// Quirk 2 of the editors' converter: an accidental holds to the end of the bar (ABC 2.1,
    /// in every octave by the default `%%propagate-accidentals pitch`), then the key
    /// signature is back.
    #[test]
    fn quirk2_accidental_holds_to_the_bar_line() {
        // K:G has F sharp. =F makes F natural for the rest of the bar, f included.
        assert_eq!(melody("X:1\nL:1/8\nK:G\n=FGF f|F|"), vec![65, 67, 65, 77, 66]);
        assert_eq!(melody("X:1\nL:1/8\nK:C\n^GAG|G|"), vec![68, 69, 68, 67]);
    }

    /// Quirk 5 of the editors' converter: the notes of a sixteenth-note triplet fall at 0, 1/6
    /// and 1/3 of a quarter note (not at 3/8).
    #[test]
    fn quirk5_sixteenth_triplet_is_exact_thirds() {
        let pf = perf("X:1\nM:2/4\nL:1/8\nK:C\n(3c/d/e/ f c3/2|");
        let onsets: Vec<Frac> = pf.melody.iter().map(|e| e.onset).collect();
        assert_eq!(onsets, vec![q(0, 1), q(1, 6), q(1, 3), q(1, 2), q(1, 1)]);
        // Eighth-note triplets: three notes in the time of two eighths.
        let pf = perf("X:1\nM:2/4\nL:1/8\nK:C\n(3cde f2|");
        let onsets: Vec<Frac> = pf.melody.iter().map(|e| e.onset).collect();
        assert_eq!(onsets, vec![q(0, 1), q(1, 3), q(2, 3), q(1, 1)]);
    }

    #[test]
    fn broken_rhythm_and_chords_of_notes() {
        let pf = perf("X:1\nL:1/8\nK:C\nc>d e<f [ceg]2|");
        let got: Vec<(u8, Frac)> = pf.melody.iter().map(|e| (e.pitch, e.onset)).collect();
        assert_eq!(
            got,
            vec![
                (72, q(0, 1)),
                (74, q(3, 4)),
                (76, q(1, 1)),
                (77, q(5, 4)),
                (72, q(2, 1)),
                (76, q(2, 1)),
                (79, q(2, 1)),
            ]
        );
    }

    #[test]
    fn grace_notes_steal_from_the_next_note_and_chord_symbols_make_an_accompaniment() {
        let pf = perf("X:1\nL:1/4\nK:C\n\"G\"{ag}G2 \"D7/f+\"D2|");
        // Two 32nd-note graces (1/8 quarter each) before G2, which starts and ends later by
        // their length; D2 is untouched.
        let got: Vec<(u8, Frac, Frac)> = pf.melody.iter().map(|e| (e.pitch, e.onset, e.duration)).collect();
        assert_eq!(
            got,
            vec![(81, q(0, 1), q(1, 8)), (79, q(1, 8), q(1, 8)), (67, q(1, 4), q(7, 4)), (62, q(2, 1), q(2, 1))]
        );
        // A group longer than half the note is squeezed into half of it.
        let squeezed = perf("X:1\nL:1/8\nK:C\n{g4a4}c d|");
        let got: Vec<(u8, Frac, Frac)> = squeezed.melody.iter().map(|e| (e.pitch, e.onset, e.duration)).collect();
        assert_eq!(
            got,
            vec![(79, q(0, 1), q(1, 8)), (81, q(1, 8), q(1, 8)), (72, q(1, 4), q(1, 4)), (74, q(1, 2), q(1, 2))]
        );
        // G: bass G2 (43) and G B D above C3; D7/F#: bass F#2 (42) and D F# A C.
        let first: Vec<u8> = pf.chords.iter().filter(|e| e.onset == Frac::ZERO).map(|e| e.pitch).collect();
        assert_eq!(first, vec![43, 55, 59, 62]);
        let second: Vec<u8> = pf.chords.iter().filter(|e| e.onset == q(2, 1)).map(|e| e.pitch).collect();
        assert_eq!(second, vec![42, 50, 54, 57, 60]);
    }

    #[test]
    fn tempo_and_meter_changes() {
        let pf = perf("X:1\nM:2/4\nL:1/4\nQ:1/4=60\nK:C\nCD|\nM:3/4\nQ:1/4=90\nCDE|");
        assert_eq!(pf.tempos, vec![(Frac::ZERO, 1_000_000), (q(2, 1), 666_667)]);
        assert_eq!(pf.meters.len(), 2);
        assert_eq!(pf.end, q(5, 1));
    }
}
