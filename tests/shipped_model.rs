//! The model the repository ships (`model/weights.100.safetensors`): the README's first command
//! works from a fresh clone, its "real sample, unedited" is what its command prints, and the
//! checkpoint still is the trained model its figures describe.

mod common;
use std::path::Path;
use std::process::Command;

/// `folklstm` run from the repository root, where `model/` is the default model folder.
fn folk() -> Command {
    common::folk(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// `(tunes, valid)` from sample's stderr line "checker: N tunes, V valid (P%)".
fn checker_counts(stderr: &str) -> (u32, u32) {
    let line =
        stderr.lines().find(|l| l.starts_with("checker: ")).unwrap_or_else(|| panic!("no checker line: {stderr}"));
    let w: Vec<&str> = line.split_whitespace().collect();
    (w[1].parse().unwrap(), w[3].parse().unwrap())
}

#[test]
fn sample_100_prints_text_from_the_shipped_checkpoint() {
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("model/weights.100.safetensors").is_file());
    // Guided by default: the provenance line, then one tune from its X: line to its end.
    let o = folk().args(["sample", "100", "--rng-seed", "3"]).output().unwrap();
    let (out, err) = (String::from_utf8(o.stdout).unwrap(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{err}");
    assert!(out.starts_with("% folklstm sample: guided, temperature 1, rng-seed 3\nX:"), "{out}");
    assert_eq!(checker_counts(&err), (1, 1), "{out}\n{err}");
    assert!(err.contains("sampling: guided (") && err.contains("speed: "), "{err}");
    // --free: the raw model, the default --len of 512 characters, then the newline sample
    // writes after the last tune.
    let o = folk().args(["sample", "100", "--rng-seed", "3", "--free"]).output().unwrap();
    let (out, err) = (common::tunes_text(&o.stdout), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("% folklstm sample: free, temperature 1, rng-seed 3\n"));
    assert_eq!(out.chars().count(), 512 + 1, "{out}");
    assert!(out.contains('|') && out.contains('\n'), "not ABC-like: {out}");
    assert!(err.contains("sampling: free ("), "{err}");
    checker_counts(&err);
}

#[test]
fn the_shipped_model_writes_mostly_valid_tunes_from_x1() {
    // The raw model (--free): the README's measure on one draw of 100 tunes. Over --rng-seed 1..10 this checkpoint gave
    // 58 to 73 valid (65.2% in all); 50 is below every draw seen, so a CPU whose SIMD path rounds
    // a logit differently (and so draws a few different tunes) still passes, while a broken
    // sampler, checkpoint loader or checker falls far below it (an untrained model scores 0).
    let o = folk()
        .args(["sample", "100", "--count", "100", "--temperature", "1.0", "--seed", "X:1\n", "--one-tune"])
        .args(["--len", "2000", "--rng-seed", "1", "--free"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let (tunes, valid) = checker_counts(&err);
    eprintln!("{tunes} tunes, {valid} valid");
    assert_eq!(tunes, 100, "--one-tune gives one tune per stream: {err}");
    assert!(valid >= 50, "{valid} of 100 valid: {err}");
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.matches("X:1\n").count(), 100, "every tune starts with the prime");
}

#[test]
fn the_shipped_model_knows_its_corpus_by_heart() {
    // README: 0.1057 nats/char and 96.8% accuracy on the 340 jigs it was trained on. A bound of
    // 0.15 nats allows for summation-order differences (they move the 4th digit at most) and
    // still fails for a checkpoint that is not the trained one (epoch 10 of such a run: 1.12).
    let Some(data) = common::shared_dir("data") else { return };
    let jigs = data.join("nottingham-jigs.abc");
    let o = folk().args(["eval", "100", "--data"]).arg(&jigs).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let row = out.lines().find(|l| l.contains("nottingham-jigs.abc")).unwrap_or_else(|| panic!("{out}"));
    let w: Vec<&str> = row.split_whitespace().collect();
    let (nats, acc, unknown): (f64, f64, u64) = (w[1].parse().unwrap(), w[3].parse().unwrap(), w[5].parse().unwrap());
    assert!(nats < 0.15 && acc > 0.95, "{row}");
    assert_eq!(unknown, 0, "the corpus has characters outside the shipped vocabulary: {row}");
}

/// Splits a command line as a POSIX shell would for the quoting the README uses: words separated
/// by spaces, '...' and "..." taken literally, and bash's $'...' with \n, \t, \\ and \' escapes.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut in_word) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
                continue;
            }
            '$' if chars.peek() == Some(&'\'') => {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\'' => break,
                        '\\' => match chars.next() {
                            Some('n') => word.push('\n'),
                            Some('t') => word.push('\t'),
                            Some(e @ ('\\' | '\'')) => word.push(e),
                            other => panic!("escape \\{other:?} in {line}"),
                        },
                        c => word.push(c),
                    }
                }
            }
            q @ ('\'' | '"') => {
                for c in chars.by_ref() {
                    if c == q {
                        break;
                    }
                    word.push(c);
                }
            }
            c => word.push(c),
        }
        in_word = true;
    }
    if in_word {
        words.push(word);
    }
    words
}

#[test]
fn shell_words_follow_the_shell() {
    assert_eq!(
        shell_words(r"sample 100 --seed $'X: 1\n' --len 6"),
        ["sample", "100", "--seed", "X: 1\n", "--len", "6"]
    );
    assert_eq!(shell_words(r#"a 'b c' "d e" $'\\\''"#), ["a", "b c", "d e", "\\'"]);
}

/// The README's "A real sample, unedited" block is what its command prints today: the command
/// and the text are both read from README.md at test time, so neither can drift from the other
/// (or from the shipped checkpoint and the sampler) unnoticed. The README quotes the start of
/// the output, or its start with a last line "..." marking the cut; all it quotes (above that
/// line) must match exactly. (Sampling draws characters from the logits, so a CPU whose SIMD path rounded a logit
/// differently could draw another character; the block reproduces on AVX2 as on the AVX-512
/// machine that wrote it.)
#[test]
fn the_readme_sample_is_what_its_command_prints() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let intro = "A real sample, unedited (`cargo run --release -- ";
    let rest = &readme[readme.find(intro).expect("README has no 'A real sample, unedited' block") + intro.len()..];
    let args = shell_words(&rest[..rest.find("`)").expect("end of the command")]);
    let block = &rest[rest.find("```\n").expect("the sample's code block") + 4..];
    let block = &block[..block.find("```").expect("end of the sample's code block")];
    let (quoted, whole) = match block.strip_suffix("...\n") {
        Some(start) => (start, false),
        None => (block, true),
    };
    assert!(quoted.len() > 200 && quoted.contains("X: 1\n"), "too little quoted to compare: {quoted:?}");
    let o = folk().args(&args).output().unwrap();
    assert!(o.status.success(), "{:?}: {}", args, String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    if !out.starts_with(quoted) || (whole && out != quoted) {
        let line = quoted.lines().zip(out.lines()).position(|(a, b)| a != b).unwrap_or(quoted.lines().count());
        panic!(
            "`folklstm {}` no longer prints the README's sample; first difference in line {}:\n\
             README: {:?}\nnow:    {:?}\nwhole output:\n{out}",
            args.join(" ").escape_debug(),
            line + 1,
            quoted.lines().nth(line),
            out.lines().nth(line)
        );
    }
}

/// `sample --meter --key --title`: the header is written in the corpus's layout (the
/// `model/style.json` learnt from the jigs), every tune carries the asked meter and key, and a
/// key the corpus never uses gets a warning naming the ones it has.
#[test]
fn meter_and_key_are_written_in_the_corpus_layout() {
    let o = folk()
        .args(["sample", "100", "--meter", "6/8", "--key", "Am", "--count", "4", "--len", "300", "--rng-seed", "2"])
        .arg("--one-tune")
        .output()
        .unwrap();
    let (out, err) = (common::tunes_text(&o.stdout), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{err}");
    assert!(out.starts_with("X: 1\n"), "{out}");
    let tunes: Vec<&str> = out.split("X: 1\n").skip(1).collect();
    assert_eq!(tunes.len(), 4, "{out}");
    for t in &tunes {
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("T:") && lines[1] == "% Nottingham Music Database", "{t}");
        assert!(lines[2].starts_with("S:") && lines[3] == "M:6/8" && lines[4] == "K:Am", "{t}");
    }
    assert!(!err.contains("warning"), "Am is a key of the corpus: {err}");
    let o = folk()
        .args(["sample", "100", "--key", "Dmix", "--title", "New One", "--len", "100", "--rng-seed", "2"])
        .output()
        .unwrap();
    let (out, err) = (common::tunes_text(&o.stdout), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{err}");
    assert!(out.starts_with("X: 1\nT:New One\n% Nottingham Music Database\nS:"), "{out}");
    assert!(out.contains("\nK:Dmix\n"), "{out}");
    assert!(err.contains("warning") && err.contains("Dmix") && err.contains("G (108)"), "{err}");
    for (args, says) in [
        (&["--meter", "6/0"][..], "--meter 6/0"),
        (&["--key", "H"][..], "--key H"),
        (&["--meter", "6/8", "--seed", "X"][..], "--seed and --meter"),
        (&["--keep", "original"][..], "--corpus"),
    ] {
        let o = folk().args(["sample", "100"]).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success() && err.contains(says) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `sample --keep both --count N --corpus`: N tunes, each valid and not a near copy, the
/// acceptance rate on stderr, and the same tunes for the same seed.
#[test]
fn keep_delivers_the_count_of_valid_original_tunes() {
    let Some(data) = common::shared_dir("data") else { return };
    let jigs = data.join("nottingham-jigs.abc");
    let run = || {
        folk()
            .args(["sample", "100", "--keep", "both", "--count", "6", "--seed", "X: 1\n", "--len", "2000"])
            .args(["--rng-seed", "5", "--corpus"])
            .arg(&jigs)
            .output()
            .unwrap()
    };
    let o = run();
    let (out, err) = (String::from_utf8(o.stdout).unwrap(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{err}");
    assert_eq!(checker_counts(&err), (6, 6), "{err}");
    assert!(err.contains("kept 6: ") && err.contains("judge: originality: near copies 0/6"), "{err}");
    assert_eq!(run().stdout, out.as_bytes(), "same seed, same tunes");
    // A bound too low to reach the count: the tunes that passed are printed, and the error says
    // what to do.
    let o = folk()
        .args(["sample", "100", "--keep", "valid", "--count", "5", "--max-attempts", "5", "--seed", "X: 1\n"])
        .args(["--len", "30", "--rng-seed", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success() && err.contains("raise --max-attempts"), "{err}");
}

/// `sample --keep shaped`: every tune printed is valid, made of whole 4-bar phrases (8 bars or
/// more) and ends on its key's tonic, read back by the judge; stderr counts the tunes refused
/// for their shape, and there are some (the shipped model's guided tunes pass about one time
/// in six), so the filter did the keeping.
#[test]
fn keep_shaped_prints_only_tunes_of_whole_phrases_ending_on_the_tonic() {
    let o = folk()
        .args(["sample", "100", "--keep", "shaped", "--count", "4", "--seed", "X: 1\n", "--len", "2000"])
        .args(["--rng-seed", "3"])
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8(o.stdout).unwrap(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{err}");
    let tunes = folklstm::abc::judge::read_tunes(&out);
    assert_eq!(tunes.len(), 4, "{out}");
    for f in &tunes {
        assert!(f.valid && folklstm::abc::judge::structured(f) && f.ends_on_tonic == Some(true), "{f:?}");
    }
    let refused: usize = err
        .split_once(" were valid but not in whole 4-bar phrases ending on the tonic")
        .and_then(|(before, _)| before.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count of refused shapes: {err}"));
    assert!(refused > 0, "nothing was refused for its shape: {err}");
}

/// `sample --shape`: every tune is valid and has two or more parts of exactly 8 bars as the
/// judge counts them (the shipped model's guided tunes have them about one time in ten without
/// it), and `--shape` with `--free` is refused: the shape is the guide's.
#[test]
fn shape_writes_tunes_of_8_bar_parts() {
    let o =
        folk().args(["sample", "100", "--shape", "--count", "6", "--len", "2000", "--rng-seed", "4"]).output().unwrap();
    let (out, err) = (String::from_utf8(o.stdout).unwrap(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{err}");
    let tunes = folklstm::abc::judge::read_tunes(&out);
    assert_eq!(tunes.len(), 6, "{out}");
    for f in &tunes {
        let bars: Vec<f64> = f.sections.iter().map(|s| s.bars).collect();
        assert!(f.valid && bars.len() >= 2 && bars.iter().all(|&b| b == 8.0), "{bars:?} {f:?}\n{out}");
    }
    let o = folk().args(["sample", "100", "--shape", "--free"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--shape") && err.contains("--free"), "{err}");
}

/// The second shipped model (`model/nottingham/`, all five Nottingham files on one tonic, G,
/// stored as f16): the README's command writes valid tunes in the asked meter and key (written
/// on G and moved to D), and its raw tunes are far more often valid than an untrained or broken
/// model's, built of 8-bar parts, and end on their tonic. Over `--rng-seed 1..5` (100 tunes
/// each, `--free --one-tune --warm-up`) it gave 275 valid of 500 (55.0%), 267 with two or more
/// 8-bar parts (53.4%) and 445 of 498 ending on the tonic (89.4%); with seed 1, the one used
/// here, 55, 52 and 92 of 100. The floors (45, 40 and 80 of 100) leave room for a CPU whose
/// rounding draws a few different tunes, while a wrong loader or f16 decoding gives 0 valid and
/// the model shipped before it (every key, not one tonic) 66% tonic endings.
#[test]
fn the_nottingham_model_writes_tunes_in_the_asked_meter_and_key() {
    let dir = ["--model-dir", "model/nottingham", "best"];
    let o = folk()
        .arg("sample")
        .args(dir)
        .args(["--meter", "4/4", "--key", "D", "--count", "8", "--len", "2000", "--rng-seed", "2"])
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(o.status.success(), "{err}");
    assert_eq!(checker_counts(&err), (8, 8), "{out}\n{err}");
    assert!(err.contains("tonic: every tune moved -5 semitones to the --key asked"), "{err}");
    for t in out.split("\n\n").filter(|t| t.contains("X:")) {
        let fields: Vec<&str> = t.lines().filter(|l| l.starts_with("M:") || l.starts_with("K:")).collect();
        assert_eq!(fields, ["M:4/4", "K:D"], "{t}");
        // The header of the corpus's 4/4 tunes (`style.json` layouts): hornpipes in eighths, with
        // the R: line the model writes itself.
        let header: Vec<&str> = t.lines().skip_while(|l| !l.starts_with("M:")).take(4).collect();
        assert!(
            header.len() == 4 && header[..2] == ["M:4/4", "L:1/8"] && header[2].starts_with("R:") && header[3] == "K:D",
            "{t}"
        );
    }
    let o = folk()
        .arg("sample")
        .args(dir)
        .args(["--count", "100", "--seed", "X: 1\n", "--one-tune", "--len", "2000", "--rng-seed", "1"])
        .args(["--free", "--warm-up"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let (tunes, valid) = checker_counts(&err);
    assert_eq!(tunes, 100, "{err}");
    assert!(valid >= 45, "{valid} of 100 valid: {err}");
    let out = String::from_utf8_lossy(&o.stdout);
    let judged = folklstm::abc::judge::read_tunes(&out);
    assert_eq!(judged.len(), 100);
    let eight = judged.iter().filter(|f| f.sections.iter().filter(|s| s.bars == 8.0).count() >= 2).count();
    assert!(eight >= 40, "{eight} of 100 tunes with two or more 8-bar parts");
    let tonic = judged.iter().filter(|f| f.ends_on_tonic == Some(true)).count();
    assert!(tonic >= 80, "{tonic} of 100 tunes end on their tonic");
}

/// A checkpoint trained on windows longer than 64 characters is warmed up unless told not to
/// (`model/nottingham`: 128); the reference model (64) starts from zero, as before.
#[test]
fn sampling_warms_up_the_models_trained_on_long_windows() {
    let draw = |dir: &str, epoch: &str, flag: Option<&str>| {
        let o = folk()
            .arg("sample")
            .args(["--model-dir", dir, epoch, "--count", "2", "--len", "120", "--rng-seed", "3", "--free"])
            .args(flag)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        (String::from_utf8_lossy(&o.stdout).into_owned(), err.contains("warm-up: on"))
    };
    let (default, said) = draw("model/nottingham", "best", None);
    assert!(said, "the default should say it warms up");
    assert_eq!(default, draw("model/nottingham", "best", Some("--warm-up")).0);
    let (cold, said) = draw("model/nottingham", "best", Some("--no-warm-up"));
    assert!(!said);
    assert_ne!(default, cold, "--no-warm-up starts from zero: other draws");
    let (reference, said) = draw("model", "100", None);
    assert!(!said, "the reference model is not warmed up by default");
    assert_eq!(reference, draw("model", "100", Some("--no-warm-up")).0);
    assert_ne!(reference, draw("model", "100", Some("--warm-up")).0);
}
