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
