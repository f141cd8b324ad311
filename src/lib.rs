//! # mnist-nn
//!
//! The classic two-layer network that learns the MNIST digits, on the Burn framework,
//! trained either by the hand-derived backpropagation formulas ([`manual`]) or by Burn's
//! autodiff and an optimizer ([`autodiff`]), on the CPU (`ndarray`, `flex`) or the GPU
//! (`wgpu`).
//!
//! ```text
//! Z1 = W1·X + b1, A1 = ReLU(Z1), Z2 = W2·A1 + b2, A2 = softmax(Z2)        model::forward
//! dZ2 = A2 − Y, dW2 = (1/m)·dZ2·A1ᵀ, db2 = (1/m)·Σ dZ2                     manual
//! dZ1 = W2ᵀ·dZ2 ⊙ ReLU'(Z1), dW1 = (1/m)·dZ1·Xᵀ, db1 = (1/m)·Σ dZ1
//! W -= α·dW, b -= α·db                                                     manual
//! ```

pub mod autodiff;
pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod export;
pub mod logging;
pub mod loss;
pub mod manual;
pub mod model;
pub mod preprocess;
pub mod report;
pub mod run;
pub mod serve;
pub mod train;

pub use error::{Error, Result};

/// Pixels on a side of an MNIST image.
pub const IMAGE_SIDE: usize = 28;
/// Pixels of an MNIST image, the network's input size.
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Digits 0–9, the network's output size.
pub const NUM_CLASSES: usize = 10;
