//! The framework path: the same forward on an autodiff device, the mean cross-entropy
//! of [`crate::loss`], `backward()`, and a Burn optimizer.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig, momentum::MomentumConfig,
};
use burn::prelude::*;

use crate::config::{OptimizerKind, TrainConfig};
use crate::gradients::Gradients;
use crate::learner::Step;
use crate::loss::cross_entropy;
use crate::model::TwoLayerNet;

/// Burn's autodiff gradients of the mean cross-entropy of `net` (on an autodiff device)
/// at input `x` `(784, m)` and one-hot labels `y` `(10, m)`, with that loss (on the plain
/// device).
pub fn autodiff_gradients(net: &TwoLayerNet, x: Tensor<2>, y: Tensor<2>) -> (Tensor<1>, Gradients) {
    let (loss, _, gradients) = autodiff_pass(net, x, y);
    (loss, gradients)
}

/// As [`autodiff_gradients`], with the logits `Z2` `(10, m)` of the forward too (on the
/// plain device).
pub fn autodiff_pass(
    net: &TwoLayerNet,
    x: Tensor<2>,
    y: Tensor<2>,
) -> (Tensor<1>, Tensor<2>, Gradients) {
    let z2 = net.forward(x).z2;
    let loss = cross_entropy(z2.clone(), y);
    let grads = loss.backward();
    let grad = |t: Tensor<2>| t.grad(&grads).unwrap_or_else(|| t.zeros_like().inner());
    let grad1 = |t: Tensor<1>| t.grad(&grads).unwrap_or_else(|| t.zeros_like().inner());
    let gradients = Gradients {
        dw1: grad(net.W1.val()),
        db1: grad1(net.b1.val()),
        dw2: grad(net.W2.val()),
        db2: grad1(net.b2.val()),
    };
    (loss.inner(), z2.inner(), gradients)
}

/// The Burn optimizer for `kind`, set up as PyTorch's defaults are, without weight
/// decay (AdamW: PyTorch's default decay, 0.01).
pub fn optimizer(kind: OptimizerKind) -> ModuleOptimizer {
    optimizer_with(kind, None)
}

/// The Burn optimizer of a run's `[train]`: its `optimizer` and `weight_decay`.
pub fn optimizer_for(train: &TrainConfig) -> ModuleOptimizer {
    optimizer_with(train.optimizer, train.weight_decay)
}

/// The Burn optimizer for `kind`, set up as PyTorch's defaults are, with
/// `weight_decay` λ: an L2 penalty `dW + λ·W` for SGD, momentum, Nesterov and Adam (as
/// their PyTorch `weight_decay`), the decoupled `W −= α·λ·W` for AdamW (default 0.01).
pub fn optimizer_with(kind: OptimizerKind, weight_decay: Option<f64>) -> ModuleOptimizer {
    let l2 = weight_decay.map(|decay| WeightDecayConfig::new(decay as f32));
    let momentum = |nesterov: bool| {
        MomentumConfig::new()
            .with_momentum(0.9)
            .with_dampening(0.0)
            .with_nesterov(nesterov)
    };
    match kind {
        OptimizerKind::Sgd => SgdConfig::new().with_weight_decay(l2).init(),
        OptimizerKind::Momentum => SgdConfig::new()
            .with_momentum(Some(momentum(false)))
            .with_weight_decay(l2)
            .init(),
        OptimizerKind::Nesterov => SgdConfig::new()
            .with_momentum(Some(momentum(true)))
            .with_weight_decay(l2)
            .init(),
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .with_weight_decay(l2)
            .init(),
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .with_weight_decay(weight_decay.unwrap_or(ADAMW_DEFAULT_DECAY) as f32)
            .init(),
    }
}

/// AdamW's decoupled weight decay when the config gives none: PyTorch's default.
pub const ADAMW_DEFAULT_DECAY: f64 = 0.01;

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
