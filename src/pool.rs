//! Work split over Rayon's pool by thread, the same way every time: item `i` of `n` goes
//! to thread `i·T/n` (`T` threads), so that a row block of `W1` is done by the same
//! core in every product and update of every step, and its rows (of `W1`, its velocity
//! and `dW1`) stay in that core's caches. A training run has a pool of its own
//! ([`training_pool`]), and trains on one of its threads.
//!
//! Rayon's usual split hands the halves of a parallel loop to whichever worker asks
//! first, so the core that wrote a block of `W1` in the update packed it for the next
//! forward pass half of the time, and `dW1`'s rows were read by the update from the
//! other core's cache as often. At hidden 384, batch 128 on a 2-core Xeon a step took
//! 0.96, 1.05 and 1.06 ms with Rayon's split against 0.88, 0.87 and 0.79 ms split by
//! thread (medians of 6 alternated epochs, three runs). The cost: each thread does its
//! share whatever the other is doing, with no stealing to even out a slow core.
//!
//! ```
//! use std::sync::Mutex;
//!
//! let seen = Mutex::new(Vec::new());
//! mnist_nn::pool::for_each_by_thread((0..6).collect(), |i, item: usize| {
//!     seen.lock().unwrap().push((i, item * 10));
//! });
//! let mut seen = seen.into_inner().unwrap();
//! seen.sort();
//! assert_eq!(seen, (0..6).map(|i| (i, i * 10)).collect::<Vec<_>>());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// `work(i, item)` for each of `items`, on the pool: the items split into as many
/// contiguous runs as the pool has threads, run `t` done by thread `t`. With one
/// item or one thread, the items are done on the calling thread in order.
pub fn for_each_by_thread<T: Send>(items: Vec<T>, work: impl Fn(usize, T) + Sync) {
    let threads = rayon::current_num_threads();
    let n = items.len();
    if n <= 1 || threads <= 1 {
        for (i, item) in items.into_iter().enumerate() {
            work(i, item);
        }
        return;
    }
    let runs: Vec<Mutex<Vec<(usize, T)>>> = (0..threads).map(|_| Mutex::new(Vec::new())).collect();
    for (i, item) in items.into_iter().enumerate() {
        lock(&runs[i * threads / n]).push((i, item));
    }
    rayon::broadcast(|context| {
        let run = std::mem::take(&mut *lock(&runs[context.index()]));
        for (i, item) in run {
            work(i, item);
        }
    });
}

/// The mutex's value, also after a panic elsewhere (the runs hold no invariant).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A Rayon pool for one training run, with as many threads as the current pool: the
/// run's steps, evaluations and augmented images all go to it
/// ([`crate::train::train_from`] runs on one of its threads). Each thread flushes
/// subnormal floats from its start ([`crate::subnormal`]).
///
/// Why a pool of the run's own, and the training on it:
/// - From a thread outside a pool, each of a step's parallel sections (the sparse
///   products, the update, the next batch's listing) is handed to the workers while
///   the calling thread sleeps on a lock, to be woken when they are done: a futex wake
///   and a task switch per section, about a tenth of a `configs/fast.toml` run's samples
///   in the kernel's scheduler. On a worker, the training thread does its share of
///   each section itself. 2-core Xeon, three alternated runs each: `fast.toml` epochs
///   of 0.32–0.36 s from outside, 0.28–0.32 s on a worker. Augmented epochs at hidden
///   800 (after the first, two runs each): 0.76–0.83 s from outside, 0.72–0.77 s on
///   this pool.
/// - A training thread that waits (the live page's pause, a batch of images not yet
///   made) then holds a worker. In a pool shared with other work, a `rayon::broadcast`
///   from elsewhere would wait for it; in its own pool nothing else does.
///
/// # Errors
///
/// [`crate::Error::Threads`] when the operating system refuses the threads.
pub fn training_pool() -> crate::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .thread_name(|i| format!("mnist-nn-train-{i}"))
        .start_handler(|_| crate::subnormal::set_flushing(true))
        .build()
        .map_err(|e| crate::Error::Threads {
            reason: e.to_string(),
        })
}

/// Keeps the pool's other workers awake through a training step, so that each of the
/// step's parallel sections starts at once on every core instead of waking a worker
/// that went to sleep during the part before it (Rayon's idle workers sleep after
/// about 30 rounds without work, and waking one costs a futex call and a task switch
/// on both sides).
///
/// [`KeepAwake::start`] spawns, in a scope, one task per other worker that runs the
/// pool's pending work as it comes (the step's parallel sections among it) until the
/// [`Awake`] it gives is dropped. A task that lands on the thread that made the
/// `KeepAwake` returns at once: that thread is the one that will stop it.
///
/// `configs/fast.toml` on a 2-core Xeon, 5 alternated runs each: epochs of median 0.292
/// s (0.278–0.305) without, 0.284 s (0.266–0.311) with; augmented epochs at hidden 800
/// (after the first), median 0.762 s against 0.738 s (three runs each).
#[derive(Debug)]
pub struct KeepAwake {
    done: AtomicBool,
    owner: Option<usize>,
}

impl KeepAwake {
    /// For the calling thread (a worker of the pool, or not).
    pub fn new() -> Self {
        Self {
            done: AtomicBool::new(false),
            owner: rayon::current_thread_index(),
        }
    }

    /// Spawns the waiting tasks in `scope`, one per worker but the calling one. They
    /// end when the answer is dropped (also when a panic unwinds past it; the scope
    /// then waits for them).
    #[must_use = "the tasks wait until the answer is dropped"]
    pub fn start<'s>(&'s self, scope: &rayon::Scope<'s>) -> Awake<'s> {
        for _ in 1..rayon::current_num_threads() {
            scope.spawn(|_| self.wait_for_work());
        }
        Awake(self)
    }

    fn wait_for_work(&self) {
        if rayon::current_thread_index() == self.owner {
            return;
        }
        while !self.done.load(Ordering::Acquire) {
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                // Nothing pending: give the core to any other thread that wants it.
                std::thread::yield_now();
            }
        }
    }
}

/// [`KeepAwake::start`]'s tasks, waiting until this is dropped.
#[derive(Debug)]
pub struct Awake<'a>(&'a KeepAwake);

impl Drop for Awake<'_> {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Release);
    }
}

impl Default for KeepAwake {
    fn default() -> Self {
        Self::new()
    }
}
