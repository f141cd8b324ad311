//! The training loop, through the library: trajectories, reproducibility, backends.

use std::collections::BTreeSet;
use std::path::Path;

use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use mnist_nn::NUM_CLASSES;
use mnist_nn::backend::BackendKind;
use mnist_nn::config::{Config, Mode};
use mnist_nn::data::Mnist;
use mnist_nn::loss::cross_entropy;
use mnist_nn::model::{HostParams, TwoLayerNet};
use mnist_nn::train::{Trained, train};

use crate::util::{assert_close, devices, mnist};

fn config(mode: Mode, hidden: usize, batch: usize, epochs: usize) -> Config {
    let text = format!(
        "name = \"t\"\nseed = 5\nmode = \"{}\"\n[model]\nhidden = {hidden}\n[train]\nepochs = {epochs}\nbatch_size = {batch}\nlearning_rate = 0.1\n",
        format!("{mode:?}").to_lowercase()
    );
    let c = Config::parse(&text, Path::new("t.toml")).unwrap();
    c.validate(Path::new("t.toml")).unwrap();
    c
}

/// The first `n` training images of the bundled MNIST, with its test set.
fn subset(n: usize) -> Mnist {
    let all = mnist();
    Mnist {
        train: all.train.slice(0..n),
        valid: all.valid.slice(0..500),
        test: all.test.clone(),
    }
}

fn run(c: &Config, data: &Mnist, kind: BackendKind) -> Trained {
    let device = kind.device().unwrap();
    let model = TwoLayerNet::new(c.model.hidden, c.model.init, c.seed, &device);
    train(c, model, data, &device, &mut ()).unwrap()
}

#[test]
fn autodiff_sgd_follows_the_manual_trajectory() {
    // 40 mini-batch steps from the same start, on the same shuffles.
    let data = subset(2000);
    let start = HostParams::init(32, Default::default(), 5);
    let manual = run(
        &config(Mode::Manual, 32, 50, 1),
        &data,
        BackendKind::Ndarray,
    );
    let auto = run(
        &config(Mode::Autodiff, 32, 50, 1),
        &data,
        BackendKind::Ndarray,
    );
    let (m, a) = (
        manual.model.to_host().unwrap(),
        auto.model.to_host().unwrap(),
    );
    let moved = |after: &[f32], before: &[f32]| -> Vec<f64> {
        after
            .iter()
            .zip(before)
            .map(|(x, y)| f64::from(x - y))
            .collect()
    };
    // 40 steps compound the per-step rounding differences (see gradients.rs) but stay
    // far below what a different update rule would give (a different α or momentum
    // changes the moves by tens of percent): 1e-3 relative to the largest move.
    assert_close(
        "trajectory W1",
        &moved(&a.w1, &start.w1),
        &moved(&m.w1, &start.w1),
        1e-3,
    );
    assert_close(
        "trajectory b1",
        &moved(&a.b1, &start.b1),
        &moved(&m.b1, &start.b1),
        1e-3,
    );
    assert_close(
        "trajectory W2",
        &moved(&a.w2, &start.w2),
        &moved(&m.w2, &start.w2),
        1e-3,
    );
    assert_close(
        "trajectory b2",
        &moved(&a.b2, &start.b2),
        &moved(&m.b2, &start.b2),
        1e-3,
    );
    let (lm, la) = (manual.history[0].train.loss, auto.history[0].train.loss);
    assert!(
        (lm - la).abs() < 1e-4 * lm,
        "epoch losses {lm} (manual) vs {la} (autodiff)"
    );
}

#[test]
fn the_loss_of_a_large_batch_has_the_same_bits_every_time() {
    // A whole-tensor `sum()` on wgpu adds workgroups' partial sums atomically, in the
    // order they finish: computed so, this loss of 200,000 columns took two
    // values, 3.3905504 and 3.3905506, within 100 tries in each of 3 runs on
    // lavapipe; on a GPU, whose workgroups finish in any order, its last bits would vary
    // from run to run. Every logged loss goes through `cross_entropy`, so a run's metrics
    // repeat only if this does.
    let m = 200_000;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let logits: Vec<f32> = (0..NUM_CLASSES * m)
        .map(|_| rng.random_range(-3.0..3.0))
        .collect();
    let one_hot: Vec<f32> = (0..NUM_CLASSES * m)
        // Row k, column j: column j's label is j mod 10.
        .map(|i| f32::from(u8::from(i / m == (i % m) % NUM_CLASSES)))
        .collect();
    for (kind, device) in devices() {
        let z2 = Tensor::<2>::from_data(TensorData::new(logits.clone(), [NUM_CLASSES, m]), &device);
        let y = Tensor::<2>::from_data(TensorData::new(one_hot.clone(), [NUM_CLASSES, m]), &device);
        let bits: BTreeSet<u32> = (0..100)
            .map(|_| {
                let loss = cross_entropy(z2.clone(), y.clone());
                loss.try_into_scalar::<f32>().unwrap().to_bits()
            })
            .collect();
        assert_eq!(
            bits.len(),
            1,
            "{kind}: {} different losses: {:?}",
            bits.len(),
            bits.iter().map(|b| f32::from_bits(*b)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn same_seed_same_metrics_different_seed_different_metrics() {
    let data = subset(1000);
    for kind in [BackendKind::Ndarray, BackendKind::Flex] {
        let c = config(Mode::Manual, 16, 32, 2);
        let a = run(&c, &data, kind);
        let b = run(&c, &data, kind);
        let figures = |t: &Trained| -> Vec<(f64, f64, f64)> {
            t.history
                .iter()
                .map(|r| {
                    (
                        r.train.loss,
                        r.valid.unwrap().loss,
                        r.test.unwrap().accuracy,
                    )
                })
                .collect()
        };
        assert_eq!(
            figures(&a),
            figures(&b),
            "{kind}: same seed must give the same metrics"
        );
        assert_eq!(
            a.model.to_host().unwrap(),
            b.model.to_host().unwrap(),
            "{kind}: same seed, same parameters"
        );
        let mut other = c.clone();
        other.seed = 6;
        let d = run(&other, &data, kind);
        assert_ne!(figures(&a), figures(&d), "{kind}: the seed must matter");
    }
}

#[test]
fn a_short_run_learns_on_every_backend_in_both_modes() {
    let data = subset(3000);
    for (kind, _) in devices() {
        for mode in [Mode::Manual, Mode::Autodiff] {
            let t = run(&config(mode, 32, 32, 1), &data, kind);
            let test = t.history[0].test.unwrap();
            eprintln!(
                "{kind} {mode:?}: test accuracy {:.4} after 1 epoch of 3000 images",
                test.accuracy
            );
            // 94 steps of SGD reach ~88% here; chance is 10%.
            assert!(
                test.accuracy > 0.80,
                "{kind} {mode:?}: test accuracy {}",
                test.accuracy
            );
            assert_eq!(t.history[0].step, 3000usize.div_ceil(32));
        }
    }
}

#[test]
fn full_batch_takes_one_step_per_epoch() {
    let data = subset(500);
    let mut c = config(Mode::Manual, 8, 1, 3);
    c.train.batch_size = mnist_nn::config::BatchSize::Full;
    c.train.eval_every = 2;
    let t = run(&c, &data, BackendKind::Ndarray);
    let steps: Vec<usize> = t.history.iter().map(|r| r.step).collect();
    assert_eq!(steps, vec![1, 2, 3]);
    let evaluated: Vec<bool> = t.history.iter().map(|r| r.test.is_some()).collect();
    assert_eq!(
        evaluated,
        vec![false, true, true],
        "every 2nd epoch and the last"
    );
    assert!(
        t.history[2].train.loss < t.history[0].train.loss,
        "loss must fall"
    );
}

#[test]
fn running_train_figures_equal_an_evaluation_when_nothing_moves() {
    // With α = 0 the network never changes, so the epoch's running loss and accuracy
    // (read back from the device a window of 16 steps at a time, each batch gathered in
    // shuffled order) must be those of one evaluation of the starting network on the
    // same images. 1,000 images at batch 16: 63 steps, the last of 8 images, settled in
    // windows of 16, 16, 16 and 15.
    let data = subset(1000);
    let mut c = config(Mode::Manual, 16, 16, 1);
    c.train.learning_rate = 0.0;
    for (kind, device) in devices() {
        let model = TwoLayerNet::new(16, c.model.init, c.seed, &device);
        let want = mnist_nn::eval::evaluate(&model, &data.train.to_device(&device)).unwrap();
        let t = train(&c, model, &data, &device, &mut ()).unwrap();
        let got = t.history[0].train;
        assert_eq!(t.history[0].step, 63, "{kind}");
        assert_eq!(got.images, 1000, "{kind}");
        // Counts are exact.
        assert_eq!(got.accuracy, want.accuracy, "{kind}: accuracy");
        // Sums of the same 1,000 f32 losses in other groupings: a few f32 ulps of ~2.3.
        assert!(
            (got.loss - want.loss).abs() < 1e-5,
            "{kind}: running loss {} against evaluated {}",
            got.loss,
            want.loss
        );
    }
}
