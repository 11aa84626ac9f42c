//! `folklstm bench`: what the engines achieve on this machine, measured, in one table.
//!
//! Every figure is computed from timings taken here: medians over repeated runs, FLOP counts
//! from the model's shapes ([`train_step_flops`], [`sample_char_flops`]), and the machine's peak
//! from a short FMA loop run at start-up ([`crate::cpu::simd::fma_peak_gflops`]).

use crate::backend::{Sampler, StepOptions, Trainer};
use crate::error::Result;
use crate::model::{BatchConfig, ModelConfig, init_params};
use crate::rng::Key;
use std::io::Write;
use std::time::Instant;

/// Multiply-adds of one training step (forward, backward), counting the GEMMs only (the
/// elementwise work is a few percent and is not counted). Layer 0 uses the per-symbol input
/// projection, as the engine does.
pub fn train_step_macs(cfg: &ModelConfig, batch: &BatchConfig) -> u64 {
    let (v, e, h, l) = (cfg.vocab as u64, cfg.embed as u64, cfg.hidden as u64, cfg.layers as u64);
    let n = (batch.batch * batch.seq) as u64;
    let b = batch.batch as u64;
    let g4 = 4 * h;
    // forward: P0 = E·W_ih0, input projections above layer 0, recurrent steps, dense
    let fwd = v * e * g4 + (l - 1) * n * h * g4 + l * n * h * g4 + n * h * v;
    // backward: recurrent steps (+ dh0), dW_hh, dW_ih and dX above layer 0, dW_ih0 and dE, dense dW and dX
    let bwd = l * (n + b) * g4 * h + l * n * h * g4 + (l - 1) * 2 * n * h * g4 + 2 * v * e * g4 + 2 * n * h * v;
    fwd + bwd
}

/// FLOPs (2 per multiply-add) of one training step; see [`train_step_macs`].
pub fn train_step_flops(cfg: &ModelConfig, batch: &BatchConfig) -> f64 {
    2.0 * train_step_macs(cfg, batch) as f64
}

/// FLOPs of one sampled character per stream: the recurrent and input products of each layer
/// (layer 0's input part is a table lookup) and the dense layer.
pub fn sample_char_flops(cfg: &ModelConfig) -> f64 {
    let (v, h, l) = (cfg.vocab as f64, cfg.hidden as f64, cfg.layers as f64);
    2.0 * (h * 4.0 * h + (l - 1.0) * 2.0 * h * 4.0 * h + h * v)
}

/// Median of a list of seconds.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Timings of one engine.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    /// Engine description.
    pub engine: String,
    /// Median seconds per training step.
    pub step_s: f64,
    /// Median seconds per character, one stream.
    pub char1_s: f64,
    /// Median seconds per step of `count` streams.
    pub char_n_s: f64,
    /// Streams of the batched sampling run.
    pub count: usize,
}

/// Times `steps` training steps (after 3 warm-up steps) on `trainer`.
pub fn time_train(trainer: &mut dyn Trainer, batch: &BatchConfig, steps: usize) -> Result<f64> {
    let cfg = *trainer.config();
    let n = batch.batch * batch.seq;
    let key = Key::new(1);
    let x: Vec<u32> = (0..n as u32).map(|i| key.word(0, 0, i) % cfg.vocab as u32).collect();
    let y: Vec<u32> = (0..n as u32).map(|i| key.word(0, 1, i) % cfg.vocab as u32).collect();
    let mut times = Vec::with_capacity(steps);
    for i in 0..steps + 3 {
        let opts = StepOptions { lr: 1e-3, clip: None, weight_decay: 0.0, weight_drop: 0.0, key, counter: i as u32 };
        let t0 = Instant::now();
        trainer.train_step(&x, &y, &opts)?;
        if i >= 3 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(median(times))
}

/// Runs `steps` profiled training steps and returns the mean milliseconds per step of each
/// named phase ([`crate::cpu::profile`]), in order of appearance.
pub fn profile_train(trainer: &mut dyn Trainer, batch: &BatchConfig, steps: usize) -> Result<Vec<(&'static str, f64)>> {
    time_train(trainer, batch, 1)?;
    crate::cpu::profile::enable(true);
    let r = time_train(trainer, batch, steps);
    let spans = crate::cpu::profile::take();
    crate::cpu::profile::enable(false);
    r?;
    // time_train runs 3 warm-up steps too.
    Ok(spans.into_iter().map(|(n, s)| (n, s * 1e3 / (steps + 3) as f64)).collect())
}

/// Where a GPU training step's time goes: each phase's GPU time from timestamp queries around
/// it ([`crate::gpu::GpuTrainer::time_step_phases`]), the median over `steps` steps after 3
/// warm-up steps, in milliseconds, in order of the step. `None` when the adapter has no
/// timestamp queries.
pub fn profile_gpu_train(
    trainer: &mut crate::gpu::GpuTrainer,
    batch: &BatchConfig,
    steps: usize,
) -> Result<Option<Vec<(&'static str, f64)>>> {
    let cfg = *Trainer::config(trainer);
    let n = batch.batch * batch.seq;
    let key = Key::new(1);
    let x: Vec<u32> = (0..n as u32).map(|i| key.word(0, 0, i) % cfg.vocab as u32).collect();
    let y: Vec<u32> = (0..n as u32).map(|i| key.word(0, 1, i) % cfg.vocab as u32).collect();
    let mut phases: Vec<(&'static str, Vec<f64>)> = Vec::new();
    for i in 0..steps.max(1) + 3 {
        let opts = StepOptions { lr: 1e-3, clip: None, weight_decay: 0.0, weight_drop: 0.0, key, counter: i as u32 };
        let Some(times) = trainer.time_step_phases(&x, &y, &opts)? else { return Ok(None) };
        if i < 3 {
            continue;
        }
        for (name, s) in times {
            match phases.iter_mut().find(|p| p.0 == name) {
                Some(p) => p.1.push(s * 1e3),
                None => phases.push((name, vec![s * 1e3])),
            }
        }
    }
    Ok(Some(phases.into_iter().map(|(name, v)| (name, median(v))).collect()))
}

/// Median seconds per step of `count` streams generating `chars` characters, over 3 runs of
/// free sampling as `sample --free` does it ([`crate::sample::generate_with_stats`]: the host's
/// draws included, and on an engine that draws runs of characters itself, those runs), after
/// 8 steps of warm-up text.
pub fn time_sample(sampler: &mut dyn Sampler, count: usize, chars: usize) -> Result<f64> {
    let v = sampler.config().vocab;
    // Any V distinct characters: the timing does not read the text.
    let vocab = crate::corpus::Vocab::from_chars((0..v as u32).filter_map(|i| char::from_u32(0x100 + i)));
    let opts = crate::sample::SampleOptions {
        len: chars.max(1),
        count,
        warm_up: Some(vocab.decode(&(0..8).map(|i| i % v as u32).collect::<Vec<_>>())),
        ..Default::default()
    };
    let mut times = Vec::with_capacity(3);
    for seed in 0..3 {
        let (_, stats) = crate::sample::generate_with_stats(
            sampler,
            &vocab,
            &crate::sample::SampleOptions { rng_seed: seed, ..opts.clone() },
        )?;
        times.push(stats.seconds / (stats.rows / count as u64).max(1) as f64);
    }
    Ok(median(times))
}

/// Benchmarks a trainer and a sampler of the reference model and returns their row.
pub fn bench_engine(
    engine: String,
    trainer: &mut dyn Trainer,
    sampler: &mut dyn Sampler,
    batch: &BatchConfig,
    steps: usize,
    count: usize,
) -> Result<BenchRow> {
    Ok(BenchRow {
        engine,
        step_s: time_train(trainer, batch, steps)?,
        char1_s: time_sample(sampler, 1, 512)?,
        char_n_s: time_sample(sampler, count, 128)?,
        count,
    })
}

/// The reference model for benchmarks (86 symbols, the Nottingham jigs' vocabulary size).
pub fn reference_setup() -> (ModelConfig, BatchConfig, crate::model::Params<f32>) {
    let cfg = ModelConfig::reference(86);
    (cfg, BatchConfig::default(), init_params(&cfg, 0))
}

/// The shapes of `bench --grid`: the reference model first, then the sizes users train that
/// stress other sides of the engine (one layer, wide layers whose W_hh leaves the L2 cache,
/// large batches, long windows). Vocabulary 86 throughout, as `../shared/anchors/torch_shapes.py`.
pub fn grid() -> Vec<(ModelConfig, BatchConfig)> {
    let shape = |batch, seq, embed, hidden, layers| {
        (ModelConfig { vocab: 86, embed, hidden, layers, dropout: 0.2 }, BatchConfig { batch, seq })
    };
    vec![
        shape(16, 64, 512, 256, 3),
        shape(50, 50, 128, 128, 1),
        shape(50, 50, 128, 128, 3),
        shape(50, 50, 512, 512, 2),
        shape(64, 64, 512, 256, 3),
        shape(16, 64, 1024, 1024, 2),
        shape(8, 128, 256, 256, 3),
    ]
}

/// One shape's training speed on one engine (a row of `bench --grid`).
#[derive(Clone, Debug, PartialEq)]
pub struct GridRow {
    /// The model.
    pub cfg: ModelConfig,
    /// The window.
    pub batch: BatchConfig,
    /// Engine description.
    pub engine: String,
    /// Median seconds per training step.
    pub step_s: f64,
}

/// "25%": a CPU engine's GFLOP/s as a share of the CPU's measured peak ("-" for a GPU).
fn peak_share(engine: &str, gflops: f64, cpu_peak: f64) -> String {
    if engine.starts_with("cpu") { format!("{:.0}%", 100.0 * gflops / cpu_peak) } else { "-".into() }
}

/// Prints `bench --grid`'s table: per shape and engine, ms per step, characters per second,
/// GFLOP/s and, for the CPU, the share of the measured FMA peak.
pub fn print_grid(out: &mut dyn Write, rows: &[GridRow], cpu_peak: f64) {
    let _ = writeln!(out, "CPU peak measured by an FMA loop on all threads: {cpu_peak:.1} GFLOP/s");
    let _ = writeln!(
        out,
        "{:<24} {:<28} {:>9} {:>10} {:>8} {:>7}",
        "shape", "engine", "ms/step", "chars/s", "GFLOP/s", "% peak"
    );
    for r in rows {
        let (c, b) = (&r.cfg, &r.batch);
        let shape = format!("B{} T{} E{} H{} L{}", b.batch, b.seq, c.embed, c.hidden, c.layers);
        let gf = train_step_flops(c, b) / r.step_s / 1e9;
        let share = peak_share(&r.engine, gf, cpu_peak);
        let _ = writeln!(
            out,
            "{shape:<24} {:<28} {:>9.2} {:>10.0} {:>8.1} {:>7}",
            r.engine,
            r.step_s * 1e3,
            (b.batch * b.seq) as f64 / r.step_s,
            gf,
            share
        );
    }
}

/// Prints the table: per engine, training and sampling speed and FLOP rates, with the CPU's
/// measured peak for the CPU rows.
pub fn print_table(out: &mut dyn Write, rows: &[BenchRow], cfg: &ModelConfig, batch: &BatchConfig, cpu_peak: f64) {
    let tf = train_step_flops(cfg, batch);
    let sf = sample_char_flops(cfg);
    let chars = (batch.batch * batch.seq) as f64;
    let reference = *cfg == ModelConfig::reference(cfg.vocab) && *batch == BatchConfig::default();
    let _ = writeln!(
        out,
        "{}: V={} E={} H={} L={}, train window {}x{}; {:.2} GFLOP per step, {:.2} MFLOP per sampled char",
        if reference { "reference model" } else { "model" },
        cfg.vocab,
        cfg.embed,
        cfg.hidden,
        cfg.layers,
        batch.batch,
        batch.seq,
        tf / 1e9,
        sf / 1e6
    );
    let _ = writeln!(out, "CPU peak measured by an FMA loop on all threads: {cpu_peak:.1} GFLOP/s");
    let w = rows.iter().map(|r| r.engine.chars().count()).max().unwrap_or(6).max(6);
    let _ = writeln!(
        out,
        "{:<w$} {:>9} {:>11} {:>8} {:>7} {:>10} {:>11} {:>13}",
        "engine", "ms/step", "train ch/s", "GFLOP/s", "% peak", "ms/char", "sample ch/s", "batch ch/s"
    );
    for r in rows {
        let gf = tf / r.step_s / 1e9;
        let share = peak_share(&r.engine, gf, cpu_peak);
        let _ = writeln!(
            out,
            "{:<w$} {:>9.2} {:>11.0} {:>8.1} {:>7} {:>10.4} {:>11.0} {:>13}",
            r.engine,
            r.step_s * 1e3,
            chars / r.step_s,
            gf,
            share,
            r.char1_s * 1e3,
            1.0 / r.char1_s,
            format!("{:.0} (x{})", r.count as f64 / r.char_n_s, r.count)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_count_of_the_reference_step() {
        // Hand count for V=86, E=512, H=256, L=3, N=1024, B=16 (multiply-adds):
        // forward 45.1M + 2x268.4M + 3x268.4M + 22.5M = 1409.9M;
        // backward 3x(1040x1024x256) + 3x268.4M + 4x268.4M + 2x45.1M + 2x22.5M = 2814.9M.
        let m = train_step_macs(&ModelConfig::reference(86), &BatchConfig::default());
        assert_eq!(
            m,
            45_088_768
                + 5 * 268_435_456
                + 22_544_384
                + 3 * 272_629_760
                + 7 * 268_435_456
                + 2 * 45_088_768
                + 2 * 22_544_384
        );
    }
}
