//! The epoch loop, in phases: start a model or resume one (`start`), train an epoch of
//! windows on any [`Trainer`] (`run_epoch`), validate (`validate`), log and save
//! (`Saver`). Backend-agnostic: it never touches a tensor. The run folder's files are
//! [`crate::run`]'s, the engine is [`crate::device`]'s choice, memory checks
//! [`crate::memory`]'s.

use crate::backend::{StepOptions, Trainer};
use crate::checkpoint::{self, BestRecord, Checkpoint, PartialEpoch, TrainMeta};
use crate::corpus::{self, Batches, Vocab};
use crate::device::{self, Device};
use crate::error::{Error, Result};
use crate::model::{BatchConfig, ModelConfig, init_params};
use crate::optim::LrSchedule;
use crate::rng::Key;
use crate::run::{self, CheckpointId, DirLock};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Model sizes given on the command line; `None` means the default (new run) or the
/// checkpoint's value (resume).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ModelFlags {
    /// `--embed`
    pub embed: Option<usize>,
    /// `--hidden`
    pub hidden: Option<usize>,
    /// `--layers`
    pub layers: Option<usize>,
    /// `--dropout`
    pub dropout: Option<f32>,
    /// `--batch`
    pub batch: Option<usize>,
    /// `--seq`
    pub seq: Option<usize>,
}

/// Everything `folklstm train` needs.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The corpus: files of any text and folders of `.abc` files, read in this order as one text.
    pub data: Vec<PathBuf>,
    /// Train until this many epochs are complete.
    pub epochs: u32,
    /// Save a checkpoint every `freq` epochs (and at the last).
    pub freq: u32,
    /// Where checkpoints go.
    pub model_dir: PathBuf,
    /// Where `training_log.csv` goes.
    pub log_dir: PathBuf,
    /// Seed of initialisation, dropout masks and the validation split.
    pub rng_seed: u64,
    /// Engine.
    pub device: Device,
    /// Model and window sizes.
    pub model: ModelFlags,
    /// Adam's learning rate (the peak of `schedule`, when there is one).
    pub lr: f32,
    /// How the learning rate changes over the run (None: constant `lr`). A resumed run
    /// continues its checkpoint's schedule.
    pub schedule: Option<LrSchedule>,
    /// After each validation, keep the checkpoint with the lowest validation loss as
    /// `weights.best.safetensors` (needs `val_fraction` > 0).
    pub keep_best: bool,
    /// Add copies of the training tunes (never the validation tunes) transposed by each
    /// semitone shift in this inclusive range but 0 (`--transpose -2..2`).
    pub transpose: Option<(i32, i32)>,
    /// Add a copy of each training tune (never a validation tune) in each of these keys that has
    /// its mode (`--transpose-keys G,D,Em,Am`, [`crate::abc::transpose::augment_to_keys`]);
    /// empty: none. Not with `transpose`.
    pub transpose_keys: Vec<String>,
    /// Reflow the corpus before anything else: every tune four complete bars a line, each part
    /// ending its line ([`crate::abc::reflow`]; a tune that would change is left as written).
    pub reflow: bool,
    /// With `reflow`: label each part of a tune that names none (`P:A`, `P:B`, ... and `Y:AB`,
    /// [`crate::abc::reflow::label_parts`]).
    pub label_parts: bool,
    /// With `reflow`: complete bars a line (`None`: [`crate::abc::reflow::BARS_PER_LINE`], 4).
    pub line_bars: Option<usize>,
    /// With `reflow`: space the bar lines of every second line of a part
    /// ([`crate::abc::reflow::mark_lines`]).
    pub mark_lines: bool,
    /// With `mark_lines`: mark the bar lines of each tune's last part as well
    /// ([`crate::abc::reflow::mark_last`]).
    pub mark_last: bool,
    /// With `reflow`: restate the key after each part label
    /// ([`crate::abc::reflow::restate_key`]).
    pub restate_key: bool,
    /// Transpose every tune (training and validation) to this tonic, keeping its mode
    /// (`--tonic G`, [`crate::abc::transpose::to_tonic`]); `sample --key` moves tunes to the key
    /// asked. Not with `transpose` or `transpose_keys`.
    pub tonic: Option<String>,
    /// Global-norm gradient clipping.
    pub clip: Option<f32>,
    /// Decoupled weight decay λ (AdamW, [`crate::optim::adamw_update`]): `None` is 0 for a new
    /// run and the checkpoint's value when resuming (a different value is refused).
    pub weight_decay: Option<f32>,
    /// Weight drop on the recurrent weights ([`crate::cpu::Dropout::weight_drop`], CPU only):
    /// `None` is 0 for a new run and the checkpoint's value when resuming.
    pub weight_drop: Option<f32>,
    /// Fraction of tunes held out for validation (0: none).
    pub val_fraction: f64,
    /// `None`: fresh run; `Some(None)`: resume from the latest checkpoint; `Some(Some(id))`: from that one.
    pub resume: Option<Option<String>>,
    /// A fresh run that starts from this checkpoint's weights instead of random ones
    /// (fine-tuning, e.g. a model `folklstm import` wrote): its sizes and vocabulary, new
    /// optimizer state, epoch 0. Not with `resume`.
    pub init_from: Option<PathBuf>,
    /// CPU worker threads (None: one per core).
    pub threads: Option<usize>,
    /// Show a progress bar (else one plain line per epoch).
    pub progress_bar: bool,
    /// Stop as Ctrl-C does after this many training steps of this invocation (`--stop-after`),
    /// saving a checkpoint to resume from; None: train to `epochs`.
    pub stop_after: Option<u64>,
}

/// How a training run ended without error.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// All epochs done.
    Finished {
        /// The last checkpoint written.
        checkpoint: PathBuf,
    },
    /// Stopped by Ctrl-C after saving.
    Interrupted {
        /// The checkpoint to resume from.
        checkpoint: PathBuf,
        /// Its id (for `--resume ID`).
        id: CheckpointId,
    },
    /// Stopped after the `--stop-after` steps, or by the callback of [`train_with`], after saving.
    Stopped {
        /// The checkpoint to resume from.
        checkpoint: PathBuf,
        /// Its id (for `--resume ID`).
        id: CheckpointId,
    },
}

impl Outcome {
    /// The checkpoint the run ended with (the last one written, or the one to resume from).
    pub fn checkpoint(&self) -> &std::path::Path {
        match self {
            Outcome::Finished { checkpoint }
            | Outcome::Interrupted { checkpoint, .. }
            | Outcome::Stopped { checkpoint, .. } => checkpoint,
        }
    }
}

/// What one epoch measured, as the CSV log records it; given to the callback of [`train_with`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// The epoch just completed (1-based).
    pub epoch: u32,
    /// The epoch training runs to.
    pub epochs: u32,
    /// Mean training loss over the epoch's windows, nats per character.
    pub loss: f64,
    /// Fraction of training positions predicted right (argmax).
    pub accuracy: f64,
    /// Validation loss, when text is held out (`val_fraction` > 0).
    pub val_loss: Option<f64>,
    /// Validation accuracy, when text is held out.
    pub val_accuracy: Option<f64>,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
}

/// What the callback of [`train_with`] asks for after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Train the next epoch.
    Continue,
    /// Save this epoch (if it is not saved already) and stop: the run ends as
    /// [`Outcome::Stopped`], and `resume` continues it.
    Stop,
}

/// The corpus as a run needs it.
struct Prepared {
    /// The vocabulary over all the text.
    vocab: Vocab,
    /// The training and the validation text.
    train: String,
    val: String,
    /// Fingerprint of the text (hex).
    fingerprint: String,
    /// Size of the text in bytes.
    bytes: usize,
    /// The header layout, meters and keys of its ABC tunes (None when it holds none), saved
    /// beside the checkpoints for `sample --meter/--key`.
    style: Option<crate::abc::prime::CorpusStyle>,
    /// Where the corpus came from, for messages.
    label: PathBuf,
    /// What the run should be told about the corpus (files read, transposed copies).
    notes: Vec<String>,
}

/// The corpus's parts as one name for messages: the path, or the paths joined by " + ".
fn data_label(data: &[PathBuf]) -> PathBuf {
    PathBuf::from(data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + "))
}

/// Complete bars a reflowed line: the asked number, or [`crate::abc::reflow::BARS_PER_LINE`].
pub fn line_bars(asked: Option<usize>) -> usize {
    asked.unwrap_or(crate::abc::reflow::BARS_PER_LINE)
}

/// The reflowed text's layout from the training flags (or a checkpoint's record of them).
pub fn layout(
    label_parts: bool,
    line_bars: Option<usize>,
    mark_lines: bool,
    mark_last: bool,
    restate_key: bool,
) -> crate::abc::reflow::Layout {
    crate::abc::reflow::Layout {
        line_bars: self::line_bars(line_bars),
        label_parts,
        mark_lines,
        mark_last,
        restate_key,
    }
}

/// The keys of `--transpose-keys`, read as the judge reads a `K:` value, each once.
pub fn transpose_keys(names: &[String]) -> Result<Vec<crate::abc::judge::KeyName>> {
    let mut keys: Vec<crate::abc::judge::KeyName> = Vec::new();
    for n in names {
        let k = crate::abc::judge::KeyName::parse(n).ok_or_else(|| {
            Error::Config(format!("--transpose-keys: {n:?} is not a key; write a tonic and a mode, e.g. G,D,Em,Am"))
        })?;
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    Ok(keys)
}

/// `text` with every tune on the tonic `name` (`--tonic`, [`crate::abc::transpose::to_tonic`]).
pub fn retone(text: &str, name: &str) -> Result<crate::abc::transpose::Retoned> {
    let key = crate::abc::judge::KeyName::parse(name).filter(|k| k.mode == "major").ok_or_else(|| {
        Error::Config(format!("--tonic {name:?} is not a tonic; write a note name, e.g. G, D, F#, Bb"))
    })?;
    Ok(crate::abc::transpose::to_tonic(text, key.tonic, &key.name))
}

/// Reads the corpus and cuts it as the run needs.
fn prepare_corpus(opts: &TrainOptions) -> Result<Prepared> {
    let label = data_label(&opts.data);
    let (text, files) = corpus::load_texts(&opts.data)?;
    // The files' fingerprint, before any rewriting: a resume on other files is refused as such.
    let fp = format!("{:016x}", corpus::fingerprint(&text));
    let mut notes = Vec::new();
    let text = if opts.reflow {
        let r = crate::abc::reflow::reflow_text(
            &text,
            layout(opts.label_parts, opts.line_bars, opts.mark_lines, opts.mark_last, opts.restate_key),
        );
        notes.push(r.describe());
        r.text
    } else {
        text
    };
    // The style (header layout, meters, keys) of the tunes as written: `sample --key` and the
    // keys tunes are moved back to come from it, not from the one tonic below.
    let style = Some(crate::abc::prime::CorpusStyle::learn([text.as_str()])).filter(|s| !s.is_empty());
    let text = match &opts.tonic {
        Some(name) => {
            let r = retone(&text, name)?;
            notes.push(r.describe());
            r.text
        }
        None => text,
    };
    if files.len() > 1 {
        let units = corpus::split_units(&text).len();
        notes.push(format!("corpus: {} files, {units} tunes (or paragraphs)", files.len()));
    }
    let vocab = Vocab::from_text(&text);
    if vocab.len() < 2 {
        return Err(Error::Corpus {
            path: label.clone(),
            reason: format!("holds {} distinct character(s); a model needs at least 2", vocab.len()),
        });
    }
    if !(0.0..1.0).contains(&opts.val_fraction) {
        return Err(Error::Config(format!("--val-fraction {} must be in [0, 1)", opts.val_fraction)));
    }
    let (mut train, val) = corpus::split_train_val(&text, opts.val_fraction, opts.rng_seed);
    let mut vocab = vocab;
    let copies = match (opts.transpose, opts.transpose_keys.is_empty()) {
        (Some((lo, hi)), _) => Some(crate::abc::transpose::augment(&train, lo, hi)),
        (None, false) => Some(crate::abc::transpose::augment_to_keys(&train, &transpose_keys(&opts.transpose_keys)?)),
        (None, true) => None,
    };
    if let Some(copies) = copies {
        notes.push(copies.describe());
        while !train.is_empty() && !train.ends_with("\n\n") {
            train.push('\n');
        }
        train.push_str(&copies.text);
        // Transposed spellings may use characters the corpus lacks (a flat where it had none).
        vocab = Vocab::from_chars(vocab.chars().iter().copied().chain(copies.text.chars()));
    }
    let bytes = train.len() + val.len();
    Ok(Prepared { vocab, train, val, fingerprint: fp, bytes, style, label, notes })
}

impl Prepared {
    /// Token ids of the training and validation text in `vocab`, the model's (the corpus's own
    /// for a fresh model; a checkpoint's may hold more characters, in another order).
    fn encode(&self, vocab: &Vocab) -> Result<(Vec<u32>, Vec<u32>)> {
        let what = format!("corpus {}", self.label.display());
        Ok((vocab.encode(&self.train, &what)?, vocab.encode(&self.val, &what)?))
    }
}

fn check_same<T: PartialEq + std::fmt::Debug>(what: &str, flag: Option<T>, saved: T) -> Result<T> {
    match flag {
        Some(v) if v != saved => Err(Error::Config(format!(
            "--{what} {v:?} differs from the checkpoint's {saved:?}; resume with the checkpoint's value or start a new --model-dir"
        ))),
        _ => Ok(saved),
    }
}

/// A checkpoint's sizes `c`, refusing size flags that name others, with the given dropout.
fn same_sizes(mf: &ModelFlags, c: &ModelConfig, dropout: f32) -> Result<ModelConfig> {
    Ok(ModelConfig {
        vocab: c.vocab,
        embed: check_same("embed", mf.embed, c.embed)?,
        hidden: check_same("hidden", mf.hidden, c.hidden)?,
        layers: check_same("layers", mf.layers, c.layers)?,
        dropout,
    })
}

/// "3" at an epoch boundary, "3+17" in the middle of epoch 4.
fn epoch_label(meta: &TrainMeta) -> CheckpointId {
    CheckpointId { epoch: meta.epoch, window: meta.window }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.6}")).unwrap_or_default()
}

/// Runs `folklstm train`. Messages go to `log`; the result says how it ended.
pub fn train(opts: &TrainOptions, log: &mut dyn Write) -> Result<Outcome> {
    train_with(opts, log, &mut |_| Flow::Continue)
}

/// [`train`], calling `on_epoch` after each epoch with what it measured; it may stop the run.
///
/// The phases: check the options, read the corpus, lock the run folder, `start` (a fresh
/// model or a checkpoint), then per epoch `run_epoch`, `validate`, the CSV row, `on_epoch`
/// and, every `--freq` epochs (or when `on_epoch` stops the run), a save (`Saver`).
pub fn train_with(
    opts: &TrainOptions,
    log: &mut dyn Write,
    on_epoch: &mut dyn FnMut(&EpochReport) -> Flow,
) -> Result<Outcome> {
    check_options(opts)?;
    let corpus = prepare_corpus(opts)?;
    for n in &corpus.notes {
        let _ = writeln!(log, "{n}");
    }
    let _lock = DirLock::acquire(&opts.model_dir)?;
    // Saves that a killed run left half-written: never read as checkpoints, but they hold space.
    let debris = run::remove_debris(&opts.model_dir, &opts.log_dir);
    if !debris.is_empty() {
        let _ = writeln!(log, "removed {} temporary file(s) left by an interrupted save", debris.len());
    }
    let Start { cfg, batch, params, vocab, adam, mut meta, mut state, resumed_from } = start(opts, &corpus, log)?;
    if let Some(style) = &corpus.style {
        let path = opts.model_dir.join(crate::abc::prime::STYLE_FILE);
        crate::files::write_atomic(&path, style.to_json().as_bytes())?;
    }
    let (train_ids, val_ids) = corpus.encode(&vocab)?;
    if opts.keep_best && val_ids.is_empty() {
        return Err(Error::Config(format!(
            "--keep-best needs validation text, but --val-fraction {} held nothing out of {} (a single tune, \
             paragraph or line); give a corpus of several tunes, or leave out --keep-best",
            opts.val_fraction,
            corpus.label.display()
        )));
    }
    if opts.val_fraction > 0.0 && val_ids.is_empty() {
        let _ = writeln!(
            log,
            "note: --val-fraction {} held nothing out: the corpus is a single tune, paragraph or line",
            opts.val_fraction
        );
    }
    let need = crate::memory::training_memory(&cfg, &batch, corpus.bytes, meta.weight_drop > 0.0);
    crate::memory::check_fits(need.total(), "this run", "lower --batch, --seq, --hidden, --embed or --layers")?;
    let _ = writeln!(log, "{}", need.describe());
    let (train_b, val_b) = windows(opts, train_ids, val_ids, batch)?;
    // Weight drop runs on the CPU engine only: refused before anything starts on the GPU, and
    // `auto` picks the CPU for it.
    let device = match opts.device {
        Device::Gpu if meta.weight_drop > 0.0 => {
            return Err(Error::Config(format!(
                "--weight-drop runs on the CPU engine only{}: train with --device cpu (or auto), or without --weight-drop",
                if resumed_from.is_some() { " (this run was started with it)" } else { "" }
            )));
        }
        Device::Auto if meta.weight_drop > 0.0 => {
            let _ = writeln!(log, "weight drop runs on the CPU engine: training on the CPU");
            Device::Cpu
        }
        d => d,
    };
    let mut trainer = device::trainer(device, params, adam, batch, opts.threads, log)?;
    let csv = opts.log_dir.join("training_log.csv");
    run::prepare_csv(&csv, meta.epoch)?;
    let _ = writeln!(
        log,
        "training {} parameters on {} ({} chars, {} symbols, {} windows of {}x{} per epoch{}) with {}",
        crate::model::ParamLayout::new(&cfg).total,
        corpus.label.display(),
        train_b.len() * batch.batch * batch.seq,
        cfg.vocab,
        train_b.len(),
        batch.batch,
        batch.seq,
        val_b.as_ref().map(|v| format!(", {} validation windows", v.len())).unwrap_or_default(),
        trainer.describe()
    );
    if let Some(s) = &meta.schedule {
        let _ = writeln!(log, "learning rate: {}", s.describe());
    }
    if meta.weight_drop > 0.0 {
        let _ = writeln!(log, "weight drop: {} of the recurrent weights dropped per window", meta.weight_drop);
    }
    if meta.weight_decay > 0.0 {
        let _ = writeln!(
            log,
            "weight decay: {} (AdamW: each update shrinks every weight by 1 - lr x {0})",
            meta.weight_decay
        );
    }
    if opts.keep_best {
        keep_better_best(opts, &mut meta, log);
    }
    crate::interrupt::install_handler();
    crate::interrupt::clear();
    let mut saver = Saver { opts, vocab: &vocab, good: resumed_from };
    let mut stop = Stop { steps_left: opts.stop_after };
    let mut last_ck: Option<PathBuf> = None;
    while meta.epoch < opts.epochs {
        let epoch = meta.epoch + 1;
        let part = match run_epoch(trainer.as_mut(), &train_b, &mut meta, state.take(), &saver, &mut stop)? {
            EpochEnd::Complete(part) => part,
            EpochEnd::Stopped { checkpoint, id } => return Ok(stop.outcome(checkpoint, id)),
        };
        let lr = step_lr(opts, &meta, train_b.len(), meta.step.saturating_sub(1));
        let steps = train_b.len();
        let loss = part.loss_sum / steps as f64;
        let acc = part.correct as f64 / part.tokens.max(1) as f64;
        let chars_per_s = (steps * batch.batch * batch.seq) as f64 / part.seconds.max(1e-9);
        let (val_loss, val_acc) = match &val_b {
            Some(vb) => {
                let (l, a) = validate(trainer.as_mut(), vb)?;
                (Some(l), Some(a))
            }
            None => (None, None),
        };
        meta.epoch = epoch;
        meta.window = 0;
        meta.partial = None;
        run::append_csv(
            &csv,
            &format!(
                "{epoch},{loss:.6},{acc:.6},{},{},{:.3},{chars_per_s:.1},{lr}",
                fmt_opt(val_loss),
                fmt_opt(val_acc),
                part.seconds
            ),
        )?;
        if let Some(l) = val_loss.filter(|_| opts.keep_best)
            && meta.best.is_none_or(|b| l < b.val_loss)
        {
            meta.best = Some(BestRecord { epoch, val_loss: l });
            let path = opts.model_dir.join(run::BEST_FILE);
            saver.save_at(&path, trainer.as_ref(), &meta, None)?;
            let _ = writeln!(log, "best so far (val_loss {l:.4}): saved {}", path.display());
        }
        let _ = writeln!(
            log,
            "epoch {epoch}/{}  loss {loss:.4}  acc {acc:.4}{}  {:.1} s  {chars_per_s:.0} chars/s",
            opts.epochs,
            match (val_loss, val_acc) {
                (Some(l), Some(a)) => format!("  val_loss {l:.4}  val_acc {a:.4}"),
                _ => String::new(),
            },
            part.seconds
        );
        let report = EpochReport {
            epoch,
            epochs: opts.epochs,
            loss,
            accuracy: acc,
            val_loss,
            val_accuracy: val_acc,
            seconds: part.seconds,
            lr: lr as f64,
        };
        let flow = on_epoch(&report);
        if epoch % opts.freq == 0 || epoch == opts.epochs {
            let path = saver.save(trainer.as_ref(), &meta, None)?;
            let _ = writeln!(log, "saved {}", path.display());
            saver.good = Some(path.clone());
            last_ck = Some(path);
            // The curves so far, next to the log (a failure to draw is not worth stopping for).
            let svg = csv.with_extension("svg");
            if let Err(e) =
                crate::plot::read_log(&csv).and_then(|rows| crate::plot::plot_log(&rows, &svg, "folklstm training"))
            {
                let _ = writeln!(log, "note: could not draw {}: {e}", svg.display());
            }
        }
        if (stop.requested() || flow == Flow::Stop) && epoch < opts.epochs {
            // Stopped on the epoch's last step: the epoch is complete; make sure it is saved.
            let id = CheckpointId { epoch, window: 0 };
            let checkpoint = match &last_ck {
                Some(p) if p == &run::path_for(&opts.model_dir, id) => p.clone(),
                _ => saver.save(trainer.as_ref(), &meta, None)?,
            };
            return Ok(stop.outcome(checkpoint, id));
        }
    }
    let checkpoint = match last_ck {
        Some(p) => p,
        // Nothing left to train (resumed at or past --epochs): point at the newest save.
        None => run::resolve(&opts.model_dir, "latest")?,
    };
    Ok(Outcome::Finished { checkpoint })
}

/// Refuses options no run can use, before anything is read.
fn check_options(opts: &TrainOptions) -> Result<()> {
    if opts.epochs == 0 {
        return Err(Error::Config(
            "--epochs 0: nothing to train; give the number of epochs to reach (at least 1)".into(),
        ));
    }
    if opts.freq == 0 {
        return Err(Error::Config("--freq 0: checkpoints need a frequency of at least 1 epoch".into()));
    }
    if opts.stop_after == Some(0) {
        return Err(Error::Config(
            "--stop-after 0: give the number of steps to train before stopping (at least 1)".into(),
        ));
    }
    if !(opts.lr > 0.0 && opts.lr.is_finite()) {
        return Err(Error::Config(format!("--lr {} must be a positive number", opts.lr)));
    }
    if opts.clip.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
        return Err(Error::Config("--clip must be a positive number".into()));
    }
    if let Some(wd) = opts.weight_decay
        && !(wd >= 0.0 && wd.is_finite() && opts.lr * wd < 1.0)
    {
        return Err(Error::Config(format!(
            "--weight-decay {wd}: give a number from 0 (off) up to below 1 / --lr (each update shrinks the \
             weights by the factor 1 - lr x decay; 0.01 to 0.1 is usual)"
        )));
    }
    if let Some(p) = opts.weight_drop
        && !(0.0..1.0).contains(&p)
    {
        return Err(Error::Config(format!(
            "--weight-drop {p}: give the probability of dropping a recurrent weight, from 0 (off) up to below 1 \
             (0.2 to 0.5 is usual)"
        )));
    }
    if opts.line_bars.is_some() && !opts.reflow {
        return Err(Error::Config(
            "--line-bars sets the bars a line of the reflowed text: add --reflow (or drop --line-bars)".into(),
        ));
    }
    if opts.line_bars == Some(0) {
        return Err(Error::Config(
            "--line-bars 0: give the complete bars a reflowed line holds, 1 or more (4 is the default)".into(),
        ));
    }
    if opts.mark_lines && !opts.reflow {
        return Err(Error::Config(
            "--mark-lines marks lines of the reflowed text: add --reflow (or drop --mark-lines)".into(),
        ));
    }
    if opts.mark_last && !opts.mark_lines {
        return Err(Error::Config(
            "--mark-last marks the last part beside the lines --mark-lines marks: add --reflow --mark-lines (or drop --mark-last)"
                .into(),
        ));
    }
    if opts.tonic.is_some() && (opts.transpose.is_some() || !opts.transpose_keys.is_empty()) {
        return Err(Error::Config(
            "--tonic writes every tune on one tonic, which transposed copies would undo: drop --transpose/--transpose-keys or --tonic"
                .into(),
        ));
    }
    if opts.restate_key && !opts.reflow {
        return Err(Error::Config(
            "--restate-key restates the key after the reflowed text's part labels: add --reflow --label-parts (or drop --restate-key)"
                .into(),
        ));
    }
    if opts.label_parts && !opts.reflow {
        return Err(Error::Config(
            "--label-parts labels parts on the reflowed lines: add --reflow (or drop --label-parts)".into(),
        ));
    }
    if opts.keep_best && opts.val_fraction <= 0.0 {
        return Err(Error::Config(
            "--keep-best keeps the checkpoint with the lowest validation loss, so it needs validation text: \
             add --val-fraction (e.g. 0.1)"
                .into(),
        ));
    }
    if let Some(s) = &opts.schedule {
        s.validate().map_err(Error::Config)?;
    }
    if let Some((lo, hi)) = opts.transpose
        && (lo > hi || lo < -crate::abc::transpose::MAX_SHIFT || hi > crate::abc::transpose::MAX_SHIFT)
    {
        return Err(Error::Config(format!(
            "--transpose {lo}..{hi}: give a range LOW..HIGH of semitones with LOW <= HIGH, within -{m}..{m}",
            m = crate::abc::transpose::MAX_SHIFT
        )));
    }
    if !opts.transpose_keys.is_empty() {
        if opts.transpose.is_some() {
            return Err(Error::Config(
                "--transpose adds every shift of a range, --transpose-keys the shifts to the listed keys; pass one of them"
                    .into(),
            ));
        }
        transpose_keys(&opts.transpose_keys)?;
    }
    if opts.resume.is_some() && opts.init_from.is_some() {
        return Err(Error::Config(
            "--resume continues a run, --init-from starts a new one from a checkpoint's weights; pass one of them"
                .into(),
        ));
    }
    Ok(())
}

/// Where a run starts: the model, the optimizer state and the position in training.
struct Start {
    cfg: ModelConfig,
    batch: BatchConfig,
    params: crate::model::Params<f32>,
    /// The model's characters.
    vocab: Vocab,
    adam: Option<crate::optim::AdamState>,
    meta: TrainMeta,
    /// The carried (h, c) of a mid-epoch save.
    state: Option<(Vec<f32>, Vec<f32>)>,
    /// The checkpoint resumed from, if any.
    resumed_from: Option<PathBuf>,
}

/// The first phase: a checkpoint of this run to resume from (checked against the corpus and
/// the flags), or a fresh model in an empty folder.
fn start(opts: &TrainOptions, corpus: &Prepared, log: &mut dyn Write) -> Result<Start> {
    match (&opts.resume, &opts.init_from) {
        (Some(spec), _) => resume(opts, corpus, spec.as_deref().unwrap_or("latest"), log),
        (None, Some(path)) => init_from(opts, corpus, path, log),
        (None, None) => fresh(opts, corpus),
    }
}

/// The learning rate of global step `step` (0-based): the run's schedule, else `--lr`.
fn step_lr(opts: &TrainOptions, meta: &TrainMeta, steps_per_epoch: usize, step: u64) -> f32 {
    match &meta.schedule {
        Some(s) => s.lr_at(step, steps_per_epoch as u64),
        None => opts.lr,
    }
}

/// With `--keep-best`: when the folder's `weights.best.safetensors` (of this corpus) holds a
/// lower validation loss than `meta` records (a resume from an earlier epoch), that record
/// stands, so a worse epoch never replaces it.
fn keep_better_best(opts: &TrainOptions, meta: &mut TrainMeta, log: &mut dyn Write) {
    let path = opts.model_dir.join(run::BEST_FILE);
    if !path.is_file() {
        return;
    }
    match checkpoint::load(&path) {
        Ok(ck) if ck.meta.corpus_fingerprint == meta.corpus_fingerprint => {
            if let Some(b) = ck.meta.best
                && meta.best.is_none_or(|m| b.val_loss < m.val_loss)
            {
                meta.best = Some(b);
            }
            if let Some(b) = meta.best {
                let _ =
                    writeln!(log, "best so far: epoch {} (val_loss {:.4}), {}", b.epoch, b.val_loss, path.display());
            }
        }
        Ok(_) => {
            let _ = writeln!(log, "note: {} is of another corpus; a new best will replace it", path.display());
        }
        Err(e) => {
            let _ = writeln!(log, "note: {e}; a new best will replace it");
        }
    }
}

/// Refuses to start a new run in a folder that holds checkpoints.
fn check_empty(opts: &TrainOptions) -> Result<()> {
    if opts.model_dir.join(run::BEST_FILE).is_file() {
        return Err(Error::Config(format!(
            "{} already holds a {} of an earlier run; continue that run with --resume, or train into \
             another folder, e.g. --model-dir runs/mine",
            opts.model_dir.display(),
            run::BEST_FILE
        )));
    }
    if let Some((id, _)) = run::list(&opts.model_dir)?.last() {
        return Err(Error::Config(format!(
            "{} already holds checkpoints (up to epoch {id}); continue them with --resume, or train into \
             another folder, e.g. --model-dir runs/mine",
            opts.model_dir.display()
        )));
    }
    Ok(())
}

/// The position of a new run at epoch 0.
fn new_meta(opts: &TrainOptions, corpus: &Prepared, batch: BatchConfig) -> TrainMeta {
    TrainMeta {
        epoch: 0,
        window: 0,
        step: 0,
        rng_seed: opts.rng_seed,
        batch,
        lr: opts.lr,
        clip: opts.clip,
        val_fraction: opts.val_fraction,
        corpus_fingerprint: corpus.fingerprint.clone(),
        corpus: corpus.label.display().to_string(),
        partial: None,
        schedule: opts.schedule,
        transpose: opts.transpose,
        transpose_keys: opts.transpose_keys.clone(),
        reflow: opts.reflow,
        label_parts: opts.label_parts,
        mark_lines: opts.mark_lines,
        mark_last: opts.mark_last,
        restate_key: opts.restate_key,
        tonic: opts.tonic.clone(),
        line_bars: opts.line_bars.filter(|&n| n != crate::abc::reflow::BARS_PER_LINE),
        weight_decay: opts.weight_decay.unwrap_or(0.0),
        weight_drop: opts.weight_drop.unwrap_or(0.0),
        best: None,
    }
}

/// The window shape of a new run: the flags', or the reference design's.
fn new_batch(mf: &ModelFlags) -> Result<BatchConfig> {
    let batch = BatchConfig { batch: mf.batch.unwrap_or(16), seq: mf.seq.unwrap_or(64) };
    batch.validate()?;
    Ok(batch)
}

/// A new run from the weights of the checkpoint at `path` (fine-tuning): its sizes (flags that
/// name others are refused) and its vocabulary, which must hold every character of the corpus;
/// `--dropout` may differ, as it is not part of the weights.
fn init_from(opts: &TrainOptions, corpus: &Prepared, path: &std::path::Path, log: &mut dyn Write) -> Result<Start> {
    let mf = opts.model;
    check_empty(opts)?;
    let ck = checkpoint::load(path)?;
    let c = ck.params.config;
    let cfg = same_sizes(&mf, &c, mf.dropout.unwrap_or(c.dropout))?;
    cfg.validate()?;
    let batch = new_batch(&mf)?;
    let mut params = ck.params;
    params.config = cfg;
    let _ = writeln!(log, "starting from the weights of {} ({} characters)", path.display(), ck.vocab.len());
    let meta = new_meta(opts, corpus, batch);
    Ok(Start { cfg, batch, params, vocab: ck.vocab, adam: None, meta, state: None, resumed_from: None })
}

/// A fresh model, with the flags' sizes (or the reference design's), in a folder that holds no
/// checkpoints yet.
fn fresh(opts: &TrainOptions, corpus: &Prepared) -> Result<Start> {
    let mf = opts.model;
    check_empty(opts)?;
    let cfg = ModelConfig {
        vocab: corpus.vocab.len(),
        embed: mf.embed.unwrap_or(512),
        hidden: mf.hidden.unwrap_or(256),
        layers: mf.layers.unwrap_or(3),
        dropout: mf.dropout.unwrap_or(0.2),
    };
    cfg.validate()?;
    let batch = new_batch(&mf)?;
    // Before anything of that size is allocated.
    let need = crate::memory::training_memory(&cfg, &batch, corpus.bytes, opts.weight_drop.is_some_and(|p| p > 0.0));
    crate::memory::check_fits(need.total(), "this model", "lower --batch, --seq, --hidden, --embed or --layers")?;
    let meta = new_meta(opts, corpus, batch);
    let params = init_params(&cfg, opts.rng_seed);
    Ok(Start { cfg, batch, params, vocab: corpus.vocab.clone(), adam: None, meta, state: None, resumed_from: None })
}

/// The checkpoint `spec` of this run, checked: the same corpus, vocabulary, split and seed,
/// an optimizer state to continue, and sizes the flags agree with.
fn resume(opts: &TrainOptions, corpus: &Prepared, spec: &str, log: &mut dyn Write) -> Result<Start> {
    let mf = opts.model;
    let path = run::resolve(&opts.model_dir, spec)?;
    let ck = checkpoint::load(&path).map_err(|e| match e {
        // A damaged newest file: say which older ones there are to resume from.
        Error::Checkpoint { path, reason } => {
            let older: Vec<String> = run::list(&opts.model_dir)
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, p)| *p != path)
                .map(|(id, _)| id.to_string())
                .collect();
            let reason = match older.last() {
                Some(last) => format!(
                    "{reason}\n  to resume from an earlier checkpoint, pass --resume {last} (there are: {})",
                    older.join(", ")
                ),
                None => reason,
            };
            Error::Checkpoint { path, reason }
        }
        e => e,
    })?;
    let bad = |reason: String| Error::Checkpoint { path: path.clone(), reason };
    if ck.meta.corpus_fingerprint != corpus.fingerprint {
        return Err(bad(format!(
            "was trained on another corpus ({}, fingerprint {}); {} has fingerprint {}",
            ck.meta.corpus,
            ck.meta.corpus_fingerprint,
            corpus.label.display(),
            corpus.fingerprint
        )));
    }
    // Before the vocabulary: a text on another tonic may lack some of its characters.
    if ck.meta.tonic != opts.tonic {
        let says = ck.meta.tonic.as_ref().map_or("no --tonic".to_string(), |t| format!("--tonic {t}"));
        return Err(bad(format!("was trained with {says}; pass the same to resume (it decides the training text)")));
    }
    // A run started from another model's weights (--init-from) keeps that model's vocabulary,
    // which may hold more characters than the corpus, in another order.
    if !ck.vocab.covers(&corpus.vocab) {
        return Err(bad("its vocabulary lacks characters of the corpus".into()));
    }
    match &ck.adam {
        None => {
            return Err(bad(
                "holds weights only (no optimizer state), so training cannot resume exactly from it".into()
            ));
        }
        Some(a) if a.m.iter().chain(&a.v).any(|x| !x.is_finite()) => {
            return Err(bad("its optimizer state holds NaN or infinite values (saved by a run that was diverging); \
                 resume from an earlier checkpoint"
                .into()));
        }
        Some(_) => {}
    }
    if ck.meta.val_fraction != opts.val_fraction || ck.meta.rng_seed != opts.rng_seed {
        return Err(bad(format!(
            "was trained with --val-fraction {} --rng-seed {}; pass the same values to resume",
            ck.meta.val_fraction, ck.meta.rng_seed
        )));
    }
    // The transposed copies: a range of shifts or a list of keys (never both).
    if (ck.meta.transpose, &ck.meta.transpose_keys) != (opts.transpose, &opts.transpose_keys) {
        let says = match (ck.meta.transpose, ck.meta.transpose_keys.as_slice()) {
            (Some((lo, hi)), _) => format!("--transpose {lo}..{hi}"),
            (None, []) => "no --transpose or --transpose-keys".to_string(),
            (None, keys) => format!("--transpose-keys {}", keys.join(",")),
        };
        return Err(bad(format!("was trained with {says}; pass the same to resume (it decides the training text)")));
    }
    // The flags that rewrite the training text.
    for (flag, was, now) in [
        ("--reflow", ck.meta.reflow, opts.reflow),
        ("--label-parts", ck.meta.label_parts, opts.label_parts),
        ("--mark-lines", ck.meta.mark_lines, opts.mark_lines),
        ("--mark-last", ck.meta.mark_last, opts.mark_last),
        ("--restate-key", ck.meta.restate_key, opts.restate_key),
    ] {
        if was != now {
            let says = if was { flag.to_string() } else { format!("no {flag}") };
            return Err(bad(format!(
                "was trained with {says}; pass the same to resume (it decides the training text)"
            )));
        }
    }
    let (was, now) = (line_bars(ck.meta.line_bars), line_bars(opts.line_bars));
    if ck.meta.reflow && was != now {
        return Err(bad(format!(
            "was reflowed to {was} bars a line; pass --line-bars {was} to resume (it decides the training text)"
        )));
    }
    if opts.weight_decay.is_some_and(|wd| wd != ck.meta.weight_decay) {
        return Err(bad(format!(
            "was trained with --weight-decay {}; resume without --weight-decay, or with that value",
            ck.meta.weight_decay
        )));
    }
    if opts.weight_drop.is_some_and(|p| p != ck.meta.weight_drop) {
        return Err(bad(format!(
            "was trained with --weight-drop {}; resume without --weight-drop, or with that value",
            ck.meta.weight_drop
        )));
    }
    // The schedule is the checkpoint's (its epochs too, so the curve goes on where it was);
    // flags may repeat it but not change it.
    if let Some(s) = opts.schedule {
        let same = ck.meta.schedule.is_some_and(|c| LrSchedule { epochs: c.epochs, ..s } == c);
        if !same {
            return Err(bad(format!(
                "was trained with the learning rate {}; resume without the --lr-schedule, --lr-min, --warmup, \
                 --lr-step-epochs and --lr-gamma flags to continue it",
                ck.meta.schedule.map_or(format!("constant at --lr {}", ck.meta.lr), |c| c.describe())
            )));
        }
    }
    let c = ck.params.config;
    let cfg = same_sizes(&mf, &c, check_same("dropout", mf.dropout, c.dropout)?)?;
    let batch = BatchConfig {
        batch: check_same("batch", mf.batch, ck.meta.batch.batch)?,
        seq: check_same("seq", mf.seq, ck.meta.batch.seq)?,
    };
    let _ = writeln!(log, "resuming from {} (epoch {})", path.display(), epoch_label(&ck.meta));
    Ok(Start {
        cfg,
        batch,
        params: ck.params,
        vocab: ck.vocab,
        adam: ck.adam,
        meta: ck.meta,
        state: ck.state,
        resumed_from: Some(path),
    })
}

/// The training and (when there is validation text) validation windows.
fn windows(
    opts: &TrainOptions,
    train: Vec<u32>,
    val: Vec<u32>,
    batch: BatchConfig,
) -> Result<(Batches, Option<Batches>)> {
    let in_corpus = |e: Error, what: &str| match e {
        Error::Config(reason) => Error::Corpus { path: data_label(&opts.data), reason: format!("{what}: {reason}") },
        e => e,
    };
    let train_b = Batches::new(train, batch).map_err(|e| in_corpus(e, "training text"))?;
    let val_b = if val.is_empty() {
        None
    } else {
        Some(Batches::new(val, batch).map_err(|e| {
            in_corpus(e, "validation text (raise --val-fraction, lower --batch/--seq, or use --val-fraction 0)")
        })?)
    };
    Ok((train_b, val_b))
}

/// When to stop before `--epochs`: Ctrl-C, or `--stop-after` steps done in this run.
struct Stop {
    steps_left: Option<u64>,
}

impl Stop {
    /// Counts one step done.
    fn step_done(&mut self) {
        if let Some(n) = &mut self.steps_left {
            *n = n.saturating_sub(1);
        }
    }

    /// Steps that may still run before a `--stop-after` stop (at least 1).
    fn room(&self) -> usize {
        self.steps_left.map_or(usize::MAX, |n| n.max(1).min(usize::MAX as u64) as usize)
    }

    /// Whether the run should stop now (and save where it is).
    fn requested(&self) -> bool {
        crate::interrupt::requested() || self.steps_left == Some(0)
    }

    /// How a run that stopped ended, saved at `checkpoint`.
    fn outcome(&self, checkpoint: PathBuf, id: CheckpointId) -> Outcome {
        if crate::interrupt::requested() {
            Outcome::Interrupted { checkpoint, id }
        } else {
            Outcome::Stopped { checkpoint, id }
        }
    }
}

/// How an epoch ended.
enum EpochEnd {
    /// All its windows trained: the sums of the epoch.
    Complete(PartialEpoch),
    /// Stopped in the middle ([`Stop`]) and saved there.
    Stopped { checkpoint: PathBuf, id: CheckpointId },
}

/// One epoch of training steps, from the window `meta.window` (a mid-epoch save) with its
/// carried `state`, to the end of the epoch, or to a stop in its middle, saved there.
fn run_epoch(
    trainer: &mut dyn Trainer,
    train_b: &Batches,
    meta: &mut TrainMeta,
    state: Option<(Vec<f32>, Vec<f32>)>,
    saver: &Saver,
    stop: &mut Stop,
) -> Result<EpochEnd> {
    let opts = saver.opts;
    let batch = train_b.config();
    let key = Key::new(opts.rng_seed);
    let steps = train_b.len();
    let epoch = meta.epoch + 1;
    let mut part = meta.partial.take().unwrap_or_default();
    let first = meta.window as usize;
    match state {
        Some((h, c)) if first > 0 => trainer.set_state(&h, &c)?,
        _ => trainer.reset_state(),
    }
    let bar = progress_bar(opts.progress_bar, steps as u64, epoch, opts.epochs);
    bar.set_position(first as u64);
    // Steps are handed to the engine a few at a time where it gains from queueing them (the
    // GPU submits step n+1 before reading step n's numbers); one at a time on the CPU. A stop
    // (Ctrl-C, --stop-after) takes effect after the steps already handed over.
    let depth = trainer.queue_depth().max(1);
    let mut windows: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    let t0 = Instant::now();
    let mut k = first;
    while k < steps {
        let m = depth.min(steps - k).min(stop.room());
        windows.resize_with(m, Default::default);
        let mut so = Vec::with_capacity(m);
        for (j, (x, y)) in windows.iter_mut().enumerate() {
            train_b.window(k + j, x, y);
            let step = meta.step + j as u64;
            so.push(StepOptions {
                lr: step_lr(opts, meta, steps, step),
                clip: opts.clip,
                weight_decay: meta.weight_decay,
                weight_drop: meta.weight_drop,
                key,
                counter: step as u32,
            });
        }
        let refs: Vec<(&[u32], &[u32])> = windows.iter().map(|(x, y)| (&x[..], &y[..])).collect();
        let stats = trainer.train_steps(&refs, &so)?;
        for s in stats {
            if !s.in_range {
                bar.abandon();
                return Err(Error::Diverged(format!(
                    "epoch {epoch}, step {} of {steps} (global step {}): the loss or the gradient became NaN, infinite or too large for Adam \
                     (loss {}, gradient norm {:.3e}). This step's update was not applied and nothing more was saved; {}. {}",
                    k + 1,
                    meta.step + 1,
                    s.loss,
                    s.grad_norm,
                    saver.intact(),
                    saver.advice()
                )));
            }
            meta.step += 1;
            stop.step_done();
            part.loss_sum += s.loss as f64;
            part.correct += s.correct as u64;
            part.tokens += s.tokens as u64;
            k += 1;
        }
        let done = (k - first) as f64;
        bar.set_position(k as u64);
        bar.set_message(format!(
            "loss {:.4}  {:.0} chars/s",
            part.loss_sum / k as f64,
            done * (batch.batch * batch.seq) as f64 / t0.elapsed().as_secs_f64().max(1e-9)
        ));
        if stop.requested() && k < steps {
            bar.abandon();
            meta.window = k as u32;
            meta.partial = Some(PartialEpoch { seconds: part.seconds + t0.elapsed().as_secs_f64(), ..part });
            let st = trainer.state()?;
            let checkpoint = saver.save(trainer, meta, Some(st))?;
            return Ok(EpochEnd::Stopped { checkpoint, id: epoch_label(meta) });
        }
    }
    part.seconds += t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(EpochEnd::Complete(part))
}

/// Loss and accuracy over the validation windows, dropout off, from a zero state.
fn validate(trainer: &mut dyn Trainer, val_b: &Batches) -> Result<(f64, f64)> {
    trainer.reset_state();
    let (mut ls, mut cor, mut tok) = (0.0f64, 0u64, 0u64);
    let depth = trainer.queue_depth().max(1);
    for first in (0..val_b.len()).step_by(depth) {
        let windows: Vec<(Vec<u32>, Vec<u32>)> = (first..(first + depth).min(val_b.len()))
            .map(|k| {
                let (mut x, mut y) = (Vec::new(), Vec::new());
                val_b.window(k, &mut x, &mut y);
                (x, y)
            })
            .collect();
        let refs: Vec<(&[u32], &[u32])> = windows.iter().map(|(x, y)| (x.as_slice(), y.as_slice())).collect();
        for s in trainer.eval_steps(&refs)? {
            ls += s.loss as f64;
            cor += s.correct as u64;
            tok += s.tokens as u64;
        }
    }
    Ok((ls / val_b.len() as f64, cor as f64 / tok.max(1) as f64))
}

/// Writes the run's checkpoints, and knows what to say when something goes wrong: which
/// checkpoint is intact and how to continue.
struct Saver<'a> {
    opts: &'a TrainOptions,
    vocab: &'a Vocab,
    /// The newest checkpoint known to be good: the one resumed from, then each epoch save.
    good: Option<PathBuf>,
}

impl Saver<'_> {
    fn resume_cmd(&self, extra: &str) -> String {
        format!(
            "folklstm train --resume{extra} --model-dir {} (with the same --data, --rng-seed, --val-fraction, --transpose or --transpose-keys and the --reflow flags)",
            self.opts.model_dir.display()
        )
    }

    /// What is intact on disk.
    fn intact(&self) -> String {
        match &self.good {
            Some(p) => format!("the last good checkpoint, {}, is intact", p.display()),
            None => "no checkpoint of this run was written yet".to_string(),
        }
    }

    /// What to do after a divergence.
    fn advice(&self) -> String {
        let lr = self.opts.lr;
        match &self.good {
            Some(_) => format!(
                "Continue from it with global-norm clipping, {}, or with a smaller --lr than {lr}",
                self.resume_cmd(" --clip 1.0")
            ),
            None => format!("Start again with --clip 1.0 (global-norm clipping) or a smaller --lr than {lr}"),
        }
    }

    /// Writes a checkpoint at `meta`'s position, refusing to write non-finite numbers (a file
    /// that would only fail to load) and saying what is intact when the disk refuses.
    fn save(&self, trainer: &dyn Trainer, meta: &TrainMeta, state: Option<(Vec<f32>, Vec<f32>)>) -> Result<PathBuf> {
        let path = run::path_for(&self.opts.model_dir, epoch_label(meta));
        self.save_at(&path, trainer, meta, state)?;
        Ok(path)
    }

    /// [`Saver::save`] to the file `path`.
    fn save_at(
        &self,
        path: &std::path::Path,
        trainer: &dyn Trainer,
        meta: &TrainMeta,
        state: Option<(Vec<f32>, Vec<f32>)>,
    ) -> Result<()> {
        let (params, adam) = (trainer.params()?, trainer.adam_state()?);
        if params.data.iter().chain(&adam.m).chain(&adam.v).any(|x| !x.is_finite()) {
            return Err(Error::Diverged(format!(
                "epoch {}, global step {}: the parameters or Adam's moments hold NaN or infinite values, so {} was \
                 not written; {}. {}",
                epoch_label(meta),
                meta.step,
                path.display(),
                self.intact(),
                self.advice()
            )));
        }
        let ck = Checkpoint { params, vocab: self.vocab.clone(), adam: Some(adam), state, meta: meta.clone() };
        checkpoint::save(path, &ck).map_err(|e| match e {
            Error::Io { source, .. } => Error::Save {
                path: path.to_path_buf(),
                source,
                advice: format!(
                    "{}. Free some space (or make {} writable), then continue with: {}",
                    self.intact(),
                    self.opts.model_dir.display(),
                    self.resume_cmd("")
                ),
            },
            e => e,
        })
    }
}

fn progress_bar(enabled: bool, len: u64, epoch: u32, epochs: u32) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(&format!(
        "epoch {epoch}/{epochs} [{{bar:30}}] {{pos}}/{{len}} {{msg}} eta {{eta}}"
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}
