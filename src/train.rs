//! The epoch loop: batches, steps on any [`Trainer`], validation, the CSV log, checkpoints,
//! resume, progress, Ctrl-C. Backend-agnostic: it never touches a tensor.

use crate::backend::{StepOptions, StepStats, Trainer};
use crate::checkpoint::{self, Checkpoint, PartialEpoch, TrainMeta};
use crate::corpus::{self, Batches, Vocab};
use crate::device::{self, Device};
use crate::error::{Error, Result};
use crate::model::{BatchConfig, ModelConfig, init_params};
use crate::rng::Key;
use crate::run::{self, CheckpointId, DirLock};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Corpus file or folder of `.abc` files.
    pub data: PathBuf,
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
    /// Adam's learning rate.
    pub lr: f32,
    /// Global-norm gradient clipping.
    pub clip: Option<f32>,
    /// Fraction of tunes held out for validation (0: none).
    pub val_fraction: f64,
    /// `None`: fresh run; `Some(None)`: resume from the latest checkpoint; `Some(Some(id))`: from that one.
    pub resume: Option<Option<String>>,
    /// CPU worker threads (None: one per core).
    pub threads: Option<usize>,
    /// Show a progress bar (else one plain line per epoch).
    pub progress_bar: bool,
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
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C (and SIGTERM) handler once per process: it only raises a flag that the
/// training loop checks after each step.
pub fn install_interrupt_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C while saving: the user insists.
                std::process::exit(130);
            }
        });
    });
}

/// Asks a running [`train`] to stop after its current step (as Ctrl-C does).
pub fn request_interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The corpus as a run needs it.
struct Prepared {
    /// The vocabulary over all the text.
    vocab: Vocab,
    /// Token ids of the training and the validation text.
    train: Vec<u32>,
    val: Vec<u32>,
    /// Fingerprint of the text (hex).
    fingerprint: String,
    /// Size of the text in bytes.
    bytes: usize,
}

/// Reads the corpus and cuts it as the run needs.
fn prepare_corpus(opts: &TrainOptions) -> Result<Prepared> {
    let (text, _files) = corpus::load_text(&opts.data)?;
    let vocab = Vocab::from_text(&text);
    if vocab.len() < 2 {
        return Err(Error::Corpus {
            path: opts.data.clone(),
            reason: format!("holds {} distinct character(s); a model needs at least 2", vocab.len()),
        });
    }
    if !(0.0..1.0).contains(&opts.val_fraction) {
        return Err(Error::Config(format!("--val-fraction {} must be in [0, 1)", opts.val_fraction)));
    }
    let (train, val) = corpus::split_train_val(&text, opts.val_fraction, opts.rng_seed);
    let fp = format!("{:016x}", corpus::fingerprint(&text));
    let ids = |t: &str| vocab.encode(t, "corpus");
    Ok(Prepared { vocab: vocab.clone(), train: ids(&train)?, val: ids(&val)?, fingerprint: fp, bytes: text.len() })
}

fn check_same<T: PartialEq + std::fmt::Debug>(what: &str, flag: Option<T>, saved: T) -> Result<T> {
    match flag {
        Some(v) if v != saved => Err(Error::Config(format!(
            "--{what} {v:?} differs from the checkpoint's {saved:?}; resume with the checkpoint's value or start a new --model-dir"
        ))),
        _ => Ok(saved),
    }
}

/// Bytes per MiB, for the memory messages.
const MIB: f64 = 1024.0 * 1024.0;

/// What a training run needs in memory, in bytes, part by part (see [`training_memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryNeed {
    /// Parameters, gradients and Adam's two moments (4 copies of the parameters).
    pub model: f64,
    /// The engine's buffers for one window (activations, cell states, dropout masks, logits).
    pub window: f64,
    /// Writing a checkpoint (copies of parameters and moments, their bytes, the serialised file),
    /// or reading one when resuming, whichever is more.
    pub checkpoint: f64,
    /// The corpus text, its token ids and the train/validation split.
    pub corpus: f64,
    /// The program itself: code, thread stacks, allocator slack, plots.
    pub program: f64,
}

impl MemoryNeed {
    /// The total, with 10% allowance for allocator rounding.
    pub fn total(&self) -> f64 {
        1.1 * (self.model + self.window + self.checkpoint + self.corpus + self.program)
    }

    /// "needs about 269 MiB of memory (parameters, gradients and Adam 29 MiB, ...)".
    pub fn describe(&self) -> String {
        format!(
            "needs about {:.0} MiB of memory (parameters, gradients and Adam {:.0} MiB, window buffers {:.0} MiB, \
             checkpoint writing {:.0} MiB, corpus {:.0} MiB)",
            self.total() / MIB,
            self.model / MIB,
            self.window / MIB,
            self.checkpoint / MIB,
            self.corpus / MIB
        )
    }
}

/// An upper estimate of a training run's peak memory: what the CPU engine allocates for
/// `cfg` and windows of `batch` (its buffers are sized once, before the first step), a
/// checkpoint being written, and a corpus of `corpus_bytes`. With the GPU engine most of the
/// window buffers live on the device instead; this counts them on the host anyway.
pub fn training_memory(cfg: &ModelConfig, batch: &BatchConfig, corpus_bytes: usize) -> MemoryNeed {
    const F: f64 = 4.0; // bytes per f32
    let p = crate::model::ParamLayout::new(cfg).total as f64;
    let (b, t) = (batch.batch as f64, batch.seq as f64);
    let (v, e, h, l) = (cfg.vocab as f64, cfg.embed as f64, cfg.hidden as f64, cfg.layers as f64);
    let n = b * t;
    let wide = e.max(h);
    // Per layer: gate activations [n, 4H], c and h [(T+1)B, H], tanh(c) [n, H], and with
    // dropout its mask and output [n, H] each.
    let dropout = if cfg.dropout > 0.0 { 2.0 } else { 0.0 };
    let per_layer = n * 4.0 * h + 2.0 * (t + 1.0) * b * h + n * h + dropout * n * h;
    let window = F
        * (l * per_layer
            + 2.0 * n * v // logits, d logits
            + 2.0 * n * wide // d output, two in turn
            + 2.0 * v * 4.0 * h // per-symbol projection and its gradient
            + 4.0 * l * b * h // carried state, d h0, d c0
            + 2.0 * 4.0 * h * wide // packed weights and GEMM panels
            + 2.0 * n) // token ids
        + 9.0 * n; // per-row loss and hit
    // Saving: parameters and both moments copied out of the engine (3P), as bytes (3P) and as
    // the serialised file (3P), plus the carried state. Resuming: the file (3P) and the
    // decoded checkpoint (3P).
    let checkpoint = F * (9.0 * p + 4.0 * l * b * h);
    MemoryNeed {
        model: F * 4.0 * p,
        window,
        checkpoint,
        // Text, train/validation copies (2 bytes per byte), token ids (4), transient copies
        // while line endings are normalised (2).
        corpus: 8.0 * corpus_bytes as f64,
        program: 16.0 * MIB,
    }
}

/// This machine's physical memory in bytes (`MemTotal` of `/proc/meminfo`), where known.
pub fn machine_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuses up front a run that could not fit in this machine's memory at all.
pub fn check_fits(need: f64, what: &str, advice: &str) -> Result<()> {
    match machine_memory() {
        Some(have) if need > have => Err(Error::Config(format!(
            "{what} needs about {:.0} MiB of memory, more than this machine's {:.0} MiB; {advice}",
            need / MIB,
            have / MIB
        ))),
        _ => Ok(()),
    }
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
    if opts.epochs == 0 {
        return Err(Error::Config(
            "--epochs 0: nothing to train; give the number of epochs to reach (at least 1)".into(),
        ));
    }
    if opts.freq == 0 {
        return Err(Error::Config("--freq 0: checkpoints need a frequency of at least 1 epoch".into()));
    }
    if !(opts.lr > 0.0 && opts.lr.is_finite()) {
        return Err(Error::Config(format!("--lr {} must be a positive number", opts.lr)));
    }
    if opts.clip.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
        return Err(Error::Config("--clip must be a positive number".into()));
    }
    let Prepared { vocab, train: train_ids, val: val_ids, fingerprint, bytes: corpus_bytes } = prepare_corpus(opts)?;
    let _lock = DirLock::acquire(&opts.model_dir)?;
    // Saves that a killed run left half-written: never read as checkpoints, but they hold space.
    let debris = run::remove_debris(&opts.model_dir, &opts.log_dir);
    if !debris.is_empty() {
        let _ = writeln!(log, "removed {} temporary file(s) left by an interrupted save", debris.len());
    }
    let mf = opts.model;
    // Start: a checkpoint, or a fresh model.
    let (cfg, batch, params, adam, mut meta, mut state, resumed_from) = match &opts.resume {
        Some(spec) => {
            let path = run::resolve(&opts.model_dir, spec.as_deref().unwrap_or("latest"))?;
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
            if ck.meta.corpus_fingerprint != fingerprint {
                return Err(bad(format!(
                    "was trained on another corpus ({}, fingerprint {}); {} has fingerprint {fingerprint}",
                    ck.meta.corpus,
                    ck.meta.corpus_fingerprint,
                    opts.data.display()
                )));
            }
            if ck.vocab != vocab {
                return Err(bad("its vocabulary differs from the corpus's".into()));
            }
            match &ck.adam {
                None => {
                    return Err(bad(
                        "holds weights only (no optimizer state), so training cannot resume exactly from it".into(),
                    ));
                }
                Some(a) if a.m.iter().chain(&a.v).any(|x| !x.is_finite()) => {
                    return Err(bad(
                        "its optimizer state holds NaN or infinite values (saved by a run that was diverging); \
                         resume from an earlier checkpoint"
                            .into(),
                    ));
                }
                Some(_) => {}
            }
            if ck.meta.val_fraction != opts.val_fraction || ck.meta.rng_seed != opts.rng_seed {
                return Err(bad(format!(
                    "was trained with --val-fraction {} --rng-seed {}; pass the same values to resume",
                    ck.meta.val_fraction, ck.meta.rng_seed
                )));
            }
            let c = ck.params.config;
            let cfg = ModelConfig {
                vocab: c.vocab,
                embed: check_same("embed", mf.embed, c.embed)?,
                hidden: check_same("hidden", mf.hidden, c.hidden)?,
                layers: check_same("layers", mf.layers, c.layers)?,
                dropout: check_same("dropout", mf.dropout, c.dropout)?,
            };
            let batch = BatchConfig {
                batch: check_same("batch", mf.batch, ck.meta.batch.batch)?,
                seq: check_same("seq", mf.seq, ck.meta.batch.seq)?,
            };
            let _ = writeln!(
                log,
                "resuming from {} (epoch {})",
                path.display(),
                CheckpointId { epoch: ck.meta.epoch, window: ck.meta.window }
            );
            (cfg, batch, ck.params, ck.adam, ck.meta, ck.state, Some(path))
        }
        None => {
            let existing = run::list(&opts.model_dir)?;
            if let Some((id, _)) = existing.last() {
                return Err(Error::Config(format!(
                    "{} already holds checkpoints (up to epoch {id}); continue them with --resume, or train into \
                     another folder, e.g. --model-dir runs/mine",
                    opts.model_dir.display()
                )));
            }
            let cfg = ModelConfig {
                vocab: vocab.len(),
                embed: mf.embed.unwrap_or(512),
                hidden: mf.hidden.unwrap_or(256),
                layers: mf.layers.unwrap_or(3),
                dropout: mf.dropout.unwrap_or(0.2),
            };
            cfg.validate()?;
            let batch = BatchConfig { batch: mf.batch.unwrap_or(16), seq: mf.seq.unwrap_or(64) };
            batch.validate()?;
            // Before anything of that size is allocated.
            let need = training_memory(&cfg, &batch, corpus_bytes);
            check_fits(need.total(), "this model", "lower --batch, --seq, --hidden, --embed or --layers")?;
            let meta = TrainMeta {
                epoch: 0,
                window: 0,
                step: 0,
                rng_seed: opts.rng_seed,
                batch,
                lr: opts.lr,
                clip: opts.clip,
                val_fraction: opts.val_fraction,
                corpus_fingerprint: fingerprint.clone(),
                corpus: opts.data.display().to_string(),
                partial: None,
            };
            (cfg, batch, init_params(&cfg, opts.rng_seed), None, meta, None, None)
        }
    };
    let need = training_memory(&cfg, &batch, corpus_bytes);
    check_fits(need.total(), "this run", "lower --batch, --seq, --hidden, --embed or --layers")?;
    let _ = writeln!(log, "{}", need.describe());
    let in_corpus = |e: Error, what: &str| match e {
        Error::Config(reason) => Error::Corpus { path: opts.data.clone(), reason: format!("{what}: {reason}") },
        e => e,
    };
    let train_b = Batches::new(train_ids, batch).map_err(|e| in_corpus(e, "training text"))?;
    let val_b = if val_ids.is_empty() {
        None
    } else {
        Some(Batches::new(val_ids, batch).map_err(|e| {
            in_corpus(e, "validation text (raise --val-fraction, lower --batch/--seq, or use --val-fraction 0)")
        })?)
    };
    let mut trainer = device::trainer(opts.device, params, adam, batch, opts.threads, log)?;
    let csv = opts.log_dir.join("training_log.csv");
    run::prepare_csv(&csv, meta.epoch)?;
    let key = Key::new(opts.rng_seed);
    let steps = train_b.len();
    let _ = writeln!(
        log,
        "training {} parameters on {} ({} chars, {} symbols, {} windows of {}x{} per epoch{}) with {}",
        crate::model::ParamLayout::new(&cfg).total,
        opts.data.display(),
        train_b.len() * batch.batch * batch.seq,
        cfg.vocab,
        steps,
        batch.batch,
        batch.seq,
        val_b.as_ref().map(|v| format!(", {} validation windows", v.len())).unwrap_or_default(),
        trainer.describe()
    );
    install_interrupt_handler();
    INTERRUPTED.store(false, Ordering::SeqCst);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut last_ck: Option<PathBuf> = None;
    // The newest checkpoint known to be good: the one resumed from, then each one saved.
    let mut good_ck: Option<PathBuf> = resumed_from;
    let resume_cmd = format!(
        "folklstm train --resume --model-dir {} (with the same --data, --rng-seed and --val-fraction)",
        opts.model_dir.display()
    );
    let clip_cmd = format!(
        "folklstm train --resume --clip 1.0 --model-dir {} (with the same --data, --rng-seed and --val-fraction)",
        opts.model_dir.display()
    );
    let intact = |good: &Option<PathBuf>| match good {
        Some(p) => format!("the last good checkpoint, {}, is intact", p.display()),
        None => "no checkpoint of this run was written yet".to_string(),
    };
    // What to do after a divergence.
    let advice = |good: &Option<PathBuf>| match good {
        Some(_) => {
            format!("Continue from it with global-norm clipping, {clip_cmd}, or with a smaller --lr than {}", opts.lr)
        }
        None => format!("Start again with --clip 1.0 (global-norm clipping) or a smaller --lr than {}", opts.lr),
    };
    // Writes a checkpoint, refusing to write non-finite numbers (a file that would only fail
    // to load) and saying what is intact when the disk refuses.
    let save = |trainer: &dyn Trainer,
                meta: &TrainMeta,
                state: Option<(Vec<f32>, Vec<f32>)>,
                good: &Option<PathBuf>|
     -> Result<PathBuf> {
        let id = CheckpointId { epoch: meta.epoch, window: meta.window };
        let path = run::path_for(&opts.model_dir, id);
        let (params, adam) = (trainer.params()?, trainer.adam_state()?);
        if params.data.iter().chain(&adam.m).chain(&adam.v).any(|x| !x.is_finite()) {
            return Err(Error::Diverged(format!(
                "epoch {}, global step {}: the parameters or Adam's moments hold NaN or infinite values, so {} was \
                 not written; {}. {}",
                epoch_label(meta),
                meta.step,
                path.display(),
                intact(good),
                advice(good)
            )));
        }
        let ck = Checkpoint { params, vocab: vocab.clone(), adam: Some(adam), state, meta: meta.clone() };
        checkpoint::save(&path, &ck).map_err(|e| match e {
            Error::Io { source, .. } => Error::Save {
                path: path.clone(),
                source,
                advice: format!(
                    "{}. Free some space (or make {} writable), then continue with: {}",
                    intact(good),
                    opts.model_dir.display(),
                    resume_cmd
                ),
            },
            e => e,
        })?;
        Ok(path)
    };
    while meta.epoch < opts.epochs {
        let epoch = meta.epoch + 1;
        let mut part = meta.partial.take().unwrap_or_default();
        let first = meta.window as usize;
        match state.take() {
            Some((h, c)) if first > 0 => trainer.set_state(&h, &c)?,
            _ => trainer.reset_state(),
        }
        let bar = progress_bar(opts.progress_bar, steps as u64, epoch, opts.epochs);
        bar.set_position(first as u64);
        let t0 = Instant::now();
        for k in first..steps {
            train_b.window(k, &mut x, &mut y);
            let so = StepOptions { lr: opts.lr, clip: opts.clip, key, counter: meta.step as u32 };
            let s: StepStats = trainer.train_step(&x, &y, &so)?;
            if !s.finite {
                bar.abandon();
                return Err(Error::Diverged(format!(
                    "epoch {epoch}, step {} of {steps} (global step {}): the loss or the gradient became NaN, infinite or too large for Adam \
                     (loss {}, gradient norm {:.3e}). This step's update was not applied and nothing more was saved; {}. {}",
                    k + 1,
                    meta.step + 1,
                    s.loss,
                    s.grad_norm,
                    intact(&good_ck),
                    advice(&good_ck)
                )));
            }
            meta.step += 1;
            part.loss_sum += s.loss as f64;
            part.correct += s.correct as u64;
            part.tokens += s.tokens as u64;
            let done = (k + 1 - first) as f64;
            let secs = part.seconds + t0.elapsed().as_secs_f64();
            bar.set_position(k as u64 + 1);
            bar.set_message(format!(
                "loss {:.4}  {:.0} chars/s",
                part.loss_sum / (k + 1) as f64,
                done * (batch.batch * batch.seq) as f64 / t0.elapsed().as_secs_f64().max(1e-9)
            ));
            if INTERRUPTED.load(Ordering::SeqCst) && k + 1 < steps {
                bar.abandon();
                meta.window = (k + 1) as u32;
                meta.partial = Some(PartialEpoch { seconds: secs, ..part });
                let st = trainer.state()?;
                let path = save(trainer.as_ref(), &meta, Some(st), &good_ck)?;
                let id = CheckpointId { epoch: meta.epoch, window: meta.window };
                return Ok(Outcome::Interrupted { checkpoint: path, id });
            }
        }
        let seconds = part.seconds + t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let loss = part.loss_sum / steps as f64;
        let acc = part.correct as f64 / part.tokens.max(1) as f64;
        let chars_per_s = (steps * batch.batch * batch.seq) as f64 / seconds.max(1e-9);
        let (val_loss, val_acc) = match &val_b {
            Some(vb) => {
                trainer.reset_state();
                let (mut ls, mut cor, mut tok) = (0.0f64, 0u64, 0u64);
                for k in 0..vb.len() {
                    vb.window(k, &mut x, &mut y);
                    let s = trainer.eval_step(&x, &y)?;
                    ls += s.loss as f64;
                    cor += s.correct as u64;
                    tok += s.tokens as u64;
                }
                (Some(ls / vb.len() as f64), Some(cor as f64 / tok.max(1) as f64))
            }
            None => (None, None),
        };
        meta.epoch = epoch;
        meta.window = 0;
        meta.partial = None;
        run::append_csv(
            &csv,
            &format!(
                "{epoch},{loss:.6},{acc:.6},{},{},{seconds:.3},{chars_per_s:.1}",
                fmt_opt(val_loss),
                fmt_opt(val_acc)
            ),
        )?;
        let _ = writeln!(
            log,
            "epoch {epoch}/{}  loss {loss:.4}  acc {acc:.4}{}  {seconds:.1} s  {chars_per_s:.0} chars/s",
            opts.epochs,
            match (val_loss, val_acc) {
                (Some(l), Some(a)) => format!("  val_loss {l:.4}  val_acc {a:.4}"),
                _ => String::new(),
            }
        );
        if epoch % opts.freq == 0 || epoch == opts.epochs {
            let path = save(trainer.as_ref(), &meta, None, &good_ck)?;
            let _ = writeln!(log, "saved {}", path.display());
            good_ck = Some(path.clone());
            last_ck = Some(path);
            // The curves so far, next to the log (a failure to draw is not worth stopping for).
            let svg = csv.with_extension("svg");
            if let Err(e) =
                crate::plot::read_log(&csv).and_then(|rows| crate::plot::plot_log(&rows, &svg, "folklstm training"))
            {
                let _ = writeln!(log, "note: could not draw {}: {e}", svg.display());
            }
        }
        if INTERRUPTED.load(Ordering::SeqCst) && epoch < opts.epochs {
            // Interrupted on the epoch's last step: the epoch is complete; make sure it is saved.
            let path = match &last_ck {
                Some(p) if p == &run::path_for(&opts.model_dir, CheckpointId { epoch, window: 0 }) => p.clone(),
                _ => save(trainer.as_ref(), &meta, None, &good_ck)?,
            };
            return Ok(Outcome::Interrupted { checkpoint: path, id: CheckpointId { epoch, window: 0 } });
        }
    }
    let checkpoint = match last_ck {
        Some(p) => p,
        None => {
            // Nothing left to train (resumed at or past --epochs): point at the newest save.
            run::resolve(&opts.model_dir, "latest")?
        }
    };
    Ok(Outcome::Finished { checkpoint })
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
