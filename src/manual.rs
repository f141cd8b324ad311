//! The hand-derived backward pass and the gradient-descent update.
//!
//! For the forward of [`crate::model`] and the mean cross-entropy loss of
//! [`crate::loss`], with `Y` the `(10, m)` one-hot labels:
//!
//! ```text
//! dZ2 = A2 − Y                       (10, m)
//! dW2 = (1/m)·dZ2·A1ᵀ                (10, hidden)
//! db2 = (1/m)·Σ_columns dZ2          (10)
//! dZ1 = W2ᵀ·dZ2 ⊙ ReLU'(Z1)          (hidden, m)
//! dW1 = (1/m)·dZ1·Xᵀ                 (hidden, 784)
//! db1 = (1/m)·Σ_columns dZ1          (hidden)
//! W -= α·dW,  b -= α·db
//! ```
//!
//! With `optimizer = "momentum"` the update instead keeps a velocity `v` per parameter,
//! as PyTorch's SGD with momentum does (no dampening; `v` starts at 0, so the first
//! step is plain gradient descent):
//!
//! ```text
//! v = μ·v + dW,  W -= α·v          (μ = 0.9; the same for each b)
//! ```
//!
//! `dZ2` and `dZ1` are the gradients of `m·L`; the `1/m` of the mean is applied in the
//! weight and bias gradients, which are therefore exactly `∂L/∂W` and `∂L/∂b`. In the
//! weight gradients it scales the `dZ` factor before the product, not the product: the
//! same number (a scalar commutes), on `10·m` or `hidden·m` values instead of `10·hidden`
//! or `hidden·784` (for hidden 800 at batch 128, six times fewer), one pass over the
//! largest gradient saved per step.

use burn::module::Param;
use burn::prelude::*;

use crate::gradients::Gradients;
use crate::input::{Input, InputProduct};
use crate::learner::Step;
use crate::loss::cross_entropy;
use crate::model::{Forward, TwoLayerNet};
use crate::update::{self, minus_scaled};

/// What the backward pass computed: the two `dZ`, kept beside the parameter
/// gradients as the forward keeps `Z` and `A` (the tests compare them with autodiff's).
#[derive(Debug, Clone)]
pub struct Backward {
    /// `(10, m)` `A2 − Y`: the gradient of `m·L` with respect to `Z2`.
    pub dz2: Tensor<2>,
    /// `(hidden, m)` `W2ᵀ·dZ2 ⊙ ReLU'(Z1)`: the gradient of `m·L` with respect to `Z1`.
    pub dz1: Tensor<2>,
    /// The gradients of the mean loss with respect to the parameters.
    pub grads: Gradients,
}

/// `ReLU'(Z)`: 1 where `z > 0`, else 0 (the subgradient 0 at `z = 0`, as Burn's ReLU has).
///
/// A product with this 0/1 matrix rather than `mask_fill`: flex fills a mask in place
/// with a branch per element, which on ReLU's unpredictable masks took 6% of a
/// hidden-800 training run; the cast and the product are vectorised.
/// The mask is cast to `z`'s own float type (f32 in training, f64 in the tests).
fn relu_prime(z: Tensor<2>) -> Tensor<2> {
    let dtype = burn::tensor::FloatDType::from(z.dtype());
    z.greater_elem(0.0).cast(dtype)
}

/// The backward pass of the design notes, one line per equation.
///
/// `x` is the `(784, m)` input, `y` the `(10, m)` one-hot labels and `fwd` what
/// [`TwoLayerNet::forward`] computed from `x`.
pub fn backward_manual(net: &TwoLayerNet, x: Tensor<2>, y: Tensor<2>, fwd: &Forward) -> Backward {
    backward_input(net, &Input::Dense(x), y, fwd)
}

/// [`backward_manual`] on `x` dense or sparse ([`Input`]).
pub fn backward_input(net: &TwoLayerNet, x: &Input, y: Tensor<2>, fwd: &Forward) -> Backward {
    let m = x.images();
    let inv_m = 1.0 / m as f64;
    // dZ2 = A2 − Y                                  (10, m)
    let dz2 = fwd.a2.clone() - y;
    // dW2 = (1/m)·dZ2·A1ᵀ                           (10, hidden)
    let dw2 = dz2
        .clone()
        .mul_scalar(inv_m)
        .matmul(fwd.a1.clone().transpose());
    // db2 = (1/m)·Σ_columns dZ2                     (10)
    let db2 = dz2.clone().sum_dim(1).squeeze_dim(1).mul_scalar(inv_m);
    // dZ1 = W2ᵀ·dZ2 ⊙ ReLU'(Z1), ReLU'(z) = [z > 0]   (hidden, m)
    let dz1 = net.W2.val().transpose().matmul(dz2.clone()) * relu_prime(fwd.z1.clone());
    // dW1 = (1/m)·dZ1·Xᵀ                            (hidden, 784)
    let dw1 = dz1.clone().mul_scalar(inv_m).matmul_xt(x);
    // db1 = (1/m)·Σ_columns dZ1                     (hidden)
    let db1 = dz1.clone().sum_dim(1).squeeze_dim(1).mul_scalar(inv_m);
    Backward {
        dz2,
        dz1,
        grads: Gradients { dw1, db1, dw2, db2 },
    }
}

/// One step of the seed's training: the forward pass on `x` `(784, m)`, the mean loss
/// against the one-hot `y` `(10, m)`, [`backward_manual`], and
/// [`TwoLayerNet::gradient_descent`] with rate `alpha`. The loss and logits are those of
/// the network before the step, left on the device.
pub fn manual_step(net: TwoLayerNet, x: impl Into<Input>, y: Tensor<2>, alpha: f64) -> Step {
    manual_step_then(net, x, y, alpha, || ())
}

/// [`manual_step`], calling `after_forward` once the forward pass is done
/// ([`manual_pass_then`]).
pub fn manual_step_then(
    net: TwoLayerNet,
    x: impl Into<Input>,
    y: Tensor<2>,
    alpha: f64,
    after_forward: impl FnOnce(),
) -> Step {
    let (loss, z2, grads) = manual_pass_then(&net, x, y, after_forward);
    Step {
        net: net.gradient_descent(grads, alpha),
        loss,
        z2,
    }
}

/// The forward pass on `x` `(784, m)`, the mean loss against the one-hot `y` `(10, m)`,
/// and [`backward_manual`]: that loss, the logits `Z2` `(10, m)` and the gradients, all
/// of `net` as it is (no update).
pub fn manual_pass(
    net: &TwoLayerNet,
    x: impl Into<Input>,
    y: Tensor<2>,
) -> (Tensor<1>, Tensor<2>, Gradients) {
    manual_pass_then(net, x, y, || ())
}

/// [`manual_pass`], calling `after_forward` once the forward pass is done. What
/// follows it until the product `dZ1·Xᵀ` (the loss, `dZ2`, `dW2`, `dZ1`) runs on this
/// thread alone; the training loop hands the idle pool work there (listing the next
/// batch's nonzeros).
pub fn manual_pass_then(
    net: &TwoLayerNet,
    x: impl Into<Input>,
    y: Tensor<2>,
    after_forward: impl FnOnce(),
) -> (Tensor<1>, Tensor<2>, Gradients) {
    let x = x.into();
    let fwd = net.forward_input(&x);
    after_forward();
    let loss = cross_entropy(fwd.z2.clone(), y.clone());
    let grads = backward_input(net, &x, y, &fwd).grads;
    (loss, fwd.z2, grads)
}

/// Momentum `μ` of [`momentum_step`], PyTorch's usual 0.9 (the same as autodiff mode's
/// `momentum` optimizer).
pub const MOMENTUM: f64 = 0.9;

/// One step of gradient descent with momentum: as [`manual_step`], but the update is
/// `v = μ·v + dW; W -= α·v` ([`TwoLayerNet::momentum_descent`]). `velocity` is `v`
/// before the step (`None` at the start: zero); the step gives back `v` after it.
pub fn momentum_step(
    net: TwoLayerNet,
    velocity: Option<Gradients>,
    x: impl Into<Input>,
    y: Tensor<2>,
    alpha: f64,
) -> (Step, Gradients) {
    momentum_step_then(net, velocity, x, y, alpha, || ())
}

/// [`momentum_step`], calling `after_forward` once the forward pass is done
/// ([`manual_pass_then`]).
pub fn momentum_step_then(
    net: TwoLayerNet,
    velocity: Option<Gradients>,
    x: impl Into<Input>,
    y: Tensor<2>,
    alpha: f64,
    after_forward: impl FnOnce(),
) -> (Step, Gradients) {
    let (loss, z2, grads) = manual_pass_then(&net, x, y, after_forward);
    let (net, v) = net.momentum_descent(grads, velocity, MOMENTUM, alpha);
    (Step { net, loss, z2 }, v)
}

impl TwoLayerNet {
    /// One gradient-descent step: `W -= α·dW`, `b -= α·db` for both layers.
    ///
    /// Takes the network by value: each parameter is then the only handle on its buffer,
    /// so on flex the update is written over it in one pass ([`update::minus_scaled`])
    /// rather than into a new tensor at every step (2.5 MB for `W1` at hidden 800).
    pub fn gradient_descent(self, g: Gradients, alpha: f64) -> Self {
        let Gradients { dw1, db1, dw2, db2 } = g;
        Self {
            // W1 -= α·dW1
            W1: self.W1.map(|w| minus_scaled(w, dw1, alpha)),
            // b1 -= α·db1
            b1: self.b1.map(|b| minus_scaled(b, db1, alpha)),
            // W2 -= α·dW2
            W2: self.W2.map(|w| minus_scaled(w, dw2, alpha)),
            // b2 -= α·db2
            b2: self.b2.map(|b| minus_scaled(b, db2, alpha)),
        }
    }

    /// One step of gradient descent with momentum `mu`: for each parameter,
    /// `v = μ·v + dW; W -= α·v` (`velocity` the old `v`, `None` for zero). Returns the
    /// network after the step and the new velocity.
    pub fn momentum_descent(
        self,
        g: Gradients,
        velocity: Option<Gradients>,
        mu: f64,
        alpha: f64,
    ) -> (Self, Gradients) {
        let Gradients { dw1, db1, dw2, db2 } = g;
        let (v_w1, v_b1, v_w2, v_b2) = match velocity {
            Some(v) => (Some(v.dw1), Some(v.db1), Some(v.dw2), Some(v.db2)),
            None => (None, None, None, None),
        };
        // v_W1 = μ·v_W1 + dW1;  W1 -= α·v_W1
        let (w1, v_w1) = momentum_step_of(self.W1, v_w1, dw1, mu, alpha);
        // v_b1 = μ·v_b1 + db1;  b1 -= α·v_b1
        let (b1, v_b1) = momentum_step_of(self.b1, v_b1, db1, mu, alpha);
        // v_W2 = μ·v_W2 + dW2;  W2 -= α·v_W2
        let (w2, v_w2) = momentum_step_of(self.W2, v_w2, dw2, mu, alpha);
        // v_b2 = μ·v_b2 + db2;  b2 -= α·v_b2
        let (b2, v_b2) = momentum_step_of(self.b2, v_b2, db2, mu, alpha);
        let net = Self {
            W1: w1,
            b1,
            W2: w2,
            b2,
        };
        let v = Gradients {
            dw1: v_w1,
            db1: v_b1,
            dw2: v_w2,
            db2: v_b2,
        };
        (net, v)
    }
}

/// [`update::momentum_step`] on a parameter, keeping its identity.
fn momentum_step_of<const D: usize>(
    param: Param<Tensor<D>>,
    v: Option<Tensor<D>>,
    d: Tensor<D>,
    mu: f64,
    alpha: f64,
) -> (Param<Tensor<D>>, Tensor<D>) {
    let mut velocity = None;
    let param = param.map(|w| {
        let (w, v) = update::momentum_step(w, v, d, mu, alpha);
        velocity = Some(v);
        w
    });
    let velocity = velocity.unwrap_or_else(|| unreachable!("Param::map runs its function once"));
    (param, velocity)
}
