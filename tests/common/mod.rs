//! Helpers shared by the integration tests: the binary, the shared data and fixtures, small
//! corpora and numbers; [`gpu`] for the GPU tests, [`hardening`] for the hardening tests, [`http`]
//! for the tests of `serve`.
#![allow(dead_code)]

pub mod gpu;
pub mod hardening;
pub mod http;

use folklstm::model::{ModelConfig, Params};
use folklstm::real::Real;
use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Flags of a small, fast model for CLI tests (about 4,700 parameters, 56 KB checkpoints).
pub const SMALL: &[&str] =
    &["--embed", "8", "--hidden", "16", "--layers", "2", "--batch", "4", "--seq", "16", "--threads", "1"];

/// The `folklstm` binary.
pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("folklstm")
}

/// `folklstm` in `dir`, with no standard input.
pub fn folk(dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir).stdin(Stdio::null());
    c
}

/// What a test can lack on some machines; each has a variable that turns its skip into a failure
/// (`.ci/run` sets them all, since CI has every one of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The `../shared` folder (corpus, fixtures): `FOLKLSTM_REQUIRE_DATA=1`.
    Data,
    /// A Vulkan adapter (lavapipe in CI): `FOLKLSTM_REQUIRE_GPU=1`.
    Gpu,
    /// Mounting a tmpfs (root or CAP_SYS_ADMIN; CI runs as root): `FOLKLSTM_REQUIRE_MOUNT=1`.
    Mount,
    /// Chromium, Node.js and the page's npm packages (`npm ci --prefix web`):
    /// `FOLKLSTM_REQUIRE_BROWSER=1`.
    Browser,
}

impl Need {
    /// The variable that makes a missing `self` a failure.
    pub fn var(self) -> &'static str {
        match self {
            Need::Data => "FOLKLSTM_REQUIRE_DATA",
            Need::Gpu => "FOLKLSTM_REQUIRE_GPU",
            Need::Mount => "FOLKLSTM_REQUIRE_MOUNT",
            Need::Browser => "FOLKLSTM_REQUIRE_BROWSER",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Need::Data => "data",
            Need::Gpu => "gpu",
            Need::Mount => "mount",
            Need::Browser => "browser",
        }
    }
}

/// The file where skips and notes are collected for the CI log: `$FOLKLSTM_SKIP_LOG` (set by
/// `.ci/run`, which prints it after the run), else `<target>/tmp/skipped.log`. libtest hides what a
/// passing test prints, so a skip announced only on stderr would never be seen.
pub fn skip_log() -> PathBuf {
    std::env::var_os("FOLKLSTM_SKIP_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("skipped.log"))
}

/// `binary::test`: the test binary's name without cargo's hash, and libtest's name of the thread
/// (the test's name).
fn test_id() -> String {
    let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let exe = exe.unwrap_or_default();
    let bin = exe.rsplit_once('-').map_or(exe.as_str(), |(b, _)| b);
    let thread = std::thread::current();
    format!("{bin}::{}", thread.name().unwrap_or("?"))
}

/// Appends one line to [`skip_log`] (one `write` of an O_APPEND file, so lines of tests running
/// at once do not interleave) and prints it.
fn log_line(what: &str, kind: &str, text: &str) {
    use std::io::Write;
    let line = format!("{what:<7} [{kind}] {}: {text}\n", test_id());
    eprint!("{line}");
    let path = skip_log();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("cannot append to the skip log {}: {e}", path.display());
    }
}

/// Records that the calling test skips (all or part of) its work because `need` is missing, and
/// why; the caller then returns. Panics instead when `need`'s variable is `1`, so that in CI a
/// missing prerequisite is a failure, not a quiet pass.
pub fn skip(need: Need, reason: &str) {
    if std::env::var(need.var()).as_deref() == Ok("1") {
        panic!("{reason} and {}=1", need.var());
    }
    log_line("skipped", need.name(), &format!("{reason}; {}=1 makes this a failure", need.var()));
}

/// Records a fact about what a test covered on this machine (e.g. which SIMD paths ran), in the
/// same log as the skips, never failing: for what varies between CI machines.
pub fn note(kind: &str, text: &str) {
    log_line("note", kind, text);
}

/// `../shared/<sub>` next to the repository, or `$FOLKLSTM_SHARED/<sub>`. None (with the skip
/// recorded by [`skip`]) when absent, unless FOLKLSTM_REQUIRE_DATA=1, when absence fails the test.
pub fn shared_dir(sub: &str) -> Option<PathBuf> {
    let base = std::env::var_os("FOLKLSTM_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = base.join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    skip(Need::Data, &format!("{} not found (set FOLKLSTM_SHARED to the shared folder)", dir.display()));
    None
}

/// The shared Nottingham ABC files (`data/*.abc`), sorted; `None` (the test skipped) without
/// the shared folder.
pub fn shared_abc_files() -> Option<Vec<PathBuf>> {
    let dir = shared_dir("data")?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "abc"));
    files.sort();
    Some(files)
}

/// A fixture file: the raw bytes (parse with [`SafeTensors::deserialize`]).
pub fn fixture_bytes(name: &str) -> Option<Vec<u8>> {
    let dir = shared_dir("fixtures")?;
    Some(std::fs::read(dir.join(name)).expect("read fixture"))
}

/// A tensor of a fixture as f64, whatever its stored float or int type.
pub fn tensor_f64(st: &SafeTensors, name: &str) -> Vec<f64> {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("fixture lacks {name}: {e}"));
    let d = t.data();
    match t.dtype() {
        Dtype::F64 => d.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
        Dtype::F32 => d.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
        Dtype::I64 => d.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
        other => panic!("unexpected dtype {other:?}"),
    }
}

/// Token ids stored as int64.
pub fn tensor_ids(st: &SafeTensors, name: &str) -> Vec<u32> {
    tensor_f64(st, name).into_iter().map(|x| x as u32).collect()
}

/// The sizes in a fixture's metadata.
pub fn fixture_config(bytes: &[u8]) -> (ModelConfig, usize, usize) {
    let (_, meta) = SafeTensors::read_metadata(bytes).expect("header");
    let m = meta.metadata().as_ref().expect("metadata");
    let g = |k: &str| m[k].parse::<usize>().expect(k);
    let cfg =
        ModelConfig { vocab: g("vocab"), embed: g("embed"), hidden: g("hidden"), layers: g("layers"), dropout: 0.0 };
    (cfg, g("batch"), g("steps"))
}

/// The fixture's weights as parameters of type R.
pub fn fixture_params<R: Real>(st: &SafeTensors, cfg: &ModelConfig) -> Params<R> {
    let mut p = Params::<R>::zeros(cfg);
    for t in p.layout.tensors().into_iter().cloned().collect::<Vec<_>>() {
        let src = tensor_f64(st, &t.name);
        assert_eq!(src.len(), t.len(), "{}", t.name);
        for (d, s) in p.get_mut(&t).iter_mut().zip(src) {
            *d = R::from_f64(s);
        }
    }
    p
}

/// max |a - b| / max |b|: the error relative to the tensor's scale.
pub fn rel_err<R: Real>(a: &[R], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-30);
    a.iter().zip(b).map(|(x, y)| (x.to_f64() - y).abs()).fold(0.0, f64::max) / scale
}

/// A small deterministic pseudo-random sequence in [-1, 1) (tests need numbers, not quality).
pub fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// A small ABC-like corpus: 40 short tunes, about 3,900 characters (written by the tests that need a corpus), deterministic.
pub fn corpus() -> String {
    let notes = ["ABc", "dBG", "GAB", "c2A", "BAG", "FGA", "d2e", "fed"];
    let mut s = String::new();
    for i in 0..40 {
        s.push_str(&format!("X: {}\nT:Tune {i}\nM:6/8\nK:G\n", i + 1));
        for bar in 0..6 {
            s.push_str(&format!("|\"G\"{} {}", notes[(i + bar) % 8], notes[(i * 3 + bar) % 8]));
        }
        s.push_str(":|\n\n\n");
    }
    s
}

/// `sample`'s stdout without the provenance line it writes first for an ABC model
/// (`% folklstm sample: guided, ...`): the tunes alone.
pub fn tunes_text(stdout: &[u8]) -> String {
    let out = String::from_utf8_lossy(stdout);
    match out.strip_prefix(folklstm::abc::judge::PROVENANCE) {
        Some(rest) => rest.split_once('\n').map_or("", |(_, t)| t).to_string(),
        None => out.into_owned(),
    }
}

/// Settings for a property test: `cases` cases drawn from a fixed seed, so every run (CI's
/// included) tries the same cases and a failure found anywhere reproduces everywhere. To hunt
/// further, `PROPTEST_CASES` and `PROPTEST_RNG_SEED` (a number) override both.
pub fn prop_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let env = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() { env.cases } else { cases },
        rng_seed: match env.rng_seed {
            RngSeed::Random => RngSeed::Fixed(20261201),
            fixed => fixed,
        },
        ..env
    }
}
