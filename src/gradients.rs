//! The gradients of the mean loss with respect to the four parameters: what the manual
//! backward ([`crate::manual::backward_manual`]) and Burn's autodiff
//! ([`crate::autodiff::autodiff_gradients`]) each compute, in one type so that the two
//! can be compared field by field and either can drive an update.

use burn::module::Param;
use burn::optim::GradientsParams;
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

    /// Each gradient times `w`.
    pub fn scaled(self, w: f64) -> Self {
        Self {
            dw1: self.dw1.mul_scalar(w),
            db1: self.db1.mul_scalar(w),
            dw2: self.dw2.mul_scalar(w),
            db2: self.db2.mul_scalar(w),
        }
    }

    /// The sums, parameter by parameter, of `self` and `other`.
    pub fn plus(self, other: Self) -> Self {
        Self {
            dw1: self.dw1 + other.dw1,
            db1: self.db1 + other.db1,
            dw2: self.dw2 + other.dw2,
            db2: self.db2 + other.db2,
        }
    }

    /// The gradients keyed by the parameters of `net` (on an autodiff device), as a
    /// Burn optimizer takes them.
    pub fn into_params(self, net: &TwoLayerNet) -> GradientsParams {
        let mut params = GradientsParams::new();
        params.register(net.W1.id, self.dw1);
        params.register(net.b1.id, self.db1);
        params.register(net.W2.id, self.dw2);
        params.register(net.b2.id, self.db2);
        params
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
