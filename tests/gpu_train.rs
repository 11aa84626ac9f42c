//! The GPU training step against the CPU engine: one forward/backward of a small model (loss,
//! accuracy, every gradient tensor, the carried state), evaluation, clipping, a non-finite step,
//! handing a run between devices through a checkpoint file, and 20 steps of the
//! reference-shaped model, parameters compared tensor by tensor.

mod common;
use common::gpu::{apart_per_tensor, gpu_or_skip, random_params, rel_err, tokens};
use folklstm::backend::{StepOptions, Trainer};
use folklstm::checkpoint::{self, Checkpoint, TrainMeta};
use folklstm::corpus::Vocab;
use folklstm::cpu::{CpuBackend, Dropout, State, Workspace, backward, forward};
use folklstm::gpu::GpuTrainer;
use folklstm::model::{BatchConfig, ModelConfig, Params, init_params};
use folklstm::rng::Key;

/// Small, and with every size off the kernels' tiles: V = 11, E = 9, H = 37, L = 2; B = 5, T = 7.
fn small() -> (ModelConfig, BatchConfig) {
    (ModelConfig { vocab: 11, embed: 9, hidden: 37, layers: 2, dropout: 0.25 }, BatchConfig { batch: 5, seq: 7 })
}

fn opts(counter: u32, clip: Option<f32>) -> StepOptions {
    StepOptions { lr: 3e-3, clip, weight_decay: 0.0, weight_drop: 0.0, key: Key::new(77), counter }
}

/// The f64 engine's gradients for the same step: the truth both f32 engines are measured against.
fn f64_grads(p: &Params<f32>, b: BatchConfig, x: &[u32], y: &[u32], drop: Dropout) -> (f64, Params<f64>) {
    let p64 = p.map(|v| v as f64);
    let mut ws = Workspace::<f64>::new(&p.config, b.batch, b.seq);
    let mut st = State::zeros(&p.config, b.batch);
    let loss = forward(&p64, &mut ws, x, y, &mut st, Some(drop)).unwrap();
    let mut g = Params::<f64>::zeros(&p.config);
    backward(&p64, &mut g, &mut ws).unwrap();
    (loss.loss, g)
}

#[test]
fn one_step_loss_and_every_gradient_tensor_match_the_cpu() {
    if gpu_or_skip().is_none() {
        return;
    }
    // Two layers, and four: the layer wavefront runs up to three layers' steps in one dispatch,
    // so four take two dispatches where all four have a step.
    for layers in [2, 4] {
        one_step_matches(ModelConfig { layers, ..small().0 });
    }
}

fn one_step_matches(cfg: ModelConfig) {
    let batch = small().1;
    eprintln!("layers {}", cfg.layers);
    let p = random_params(&cfg, 5, 0.3);
    let n = batch.batch * batch.seq;
    let x = tokens(n, cfg.vocab, 6);
    let y = tokens(n, cfg.vocab, 7);
    let drop = Dropout::new(Key::new(9), 4);
    let mut cpu = CpuBackend::new(p.clone(), None, batch, Some(1)).unwrap();
    let mut gpu = GpuTrainer::new(p.clone(), None, batch).unwrap();
    let lc = cpu.forward_backward(&x, &y, Some(drop)).unwrap();
    let lg = gpu.forward_backward(&x, &y, Some(drop)).unwrap();
    let (l64, g64) = f64_grads(&p, batch, &x, &y, drop);

    // Loss: a mean of 35 log-sum-exps of order 2.4; both f32 engines are within a few ulp of
    // each other and of f64 (observed ~1e-7 relative).
    assert!(((lg.loss as f64) - lc.loss).abs() <= 1e-5 * lc.loss, "{} vs {}", lg.loss, lc.loss);
    assert!(((lg.loss as f64) - l64).abs() <= 1e-5 * l64);
    assert_eq!(lg.correct, lc.correct);
    assert_eq!(lg.tokens, lc.tokens);
    assert!(lg.in_range);

    // Gradients: every tensor, as max |Δ| / max |g|. Both engines round each product and sum
    // in f32, in different orders (GEMM tiles, per-symbol sums, fused recurrent steps). The CPU
    // engine is held to 1e-5 of PyTorch's f64 on the fixtures; the GPU is held to the same bar
    // against the f64 engine here, and so to 2e-5 against the CPU. Observed: ≤ 7.3e-7 for every
    // tensor on lavapipe (printed below).
    let gc = cpu.grads().clone();
    let gg = gpu.grads().unwrap();
    let tensors = p.layout.tensors();
    for t in &tensors {
        let (a, b, c) = (gg.get(t), gc.get(t), g64.get(t));
        let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
        let (e_gc, e_g64, e_c64) = (rel_err(a, b), rel_err(a, &c32), rel_err(b, &c32));
        eprintln!("{:12} gpu-cpu {e_gc:.2e}  gpu-f64 {e_g64:.2e}  cpu-f64 {e_c64:.2e}", t.name);
        assert!(e_gc <= 2e-5, "{}: gpu vs cpu {e_gc:e}", t.name);
        assert!(e_g64 <= 1e-5, "{}: gpu vs f64 {e_g64:e}", t.name);
    }
    // Layer 0's per-symbol scatter leaves the embedding rows of absent symbols at exactly 0.
    let present: Vec<bool> = (0..cfg.vocab as u32).map(|v| x.contains(&v)).collect();
    let e = cfg.embed;
    for (v, &here) in present.iter().enumerate() {
        if !here {
            assert!(gg.get(&p.layout.embedding)[v * e..][..e].iter().all(|&g| g == 0.0));
        }
    }
    // The carried state: the window's final (h, c) after 7 recurrent steps; values of order 1
    // with the gradients' f32 rounding, observed ~1e-7.
    let ((hc, cc), (hg, cg)) = (Trainer::state(&cpu).unwrap(), Trainer::state(&gpu).unwrap());
    assert!(rel_err(&hg, &hc) <= 1e-5, "h {:e}", rel_err(&hg, &hc));
    assert!(rel_err(&cg, &cc) <= 1e-5, "c {:e}", rel_err(&cg, &cc));
}

#[test]
fn training_steps_clipping_and_evaluation_follow_the_cpu() {
    if gpu_or_skip().is_none() {
        return;
    }
    let (cfg, batch) = small();
    let p = random_params(&cfg, 15, 0.3);
    let n = batch.batch * batch.seq;
    let mut cpu = CpuBackend::new(p.clone(), None, batch, Some(1)).unwrap();
    let mut gpu = GpuTrainer::new(p, None, batch).unwrap();
    // Clip at 0.5: the gradient norm of this model is above it for the first steps, so the
    // clipped path runs (checked below); the last steps run without clipping.
    let mut clipped = 0;
    for k in 0..6u32 {
        let x = tokens(n, cfg.vocab, 100 + k as u64);
        let y = tokens(n, cfg.vocab, 200 + k as u64);
        let clip = (k < 4).then_some(0.5);
        let sc = cpu.train_step(&x, &y, &opts(k, clip)).unwrap();
        let sg = gpu.train_step(&x, &y, &opts(k, clip)).unwrap();
        eprintln!("step {k}: loss {} vs {}, norm {} vs {}", sg.loss, sc.loss, sg.grad_norm, sc.grad_norm);
        // Six Adam steps of 3e-3 from the same start: the parameters differ by f32 rounding
        // only, so the losses agree to a few ulp and the norms (two-stage f32 sums over ~7,500
        // squares, against the CPU's f64) to well under 1e-4.
        assert!((sg.loss - sc.loss).abs() <= 1e-5 * sc.loss, "step {k}: loss");
        assert!((sg.grad_norm - sc.grad_norm).abs() <= 1e-4 * sc.grad_norm, "step {k}: norm");
        assert_eq!((sg.correct, sg.tokens, sg.in_range), (sc.correct, sc.tokens, sc.in_range));
        clipped += clip.is_some_and(|c| sc.grad_norm > c) as u32;
    }
    assert!(clipped > 0, "no step was clipped: raise the test's clip");
    // Parameters after 6 steps: each Adam step moves an entry by about lr·m/sqrt(v), and the
    // gradients differ by ≤ 2e-5 relative, so well-conditioned entries differ by ~1e-7 of
    // their scale; 1e-4 leaves room for entries whose gradient is near 0, where m/sqrt(v) is
    // sensitive (observed ≤ 6e-7).
    let (pc, pg) = (cpu.params().unwrap(), gpu.params().unwrap());
    for t in pc.layout.tensors() {
        let e = rel_err(pg.get(t), pc.get(t));
        eprintln!("{:12} params after 6 steps: {e:.1e}", t.name);
        assert!(e <= 1e-4, "{} after 6 steps: {e:e}", t.name);
    }
    let (ac, ag) = (cpu.adam_state().unwrap(), gpu.adam_state().unwrap());
    assert_eq!(ac.step, ag.step);
    // m is an average of (clipped) gradients: the gradients' bar; v averages their squares,
    // which doubles a relative error.
    let (em, ev) = (rel_err(&ag.m, &ac.m), rel_err(&ag.v, &ac.v));
    eprintln!("adam moments after 6 steps: m {em:.1e}, v {ev:.1e}");
    assert!(em <= 2e-5, "m {em:e}");
    assert!(ev <= 4e-5, "v {ev:e}");
    // Evaluation carries the state on and turns dropout off, on both.
    for k in 0..2u64 {
        let x = tokens(n, cfg.vocab, 300 + k);
        let y = tokens(n, cfg.vocab, 400 + k);
        let (ec, eg) = (cpu.eval_step(&x, &y).unwrap(), gpu.eval_step(&x, &y).unwrap());
        assert!((eg.loss - ec.loss).abs() <= 1e-5 * ec.loss, "eval loss {} vs {}", eg.loss, ec.loss);
        assert_eq!((eg.correct, eg.grad_norm, eg.in_range), (ec.correct, 0.0, true));
    }
    // reset_state zeroes the carry: the same window then gives the same loss as a fresh start.
    let x = tokens(n, cfg.vocab, 500);
    let y = tokens(n, cfg.vocab, 501);
    gpu.reset_state();
    let a = gpu.eval_step(&x, &y).unwrap();
    let b = gpu.eval_step(&x, &y).unwrap();
    gpu.reset_state();
    let c = gpu.eval_step(&x, &y).unwrap();
    assert_eq!(a, c, "reset_state");
    assert_ne!(a.loss, b.loss, "the carried state changes the second window");
}

#[test]
fn weight_decay_shrinks_the_same_weights_on_both_devices() {
    if gpu_or_skip().is_none() {
        return;
    }
    let (cfg, batch) = small();
    let p = random_params(&cfg, 16, 0.3);
    let n = batch.batch * batch.seq;
    let mut cpu = CpuBackend::new(p.clone(), None, batch, Some(1)).unwrap();
    let mut gpu = GpuTrainer::new(p.clone(), None, batch).unwrap();
    let mut plain = CpuBackend::new(p, None, batch, Some(1)).unwrap();
    // λ = 2 at lr 3e-3: each update shrinks every weight by 0.6%, about Adam's own step for a
    // weight of 0.5, so a decay left out, doubled or applied to the gradient shows at once.
    let wd = StepOptions { weight_decay: 2.0, ..opts(0, None) };
    for k in 0..6u32 {
        let x = tokens(n, cfg.vocab, 700 + k as u64);
        let y = tokens(n, cfg.vocab, 800 + k as u64);
        let o = StepOptions { counter: k, ..wd };
        let (sc, sg) = (cpu.train_step(&x, &y, &o).unwrap(), gpu.train_step(&x, &y, &o).unwrap());
        plain.train_step(&x, &y, &StepOptions { weight_decay: 0.0, ..o }).unwrap();
        // The same bar as the plain steps above: f32 rounding apart.
        assert!((sg.loss - sc.loss).abs() <= 1e-5 * sc.loss, "step {k}: loss {} vs {}", sg.loss, sc.loss);
    }
    // After 6 steps: the GPU's weights are the CPU's to the bar of the plain steps above
    // (1e-4 of each tensor's scale), and both are far from plain Adam's (the decay took
    // 1 - 0.994^6 = 3.5% of every weight, so the largest entries moved by about 1e-2 of the
    // scale, 100x the bar).
    let (pc, pg, pp) = (cpu.params().unwrap(), gpu.params().unwrap(), plain.params().unwrap());
    for t in pc.layout.tensors() {
        let (e, decayed) = (rel_err(pg.get(t), pc.get(t)), rel_err(pp.get(t), pc.get(t)));
        eprintln!("{:12} with weight decay, gpu vs cpu {e:.1e}; against plain Adam {decayed:.1e}", t.name);
        assert!(e <= 1e-4, "{}: gpu vs cpu {e:e}", t.name);
        assert!(decayed >= 1e-2, "{}: the decay changed it by only {decayed:e}", t.name);
    }
    // Weight drop is the CPU engine's alone: the GPU refuses it rather than train without it.
    let (x, y) = (tokens(n, cfg.vocab, 900), tokens(n, cfg.vocab, 901));
    let e = gpu.train_step(&x, &y, &StepOptions { weight_drop: 0.3, ..wd }).unwrap_err().to_string();
    assert!(e.contains("--weight-drop") && e.contains("--device cpu"), "{e}");
}

#[test]
fn a_non_finite_step_changes_nothing_and_a_run_moves_between_devices() {
    if gpu_or_skip().is_none() {
        return;
    }
    let (cfg, batch) = small();
    let n = batch.batch * batch.seq;
    let p = random_params(&cfg, 25, 0.3);
    // Train 3 steps on the GPU, hand over to the CPU for 2 more, and compare with 5 CPU
    // steps: checkpoints are the same whichever device wrote them.
    let mut gpu = GpuTrainer::new(p.clone(), None, batch).unwrap();
    let mut cpu = CpuBackend::new(p.clone(), None, batch, Some(1)).unwrap();
    let windows: Vec<(Vec<u32>, Vec<u32>)> =
        (0..5).map(|k| (tokens(n, cfg.vocab, 600 + k), tokens(n, cfg.vocab, 700 + k))).collect();
    for (k, (x, y)) in windows.iter().enumerate() {
        cpu.train_step(x, y, &opts(k as u32, None)).unwrap();
    }
    for (k, (x, y)) in windows.iter().enumerate().take(3) {
        gpu.train_step(x, y, &opts(k as u32, None)).unwrap();
    }
    // Hand over through a checkpoint file, as `train --resume` does: parameters, Adam's moments
    // and step, and the carried state (saved when training stops mid-epoch). The file gives
    // back exactly what the GPU had.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.0+3.safetensors");
    let (h, c) = Trainer::state(&gpu).unwrap();
    let ck = Checkpoint {
        params: gpu.params().unwrap(),
        vocab: Vocab::from_chars("abcdefghijk".chars()),
        adam: Some(gpu.adam_state().unwrap()),
        state: Some((h, c)),
        meta: TrainMeta {
            epoch: 0,
            window: 3,
            step: 3,
            rng_seed: 77,
            batch,
            lr: 3e-3,
            clip: None,
            val_fraction: 0.0,
            corpus_fingerprint: "00".into(),
            corpus: "t.abc".into(),
            partial: Some(Default::default()),
            schedule: None,
            transpose: None,
            transpose_keys: Vec::new(),
            reflow: false,
            label_parts: false,
            line_bars: None,
            mark_lines: false,
            mark_last: false,
            restate_key: false,
            tonic: None,
            weight_decay: 0.0,
            weight_drop: 0.0,
            best: None,
        },
    };
    checkpoint::save(&path, &ck).unwrap();
    let back = checkpoint::load(&path).unwrap();
    assert_eq!(back, ck, "the checkpoint file changed what the GPU wrote");
    let mut handed = CpuBackend::new(back.params, back.adam, batch, Some(1)).unwrap();
    let (h, c) = back.state.unwrap();
    handed.set_state(&h, &c).unwrap();
    for (k, (x, y)) in windows.iter().enumerate().skip(3) {
        handed.train_step(x, y, &opts(k as u32, None)).unwrap();
    }
    let (a, b) = (handed.params().unwrap(), cpu.params().unwrap());
    assert_eq!(handed.adam_state().unwrap().step, 5);
    // Per tensor, against how far the 5 steps moved it: the gradients differ by ≤ 2e-5 of each
    // tensor's scale (the one-step test above), so the Adam steps of well-conditioned entries
    // by about that fraction of themselves, and their sum by that fraction of the movement;
    // 1e-4 leaves 5x for entries whose gradient is near 0. On top, the rounding floor of θ
    // itself (one f32 ulp per step: 5 steps on entries up to ~1.3 give ~6e-7, which is what
    // the worst tensors show). Observed ≤ 0.4 of the bound (printed below).
    for (name, moved, apart, floor) in apart_per_tensor(&a, &b, &p, 5) {
        let bound = 1e-4 * moved + floor;
        eprintln!("{name:12} handed over: moved {moved:.2e}, apart {apart:.1e} ({:.2} of the bound)", apart / bound);
        assert!(moved > 1e-3, "{name}: 5 steps did not move it ({moved:e})");
        assert!(apart <= bound, "{name}: {apart:e} apart, bound {bound:e} (moved {moved:e})");
    }
    let (ma, mb) = (handed.adam_state().unwrap(), cpu.adam_state().unwrap());
    for t in p.layout.tensors() {
        let r = t.range.clone();
        let (em, ev) = (rel_err(&ma.m[r.clone()], &mb.m[r.clone()]), rel_err(&ma.v[r.clone()], &mb.v[r]));
        // The 6-step test's bars for the moments: m the gradients' 2e-5, v twice that.
        assert!(em <= 2e-5 && ev <= 4e-5, "{}: adam m {em:e}, v {ev:e}", t.name);
    }
    // And back: the CPU's parameters, moments and state on a fresh GPU trainer give the CPU's
    // loss on the next window.
    let mut back = GpuTrainer::new(cpu.params().unwrap(), Some(cpu.adam_state().unwrap()), batch).unwrap();
    let (h, c) = Trainer::state(&cpu).unwrap();
    back.set_state(&h, &c).unwrap();
    assert!(back.set_state(&h[1..], &c).is_err());
    let (x, y) = (tokens(n, cfg.vocab, 650), tokens(n, cfg.vocab, 750));
    let (ec, eg) = (cpu.eval_step(&x, &y).unwrap(), back.eval_step(&x, &y).unwrap());
    assert!((eg.loss - ec.loss).abs() <= 1e-5 * ec.loss, "{} vs {}", eg.loss, ec.loss);

    // A NaN parameter: the loss is NaN, the step reports it and leaves everything as it was.
    let mut bad = p.clone();
    bad.by_name_mut("dense.b").unwrap()[3] = f32::NAN;
    let mut gpu = GpuTrainer::new(bad.clone(), None, batch).unwrap();
    let mut cpu = CpuBackend::new(bad.clone(), None, batch, Some(1)).unwrap();
    let (x, y) = &windows[0];
    let sg = gpu.train_step(x, y, &opts(0, Some(1.0))).unwrap();
    let sc = cpu.train_step(x, y, &opts(0, Some(1.0))).unwrap();
    assert!(!sg.in_range && !sc.in_range);
    assert!(sg.loss.is_nan());
    let after = gpu.params().unwrap();
    assert!(
        after.data.iter().zip(&bad.data).all(|(a, b)| a.to_bits() == b.to_bits()),
        "parameters moved on a non-finite step"
    );
    let st = gpu.adam_state().unwrap();
    assert_eq!(st.step, 0);
    assert!(st.m.iter().chain(&st.v).all(|&v| v == 0.0));

    // Bad input is an error, not a panic.
    assert!(gpu.train_step(&x[1..], y, &opts(1, None)).is_err());
    let mut oov = x.clone();
    oov[0] = cfg.vocab as u32;
    assert!(gpu.train_step(&oov, y, &opts(1, None)).is_err());
}

/// The reference model's shape (V = 86, E = 512, H = 256, L = 3, dropout 0.2; B = 16, T = 64)
/// on a synthetic corpus, 20 steps from the same init on both devices.
#[test]
fn twenty_reference_steps_give_the_same_loss_curve() {
    if gpu_or_skip().is_none() {
        return;
    }
    let cfg = ModelConfig::reference(86);
    let batch = BatchConfig::default();
    let p = init_params(&cfg, 2024);
    // A corpus with structure to learn: a repeating tune-like pattern with noise in it.
    let len = 20 * batch.batch * batch.seq + 1;
    let pattern = tokens(257, cfg.vocab, 31);
    let noise_ids = tokens(len, cfg.vocab, 32);
    let corpus: Vec<u32> = (0..len).map(|i| if i % 7 == 3 { noise_ids[i] } else { pattern[i % 257] }).collect();
    let mut cpu = CpuBackend::new(p.clone(), None, batch, None).unwrap();
    let mut gpu = GpuTrainer::new(p.clone(), None, batch).unwrap();
    let (b, t) = (batch.batch, batch.seq);
    let stream = corpus.len() / b;
    let mut worst = 0.0f64;
    let (mut time_cpu, mut time_gpu) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for k in 0..20 {
        // Window k of b contiguous streams.
        let mut x = Vec::with_capacity(b * t);
        let mut y = Vec::with_capacity(b * t);
        for s in 0..b {
            let at = s * stream + (k * t) % (stream - t - 1);
            x.extend_from_slice(&corpus[at..at + t]);
            y.extend_from_slice(&corpus[at + 1..at + t + 1]);
        }
        let o = StepOptions {
            lr: 2e-3,
            clip: Some(5.0),
            weight_decay: 0.0,
            weight_drop: 0.0,
            key: Key::new(1),
            counter: k as u32,
        };
        let t0 = std::time::Instant::now();
        let sc = cpu.train_step(&x, &y, &o).unwrap();
        let t1 = std::time::Instant::now();
        let sg = gpu.train_step(&x, &y, &o).unwrap();
        time_cpu += t1 - t0;
        time_gpu += t1.elapsed();
        let rel = ((sg.loss - sc.loss) / sc.loss).abs() as f64;
        worst = worst.max(rel);
        eprintln!(
            "step {k:2}: cpu {:.6} gpu {:.6} rel {rel:.1e}  acc {} / {}",
            sc.loss, sg.loss, sc.correct, sg.correct
        );
        // The bar: 1e-3 relative at every step.
        assert!(rel <= 1e-3, "step {k}: cpu {} gpu {}", sc.loss, sg.loss);
        assert!(sg.in_range && sc.in_range);
    }
    eprintln!("worst relative loss difference over 20 steps: {worst:.1e}");
    // The parameters after 20 steps, tensor by tensor, against how far the 20 steps moved each
    // (about 20·lr = 0.04 for an entry whose gradient keeps its sign). The GPU's gradients
    // differ from the CPU's by ≤ 2e-5 of each tensor's scale per step (the one-step test; the
    // sums here are longer, K up to 1,024 instead of 35, but the fixtures hold the CPU engine
    // to 1e-5 of f64 at this size), so each Adam step of a well-conditioned entry differs by
    // about that fraction of itself and the sum of the steps by that fraction of the movement;
    // 1e-4 of the movement leaves 5x for entries whose gradient hovers near 0 and for the
    // feedback of those differences through later steps; plus the rounding floor of θ (one
    // f32 ulp per step). One tensor updated wrongly on the GPU (a bias, a step off by 0.1%)
    // shows as ≥ 1e-3 of its movement.
    let (pc, pg) = (cpu.params().unwrap(), gpu.params().unwrap());
    for (name, moved, apart, floor) in apart_per_tensor(&pg, &pc, &p, 20) {
        let bound = 1e-4 * moved + floor;
        eprintln!("{name:12} after 20 steps: moved {moved:.2e}, apart {apart:.1e} ({:.2} of the bound)", apart / bound);
        assert!(moved > 1e-3, "{name}: 20 steps did not move it ({moved:e})");
        assert!(apart <= bound, "{name}: {apart:e} apart, bound {bound:e} (moved {moved:e})");
    }
    eprintln!("20 steps: cpu {:.1} s, {} {:.1} s", time_cpu.as_secs_f64(), gpu.describe(), time_gpu.as_secs_f64());
}

/// `train_steps` (and `eval_steps`) queues each step before the previous one's results are
/// read, and the device counts Adam's t: the results are those of the same steps run one by
/// one, bit for bit,
/// across more steps than one queue holds, with a schedule, clipping, and a step that is not
/// finite (which must leave t, and the parameters, as they were).
#[test]
fn queued_steps_are_the_steps_one_by_one_bit_for_bit() {
    if gpu_or_skip().is_none() {
        return;
    }
    let (cfg, batch) = small();
    let n = batch.batch * batch.seq;
    let windows: Vec<(Vec<u32>, Vec<u32>)> =
        (0..20).map(|k| (tokens(n, cfg.vocab, 900 + k), tokens(n, cfg.vocab, 950 + k))).collect();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    // Case 1: 20 steps (16 queue, then 4), the rate rising, every third step clipped. Case 2:
    // step 1's rate is NaN, so its update turns the parameters NaN, and the later steps are not
    // finite: Adam's t must stop at 2 either way.
    for (case, nan_at) in [(1, None), (2, Some(1))] {
        let p = random_params(&cfg, 31, 0.3);
        let steps = if nan_at.is_some() { 4 } else { windows.len() };
        let opts: Vec<StepOptions> = (0..steps)
            .map(|k| StepOptions {
                lr: if nan_at == Some(k) { f32::NAN } else { 1e-3 * (1.0 + k as f32 / 10.0) },
                clip: (k % 3 == 0).then_some(0.5),
                ..opts(k as u32, None)
            })
            .collect();
        let mut one = GpuTrainer::new(p.clone(), None, batch).unwrap();
        let mut queued = GpuTrainer::new(p.clone(), None, batch).unwrap();
        let a: Vec<_> =
            windows.iter().zip(&opts).map(|((x, y), o)| format!("{:?}", one.train_step(x, y, o).unwrap())).collect();
        let refs: Vec<(&[u32], &[u32])> = windows[..steps].iter().map(|(x, y)| (&x[..], &y[..])).collect();
        let b: Vec<_> = queued.train_steps(&refs, &opts).unwrap().iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(a, b, "case {case}: the steps' results");
        assert_eq!(bits(&one.params().unwrap().data), bits(&queued.params().unwrap().data), "case {case}");
        let (ma, mb) = (one.adam_state().unwrap(), queued.adam_state().unwrap());
        assert_eq!((bits(&ma.m), bits(&ma.v)), (bits(&mb.m), bits(&mb.v)), "case {case}: Adam's moments");
        assert_eq!(ma.step, mb.step);
        assert_eq!(ma.step, if nan_at.is_some() { 2 } else { steps as u64 }, "case {case}: Adam's t");
        let ((h1, c1), (h2, c2)) = (Trainer::state(&one).unwrap(), Trainer::state(&queued).unwrap());
        assert_eq!((bits(&h1), bits(&c1)), (bits(&h2), bits(&c2)), "case {case}: the carried state");
        // Evaluation queues the same way (validation: 18 windows, 16 then 2), carrying the state.
        let a: Vec<_> = refs.iter().take(18).map(|&(x, y)| format!("{:?}", one.eval_step(x, y).unwrap())).collect();
        let b: Vec<_> =
            queued.eval_steps(&refs[..refs.len().min(18)]).unwrap().iter().map(|s| format!("{s:?}")).collect();
        assert_eq!(a, b, "case {case}: evaluation");
        assert_eq!(a.len(), refs.len().min(18));
        let ((h1, c1), (h2, c2)) = (Trainer::state(&one).unwrap(), Trainer::state(&queued).unwrap());
        assert_eq!((bits(&h1), bits(&c1)), (bits(&h2), bits(&c2)), "case {case}: the state after evaluation");
    }
}
