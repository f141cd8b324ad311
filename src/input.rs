//! The network's input `X` `(784, m)` as the forward and backward take it: a dense
//! tensor, or (for a training step or an evaluation on flex, the default CPU backend)
//! the [`SparseX`] of its nonzero pixels.
//! `X` appears in two products only, `Z1 = W1·X + b1` and `dW1 = (1/m)·dZ1·Xᵀ`; the
//! [`InputProduct`] methods compute them either way, so the equations in
//! [`crate::model`] and [`crate::manual`] are written once for both.

use burn::prelude::*;
use burn::tensor::DType;
use burn_dispatch::DispatchDevice;

use crate::sparse::{MAX_IMAGES, ROWS, SparseX};

/// `X`, dense or sparse.
#[derive(Debug, Clone)]
pub enum Input {
    /// A `(784, m)` tensor.
    Dense(Tensor<2>),
    /// Its nonzero entries on the host (CPU devices only).
    Sparse(SparseX),
}

/// The least `hidden·m` (hidden units times images) at which a step takes the sparse
/// products. Listing the nonzeros and the products' blocks cost a step about 0.1–0.2 ms
/// whatever its size; below this the dense products are about as quick. Measured epochs
/// (2 threads, AVX2, momentum, dense against sparse): hidden 128 at batch 64 0.42 s
/// against 0.50 s (dense quicker); 128 at 128 0.42 against 0.40; 256 at 64 0.83–0.95
/// against 0.66–0.73; 512 at 32 2.0 against 1.5–1.9; 512 at 128 1.04–1.09 against
/// 0.67–0.73.
pub const SPARSE_MIN_WORK: usize = 128 * 128;

/// The largest fraction of nonzero pixels at which a step takes the sparse products.
/// At MNIST's 19% they took about half the dense products' time (2 threads, AVX2, hidden
/// 512, batch 128); each nonzero costs a few times a dense term, so a batch denser than
/// this (heavily distorted digits, or other data) keeps the dense products.
pub const SPARSE_DENSITY: f64 = 0.35;

impl Input {
    /// The input of a batch `x` (a training step's, or a chunk of images evaluated) for a
    /// network of `hidden` units: sparse
    /// when `x` is `f32` on the flex device, `hidden` fills at least one block of
    /// [`ROWS`] rows, `hidden·m` is at least [`SPARSE_MIN_WORK`] and at most
    /// [`SPARSE_DENSITY`] of `x` is nonzero; else `x` as it is.
    ///
    /// Flex only: its tensors are read in place. ndarray reads a tensor back element by
    /// element (about 20 ms a step at hidden 512, batch 128: slower than its dense
    /// products), and a GPU would have to send the batch and the weights to the host.
    pub fn for_batch(x: Tensor<2>, hidden: usize) -> Self {
        let flex = matches!(x.device().as_dispatch(), DispatchDevice::Flex(_));
        let m = x.dims()[1];
        if !flex || !Input::sizes_pay(hidden, m) || x.dtype() != DType::F32 {
            return Input::Dense(x);
        }
        let sparse = SparseX::from_tensor(&x);
        if sparse.density() <= SPARSE_DENSITY {
            Input::Sparse(sparse)
        } else {
            Input::Dense(x)
        }
    }

    /// Whether a batch of `m` images for a network of `hidden` units is large enough
    /// for the sparse products: `hidden` fills at least one block of [`ROWS`] rows and
    /// `hidden·m` is at least [`SPARSE_MIN_WORK`] (and `m` at most [`MAX_IMAGES`]).
    pub fn sizes_pay(hidden: usize, m: usize) -> bool {
        hidden >= ROWS && hidden * m >= SPARSE_MIN_WORK && m <= MAX_IMAGES
    }

    /// Images (columns of `X`).
    pub fn images(&self) -> usize {
        match self {
            Input::Dense(x) => x.dims()[1],
            Input::Sparse(x) => x.images(),
        }
    }
}

/// How a manual step computes the products with `X`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Products {
    /// Over `X`'s nonzero entries where [`Input::for_batch`] finds it pays, else dense.
    #[default]
    SparseWherePays,
    /// Always as dense matrix products.
    Dense,
}

impl Products {
    /// The input of a step on `x` for a network of `hidden` units under this rule.
    pub fn input(self, x: Tensor<2>, hidden: usize) -> Input {
        match self {
            Products::SparseWherePays => Input::for_batch(x, hidden),
            Products::Dense => Input::Dense(x),
        }
    }
}

impl From<Tensor<2>> for Input {
    fn from(x: Tensor<2>) -> Self {
        Input::Dense(x)
    }
}

/// The two matrix products with `X`.
pub trait InputProduct {
    /// `self·X`, for `self` `(rows, 784)`: `(rows, m)`.
    fn matmul_x(self, x: &Input) -> Tensor<2>;
    /// `self·Xᵀ`, for `self` `(rows, m)`: `(rows, 784)`.
    fn matmul_xt(self, x: &Input) -> Tensor<2>;
}

impl InputProduct for Tensor<2> {
    fn matmul_x(self, x: &Input) -> Tensor<2> {
        match x {
            Input::Dense(x) => self.matmul(x.clone()),
            Input::Sparse(x) => x.left_product(self),
        }
    }

    fn matmul_xt(self, x: &Input) -> Tensor<2> {
        match x {
            Input::Dense(x) => self.matmul(x.clone().transpose()),
            Input::Sparse(x) => x.right_product_t(self),
        }
    }
}
