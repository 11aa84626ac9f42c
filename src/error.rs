//! The library's error type: every failure a user can cause ends here, with a message they can act on.

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in folklstm, phrased for the person at the keyboard.
///
/// `Debug` prints the same message as `Display`, so that `fn main() -> folklstm::Result<()>`
/// and `unwrap` show what to do rather than the enum's fields.
#[derive(thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The corpus file or folder does not exist.
    #[error(
        "corpus not found: {path}\n  pass --data PATH: any UTF-8 text file, or a folder of .abc files. For folk tunes, \
         get the Nottingham Music Database in ABC notation (e.g. https://abc.sourceforge.net/NMD/ or the cleaned \
         edition at https://github.com/jukedeck/nottingham-dataset) and put a file at {path}; data/README.md has \
         the details"
    )]
    CorpusMissing {
        /// Where we looked.
        path: PathBuf,
    },

    /// The corpus exists but cannot be used (empty, not UTF-8, too short, no .abc files, ...).
    #[error("corpus {path}: {reason}")]
    Corpus {
        /// The offending file or folder.
        path: PathBuf,
        /// What is wrong with it, with numbers.
        reason: String,
    },

    /// Text to feed the model holds characters the model's vocabulary lacks.
    #[error("{what} contains characters outside the model's vocabulary: {chars}")]
    OutOfVocabulary {
        /// What held them (e.g. "seed text").
        what: String,
        /// The characters, quoted and escaped.
        chars: String,
    },

    /// A tensor or buffer has the wrong shape for the operation.
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// A checkpoint is missing, truncated, corrupt or does not match.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A checkpoint could not be written (disk full, read-only or vanished folder, ...). What was
    /// on disk before is intact; `advice` says which checkpoint to resume from.
    #[error("could not save checkpoint {path}: {source}\n  {advice}")]
    Save {
        /// The checkpoint that was being written.
        path: PathBuf,
        /// The underlying error (e.g. "No space left on device").
        source: std::io::Error,
        /// What is intact and how to continue.
        advice: String,
    },

    /// The model folder cannot be written (read-only, no permission, not a folder).
    #[error(
        "cannot write in the model folder {dir}: {source}; training saves its checkpoints there, so make it writable \
         or pass another --model-dir"
    )]
    Unwritable {
        /// The model folder.
        dir: PathBuf,
        /// The underlying error (e.g. "Read-only file system").
        source: std::io::Error,
    },

    /// Another training run holds the model folder.
    #[error(
        "{dir} is in use by another training run{}; wait for it to finish, stop it, or use another --model-dir",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    InUse {
        /// The model folder.
        dir: PathBuf,
        /// The process that holds it, when its lock file says.
        pid: Option<u32>,
    },

    /// Training produced NaN or infinite values.
    #[error("training diverged at {0}")]
    Diverged(String),

    /// The GPU backend is unavailable or failed.
    #[error("{0}")]
    Gpu(String),

    /// ABC parsing, checking or MIDI writing failed.
    #[error(transparent)]
    Abc(#[from] crate::abc::AbcError),

    /// An I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl From<crate::files::WriteError> for Error {
    fn from(e: crate::files::WriteError) -> Self {
        Error::Io { path: e.path, source: e.source }
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
