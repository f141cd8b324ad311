//! The gradients of the mean loss with respect to the four parameters: what the manual
//! backward ([`crate::manual::backward_manual`]) and Burn's autodiff
//! ([`crate::autodiff::autodiff_gradients`]) each compute, in one type so that the two
//! can be compared field by field and either can drive an update.

use burn::module::Param;
use burn::prelude::*;

use crate::model::TwoLayerNet;

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

impl Gradients {
    /// The four tensors as a network's parameters (`W1 = dw1`, …), so that a set of
    /// them (manual mode's momentum velocity) is saved and loaded as a network is.
    pub fn into_net(self) -> TwoLayerNet {
        TwoLayerNet {
            W1: Param::from_tensor(self.dw1),
            b1: Param::from_tensor(self.db1),
            W2: Param::from_tensor(self.dw2),
            b2: Param::from_tensor(self.db2),
        }
    }

    /// The parameters of `net` as a set of four tensors (the inverse of
    /// [`Gradients::into_net`]).
    pub fn from_net(net: &TwoLayerNet) -> Self {
        Self {
            dw1: net.W1.val(),
            db1: net.b1.val(),
            dw2: net.W2.val(),
            db2: net.b2.val(),
        }
    }
}
