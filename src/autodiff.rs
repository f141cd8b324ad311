//! The framework path: the same forward on an autodiff device, the mean cross-entropy
//! of [`crate::loss`], `backward()`, and a Burn optimizer.

use burn::optim::{
    AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig, momentum::MomentumConfig,
};
use burn::prelude::*;

use crate::config::OptimizerKind;
use crate::gradients::Gradients;
use crate::learner::Step;
use crate::loss::cross_entropy;
use crate::model::TwoLayerNet;

/// Burn's autodiff gradients of the mean cross-entropy of `net` (on an autodiff device)
/// at input `x` `(784, m)` and one-hot labels `y` `(10, m)`, with that loss (on the plain
/// device).
pub fn autodiff_gradients(net: &TwoLayerNet, x: Tensor<2>, y: Tensor<2>) -> (Tensor<1>, Gradients) {
    let loss = cross_entropy(net.forward(x).z2, y);
    let grads = loss.backward();
    let grad = |t: Tensor<2>| t.grad(&grads).unwrap_or_else(|| t.zeros_like().inner());
    let grad1 = |t: Tensor<1>| t.grad(&grads).unwrap_or_else(|| t.zeros_like().inner());
    let gradients = Gradients {
        dw1: grad(net.W1.val()),
        db1: grad1(net.b1.val()),
        dw2: grad(net.W2.val()),
        db2: grad1(net.b2.val()),
    };
    (loss.inner(), gradients)
}

/// The Burn optimizer for `kind`, set up as PyTorch's defaults are.
pub fn optimizer(kind: OptimizerKind) -> ModuleOptimizer {
    match kind {
        OptimizerKind::Sgd => SgdConfig::new().init(),
        OptimizerKind::Momentum => SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
            ))
            .init(),
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .init(),
    }
}

/// One optimizer step on the mean cross-entropy at `(x, y)`, for `net` on an autodiff
/// device. Returns the updated network, and the loss and logits `Z2` of the forward
/// before the step (both on the plain device).
pub fn autodiff_step(
    net: TwoLayerNet,
    optim: &mut ModuleOptimizer,
    x: Tensor<2>,
    y: Tensor<2>,
    alpha: f64,
) -> Step {
    let z2 = net.forward(x).z2;
    let loss = cross_entropy(z2.clone(), y);
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    Step {
        net: optim.step(alpha, net, grads),
        loss: loss.inner(),
        z2: z2.inner(),
    }
}
