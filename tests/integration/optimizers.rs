//! The optimizers a config can name, each held to its update formula (PyTorch's
//! definition) for two steps on the same batch, from Burn's autodiff gradients; and
//! manual mode's, from the hand-derived ones.

use mnist_nn::adam::AdamMoments;
use mnist_nn::autodiff::{ADAMW_DEFAULT_DECAY, autodiff_gradients, autodiff_step, optimizer_with};
use mnist_nn::backend::BackendKind;
use mnist_nn::config::OptimizerKind;
use mnist_nn::input::Products;
use mnist_nn::learner::Learner;
use mnist_nn::manual::{backward_manual, momentum_step};
use mnist_nn::model::{HostParams, Init, TwoLayerNet};

use crate::util::{assert_close, devices, random_batch, values};

/// What one step of an optimizer does to the flattened `W1`, given its gradient `g`
/// and its state, as PyTorch defines it (momentum 0.9 without dampening, Adam
/// β = (0.9, 0.999), ε = 1e-8).
struct Reference {
    kind: OptimizerKind,
    decay: f64,
    /// Momentum buffer, or Adam's first moment.
    m: Vec<f64>,
    /// Adam's second moment.
    v: Vec<f64>,
    t: i32,
}

impl Reference {
    fn step(&mut self, w: &mut [f64], g: &[f64], alpha: f64) {
        let (mu, b1, b2, eps) = (0.9, 0.9, 0.999, 1e-8);
        self.t += 1;
        if self.m.is_empty() {
            self.m = vec![0.0; w.len()];
            self.v = vec![0.0; w.len()];
        }
        for i in 0..w.len() {
            // L2 decay adds λ·W to the gradient; AdamW's is decoupled (below).
            let gi = match self.kind {
                OptimizerKind::AdamW => g[i],
                _ => g[i] + self.decay * w[i],
            };
            match self.kind {
                OptimizerKind::Momentum | OptimizerKind::Nesterov => {
                    // buf = g on the first step, μ·buf + g after.
                    self.m[i] = if self.t == 1 { gi } else { mu * self.m[i] + gi };
                    let d = if self.kind == OptimizerKind::Nesterov {
                        gi + mu * self.m[i]
                    } else {
                        self.m[i]
                    };
                    w[i] -= alpha * d;
                }
                OptimizerKind::Adam | OptimizerKind::AdamW => {
                    if self.kind == OptimizerKind::AdamW {
                        w[i] -= alpha * self.decay * w[i];
                    }
                    self.m[i] = b1 * self.m[i] + (1.0 - b1) * gi;
                    self.v[i] = b2 * self.v[i] + (1.0 - b2) * gi * gi;
                    let m_hat = self.m[i] / (1.0 - b1.powi(self.t));
                    let v_hat = self.v[i] / (1.0 - b2.powi(self.t));
                    w[i] -= alpha * m_hat / (v_hat.sqrt() + eps);
                }
                _ => w[i] -= alpha * gi,
            }
        }
    }
}

#[test]
fn each_optimizer_follows_its_formula_for_two_steps() {
    let device = BackendKind::Flex.device().unwrap();
    let ad = device.clone().autodiff();
    let p = HostParams::init(12, Init::He, 21);
    let (x, y, _) = random_batch(16, 22, &device);
    let cases = [
        (OptimizerKind::Sgd, None, 0.0),
        (OptimizerKind::Sgd, Some(0.05), 0.05),
        (OptimizerKind::Momentum, None, 0.0),
        (OptimizerKind::Nesterov, None, 0.0),
        (OptimizerKind::Nesterov, Some(0.05), 0.05),
        (OptimizerKind::Adam, None, 0.0),
        (OptimizerKind::AdamW, None, ADAMW_DEFAULT_DECAY),
        (OptimizerKind::AdamW, Some(0.1), 0.1),
    ];
    for (kind, weight_decay, decay) in cases {
        let alpha = if matches!(kind, OptimizerKind::Adam | OptimizerKind::AdamW) {
            0.01
        } else {
            0.2
        };
        let mut optim = optimizer_with(kind, weight_decay);
        let mut reference = Reference {
            kind,
            decay,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        };
        let mut net = TwoLayerNet::from_host(&p, &ad);
        let mut w: Vec<f64> = p.w1.iter().map(|&v| f64::from(v)).collect();
        for step in 1..=2 {
            // The gradient at the current parameters, then Burn's step and the formula's.
            let (_, g) = autodiff_gradients(&net, x.clone(), y.clone());
            let g = values(g.dw1);
            net = autodiff_step(net, &mut optim, x.clone(), y.clone(), alpha).net;
            reference.step(&mut w, &g, alpha);
            let got = values(net.W1.val().inner());
            // Compare the moves from the start: f32 parameters and f32 moments against
            // f64 ones differ by rounding, ~1e-7 of a parameter; Adam's first steps
            // move every weight by about α, so 1e-3 of the largest move is far above
            // rounding and far below a wrong formula (a missing bias correction or
            // Nesterov term changes moves by 10% and more).
            let start: Vec<f64> = p.w1.iter().map(|&v| f64::from(v)).collect();
            let moved = |after: &[f64]| -> Vec<f64> {
                after.iter().zip(&start).map(|(a, b)| a - b).collect()
            };
            assert_close(
                &format!("{kind:?} decay {weight_decay:?} step {step}"),
                &moved(&got),
                &moved(&w),
                1e-3,
            );
        }
    }
}

#[test]
fn manual_momentum_follows_its_formula_and_matches_burns_momentum() {
    // Manual mode's `v = μ·v + dW; W -= α·v` for three steps on one batch: against the
    // formula in f64 (from the manual gradients at each step), and against autodiff
    // mode's Burn momentum optimizer, which implements the same update.
    let device = BackendKind::Flex.device().unwrap();
    let ad = device.clone().autodiff();
    let p = HostParams::init(12, Init::He, 31);
    let (x, y, _) = random_batch(16, 32, &device);
    let alpha = 0.2;
    let mut net = TwoLayerNet::from_host(&p, &device);
    let mut velocity = None;
    let mut burn_net = TwoLayerNet::from_host(&p, &ad);
    let mut optim = optimizer_with(OptimizerKind::Momentum, None);
    let mut reference = Reference {
        kind: OptimizerKind::Momentum,
        decay: 0.0,
        m: Vec::new(),
        v: Vec::new(),
        t: 0,
    };
    let start: Vec<f64> = p.w1.iter().map(|&v| f64::from(v)).collect();
    let mut w = start.clone();
    let moved =
        |after: &[f64]| -> Vec<f64> { after.iter().zip(&start).map(|(a, b)| a - b).collect() };
    for step in 1..=3 {
        let g = backward_manual(&net, x.clone(), y.clone(), &net.forward(x.clone()));
        reference.step(&mut w, &values(g.grads.dw1), alpha);
        let (next, v) = momentum_step(net, velocity, x.clone(), y.clone(), alpha);
        net = next.net;
        velocity = Some(v);
        burn_net = autodiff_step(burn_net, &mut optim, x.clone(), y.clone(), alpha).net;
        let got = values(net.W1.val());
        // As above: f32 against f64 rounding is ~1e-7 of a parameter; a missing μ (or
        // a velocity that is not carried) changes the second step's move by half.
        assert_close(
            &format!("step {step} against the formula"),
            &moved(&got),
            &moved(&w),
            1e-3,
        );
        assert_close(
            &format!("step {step} against Burn's momentum"),
            &moved(&got),
            &moved(&values(burn_net.W1.val().inner())),
            1e-3,
        );
    }
    // The velocity is carried: after three steps it is not just the last gradient.
    let last = backward_manual(&net, x.clone(), y, &net.forward(x))
        .grads
        .dw1;
    let v = velocity.expect("three steps made a velocity").dw1;
    let (gap, _) = crate::util::max_diff(&values(v), &values(last));
    assert!(gap > 1e-3, "the velocity equals a gradient: {gap}");
}

#[test]
fn manual_mode_with_a_burn_optimizer_follows_autodiff_mode() {
    // Manual mode's Nesterov, Adam and AdamW, and any weight decay, are the Burn
    // optimizer's step on the hand-derived gradients: three steps from the same start
    // on the same batch move W1 as autodiff mode's same optimizer does.
    let device = BackendKind::Flex.device().unwrap();
    let ad = device.clone().autodiff();
    let p = HostParams::init(12, Init::He, 41);
    let (x, y, _) = random_batch(16, 42, &device);
    let start: Vec<f64> = p.w1.iter().map(|&v| f64::from(v)).collect();
    let moved =
        |after: &[f64]| -> Vec<f64> { after.iter().zip(&start).map(|(a, b)| a - b).collect() };
    let cases = [
        (OptimizerKind::Nesterov, None),
        (OptimizerKind::Adam, None),
        (OptimizerKind::Adam, Some(1e-3)),
        (OptimizerKind::AdamW, None),
        (OptimizerKind::Sgd, Some(0.05)),
    ];
    for (kind, decay) in cases {
        let alpha = if matches!(kind, OptimizerKind::Adam | OptimizerKind::AdamW) {
            0.01
        } else {
            0.2
        };
        let mut manual = Learner::ManualOptimizer(
            TwoLayerNet::from_host(&p, &ad),
            optimizer_with(kind, decay),
            Products::Dense,
        );
        let mut auto =
            Learner::Autodiff(TwoLayerNet::from_host(&p, &ad), optimizer_with(kind, decay));
        for step in 1..=3 {
            manual = manual.step(x.clone(), y.clone(), alpha).0;
            auto = auto.step(x.clone(), y.clone(), alpha).0;
            // The two backwards sum the same products in other orders, a few ulps
            // apart, and the optimizers then do the same f32 arithmetic: ~1e-6 of a
            // move. A step with the wrong optimizer, or one whose state is not carried
            // from step to step (Adam's second step is not its first), moves weights
            // by 10% of a move and more, so 1e-3 of the largest move tells them apart.
            assert_close(
                &format!("{kind:?} decay {decay:?} step {step}"),
                &moved(&values(manual.model().W1.val())),
                &moved(&values(auto.model().W1.val())),
                1e-3,
            );
        }
    }
}

#[test]
fn manual_adam_in_place_takes_burns_adam_steps() {
    // Manual mode's Adam computed in place (`Learner::ManualAdam`) against Burn's Adam
    // on the same hand-derived gradients (`Learner::ManualOptimizer`), with and without
    // the L2 penalty, four steps from the same start on the same batch.
    let p = HostParams::init(12, Init::He, 43);
    for (kind, device) in devices() {
        let ad = device.clone().autodiff();
        let (x, y, _) = random_batch(16, 44, &device);
        for decay in [None, Some(1e-3)] {
            let net = TwoLayerNet::from_host(&p, &device);
            let moments = Box::new(AdamMoments::zeros(&net));
            let mut in_place = Learner::ManualAdam(net, moments, decay, Products::Dense);
            let mut burn = Learner::ManualOptimizer(
                TwoLayerNet::from_host(&p, &ad),
                optimizer_with(OptimizerKind::Adam, decay),
                Products::Dense,
            );
            for step in 1..=4 {
                in_place = in_place.step(x.clone(), y.clone(), 0.01).0;
                burn = burn.step(x.clone(), y.clone(), 0.01).0;
                let host = |l: &Learner| l.model().to_host().expect("the weights read back");
                let (got, want) = (host(&in_place), host(&burn));
                let case = format!("{kind} decay {decay:?} step {step}");
                if kind == BackendKind::Wgpu {
                    // A GPU's compiler may fuse a product and a sum into one rounding
                    // where Burn's kernels and ours are split differently: a few ulps
                    // of a weight, against Adam's moves of 0.01.
                    let f = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
                    assert_close(&case, &f(&got.w1), &f(&want.w1), 1e-5);
                } else {
                    // The same f32 operations in the same order: the same bits. A
                    // moment not carried, a bias correction of the wrong step or a
                    // penalty left out moves weights by a good part of 0.01.
                    assert_eq!(got, want, "{case}");
                }
            }
            assert_eq!(in_place.moments().map(|m| m.steps), Some(4));
        }
    }
}
