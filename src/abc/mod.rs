//! ABC notation: parse and check tunes, write MIDI.
