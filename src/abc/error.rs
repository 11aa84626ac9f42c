//! The error type of the ABC tools, phrased for the person at the keyboard.

use std::path::PathBuf;

/// What can go wrong when reading ABC or writing MIDI.
#[derive(Debug, thiserror::Error)]
pub enum AbcError {
    /// The text is not valid ABC at this place.
    #[error("{}line {line}, column {col}: {message}", tune_label(*.tune, *.index))]
    Parse {
        /// `X:` number of the tune, when it has one.
        tune: Option<u32>,
        /// Position of the tune in its text, 0-based.
        index: usize,
        /// Line in the whole text, 1-based.
        line: usize,
        /// Column in characters, 1-based.
        col: usize,
        /// What is wrong.
        message: String,
    },

    /// The input holds no tune at all.
    #[error("no tune found: an ABC tune starts with a line 'X:1' and has a K: line before its music")]
    NoTunes,

    /// `--tune N` names a tune the input does not have.
    #[error("no tune with X:{wanted} in the input (it has X: {available})")]
    NoSuchTune {
        /// The number asked for.
        wanted: u32,
        /// The numbers there are, comma separated.
        available: String,
    },

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// The tune cannot be rendered or encoded as MIDI.
    #[error("MIDI: {0}")]
    Midi(String),
}

fn tune_label(tune: Option<u32>, index: usize) -> String {
    match tune {
        Some(n) => format!("tune X:{n}, "),
        None => format!("tune #{} (no X: number), ", index + 1),
    }
}

impl From<crate::files::WriteError> for AbcError {
    fn from(e: crate::files::WriteError) -> Self {
        AbcError::Io { path: e.path, source: e.source }
    }
}
