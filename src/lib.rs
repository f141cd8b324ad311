//! # mnist-nn
//!
//! The classic two-layer network that learns the MNIST digits, on the Burn framework,
//! trained either by the hand-derived backpropagation formulas ([`manual`]) or by Burn's
//! autodiff and an optimizer ([`autodiff`]), on the CPU (`flex`, `ndarray`) or the GPU
//! (`wgpu`).
//!
//! ```text
//! Z1 = W1·X + b1, A1 = ReLU(Z1), Z2 = W2·A1 + b2, A2 = softmax(Z2)        model::forward
//! dZ2 = A2 − Y, dW2 = (1/m)·dZ2·A1ᵀ, db2 = (1/m)·Σ dZ2                     manual
//! dZ1 = W2ᵀ·dZ2 ⊙ ReLU'(Z1), dW1 = (1/m)·dZ1·Xᵀ, db1 = (1/m)·Σ dZ1
//! W -= α·dW, b -= α·db                                                     manual
//! ```
//!
//! ## Example: the seed's gradients against Burn's, and one step of each
//!
//! ```
//! use std::path::Path;
//!
//! use burn::prelude::*;
//! use mnist_nn::autodiff::{autodiff_gradients, autodiff_step, optimizer};
//! use mnist_nn::backend::BackendKind;
//! use mnist_nn::config::OptimizerKind;
//! use mnist_nn::data::Mnist;
//! use mnist_nn::manual::{backward_manual, manual_step};
//! use mnist_nn::model::{Init, TwoLayerNet};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = BackendKind::Flex.device()?;
//! // The bundled MNIST: the first 64 training images, 5,000 held out for validation.
//! let mnist = Mnist::load(Path::new("data/mnist"), 5000, Some(64))?;
//! let batch = mnist.train.to_device(&device);
//! let x = batch.images_in(0..64).transpose(); // X: (784, m), pixels in [0, 1]
//! let y = batch.one_hot.clone().transpose(); //  Y: (10, m), one-hot labels
//!
//! // The design notes' network: 784 → 32 → 10, He initialisation, seed 42.
//! let net = TwoLayerNet::new(32, Init::He, 42, &device);
//!
//! // dW1 by the hand-derived formulas, and by Burn's autodiff of the same loss.
//! let by_hand = backward_manual(&net, x.clone(), y.clone(), &net.forward(x.clone()));
//! let ad_net = net.clone().to_device(&device.clone().autodiff()).train();
//! let (_loss, by_burn) = autodiff_gradients(&ad_net, x.clone(), y.clone());
//! let gap = (by_hand.grads.dw1 - by_burn.dw1).abs().max().into_scalar::<f32>();
//! // Both sum the same products in f32, in different orders: a few ulps apart.
//! assert!(gap < 1e-5, "dW1 differs by {gap}");
//!
//! // One step of gradient descent each way (α = 0.1): the same new weights.
//! let manual = manual_step(net, x.clone(), y.clone(), 0.1).net;
//! let mut sgd = optimizer(OptimizerKind::Sgd);
//! let auto = autodiff_step(ad_net, &mut sgd, x, y, 0.1).net.valid();
//! let gap = (manual.W1.val() - auto.W1.val()).abs().max().into_scalar::<f32>();
//! assert!(gap < 1e-6, "W1 after one step differs by {gap}");
//! # Ok(())
//! # }
//! ```
//!
//! ## The crate
//!
//! The library is the network and what trains and uses it:
//! [`model`], [`loss`], [`manual`], [`autodiff`], [`gradients`], [`learner`],
//! [`data`], [`equations`], [`preprocess`], [`train`], [`eval`], [`export`], [`import`],
//! [`config`], [`backend`],
//! [`schedule`], [`augment`], [`word`], [`tensorboard`],
//! and the run directory a training run writes ([`run_dir`], [`run_lock`], [`run`],
//! [`checkpoint`], [`logging`]). Two parts serve the `mnist-nn` program and are kept
//! here because its tests drive them directly: [`report`] (figures and a page of a run)
//! and [`serve`] (the draw-a-digit web page). The command line, the progress display
//! and the commands' printing are the binary's (`src/main.rs`, `src/cli/`).

pub mod adam;
pub mod augment;
pub mod autodiff;
pub mod backend;
pub mod blocks;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod equations;
pub mod error;
pub mod eval;
pub mod export;
pub mod gradients;
pub mod import;
pub mod input;
pub mod learner;
pub mod logging;
pub mod loss;
pub mod manual;
pub mod model;
pub mod nonzeros;
pub mod onnx;
pub mod pool;
pub mod prefetch;
pub mod preprocess;
pub mod report;
pub mod run;
pub mod run_dir;
pub mod run_lock;
pub mod schedule;
pub mod serve;
pub mod sparse;
pub mod subnormal;
pub mod tensorboard;
pub mod train;
pub mod update;
pub mod word;

pub use error::{Error, Result};

/// Pixels on a side of an MNIST image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels of an MNIST image, the network's input size.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Digits 0–9, the network's output size.
pub const NUM_CLASSES: usize = 10;
