//! `bench --device gpu --plan`: the training step's dispatches as the program records them,
//! grouped by phase, with a lower bound on their time for a named class of GPU.
//!
//! Nothing here is typed in per kernel: each dispatch carries the [`Cost`] its recording
//! function computed from the shapes it was dispatched with (`src/gpu/{lstm,matmul,..}.rs`),
//! and [`train_plan`] records the step with the same code the trainer runs
//! (`Net::record_step`), only without a device.

use super::context::{DEFAULT_MAX_GROUPS, DispatchInfo, ProgramBuilder};
use super::net::Net;
use super::sampler::{DRAW, MAX_RUN, RESUME, record_run, run_steps};
use crate::error::Result;
use crate::model::{BatchConfig, ModelConfig};
use std::io::Write;

pub use super::context::Cost;

/// The shape of a GPU the cost model needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuClass {
    /// What the class is called.
    pub name: &'static str,
    /// Streaming multiprocessors (compute units).
    pub sms: u32,
    /// FP32 lanes per SM (each issues one multiply-add per cycle).
    pub lanes_per_sm: u32,
    /// Clock, GHz.
    pub clock_ghz: f64,
    /// Assumed cost of one dispatch with the barrier before it, microseconds.
    pub gap_us: f64,
}

/// NVIDIA H100 / H200 (SXM): 132 SMs of 128 FP32 lanes at a 1.98 GHz boost clock, 67 TFLOP/s
/// FP32; 1 µs per dispatch and barrier is an assumption (a few µs is usual through Vulkan).
pub const H100_CLASS: GpuClass =
    GpuClass { name: "H100/H200-class", sms: 132, lanes_per_sm: 128, clock_ghz: 1.98, gap_us: 1.0 };

impl GpuClass {
    /// Lanes the dispatch can keep busy: one per invocation, at most a full SM per workgroup
    /// and at most all SMs.
    pub fn active_lanes(&self, d: &DispatchInfo) -> u64 {
        let per_group = (d.cost.threads.min(self.lanes_per_sm)) as u64;
        let groups = d.workgroups().min(self.sms as u64);
        let by_groups = if d.workgroups() <= self.sms as u64 {
            groups * per_group
        } else {
            self.sms as u64 * self.lanes_per_sm as u64
        };
        d.invocations().min(by_groups).max(1)
    }

    /// Lower bound on one dispatch's seconds: at least its longest chain, and at least its
    /// operations spread over the lanes it can use, one per lane per cycle; plus the gap.
    pub fn dispatch_s(&self, d: &DispatchInfo) -> f64 {
        let cycles = (d.cost.chain as f64).max(d.cost.ops as f64 / self.active_lanes(d) as f64);
        cycles / (self.clock_ghz * 1e9) + self.gap_us * 1e-6
    }
}

/// The dispatches of one training step (forward, loss, backward, norm, Adam, carry) for a
/// model and window, recorded without a device.
pub fn train_plan(cfg: &ModelConfig, batch: &BatchConfig) -> Result<Vec<DispatchInfo>> {
    batch.validate()?;
    let net = Net::new(cfg, batch.batch, batch.seq)?;
    let mut pb = ProgramBuilder::dry(DEFAULT_MAX_GROUPS);
    net.record_step(&mut pb, true, true)?;
    Ok(pb.plan().to_vec())
}

/// The dispatches of one run of the GPU sampler for `count` streams (resume, then per
/// character the layers' forward steps, then the logits and the draw in one), recorded without a device
/// as [`super::GpuSampler`] records it; the run is as long as the sampler makes it.
pub fn sample_plan(cfg: &ModelConfig, count: usize) -> Result<Vec<DispatchInfo>> {
    crate::backend::check_stream_count(count)?;
    let net = Net::new(cfg, count, run_steps(count, MAX_RUN))?;
    let mut pb = ProgramBuilder::dry(DEFAULT_MAX_GROUPS);
    record_run(&mut pb, &net, net.ids_len)?;
    Ok(pb.plan().to_vec())
}

/// True for one LSTM time step of one layer (forward or backward): the dispatches that run in
/// sequence T times per layer and bound the step's latency.
pub fn is_recurrent(d: &DispatchInfo) -> bool {
    d.kernel == "forward_step" || d.kernel == "backward_step"
}

/// The figures the plan's tests and summary line check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanSummary {
    /// Dispatches in all.
    pub dispatches: usize,
    /// Recurrent dispatches.
    pub recurrent: usize,
    /// Fewest workgroups of any recurrent dispatch.
    pub min_recurrent_groups: u64,
    /// Longest chain of any recurrent dispatch.
    pub max_recurrent_chain: u64,
}

/// Counts and extremes of `plan`.
pub fn summarize(plan: &[DispatchInfo]) -> PlanSummary {
    let rec: Vec<&DispatchInfo> = plan.iter().filter(|d| is_recurrent(d)).collect();
    PlanSummary {
        dispatches: plan.len(),
        recurrent: rec.len(),
        min_recurrent_groups: rec.iter().map(|d| d.workgroups()).min().unwrap_or(0),
        max_recurrent_chain: rec.iter().map(|d| d.cost.chain).max().unwrap_or(0),
    }
}

/// One phase's rows, in order of first appearance.
struct Phase<'a> {
    name: &'static str,
    items: Vec<&'a DispatchInfo>,
}

fn phases(plan: &[DispatchInfo]) -> Vec<Phase<'_>> {
    let mut out: Vec<Phase> = Vec::new();
    for d in plan {
        match out.iter_mut().find(|p| p.name == d.phase) {
            Some(p) => p.items.push(d),
            None => out.push(Phase { name: d.phase, items: vec![d] }),
        }
    }
    out
}

/// "a" or "a-b" for the range of `xs`.
fn range(xs: impl Iterator<Item = u64>) -> String {
    let v: Vec<u64> = xs.collect();
    let (lo, hi) = (v.iter().min().copied().unwrap_or(0), v.iter().max().copied().unwrap_or(0));
    if lo == hi { format!("{lo}") } else { format!("{lo}-{hi}") }
}

/// Prints the plan: per phase the dispatches, workgroups per dispatch, invocations per
/// workgroup, the longest chain, the operations and the lower bound on `class`; then the
/// totals and the assumptions behind the bound.
pub fn print_plan(out: &mut dyn Write, title: &str, plan: &[DispatchInfo], class: &GpuClass) -> std::io::Result<()> {
    print_plan_of(out, title, plan, class, "step")
}

/// [`print_plan`] of a sampler run: the same table, then per character the dispatches and the
/// bound (the run's, less its one resume, divided by its characters).
pub fn print_sample_plan(
    out: &mut dyn Write,
    title: &str,
    plan: &[DispatchInfo],
    class: &GpuClass,
) -> std::io::Result<()> {
    let chars = plan.iter().filter(|d| d.kernel == DRAW.entry).count().max(1);
    print_plan_of(out, title, plan, class, &format!("run of {chars} characters"))?;
    let per: Vec<&DispatchInfo> = plan.iter().filter(|d| d.kernel != RESUME.entry).collect();
    let secs: f64 = per.iter().map(|d| class.dispatch_s(d)).sum();
    writeln!(
        out,
        "per character: {} dispatches, lower bound {:.1} µs ({:.4} ms), no trip to the host within the run",
        per.len() / chars,
        secs / chars as f64 * 1e6,
        secs / chars as f64 * 1e3
    )
}

fn print_plan_of(
    out: &mut dyn Write,
    title: &str,
    plan: &[DispatchInfo],
    class: &GpuClass,
    unit: &str,
) -> std::io::Result<()> {
    let s = summarize(plan);
    writeln!(out, "{title}: {} dispatches, as the program records them", s.dispatches)?;
    writeln!(
        out,
        "{:<20} {:>10} {:>12} {:>8} {:>8} {:>9} {:>10}  kernels",
        "phase", "dispatches", "workgroups", "threads", "chain", "Mop", "bound µs"
    )?;
    let mut total_s = 0.0;
    for p in phases(plan) {
        let mut kernels: Vec<&str> = Vec::new();
        for d in &p.items {
            if !kernels.contains(&d.kernel) {
                kernels.push(d.kernel);
            }
        }
        let secs: f64 = p.items.iter().map(|d| class.dispatch_s(d)).sum();
        total_s += secs;
        writeln!(
            out,
            "{:<20} {:>10} {:>12} {:>8} {:>8} {:>9.1} {:>10.1}  {}",
            p.name,
            p.items.len(),
            range(p.items.iter().map(|d| d.workgroups())),
            range(p.items.iter().map(|d| d.cost.threads as u64)),
            p.items.iter().map(|d| d.cost.chain).max().unwrap_or(0),
            p.items.iter().map(|d| d.cost.ops as f64).sum::<f64>() / 1e6,
            secs * 1e6,
            kernels.join(", ")
        )?;
    }
    writeln!(
        out,
        "recurrent steps: {} dispatches, fewest workgroups {}, longest chain {}",
        s.recurrent, s.min_recurrent_groups, s.max_recurrent_chain
    )?;
    let lanes = class.sms as u64 * class.lanes_per_sm as u64;
    writeln!(
        out,
        "lower bound on an {} GPU ({} SMs x {} FP32 lanes at {:.2} GHz = {:.1} TFLOP/s): {:.0} µs per {unit}",
        class.name,
        class.sms,
        class.lanes_per_sm,
        class.clock_ghz,
        2.0 * lanes as f64 * class.clock_ghz / 1e3,
        total_s * 1e6
    )?;
    writeln!(
        out,
        "assumptions: dispatches run one after another (they share read-write buffers, so each \
         waits at a barrier); a dispatch takes at least max(chain, ops / active lanes) cycles, \
         one operation per lane per cycle, active lanes = min(invocations, {} per workgroup on at \
         most {} SMs); plus {:.1} µs per dispatch for launch and barrier; memory traffic is not \
         counted. chain = arithmetic steps one invocation runs in sequence.",
        class.lanes_per_sm, class.sms, class.gap_us
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(threads: u32, groups: u32, chain: u64, ops: u64) -> DispatchInfo {
        DispatchInfo { phase: "p", kernel: "k", groups: [groups, 1, 1], cost: Cost { threads, chain, ops } }
    }

    #[test]
    fn the_bound_is_the_chain_when_few_lanes_work_and_the_throughput_when_many() {
        let c = GpuClass { name: "t", sms: 2, lanes_per_sm: 4, clock_ghz: 1.0, gap_us: 0.0 };
        // 1 workgroup of 2 threads, chain 10, 20 ops: 2 lanes, max(10, 10) cycles.
        assert_eq!(c.active_lanes(&info(2, 1, 10, 20)), 2);
        assert!((c.dispatch_s(&info(2, 1, 10, 20)) - 10e-9).abs() < 1e-15);
        // 4 workgroups of 8 threads: 8 lanes in all, 800 ops = 100 cycles > chain 3.
        assert_eq!(c.active_lanes(&info(8, 4, 3, 800)), 8);
        assert!((c.dispatch_s(&info(8, 4, 3, 800)) - 100e-9).abs() < 1e-15);
    }
}
