//! CPU benchmarks at the reference model's shapes (V=86, E=512, H=256, L=3, B=16, T=64):
//! each hot kernel, the whole training step, and a sampled character.
//!
//! Run: `cargo bench --bench cpu` (or `-- kernels/` for one group). For the `kernels/` GEMM and
//! recurrent benchmarks the throughput is set in FLOPs (2 per multiply-add), so criterion's
//! "Gelem/s" reads GFLOP/s; for the elementwise ones it counts elements; for `train_step` and
//! `sample_char` it counts characters. `folklstm bench` prints the same figures as a table.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use folklstm::backend::{Sampler, StepOptions, Trainer};
use folklstm::cpu::CpuBackend;
use folklstm::cpu::CpuSampler;
use folklstm::cpu::gemm::{Mat, MatMut, panel_gemm};
use folklstm::cpu::network::softmax_xent;
use folklstm::cpu::recurrent::{self, Panels};
use folklstm::cpu::simd::{self, isa};
use folklstm::model::cell::Gates;
use folklstm::model::{BatchConfig, ModelConfig, init_params};
use folklstm::optim::{AdamConfig, AdamState, adam_update};
use folklstm::rng::Key;
use std::hint::black_box;

const B: usize = 16;
const T: usize = 64;
const H: usize = 256;
const V: usize = 86;
const N: usize = B * T;

fn tokens(n: usize, v: u32, seed: u32) -> Vec<u32> {
    let k = Key::new(seed as u64);
    (0..n as u32).map(|i| k.word(0, 0, i) % v).collect()
}

fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let k = Key::new(seed as u64);
    (0..n as u32).map(|i| (k.uniform(1, 2, i) - 0.5) * 2.0 * scale).collect()
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernels");
    g.sample_size(30);
    // Input projection of a layer above the first: [N, H] x [H, 4H], all T steps at once.
    let x = values(N * H, 1, 1.0);
    let w = values(H * 4 * H, 2, 0.05);
    let mut z = vec![0.0f32; N * 4 * H];
    let mut scratch = Vec::new();
    g.throughput(Throughput::Elements((2 * N * H * 4 * H) as u64));
    g.bench_function("input_projection [1024x256]x[256x1024] (FLOP)", |b| {
        b.iter(|| {
            let mut jobs = [(Mat::new(&x, N, H), MatMut::new(&mut z, N, 4 * H))];
            panel_gemm(&mut jobs, Mat::new(&w, H, 4 * H), false, &mut scratch);
        })
    });
    // Weight gradients of a layer above the first: dW_hh = H_prevᵀ·dZ and dW_ih = Xᵀ·dZ in one
    // pass, [256x1024]x[1024x1024] each, A read through a transposed view (K = B*T is long).
    let (xa, xb) = (values(N * H, 11, 1.0), values(N * H, 12, 1.0));
    let dz = values(N * 4 * H, 13, 0.01);
    let (mut g1, mut g2) = (vec![0.0f32; H * 4 * H], vec![0.0f32; H * 4 * H]);
    g.throughput(Throughput::Elements((2 * 2 * H * N * 4 * H) as u64));
    g.bench_function("weight_gradients 2 x [256x1024]x[1024x1024] (FLOP)", |b| {
        b.iter(|| {
            let mut jobs = [
                (Mat::new(&xa, N, H).t(), MatMut::new(&mut g1, H, 4 * H)),
                (Mat::new(&xb, N, H).t(), MatMut::new(&mut g2, H, 4 * H)),
            ];
            panel_gemm(&mut jobs, Mat::new(&dz, N, 4 * H), false, &mut scratch);
        })
    });
    // The 64 recurrent steps of one layer, forward and backward (recurrent GEMMs + cell).
    let pre = values(N * 4 * H, 3, 1.0);
    let mut panels = Panels::default();
    let (mut h, mut cs, mut tc) = (vec![0.0f32; (T + 1) * B * H], vec![0.0f32; (T + 1) * B * H], vec![0.0f32; N * H]);
    let mut act = pre.clone();
    g.throughput(Throughput::Elements((2 * T * B * H * 4 * H) as u64));
    g.bench_function("recurrent_forward 64 steps of [16x256]x[256x1024] (FLOP)", |b| {
        b.iter(|| {
            act.copy_from_slice(&pre);
            recurrent::forward(&mut act, &mut h, &mut cs, &mut tc, &w, &mut panels, B, T, H);
        })
    });
    let fwd_act = act.clone();
    let dh_up = values(N * H, 4, 0.01);
    let (mut dh, mut dc, mut db) = (vec![0.0f32; B * H], vec![0.0f32; B * H], vec![0.0f32; 4 * H]);
    g.bench_function("recurrent_backward 64 steps of [16x1024]x[1024x256] (FLOP)", |b| {
        b.iter(|| {
            act.copy_from_slice(&fwd_act);
            recurrent::backward(&mut act, &cs, &tc, &dh_up, &mut dh, &mut dc, &mut db, &w, &mut panels, B, T, H);
        })
    });
    // Gate math of one step: the cell forward and backward on [16, 256] units (elements).
    let zrow = values(B * 4 * H, 5, 3.0);
    let cprev = values(B * H, 6, 1.0);
    g.throughput(Throughput::Elements((B * H) as u64));
    g.bench_function(format!("gate_math fwd+bwd [16x256] ({})", isa().name()), |b| {
        let (mut zz, mut c1, mut t1, mut h1) =
            (zrow.clone(), vec![0.0f32; B * H], vec![0.0f32; B * H], vec![0.0f32; B * H]);
        let mut dcc = vec![0.0f32; B * H];
        b.iter(|| {
            zz.copy_from_slice(&zrow);
            for r in 0..B {
                let s = r * H..(r + 1) * H;
                let zr = &mut zz[r * 4 * H..(r + 1) * 4 * H];
                simd::cell_forward(
                    isa(),
                    Gates::split(zr),
                    &cprev[s.clone()],
                    &mut c1[s.clone()],
                    &mut t1[s.clone()],
                    &mut h1[s.clone()],
                );
                simd::cell_backward(
                    isa(),
                    Gates::split(zr),
                    &cprev[s.clone()],
                    &t1[s.clone()],
                    &h1[s.clone()],
                    &cprev[s.clone()],
                    &mut dcc[s],
                );
            }
            black_box(&dcc);
        })
    });
    // Softmax cross-entropy forward+backward over the window's logits [1024, 86] (elements).
    let logits = values(N * V, 7, 4.0);
    let targets = tokens(N, V as u32, 8);
    let (mut dl, mut rl, mut rc) = (vec![0.0f32; N * V], vec![0.0f64; N], vec![false; N]);
    g.throughput(Throughput::Elements((N * V) as u64));
    g.bench_function("softmax_xent [1024x86]", |b| {
        b.iter(|| softmax_xent(&logits, &targets, V, &mut dl, &mut rl, &mut rc))
    });
    // One Adam update of all 1,904,214 parameters (elements).
    let np = 1_904_214;
    let mut p = values(np, 9, 0.1);
    let gr = values(np, 10, 0.01);
    let mut st = AdamState::new(np);
    g.throughput(Throughput::Elements(np as u64));
    g.bench_function("adam 1904214 params", |b| {
        b.iter(|| adam_update(&mut p, &gr, &mut st, &AdamConfig::default(), 1e-3))
    });
    g.finish();
}

fn train_step(c: &mut Criterion) {
    let cfg = ModelConfig::reference(86);
    let batch = BatchConfig::default();
    let (x, y) = (tokens(N, 86, 1), tokens(N, 86, 2));
    let mut be = CpuBackend::new(init_params(&cfg, 0), None, batch, None).unwrap();
    let mut g = c.benchmark_group("train_step");
    g.sample_size(30);
    g.throughput(Throughput::Elements(N as u64));
    let mut counter = 0;
    g.bench_function(format!("reference B16 T64 ({} threads, chars)", be.threads()), |b| {
        b.iter(|| {
            counter += 1;
            let o =
                StepOptions { lr: 1e-3, clip: None, weight_decay: 0.0, weight_drop: 0.0, key: Key::new(0), counter };
            black_box(be.train_step(&x, &y, &o).unwrap())
        })
    });
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
        g.bench_function(format!("batch {count} (chars)"), |b| {
            b.iter(|| s.step(black_box(&toks), &mut logits).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, kernels, train_step, sample_char);
criterion_main!(benches);
