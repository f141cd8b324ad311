//! Adam in manual mode: the hand-derived gradients and Adam's update computed in place,
//! one pass over each parameter ([`crate::update::adam_step`]), with the moments held by
//! the learner and saved in its checkpoints.
//!
//! The arithmetic is Burn's `Adam` (β1 = 0.9, β2 = 0.999, ε = 10⁻⁸, as PyTorch's
//! defaults; with `weight_decay`, the L2 penalty `dW + λ·W`) operation for operation in
//! `f32`, so a step gives the bits Burn's optimizer gives on the same gradients; the
//! tests hold the two together over several steps. Burn's Adam runs as 13 element-wise
//! operations (15 with the penalty) on one thread, each into a new tensor (23% of
//! `configs/simard.toml`'s samples on a 2-core Zen 5; on a 2-core Xeon, manual epochs of
//! `configs/adam.toml` took 2.0–2.2 s with it and 0.9–1.0 s in place).
//!
//! ```
//! use mnist_nn::adam::AdamMoments;
//! use mnist_nn::model::{Init, TwoLayerNet};
//! use mnist_nn::gradients::Gradients;
//!
//! let device = mnist_nn::backend::BackendKind::Flex.device()?;
//! let net = TwoLayerNet::new(4, Init::He, 7, &device);
//! let before = net.W1.val().into_data().to_vec::<f32>().unwrap();
//! let grads = Gradients::from_net(&net); // each weight's gradient: the weight itself
//! let moments = AdamMoments::zeros(&net);
//! let (net, moments) = net.adam_descent(grads, moments, None, 0.01);
//! assert_eq!(moments.steps, 1);
//! // Adam's first step moves each weight by the rate, against its gradient's sign.
//! let after = net.W1.val().into_data().to_vec::<f32>().unwrap();
//! for (b, a) in before.iter().zip(&after) {
//!     assert!((b - a - 0.01 * b.signum()).abs() < 1e-4);
//! }
//! # Ok::<(), mnist_nn::Error>(())
//! ```

use burn::module::Param;
use burn::prelude::*;

use crate::gradients::Gradients;
use crate::model::TwoLayerNet;
use crate::update::{self, AdamCoefficients};

/// β1: the first moment's decay (PyTorch's default, as [`crate::autodiff::optimizer`]).
pub const BETA_1: f32 = 0.9;
/// β2: the second moment's decay.
pub const BETA_2: f32 = 0.999;
/// ε, added to `√v` (before its bias correction).
pub const EPSILON: f32 = 1e-8;

/// Adam's state: each parameter's first and second moments, and the steps taken.
#[derive(Debug, Clone)]
pub struct AdamMoments {
    /// `m`, in the parameters' shapes.
    pub first: Gradients,
    /// `v`, in the parameters' shapes.
    pub second: Gradients,
    /// Steps taken so far (`t` of the last one).
    pub steps: u32,
}

impl AdamMoments {
    /// The moments before the first step: zero, in the shapes of `net`'s parameters.
    pub fn zeros(net: &TwoLayerNet) -> Self {
        let zeros = || Gradients {
            dw1: net.W1.val().zeros_like(),
            db1: net.b1.val().zeros_like(),
            dw2: net.W2.val().zeros_like(),
            db2: net.b2.val().zeros_like(),
        };
        Self {
            first: zeros(),
            second: zeros(),
            steps: 0,
        }
    }
}

/// The constants of Adam's step number `t` (from 1) at rate `alpha` with L2 penalty
/// `l2`, computed as Burn's `AdaptiveMomentum` computes them.
pub fn coefficients(t: u32, l2: Option<f64>, alpha: f64) -> AdamCoefficients {
    let t = i32::try_from(t).unwrap_or(i32::MAX);
    let bias_correction_2 = (1.0 - BETA_2.powi(t)).sqrt();
    AdamCoefficients {
        penalty: l2.map(|l| l as f32),
        beta_1: BETA_1,
        beta_2: BETA_2,
        scale: bias_correction_2 / (1.0 - BETA_1.powi(t)),
        epsilon: EPSILON * bias_correction_2,
        rate: alpha as f32,
    }
}

impl TwoLayerNet {
    /// One step of Adam on the gradients `g` with `moments` (from the step before, or
    /// [`AdamMoments::zeros`]), L2 penalty `l2` and rate `alpha`, for each parameter
    /// ([`update::adam_step`]). Returns the network and the moments after the step.
    pub fn adam_descent(
        self,
        g: Gradients,
        moments: AdamMoments,
        l2: Option<f64>,
        alpha: f64,
    ) -> (Self, AdamMoments) {
        let AdamMoments {
            first: m,
            second: v,
            steps,
        } = moments;
        let c = coefficients(steps.saturating_add(1), l2, alpha);
        let (w1, m_w1, v_w1) = adam_step_of(self.W1, m.dw1, v.dw1, g.dw1, &c);
        let (b1, m_b1, v_b1) = adam_step_of(self.b1, m.db1, v.db1, g.db1, &c);
        let (w2, m_w2, v_w2) = adam_step_of(self.W2, m.dw2, v.dw2, g.dw2, &c);
        let (b2, m_b2, v_b2) = adam_step_of(self.b2, m.db2, v.db2, g.db2, &c);
        let net = Self {
            W1: w1,
            b1,
            W2: w2,
            b2,
        };
        let moments = AdamMoments {
            first: Gradients {
                dw1: m_w1,
                db1: m_b1,
                dw2: m_w2,
                db2: m_b2,
            },
            second: Gradients {
                dw1: v_w1,
                db1: v_b1,
                dw2: v_w2,
                db2: v_b2,
            },
            steps: steps.saturating_add(1),
        };
        (net, moments)
    }
}

/// [`update::adam_step`] on a parameter, keeping its identity.
fn adam_step_of<const D: usize>(
    param: Param<Tensor<D>>,
    m: Tensor<D>,
    v: Tensor<D>,
    d: Tensor<D>,
    c: &AdamCoefficients,
) -> (Param<Tensor<D>>, Tensor<D>, Tensor<D>) {
    let mut moments = None;
    let param = param.map(|w| {
        let (w, m, v) = update::adam_step(w, m, v, d, c);
        moments = Some((m, v));
        w
    });
    let (m, v) = moments.unwrap_or_else(|| unreachable!("Param::map runs its function once"));
    (param, m, v)
}
