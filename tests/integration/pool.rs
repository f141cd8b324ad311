//! Work split by thread (`src/pool.rs`): each item on the thread its place names, the
//! same at every call. `KeepAwake`'s waiting tasks run the step's parallel sections and
//! end when their guard is dropped (a panic's unwinding included), and one that lands on
//! the thread that made it returns at once instead of waiting for a stop that thread
//! would give.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, channel};
use std::time::Duration;

use mnist_nn::pool::{KeepAwake, for_each_by_thread};

#[test]
fn each_item_runs_on_the_thread_its_place_names() {
    // Twelve items on T threads: item i on thread i·T/12, in four calls alike. Rayon's
    // own split gives the halves to whichever worker asks first, which this catches.
    let threads = rayon::current_num_threads();
    for _ in 0..4 {
        let ran = Mutex::new(Vec::new());
        for_each_by_thread((0..12).collect(), |i, item: usize| {
            assert_eq!(i, item, "items keep their places");
            let on = rayon::current_thread_index();
            ran.lock().unwrap_or_else(|e| e.into_inner()).push((i, on));
        });
        let mut ran = ran.into_inner().unwrap_or_else(|e| e.into_inner());
        ran.sort();
        let expected: Vec<(usize, Option<usize>)> = (0..12)
            .map(|i| (i, (threads > 1).then_some(i * threads / 12)))
            .collect();
        assert_eq!(ran, expected, "{threads} threads");
    }
}

#[test]
fn a_single_item_runs_on_the_calling_thread() {
    let ran = Mutex::new(None);
    for_each_by_thread(vec![7usize], |i, item| {
        *ran.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((i, item, rayon::current_thread_index()));
    });
    assert_eq!(ran.into_inner().ok().flatten(), Some((0, 7, None)));
}

/// `f` on a thread of its own, failing the test if it takes more than a minute (a
/// hang, on a machine where the work takes milliseconds).
fn within_a_minute(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("done within a minute");
}

fn pool_of(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a pool")
}

#[test]
fn kept_awake_workers_run_the_sections_and_end_when_dropped() {
    within_a_minute(|| {
        let seen = Mutex::new(Vec::new());
        pool_of(2).install(|| {
            let awake = KeepAwake::new();
            rayon::in_place_scope(|scope| {
                let waiting = awake.start(scope);
                for round in 0..50 {
                    for_each_by_thread(vec![0, 1], |i, item: usize| {
                        let thread = rayon::current_thread_index();
                        seen.lock().unwrap().push((round, i, item, thread));
                    });
                }
                drop(waiting);
            });
        });
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 100, "both halves of every section ran");
        // Item i on thread i: the sections were done by both workers.
        assert!(
            seen.iter()
                .all(|&(_, i, item, t)| i == item && t == Some(i))
        );
    });
}

#[test]
fn a_waiting_task_on_the_thread_that_made_it_returns_at_once() {
    within_a_minute(|| {
        pool_of(2).install(|| {
            let (release, released) = channel::<()>();
            let busy = AtomicBool::new(false);
            let awake = KeepAwake::new();
            rayon::in_place_scope(|scope| {
                // Hold the other worker, so that the waiting task stays here.
                let busy = &busy;
                scope.spawn(move |_| {
                    busy.store(true, Ordering::Release);
                    let _ = released.recv();
                });
                while !busy.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                let waiting = awake.start(scope);
                // This thread runs its own queue: the waiting task, which must return
                // (it would otherwise wait for a stop that only this thread gives).
                assert_eq!(rayon::yield_now(), Some(rayon::Yield::Executed));
                drop(waiting);
                let _ = release.send(());
            });
        });
    });
}

#[test]
fn a_panicking_step_ends_the_waiting_tasks_and_the_panic_comes_through() {
    within_a_minute(|| {
        pool_of(2).install(|| {
            let awake = KeepAwake::new();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rayon::in_place_scope(|scope| {
                    let _waiting = awake.start(scope);
                    panic!("the step failed");
                })
            }));
            assert!(outcome.is_err(), "the panic reaches the caller");
        });
    });
}
