//! `bench --device gpu --plan`: the plan is the program the trainer records (same dispatches,
//! same shapes), and at the reference shape the recurrent steps are shaped for a large GPU.

mod common;
use common::gpu::gpu_or_skip;
use folklstm::gpu::GpuTrainer;
use folklstm::gpu::plan::{H100_CLASS, is_recurrent, print_plan, summarize, train_plan};
use folklstm::model::{BatchConfig, ModelConfig, init_params};

#[test]
fn the_plan_is_the_program_the_trainer_records() {
    // Off the tiles: odd batch, width and vocabulary.
    let cfg = ModelConfig { vocab: 13, embed: 9, hidden: 40, layers: 2, dropout: 0.2 };
    let batch = BatchConfig { batch: 3, seq: 5 };
    let plan = train_plan(&cfg, &batch).unwrap();
    // Forward and backward: one recurrent dispatch per layer and time step each way.
    assert_eq!(summarize(&plan).recurrent, 2 * cfg.layers * batch.seq);
    if gpu_or_skip().is_none() {
        return;
    }
    let t = GpuTrainer::new(init_params(&cfg, 1), None, batch).unwrap();
    assert_eq!(plan.len(), t.dispatches_per_step());
    assert_eq!(plan, t.plan());
}

#[test]
fn the_printed_plan_states_its_counts_and_assumptions() {
    let (cfg, batch) = (ModelConfig::reference(86), BatchConfig::default());
    let plan = train_plan(&cfg, &batch).unwrap();
    let mut out = Vec::new();
    print_plan(&mut out, "reference", &plan, &H100_CLASS).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with(&format!("reference: {} dispatches", plan.len())), "{text}");
    let s = summarize(&plan);
    let line = format!("{} dispatches, fewest workgroups {}", s.recurrent, s.min_recurrent_groups);
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("132 SMs") && text.contains("assumptions:"), "{text}");
    assert_eq!(plan.iter().filter(|d| is_recurrent(d)).count(), 2 * cfg.layers * batch.seq);
}

#[test]
fn at_the_reference_shape_every_recurrent_step_spreads_over_many_workgroups_with_short_chains() {
    // B16 T64 E512 H256 L3: a large GPU has 100+ SMs, so a recurrent step (the latency-bound
    // part, 384 of them in sequence) must offer at least 128 workgroups, and no invocation may
    // run more than about a thousand dependent operations per step.
    let (cfg, batch) = (ModelConfig::reference(86), BatchConfig::default());
    let plan = train_plan(&cfg, &batch).unwrap();
    let s = summarize(&plan);
    assert_eq!(s.recurrent, 2 * 3 * 64);
    assert!(s.min_recurrent_groups >= 128, "{s:?}");
    assert!(s.max_recurrent_chain <= 1024, "{s:?}");
    for d in plan.iter().filter(|d| is_recurrent(d)) {
        assert!(d.workgroups() >= 128 && d.cost.chain <= 1024, "{d:?}");
    }
}
