//! The GPU sampler against the CPU sampler (`folklstm::cpu::CpuSampler`): the logits for the
//! same tokens, and whole tunes from `sample::generate`, which draws on the host with one rule
//! for every device.

mod common;
use common::gpu::{gpu_or_skip, random_params, rel_err, tokens};
use folklstm::backend::Sampler;
use folklstm::corpus::Vocab;
use folklstm::cpu::CpuSampler;
use folklstm::gpu::GpuSampler;
use folklstm::model::ModelConfig;
use folklstm::rng::{Key, stream};
use folklstm::sample::{SampleOptions, generate, generate_with_stats};

/// How far the draw `u` sits from the nearest boundary of the inverse CDF of
/// softmax(logits / temperature), relative to the total (f64).
fn draw_margin(logits: &[f32], temperature: f64, u: f64) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let w: Vec<f64> = logits.iter().map(|&x| ((x as f64 - max) / temperature).exp()).collect();
    let total: f64 = w.iter().sum();
    let mut cum = 0.0;
    let mut margin = f64::INFINITY;
    for wj in w {
        cum += wj;
        margin = margin.min((cum / total - u).abs());
    }
    margin
}

#[test]
fn logits_match_the_cpu_sampler_step_for_step_and_reset_starts_over() {
    if gpu_or_skip().is_none() {
        return;
    }
    let cfg = ModelConfig { vocab: 11, embed: 9, hidden: 37, layers: 2, dropout: 0.25 };
    let p = random_params(&cfg, 41, 0.3);
    let v = cfg.vocab;
    let mut gpu = GpuSampler::new(&p).unwrap();
    assert!(gpu.step(&[0; 5], &mut vec![0.0; 5 * v]).is_err(), "a step before reset must be an error");
    // Batch 1 and batch 5: the CPU sampler has a separate path for each.
    for n in [1usize, 5] {
        gpu.reset(n).unwrap();
        let mut cpu = CpuSampler::new(&p, Some(1)).unwrap();
        cpu.reset(n).unwrap();
        let (mut lg, mut lc) = (vec![0.0f32; n * v], vec![0.0f32; n * v]);
        let mut first = Vec::new();
        for k in 0..30 {
            let toks = tokens(n, v, 50 + k);
            gpu.step(&toks, &mut lg).unwrap();
            cpu.step(&toks, &mut lc).unwrap();
            // Logits after k+1 recurrent steps, f32 on both sides in different orders; the state
            // is bounded by tanh, so the error does not grow with k (observed ~1e-7 relative).
            let e = rel_err(&lg, &lc);
            assert!(e <= 1e-5, "batch {n} step {k}: {e:e}");
            if k == 0 {
                first = lg.clone();
            }
        }
        // reset zeroes the state: the first step again gives the first logits.
        gpu.reset(n).unwrap();
        gpu.step(&tokens(n, v, 50), &mut lg).unwrap();
        assert_eq!(lg, first, "batch {n}: reset");
    }
    // Bad calls are errors, not panics.
    let mut two = vec![0.0f32; 2 * v];
    gpu.reset(2).unwrap();
    assert!(gpu.step(&[0; 3], &mut two).is_err());
    assert!(gpu.step(&[0, 11], &mut two).is_err());
    assert!(gpu.step(&[0, 1], &mut vec![0.0; 3 * v]).is_err());
    assert!(gpu.reset(0).is_err());
}

/// The reference-shaped model (V = 86, E = 512, H = 256, L = 3): `sample::generate` with the same
/// seed and temperature writes the same tunes on both devices, for a single tune of 250
/// characters and a batch of 3 tunes of 200.
#[test]
fn the_same_seed_samples_the_same_tune_on_both_devices() {
    if gpu_or_skip().is_none() {
        return;
    }
    let cfg = ModelConfig::reference(86);
    // Noise on top of the init makes the distributions uneven (a realistic draw, not a flat one).
    let p = random_params(&cfg, 43, 0.05);
    let vocab = Vocab::from_chars((32u8..118).map(char::from));
    assert_eq!(vocab.len(), cfg.vocab);
    let mut gpu = GpuSampler::new(&p).unwrap();
    let mut cpu = CpuSampler::new(&p, None).unwrap();
    let temperature = 0.8;
    for (count, len) in [(1usize, 250usize), (3, 200)] {
        let opts = SampleOptions { len, temperature, rng_seed: 1000 + count as u64, count, ..Default::default() };
        let tg = generate(&mut gpu, &vocab, &opts).unwrap();
        let tc = generate(&mut cpu, &vocab, &opts).unwrap();
        for (s, (a, b)) in tg.iter().zip(&tc).enumerate() {
            assert_eq!(a.chars().count(), len);
            let first_diff = a.chars().zip(b.chars()).position(|(x, y)| x != y);
            assert_eq!(first_diff, None, "tune {s} of {count}: the devices part at {first_diff:?}\n{a}\n{b}");
        }
        let distinct = {
            let mut c: Vec<char> = tc[0].chars().collect();
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        assert!(distinct > 10, "only {distinct} symbols drawn: the test would prove little");

        // Why equal and not lucky: feed the CPU's tunes to both samplers in lockstep. A draw
        // can only change when the logits move a CDF boundary across u; a logit change of δ
        // moves every boundary by at most about 2δ/temperature. Every draw of this seed was
        // farther than that from a boundary.
        gpu.reset(count).unwrap();
        cpu.reset(count).unwrap();
        let v = cfg.vocab;
        let ids: Vec<Vec<u32>> = tc.iter().map(|t| vocab.encode(t, "tune").unwrap()).collect();
        let key = Key::new(opts.rng_seed);
        let (mut lg, mut lc) = (vec![0.0f32; count * v], vec![0.0f32; count * v]);
        let (mut delta, mut margin) = (0.0f64, f64::INFINITY);
        for k in 0..len - 1 {
            let toks: Vec<u32> = ids.iter().map(|t| t[k]).collect();
            gpu.step(&toks, &mut lg).unwrap();
            cpu.step(&toks, &mut lc).unwrap();
            for s in 0..count {
                let u = key.uniform(k as u32 + 1, stream::SAMPLE + s as u32, 0) as f64;
                margin = margin.min(draw_margin(&lc[s * v..][..v], temperature as f64, u));
            }
            delta = lg.iter().zip(&lc).fold(delta, |m, (a, b)| m.max((a - b).abs() as f64));
        }
        eprintln!("{count} tune(s) x {len}: max logit difference {delta:.1e}, smallest draw margin {margin:.1e}");
        assert!(2.0 * delta / (temperature as f64) < margin, "a draw sat within rounding of a boundary");
    }
}

/// Free sampling on the GPU draws runs of characters on the device (`Sampler::run_ahead`) and
/// redraws each on the host. The text must be exactly that of stepping through the host one
/// character at a time: for one stream and three, runs longer and shorter than the text (7 steps:
/// several runs and a short last one), top-k and temperatures, after a seed text. And when the
/// device's draws are made wrong on purpose (another counter), every run is cut at its first
/// wrong draw and the text still does not change.
#[test]
fn runs_drawn_on_the_device_write_what_the_host_would_draw() {
    if gpu_or_skip().is_none() {
        return;
    }
    // V = 70: more columns than the draw kernel's 64 invocations (two per invocation); H = 37,
    // off every tile size.
    let cfg = ModelConfig { vocab: 70, embed: 19, hidden: 37, layers: 2, dropout: 0.0 };
    let p = random_params(&cfg, 47, 0.4);
    let vocab = Vocab::from_chars((40u8..110).map(char::from));
    let mut gpu = GpuSampler::new(&p).unwrap();
    let cases = [(1usize, 1.0f32, None), (3, 0.7, Some(5)), (3, 1.5, Some(69))];
    for (count, temperature, top_k) in cases {
        let opts = SampleOptions {
            len: 150,
            temperature,
            top_k,
            count,
            rng_seed: 7 + count as u64,
            seed_text: Some("HELLO".into()),
            first_stream: 3,
            ..Default::default()
        };
        let case = format!("{count} stream(s), T {temperature}, top-k {top_k:?}");
        let run = |gpu: &mut GpuSampler, ahead: usize, skew: u32| {
            gpu.set_run_ahead(ahead);
            gpu.skew_draws(skew);
            generate_with_stats(gpu, &vocab, &opts).unwrap()
        };
        let (host, hs) = run(&mut gpu, 0, 0);
        assert_eq!(hs.ahead, 0, "{case}: no runs asked for");
        let distinct = {
            let mut c: Vec<char> = host.concat().chars().collect();
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        assert!(distinct > 10, "{case}: only {distinct} symbols drawn: the test would prove little");
        // 150 characters drawn after the seed, the first from the seed's last step.
        let draws = opts.len as u64;
        for ahead in [64, 7] {
            let (text, s) = run(&mut gpu, ahead, 0);
            assert_eq!(text, host, "{case}, runs of {ahead}");
            assert_eq!(s.ahead, draws, "{case}, runs of {ahead}: every step from a run");
            // The device draws in f32, the host in f64: they part only when u sits within f32
            // rounding (~1e-7 of the total) of a boundary, about 1e-5 of draws at V = 70; one in
            // a hundred allows for that without letting a wrong draw rule pass (the skewed runs
            // below are overruled at most steps).
            assert!(s.overruled * 100 <= s.ahead, "{case}, runs of {ahead}: {} of {} overruled", s.overruled, s.ahead);
        }
        // Runs of 4: each is cut after its first step, and a fresh one starts.
        let (text, s) = run(&mut gpu, 4, 12345);
        assert_eq!(text, host, "{case}, skewed draws");
        assert!(s.overruled * 3 >= s.ahead, "{case}, skewed: only {} of {} overruled", s.overruled, s.ahead);
        eprintln!("{case}: skewed draws overruled at {} of {} steps", s.overruled, s.ahead);
    }
    // The CPU engine makes no runs: every step goes through the host.
    let mut cpu = CpuSampler::new(&p, Some(1)).unwrap();
    let opts = SampleOptions { len: 40, count: 2, ..Default::default() };
    let (tc, sc) = generate_with_stats(&mut cpu, &vocab, &opts).unwrap();
    assert_eq!(sc.ahead, 0);
    gpu.set_run_ahead(64);
    gpu.skew_draws(0);
    assert_eq!(generate_with_stats(&mut gpu, &vocab, &opts).unwrap().0, tc, "GPU runs against the CPU");
    // Rewinding needs a run to rewind into.
    gpu.reset(2).unwrap();
    assert!(gpu.rewind(1).is_err(), "rewind without a run");
    let mut logits = Vec::new();
    let mut drawn = Vec::new();
    let rule = folklstm::backend::DrawRule { key: Key::new(1), temperature: 1.0, top_k: None, stream0: 0 };
    assert_eq!(gpu.run_ahead(&[0, 1], 5, 1, &rule, &mut logits, &mut drawn).unwrap(), 5);
    assert_eq!((logits.len(), drawn.len()), (5 * 2 * cfg.vocab, 5 * 2));
    assert!(drawn.iter().all(|&t| (t as usize) < cfg.vocab));
    assert!(gpu.rewind(0).is_err() && gpu.rewind(6).is_err() && gpu.rewind(5).is_ok());
    assert!(gpu.run_ahead(&[0, 70], 5, 1, &rule, &mut logits, &mut drawn).is_err(), "a token outside the vocabulary");
}

/// Guided sampling and a header script (`--meter`, `--key`) run ahead on the GPU too: the
/// device draws unguided, the host masks and draws its own, and a run is cut wherever they part.
/// The shipped model's tunes must be exactly those of stepping through the host, and most steps
/// must still come from runs (the guide removes little of a trained model's probability).
#[test]
fn guided_and_scripted_tunes_on_the_gpu_are_those_of_stepping_through_the_host() {
    if gpu_or_skip().is_none() {
        return;
    }
    let model = folklstm::Model::shipped().unwrap();
    let mut gpu = GpuSampler::new(model.params()).unwrap();
    let base = SampleOptions { count: 2, len: 300, rng_seed: 5, ..model.options() };
    let mut scripted = base.clone();
    let wishes = folklstm::abc::prime::Wishes { meter: Some("3/4".into()), key: Some("D".into()), title: None };
    folklstm::sample::steer(&mut scripted, None, &wishes).unwrap();
    assert!(!scripted.script.is_empty(), "the wishes are a script");
    for (what, opts) in [("guided", &base), ("guided, --meter 3/4 --key D", &scripted)] {
        assert!(opts.guided);
        gpu.set_run_ahead(0);
        let (host, hs) = generate_with_stats(&mut gpu, model.vocab(), opts).unwrap();
        assert_eq!(hs.ahead, 0);
        gpu.set_run_ahead(64);
        let (runs, s) = generate_with_stats(&mut gpu, model.vocab(), opts).unwrap();
        assert_eq!(runs, host, "{what}");
        eprintln!("{what}: {} steps from runs, {} redrawn by the host", s.ahead, s.overruled);
        assert!(s.ahead > 0 && s.overruled > 0, "{what}: runs were made and the guide cut some: {s:?}");
        // The shipped model puts nearly all its probability on what the guide allows, so the
        // device's unguided draw is the host's at most steps (observed: about 1 in 30 differs
        // at two streams); a quarter would mean the runs barely run.
        assert!(s.overruled * 4 < s.ahead, "{what}: {} of {} steps redrawn", s.overruled, s.ahead);
    }
}
