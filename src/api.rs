//! The facade: a trained [`Model`] to sample from and evaluate with, and a [`Training`] run
//! with a per-epoch callback. Everything here is a few lines over the modules that do the
//! work ([`crate::sample`], [`crate::eval`], [`crate::train`], [`crate::checkpoint`],
//! [`crate::torch`], [`crate::device`]); the command line uses the same calls.
//!
//! ```
//! use folklstm::{Model, SampleOptions};
//!
//! let model = Model::shipped()?;
//! let opts = SampleOptions { seed_text: Some("X: 1\n".into()), len: 300, rng_seed: 4, ..Default::default() };
//! let text = model.sample(&opts)?;
//! assert!(text.starts_with("X: 1\n") && text.chars().count() == 5 + 300);
//! # Ok::<(), folklstm::Error>(())
//! ```

use crate::backend::Sampler;
use crate::checkpoint::{self, Checkpoint};
use crate::corpus::Vocab;
use crate::device::{self, Device};
use crate::error::{Error, Result};
use crate::eval::EvalReport;
use crate::model::{ModelConfig, Params};
use crate::sample::{self, SampleOptions};
use crate::train::{EpochReport, Flow, ModelFlags, Outcome, TrainOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The model the repository ships: `model/weights.100.safetensors`, the reference design
/// trained 100 epochs on the Nottingham jigs (see the README).
pub const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/model/weights.100.safetensors");

/// Parallel streams [`Model::evaluate`] cuts a text into: the CLI's default, as in training.
pub const EVAL_STREAMS: usize = 16;

/// A trained model: its weights and vocabulary, and the engine that runs it (the CPU unless
/// [`Model::on`] says otherwise).
#[derive(Clone, Debug)]
pub struct Model {
    /// Weights only: no optimizer state, no carried training state.
    checkpoint: Checkpoint,
    device: Device,
    threads: Option<usize>,
}

impl Model {
    /// Loads a checkpoint file (one `train` saved, `export` wrote, or `import` made). Only the
    /// weights are kept; sampling and evaluation need nothing else.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let mut ck = checkpoint::load(path.as_ref())?;
        ck.adam = None;
        ck.state = None;
        Ok(Model::from_checkpoint(ck))
    }

    /// The model the repository ships ([`SHIPPED`]).
    pub fn shipped() -> Result<Model> {
        Model::load(SHIPPED)
    }

    /// A model from a checkpoint already in memory.
    pub fn from_checkpoint(checkpoint: Checkpoint) -> Model {
        Model { checkpoint, device: Device::Cpu, threads: None }
    }

    /// Reads the state dict of PyTorch's `CharLSTM` (a safetensors file with the vocabulary
    /// in its metadata; see [`crate::torch`]), to train with dropout 0.2.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("m.safetensors");
    /// let model = folklstm::Model::shipped()?;
    /// model.export_torch(&path)?;
    /// let back = folklstm::Model::import_torch(&path)?;
    /// assert_eq!(back.params().data, model.params().data);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn import_torch(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        Ok(Model::from_checkpoint(crate::torch::import(path, 0.2)?.into_checkpoint(path)))
    }

    /// Writes the model as the state dict of PyTorch's `CharLSTM` ([`crate::torch`]).
    pub fn export_torch(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::torch::export(path.as_ref(), self.params(), self.vocab())
    }

    /// Writes the model as a weights-only checkpoint (what `folklstm export` writes): enough to
    /// sample and evaluate, and to fine-tune with `train --init-from`, not to resume.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        checkpoint::save(path.as_ref(), &self.weights_only())
    }

    /// The model's checkpoint without training state: weights, vocabulary, settings.
    fn weights_only(&self) -> Checkpoint {
        let mut ck = self.checkpoint.clone();
        ck.meta.window = 0;
        ck.meta.partial = None;
        ck.adam = None;
        ck.state = None;
        ck
    }

    /// [`Model::save`] with the weights stored as f16 ([`checkpoint::save_f16`]): half the
    /// file, for sampling and evaluating; not for fine-tuning at full precision.
    pub fn save_f16(&self, path: impl AsRef<Path>) -> Result<()> {
        checkpoint::save_f16(path.as_ref(), &self.weights_only())
    }

    /// The same model on another engine: [`Device::Gpu`], or [`Device::Auto`] (the GPU when
    /// there is one; a line on stderr says when it falls back to the CPU).
    pub fn on(mut self, device: Device) -> Model {
        self.device = device;
        self
    }

    /// CPU worker threads (default: one per core).
    pub fn threads(mut self, threads: usize) -> Model {
        self.threads = Some(threads);
        self
    }

    /// The network's sizes.
    pub fn config(&self) -> &ModelConfig {
        &self.checkpoint.params.config
    }

    /// The characters the model reads and writes.
    pub fn vocab(&self) -> &Vocab {
        &self.checkpoint.vocab
    }

    /// The weights.
    pub fn params(&self) -> &Params<f32> {
        &self.checkpoint.params
    }

    /// The checkpoint the model was loaded from (weights and training metadata).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Whether the model writes ABC tunes ([`Vocab::looks_like_abc`]): what tune-by-tune
    /// sampling, the checker and MIDI need.
    pub fn is_abc(&self) -> bool {
        self.vocab().looks_like_abc()
    }

    /// `Ok` for a model of ABC tunes; else an error saying that `what` (a flag or a method)
    /// needs one.
    pub fn require_abc(&self, what: &str) -> Result<()> {
        let missing = self.vocab().missing_for_abc();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::Config(format!(
            "{what} works on ABC tunes, but this model was not trained on ABC (its vocabulary lacks {}); \
             it writes plain text, so choose the length with --len",
            missing.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")
        )))
    }

    /// Whether sampling this model starts with a warm-up ([`SampleOptions::warm_up`]): for an
    /// ABC model trained on windows longer than 64 characters ([`sample::warm_up_by_default`]).
    pub fn warms_up(&self) -> bool {
        self.is_abc() && sample::warm_up_by_default(self.checkpoint.meta.batch.seq)
    }

    /// The sampling options `folklstm sample` starts from for this model: guided for a model
    /// of ABC tunes (every tune valid by construction), free for any other text; warmed up
    /// where [`Model::warms_up`]; 512 characters of one stream at temperature 1
    /// ([`SampleOptions::default`] is always free and cold).
    ///
    /// ```no_run
    /// # fn main() -> folklstm::Result<()> {
    /// let model = folklstm::Model::shipped()?;
    /// let tunes = model.sample_all(&folklstm::SampleOptions { count: 4, len: 2000, ..model.options() })?;
    /// # Ok(()) }
    /// ```
    pub fn options(&self) -> SampleOptions {
        SampleOptions {
            guided: self.is_abc(),
            warm_up: self.warms_up().then(|| sample::WARM_UP.to_string()),
            ..SampleOptions::default()
        }
    }

    /// A sampler on the model's engine.
    fn sampler(&self) -> Result<Box<dyn Sampler>> {
        device::sampler(self.device, self.params(), self.threads, &mut std::io::stderr())
    }

    /// Generates `opts.count` texts as one batch, each the seed followed by `opts.len`
    /// characters (fewer with `one_tune`, which only an ABC model accepts). The same options
    /// give the same texts as `folklstm sample` with the same flags.
    pub fn sample_all(&self, opts: &SampleOptions) -> Result<Vec<String>> {
        self.sample_with_stats(opts).map(|(texts, _)| texts)
    }

    /// [`Model::sample_all`], also saying what guided sampling ([`SampleOptions::guided`],
    /// ABC models only) saw: [`sample::GuideStats`].
    pub fn sample_with_stats(&self, opts: &SampleOptions) -> Result<(Vec<String>, sample::GuideStats)> {
        opts.validate()?;
        if opts.one_tune {
            self.require_abc("--one-tune")?;
        }
        if opts.guided {
            self.require_abc("guided sampling (--guided)")?;
        }
        sample::generate_with_stats(self.sampler()?.as_mut(), self.vocab(), opts)
    }

    /// Draws batches until `opts.count` texts pass `judge` (at most `max_attempts` drawn in
    /// all, at most `max_batch` at once): [`sample::generate_kept`] on this model's engine.
    pub fn sample_kept(
        &self,
        opts: &SampleOptions,
        max_attempts: usize,
        max_batch: usize,
        judge: &mut dyn FnMut(&str) -> sample::Verdict,
    ) -> Result<sample::Kept> {
        opts.validate()?;
        if opts.one_tune {
            self.require_abc("--one-tune")?;
        }
        sample::generate_kept(self.sampler()?.as_mut(), self.vocab(), opts, max_attempts, max_batch, judge)
    }

    /// Generates one text ([`Model::sample_all`] with `count` 1).
    pub fn sample(&self, opts: &SampleOptions) -> Result<String> {
        let opts = SampleOptions { count: 1, ..opts.clone() };
        Ok(self.sample_all(&opts)?.pop().unwrap_or_default())
    }

    /// Tunes one after another, each generated when the iterator is advanced, without end
    /// (take as many as you need). Tune `k` is the one `folklstm sample --one-tune --rng-seed
    /// S+k` prints for `opts.rng_seed` = S; `opts.len` bounds each tune's length and
    /// `opts.count` is not used. Only for a model of ABC tunes.
    ///
    /// ```
    /// use folklstm::{Model, SampleOptions};
    ///
    /// let model = Model::shipped()?;
    /// let opts = SampleOptions { seed_text: Some("X: 1\n".into()), len: 1000, ..Default::default() };
    /// for tune in model.tunes(&opts)?.take(2) {
    ///     let tune = tune?;
    ///     assert!(tune.starts_with("X: 1\n") && !tune[1..].contains("\nX:"));
    /// }
    /// # Ok::<(), folklstm::Error>(())
    /// ```
    pub fn tunes(&self, opts: &SampleOptions) -> Result<Tunes<'_>> {
        self.require_abc("tunes()")?;
        let opts = SampleOptions { count: 1, one_tune: true, ..opts.clone() };
        opts.validate()?;
        Ok(Tunes { model: self, sampler: self.sampler()?, opts, next: 0 })
    }

    /// Scores `text` ([`crate::eval::evaluate`], [`EVAL_STREAMS`] streams): the mean loss in
    /// nats and bits per character and the accuracy of the next-character prediction.
    /// Characters outside the vocabulary are skipped and counted.
    ///
    /// ```
    /// let model = folklstm::Model::shipped()?;
    /// let tune = "X: 1\nT:Tune\nM:6/8\nK:G\n|:GAB c2A|BAG d3:|\n";
    /// let r = model.evaluate(tune)?;
    /// assert!(r.nats > 0.0 && r.accuracy > 0.0 && r.unknown == 0);
    /// # Ok::<(), folklstm::Error>(())
    /// ```
    pub fn evaluate(&self, text: &str) -> Result<EvalReport> {
        self.evaluate_streams(text, EVAL_STREAMS)
    }

    /// [`Model::evaluate`] with the text cut into `streams` pieces (1 to
    /// [`sample::MAX_COUNT`]).
    pub fn evaluate_streams(&self, text: &str, streams: usize) -> Result<EvalReport> {
        if streams == 0 || streams > sample::MAX_COUNT {
            return Err(Error::Config(format!("--streams {streams} must be between 1 and {}", sample::MAX_COUNT)));
        }
        crate::eval::evaluate(self.sampler()?.as_mut(), self.vocab(), text, streams)
    }
}

/// The tunes of [`Model::tunes`]: an endless iterator, one tune per step.
pub struct Tunes<'a> {
    model: &'a Model,
    sampler: Box<dyn Sampler>,
    opts: SampleOptions,
    next: u64,
}

impl Iterator for Tunes<'_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        let opts = SampleOptions { rng_seed: self.opts.rng_seed.wrapping_add(self.next), ..self.opts.clone() };
        self.next += 1;
        Some(
            sample::generate(self.sampler.as_mut(), self.model.vocab(), &opts).map(|mut v| v.pop().unwrap_or_default()),
        )
    }
}

/// A training run: a corpus (any UTF-8 text, or a folder of `.abc` files), a folder for its
/// checkpoints and log, sizes and settings (the command line's defaults unless set), and
/// [`Training::run`] with a callback after each epoch.
///
/// ```
/// use folklstm::{Flow, Model, Training};
///
/// let dir = tempfile::tempdir()?;
/// let poem = dir.path().join("poem.txt");
/// std::fs::write(&poem, "The sea is calm tonight.\nThe tide is full, the moon lies fair\n".repeat(40))?;
/// let mut losses = Vec::new();
/// let outcome = Training::new(&poem, dir.path().join("run"))
///     .sizes(16, 32, 1)
///     .window(4, 32)
///     .epochs(3)
///     .run(|e| {
///         losses.push(e.loss);
///         if e.loss < 0.5 { Flow::Stop } else { Flow::Continue }
///     })?;
/// assert!(losses.len() == 3 && losses[2] < losses[0]);
/// let model = Model::load(outcome.checkpoint())?;
/// assert!(!model.is_abc());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Training {
    opts: TrainOptions,
    log: Box<dyn Write>,
}

impl Training {
    /// A new run on the corpus `data`, saving into `model_dir` (checkpoints, and the CSV log
    /// and its plot): 100 epochs of the reference design (E=512, H=256, L=3, dropout 0.2,
    /// windows of 16x64, Adam at 1e-3), a checkpoint every 10 epochs and after the last, on
    /// the CPU, seeded with 0. The methods below change that.
    pub fn new(data: impl Into<PathBuf>, model_dir: impl Into<PathBuf>) -> Training {
        let model_dir = model_dir.into();
        Training {
            opts: TrainOptions {
                data: vec![data.into()],
                epochs: 100,
                freq: 10,
                log_dir: model_dir.clone(),
                model_dir,
                rng_seed: 0,
                device: Device::Cpu,
                model: ModelFlags::default(),
                lr: 1e-3,
                schedule: None,
                keep_best: false,
                transpose: None,
                transpose_keys: Vec::new(),
                reflow: false,
                label_parts: false,
                line_bars: None,
                mark_lines: false,
                mark_last: false,
                restate_key: false,
                tonic: None,
                clip: None,
                weight_decay: None,
                weight_drop: None,
                val_fraction: 0.0,
                resume: None,
                init_from: None,
                threads: None,
                progress_bar: false,
                stop_after: None,
            },
            log: Box::new(std::io::sink()),
        }
    }

    /// Train until this many epochs are complete.
    pub fn epochs(mut self, epochs: u32) -> Training {
        self.opts.epochs = epochs;
        self
    }

    /// Save a checkpoint every `n` epochs (and after the last, and when the callback stops).
    pub fn save_every(mut self, n: u32) -> Training {
        self.opts.freq = n;
        self
    }

    /// Embedding width, LSTM width and number of LSTM layers.
    pub fn sizes(mut self, embed: usize, hidden: usize, layers: usize) -> Training {
        self.opts.model =
            ModelFlags { embed: Some(embed), hidden: Some(hidden), layers: Some(layers), ..self.opts.model };
        self
    }

    /// Training windows: `batch` parallel streams, `seq` characters each (steps of truncated BPTT).
    pub fn window(mut self, batch: usize, seq: usize) -> Training {
        self.opts.model = ModelFlags { batch: Some(batch), seq: Some(seq), ..self.opts.model };
        self
    }

    /// Dropout after each LSTM layer.
    pub fn dropout(mut self, p: f32) -> Training {
        self.opts.model.dropout = Some(p);
        self
    }

    /// Adam's learning rate.
    pub fn learning_rate(mut self, lr: f32) -> Training {
        self.opts.lr = lr;
        self
    }

    /// Change the learning rate over the run by this schedule ([`crate::optim::LrSchedule`];
    /// its `lr` is the peak).
    pub fn lr_schedule(mut self, schedule: crate::optim::LrSchedule) -> Training {
        self.opts.lr = schedule.lr;
        self.opts.schedule = Some(schedule);
        self
    }

    /// Keep the checkpoint with the lowest validation loss as `weights.best.safetensors`
    /// (with [`Training::validation`]); [`crate::run::resolve`] finds it as `best`.
    pub fn keep_best(mut self) -> Training {
        self.opts.keep_best = true;
        self
    }

    /// Clip the global gradient norm to this value before each update.
    pub fn clip(mut self, norm: f32) -> Training {
        self.opts.clip = Some(norm);
        self
    }

    /// Decoupled weight decay λ (AdamW): each update also shrinks every weight by the factor
    /// `1 - lr·λ` ([`crate::optim::adamw_update`]).
    pub fn weight_decay(mut self, lambda: f32) -> Training {
        self.opts.weight_decay = Some(lambda);
        self
    }

    /// Reflow the corpus four complete bars to a line, each part ending its line, before
    /// training (`train --reflow`, [`crate::abc::reflow`]).
    pub fn reflow(mut self) -> Training {
        self.opts.reflow = true;
        self
    }

    /// Reflow the corpus and label the parts of every tune that names none (`P:A`, `P:B`, ...
    /// before the parts, `Y:AB` in the header): `train --reflow --label-parts`,
    /// [`crate::abc::reflow::label_parts`].
    pub fn label_parts(mut self) -> Training {
        self.opts.reflow = true;
        self.opts.label_parts = true;
        self
    }

    /// Reflow the corpus `n` complete bars to a line instead of four (`train --reflow
    /// --line-bars N`); implies [`Training::reflow`].
    pub fn line_bars(mut self, n: usize) -> Training {
        self.opts.reflow = true;
        self.opts.line_bars = Some(n);
        self
    }

    /// Reflow the corpus and space the bar lines of every second line of each part (`train
    /// --reflow --mark-lines`, [`crate::abc::reflow::mark_lines`]).
    pub fn mark_lines(mut self) -> Training {
        self.opts.reflow = true;
        self.opts.mark_lines = true;
        self
    }

    /// Reflow the corpus and mark the second lines of each part and the bar lines of each tune's
    /// last part (`train --reflow --mark-lines --mark-last`, [`crate::abc::reflow::mark_last`]).
    pub fn mark_last(mut self) -> Training {
        self.opts.reflow = true;
        self.opts.mark_lines = true;
        self.opts.mark_last = true;
        self
    }

    /// Reflow the corpus, label its tunes' parts and restate the key after each label (`train
    /// --reflow --label-parts --restate-key`, [`crate::abc::reflow::restate_key`]).
    pub fn restate_key(mut self) -> Training {
        self.opts.reflow = true;
        self.opts.label_parts = true;
        self.opts.restate_key = true;
        self
    }

    /// Weight drop on the recurrent weights (DropConnect, CPU only): each entry of `W_hh` is
    /// dropped with probability `p` for a whole window ([`crate::cpu::Dropout::weight_drop`]).
    pub fn weight_drop(mut self, p: f32) -> Training {
        self.opts.weight_drop = Some(p);
        self
    }

    /// Hold out about this fraction of the corpus for validation: whole tunes of ABC, whole
    /// paragraphs (else lines) of other text ([`crate::corpus::split_units`]).
    pub fn validation(mut self, fraction: f64) -> Training {
        self.opts.val_fraction = fraction;
        self
    }

    /// Seed of the initial weights, the dropout masks and the validation split.
    pub fn rng_seed(mut self, seed: u64) -> Training {
        self.opts.rng_seed = seed;
        self
    }

    /// The engine ([`Device::Cpu`], [`Device::Gpu`] or [`Device::Auto`]).
    pub fn on(mut self, device: Device) -> Training {
        self.opts.device = device;
        self
    }

    /// CPU worker threads (default: one per core).
    pub fn threads(mut self, threads: usize) -> Training {
        self.opts.threads = Some(threads);
        self
    }

    /// Continue the run in the model folder from its latest checkpoint (same corpus, seed and
    /// validation fraction).
    pub fn resume(mut self) -> Training {
        self.opts.resume = Some(None);
        self
    }

    /// Start from the weights of this checkpoint (fine-tuning, e.g. of an imported PyTorch
    /// model): its sizes and vocabulary, which must hold every character of the corpus.
    pub fn init_from(mut self, checkpoint: impl Into<PathBuf>) -> Training {
        self.opts.init_from = Some(checkpoint.into());
        self
    }

    /// Where the run's messages go (default: nowhere; the callback sees every epoch).
    pub fn log(mut self, log: impl Write + 'static) -> Training {
        self.log = Box::new(log);
        self
    }

    /// Trains, calling `on_epoch` after each epoch with its loss and accuracy; returning
    /// [`Flow::Stop`] saves that epoch and ends the run. The outcome names the last
    /// checkpoint ([`Outcome::checkpoint`]); [`Model::load`] it to sample.
    pub fn run(mut self, mut on_epoch: impl FnMut(&EpochReport) -> Flow) -> Result<Outcome> {
        crate::train::train_with(&self.opts, &mut self.log, &mut on_epoch)
    }
}
