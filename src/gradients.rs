//! The gradients of the mean loss with respect to the four parameters: what the manual
//! backward ([`crate::manual::backward_manual`]) and Burn's autodiff
//! ([`crate::autodiff::autodiff_gradients`]) each compute, in one type so that the two
//! can be compared field by field and either can drive an update.

use burn::prelude::*;

/// `∂L/∂W1`, `∂L/∂b1`, `∂L/∂W2`, `∂L/∂b2` of the mean cross-entropy `L`, in the
/// parameters' own shapes.
#[derive(Debug, Clone)]
pub struct Gradients {
    /// `(hidden, 784)`.
    pub dw1: Tensor<2>,
    /// `(hidden)`.
    pub db1: Tensor<1>,
    /// `(10, hidden)`.
    pub dw2: Tensor<2>,
    /// `(10)`.
    pub db2: Tensor<1>,
}
