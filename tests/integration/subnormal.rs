//! Subnormal floats flushed to zero while training (`src/subnormal.rs`): on the thread
//! that trains and on every thread of the pool, for as long as a guard is alive.

use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;

use mnist_nn::backend::BackendKind;
use mnist_nn::config::Config;
use mnist_nn::model::TwoLayerNet;
use mnist_nn::subnormal::{FlushSubnormals, flushing};
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
#[cfg(target_arch = "x86_64")]
fn a_guard_flushes_on_its_thread_and_the_pool_and_restores_its_thread() {
    // Other tests of this binary may hold guards at the same time, so the pool's bits
    // after the drop are not checked here (the module's doctest, a process of its own,
    // checks them); this thread's are its own.
    std::thread::spawn(|| {
        assert!(!flushing());
        assert_eq!(half_least_normal(), f32::MIN_POSITIVE / 2.0);
        {
            let _flush = FlushSubnormals::on_pool();
            assert!(flushing());
            assert_eq!(half_least_normal(), 0.0, "FTZ: a subnormal result is zero");
            let pool = pool_flushing();
            assert_eq!(pool.len(), rayon::current_num_threads());
            assert!(
                pool.iter().all(|&f| f),
                "every pool thread flushes: {pool:?}"
            );
            let inner = FlushSubnormals::on_pool();
            drop(inner);
            assert!(flushing(), "an inner guard leaves the outer one's flush on");
            assert!(pool_flushing().iter().all(|&f| f));
        }
        assert!(!flushing(), "the thread's bits are restored");
        assert_eq!(half_least_normal(), f32::MIN_POSITIVE / 2.0);
    })
    .join()
    .expect("the checks pass");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn a_guard_dropped_on_another_thread_leaves_this_one_flushing() {
    let _flush = FlushSubnormals::on_pool();
    std::thread::spawn(|| drop(FlushSubnormals::on_pool()))
        .join()
        .expect("the other thread's guard");
    assert!(flushing());
    assert!(pool_flushing().iter().all(|&f| f), "the pool still flushes");
}

/// Records, after each step, whether the training thread and the pool flush.
#[derive(Default)]
struct Flushing {
    seen: Vec<(bool, bool)>,
}

impl Observer for Flushing {
    fn batch_finished(&mut self, _batch: usize) {
        self.seen
            .push((flushing(), pool_flushing().iter().all(|&f| f)));
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
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
            assert!(!flushing(), "{mode}: the thread's bits are restored after the run");
        }
    })
    .join()
    .expect("the checks pass");
}
