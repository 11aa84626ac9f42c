//! CPU benchmarks at the reference model's shapes: the whole training step and a sampled
//! character. Run: `cargo bench --bench cpu` (add `-- train_step` to pick one).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use folklstm::backend::{Sampler, StepOptions, Trainer};
use folklstm::cpu::CpuBackend;
use folklstm::model::{BatchConfig, ModelConfig, init_params};
use folklstm::rng::Key;
use folklstm::sample::CpuSampler;
use std::hint::black_box;

fn tokens(n: usize, v: u32, seed: u32) -> Vec<u32> {
    let k = Key::new(seed as u64);
    (0..n as u32).map(|i| k.word(0, 0, i) % v).collect()
}

fn train_step(c: &mut Criterion) {
    let cfg = ModelConfig::reference(86);
    let batch = BatchConfig::default();
    let n = batch.batch * batch.seq;
    let (x, y) = (tokens(n, 86, 1), tokens(n, 86, 2));
    let mut be = CpuBackend::new(init_params(&cfg, 0), None, batch, None).unwrap();
    let mut g = c.benchmark_group("train_step");
    g.sample_size(30);
    g.throughput(Throughput::Elements(n as u64));
    let mut counter = 0;
    g.bench_function(
        format!("reference B16 T64 ({} threads)", be.threads()),
        |b| {
            b.iter(|| {
                counter += 1;
                let o = StepOptions {
                    lr: 1e-3,
                    clip: None,
                    key: Key::new(0),
                    counter,
                };
                black_box(be.train_step(&x, &y, &o).unwrap())
            })
        },
    );
    g.finish();
}

fn sample_char(c: &mut Criterion) {
    let cfg = ModelConfig::reference(86);
    let params = init_params(&cfg, 0);
    let mut g = c.benchmark_group("sample_char");
    for count in [1usize, 64] {
        let mut s = CpuSampler::new(&params, None).unwrap();
        s.reset(count).unwrap();
        let mut logits = vec![0.0f32; count * 86];
        let toks = tokens(count, 86, 3);
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function(format!("batch {count}"), |b| {
            b.iter(|| s.step(black_box(&toks), &mut logits).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, train_step, sample_char);
criterion_main!(benches);
