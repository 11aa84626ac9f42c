//! The engine against an independent implementation: forward/backward passes of this exact
//! architecture computed by PyTorch autograd in f64 (`../shared/fixtures`, see its README).
//! These catch what a self-consistent gradient check cannot: gate order, the single bias,
//! the stateful carry, the loss's normalisation.

mod common;
use common::*;
use folklstm::cpu::kernels::CpuReal;
use folklstm::cpu::{State, Workspace, backward, forward};
use folklstm::model::Params;
use safetensors::SafeTensors;

/// Runs forward and backward on a fixture in precision R; returns the worst relative error of
/// each compared tensor, by name.
fn run_fixture<R: CpuReal>(bytes: &[u8]) -> Vec<(String, f64)> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let (cfg, b, t) = fixture_config(bytes);
    let params: Params<R> = fixture_params(&st, &cfg);
    let x = tensor_ids(&st, "x");
    let y = tensor_ids(&st, "y");
    let conv = |v: Vec<f64>| v.into_iter().map(R::from_f64).collect::<Vec<R>>();
    let mut state = State { h: conv(tensor_f64(&st, "h0")), c: conv(tensor_f64(&st, "c0")) };
    let mut ws = Workspace::<R>::new(&cfg, b, t);
    let mut grads = Params::<R>::zeros(&cfg);
    let loss = forward(&params, &mut ws, &x, &y, &mut state, None).unwrap();
    backward(&params, &mut grads, &mut ws).unwrap();
    let mut errs = vec![
        ("loss".to_string(), rel_err(&[R::from_f64(loss.loss)], &tensor_f64(&st, "expected.loss"))),
        ("logits".into(), rel_err(&ws.logits_bt(), &tensor_f64(&st, "expected.logits"))),
        ("hT".into(), rel_err(&state.h, &tensor_f64(&st, "expected.hT"))),
        ("cT".into(), rel_err(&state.c, &tensor_f64(&st, "expected.cT"))),
        ("grad.h0".into(), rel_err(&ws.dh0, &tensor_f64(&st, "grad.h0"))),
        ("grad.c0".into(), rel_err(&ws.dc0, &tensor_f64(&st, "grad.c0"))),
    ];
    for tr in grads.layout.tensors() {
        let name = format!("grad.{}", tr.name);
        errs.push((name.clone(), rel_err(grads.get(tr), &tensor_f64(&st, &name))));
    }
    for (n, e) in &errs {
        eprintln!("{:>22}  {:e}", n, e);
    }
    errs
}

#[test]
fn small_fixture_matches_pytorch_in_f64() {
    let Some(bytes) = fixture_bytes("lstm-small-f64.safetensors") else {
        return;
    };
    // Same math in the same precision, different summation order: differences are a few ulps
    // of the largest values (2.2e-16 each) amplified by at most a few hundred operations; the
    // fixture README quotes 1e-12 for a faithful implementation.
    for (name, err) in run_fixture::<f64>(&bytes) {
        assert!(err < 1e-12, "{name}: relative error {err:e}");
    }
}

#[test]
fn reference_fixture_matches_pytorch_in_f32() {
    let Some(bytes) = fixture_bytes("lstm-reference-f32.safetensors") else {
        return;
    };
    // f32 engine (SIMD gate math, per-symbol layer-0 projection, different summation order)
    // against f64 autograd rounded to f32. Rounding errors of ~6e-8 per operation accumulate
    // through 3 layers x 64 steps and 512-long dot products; we measure at most 8e-7 of each
    // tensor's largest entry (AVX-512, 2026-11) and 1.4e-6 (AVX2, grad.lstm.1.b, 2026-12). 1e-5
    // leaves a 7x margin for other instruction sets and still fails for any real mistake (a wrong gate order, a missing term or a lost
    // carry changes tensors by O(1) of their scale).
    for (name, err) in run_fixture::<f32>(&bytes) {
        assert!(err < 1e-5, "{name}: relative error {err:e}");
    }
}

/// Not "exact": the fixture holds f32-rounded numbers, so f64 can match them only to about
/// f32's precision; what this adds to the f32 test above is that our own arithmetic is out of
/// the way, so the remaining difference is the fixture's rounding alone.
#[test]
fn reference_fixture_in_f64_matches_to_the_fixtures_f32_rounding() {
    let Some(bytes) = fixture_bytes("lstm-reference-f32.safetensors") else {
        return;
    };
    // The reference-sized fixture stores weights and results rounded to f32 (relative 6e-8
    // each) from an f64 computation. Our f64 engine on the rounded weights reproduces the
    // rounded results to about 7e-8 of each tensor's scale (measured); the rounding of the
    // weights propagates with a condition number of order 1, so 1e-6 is a safe bound that a
    // real mistake (errors of order 1) cannot pass.
    for (name, err) in run_fixture::<f64>(&bytes) {
        assert!(err < 1e-6, "{name}: relative error {err:e}");
    }
}
