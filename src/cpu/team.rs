//! A team of threads that stay together for a whole time loop.
//!
//! The recurrent steps of a layer are short (tens of microseconds) and strictly sequential: step
//! t needs every unit of h_{t-1}. Opening a `rayon` parallel region per step costs a wake-up and
//! a join each time, a large share of a step. Instead [`run_team`] starts one task on each
//! thread of the pool with `rayon::broadcast` (each on its own thread, so they all run at once),
//! and the tasks meet at a [`SpinBarrier`] between steps.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A reusable barrier for a fixed number of threads that spins briefly, then yields (so an
/// oversubscribed machine degrades gracefully instead of burning its time slices).
#[derive(Debug)]
pub struct SpinBarrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    /// A barrier for `n` threads.
    pub fn new(n: usize) -> Self {
        SpinBarrier { n, count: AtomicUsize::new(0), generation: AtomicUsize::new(0) }
    }

    /// Blocks until all `n` threads have called `wait`. Everything a thread wrote before its
    /// `wait` is visible to every thread after theirs (release/acquire on `generation`).
    pub fn wait(&self) {
        if self.n <= 1 {
            return;
        }
        let seen = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            // Last to arrive: reset for the next use, then release the others.
            self.count.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        } else {
            let mut spins = 0u32;
            while self.generation.load(Ordering::Acquire) == seen {
                if spins < 20_000 {
                    std::hint::spin_loop();
                    spins += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// Runs `f(i)` for i in 0..n, each on its own thread of the current `rayon` pool, all at the
/// same time (so they may synchronise with a [`SpinBarrier`] of `n`). `n` must not exceed the
/// pool's size; `n <= 1` runs on the calling thread.
pub fn run_team(n: usize, f: impl Fn(usize) + Sync) {
    assert!(n <= rayon::current_num_threads().max(1), "team of {n} in a pool of {}", rayon::current_num_threads());
    if n <= 1 {
        f(0);
        return;
    }
    rayon::broadcast(|ctx| {
        if ctx.index() < n {
            f(ctx.index())
        }
    });
}

/// A raw pointer to a buffer shared by a team. Each member writes only the elements it owns
/// (a fixed block of hidden units) and reads others' elements only after a barrier.
#[derive(Clone, Copy, Debug)]
pub struct Shared<R>(pub *mut R);
// SAFETY: the pointer is only dereferenced under the ownership discipline above, which the
// functions using it document at each access.
unsafe impl<R> Send for Shared<R> {}
// SAFETY: as above.
unsafe impl<R> Sync for Shared<R> {}

impl<R> Shared<R> {
    /// `len` elements from `offset`, read-only.
    ///
    /// # Safety
    /// The range must lie in the buffer and no thread may write it while the slice lives.
    pub unsafe fn slice<'a>(self, offset: usize, len: usize) -> &'a [R] {
        // SAFETY: forwarded to the caller.
        unsafe { std::slice::from_raw_parts(self.0.add(offset), len) }
    }

    /// `len` elements from `offset`, writable.
    ///
    /// # Safety
    /// The range must lie in the buffer and no other thread may read or write it while the
    /// slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut<'a>(self, offset: usize, len: usize) -> &'a mut [R] {
        // SAFETY: forwarded to the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(offset), len) }
    }
}

/// The engine's worker pool: `threads` workers (None: one per core). `--threads 0` is refused
/// here, once for every command that takes the flag.
pub fn pool(threads: Option<usize>) -> crate::error::Result<rayon::ThreadPool> {
    use crate::error::Error;
    if threads == Some(0) {
        return Err(Error::Config("--threads 0: needs at least 1".into()));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .thread_name(|i| format!("folklstm-cpu-{i}"))
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads:?} worker threads: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_orders_the_steps_of_a_team() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let log: Vec<AtomicUsize> = (0..300).map(|_| AtomicUsize::new(0)).collect();
        let barrier = SpinBarrier::new(3);
        pool.install(|| {
            run_team(3, |me| {
                for step in 0..100 {
                    // Everyone must see the previous step complete before writing this one.
                    if step > 0 {
                        for k in 0..3 {
                            assert_eq!(log[(step - 1) * 3 + k].load(Ordering::Relaxed), step);
                        }
                    }
                    log[step * 3 + me].store(step + 1, Ordering::Relaxed);
                    barrier.wait();
                }
            })
        });
        assert!(log.iter().enumerate().all(|(i, v)| v.load(Ordering::Relaxed) == i / 3 + 1));
    }
}
