//! Work split by thread (`src/pool.rs`): each item on the thread its place names, the
//! same at every call.

use mnist_nn::pool::for_each_by_thread;
use std::sync::Mutex;

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
