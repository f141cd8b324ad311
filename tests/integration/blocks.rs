//! Column blocks: a batch too large for the device is stepped block by block, and the
//! step must be the whole batch's step.

use burn::prelude::*;
use mnist_nn::autodiff::optimizer;
use mnist_nn::backend::BackendKind;
use mnist_nn::blocks::Block;
use mnist_nn::config::{Config, OptimizerKind};
use mnist_nn::learner::Learner;
use mnist_nn::model::{HostParams, TwoLayerNet};
use mnist_nn::train::train;

use crate::util::{assert_close, devices, mnist, random_batch, root, values};

/// The four parameters of a learner's network, as `f64`, one after another.
fn params(learner: &Learner) -> Vec<f64> {
    let net = learner.model();
    let mut v = values(net.W1.val());
    v.extend(values(net.b1.val()));
    v.extend(values(net.W2.val()));
    v.extend(values(net.b2.val()));
    v
}

/// The blocks of `x`, `y` at the column boundaries `cuts`.
fn split(x: &Tensor<2>, y: &Tensor<2>, cuts: &[usize]) -> Vec<Block> {
    cuts.windows(2)
        .map(|w| Block {
            x: x.clone().slice([0..784, w[0]..w[1]]),
            y: y.clone().slice([0..10, w[0]..w[1]]),
        })
        .collect()
}

/// The three kinds of learner, each from the same start on `device`.
fn learners(start: &HostParams, device: &Device) -> Vec<(&'static str, Learner)> {
    let net = || TwoLayerNet::from_host(start, device);
    vec![
        ("manual", Learner::manual(net())),
        (
            "manual momentum",
            Learner::ManualMomentum(net(), None, Default::default()),
        ),
        // Burn's SGD with momentum: an update linear in the gradient, as the manual
        // ones are. (Adam's first steps are α·g/(|g| + ε), which turns the last-ulp
        // differences of gradients near zero into differences of up to α.)
        (
            "autodiff momentum",
            Learner::autodiff(net(), optimizer(OptimizerKind::Momentum), device),
        ),
    ]
}

#[test]
fn a_step_in_column_blocks_is_the_whole_batch_step() {
    // 100 images cut unevenly (37, 50, 13): a block weighted by anything but its share
    // m_b/m of the images (1/3 each, say) gives other gradients. Two steps, so that
    // the velocities from a blocked step are used again.
    let start = HostParams::init(24, Default::default(), 11);
    for (kind, device) in devices() {
        let (x, y, _) = random_batch(100, 3, &device);
        let (x2, y2, _) = random_batch(100, 4, &device);
        let cuts = [0, 37, 87, 100];
        let wholes = learners(&start, &device);
        let blocked = learners(&start, &device);
        for ((name, whole), (_, in_blocks)) in wholes.into_iter().zip(blocked) {
            let (whole, loss, z2) = whole.step(x.clone(), y.clone(), 0.5);
            let (whole, _, _) = whole.step(x2.clone(), y2.clone(), 0.5);
            let (in_blocks, b_loss, b_z2) = in_blocks.step_blocks(split(&x, &y, &cuts), 0.5);
            let (in_blocks, _, _) = in_blocks.step_blocks(split(&x2, &y2, &cuts), 0.5);
            let what = |s: &str| format!("{kind} {name}: {s}");
            // The same f32 products and sums in another grouping (three partial sums
            // over 37, 50 and 13 images, then their weighted sum): differences of a few
            // f32 ulps of the largest value, well under 1e-5 of it; a wrong weight moves
            // the parameters by a share of α·dW, orders of magnitude more.
            assert_close(&what("loss"), &values(b_loss), &values(loss), 1e-5);
            assert_close(&what("Z2"), &values(b_z2), &values(z2), 1e-5);
            assert_close(
                &what("parameters"),
                &params(&in_blocks),
                &params(&whole),
                1e-5,
            );
        }
    }
}

#[test]
fn one_block_is_the_plain_step_exactly() {
    let start = HostParams::init(16, Default::default(), 2);
    let device = BackendKind::Flex.device().unwrap();
    let (x, y, _) = random_batch(40, 8, &device);
    let (whole, loss, _) =
        Learner::manual(TwoLayerNet::from_host(&start, &device)).step(x.clone(), y.clone(), 0.3);
    let one = vec![Block { x, y }];
    let (blocked, b_loss, _) =
        Learner::manual(TwoLayerNet::from_host(&start, &device)).step_blocks(one, 0.3);
    assert_eq!(values(b_loss), values(loss));
    assert_eq!(params(&blocked), params(&whole));
}

#[test]
fn the_seed_full_batch_trains_on_wgpu_in_blocks() {
    // configs/seed.toml's full batch: X of 55,000 images is 172 MB, above the 128 MiB a
    // GPU buffer may hold here, so each step goes in two column blocks. One epoch must
    // give what flex (one block) gives.
    let Some(wgpu) = devices()
        .into_iter()
        .find(|(kind, _)| *kind == BackendKind::Wgpu)
    else {
        return; // `devices` said why; CI requires wgpu.
    };
    let mut c = Config::load(&root().join("configs/seed.toml")).unwrap();
    c.train.epochs = 1;
    let data = mnist();
    assert!(data.train.len() * 784 * 4 > mnist_nn::data::mnist::MAX_TENSOR_BYTES);
    let run = |device: &Device| {
        let model = TwoLayerNet::new(c.model.hidden, c.model.init, c.seed, device);
        train(&c, model, data, device, &mut ()).expect("full batch trains")
    };
    let on_gpu = run(&wgpu.1);
    let on_cpu = run(&BackendKind::Flex.device().unwrap());
    let (g, f) = (&on_gpu.history[0], &on_cpu.history[0]);
    assert_eq!(g.step, 1);
    assert_eq!(g.train.images, 55_000);
    // The loss of one step from the same start: f32 sums over 55,000 images in another
    // order (two blocks; the GPU's reductions) agree to about 1e-6 of the value.
    assert!(
        (g.train.loss - f.train.loss).abs() < 1e-4 * f.train.loss,
        "train loss {} on wgpu, {} on flex",
        g.train.loss,
        f.train.loss
    );
    let (gt, ft) = (g.test.expect("evaluated"), f.test.expect("evaluated"));
    assert!(
        (gt.loss - ft.loss).abs() < 1e-4 * ft.loss,
        "test loss after the step {} on wgpu, {} on flex",
        gt.loss,
        ft.loss
    );
}
