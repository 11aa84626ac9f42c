//! The `folklstm` command line: parse, call the library, print. No math here.

use clap::{Args, Parser, Subcommand};
use folklstm::abc::prime::{CorpusStyle, Wishes};
use folklstm::device::{self, Device};
use folklstm::train::{ModelFlags, Outcome, TrainOptions};
use folklstm::{Error, Model, Result, checkpoint, sample};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// A from-scratch LSTM that learns folk tunes in ABC notation and writes new ones.
#[derive(Parser, Debug)]
#[command(name = "folklstm", version, about, max_term_width = 100, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the model on a corpus (ABC tunes, or any UTF-8 text), writing checkpoints and a CSV log.
    Train(TrainArgs),
    /// Write new tunes with a trained checkpoint.
    Sample(SampleArgs),
    /// Measure a checkpoint's loss and accuracy on any text.
    Eval(EvalArgs),
    /// Draw the loss and accuracy curves of a training log as an SVG image.
    Plot(PlotArgs),
    /// Check ABC files: does each tune parse, and is it musically well formed?
    Check(folklstm::abc::cli::CheckArgs),
    /// Render ABC tunes as standard MIDI files (melody and chord tracks).
    Midi(folklstm::abc::cli::MidiArgs),
    /// Judge ABC tunes: validity, structure (parts, form, tonic ending), originality against a
    /// training corpus (nearest tune, verbatim bars, near copies) and style (meter, key, length).
    Judge(folklstm::abc::cli::JudgeArgs),
    /// Measure training and sampling speed of the reference model, CPU and GPU side by side.
    Bench(BenchArgs),
    /// A local web page: pick checkpoint, meter, key, temperature; see the tunes as sheet music,
    /// hear them, download ABC and MIDI. Also a JSON API (POST /api/generate).
    Serve(ServeArgs),
    /// Write a weights-only copy of a checkpoint (a third of the size; enough to sample, not to resume),
    /// or, with --format torch, the state dict of a PyTorch CharLSTM.
    Export(ExportArgs),
    /// Read a PyTorch CharLSTM state dict (safetensors) into a checkpoint that sample and train --init-from use.
    Import(ImportArgs),
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The state dict: a safetensors file with `vocab` in its metadata (see the README).
    input: PathBuf,
    /// Folder to write the checkpoint to (weights.0.safetensors); it must hold no checkpoints yet.
    #[arg(short, long)]
    output: PathBuf,
    /// Dropout to train with after import (a state dict does not record it).
    #[arg(long, default_value_t = 0.2, allow_negative_numbers = true)]
    dropout: f32,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Which checkpoint: an epoch number, `latest` or `best` (train --keep-best).
    epoch: String,
    /// Folder holding the checkpoints.
    #[arg(long, default_value = "model")]
    model_dir: PathBuf,
    /// The file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// folklstm: a weights-only checkpoint; torch: the state dict of PyTorch's CharLSTM.
    #[arg(long, value_enum, default_value_t = ExportFormat::Folklstm)]
    format: ExportFormat,
    /// Store the weights as f16 (half the file; each weight rounded to 11 significant bits).
    #[arg(long)]
    f16: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    Folklstm,
    Torch,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Folder of checkpoints to offer (repeat for more); the newest of the first is the default.
    #[arg(long, default_value = "model")]
    model_dir: Vec<PathBuf>,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080, allow_negative_numbers = true)]
    port: u16,
    /// Address to listen on: 127.0.0.1 serves this machine only; 0.0.0.0 opens it to the network.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// ABC files of the training corpus: each tune's verdict then says whether it is a near copy,
    /// and of which training tune; keep original/both need it.
    #[arg(long, num_args = 1.., value_name = "FILES")]
    corpus: Vec<PathBuf>,
    /// The page's folder [default: web here, else the source tree's].
    #[arg(long)]
    web_dir: Option<PathBuf>,
    /// Longest a generate request may take (waiting included), in seconds; then it is stopped.
    #[arg(long, default_value_t = 60.0, allow_negative_numbers = true)]
    timeout: f64,
    /// Generations running at once (the others wait in turn).
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    jobs: usize,
    /// CPU threads of each generation [default: one per core].
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Which engines to measure.
    #[arg(long, value_enum, default_value_t = BenchDevice::Cpu)]
    device: BenchDevice,
    /// Training steps to time (after 3 warm-up steps); the table shows the median.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    steps: usize,
    /// Streams of the batched sampling measurement.
    #[arg(long, default_value_t = 64, allow_negative_numbers = true)]
    count: usize,
    /// CPU worker threads [default: one per core].
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Also show where a training step's time goes, phase by phase: on the CPU from host timers,
    /// on the GPU from timestamp queries around each phase (where the adapter has them).
    #[arg(long)]
    profile: bool,
    /// With --device gpu: print the training step's dispatch plan (per phase: dispatches,
    /// workgroups, threads, longest dependent chain) and a lower bound for a large GPU, and
    /// time nothing.
    #[arg(long)]
    plan: bool,
    /// A table of training speed alone, over a fixed list of shapes (the reference model first),
    /// or over the one shape the flags below give.
    #[arg(long)]
    grid: bool,
    /// Window rows (streams) of the measured model [default: 16, the reference].
    #[arg(long)]
    batch: Option<usize>,
    /// Window length [default: 64].
    #[arg(long)]
    seq: Option<usize>,
    /// Embedding width [default: 512].
    #[arg(long)]
    embed: Option<usize>,
    /// LSTM width [default: 256].
    #[arg(long)]
    hidden: Option<usize>,
    /// LSTM layers [default: 3].
    #[arg(long)]
    layers: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BenchDevice {
    Cpu,
    Gpu,
    All,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// Which checkpoint: an epoch number, `latest` or `best` (train --keep-best).
    epoch: String,
    /// Text files (or folders of .abc files) to evaluate on.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Folder holding the checkpoints.
    #[arg(long, default_value = "model")]
    model_dir: PathBuf,
    /// Parallel streams the text is cut into (as in training).
    #[arg(long, default_value_t = 16, allow_negative_numbers = true)]
    streams: usize,
    /// Rewrite the text as the checkpoint's training did before scoring it (train --reflow,
    /// --label-parts: the checkpoint records which), instead of scoring it as written.
    #[arg(long)]
    as_trained: bool,
    /// Engine: cpu, gpu, or auto.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
    /// CPU worker threads [default: one per core].
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
struct PlotArgs {
    /// The training log to draw.
    #[arg(long, default_value = "logs/training_log.csv")]
    log: PathBuf,
    /// The SVG file to write.
    #[arg(short, long, default_value = "logs/training_log.svg")]
    output: PathBuf,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Corpus: UTF-8 text files (ABC tunes or any other text) and folders whose .abc files are read
    /// in name order; several (`--data a.abc b.abc`, or the flag repeated) are read in turn as one text.
    #[arg(long, visible_alias = "corpus", num_args = 1.., default_value = "data/input.txt")]
    data: Vec<PathBuf>,
    /// Train until this many epochs are complete.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    epochs: u32,
    /// Save a checkpoint every N epochs (and after the last).
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    freq: u32,
    /// Folder for checkpoints (weights.EPOCH.safetensors).
    #[arg(long, default_value = "model")]
    model_dir: PathBuf,
    /// Folder for training_log.csv.
    #[arg(long, default_value = "logs")]
    log_dir: PathBuf,
    /// Seed of the initial weights, the dropout masks and the validation split.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    rng_seed: u64,
    /// Engine: cpu, gpu, or auto (the GPU when a Vulkan adapter exists).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
    /// Parallel streams per window [default: 16].
    #[arg(long, allow_negative_numbers = true)]
    batch: Option<usize>,
    /// Characters per window (steps of truncated BPTT) [default: 64].
    #[arg(long, allow_negative_numbers = true)]
    seq: Option<usize>,
    /// Embedding width [default: 512].
    #[arg(long, allow_negative_numbers = true)]
    embed: Option<usize>,
    /// LSTM hidden width [default: 256].
    #[arg(long, allow_negative_numbers = true)]
    hidden: Option<usize>,
    /// Stacked LSTM layers [default: 3].
    #[arg(long, allow_negative_numbers = true)]
    layers: Option<usize>,
    /// Dropout after each LSTM layer [default: 0.2].
    #[arg(long, allow_negative_numbers = true)]
    dropout: Option<f32>,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f32,
    /// How the learning rate changes: constant, cosine (from --lr down to --lr-min over --epochs) or
    /// step (times --lr-gamma every --lr-step-epochs) [default: constant]. A resumed run goes on
    /// with its checkpoint's schedule.
    #[arg(long, value_enum)]
    lr_schedule: Option<ScheduleShape>,
    /// The lowest learning rate of the schedule [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    lr_min: Option<f32>,
    /// Steps of linear warm-up from --lr/STEPS to --lr at the start [default: 0].
    #[arg(long, value_name = "STEPS")]
    warmup: Option<u64>,
    /// Epochs between two drops of the step schedule [default: 10].
    #[arg(long, value_name = "EPOCHS", allow_negative_numbers = true)]
    lr_step_epochs: Option<u32>,
    /// Factor of each drop of the step schedule [default: 0.5].
    #[arg(long, allow_negative_numbers = true)]
    lr_gamma: Option<f32>,
    /// After each validation, keep the checkpoint with the lowest validation loss as
    /// weights.best.safetensors (`sample best`, `eval best`). Needs --val-fraction.
    #[arg(long)]
    keep_best: bool,
    /// Add copies of the training tunes (never the validation tunes) transposed by each shift of
    /// this range of semitones but 0, e.g. -2..2; tunes that cannot be transposed safely are left out.
    #[arg(long, value_name = "LOW..HIGH", allow_hyphen_values = true, value_parser = parse_shift_range)]
    transpose: Option<(i32, i32)>,
    /// Add a copy of each training tune (never a validation tune) in each of these keys that has
    /// its mode, moved at most 6 semitones down or 5 up, e.g. G,D,Em,Am: a G tune gets a D copy,
    /// an A tune a G and a D copy, an E minor tune an A minor copy. Not with --transpose.
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    transpose_keys: Vec<String>,
    /// Rewrite the corpus four complete bars to a line, each part ending its line, before
    /// training (tunes that would not read back as the same music are left as written).
    #[arg(long)]
    reflow: bool,
    /// With --reflow: write each part's label before it (P:A, P:B, ...) and the parts in the
    /// header (Y:AB) in every tune that names none, so a model reads which part it is in.
    #[arg(long)]
    label_parts: bool,
    /// With --reflow: complete bars a line [default: 4]; 8 puts a Nottingham part (8 bars) on one line.
    #[arg(long, value_name = "N")]
    line_bars: Option<usize>,
    /// With --reflow: space the bar lines of every second line of a part (` | `), so the text
    /// says at each bar whether it is in a part's first or second line (the music is unchanged).
    #[arg(long)]
    mark_lines: bool,
    /// With --mark-lines: mark the bar lines of each tune's last part too (a space before them
    /// on its odd lines, after them on its even ones), so the text says at each bar whether the
    /// part being written is the tune's last (the music is unchanged).
    #[arg(long)]
    mark_last: bool,
    /// With --reflow: restate the key (a K: line) after each part label (P:), so the text names
    /// the tonic and mode a few characters before each part, where the model writes its closing
    /// cadence (the music is unchanged; use with --label-parts, which labels the parts).
    #[arg(long)]
    restate_key: bool,
    /// Transpose every tune (training and validation) to this tonic, keeping its mode (a D major
    /// tune to G major, an A minor one to G minor), so the model learns one tonic to end on;
    /// sample --key writes the tune there and moves it to the key asked (without --key, to a key
    /// of its mode drawn from the corpus's). Not with --transpose or --transpose-keys.
    #[arg(long, value_name = "NOTE")]
    tonic: Option<String>,
    /// Clip the global gradient norm to this value before each update [default: no clipping].
    #[arg(long, allow_negative_numbers = true)]
    clip: Option<f32>,
    /// Decoupled weight decay (AdamW): each update also shrinks every weight by the factor
    /// 1 - lr x this, e.g. 0.05 [default: 0, plain Adam; a resumed run keeps its checkpoint's].
    #[arg(long, value_name = "LAMBDA", allow_negative_numbers = true)]
    weight_decay: Option<f32>,
    /// Weight drop (DropConnect, as AWD-LSTM): drop each recurrent weight with this probability
    /// for a whole window, e.g. 0.3; the CPU engine only [default: 0; a resumed run keeps its
    /// checkpoint's].
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    weight_drop: Option<f32>,
    /// Fraction of whole tunes (of other text: paragraphs, else lines) held out for validation (0: none).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    val_fraction: f64,
    /// Continue from the latest checkpoint in --model-dir, or from the given epoch (e.g. 40).
    #[arg(long, num_args = 0..=1, default_missing_value = "latest", value_name = "EPOCH")]
    resume: Option<String>,
    /// Start a new run from this checkpoint's weights (fine-tuning, e.g. one `import` wrote):
    /// its sizes and characters, a new optimizer.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// CPU worker threads [default: one per core].
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Stop after this many training steps (windows) of this run, as Ctrl-C does: save a
    /// checkpoint where it stands (mid-epoch if need be) and print how to resume.
    #[arg(long, value_name = "STEPS")]
    stop_after: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ScheduleShape {
    Constant,
    Cosine,
    Step,
}

/// `-2..2` (or `-2..=2`): an inclusive range of semitones.
fn parse_shift_range(s: &str) -> std::result::Result<(i32, i32), String> {
    let bad = || format!("{s:?} is not a range of semitones LOW..HIGH, e.g. -2..2");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let b = b.strip_prefix('=').unwrap_or(b);
    Ok((a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?))
}

/// The schedule the flags ask for, if any of them is given.
fn schedule_flags(a: &TrainArgs) -> Option<folklstm::optim::LrSchedule> {
    use folklstm::optim::{LrSchedule, LrShape};
    let given = a.lr_schedule.is_some()
        || a.lr_min.is_some()
        || a.warmup.is_some()
        || a.lr_step_epochs.is_some()
        || a.lr_gamma.is_some();
    let shape = match a.lr_schedule {
        _ if !given => return None,
        None | Some(ScheduleShape::Constant) => LrShape::Constant,
        Some(ScheduleShape::Cosine) => LrShape::Cosine,
        Some(ScheduleShape::Step) => {
            LrShape::Step { every: a.lr_step_epochs.unwrap_or(10), gamma: a.lr_gamma.unwrap_or(0.5) }
        }
    };
    Some(LrSchedule {
        shape,
        lr: a.lr,
        lr_min: a.lr_min.unwrap_or(0.0),
        warmup: a.warmup.unwrap_or(0),
        epochs: a.epochs,
    })
}

#[derive(Args, Debug)]
struct SampleArgs {
    /// Which checkpoint: an epoch number (model/weights.EPOCH.safetensors), `latest` or `best`
    /// (the lowest validation loss, train --keep-best).
    epoch: String,
    /// Folder holding the checkpoints.
    #[arg(long, default_value = "model")]
    model_dir: PathBuf,
    /// Text to prime the network with; printed first. Any length: the LSTM has no fixed context,
    /// so a long seed just primes it for longer (seed and --len together at most 1000000
    /// characters per tune). Default: one random character.
    #[arg(long)]
    seed: Option<String>,
    /// Characters to generate after the seed (--count x (seed + --len) at most 16777216).
    #[arg(long, default_value_t = 512, allow_negative_numbers = true)]
    len: usize,
    /// Softmax temperature: below 1 is more conservative, above 1 more adventurous.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    temperature: f32,
    /// Draw only from the K most likely characters.
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    top_k: Option<usize>,
    /// Seed of the random draws (same seed, same tunes) [default: a new one each run].
    #[arg(long, allow_negative_numbers = true)]
    rng_seed: Option<u64>,
    /// Independent tunes to generate, as one batch, separated by blank lines.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    count: usize,
    /// Engine: cpu, gpu, or auto.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    device: Device,
    /// CPU worker threads [default: one per core].
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Also write the tunes as MIDI files (OUT-1.mid, OUT-2.mid, ... when several). ABC models only.
    #[arg(long, value_name = "OUT.mid")]
    midi: Option<PathBuf>,
    /// Stop each tune where the next one would begin (a line starting with X:); --len is then
    /// the most it generates. ABC models only.
    #[arg(long)]
    one_tune: bool,
    /// Let the model read a one-line tune and a blank line first, not printed, so it starts
    /// from the state it has between two tunes in training rather than from zero. Models
    /// trained on long windows need it: from zero they write noise for a while. On by default
    /// for a checkpoint trained on windows longer than 64 characters.
    #[arg(long, conflicts_with = "no_warm_up")]
    warm_up: bool,
    /// Start from the zero state even where the checkpoint's training window would warm it up.
    #[arg(long)]
    no_warm_up: bool,
    /// The text read for --warm-up instead of the one-line tune (implies --warm-up).
    #[arg(long, value_name = "TEXT", conflicts_with = "no_warm_up")]
    warm_up_text: Option<String>,
    /// Meter of the tunes (e.g. 6/8): the header is written for the model in the training
    /// corpus's layout (from style.json beside the checkpoints, or --corpus).
    #[arg(long, value_name = "M")]
    meter: Option<String>,
    /// Key and mode of the tunes (e.g. G, Am, Dmix, Edor), written as --meter is.
    #[arg(long, value_name = "K")]
    key: Option<String>,
    /// Title of the tunes (default: the model writes one).
    #[arg(long)]
    title: Option<String>,
    /// Keep drawing until --count tunes pass: `valid` (the checker), `original` (not a near copy
    /// of a --corpus tune), `both`, or `shaped` (valid, every part whole 4-bar phrases, 8 bars or
    /// more, ending on the tonic; and original when --corpus is given). Implies --one-tune.
    #[arg(long, value_enum)]
    keep: Option<sample::Keep>,
    /// Most tunes --keep may draw in all [default: 20 x --count].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    max_attempts: Option<usize>,
    /// ABC files of the training corpus: judge the tunes against it (originality, style) and
    /// learn its header layout for --meter/--key.
    #[arg(long, num_args = 1.., value_name = "FILES")]
    corpus: Vec<PathBuf>,
    /// Guided sampling, the default for ABC models: each draw is limited to the characters that
    /// keep the tune valid under the checker, and each tune ends when it is complete (steered to
    /// an end before --len runs out). Kept so that scripts can say it.
    #[arg(long, conflicts_with = "free")]
    guided: bool,
    /// Guided tunes of parts of 8 bars each, as players count them: two parts (more only when
    /// the tune's play order promises them), no first and second endings.
    #[arg(long, conflicts_with = "free")]
    shape: bool,
    /// Raw sampling: the model's own draws, unguided (models of plain text always sample so).
    #[arg(long)]
    free: bool,
}

fn run_train(a: TrainArgs) -> Result<ExitCode> {
    let schedule = schedule_flags(&a);
    let opts = TrainOptions {
        data: a.data,
        epochs: a.epochs,
        freq: a.freq,
        model_dir: a.model_dir.clone(),
        log_dir: a.log_dir,
        rng_seed: a.rng_seed,
        device: a.device,
        model: ModelFlags {
            embed: a.embed,
            hidden: a.hidden,
            layers: a.layers,
            dropout: a.dropout,
            batch: a.batch,
            seq: a.seq,
        },
        lr: a.lr,
        schedule,
        keep_best: a.keep_best,
        transpose: a.transpose,
        transpose_keys: a.transpose_keys,
        reflow: a.reflow,
        label_parts: a.label_parts,
        line_bars: a.line_bars,
        mark_lines: a.mark_lines,
        mark_last: a.mark_last,
        restate_key: a.restate_key,
        tonic: a.tonic,
        clip: a.clip,
        weight_decay: a.weight_decay,
        weight_drop: a.weight_drop,
        val_fraction: a.val_fraction,
        resume: a.resume.map(|r| if r == "latest" { None } else { Some(r) }),
        init_from: a.init_from,
        threads: a.threads,
        progress_bar: std::io::stdout().is_terminal(),
        stop_after: a.stop_after,
    };
    let mut out = std::io::stdout();
    match folklstm::train::train(&opts, &mut out)? {
        Outcome::Finished { checkpoint } => {
            let _ = writeln!(out, "done; latest checkpoint {}", checkpoint.display());
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted { checkpoint, id } => {
            print_resume("interrupted", &checkpoint, id, &a.model_dir);
            Ok(ExitCode::from(130))
        }
        Outcome::Stopped { checkpoint, id } => {
            print_resume(&format!("stopped after {} steps", a.stop_after.unwrap_or(0)), &checkpoint, id, &a.model_dir);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// "interrupted: saved ...", and the command that continues the run.
fn print_resume(
    what: &str,
    checkpoint: &std::path::Path,
    id: folklstm::run::CheckpointId,
    model_dir: &std::path::Path,
) {
    eprintln!(
        "{what}: saved {}\nresume with: folklstm train --resume {id} --model-dir {} (and the same --data, --rng-seed, --val-fraction, --transpose or --transpose-keys and the --reflow flags)",
        checkpoint.display(),
        model_dir.display()
    );
}

fn run_eval(a: EvalArgs) -> Result<ExitCode> {
    if a.streams == 0 || a.streams > sample::MAX_COUNT {
        return Err(Error::Config(format!("--streams {} must be between 1 and {}", a.streams, sample::MAX_COUNT)));
    }
    let path = folklstm::run::resolve(&a.model_dir, &a.epoch)?;
    let model = open_model(&path, a.device, a.threads)?;
    let mut out = std::io::stdout().lock();
    let (mut nats, mut bits, mut correct, mut scored, mut unknown) = (0.0, 0.0, 0.0, 0u64, 0u64);
    let _ = writeln!(
        out,
        "{:<40} {:>10} {:>10} {:>9} {:>10} {:>8}",
        "corpus", "nats/char", "bits/char", "accuracy", "chars", "unknown"
    );
    let meta = &model.checkpoint().meta;
    if a.as_trained && !meta.reflow && meta.tonic.is_none() {
        eprintln!("--as-trained: {} was trained on its text as written; scoring the text as written", path.display());
    }
    for d in &a.data {
        let (text, _) = folklstm::corpus::load_text(d)?;
        let text = if a.as_trained && meta.reflow {
            let r = folklstm::abc::reflow::reflow_text(
                &text,
                folklstm::train::layout(
                    meta.label_parts,
                    meta.line_bars,
                    meta.mark_lines,
                    meta.mark_last,
                    meta.restate_key,
                ),
            );
            eprintln!("{}: {}", d.display(), r.describe());
            r.text
        } else {
            text
        };
        let text = match meta.tonic.as_deref().filter(|_| a.as_trained) {
            Some(t) => {
                let r = folklstm::train::retone(&text, t)?;
                eprintln!("{}: {}", d.display(), r.describe());
                r.text
            }
            None => text,
        };
        let r = model.evaluate_streams(&text, a.streams)?;
        let _ = writeln!(
            out,
            "{:<40} {:>10.4} {:>10.4} {:>9.4} {:>10} {:>8}",
            d.display().to_string(),
            r.nats,
            r.bits,
            r.accuracy,
            r.scored,
            r.unknown
        );
        nats += r.nats * r.scored as f64;
        bits += r.bits * r.scored as f64;
        correct += r.accuracy * r.scored as f64;
        scored += r.scored;
        unknown += r.unknown;
    }
    if a.data.len() > 1 {
        let n = scored as f64;
        let _ = writeln!(
            out,
            "{:<40} {:>10.4} {:>10.4} {:>9.4} {:>10} {:>8}",
            "all",
            nats / n,
            bits / n,
            correct / n,
            scored,
            unknown
        );
    }
    if unknown > 0 {
        eprintln!("{unknown} character(s) outside the model's vocabulary were skipped (neither fed nor scored)");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_bench(a: BenchArgs) -> Result<ExitCode> {
    use folklstm::bench;
    if a.steps == 0 || a.count == 0 {
        return Err(Error::Config("--steps and --count must be at least 1".into()));
    }
    let pool = folklstm::cpu::team::pool(a.threads)?;
    let peak = pool.install(|| folklstm::cpu::simd::fma_peak_gflops(0.2));
    let isa = folklstm::cpu::simd::isa().name();
    if a.grid {
        return run_bench_grid(&a, peak, isa);
    }
    let (cfg, batch, params) = bench::reference_setup();
    let cfg = folklstm::model::ModelConfig {
        embed: a.embed.unwrap_or(cfg.embed),
        hidden: a.hidden.unwrap_or(cfg.hidden),
        layers: a.layers.unwrap_or(cfg.layers),
        ..cfg
    };
    let batch = folklstm::model::BatchConfig { batch: a.batch.unwrap_or(batch.batch), seq: a.seq.unwrap_or(batch.seq) };
    cfg.validate()?;
    batch.validate()?;
    if a.plan {
        return print_gpu_plan(&a, &cfg, &batch);
    }
    let params = if cfg == params.config { params } else { folklstm::model::init_params(&cfg, 0) };
    let mut rows = Vec::new();
    if a.device != BenchDevice::Gpu {
        let mut t = folklstm::cpu::CpuBackend::new(params.clone(), None, batch, a.threads)?;
        let mut s = folklstm::cpu::CpuSampler::new(&params, a.threads)?;
        let name = folklstm::backend::Trainer::describe(&t);
        eprintln!("measuring {name} ...");
        rows.push(bench::bench_engine(name, &mut t, &mut s, &batch, a.steps, a.count)?);
        if a.profile {
            let phases = bench::profile_train(&mut t, &batch, a.steps)?;
            let total: f64 = phases.iter().map(|p| p.1).sum();
            println!("CPU training step by phase (mean of {} steps, {isa}):", a.steps + 3);
            for (name, ms) in &phases {
                println!("  {name:<32} {ms:8.2} ms  {:5.1}%", 100.0 * ms / total);
            }
            println!("  {:<32} {total:8.2} ms", "sum");
        }
    }
    if a.device != BenchDevice::Cpu {
        match (device::gpu_trainer(params.clone(), None, batch), device::gpu_sampler(&params)) {
            (Ok(mut t), Ok(mut s)) => {
                let name = gpu_engine_label(&t.describe())?;
                eprintln!("measuring {name} ...");
                rows.push(bench::bench_engine(name.clone(), t.as_mut(), s.as_mut(), &batch, a.steps, a.count)?);
                if a.profile {
                    drop(t);
                    print_gpu_profile(&name, params.clone(), &batch, a.steps)?;
                }
            }
            (Err(e), _) | (_, Err(e)) if a.device == BenchDevice::Gpu => return Err(e),
            (Err(e), _) | (_, Err(e)) => eprintln!("GPU skipped: {e}"),
        }
    }
    bench::print_table(&mut std::io::stdout(), &rows, &cfg, &batch, peak);
    Ok(ExitCode::SUCCESS)
}

/// `bench --profile` on the GPU: each phase's GPU time from timestamp queries, or why there is
/// none.
fn print_gpu_profile(
    engine: &str,
    params: folklstm::model::Params<f32>,
    batch: &folklstm::model::BatchConfig,
    steps: usize,
) -> Result<()> {
    let mut t = folklstm::gpu::GpuTrainer::new(params, None, *batch)?;
    match folklstm::bench::profile_gpu_train(&mut t, batch, steps)? {
        Some(phases) => {
            let total: f64 = phases.iter().map(|p| p.1).sum();
            println!("GPU training step by phase, GPU timestamps (median of {} steps, {engine}):", steps.max(1));
            for (name, ms) in &phases {
                println!("  {name:<32} {ms:8.3} ms  {:5.1}%", 100.0 * ms / total);
            }
            println!("  {:<32} {total:8.3} ms", "sum");
        }
        None => println!(
            "GPU training step by phase: {engine} has no timestamp queries, so no per-phase GPU time \
             (host timing of single dispatches would mislead)"
        ),
    }
    Ok(())
}

/// The GPU engine's name in a speed table, after printing the adapter and its driver: a
/// software adapter (lavapipe) is never passed off as a GPU.
fn gpu_engine_label(describe: &str) -> Result<String> {
    let a = folklstm::gpu::adapter_report()?;
    println!("{}", a.notice());
    Ok(a.label(describe))
}

/// `bench --device gpu --plan`: the recorded training step, phase by phase, and its lower bound
/// on an H100/H200-class GPU (no device needed, nothing timed).
fn print_gpu_plan(
    a: &BenchArgs,
    cfg: &folklstm::model::ModelConfig,
    batch: &folklstm::model::BatchConfig,
) -> Result<ExitCode> {
    use folklstm::gpu::plan;
    if a.device != BenchDevice::Gpu {
        return Err(Error::Config("--plan describes the GPU step: use it with --device gpu".into()));
    }
    let steps = plan::train_plan(cfg, batch)?;
    let title = format!(
        "GPU training step at B{} T{} E{} H{} L{} (V{})",
        batch.batch, batch.seq, cfg.embed, cfg.hidden, cfg.layers, cfg.vocab
    );
    // As the other tables: a closed stdout is not an error worth a message.
    let mut out = std::io::stdout();
    let _ = plan::print_plan(&mut out, &title, &steps, &plan::H100_CLASS);
    let runs = plan::sample_plan(cfg, 1)?;
    let title = format!(
        "\nGPU sampling, 1 stream, E{} H{} L{} (V{}): a run drawn on the device",
        cfg.embed, cfg.hidden, cfg.layers, cfg.vocab
    );
    let _ = plan::print_sample_plan(&mut out, &title, &runs, &plan::H100_CLASS);
    Ok(ExitCode::SUCCESS)
}

/// `bench --grid`: training speed of each shape of [`folklstm::bench::grid`] on the chosen
/// engines.
fn run_bench_grid(a: &BenchArgs, peak: f64, isa: &str) -> Result<ExitCode> {
    use folklstm::bench;
    let shapes = if [a.batch, a.seq, a.embed, a.hidden, a.layers].iter().any(Option::is_some) {
        let (cfg, batch) = bench::grid()[0];
        let cfg = folklstm::model::ModelConfig {
            embed: a.embed.unwrap_or(cfg.embed),
            hidden: a.hidden.unwrap_or(cfg.hidden),
            layers: a.layers.unwrap_or(cfg.layers),
            ..cfg
        };
        let batch =
            folklstm::model::BatchConfig { batch: a.batch.unwrap_or(batch.batch), seq: a.seq.unwrap_or(batch.seq) };
        cfg.validate()?;
        batch.validate()?;
        vec![(cfg, batch)]
    } else {
        bench::grid()
    };
    let mut rows = Vec::new();
    for (cfg, batch) in shapes {
        let params = folklstm::model::init_params(&cfg, 0);
        let mut engines: Vec<Box<dyn folklstm::backend::Trainer>> = Vec::new();
        if a.device != BenchDevice::Gpu {
            engines.push(Box::new(folklstm::cpu::CpuBackend::new(params.clone(), None, batch, a.threads)?));
        }
        if a.device != BenchDevice::Cpu {
            match device::gpu_trainer(params.clone(), None, batch) {
                Ok(t) => engines.push(t),
                Err(e) if a.device == BenchDevice::Gpu => return Err(e),
                Err(e) => eprintln!("GPU skipped: {e}"),
            }
        }
        for mut t in engines {
            let engine = if t.describe().starts_with("gpu") { gpu_engine_label(&t.describe())? } else { t.describe() };
            eprintln!(
                "measuring {engine} at B{} T{} E{} H{} L{} ...",
                batch.batch, batch.seq, cfg.embed, cfg.hidden, cfg.layers
            );
            let step_s = bench::time_train(t.as_mut(), &batch, a.steps)?;
            rows.push(bench::GridRow { cfg, batch, engine, step_s });
        }
    }
    println!("instruction set: {isa}");
    bench::print_grid(&mut std::io::stdout(), &rows, peak);
    Ok(ExitCode::SUCCESS)
}

fn run_export(a: ExportArgs) -> Result<ExitCode> {
    let path = folklstm::run::resolve(&a.model_dir, &a.epoch)?;
    let model = Model::load(&path)?;
    if a.f16 && a.format == ExportFormat::Torch {
        return Err(Error::Config("--f16 stores a folklstm checkpoint; the torch export is f32".into()));
    }
    if a.format == ExportFormat::Torch {
        model.export_torch(&a.output)?;
        println!("wrote {} (the PyTorch CharLSTM state dict of {})", a.output.display(), path.display());
    } else if a.f16 {
        model.save_f16(&a.output)?;
        println!("wrote {} (weights of {} as f16, no optimizer state)", a.output.display(), path.display());
    } else {
        model.save(&a.output)?;
        println!("wrote {} (weights of {}, no optimizer state)", a.output.display(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The checkpoint at `path` on the engine the flags chose.
fn open_model(path: &std::path::Path, device: Device, threads: Option<usize>) -> Result<Model> {
    let model = Model::load(path)?.on(device);
    Ok(match threads {
        Some(t) => model.threads(t),
        None => model,
    })
}

fn run_import(a: ImportArgs) -> Result<ExitCode> {
    let m = folklstm::torch::import(&a.input, a.dropout)?;
    let _lock = folklstm::run::DirLock::acquire(&a.output)?;
    if let Some((id, _)) = folklstm::run::list(&a.output)?.last() {
        return Err(Error::Config(format!(
            "{} already holds checkpoints (up to epoch {id}); import into an empty or new folder",
            a.output.display()
        )));
    }
    let ignored = m.ignored.clone();
    let c = m.params.config;
    let path = folklstm::run::path_for(&a.output, folklstm::run::CheckpointId { epoch: 0, window: 0 });
    checkpoint::save(&path, &m.into_checkpoint(&a.input))?;
    println!(
        "wrote {} (V={} E={} H={} L={})\n  sample it:   folklstm sample 0 --model-dir {}\n  fine-tune it: folklstm train --init-from {} --data TEXT --model-dir NEW",
        path.display(),
        c.vocab,
        c.embed,
        c.hidden,
        c.layers,
        a.output.display(),
        path.display()
    );
    if !ignored.is_empty() {
        println!("ignored {} tensors that are not CharLSTM's: {}", ignored.len(), ignored.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_serve(a: ServeArgs) -> Result<ExitCode> {
    let timeout = std::time::Duration::try_from_secs_f64(a.timeout)
        .map_err(|_| Error::Config(format!("--timeout {} must be a number of seconds above 0", a.timeout)))?;
    let opts = folklstm::serve::ServeOptions {
        model_dirs: a.model_dir,
        corpus: a.corpus,
        host: a.host,
        port: a.port,
        web_dir: a.web_dir,
        timeout,
        jobs: a.jobs,
        threads: a.threads,
        log: true,
    };
    let server = folklstm::serve::Server::bind(opts)?;
    let addr = server.addr();
    if !addr.ip().is_loopback() {
        eprintln!("warning: listening on {addr}: other machines can use this server (no login, no encryption)");
    }
    println!("folklstm serve: open http://{addr}/ (Ctrl-C stops)");
    let _ = std::io::stdout().flush();
    server.run();
    Ok(ExitCode::SUCCESS)
}

fn run_plot(a: PlotArgs) -> Result<ExitCode> {
    let rows = folklstm::plot::read_log(&a.log)?;
    folklstm::plot::plot_log(&rows, &a.output, "folklstm training")?;
    println!("wrote {}", a.output.display());
    Ok(ExitCode::SUCCESS)
}

/// The stderr line saying how the tunes were drawn.
fn sampling_line(guided: bool, s: &sample::GuideStats) -> String {
    if !guided {
        return "free (the model's own draws; without --free the guide masks the characters that would break the \
                tune)"
            .into();
    }
    format!(
        "guided ({} draws in {} tunes; starved (under {} of the model's probability on the legal characters): \
         {} draws, {:.1} per 1000 characters, in {} of the tunes; {} tune(s) steered to end within --len, {} at \
         a dead end, {} ran out of --len before the tune was complete)",
        s.draws,
        s.tunes,
        sample::STARVED,
        s.starved,
        1000.0 * s.starved as f64 / s.draws.max(1) as f64,
        s.starved_tunes,
        s.closed,
        s.dead_ends,
        s.unfinished
    )
}

/// The stderr line with the sampler's speed: characters computed (steps times streams, the
/// seed's included, whether or not a stream had ended) per second of the sampling loop.
/// With runs drawn on the device, how many steps came from them and how many of those the host
/// drew differently.
fn speed_line(s: &sample::GuideStats) -> String {
    let ahead = if s.ahead > 0 {
        format!("; {} steps drawn on the device in runs, {} of them redrawn by the host", s.ahead, s.overruled)
    } else {
        String::new()
    };
    format!(
        "speed: {} characters (steps x streams) in {:.3} s: {:.0} chars/s{ahead}",
        s.rows,
        s.seconds,
        s.rows as f64 / s.seconds.max(1e-9)
    )
}

fn run_sample(a: SampleArgs) -> Result<ExitCode> {
    let rng_seed = a.rng_seed.unwrap_or_else(sample::clock_seed);
    let steer = a.meter.is_some() || a.key.is_some() || a.title.is_some();
    if steer && a.seed.is_some() {
        return Err(Error::Config(
            "--seed and --meter/--key/--title both write the start of the tune; give one or the other".into(),
        ));
    }
    if a.keep.is_some_and(sample::Keep::needs_corpus) && a.corpus.is_empty() {
        return Err(Error::Config(
            "--keep original and --keep both judge against the training tunes: give them with --corpus FILES".into(),
        ));
    }
    let mut opts = sample::SampleOptions {
        seed_text: a.seed,
        len: a.len,
        temperature: a.temperature,
        top_k: a.top_k,
        rng_seed,
        count: a.count,
        one_tune: a.one_tune || a.keep.is_some() || a.shape,
        shape: a.shape,
        warm_up: a.warm_up_text.or_else(|| a.warm_up.then(|| sample::WARM_UP.to_string())),
        ..Default::default()
    };
    let max_attempts = a.max_attempts.unwrap_or(a.count.saturating_mul(20));
    // Every limit before anything is read.
    opts.validate()?;
    let corpus = sample::read_corpus(&a.corpus)?;
    let path = folklstm::run::resolve(&a.model_dir, &a.epoch)?;
    // A model trained on one tonic writes every tune there; --key's tunes are moved afterwards.
    let tonic = checkpoint::read_tonic(&path)?;
    let mut key = a.key;
    let key_asked = key.is_some();
    match (&tonic, key.as_deref()) {
        (Some(t), Some(k)) => {
            let (written, shift) = sample::key_on_tonic(t, k)?;
            eprintln!(
                "tonic: this model writes every tune on {t} (train --tonic {t}); tunes for --key {k} are written in \
                 {written} and moved {shift:+} semitones"
            );
            (key, opts.transpose) = (Some(written), shift);
        }
        (Some(t), None) => eprintln!(
            "tonic: this model writes every tune on {t} (train --tonic {t}); each is moved to a key of its mode \
             drawn from the corpus's keys (--key picks one)"
        ),
        (None, _) => {}
    }
    // The corpus's style: for the header --meter/--key write, and the keys a one-tonic model's
    // tunes move to; read once, only when one of them needs it.
    let style = match &corpus {
        Some((_, s)) => Some(s.clone()),
        None if steer || tonic.is_some() => CorpusStyle::read(&a.model_dir).map_err(Error::Config)?,
        None => None,
    };
    if steer {
        let wishes = Wishes { meter: a.meter, key, title: a.title };
        for w in sample::steer(&mut opts, style.as_ref(), &wishes)? {
            eprintln!("warning: {w}");
        }
    }
    // --keep draws in batches of at most this many tunes.
    let max_batch = if a.keep.is_some() { sample::keep_batch(opts.count) } else { opts.count };
    let (cfg, file_bytes) = checkpoint::read_config(&path)?;
    let streams = opts.count.max(max_batch);
    let need = folklstm::memory::sampling_memory(&cfg, file_bytes, streams, opts.chars_per_tune());
    folklstm::memory::check_fits(need, "this sampling run", "ask for fewer (--count) or shorter (--len) tunes")?;
    eprintln!(
        "needs about {:.0} MiB of memory ({} tune(s) of {} characters)",
        need / (1024.0 * 1024.0),
        streams,
        opts.chars_per_tune()
    );
    let model = open_model(&path, a.device, a.threads)?;
    if a.midi.is_some() {
        model.require_abc("--midi")?;
    }
    for (flag, given) in
        [("--meter/--key/--title", steer), ("--keep", a.keep.is_some()), ("--corpus", corpus.is_some())]
    {
        if given {
            model.require_abc(flag)?;
        }
    }
    // Guided for ABC models unless --free; --guided on a model of plain text is an error.
    if a.guided {
        model.require_abc("--guided")?;
    }
    if a.shape {
        model.require_abc("--shape")?;
    }
    opts.guided = !a.free && model.is_abc();
    if opts.warm_up.is_none() && !a.no_warm_up && model.warms_up() {
        opts.warm_up = model.options().warm_up;
        eprintln!(
            "warm-up: on (the checkpoint was trained on {}-character windows; --no-warm-up starts from zero)",
            model.checkpoint().meta.batch.seq
        );
    }
    let index = corpus.as_ref().map(|(i, _)| i);
    let (tunes, short_by, stats) = match a.keep {
        None => {
            let (tunes, stats) = model.sample_with_stats(&opts)?;
            (tunes, 0, stats)
        }
        Some(what) => {
            let started = std::time::Instant::now();
            let mut judge = |t: &str| sample::keep_verdict(t, what, index);
            let kept = model.sample_kept(&opts, max_attempts, max_batch, &mut judge)?;
            eprintln!(
                "kept {}: {} of {} tunes drawn passed ({:.1}%) in {} batch(es), {:.1} s; {} failed the checker{}{}",
                kept.tunes.len(),
                kept.passed,
                kept.drawn,
                100.0 * kept.passed as f64 / kept.drawn.max(1) as f64,
                kept.batches,
                started.elapsed().as_secs_f64(),
                kept.invalid,
                if index.is_some() { format!(", {} were near copies", kept.copies) } else { String::new() },
                if what == sample::Keep::Shaped {
                    format!(", {} were valid but not in whole 4-bar phrases ending on the tonic", kept.unshaped)
                } else {
                    String::new()
                }
            );
            let short = opts.count - kept.tunes.len();
            (kept.tunes, short, kept.stats)
        }
    };
    // A model on one tonic asked for no key: each tune to a key drawn from the corpus's.
    let mut tunes = tunes;
    if let Some(t) = tonic.as_deref().filter(|_| !key_asked) {
        match &style {
            Some(style) => {
                let left = sample::move_to_drawn_keys(&mut tunes, &style.keys, rng_seed);
                if left > 0 {
                    eprintln!(
                        "tonic: {left} tune(s) left on {t}: not readable as one tune, or of a mode the corpus has no key in"
                    );
                }
            }
            None => eprintln!("tonic: no style.json beside the checkpoint, so the tunes stay on {t}"),
        }
    }
    // The checker's line is for ABC; other text has no tunes to check.
    let abc = model.is_abc();
    drop(model);
    // One tune at a time, to stdout and through the checker: no copy of all the text at once.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut n, mut valid) = (0, 0);
    if abc {
        // How the tunes were drawn, for `judge` (a comment: the checker skips it).
        let line = folklstm::abc::judge::provenance_line(opts.guided, opts.temperature, opts.top_k, rng_seed);
        writeln!(out, "{line}").map_err(|e| Error::io("stdout", e))?;
    }
    for (i, t) in tunes.iter().enumerate() {
        let sep = if i + 1 < tunes.len() { "\n\n" } else { "\n" };
        write!(out, "{t}{sep}").map_err(|e| Error::io("stdout", e))?;
        if abc {
            let (tn, tv) = folklstm::abc::count_valid(t);
            n += tn;
            valid += tv;
        }
    }
    out.flush().map_err(|e| Error::io("stdout", e))?;
    drop(out);
    if abc {
        eprintln!("checker: {}", folklstm::abc::cli::summary_line(n, valid));
        eprintln!("sampling: {}", sampling_line(opts.guided, &stats));
        match (opts.transpose, stats.untransposed) {
            (0, _) => {}
            (n, 0) => eprintln!("tonic: every tune moved {n:+} semitones to the --key asked"),
            (n, k) => eprintln!(
                "tonic: tunes moved {n:+} semitones to the --key asked, but {k} drawn could not be (not readable as \
                 one tune) and are left as the model wrote them"
            ),
        }
    }
    eprintln!("{}", speed_line(&stats));
    if let Some(index) = index {
        let files = vec![("sample".to_string(), tunes.join("\n\n"))];
        let verdicts = folklstm::abc::judge::judge(&files, Some(index));
        let summary = folklstm::abc::judge::summarize(&verdicts, Some(index));
        for line in folklstm::abc::cli::summary_lines(&summary) {
            eprintln!("judge: {line}");
        }
    }
    if let Some(midi) = &a.midi {
        let text = tunes.join("\n\n");
        let (written, skipped) = folklstm::abc::write_midi_lenient(&text, midi);
        for p in &written {
            eprintln!("wrote {}", p.display());
        }
        for (k, e) in &skipped {
            eprintln!("tune {k} has no MIDI file: {e}");
        }
    }
    if a.rng_seed.is_none() {
        eprintln!("(rng seed {rng_seed}: pass --rng-seed {rng_seed} to get these tunes again)");
    }
    if short_by > 0 {
        return Err(Error::Config(format!(
            "only {} of the {} tunes asked for passed --keep within --max-attempts {max_attempts} (printed above); \
             raise --max-attempts, lower --temperature, or keep less",
            opts.count - short_by,
            opts.count
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // Mesa's Vulkan loader prints "error: XDG_RUNTIME_DIR is invalid" on every device creation
    // when the variable is unset (a service, a container); point it at the temp folder.
    #[cfg(unix)]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: nothing else runs yet (no threads are started before this point), so no one
        // can read the environment while it is written.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => run_train(a),
        Command::Sample(a) => run_sample(a),
        Command::Eval(a) => run_eval(a),
        Command::Plot(a) => run_plot(a),
        Command::Bench(a) => run_bench(a),
        Command::Export(a) => run_export(a),
        Command::Import(a) => run_import(a),
        Command::Serve(a) => run_serve(a),
        Command::Check(a) => {
            let mut out = std::io::stdout().lock();
            folklstm::abc::cli::run_check(&a, &mut out).map(|code| ExitCode::from(code as u8)).map_err(Error::from)
        }
        Command::Judge(a) => {
            let mut out = std::io::stdout().lock();
            folklstm::abc::cli::run_judge(&a, &mut out).map(|code| ExitCode::from(code as u8)).map_err(Error::from)
        }
        Command::Midi(a) => folklstm::abc::cli::run_midi(&a)
            .map(|paths| {
                for p in paths {
                    println!("wrote {}", p.display());
                }
                ExitCode::SUCCESS
            })
            .map_err(Error::from),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
