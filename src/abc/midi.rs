//! [`Performance`] to a standard MIDI file (format 1, 960 ticks per quarter note): track 0 is
//! the melody (with tempo, meter and key events), track 1 the chords named in quotes.

use midly::num::{u4, u7, u15, u24, u28};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use super::error::AbcError;
use super::frac::Frac;
use super::play::{NoteEvent, Performance};

/// MIDI ticks per quarter note: divisible by 3 and 5 and by 64, so triplets, quintuplets and
/// 1/256 notes land exactly on ticks.
pub const TICKS_PER_QUARTER: u16 = 960;

const MELODY_CHANNEL: u8 = 0;
const CHORD_CHANNEL: u8 = 1;
const MELODY_VELOCITY: u8 = 90;
const CHORD_VELOCITY: u8 = 55;
/// General MIDI programs: acoustic grand piano for the melody, acoustic guitar (nylon) for
/// the chords.
const MELODY_PROGRAM: u8 = 0;
const CHORD_PROGRAM: u8 = 24;

fn ticks(x: Frac) -> Result<u32, AbcError> {
    x.round_scaled(TICKS_PER_QUARTER as i128)
        .and_then(|t| u32::try_from(t).ok())
        .filter(|&t| t < (1 << 27))
        .ok_or_else(|| AbcError::Midi("the tune is too long for a MIDI file".into()))
}

/// (tick, order, event): at the same tick, note-offs (order 0) come before meta events and
/// note-ons (order 1), so a repeated pitch is released before it is struck again.
type Timed<'a> = (u32, u8, TrackEventKind<'a>);

fn notes_to_events<'a>(
    notes: &[NoteEvent],
    channel: u8,
    velocity: u8,
    out: &mut Vec<Timed<'a>>,
) -> Result<(), AbcError> {
    for n in notes {
        let on = ticks(n.onset)?;
        let off = ticks(n.onset.checked_add(n.duration).unwrap_or(n.onset))?.max(on + 1);
        let key = u7::new(n.pitch.min(127));
        out.push((
            on,
            1,
            TrackEventKind::Midi {
                channel: u4::new(channel),
                message: MidiMessage::NoteOn { key, vel: u7::new(velocity) },
            },
        ));
        out.push((
            off,
            0,
            TrackEventKind::Midi { channel: u4::new(channel), message: MidiMessage::NoteOff { key, vel: u7::new(0) } },
        ));
    }
    Ok(())
}

fn to_track<'a>(mut events: Vec<Timed<'a>>) -> Vec<TrackEvent<'a>> {
    events.sort_by_key(|(t, o, _)| (*t, *o));
    let mut now = 0u32;
    let mut track = Vec::with_capacity(events.len() + 1);
    for (t, _, kind) in events {
        track.push(TrackEvent { delta: u28::new(t - now), kind });
        now = t;
    }
    track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
    track
}

/// Encodes a performance as the bytes of a standard MIDI file. `title` names the melody track.
pub fn midi_bytes(perf: &Performance, title: &str) -> Result<Vec<u8>, AbcError> {
    let mut melody: Vec<Timed> = Vec::new();
    let name = title.as_bytes();
    melody.push((0, 1, TrackEventKind::Meta(MetaMessage::TrackName(name))));
    for (t, us) in &perf.tempos {
        melody.push((ticks(*t)?, 1, TrackEventKind::Meta(MetaMessage::Tempo(u24::new((*us).min(0xFF_FFFF))))));
    }
    for (t, m) in &perf.meters {
        // The MIDI time signature needs a power-of-two denominator.
        if m.den.is_power_of_two() && m.num <= 255 {
            melody.push((
                ticks(*t)?,
                1,
                TrackEventKind::Meta(MetaMessage::TimeSignature(m.num as u8, m.den.trailing_zeros() as u8, 24, 8)),
            ));
        }
    }
    melody.push((0, 1, TrackEventKind::Meta(MetaMessage::KeySignature(perf.key.fifths, perf.key.minor))));
    melody.push((
        0,
        1,
        TrackEventKind::Midi {
            channel: u4::new(MELODY_CHANNEL),
            message: MidiMessage::ProgramChange { program: u7::new(MELODY_PROGRAM) },
        },
    ));
    notes_to_events(&perf.melody, MELODY_CHANNEL, MELODY_VELOCITY, &mut melody)?;

    let mut chords: Vec<Timed> = vec![
        (0, 1, TrackEventKind::Meta(MetaMessage::TrackName(b"chords"))),
        (
            0,
            1,
            TrackEventKind::Midi {
                channel: u4::new(CHORD_CHANNEL),
                message: MidiMessage::ProgramChange { program: u7::new(CHORD_PROGRAM) },
            },
        ),
    ];
    notes_to_events(&perf.chords, CHORD_CHANNEL, CHORD_VELOCITY, &mut chords)?;

    let mut smf = Smf::new(Header::new(Format::Parallel, Timing::Metrical(u15::new(TICKS_PER_QUARTER))));
    smf.tracks.push(to_track(melody));
    smf.tracks.push(to_track(chords));
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).map_err(|e| AbcError::Midi(format!("cannot encode MIDI: {e}")))?;
    Ok(bytes)
}
