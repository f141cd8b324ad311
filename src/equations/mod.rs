//! The Equations view's library side: for a small batch of real MNIST images, every
//! line of the seed equations computed by the library's own code, and any one cell
//! worked out by hand with its numbers.
//!
//! ```text
//! Z1 = W1·X + b1,  A1 = ReLU(Z1),  Z2 = W2·A1 + b2,  A2 = softmax(Z2)    model::forward
//! dZ2 = A2 − Y,  dW2 = (1/m)·dZ2·A1ᵀ,  db2 = (1/m)·Σ dZ2                   manual
//! dZ1 = W2ᵀ·dZ2 ⊙ ReLU'(Z1),  dW1 = (1/m)·dZ1·Xᵀ,  db1 = (1/m)·Σ dZ1
//! W −= α·dW,  b −= α·db                                  TwoLayerNet::gradient_descent
//! ```
//!
//! A [`Workbench`] holds a network on the CPU, a [`Batch`] and `α`. Its
//! [`Workbench::worked`] is every matrix of those lines ([`Worked`], as the web API
//! sends it: [`Matrix`] is `{"rows", "cols", "f32": base64}`), with Burn's autodiff
//! gradients beside the hand-derived ones; [`Workbench::step`] applies the update and
//! works them again; [`Workbench::explain`] shows how one cell is computed
//! ([`Explained`]), recomputed on the host in `f64` from the library's matrices.
//!
//! ```
//! use std::path::Path;
//! use mnist_nn::data::Mnist;
//! use mnist_nn::equations::{Batch, Source, Workbench};
//! use mnist_nn::model::{HostParams, Init};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mnist = Mnist::load(Path::new("data/mnist"), 5000, Some(8))?;
//! let batch = Batch::from_split(&mnist.test, Source::Test, 0, 4)?;
//! let mut bench = Workbench::new(&HostParams::init(16, Init::He, 1), batch, 0.1)?;
//! let cell = bench.explain("dW2", 3, 7)?;
//! assert_eq!(cell.formula, "dW2[3,7] = (1/m)·Σ_k dZ2[3,k]·A1[7,k]");
//! assert!((cell.sum - f64::from(cell.value)).abs() < 1e-6);
//! let after = bench.step()?;
//! let stepped = after.stepped.expect("a step says what it did");
//! assert!(stepped.loss_after < stepped.loss_before);
//! # Ok(())
//! # }
//! ```

mod batch;
mod explain;
mod matrix;
mod workbench;
mod worked;

pub use batch::{Batch, Source};
pub use explain::{ExplainError, Explained, SHOWN_TERMS, Term};
pub use matrix::Matrix;
pub use workbench::Workbench;
pub use worked::{Autodiff, Matrices, ParamDiffs, Stepped, Worked};

/// The most images a batch may hold (the view shows every column).
pub const MAX_M: usize = 64;
/// The most hidden units a network on the workbench may have.
pub const MAX_HIDDEN: usize = 1024;
