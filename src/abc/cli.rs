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

/// Arguments of `folklstm judge`.
#[derive(clap::Args, Debug)]
pub struct JudgeArgs {
    /// ABC files whose tunes are judged ("-" reads standard input)
    #[arg(required_unless_present = "write_style")]
    pub files: Vec<PathBuf>,
    /// Write the --corpus's style (header layout, meters, keys) as JSON to this file, for
    /// `sample --meter/--key` (save it as style.json beside the model's checkpoints)
    #[arg(long, value_name = "FILE", requires = "corpus")]
    pub write_style: Option<PathBuf>,
    /// ABC files of the training corpus, for originality and style distances
    #[arg(long, num_args = 1..)]
    pub corpus: Vec<PathBuf>,
    /// Print JSON (every tune and the summary) instead of the table
    #[arg(long)]
    pub json: bool,
    /// Print only the summary
    #[arg(short, long)]
    pub quiet: bool,
}

/// Reads `paths` as (name, text) pairs; a folder is read file by file (its `.abc` files).
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<(String, String)>, AbcError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let io = |e| AbcError::Io { path: p.clone(), source: e };
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "abc"))
                .collect();
            entries.sort();
            for f in entries {
                out.push((f.display().to_string(), read_text(&f)?));
            }
        } else {
            out.push((p.display().to_string(), read_text(p)?));
        }
    }
    Ok(out)
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 { "-".into() } else { format!("{n}/{of} ({:.1}%)", 100.0 * n as f64 / of as f64) }
}

/// The summary as a few human lines.
pub fn summary_lines(s: &super::judge::Summary) -> Vec<String> {
    let mut lines = vec![
        format!("tunes {}: valid {}, readable {}", s.tunes, pct(s.valid, s.tunes), pct(s.readable, s.tunes)),
        format!(
            "structure: parts of 4-bar phrases {}, two or more 8-bar parts {}, median parts {}, repeats balanced {}, \
             part order delivered {}, ends on the tonic {}",
            pct(s.structured, s.tunes),
            pct(s.two_eight_bar_parts, s.tunes),
            s.median_parts,
            pct(s.repeats_balanced, s.tunes),
            pct(s.order_delivered, s.order_promised),
            pct(s.ends_on_tonic, s.tonic_known)
        ),
    ];
    let broken = s.tunes - s.valid;
    if broken > 0 {
        let kinds: Vec<String> = super::judge::Breakage::ALL
            .iter()
            .filter_map(|b| s.breaks.get(b).map(|&n| format!("{} {}", b.name(), pct(n, broken))))
            .collect();
        lines.push(format!("where invalid tunes first break: {}", kinds.join(", ")));
    }
    let mut forms: Vec<(&String, &usize)> = s.forms.iter().collect();
    forms.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> =
        forms.iter().take(5).map(|(f, n)| format!("{} {n}", if f.is_empty() { "(none)" } else { f })).collect();
    lines.push(format!("forms: {}", top.join(", ")));
    if let (Some(nc), Some(so)) = (s.near_copies, s.same_opening) {
        lines.push(format!(
            "originality: near copies {}, same opening as a corpus tune {}, median nearest similarity {:.3}, \
             4-bar windows found in the corpus {:.1}%, valid and original {}",
            pct(nc, s.tunes),
            pct(so, s.tunes),
            s.median_similarity.unwrap_or(0.0),
            100.0 * s.mean_window_share.unwrap_or(0.0),
            pct(s.valid_and_original.unwrap_or(0), s.tunes)
        ));
    }
    let top_of = |m: &std::collections::BTreeMap<String, usize>| {
        let mut v: Vec<(&String, &usize)> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter().take(4).map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    };
    lines.push(format!(
        "style: meters {}; keys {}; modes {}",
        top_of(&s.style.meters),
        top_of(&s.style.keys),
        top_of(&s.style.modes)
    ));
    if let Some(d) = &s.style_distance {
        let parts: Vec<String> = d.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        lines.push(format!(
            "style distance from the corpus (total variation, 0 same .. 1 disjoint): {}",
            parts.join(", ")
        ));
    }
    lines
}

/// `sampling: HOW (files); ...`: how each file's tunes were sampled, from the provenance line
/// `sample` writes ([`super::judge::provenance`]); `unknown` for a file without one.
pub fn sampling_line(files: &[(String, String)]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, text) in files {
        let how = super::judge::provenance(text).unwrap_or("unknown");
        match groups.iter_mut().find(|g| g.0 == how) {
            Some(g) => g.1.push(name),
            None => groups.push((how, vec![name])),
        }
    }
    let parts: Vec<String> = groups.iter().map(|(how, names)| format!("{how} ({})", names.join(", "))).collect();
    format!("sampling: {}", parts.join("; "))
}

/// Runs `folklstm judge`: a table (or JSON) of every tune's verdict and the summary. Returns
/// the exit code: 0 when every tune is valid and none is a near copy, 1 otherwise.
pub fn run_judge(args: &JudgeArgs, out: &mut dyn Write) -> Result<i32, AbcError> {
    use super::judge::{CorpusIndex, judge, summarize};
    let stdout_err = |e| AbcError::Io { path: PathBuf::from("<output>"), source: e };
    if let Some(path) = &args.write_style {
        let texts = read_files(&args.corpus)?;
        let style = super::prime::CorpusStyle::learn(texts.iter().map(|(_, t)| t.as_str()));
        if style.is_empty() {
            return Err(AbcError::NoTunes);
        }
        crate::files::write_atomic(path, style.to_json().as_bytes())?;
        writeln!(out, "wrote {}", path.display()).map_err(stdout_err)?;
        if args.files.is_empty() {
            return Ok(0);
        }
    }
    let files = read_files(&args.files)?;
    let corpus = if args.corpus.is_empty() { None } else { Some(CorpusIndex::build(&read_files(&args.corpus)?)) };
    if let Some(c) = &corpus
        && c.tunes.is_empty()
    {
        return Err(AbcError::NoTunes);
    }
    let verdicts = judge(&files, corpus.as_ref());
    let summary = summarize(&verdicts, corpus.as_ref());
    if args.json {
        let sampling: Vec<_> = files
            .iter()
            .map(|(f, t)| serde_json::json!({ "file": f, "sampling": super::judge::provenance(t) }))
            .collect();
        let doc = serde_json::json!({ "tunes": verdicts, "summary": summary, "sampling": sampling });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default()).map_err(stdout_err)?;
    } else {
        if !args.quiet {
            for v in &verdicts {
                let f = &v.features;
                let bars: Vec<String> = f.sections.iter().map(|s| format!("{}", s.bars)).collect();
                let tonic = match f.ends_on_tonic {
                    Some(true) => "tonic",
                    Some(false) => "OFF-TONIC",
                    None => "-",
                };
                let mut line = format!(
                    "{}: {}: {} | {} {} | form {} bars {} | {}{}",
                    v.file,
                    f.name(),
                    if f.valid { "valid" } else { "INVALID" },
                    f.meter.as_deref().unwrap_or("-"),
                    f.key.as_ref().map_or("-", |k| k.name.as_str()),
                    if f.form.is_empty() { "-" } else { &f.form },
                    if bars.is_empty() { "-".into() } else { bars.join("+") },
                    tonic,
                    if f.repeats_balanced { "" } else { " | REPEATS UNBALANCED" },
                );
                if let Some(o) = &v.originality {
                    line.push_str(&format!(
                        " | nearest {:.3} {} | windows {} {}{}",
                        o.similarity,
                        o.nearest.as_deref().unwrap_or("(none)"),
                        o.window_share.map_or("-".into(), |w| format!("{:.0}%", 100.0 * w)),
                        if o.same_opening { "| SAME OPENING " } else { "" },
                        if o.near_copy { "| NEAR COPY" } else { "" },
                    ));
                }
                writeln!(out, "{line}").map_err(stdout_err)?;
                if let Some(p) = &f.first_problem {
                    writeln!(out, "  {p}").map_err(stdout_err)?;
                }
            }
        }
        for l in summary_lines(&summary) {
            writeln!(out, "{l}").map_err(stdout_err)?;
        }
        writeln!(out, "{}", sampling_line(&files)).map_err(stdout_err)?;
    }
    let good = verdicts.iter().all(|v| v.features.valid && !v.originality.as_ref().is_some_and(|o| o.near_copy));
    Ok(if !verdicts.is_empty() && good { 0 } else { 1 })
}
