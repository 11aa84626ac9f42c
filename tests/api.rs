//! The facade (`folklstm::Model`, `folklstm::Training`) against the command line it shares
//! its calls with: same options, same text; the per-epoch callback and its stop.

mod common;
use common::hardening::{setup, stderr};
use common::{corpus, folk};
use folklstm::{Flow, Model, Outcome, SampleOptions, Training};
use std::path::Path;

/// One epoch of `t` at a tiny size (E 8, H 16, one layer, batch 4 x 16, one thread).
fn one_small_epoch(t: Training) -> Outcome {
    t.sizes(8, 16, 1).window(4, 16).threads(1).epochs(1).run(|_| Flow::Continue).unwrap()
}

/// `folklstm sample 100 --free` (the shipped model) with `args`: stdout, tunes only.
fn cli_sample(args: &[&str]) -> String {
    // The facade samples free unless told (`SampleOptions::guided`); the command line guides ABC.
    let o = folk(Path::new(env!("CARGO_MANIFEST_DIR"))).args(["sample", "100", "--free"]).args(args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    common::tunes_text(&o.stdout)
}

#[test]
fn tunes_and_samples_are_what_the_command_line_prints() {
    let model = Model::shipped().unwrap().threads(1);
    assert!(model.is_abc());
    let prime = "X: 1\nT:Test\nM:6/8\nK:D\n";
    let opts = SampleOptions { seed_text: Some(prime.into()), len: 600, rng_seed: 11, ..Default::default() };
    let tunes: Vec<String> = model.tunes(&opts).unwrap().take(2).map(Result::unwrap).collect();
    assert_ne!(tunes[0], tunes[1]);
    for (k, tune) in tunes.iter().enumerate() {
        let seed = (11 + k).to_string();
        let cli = cli_sample(&["--seed", prime, "--len", "600", "--one-tune", "--rng-seed", &seed, "--threads", "1"]);
        assert_eq!(format!("{tune}\n"), cli, "tune {k}");
    }
    let opts = SampleOptions { len: 80, count: 3, temperature: 0.7, top_k: Some(5), ..opts };
    let texts = model.sample_all(&opts).unwrap();
    let cli = cli_sample(&[
        "--seed",
        prime,
        "--len",
        "80",
        "--count",
        "3",
        "--temperature",
        "0.7",
        "--top-k",
        "5",
        "--threads",
        "1",
        "--rng-seed",
        "11",
    ]);
    assert_eq!(texts.join("\n\n") + "\n", cli);
    assert_eq!(model.sample(&opts).unwrap(), texts[0], "one text is the first of the batch");
}

#[test]
fn training_calls_back_each_epoch_and_stops_when_asked_then_resumes() {
    let dir = setup();
    let d = dir.path();
    let run = |t: Training| t.sizes(8, 16, 1).window(4, 16).threads(1).epochs(5).save_every(10);
    let mut seen = Vec::new();
    let outcome = run(Training::new(d.join("tunes.abc"), d.join("run")))
        .run(|e| {
            seen.push((e.epoch, e.epochs, e.loss, e.accuracy));
            if e.epoch == 2 { Flow::Stop } else { Flow::Continue }
        })
        .unwrap();
    assert_eq!(seen.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), [(1, 5), (2, 5)]);
    assert!(seen[1].2 < seen[0].2 && seen.iter().all(|s| s.3 > 0.0 && s.3 < 1.0), "{seen:?}");
    // Stopped at epoch 2, saved there although --freq is 10; the log sits beside it.
    assert!(matches!(outcome, Outcome::Stopped { .. }), "{outcome:?}");
    assert_eq!(outcome.checkpoint(), d.join("run/weights.2.safetensors"));
    assert!(d.join("run/training_log.csv").is_file());
    let mut more = Vec::new();
    let outcome = run(Training::new(d.join("tunes.abc"), d.join("run")).resume())
        .run(|e| {
            more.push(e.epoch);
            Flow::Continue
        })
        .unwrap();
    assert_eq!(more, [3, 4, 5]);
    assert_eq!(outcome.checkpoint(), d.join("run/weights.5.safetensors"));
    // The trained model evaluates and samples through the facade as through the CLI.
    let model = Model::load(outcome.checkpoint()).unwrap().threads(1);
    let r = model.evaluate(&corpus()).unwrap();
    let o =
        folk(d).args(["eval", "5", "--model-dir", "run", "--data", "tunes.abc", "--threads", "1"]).output().unwrap();
    let row = String::from_utf8(o.stdout).unwrap();
    assert!(row.contains(&format!("{:.4}", r.nats)) && row.contains(&format!("{:.4}", r.accuracy)), "{row} {r:?}");
}

/// The text-rewriting recipe calls set what the command line's flags set, and the checkpoint
/// records them: `restate_key` reflows, labels parts and restates the key.
#[test]
fn restate_key_trains_on_labelled_parts_with_the_key_restated() {
    let dir = setup();
    let d = dir.path();
    let two_parts: String = (0..8)
        .map(|i| format!("X: {}\nT:t{i}\nM:6/8\nK:Em\n|:GAB c2A|d2e fed:|\n|:gfe d2B|A3 G3:|\n\n", i + 1))
        .collect();
    std::fs::write(d.join("parts.abc"), two_parts).unwrap();
    let outcome = one_small_epoch(Training::new(d.join("parts.abc"), d.join("run")).restate_key());
    let meta = folklstm::checkpoint::load(outcome.checkpoint()).unwrap().meta;
    assert_eq!((meta.reflow, meta.label_parts, meta.restate_key, meta.mark_lines), (true, true, true, false));
}

/// A warm-up is read by the model and not printed: the same texts as a seed that starts with
/// it, less the warm-up; `folklstm sample --warm-up` gives them too.
#[test]
fn a_warm_up_is_read_not_printed() {
    let model = Model::shipped().unwrap().threads(1);
    let w = folklstm::sample::WARM_UP;
    let base =
        SampleOptions { len: 300, count: 2, rng_seed: 5, seed_text: Some("X: 1\n".into()), ..Default::default() };
    let warm = model.sample_all(&SampleOptions { warm_up: Some(w.into()), ..base.clone() }).unwrap();
    let read = model.sample_all(&SampleOptions { seed_text: Some(format!("{w}X: 1\n")), ..base.clone() }).unwrap();
    for (a, b) in warm.iter().zip(&read) {
        assert_eq!(b.strip_prefix(w), Some(a.as_str()));
    }
    assert_ne!(model.sample_all(&base).unwrap(), warm, "the warm-up changes the state the draws start from");
    let cli = cli_sample(&[
        "--seed",
        "X: 1\n",
        "--len",
        "300",
        "--count",
        "2",
        "--rng-seed",
        "5",
        "--threads",
        "1",
        "--warm-up",
    ]);
    assert_eq!(warm.join("\n\n") + "\n", cli);
}

/// The shipped model's own options sample guided, as `folklstm sample` does: every tune of a
/// batch is valid (free sampling at temperature 1 leaves about a third invalid).
#[test]
fn the_shipped_models_options_are_guided_and_its_tunes_valid() {
    let model = Model::shipped().unwrap();
    let opts = SampleOptions { count: 6, len: 2000, rng_seed: 3, ..model.options() };
    assert!(opts.guided && !SampleOptions::default().guided);
    let texts = model.sample_all(&opts).unwrap();
    let reports: Vec<_> = texts.iter().flat_map(|t| folklstm::abc::check_text(t)).collect();
    assert!(reports.len() >= 6 && reports.iter().all(|r| r.valid), "{reports:?}");
}

#[test]
fn a_model_of_other_text_refuses_tunes_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Whose woods these are I think I know.\nHis house is in the village though;\n\n".repeat(30);
    std::fs::write(dir.path().join("verse.txt"), &text).unwrap();
    let outcome = one_small_epoch(Training::new(dir.path().join("verse.txt"), dir.path().join("run")));
    let model = Model::load(outcome.checkpoint()).unwrap();
    assert!(!model.is_abc());
    assert!(!model.options().guided, "a model of other text samples free");
    let e = model.tunes(&SampleOptions::default()).err().expect("no tunes from verse").to_string();
    assert!(e.contains("tunes() works on ABC tunes") && e.contains("'X'"), "{e}");
    let opts = SampleOptions { one_tune: true, ..Default::default() };
    assert!(model.sample(&opts).unwrap_err().to_string().contains("--one-tune works on ABC tunes"));
    let plain = model.sample(&SampleOptions { len: 50, ..Default::default() }).unwrap();
    assert!(plain.chars().count() == 50 && plain.chars().all(|c| text.contains(c)), "{plain:?}");
}

#[test]
fn the_readme_library_program_is_the_example_ci_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme.split("## Use it as a library").nth(1).expect("README has the library section");
    let block = section.split("```rust\n").nth(1).and_then(|b| b.split("```").next()).expect("a rust block");
    let example = std::fs::read_to_string(root.join("examples/print_a_tune.rs")).unwrap();
    assert_eq!(block, example, "README's program differs from examples/print_a_tune.rs");
    assert!(block.lines().count() <= 20, "a short program");
}

#[test]
fn the_facade_trains_and_evaluates_on_the_gpu_as_on_the_cpu() {
    if common::gpu::gpu_or_skip().is_none() {
        return;
    }
    let dir = setup();
    let d = dir.path();
    let mut losses = Vec::new();
    let outcome = Training::new(d.join("tunes.abc"), d.join("gpu"))
        .sizes(8, 16, 1)
        .window(4, 16)
        .epochs(2)
        .on(folklstm::Device::Gpu)
        .run(|e| {
            losses.push(e.loss);
            Flow::Continue
        })
        .unwrap();
    assert!(losses.len() == 2 && losses[1] < losses[0], "{losses:?}");
    let cpu = Model::load(outcome.checkpoint()).unwrap().threads(1);
    let gpu = cpu.clone().on(folklstm::Device::Gpu);
    let (a, b) = (cpu.evaluate(&corpus()).unwrap(), gpu.evaluate(&corpus()).unwrap());
    // The same weights in f32 on both engines, summed in different orders: logits agree to
    // about 1e-7 relative (tests/gpu_sample.rs), so the mean loss over ~3,900 positions agrees
    // far inside 1e-4; a GPU that ran another model or skipped a layer would differ by O(1).
    assert!((a.nats - b.nats).abs() <= 1e-4 * a.nats, "{a:?} {b:?}");
    assert_eq!(a.scored, b.scored);
    let opts = SampleOptions { len: 40, ..Default::default() };
    assert_eq!(gpu.sample(&opts).unwrap().chars().count(), 40);
}
