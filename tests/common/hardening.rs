//! Helpers of the hardening tests (`tests/hardening_*.rs`): small corpora, the binary, fault
//! injection (a tiny tmpfs, resource limits) and peak memory of a child process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use super::{SMALL, corpus, folk};

/// A temporary folder holding `tunes.abc`.
pub fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tunes.abc"), corpus()).unwrap();
    dir
}

/// `folklstm train --data tunes.abc --freq 1 SMALL extra` in `dir`.
pub fn train(dir: &Path, extra: &[&str]) -> Output {
    folk(dir).args(["train", "--data", "tunes.abc", "--freq", "1"]).args(SMALL).args(extra).output().unwrap()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output and error as text.
pub fn all_output(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The error path: non-zero exit, a message containing each of `needles`, and no panic.
pub fn assert_error(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert!(!o.status.success(), "expected failure, got success; stderr: {e}");
    assert_ne!(o.status.code(), None, "killed by a signal (a crash, not an error): {e}");
    for n in needles {
        assert!(e.contains(n), "stderr lacks {n:?}: {e}");
    }
    assert!(!e.contains("panicked") && !e.contains("RUST_BACKTRACE") && !e.contains("stack backtrace"), "panic: {e}");
}

/// Success, with the output in the message otherwise.
pub fn assert_ok(o: &Output) {
    assert!(o.status.success(), "failed ({:?}): {}", o.status, all_output(o));
}

/// Every file name in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// The temporary files of interrupted saves in `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    names(dir).into_iter().filter(|n| n.ends_with(".tmp")).collect()
}

/// True when running as root (permissions do not stop root).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs mounted for the length of a test (unmounted on drop), to provoke a full or
/// read-only disk for real. None, with the skip recorded ([`super::skip`]), where mounting is not
/// allowed, unless FOLKLSTM_REQUIRE_MOUNT=1 (set by `.ci/run`: CI runs as root), when it fails.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` bytes (rounded to pages by the kernel).
    pub fn mount(size: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "folklstm-test"])
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { path, _dir: dir }),
            Ok(o) => {
                let why = format!("cannot mount a tmpfs ({}); needs root or CAP_SYS_ADMIN", stderr(&o).trim());
                super::skip(super::Need::Mount, &why);
                None
            }
            Err(e) => {
                super::skip(super::Need::Mount, &format!("cannot run mount ({e})"));
                None
            }
        }
    }

    /// Remounts with new options (e.g. "size=1m" or "ro").
    pub fn remount(&self, opts: &str) {
        let o = Command::new("mount").args(["-o", &format!("remount,{opts}")]).arg(&self.path).output().unwrap();
        assert!(o.status.success(), "remount {opts}: {}", stderr(&o));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
    }
}

/// Runs `cmd` to completion and returns its output and its peak resident memory in bytes
/// (`ru_maxrss` of this child alone, from `wait4`).
pub fn output_with_peak_rss(mut cmd: Command) -> (Output, u64) {
    use std::io::Read;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 writes it for our own child's pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let stdout = t_out.join().unwrap();
    let stderr = t_err.join().unwrap();
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::ExitStatus::from_raw(status);
    std::mem::forget(child); // already reaped
    (Output { status, stdout, stderr }, usage.ru_maxrss as u64 * 1024)
}

/// The "needs about N MiB" figure a command announced, in bytes.
pub fn announced_need(text: &str) -> Option<u64> {
    let rest = &text[text.find("needs about ")? + "needs about ".len()..];
    let mib: f64 = rest.split_whitespace().next()?.parse().ok()?;
    assert!(rest.split_whitespace().nth(1) == Some("MiB"), "unit: {rest}");
    Some((mib * 1024.0 * 1024.0) as u64)
}

/// A small deterministic generator (xorshift) for test positions and delays.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
