//! The CPU engine's own tests: gradient check by finite differences, the fused forward and the
//! fast gradients against the readable reference forward and backward, stateful carry,
//! thread-count independence (1, 2, 3, 5 threads), the parameter count, batching, and a tiny model that learns.

mod common;
use common::noise;
use folklstm::backend::{StepOptions, Trainer};
use folklstm::corpus::{Batches, Vocab};
use folklstm::cpu::{CpuBackend, Dropout, State, Workspace, backward, forward};
use folklstm::model::{BatchConfig, ModelConfig, Params, init_params, reference};
use folklstm::rng::Key;

/// A model with every parameter non-trivial (init, then noise on top so biases are not zero).
fn random_params(cfg: &ModelConfig, seed: u64) -> Params<f64> {
    let mut p = init_params(cfg, seed).map(|x| x as f64);
    let nz = noise(p.data.len(), seed + 1);
    for (x, n) in p.data.iter_mut().zip(nz) {
        *x += 0.3 * n;
    }
    p
}

fn random_tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    noise(n, seed).into_iter().map(|u| (((u + 1.0) / 2.0) * vocab as f64) as u32 % vocab as u32).collect()
}

#[test]
fn parameter_count_of_the_reference_model() {
    let p = Params::<f32>::zeros(&ModelConfig::reference(86));
    let sizes: Vec<usize> = p.layout.tensors().iter().map(|t| t.len()).collect();
    assert_eq!(p.data.len(), 1_904_214);
    assert_eq!(sizes[0], 44_032, "embedding");
    assert_eq!(sizes[1] + sizes[2] + sizes[3], 787_456, "layer 0");
    assert_eq!(sizes[4] + sizes[5] + sizes[6], 525_312, "layer 1");
    assert_eq!(sizes[7] + sizes[8] + sizes[9], 525_312, "layer 2");
    assert_eq!(sizes[10] + sizes[11], 22_102, "dense");
}

/// Central finite differences on every parameter and on h0, c0, with dropout on and its masks
/// fixed (they are a function of key and counter), all in f64 through the production code path.
#[test]
fn gradient_check_every_parameter_and_initial_state() {
    gradient_check(0.0);
}

/// The same with weight drop on the recurrent weights: the loss then depends on `W_hh ⊙ M`, so
/// the analytic `dW_hh` must be the masked one (0 for every dropped entry, whose finite
/// difference is 0) and the recurrent steps must run with the dropped weights both ways.
#[test]
fn gradient_check_with_weight_drop() {
    gradient_check(0.4);
}

fn gradient_check(weight_drop: f32) {
    let cfg = ModelConfig { vocab: 7, embed: 5, hidden: 4, layers: 2, dropout: 0.3 };
    let (b, t) = (2, 5);
    let params = random_params(&cfg, 11);
    let x = random_tokens(b * t, cfg.vocab, 12);
    let y = random_tokens(b * t, cfg.vocab, 13);
    let n_state = cfg.layers * b * cfg.hidden;
    let h0: Vec<f64> = noise(n_state, 14).iter().map(|v| 0.5 * v).collect();
    let c0: Vec<f64> = noise(n_state, 15).iter().map(|v| 0.5 * v).collect();
    let drop = Some(Dropout { weight_drop, ..Dropout::new(Key::new(99), 3) });
    let mut ws = Workspace::<f64>::new(&cfg, b, t);

    let loss_of = |p: &Params<f64>, h0: &[f64], c0: &[f64], ws: &mut Workspace<f64>| {
        let mut st = State { h: h0.to_vec(), c: c0.to_vec() };
        forward(p, ws, &x, &y, &mut st, drop).unwrap().loss
    };
    let mut grads = Params::<f64>::zeros(&cfg);
    let mut st = State { h: h0.clone(), c: c0.clone() };
    forward(&params, &mut ws, &x, &y, &mut st, drop).unwrap();
    backward(&params, &mut grads, &mut ws).unwrap();
    let (dh0, dc0) = (ws.dh0.clone(), ws.dc0.clone());
    // Some dropout units must actually be dropped, or the check would not cover the masks.
    let dropped = ws.layer_output(0).iter().filter(|&&v| v == 0.0).count();
    assert!(dropped > 0, "no unit dropped");
    // Under weight drop some recurrent weights are dropped (their gradient is exactly 0) and
    // most are not; without it no dW_hh entry is exactly 0.
    for lay in &params.layout.lstm {
        let zeros = grads.get(&lay.w_hh).iter().filter(|&&g| g == 0.0).count();
        let n = lay.w_hh.range.len();
        if weight_drop > 0.0 {
            assert!(zeros > 0 && zeros < n, "{zeros} of {n} dW_hh entries are 0");
        } else {
            assert_eq!(zeros, 0);
        }
    }

    // Five-point central differences, n = (8(L(θ+h) - L(θ-h)) - (L(θ+2h) - L(θ-2h))) / 12h with
    // h = 1e-3: truncation error is O(h⁴ f⁽⁵⁾) ≈ 1e-13, rounding error about (the loss's
    // rounding noise, ~1e-14 after a few hundred f64 operations) x 1.5/h ≈ 2e-11 absolute.
    // The plain 3-point formula at h = 1e-5 is limited by that rounding noise / h ≈ 5e-10.
    // Relative to max(|a|+|n|, 1e-4) the expected error is < 1e-7, so the bound 1e-6 holds with
    // margin while any wrong term (an error of order |a|) fails it; the 1e-4 floor keeps the
    // ratio meaningful for gradients that are nearly zero.
    let h = 1e-3;
    let rel = |a: f64, n: f64| (a - n).abs() / (a.abs() + n.abs()).max(1e-4);
    let five_point = |f: &mut dyn FnMut(f64) -> f64| (8.0 * (f(h) - f(-h)) - (f(2.0 * h) - f(-2.0 * h))) / (12.0 * h);
    let mut worst = Vec::new();
    for tr in params.layout.tensors() {
        let mut w = 0.0f64;
        for i in tr.range.clone() {
            let mut p = params.clone();
            let numeric = five_point(&mut |d| {
                p.data[i] = params.data[i] + d;
                loss_of(&p, &h0, &c0, &mut ws)
            });
            w = w.max(rel(grads.data[i], numeric));
        }
        worst.push((tr.name.clone(), w));
    }
    for (name, analytic, is_h) in [("h0", &dh0, true), ("c0", &dc0, false)] {
        let mut w = 0.0f64;
        for i in 0..n_state {
            let numeric = five_point(&mut |d| {
                let (mut hp, mut cp) = (h0.clone(), c0.clone());
                if is_h {
                    hp[i] += d
                } else {
                    cp[i] += d
                }
                loss_of(&params, &hp, &cp, &mut ws)
            });
            w = w.max(rel(analytic[i], numeric));
        }
        worst.push((name.to_string(), w));
    }
    for (name, w) in &worst {
        eprintln!("{name:>14}: max relative error {w:e}");
        assert!(*w < 1e-6, "{name}: relative error {w:e}");
    }
}

/// The fused, SIMD, per-symbol-projection f32 engine against the naive per-gate reference.
#[test]
fn fused_forward_equals_naive_per_gate_forward() {
    // H = 20 fills one 16-column strip of an AVX2 panel and part of the next; H = 8 leaves a
    // whole strip of every recurrent panel past the last unit (packed as zeros, read from
    // nothing).
    for hidden in [20, 8] {
        fused_forward_at(hidden);
    }
}

fn fused_forward_at(hidden: usize) {
    let cfg = ModelConfig { vocab: 13, embed: 24, hidden, layers: 3, dropout: 0.0 };
    let (b, t) = (3, 9);
    let p64 = random_params(&cfg, 21);
    let p32 = p64.map(|x| x as f32);
    let x = random_tokens(b * t, cfg.vocab, 22);
    let y = random_tokens(b * t, cfg.vocab, 23);
    let n_state = cfg.layers * b * cfg.hidden;
    let h0 = noise(n_state, 24);
    let c0 = noise(n_state, 25);
    // Reference in f64 on the f32-rounded weights, so only the engine's arithmetic differs.
    let p_ref = p32.map(|x| x as f64);
    let want = reference::forward(&p_ref, &x, b, &h0, &c0);
    let mut st = State { h: h0.iter().map(|&v| v as f32).collect(), c: c0.iter().map(|&v| v as f32).collect() };
    let mut ws = Workspace::<f32>::new(&cfg, b, t);
    forward(&p32, &mut ws, &x, &y, &mut st, None).unwrap();
    let max_diff = |a: &[f32], b: &[f64]| a.iter().zip(b).map(|(x, y)| (*x as f64 - y).abs()).fold(0.0, f64::max);
    // Tolerance, from the f32 arithmetic (unit roundoff u = 2^-24 = 6e-8). Each pre-activation
    // is a dot product of K terms plus the bias: K = E + H = 44 in layer 0 (the per-symbol table
    // holds the E-term part), 2H = 40 above, H = 20 for a logit. The sum of the terms' absolute
    // values, S, is at most 5.1 here (4.8, 5.1, 4.2 for the layers, 1.6 for the logits, measured
    // in f64 on these weights and activations at H = 20; H = 8 has shorter sums). Accumulating in f32 errs by at most
    // γ_K·S ≈ K·u·S = 1.4e-5 in the worst case (every rounding the same way), and by about
    // √K·u·S ≈ 2e-6 when the roundings are independent (the usual estimate, a generous one:
    // the partial sums are mostly far below S). The SIMD exp, sigmoid and tanh add at most 4 ulp
    // (≤ 4.8e-7 on outputs within [-1, 1], tests/simd.rs). From step to step the cell damps what
    // it inherits (sigmoid' ≤ 1/4, c scaled by f < 1, h = o·tanh(c)), so h, c and the logits
    // stay within a few roundings of one step. Observed (AVX2 and scalar alike, 2026-12):
    // logits 2.0e-7, h 1.0e-7, c 2.1e-7. The bound 2e-6 is the independent-rounding estimate,
    // 10x what is observed; a wrong gate, index or bias moves values by O(0.1).
    const TOL: f64 = 2e-6;
    let (dl, dh, dc) = (max_diff(&ws.logits_bt(), &want.logits), max_diff(&st.h, &want.h), max_diff(&st.c, &want.c));
    eprintln!("H = {hidden}: max |engine - reference|: logits {dl:e}, h {dh:e}, c {dc:e}");
    assert!(dl < TOL, "logits differ by {dl:e}");
    assert!(dh < TOL, "final h differs by {dh:e}");
    assert!(dc < TOL, "final c differs by {dc:e}");
}

/// The engine's f64 gradients (fused gates, per-symbol projection, packed panels, GEMMs over
/// all steps) against the plain per-gate, per-step reference backward: the loss, every tensor,
/// and d loss / d (h0, c0), each separately.
#[test]
fn engine_gradients_equal_the_plain_reference_backward() {
    // E != H, so a transposed input weight or a layer-0/upper-layer mix-up cannot go unnoticed;
    // three layers, so a middle layer (input and output both LSTM) is covered.
    let cfg = ModelConfig { vocab: 7, embed: 5, hidden: 4, layers: 3, dropout: 0.0 };
    let (b, t) = (3, 5);
    let params = random_params(&cfg, 51);
    let x = random_tokens(b * t, cfg.vocab, 52);
    let y = random_tokens(b * t, cfg.vocab, 53);
    let n_state = cfg.layers * b * cfg.hidden;
    let h0: Vec<f64> = noise(n_state, 54).iter().map(|v| 0.5 * v).collect();
    let c0: Vec<f64> = noise(n_state, 55).iter().map(|v| 0.5 * v).collect();

    let mut ws = Workspace::<f64>::new(&cfg, b, t);
    let mut grads = Params::<f64>::zeros(&cfg);
    let mut st = State { h: h0.clone(), c: c0.clone() };
    let loss = forward(&params, &mut ws, &x, &y, &mut st, None).unwrap().loss;
    backward(&params, &mut grads, &mut ws).unwrap();
    let want = reference::backward(&params, &x, &y, b, &h0, &c0);

    // Tolerance. Both sides are f64 computations of the same sums in different orders (GEMMs
    // blocked over all T*B rows vs one [B, H] product per gate and step; a per-symbol table vs a
    // per-token scatter). Each gradient element comes out of at most a few hundred roundings
    // along its longest path (dense, then 5 steps x 3 layers of 4H-term sums and a dozen
    // elementwise ops), each a relative 1.1e-16 of a term no larger than a small multiple of the
    // tensor's largest element (weights and activations are O(1)): so the two results should
    // differ by a few hundred ulps of the tensor's largest value, about 1e-14 relative to it
    // (observed: below 5e-16, the roundings mostly cancel).
    // The bound 1e-10 x max|reference| leaves four orders of margin for that, while a wrong sign,
    // a missing term or a transposed weight changes a gradient by an amount of its own size.
    const TOL: f64 = 1e-10;
    let loss_err = (loss - want.loss).abs() / want.loss.abs();
    eprintln!("{:>14}: relative error {loss_err:e} ({loss} vs {})", "loss", want.loss);
    assert!(loss_err < TOL, "loss: engine {loss}, reference {}", want.loss);
    let mut checks: Vec<(String, &[f64], &[f64])> =
        params.layout.tensors().into_iter().map(|tr| (tr.name.clone(), grads.get(tr), want.grads.get(tr))).collect();
    checks.push(("h0".into(), &ws.dh0, &want.dh0));
    checks.push(("c0".into(), &ws.dc0, &want.dc0));
    // Every tensor is measured and printed first, so a failure shows which ones are wrong.
    let mut bad = Vec::new();
    for (name, engine, reference) in checks {
        let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        // A tensor whose gradient is all zero would make the comparison vacuous.
        assert!(scale > 1e-6, "{name}: reference gradient is (nearly) zero, max |g| = {scale:e}");
        let err = common::rel_err(engine, reference);
        eprintln!("{name:>14}: max |engine - reference| / max |reference| = {err:e} (max |g| = {scale:.3e})");
        if err.is_nan() || err >= TOL {
            bad.push(format!("{name} ({err:e})"));
        }
    }
    assert!(bad.is_empty(), "relative error above {TOL:e} against the reference backward: {}", bad.join(", "));
}

/// A sequence fed as two windows, carrying (h, c), gives what it gives when fed whole.
#[test]
fn stateful_carry_equals_one_long_window() {
    let cfg = ModelConfig { vocab: 9, embed: 6, hidden: 5, layers: 2, dropout: 0.0 };
    let (b, t) = (2, 8);
    let params = random_params(&cfg, 31);
    let x = random_tokens(b * t, cfg.vocab, 32);
    let y = random_tokens(b * t, cfg.vocab, 33);
    let mut whole = State::<f64>::zeros(&cfg, b);
    let mut ws = Workspace::<f64>::new(&cfg, b, t);
    forward(&params, &mut ws, &x, &y, &mut whole, None).unwrap();
    let logits_whole = ws.logits_bt();

    let half =
        |v: &[u32], k: usize| -> Vec<u32> { (0..b).flat_map(|r| v[r * t + k * t / 2..][..t / 2].to_vec()).collect() };
    let mut parts = State::<f64>::zeros(&cfg, b);
    let mut ws2 = Workspace::<f64>::new(&cfg, b, t / 2);
    let v = cfg.vocab;
    for k in 0..2 {
        forward(&params, &mut ws2, &half(&x, k), &half(&y, k), &mut parts, None).unwrap();
        let lg = ws2.logits_bt();
        for r in 0..b {
            for s in 0..t / 2 {
                for j in 0..v {
                    let a = lg[(r * t / 2 + s) * v + j];
                    let w = logits_whole[(r * t + k * t / 2 + s) * v + j];
                    // Identical operations in the same order: equal up to GEMM blocking (1e-12).
                    assert!((a - w).abs() < 1e-12, "row {r} step {s}: {a} vs {w}");
                }
            }
        }
    }
    for (a, w) in parts.h.iter().chain(&parts.c).zip(whole.h.iter().chain(&whole.c)) {
        assert!((a - w).abs() < 1e-12);
    }
}

/// Two training steps of the reference model (dropout on, clipping on) with 1, 2, 3 and 5
/// threads: bit-identical losses, gradients, updated parameters and carried state. 1 and 2 split
/// evenly; 3 and 5 do not: H = 256 is 8 blocks of 32 units, so the recurrent team gets 2+3+3 and
/// 1+2+1+2+2 blocks, the GEMMs split their 1,024 rows or 1,024 (4H) columns into uneven pieces
/// of 352 (3 threads) and 208 (5), and the backward panel GEMMs split 32-column panels unevenly.
#[test]
fn one_two_three_and_five_threads_give_identical_bits() {
    let cfg = ModelConfig::reference(86);
    let batch = BatchConfig::default();
    let n = batch.batch * batch.seq;
    let x = random_tokens(n, 86, 41);
    let y = random_tokens(n, 86, 42);
    let opts =
        StepOptions { lr: 1e-3, clip: Some(1.0), weight_decay: 0.0, weight_drop: 0.0, key: Key::new(5), counter: 0 };
    let run = |threads| {
        let mut be = CpuBackend::new(init_params(&cfg, 7), None, batch, Some(threads)).unwrap();
        assert_eq!(be.threads(), threads);
        let s1 = be.train_step(&x, &y, &opts).unwrap();
        let g1 = be.grads().data.clone();
        let s2 = be.train_step(&y, &x, &StepOptions { counter: 1, ..opts }).unwrap();
        (s1, s2, g1, be.grads().data.clone(), be.params().unwrap().data, be.state().clone())
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let one = run(1);
    for threads in [2, 3, 5] {
        let other = run(threads);
        let t = threads;
        assert_eq!(one.0.loss.to_bits(), other.0.loss.to_bits(), "{t} threads: step 1 loss");
        assert_eq!(one.1.loss.to_bits(), other.1.loss.to_bits(), "{t} threads: step 2 loss");
        assert!(bits(&one.2) == bits(&other.2), "{t} threads: step 1 gradients differ");
        assert!(bits(&one.3) == bits(&other.3), "{t} threads: step 2 gradients differ");
        assert!(bits(&one.4) == bits(&other.4), "{t} threads: parameters differ");
        assert!(bits(&one.5.h) == bits(&other.5.h) && bits(&one.5.c) == bits(&other.5.c), "{t} threads: state differs");
    }
}

/// Forward, backward and Adam together: a tiny model learns a repeating string whose next
/// character depends on more than the current one ("abcabd": after "ab" comes c or d in turn).
#[test]
fn tiny_model_learns_a_repeating_string() {
    let text = "abcabd".repeat(200);
    let vocab = Vocab::from_text(&text);
    let cfg = ModelConfig { vocab: vocab.len(), embed: 8, hidden: 32, layers: 2, dropout: 0.0 };
    let batch = BatchConfig { batch: 4, seq: 16 };
    let batches = Batches::new(vocab.encode(&text, "text").unwrap(), batch).unwrap();
    let mut be = CpuBackend::new(init_params(&cfg, 1), None, batch, Some(1)).unwrap();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut last = f32::INFINITY;
    let mut step = 0u32;
    'outer: for _epoch in 0..100 {
        be.reset_state();
        for k in 0..batches.len() {
            batches.window(k, &mut x, &mut y);
            let opts = StepOptions {
                lr: 1e-2,
                clip: None,
                weight_decay: 0.0,
                weight_drop: 0.0,
                key: Key::new(0),
                counter: step,
            };
            last = be.train_step(&x, &y, &opts).unwrap().loss;
            step += 1;
            if step >= 400 {
                break 'outer;
            }
        }
    }
    assert!(last < 0.05, "loss after {step} steps: {last}");
}

/// The first three windows of a known text are exactly the expected index matrices.
#[test]
fn batching_follows_the_reference() {
    let text: String = ('a'..='z').collect();
    let vocab = Vocab::from_text(&text);
    let ids = vocab.encode(&text, "text").unwrap();
    let b = Batches::new(ids, BatchConfig { batch: 2, seq: 3 }).unwrap();
    // 26 chars, 2 streams of 13: windows start at 0, 3, 6, 9 (range(0, 13 - 3, 3)).
    assert_eq!(b.len(), 4);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let expect = [
        ([0, 1, 2, 13, 14, 15], [1, 2, 3, 14, 15, 16]),
        ([3, 4, 5, 16, 17, 18], [4, 5, 6, 17, 18, 19]),
        ([6, 7, 8, 19, 20, 21], [7, 8, 9, 20, 21, 22]),
    ];
    for (k, (ex, ey)) in expect.iter().enumerate() {
        b.window(k, &mut x, &mut y);
        assert_eq!(&x, ex, "window {k} inputs");
        assert_eq!(&y, ey, "window {k} targets");
    }
}

#[test]
fn bad_windows_are_errors_not_panics() {
    let cfg = ModelConfig { vocab: 5, embed: 3, hidden: 2, layers: 1, dropout: 0.0 };
    let params = Params::<f64>::zeros(&cfg);
    let mut ws = Workspace::<f64>::new(&cfg, 2, 3);
    let mut st = State::zeros(&cfg, 2);
    let e = forward(&params, &mut ws, &[0; 5], &[0; 6], &mut st, None).unwrap_err().to_string();
    assert!(e.contains("batch*seq"), "{e}");
    let e = forward(&params, &mut ws, &[0, 1, 2, 3, 4, 5], &[0; 6], &mut st, None).unwrap_err().to_string();
    assert!(e.contains("token id 5"), "{e}");
    let mut st_bad = State::<f64>::zeros(&cfg, 3);
    assert!(forward(&params, &mut ws, &[0; 6], &[0; 6], &mut st_bad, None).is_err());
}

/// `Workspace::bytes` (what `train` announces and checks against the machine before it starts)
/// bounds what a workspace holds after a training step, with dropout and with weight drop, whose
/// `W_hh` masks and dropped copies it must count.
#[test]
fn the_workspace_estimate_bounds_what_a_training_step_holds() {
    let cfg = ModelConfig { vocab: 11, embed: 24, hidden: 40, layers: 2, dropout: 0.3 };
    let (b, t) = (3, 6);
    let params = random_params(&cfg, 21).map(|v| v as f32);
    let x = random_tokens(b * t, cfg.vocab, 22);
    let y = random_tokens(b * t, cfg.vocab, 23);
    for weight_drop in [0.0, 0.4] {
        let mut ws = Workspace::<f32>::new(&cfg, b, t);
        let mut st = State::zeros(&cfg, b);
        let drop = Some(Dropout { weight_drop, ..Dropout::new(Key::new(5), 1) });
        forward(&params, &mut ws, &x, &y, &mut st, drop).unwrap();
        let mut grads = Params::<f32>::zeros(&cfg);
        backward(&params, &mut grads, &mut ws).unwrap();
        let held = ws.held_bytes() as f64;
        let bound = Workspace::<f32>::bytes(&cfg, b, t, weight_drop > 0.0);
        assert!(held <= bound, "weight drop {weight_drop}: holds {held} bytes, estimate {bound}");
        if weight_drop > 0.0 {
            // Without its term the estimate would fall short.
            let without = Workspace::<f32>::bytes(&cfg, b, t, false);
            assert!(held > without, "holds {held} bytes, the estimate without weight drop {without}");
        }
    }
}
