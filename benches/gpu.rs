//! GPU benchmarks: the reference model's training step (B = 16, T = 64), one sampled character
//! for a single tune through the host, and a run of 64 characters drawn on the device (what
//! `sample` uses). Skipped, with a message, when there is no GPU adapter.
//!
//! `cargo bench --bench gpu`. On a software driver (lavapipe) the numbers only show the code
//! runs; they say nothing about GPU speed.

use criterion::{Criterion, criterion_group, criterion_main};
use folklstm::backend::{DrawRule, Sampler, StepOptions, Trainer};
use folklstm::gpu::{GpuSampler, GpuTrainer, adapter_info};
use folklstm::model::{BatchConfig, ModelConfig, init_params};
use folklstm::rng::Key;
use std::hint::black_box;
use std::time::Duration;

/// `n` token ids below `vocab` from a fixed pattern (benchmarks need tokens, not text).
fn ids(n: usize, vocab: usize, seed: u32) -> Vec<u32> {
    (0..n as u32).map(|i| folklstm::rng::fmix32(i ^ seed.wrapping_mul(0x9e37_79b9)) % vocab as u32).collect()
}

fn gpu(c: &mut Criterion) {
    let name = match adapter_info() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    eprintln!("GPU adapter: {name}");
    let cfg = ModelConfig::reference(86);
    let batch = BatchConfig::default();
    let params = init_params(&cfg, 1);
    let n = batch.batch * batch.seq;
    let (x, y) = (ids(n, cfg.vocab, 1), ids(n, cfg.vocab, 2));

    let mut g = c.benchmark_group("gpu");
    // Ten samples is criterion's minimum; a software driver needs seconds per step.
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));

    let mut trainer = GpuTrainer::new(params.clone(), None, batch).expect("GPU trainer");
    eprintln!("train step: {} dispatches in one submission", trainer.dispatches_per_step());
    let mut counter = 0u32;
    g.bench_function("train_step_reference_b16_t64", |b| {
        b.iter(|| {
            counter += 1;
            let o = StepOptions {
                lr: 1e-3,
                clip: Some(5.0),
                weight_decay: 0.0,
                weight_drop: 0.0,
                key: Key::new(1),
                counter,
            };
            black_box(trainer.train_step(&x, &y, &o).expect("train step"))
        })
    });
    drop(trainer);

    let mut sampler = GpuSampler::new(&params).expect("GPU sampler");
    sampler.reset(1).expect("reset");
    let mut logits = vec![0.0f32; cfg.vocab];
    let mut tok = 0u32;
    g.bench_function("sample_char_reference_batch1", |b| {
        b.iter(|| {
            sampler.step(&[tok], &mut logits).expect("sample step");
            // A cheap deterministic pick keeps the stream moving (the draw itself is host code).
            tok = (tok + 1) % cfg.vocab as u32;
            black_box(logits[0])
        })
    });
    let rule = DrawRule { key: Key::new(1), temperature: 1.0, top_k: None, stream0: 0 };
    let (mut run_logits, mut drawn) = (Vec::new(), Vec::new());
    let mut counter = 1u32;
    g.bench_function("sample_run_reference_batch1_64_chars", |b| {
        b.iter(|| {
            let k = sampler.run_ahead(&[tok], 64, counter, &rule, &mut run_logits, &mut drawn).expect("run");
            assert_eq!(k, 64, "the GPU sampler runs ahead");
            counter += 64;
            tok = drawn[k - 1];
            black_box(run_logits[0])
        })
    });
    g.finish();
}

criterion_group!(benches, gpu);
criterion_main!(benches);
