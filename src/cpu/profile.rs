//! Where a training step's time goes: named spans, off unless switched on
//! (`folklstm bench --profile`). Off, a span costs one relaxed atomic load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static TIMES: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

/// Switches recording on or off (and clears what was recorded).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
    if let Ok(mut t) = TIMES.lock() {
        t.clear();
    }
}

/// A running span; its time is recorded under its name when it is dropped.
#[must_use]
pub struct Span {
    name: &'static str,
    t0: Option<Instant>,
}

/// Starts a span called `name`.
pub fn span(name: &'static str) -> Span {
    Span { name, t0: ENABLED.load(Ordering::Relaxed).then(Instant::now) }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let (Some(t0), Ok(mut t)) = (self.t0, TIMES.lock()) {
            t.push((self.name, t0.elapsed().as_secs_f64()));
        }
    }
}

/// Total seconds per span name, in the order names first appeared, and clears the record.
pub fn take() -> Vec<(&'static str, f64)> {
    let Ok(mut t) = TIMES.lock() else { return Vec::new() };
    let mut out: Vec<(&'static str, f64)> = Vec::new();
    for &(name, s) in t.iter() {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 += s,
            None => out.push((name, s)),
        }
    }
    t.clear();
    out
}
