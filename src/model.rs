//! The two-layer network of the design notes, as a Burn [`Module`].
//!
//! With `X` of shape `(784, m)`, one column per image:
//!
//! ```text
//! Z1 = W1·X + b1      (hidden, m)
//! A1 = ReLU(Z1)       (hidden, m)
//! Z2 = W2·A1 + b2     (10, m)
//! A2 = softmax(Z2)    (10, m), column-wise
//! ```
//!
//! The hand-derived backward of this forward is in [`crate::manual`].

#![allow(non_snake_case)] // W1 and W2 are named as in the design notes.

use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::TensorReadError;
use burn::tensor::activation::relu;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

use crate::input::{Input, InputProduct};
use crate::loss::softmax_columns;
use crate::{IMAGE_PIXELS, NUM_CLASSES};

/// How the weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// `W ~ N(0, 2/fan_in)`, `b = 0` (He et al. 2015), suited to ReLU.
    #[default]
    He,
    /// Every weight and bias `~ U[-0.5, 0.5]`, as the classic notebook does.
    Uniform,
}

/// The two-layer network. Parameters are stored in the design notes' shapes.
#[derive(Module, Debug)]
pub struct TwoLayerNet {
    /// `(hidden, 784)` first-layer weights.
    pub W1: Param<Tensor<2>>,
    /// `(hidden)` first-layer bias.
    pub b1: Param<Tensor<1>>,
    /// `(10, hidden)` second-layer weights.
    pub W2: Param<Tensor<2>>,
    /// `(10)` second-layer bias.
    pub b2: Param<Tensor<1>>,
}

/// What the forward pass computed, kept for the backward pass.
#[derive(Debug, Clone)]
pub struct Forward {
    /// `(hidden, m)` pre-activations of the hidden layer.
    pub z1: Tensor<2>,
    /// `(hidden, m)` hidden activations.
    pub a1: Tensor<2>,
    /// `(10, m)` logits.
    pub z2: Tensor<2>,
    /// `(10, m)` class probabilities; each column sums to 1.
    pub a2: Tensor<2>,
}

/// The parameters as plain host vectors, row-major, in the design notes' shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct HostParams {
    /// Hidden units.
    pub hidden: usize,
    /// `hidden · 784` values.
    pub w1: Vec<f32>,
    /// `hidden` values.
    pub b1: Vec<f32>,
    /// `10 · hidden` values.
    pub w2: Vec<f32>,
    /// `10` values.
    pub b2: Vec<f32>,
}

impl HostParams {
    /// Draws fresh parameters from `init`, reproducibly from `seed` (ChaCha8, stream 0),
    /// so that every backend starts from the same numbers.
    pub fn init(hidden: usize, init: Init, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut draw = |n: usize, fan_in: usize, bias: bool| -> Vec<f32> {
            match (init, bias) {
                (Init::He, true) => vec![0.0; n],
                (Init::He, false) => {
                    let std = (2.0 / fan_in as f64).sqrt();
                    let normal = Normal::new(0.0, std).unwrap_or_else(|_| unreachable!());
                    (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
                }
                (Init::Uniform, _) => {
                    let uniform =
                        Uniform::new_inclusive(-0.5f32, 0.5).unwrap_or_else(|_| unreachable!());
                    (0..n).map(|_| uniform.sample(&mut rng)).collect()
                }
            }
        };
        let w1 = draw(hidden * IMAGE_PIXELS, IMAGE_PIXELS, false);
        let b1 = draw(hidden, IMAGE_PIXELS, true);
        let w2 = draw(NUM_CLASSES * hidden, hidden, false);
        let b2 = draw(NUM_CLASSES, hidden, true);
        Self {
            hidden,
            w1,
            b1,
            w2,
            b2,
        }
    }
}

impl TwoLayerNet {
    /// A network with `hidden` units initialised by `init` from `seed`, on `device`.
    pub fn new(hidden: usize, init: Init, seed: u64, device: &Device) -> Self {
        Self::from_host(&HostParams::init(hidden, init, seed), device)
    }

    /// Uploads host parameters to `device`.
    pub fn from_host(p: &HostParams, device: &Device) -> Self {
        let h = p.hidden;
        let t2 = |v: &[f32], shape: [usize; 2]| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(v.to_vec(), shape),
                device,
            ))
        };
        let t1 = |v: &[f32]| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(v.to_vec(), [v.len()]),
                device,
            ))
        };
        Self {
            W1: t2(&p.w1, [h, IMAGE_PIXELS]),
            b1: t1(&p.b1),
            W2: t2(&p.w2, [NUM_CLASSES, h]),
            b2: t1(&p.b2),
        }
    }

    /// Downloads the parameters to the host as `f32`.
    pub fn to_host(&self) -> Result<HostParams, TensorReadError> {
        let v = |t: Tensor<2>| t.try_into_vec_as::<f32>();
        Ok(HostParams {
            hidden: self.hidden(),
            w1: v(self.W1.val())?,
            b1: v(self.b1.val().unsqueeze())?,
            w2: v(self.W2.val())?,
            b2: v(self.b2.val().unsqueeze())?,
        })
    }

    /// Checks that `x` is a `(784, m)` input with `m ≥ 1`, as [`TwoLayerNet::forward`]
    /// needs.
    ///
    /// ```
    /// # use burn::prelude::*;
    /// # use mnist_nn::model::{Init, TwoLayerNet};
    /// let device = mnist_nn::backend::BackendKind::Flex.device()?;
    /// let x = Tensor::<2>::zeros([28, 28], &device);
    /// let e = TwoLayerNet::check_input(&x).unwrap_err();
    /// assert_eq!(e.to_string(), "X has shape [28, 28]; expected [784, m] with m ≥ 1");
    /// # Ok::<(), mnist_nn::Error>(())
    /// ```
    pub fn check_input(x: &Tensor<2>) -> crate::Result<()> {
        let dims = x.dims();
        if dims[0] == IMAGE_PIXELS && dims[1] > 0 {
            return Ok(());
        }
        Err(crate::Error::Shape {
            what: "X",
            expected: "[784, m] with m ≥ 1".into(),
            found: format!("shape {dims:?}"),
        })
    }

    /// Number of hidden units.
    pub fn hidden(&self) -> usize {
        self.b1.shape()[0]
    }

    /// The forward pass on `x` of shape `(784, m)`.
    ///
    /// # Panics
    ///
    /// When `x` does not have 784 rows, as a matrix product of the wrong shapes does;
    /// [`TwoLayerNet::check_input`] says so as an error instead.
    pub fn forward(&self, x: Tensor<2>) -> Forward {
        assert_eq!(x.dims()[0], IMAGE_PIXELS, "X must be (784, m)");
        self.forward_input(&Input::Dense(x))
    }

    /// [`TwoLayerNet::forward`] on `x` dense or sparse ([`Input`]).
    pub fn forward_input(&self, x: &Input) -> Forward {
        let m = x.images();
        // Z1 = W1·X + b1                               (hidden, m)
        let z1 = self.W1.val().matmul_x(x) + self.b1.val().unsqueeze_dim(1);
        // A1 = ReLU(Z1)                                (hidden, m)
        let a1 = relu(z1.clone());
        // Z2 = W2·A1 + b2                              (10, m)
        let z2 = self.W2.val().matmul(a1.clone()) + self.b2.val().unsqueeze_dim(1);
        // A2 = softmax(Z2), each column                (10, m)
        let a2 = softmax_columns(z2.clone());
        debug_assert_eq!(a2.dims(), [NUM_CLASSES, m]);
        Forward { z1, a1, z2, a2 }
    }
}
