//! The hand-derived backward against Burn's autodiff, on every backend.
//!
//! Tolerance: both sides compute in f32 from identical inputs and differ only in the
//! order of floating-point operations (autodiff backpropagates through log-softmax and
//! the broadcast bias add; the manual path sums the same terms in its own order). The
//! reductions here are at most 784 terms long, so each side's rounding error is a few
//! hundred ulps of the largest entry at worst: about 1e-5 relative to f32's 1.2e-7. We
//! allow 1e-4 relative to the largest entry of each gradient (GPU kernels may reorder
//! sums further, e.g. in tiled matmuls). A broken formula errs by far more: a wrong
//! 1/m is off by at least 1/m (≥ 1.5% at m = 64), a missing ReLU' mask by whole
//! entries of the dead units, a wrong sign by 200%.

use burn::prelude::*;
use burn::tensor::activation::relu;
use mnist_nn::autodiff::{autodiff_gradients, autodiff_step, optimizer};
use mnist_nn::config::OptimizerKind;
use mnist_nn::loss::cross_entropy;
use mnist_nn::manual::backward_manual;
use mnist_nn::model::{HostParams, Init, TwoLayerNet};

use crate::util::{assert_close, devices, random_batch, values};

/// Relative tolerance of manual against autodiff gradients (see module docs).
const TOL: f64 = 1e-4;

/// A case: hidden units, batch size, seed, and whether half the hidden units are dead.
struct Case {
    hidden: usize,
    m: usize,
    seed: u64,
    dead: bool,
}

const CASES: [Case; 6] = [
    Case {
        hidden: 1,
        m: 1,
        seed: 1,
        dead: false,
    },
    Case {
        hidden: 10,
        m: 1,
        seed: 2,
        dead: false,
    },
    Case {
        hidden: 16,
        m: 7,
        seed: 3,
        dead: false,
    },
    Case {
        hidden: 64,
        m: 64,
        seed: 4,
        dead: false,
    },
    Case {
        hidden: 128,
        m: 33,
        seed: 5,
        dead: false,
    },
    Case {
        hidden: 24,
        m: 9,
        seed: 6,
        dead: true,
    },
];

/// Parameters for `case`; with `dead`, every other hidden unit gets a bias so negative
/// that its ReLU is off for every image, so ReLU'(Z1) = 0 there.
fn params(case: &Case) -> HostParams {
    let mut p = HostParams::init(case.hidden, Init::He, case.seed);
    if case.dead {
        for b in p.b1.iter_mut().step_by(2) {
            *b = -1000.0;
        }
    }
    // Non-zero biases so that db and the bias broadcast are exercised.
    for (i, b) in p.b2.iter_mut().enumerate() {
        *b = 0.05 * i as f32 - 0.2;
    }
    p
}

#[test]
fn manual_weight_and_bias_gradients_match_autodiff_on_every_backend() {
    for (kind, device) in devices() {
        for case in &CASES {
            let p = params(case);
            let (x, y, _) = random_batch(case.m, 100 + case.seed, &device);
            let net = TwoLayerNet::from_host(&p, &device);
            let fwd = net.forward(x.clone());
            let manual = backward_manual(&net, x.clone(), y.clone(), &fwd);
            let ad_net = TwoLayerNet::from_host(&p, &device.clone().autodiff());
            let (_, ad) = autodiff_gradients(&ad_net, x, y);
            let tag = format!(
                "{kind} hidden {} m {} dead {}",
                case.hidden, case.m, case.dead
            );
            assert_close(
                &format!("{tag} dW1"),
                &values(manual.grads.dw1),
                &values(ad.dw1),
                TOL,
            );
            assert_close(
                &format!("{tag} db1"),
                &values(manual.grads.db1),
                &values(ad.db1),
                TOL,
            );
            assert_close(
                &format!("{tag} dW2"),
                &values(manual.grads.dw2),
                &values(ad.dw2),
                TOL,
            );
            assert_close(
                &format!("{tag} db2"),
                &values(manual.grads.db2),
                &values(ad.db2),
                TOL,
            );
        }
    }
}

#[test]
fn manual_dz_match_autodiff_gradients_of_the_mean_loss_times_m() {
    // dZ2 and dZ1 are ∂(m·L)/∂Z: autodiff of the mean loss with Z2 (then Z1) as leaves
    // gives them divided by m.
    for (kind, device) in devices() {
        let ad_device = device.clone().autodiff();
        for case in &CASES {
            let p = params(case);
            let m = case.m as f64;
            let (x, y, _) = random_batch(case.m, 200 + case.seed, &device);
            let net = TwoLayerNet::from_host(&p, &device);
            let fwd = net.forward(x.clone());
            let manual = backward_manual(&net, x, y.clone(), &fwd);

            let z2 = fwd.z2.clone().autodiff().require_grad();
            let grads = cross_entropy(z2.clone(), y.clone()).backward();
            let dz2 = z2.grad(&grads).expect("Z2 is a leaf").mul_scalar(m);

            let ad_net = TwoLayerNet::from_host(&p, &ad_device);
            let z1 = fwd.z1.clone().autodiff().require_grad();
            let z2_of_z1 =
                ad_net.W2.val().matmul(relu(z1.clone())) + ad_net.b2.val().unsqueeze_dim(1);
            let grads = cross_entropy(z2_of_z1, y).backward();
            let dz1 = z1.grad(&grads).expect("Z1 is a leaf").mul_scalar(m);

            let tag = format!(
                "{kind} hidden {} m {} dead {}",
                case.hidden, case.m, case.dead
            );
            assert_close(
                &format!("{tag} dZ2"),
                &values(manual.dz2),
                &values(dz2),
                TOL,
            );
            assert_close(
                &format!("{tag} dZ1"),
                &values(manual.dz1),
                &values(dz1),
                TOL,
            );
        }
    }
}

#[test]
fn one_manual_step_equals_one_autodiff_sgd_step() {
    let alpha = 0.5;
    for (kind, device) in devices() {
        let case = &CASES[3];
        let p = params(case);
        let (x, y, _) = random_batch(case.m, 300, &device);
        let net = TwoLayerNet::from_host(&p, &device);
        let fwd = net.forward(x.clone());
        let grads = backward_manual(&net, x.clone(), y.clone(), &fwd);
        let manual = net.gradient_descent(grads.grads, alpha).to_host().unwrap();

        let ad_net = TwoLayerNet::from_host(&p, &device.clone().autodiff());
        let mut sgd = optimizer(OptimizerKind::Sgd);
        let ad_net = autodiff_step(ad_net, &mut sgd, x, y, alpha).net;
        let auto = ad_net.valid().to_host().unwrap();

        // The step moved the parameters: compare the moves, not the (much larger)
        // parameters, so that the tolerance is relative to what the gradient did.
        let moved = |after: &[f32], before: &[f32]| -> Vec<f64> {
            after
                .iter()
                .zip(before)
                .map(|(a, b)| f64::from(a - b))
                .collect()
        };
        let pairs = [
            ("W1", &manual.w1, &auto.w1, &p.w1),
            ("b1", &manual.b1, &auto.b1, &p.b1),
            ("W2", &manual.w2, &auto.w2, &p.w2),
            ("b2", &manual.b2, &auto.b2, &p.b2),
        ];
        for (name, m, a, before) in pairs {
            // The move is α·dW rounded into f32 parameters of magnitude up to ~0.5,
            // which costs up to 3e-8 absolute, ~1e-3 of the smallest moves here: allow
            // 1e-3 relative to the largest move.
            assert_close(
                &format!("{kind} step {name}"),
                &moved(m, before),
                &moved(a, before),
                1e-3,
            );
        }
    }
}
