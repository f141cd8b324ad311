//! Subnormal floats flushed to zero while training (`src/subnormal.rs`): on every thread
//! of the run's own pool (`mnist_nn::pool::training_pool`), where the run trains, and
//! not on the thread that called it.

use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;

use mnist_nn::backend::BackendKind;
use mnist_nn::config::Config;
use mnist_nn::model::TwoLayerNet;
use mnist_nn::pool::training_pool;
use mnist_nn::subnormal::{flushing, set_flushing};
use mnist_nn::train::{Observer, train};

use crate::util::small_mnist;

/// Whether each thread of Rayon's pool flushes subnormals.
fn pool_flushing() -> Vec<bool> {
    let seen = Mutex::new(Vec::new());
    rayon::broadcast(|_| {
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(flushing())
    });
    seen.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Half the least normal float, computed at run time: subnormal, or zero under FTZ.
fn half_least_normal() -> f32 {
    black_box(f32::MIN_POSITIVE) / black_box(2.0)
}

#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn set_flushing_sets_and_clears_the_calling_threads_bits_only() {
    std::thread::spawn(|| {
        assert!(!flushing());
        assert_eq!(half_least_normal(), f32::MIN_POSITIVE / 2.0);
        set_flushing(true);
        assert!(flushing());
        assert_eq!(half_least_normal(), 0.0, "FTZ: a subnormal result is zero");
        set_flushing(false);
        assert!(!flushing());
        assert_eq!(half_least_normal(), f32::MIN_POSITIVE / 2.0);
        set_flushing(true);
    })
    .join()
    .expect("the checks pass");
    // The spawning thread's register is its own.
    assert!(!flushing());
}

#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn the_training_pool_flushes_on_every_thread_and_matches_the_current_pools_size() {
    let pool = training_pool().expect("a pool");
    let seen = pool.install(pool_flushing);
    assert_eq!(seen.len(), rayon::current_num_threads());
    assert!(seen.iter().all(|&f| f), "every thread flushes: {seen:?}");
    assert!(!flushing(), "the calling thread is left as it was");
}

/// Records, after each step, whether the training thread and its pool flush, and
/// whether the training thread is a worker of that pool.
#[derive(Default)]
struct Flushing {
    seen: Vec<(bool, bool)>,
    on_a_worker: Vec<bool>,
}

impl Observer for Flushing {
    fn batch_finished(&mut self, _batch: usize) {
        self.seen
            .push((flushing(), pool_flushing().iter().all(|&f| f)));
        self.on_a_worker
            .push(rayon::current_thread_index().is_some());
    }
}

#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn training_flushes_subnormals_in_both_modes() {
    std::thread::spawn(|| {
        for mode in ["manual", "autodiff"] {
            let text = format!(
                "name = \"f\"\nseed = 3\nmode = \"{mode}\"\n[model]\nhidden = 16\n[train]\nepochs = 1\nbatch_size = 100\nlearning_rate = 0.1\noptimizer = \"{}\"\n",
                if mode == "manual" { "sgd" } else { "adam" }
            );
            let c = Config::parse(&text, Path::new("f.toml")).unwrap();
            let device = BackendKind::Flex.device().unwrap();
            let model = TwoLayerNet::new(16, c.model.init, c.seed, &device);
            let mut seen = Flushing::default();
            train(&c, model, &small_mnist(), &device, &mut seen).unwrap();
            assert_eq!(seen.seen.len(), 10, "{mode}: one record a step");
            assert!(
                seen.seen.iter().all(|&(here, pool)| here && pool),
                "{mode}: {:?}",
                seen.seen
            );
            assert!(
                seen.on_a_worker.iter().all(|&w| w),
                "{mode}: the steps run on a worker of the run's pool"
            );
            assert!(!flushing(), "{mode}: the calling thread's bits are left as they were");
        }
    })
    .join()
    .expect("the checks pass");
}

/// A run with augmentation in a pool of one thread: the training thread, waiting for a
/// batch of images, makes them itself (a worker asleep on the channel would wait for
/// ever). Run on a thread of its own so that a hang fails the test instead of stalling
/// the suite.
#[test]
fn an_augmented_run_finishes_with_one_thread() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a pool of one");
        let text = "name = \"a\"\nseed = 3\nmode = \"manual\"\n[model]\nhidden = 16\n[train]\nepochs = 2\nbatch_size = 100\nlearning_rate = 0.1\n[train.augment]\nshift = 2\nelastic_alpha = 34\n";
        let c = Config::parse(text, Path::new("a.toml")).unwrap();
        let device = BackendKind::Flex.device().unwrap();
        let model = TwoLayerNet::new(16, c.model.init, c.seed, &device);
        let trained = one.install(|| train(&c, model, &small_mnist(), &device, &mut ()));
        let _ = tx.send(trained.map(|t| t.history.len()));
    });
    // Two epochs of 1,000 small images take well under a second; a minute is room for
    // a loaded machine, not for a hang.
    let epochs = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the run finishes within a minute")
        .expect("the run trains");
    assert_eq!(epochs, 2);
}
