//! The network together with its update rule: the seed's manual gradient descent
//! ([`crate::manual::manual_step`]), Burn's autodiff and an optimizer
//! ([`crate::autodiff::autodiff_step`]), the hand-derived gradients and Adam computed
//! in place ([`Learner::ManualAdam`]), or the hand-derived gradients and a Burn
//! optimizer ([`Learner::ManualOptimizer`]). The training loop and the benchmark drive
//! the same [`Learner`].
//!
//! ```
//! use burn::prelude::*;
//! use mnist_nn::backend::BackendKind;
//! use mnist_nn::learner::Learner;
//! use mnist_nn::model::{Init, TwoLayerNet};
//!
//! let device = BackendKind::Flex.device()?;
//! let net = TwoLayerNet::new(16, Init::He, 7, &device);
//! let learner = Learner::manual(net);
//! // One image (all ink), labelled 3.
//! let x = Tensor::<2>::ones([784, 1], &device);
//! let mut y = vec![0.0f32; 10];
//! y[3] = 1.0;
//! let y = Tensor::<2>::from_data(TensorData::new(y, [10, 1]), &device);
//! let (learner, loss, z2) = learner.step(x, y, 0.1);
//! assert_eq!(z2.dims(), [10, 1]);
//! assert!(loss.into_scalar::<f32>() > 0.0);
//! assert_eq!(learner.model().hidden(), 16);
//! # Ok::<(), mnist_nn::Error>(())
//! ```

use burn::optim::ModuleOptimizer;
use burn::prelude::*;

use crate::adam::AdamMoments;
use crate::autodiff::{autodiff_step, optimizer_for};
use crate::blocks::{Block, autodiff_blocked, manual_blocked};
use crate::config::{Config, Mode, OptimizerKind};
use crate::gradients::Gradients;
use crate::input::{Input, Products};
use crate::manual::{MOMENTUM, manual_pass_then, manual_step_then, momentum_step_then};
use crate::model::TwoLayerNet;
use crate::sparse::SparseX;

/// What one gradient step gives back.
#[derive(Debug)]
pub struct Step {
    /// The network after the update.
    pub net: TwoLayerNet,
    /// `(1)` the batch's mean loss before the update, on the plain device.
    pub loss: Tensor<1>,
    /// `(10, m)` the logits `Z2` before the update, on the plain device.
    pub z2: Tensor<2>,
}

/// The network and its update rule.
pub enum Learner {
    /// Hand-derived gradients and plain gradient descent, on the plain device; and how
    /// the products with `X` are computed.
    Manual(TwoLayerNet, Products),
    /// Hand-derived gradients and gradient descent with momentum, on the plain device,
    /// with the velocity (`None` before the first step) and the products' rule.
    ManualMomentum(TwoLayerNet, Option<Box<Gradients>>, Products),
    /// Hand-derived gradients and Adam computed in place ([`crate::adam`]), on the plain
    /// device, with Adam's moments, the L2 penalty (`weight_decay`) if any, and the
    /// products' rule.
    ManualAdam(TwoLayerNet, Box<AdamMoments>, Option<f64>, Products),
    /// Autodiff gradients and a Burn optimizer, on the autodiff device.
    Autodiff(TwoLayerNet, ModuleOptimizer),
    /// Hand-derived gradients and a Burn optimizer (manual mode's Nesterov, AdamW, and
    /// weight decay on SGD or momentum: [`Config::burn_optimizer`]): the network on the autodiff
    /// device, as the optimizer takes it, its gradients computed by hand on its plain
    /// view (`valid()`), with the products' rule.
    ManualOptimizer(TwoLayerNet, ModuleOptimizer, Products),
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Burn's optimizer has no Debug of its own.
        match self {
            Learner::Manual(net, _) => f.debug_tuple("Manual").field(net).finish(),
            Learner::ManualMomentum(net, ..) => f.debug_tuple("ManualMomentum").field(net).finish(),
            Learner::ManualAdam(net, ..) => f.debug_tuple("ManualAdam").field(net).finish(),
            Learner::Autodiff(net, _) => f.debug_tuple("Autodiff").field(net).finish(),
            Learner::ManualOptimizer(net, ..) => {
                f.debug_tuple("ManualOptimizer").field(net).finish()
            }
        }
    }
}

impl Learner {
    /// The seed's learner: hand-derived gradients and plain gradient descent, for `net`
    /// on a plain device (with sparse products with `X` where they pay).
    pub fn manual(net: TwoLayerNet) -> Self {
        Learner::Manual(net, Products::SparseWherePays)
    }

    /// Burn's learner: `net` moved to the autodiff version of `device`, trained by
    /// `optimizer`.
    pub fn autodiff(net: TwoLayerNet, optimizer: ModuleOptimizer, device: &Device) -> Self {
        Learner::Autodiff(on_autodiff(net, device), optimizer)
    }

    /// The learner a run's config asks for, from `net` (on the plain `device`): where
    /// the update is a Burn optimizer's ([`Config::burn_optimizer`]), with the
    /// optimizer state `saved` (from a checkpoint) or a fresh optimizer of `[train]`;
    /// in manual mode with momentum, with the velocity `velocity` (from a checkpoint)
    /// or none yet; in manual mode with Adam, with the `moments` (from a checkpoint) or
    /// zero ones, or, given Burn's Adam state `saved` (a checkpoint from before manual
    /// mode computed Adam in place), Burn's Adam on the hand-derived gradients.
    pub fn for_config(
        config: &Config,
        net: TwoLayerNet,
        saved: Option<ModuleOptimizer>,
        velocity: Option<Gradients>,
        moments: Option<AdamMoments>,
        device: &Device,
    ) -> Self {
        let products = if config.train.sparse_input {
            Products::SparseWherePays
        } else {
            Products::Dense
        };
        let has_saved = saved.is_some();
        let optimizer = || saved.unwrap_or_else(|| optimizer_for(&config.train));
        match config.mode {
            Mode::Autodiff => Learner::autodiff(net, optimizer(), device),
            // A checkpoint of manual Adam with Burn's state (written before Adam was
            // computed in place) carries on with Burn's Adam: the same steps.
            Mode::Manual if config.adam_in_place() && !has_saved => {
                let moments = moments.unwrap_or_else(|| AdamMoments::zeros(&net));
                let l2 = config.train.weight_decay;
                Learner::ManualAdam(net, Box::new(moments), l2, products)
            }
            Mode::Manual if config.burn_optimizer() || config.adam_in_place() => {
                Learner::ManualOptimizer(on_autodiff(net, device), optimizer(), products)
            }
            Mode::Manual if config.train.optimizer == OptimizerKind::Momentum => {
                Learner::ManualMomentum(net, velocity.map(Box::new), products)
            }
            Mode::Manual => Learner::Manual(net, products),
        }
    }

    /// One gradient step on `x` `(784, m)` and `y` `(10, m)` with rate `alpha`. Returns
    /// the learner after it, and the batch's mean loss `(1)` and logits `(10, m)` from
    /// before it, left on the device.
    ///
    /// The network moves through the step rather than being cloned, so that each
    /// parameter has one handle and the backend can update it in place.
    pub fn step(self, x: Tensor<2>, y: Tensor<2>, alpha: f64) -> (Self, Tensor<1>, Tensor<2>) {
        match self {
            Learner::Autodiff(net, mut optim) => {
                let Step { net, loss, z2 } = autodiff_step(net, &mut optim, x, y, alpha);
                (Learner::Autodiff(net, optim), loss, z2)
            }
            manual => {
                let input = manual.products().input(x, manual.hidden());
                manual.manual_step_on(input, y, alpha, || ())
            }
        }
    }

    /// Whether [`Learner::step_sparse`] applies: manual mode, with the products over
    /// `X`'s nonzeros where they pay.
    pub fn takes_sparse(&self) -> bool {
        matches!(
            self,
            Learner::Manual(_, Products::SparseWherePays)
                | Learner::ManualMomentum(_, _, Products::SparseWherePays)
                | Learner::ManualAdam(_, _, _, Products::SparseWherePays)
                | Learner::ManualOptimizer(_, _, Products::SparseWherePays)
        )
    }

    /// [`Learner::step`] on an `X` already listed by its nonzeros (the training loop
    /// lists each image once, [`crate::nonzeros`]).
    ///
    /// # Panics
    ///
    /// In autodiff mode ([`Learner::takes_sparse`] is false): Burn's autodiff takes a
    /// dense `X`.
    pub fn step_sparse(self, x: SparseX, y: Tensor<2>, alpha: f64) -> (Self, Tensor<1>, Tensor<2>) {
        self.step_sparse_then(x, y, alpha, || ())
    }

    /// [`Learner::step_sparse`], calling `after_forward` once the forward pass is done
    /// ([`crate::manual::manual_pass_then`]).
    ///
    /// # Panics
    ///
    /// In autodiff mode, as [`Learner::step_sparse`].
    pub fn step_sparse_then(
        self,
        x: SparseX,
        y: Tensor<2>,
        alpha: f64,
        after_forward: impl FnOnce(),
    ) -> (Self, Tensor<1>, Tensor<2>) {
        assert!(
            !matches!(self, Learner::Autodiff(..)),
            "autodiff mode steps on a dense X"
        );
        self.manual_step_on(Input::Sparse(x), y, alpha, after_forward)
    }

    /// The products' rule of a manual learner ([`Products::Dense`] in autodiff mode).
    fn products(&self) -> Products {
        match self {
            Learner::Manual(_, products)
            | Learner::ManualMomentum(_, _, products)
            | Learner::ManualAdam(_, _, _, products)
            | Learner::ManualOptimizer(_, _, products) => *products,
            Learner::Autodiff(..) => Products::Dense,
        }
    }

    /// Hidden units of the network.
    pub fn hidden(&self) -> usize {
        match self {
            Learner::Manual(net, _)
            | Learner::ManualMomentum(net, ..)
            | Learner::ManualAdam(net, ..)
            | Learner::Autodiff(net, _)
            | Learner::ManualOptimizer(net, ..) => net.hidden(),
        }
    }

    /// A manual step on `x` (manual learners only): [`crate::manual::manual_step`],
    /// [`crate::manual::momentum_step`], or the hand-derived gradients
    /// ([`crate::manual::manual_pass`]) and then Adam's step in place
    /// ([`TwoLayerNet::adam_descent`]) or the Burn optimizer's, calling `after_forward`
    /// once the forward pass is done.
    fn manual_step_on(
        self,
        x: Input,
        y: Tensor<2>,
        alpha: f64,
        after_forward: impl FnOnce(),
    ) -> (Self, Tensor<1>, Tensor<2>) {
        match self {
            Learner::Manual(net, products) => {
                let Step { net, loss, z2 } = manual_step_then(net, x, y, alpha, after_forward);
                (Learner::Manual(net, products), loss, z2)
            }
            Learner::ManualMomentum(net, velocity, products) => {
                let (Step { net, loss, z2 }, v) =
                    momentum_step_then(net, velocity.map(|v| *v), x, y, alpha, after_forward);
                let v = Some(Box::new(v));
                (Learner::ManualMomentum(net, v, products), loss, z2)
            }
            Learner::ManualAdam(net, moments, l2, products) => {
                let (loss, z2, grads) = manual_pass_then(&net, x, y, after_forward);
                let (net, moments) = net.adam_descent(grads, *moments, l2, alpha);
                (
                    Learner::ManualAdam(net, Box::new(moments), l2, products),
                    loss,
                    z2,
                )
            }
            Learner::ManualOptimizer(net, mut optim, products) => {
                let (loss, z2, grads) = manual_pass_then(&net.valid(), x, y, after_forward);
                let grads = grads.into_params(&net);
                let net = optim.step(alpha, net, grads);
                (Learner::ManualOptimizer(net, optim, products), loss, z2)
            }
            Learner::Autodiff(..) => unreachable!("manual steps only"),
        }
    }

    /// One gradient step on a batch given as column blocks (see [`crate::blocks`]: a
    /// batch larger than the device holds in one piece), with the batch's mean loss and
    /// logits `(10, m)` as [`Learner::step`] gives them. The update is the one the whole
    /// batch would make; a single block is [`Learner::step`] itself.
    ///
    /// # Panics
    ///
    /// When `blocks` is empty.
    pub fn step_blocks(self, mut blocks: Vec<Block>, alpha: f64) -> (Self, Tensor<1>, Tensor<2>) {
        if blocks.len() == 1
            && let Some(Block { x, y }) = blocks.pop()
        {
            return self.step(x, y, alpha);
        }
        match self {
            Learner::Manual(net, products) => {
                let pass = manual_blocked(&net, blocks);
                let net = net.gradient_descent(pass.grads, alpha);
                (Learner::Manual(net, products), pass.loss, pass.z2)
            }
            Learner::ManualMomentum(net, velocity, products) => {
                let pass = manual_blocked(&net, blocks);
                let (net, v) =
                    net.momentum_descent(pass.grads, velocity.map(|v| *v), MOMENTUM, alpha);
                (
                    Learner::ManualMomentum(net, Some(Box::new(v)), products),
                    pass.loss,
                    pass.z2,
                )
            }
            Learner::ManualAdam(net, moments, l2, products) => {
                let pass = manual_blocked(&net, blocks);
                let (net, moments) = net.adam_descent(pass.grads, *moments, l2, alpha);
                let learner = Learner::ManualAdam(net, Box::new(moments), l2, products);
                (learner, pass.loss, pass.z2)
            }
            Learner::Autodiff(net, mut optim) => {
                let pass = autodiff_blocked(&net, blocks);
                let grads = pass.grads.into_params(&net);
                let net = optim.step(alpha, net, grads);
                (Learner::Autodiff(net, optim), pass.loss, pass.z2)
            }
            Learner::ManualOptimizer(net, mut optim, products) => {
                let pass = manual_blocked(&net.valid(), blocks);
                let grads = pass.grads.into_params(&net);
                let net = optim.step(alpha, net, grads);
                (
                    Learner::ManualOptimizer(net, optim, products),
                    pass.loss,
                    pass.z2,
                )
            }
        }
    }

    /// The network on the plain device, for evaluation and saving.
    pub fn model(&self) -> TwoLayerNet {
        match self {
            Learner::Manual(net, _)
            | Learner::ManualMomentum(net, ..)
            | Learner::ManualAdam(net, ..) => net.clone(),
            Learner::Autodiff(net, _) | Learner::ManualOptimizer(net, ..) => net.valid(),
        }
    }

    /// The Burn optimizer and its state, where the update is one.
    pub fn optimizer(&self) -> Option<&ModuleOptimizer> {
        match self {
            Learner::Manual(..) | Learner::ManualMomentum(..) | Learner::ManualAdam(..) => None,
            Learner::Autodiff(_, optim) | Learner::ManualOptimizer(_, optim, _) => Some(optim),
        }
    }

    /// Manual mode's momentum velocity, once a step has made one.
    pub fn velocity(&self) -> Option<&Gradients> {
        match self {
            Learner::ManualMomentum(_, v, _) => v.as_deref(),
            _ => None,
        }
    }

    /// Adam's moments, where manual mode computes Adam in place.
    pub fn moments(&self) -> Option<&AdamMoments> {
        match self {
            Learner::ManualAdam(_, moments, ..) => Some(moments),
            _ => None,
        }
    }
}

/// `net` moved to the autodiff version of `device`, where a Burn optimizer takes it.
fn on_autodiff(net: TwoLayerNet, device: &Device) -> TwoLayerNet {
    net.to_device(&device.clone().autodiff()).train()
}
