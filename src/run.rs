//! The run folder: everything a training run keeps on disk besides the checkpoint format
//! ([`crate::checkpoint`]): the lock that keeps a second run out, the names of its saves
//! (`weights.EPOCH.safetensors`, `weights.EPOCH+WINDOW.safetensors`, and
//! `weights.best.safetensors` of `train --keep-best`), listing them and resolving `latest`,
//! `best` or an id to a file, the CSV log, and the temporary files that a killed
//! save left behind.

use crate::error::{Error, Result};
use crate::files;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which save a file is: `weights.{epoch}.safetensors`, or `weights.{epoch}+{window}.safetensors`
/// for a save in the middle of epoch `epoch + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckpointId {
    /// Completed epochs.
    pub epoch: u32,
    /// Windows done in the next epoch.
    pub window: u32,
}

impl std::fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.window == 0 { write!(f, "{}", self.epoch) } else { write!(f, "{}+{}", self.epoch, self.window) }
    }
}

impl CheckpointId {
    /// Parses "40" or "40+17".
    pub fn parse(s: &str) -> Option<Self> {
        let (e, w) = match s.split_once('+') {
            Some((e, w)) => (e, w.parse().ok()?),
            None => (s, 0),
        };
        Some(CheckpointId { epoch: e.parse().ok()?, window: w })
    }

    /// The file name of this save.
    pub fn file_name(&self) -> String {
        format!("weights.{self}.safetensors")
    }
}

/// Every checkpoint in `dir`, oldest first. Temporary files are never listed.
pub fn list(dir: &Path) -> Result<Vec<(CheckpointId, PathBuf)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out: Vec<(CheckpointId, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = CheckpointId::parse(name.strip_prefix("weights.")?.strip_suffix(".safetensors")?)?;
            Some((id, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The file name of the checkpoint with the lowest validation loss (`train --keep-best`); never
/// listed by [`list`], so `latest` and `--resume` go on meaning the newest epoch.
pub const BEST_FILE: &str = "weights.best.safetensors";

/// Finds the checkpoint `spec` ("100", "40+17", "latest" or "best") in `dir`; the error lists
/// what exists.
pub fn resolve(dir: &Path, spec: &str) -> Result<PathBuf> {
    if spec == "best" {
        let path = dir.join(BEST_FILE);
        return match path.is_file() {
            true => Ok(path),
            false => Err(Error::Checkpoint {
                path,
                reason: "not found: `best` is the checkpoint `folklstm train --keep-best --val-fraction F` keeps \
                         (the epoch with the lowest validation loss); pass an epoch number or `latest` instead"
                    .into(),
            }),
        };
    }
    let all = list(dir)?;
    let have = || {
        if all.is_empty() {
            format!(
                "{} holds no checkpoints (train first: folklstm train --model-dir {})",
                dir.display(),
                dir.display()
            )
        } else {
            format!("epochs available: {}", all.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>().join(", "))
        }
    };
    if spec == "latest" {
        return all
            .last()
            .map(|(_, p)| p.clone())
            .ok_or_else(|| Error::Checkpoint { path: dir.into(), reason: have() });
    }
    let id = CheckpointId::parse(spec).ok_or_else(|| Error::Checkpoint {
        path: dir.into(),
        reason: format!(
            "{spec:?} is not an epoch number (e.g. 100), a mid-epoch save (e.g. 40+17), `latest` or `best`"
        ),
    })?;
    all.iter()
        .find(|(i, _)| *i == id)
        .map(|(_, p)| p.clone())
        .ok_or_else(|| Error::Checkpoint { path: dir.join(id.file_name()), reason: format!("not found; {}", have()) })
}

/// The path of a save.
pub fn path_for(dir: &Path, id: CheckpointId) -> PathBuf {
    dir.join(id.file_name())
}

/// Removes the temporary files that a killed save left in the model folder (checkpoints and
/// `style.json`) and the log folder (the CSV log and its plot), when the process that wrote them
/// is gone; see
/// [`files::remove_stale_temp_files`]. Returns the files removed.
pub fn remove_debris(model_dir: &Path, log_dir: &Path) -> Vec<PathBuf> {
    let mut debris = files::remove_stale_temp_files(model_dir, |n| {
        (n.starts_with("weights.") && n.ends_with(".safetensors")) || n == crate::abc::prime::STYLE_FILE
    });
    debris.extend(files::remove_stale_temp_files(log_dir, |n| n.starts_with("training_log.")));
    debris
}

/// Holds the model folder for one run: an advisory lock (`flock`) on `.folklstm.lock`, which
/// records the holder's pid for the message a second run gets. The kernel releases the lock
/// when the process ends, however it ends (kill -9, a crash, a power cut), so a stale lock
/// can never keep a later run out; the file itself stays and is reused.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    /// The lock file's name inside the model folder.
    pub const FILE: &'static str = ".folklstm.lock";

    /// Locks `dir` (creating it), or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let unwritable = |source| Error::Unwritable { dir: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(unwritable)?;
        let path = dir.join(Self::FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(unwritable)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse().ok());
                return Err(Error::InUse { dir: dir.to_path_buf(), pid });
            }
            // A filesystem without advisory locks: run unlocked rather than not at all.
            Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        // Best effort: the pid only serves the message another run prints.
        let _ = file.set_len(0).and_then(|_| writeln!(file, "{}", std::process::id())).and_then(|_| file.flush());
        Ok(DirLock { _file: file })
    }
}

/// Rewrites the CSV keeping the header and rows of epochs <= `upto` (resuming from an older
/// checkpoint redoes the later epochs); creates it with a header when missing.
pub fn prepare_csv(path: &Path, upto: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // Read leniently: a damaged line (say, half a row from a crash) is dropped, not fatal.
    let old = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = format!("{CSV_HEADER}\n");
    let mut dropped = 0;
    for line in old.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        match line.split(',').next().and_then(|e| e.parse::<u32>().ok()) {
            Some(e) if e <= upto => out.push_str(&format!("{line}\n")),
            _ => dropped += 1,
        }
    }
    if old.is_empty() || dropped > 0 || !old.starts_with(CSV_HEADER) {
        files::write_atomic(path, out.as_bytes())?;
    }
    Ok(())
}

/// Appends one row to the CSV log and makes it durable.
pub fn append_csv(path: &Path, row: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).map_err(|e| Error::io(path, e))?;
    writeln!(f, "{row}").map_err(|e| Error::io(path, e))?;
    f.sync_data().map_err(|e| Error::io(path, e))
}

/// The header of `training_log.csv`.
/// `lr` is the learning rate of the epoch's last step (logs written before it have no such column).
pub const CSV_HEADER: &str = "epoch,loss,acc,val_loss,val_acc,seconds,chars_per_s,lr";
