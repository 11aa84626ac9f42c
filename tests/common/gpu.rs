//! Helpers shared by the GPU tests (tests/gpu_*.rs).

use folklstm::model::{ModelConfig, Params, init_params};

/// The one gate every GPU test passes first: Some(adapter description) when a GPU adapter
/// exists; otherwise records the skip ([`super::skip`]) and returns None, unless
/// FOLKLSTM_REQUIRE_GPU=1 (set by `.ci/run`), when a missing adapter fails the test.
pub fn gpu_or_skip() -> Option<String> {
    match folklstm::gpu::adapter_info() {
        Ok(name) => {
            eprintln!("gpu: {name}");
            Some(name)
        }
        Err(e) => {
            super::skip(super::Need::Gpu, &format!("no GPU is usable: {e}"));
            None
        }
    }
}

/// `common::noise` in f32: a small deterministic pseudo-random sequence in [-1, 1).
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    super::noise(n, seed).into_iter().map(|x| x as f32).collect()
}

/// `n` token ids below `vocab`.
pub fn tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    noise(n, seed)
        .into_iter()
        .map(|u| ((((u as f64) + 1.0) / 2.0 * vocab as f64) as u32).min(vocab as u32 - 1))
        .collect()
}

/// A model with every parameter non-trivial: Keras init plus `scale`·noise on top.
pub fn random_params(cfg: &ModelConfig, seed: u64, scale: f32) -> Params<f32> {
    let mut p = init_params(cfg, seed);
    let nz = noise(p.data.len(), seed + 1);
    for (x, n) in p.data.iter_mut().zip(nz) {
        *x += scale * n;
    }
    p
}

/// max |a - b| / max |b|: the error relative to the tensor's scale.
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, &x| m.max(x.abs() as f64)).max(1e-30);
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).abs()).fold(0.0, f64::max) / scale
}

/// Per tensor of `a` against `b`: (name, moved, apart, floor). `moved` = max |b - start|, how far
/// training moved the tensor; `apart` = max |a - b|, how far apart the two runs ended; `floor` =
/// steps · 2u · max |b|, the rounding floor: each Adam step rounds θ - Δ to f32 on each device,
/// and when the two Δ differ at all the results may land one ulp apart. Compare `apart` with a
/// fraction of `moved` plus `floor`: a bound relative to the movement catches one badly updated
/// tensor (a bias), which an error over the whole parameter vector, or relative to the
/// tensor's largest entry, can hide.
pub fn apart_per_tensor(
    a: &Params<f32>,
    b: &Params<f32>,
    start: &Params<f32>,
    steps: usize,
) -> Vec<(String, f64, f64, f64)> {
    let max_diff = |x: &[f32], y: &[f32]| {
        assert_eq!(x.len(), y.len());
        x.iter().zip(y).map(|(&p, &q)| (p as f64 - q as f64).abs()).fold(0.0, f64::max)
    };
    let u = f32::EPSILON as f64 / 2.0;
    b.layout
        .tensors()
        .into_iter()
        .map(|t| {
            let scale = b.get(t).iter().fold(0.0f64, |m, &x| m.max(x.abs() as f64));
            (
                t.name.clone(),
                max_diff(b.get(t), start.get(t)),
                max_diff(a.get(t), b.get(t)),
                steps as f64 * 2.0 * u * scale,
            )
        })
        .collect()
}
