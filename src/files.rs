//! Writing files so that a crash never leaves half of one: every file the program writes
//! (checkpoints, the CSV log, plots, MIDI) goes through [`write_atomic`], and the temporary
//! files of saves that a killed process left behind are found by one rule
//! ([`remove_stale_temp_files`]). Depends on nothing else in the crate.

use std::io::Write;
use std::path::{Path, PathBuf};

/// An I/O error and the path it happened on (the temporary file or the target).
#[derive(Debug)]
pub struct WriteError {
    /// The file or folder.
    pub path: PathBuf,
    /// The underlying error.
    pub source: std::io::Error,
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder
/// ([`temp_name`]), fsync, rename, fsync of the folder. On failure the temporary file is
/// removed and `path` is as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(temp_name(&name, std::process::id()));
    fn at(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
        move |source| WriteError { path: path.to_path_buf(), source }
    }
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(at(&tmp))?;
        f.write_all(bytes).map_err(at(&tmp))?;
        f.sync_all().map_err(at(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(at(path))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all(); // best effort: not every filesystem can fsync a folder
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The temporary file [`write_atomic`] uses for a file called `name`, in process `pid`:
/// `.NAME.PID.tmp` (hidden, and never mistaken for the file itself).
pub fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.{pid}.tmp")
}

/// Whether process `pid` still runs. Where there is no `/proc` (not Linux) every process is
/// assumed to run, so nothing is ever removed on a guess.
fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes from `dir` the temporary files of [`write_atomic`] that a process killed in the
/// middle of a save left behind, when that process no longer runs and `is_ours` accepts the
/// name of the file it was writing. Returns the files removed, sorted. Such debris is never
/// read as the file itself; this only gives the space back.
pub fn remove_stale_temp_files(dir: &Path, is_ours: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some((name, pid)) =
            file.strip_prefix('.').and_then(|f| f.strip_suffix(".tmp")).and_then(|f| f.rsplit_once('.'))
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if temp_name(name, pid) == file
            && is_ours(name)
            && !process_alive(pid)
            && std::fs::remove_file(e.path()).is_ok()
        {
            removed.push(e.path());
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("folklstm-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a.txt"]);
        // A dead process's temporary file is removed; a live one's (ours) is kept.
        let dead = dir.join(temp_name("b.mid", u32::MAX - 1));
        let live = dir.join(temp_name("c.mid", std::process::id()));
        std::fs::write(&dead, b"x").unwrap();
        std::fs::write(&live, b"x").unwrap();
        let removed = remove_stale_temp_files(&dir, |n| n.ends_with(".mid"));
        if Path::new("/proc/self").exists() {
            assert_eq!(removed, [dead]);
        }
        assert!(live.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
