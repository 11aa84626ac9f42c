//! The `folklstm check` and `folklstm midi` commands: argument structs and runners that the
//! binary wires into its command line.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{AbcError, check_text, write_midi};

/// Arguments of `folklstm check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// ABC files to check ("-" reads standard input)
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print only the tunes with problems, and the summary
    #[arg(short, long)]
    pub quiet: bool,
    /// Judge readability only: a tune passes when it has no syntax error, whatever its musical
    /// findings (bar lengths, repeats), which are still listed. The exit code follows.
    #[arg(long)]
    pub lenient: bool,
}

/// Arguments of `folklstm midi`.
#[derive(clap::Args, Debug)]
pub struct MidiArgs {
    /// ABC file to render
    pub input: PathBuf,
    /// MIDI file to write (OUT-1.mid, OUT-2.mid, ... when the input holds several tunes)
    #[arg(short, long)]
    pub output: PathBuf,
    /// Render only the tune with this X: number
    #[arg(long)]
    pub tune: Option<u32>,
}

/// Reads a file (or standard input for "-") as text; invalid UTF-8 is replaced, not refused,
/// so the checker can point at the tune that holds it.
pub fn read_text(path: &Path) -> Result<String, AbcError> {
    let io = |e| AbcError::Io { path: path.to_path_buf(), source: e };
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).map_err(io)?;
        b
    } else {
        std::fs::read(path).map_err(io)?
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `N tunes, V valid (P%)`.
pub fn summary_line(tunes: usize, valid: usize) -> String {
    let pct = if tunes == 0 { 0.0 } else { 100.0 * valid as f64 / tunes as f64 };
    format!("{tunes} tunes, {valid} valid ({pct:.1}%)")
}

/// `N tunes, V valid (P%), R readable (Q%)`: the checker's two levels, musically valid and
/// free of syntax errors.
pub fn check_summary_line(tunes: usize, valid: usize, readable: usize) -> String {
    let pct = if tunes == 0 { 0.0 } else { 100.0 * readable as f64 / tunes as f64 };
    format!("{}, {readable} readable ({pct:.1}%)", summary_line(tunes, valid))
}

/// Runs `folklstm check`; prints the per-tune report (`ok`, `INVALID`: readable with musical
/// findings, `UNREADABLE`: syntax errors) and the summary line `N tunes, V valid (P%), R
/// readable (Q%)` to `out`; returns the process exit code: 0 when every tune is valid (with
/// `--lenient`, readable), 1 otherwise, also when no tune was found.
pub fn run_check(args: &CheckArgs, out: &mut dyn Write) -> Result<i32, AbcError> {
    let stdout_err = |e| AbcError::Io { path: PathBuf::from("<output>"), source: e };
    let (mut total, mut valid, mut readable) = (0usize, 0usize, 0usize);
    for path in &args.files {
        let text = read_text(path)?;
        let reports = check_text(&text);
        let file_valid = reports.iter().filter(|r| r.valid).count();
        let file_readable = reports.iter().filter(|r| r.readable).count();
        for r in &reports {
            let passes = if args.lenient { r.readable } else { r.valid };
            if args.quiet && passes {
                continue;
            }
            let number = r.number.map(|n| format!("X:{n}")).unwrap_or_else(|| format!("#{}", r.index + 1));
            let title = r.title.as_deref().map(|t| format!(" \"{t}\"")).unwrap_or_default();
            let verdict = match (r.valid, r.readable) {
                (true, _) => "ok",
                (false, true) if args.lenient => "readable",
                (false, true) => "INVALID",
                (false, false) => "UNREADABLE",
            };
            writeln!(out, "{}: {number}{title}: {verdict}", path.display()).map_err(stdout_err)?;
            for p in &r.problems {
                writeln!(out, "  {p}").map_err(stdout_err)?;
            }
        }
        if args.files.len() > 1 {
            let line = check_summary_line(reports.len(), file_valid, file_readable);
            writeln!(out, "{}: {line}", path.display()).map_err(stdout_err)?;
        }
        total += reports.len();
        valid += file_valid;
        readable += file_readable;
    }
    writeln!(out, "{}", check_summary_line(total, valid, readable)).map_err(stdout_err)?;
    let passed = if args.lenient { readable } else { valid };
    Ok(if total > 0 && passed == total { 0 } else { 1 })
}

/// Runs `folklstm midi`; returns the files written.
pub fn run_midi(args: &MidiArgs) -> Result<Vec<PathBuf>, AbcError> {
    let text = read_text(&args.input)?;
    write_midi(&text, &args.output, args.tune)
}
