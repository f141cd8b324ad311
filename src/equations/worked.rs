//! Every line of the seed equations for one batch, worked by the library's own code:
//! the forward of [`TwoLayerNet::forward`], the loss of [`crate::loss::cross_entropy`],
//! the hand-derived backward of [`backward_manual`], and Burn's autodiff gradients of
//! [`autodiff_gradients`] beside them.

#![allow(non_snake_case)] // The matrices are named as in the seed equations.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Batch, Matrix, Source};
use crate::autodiff::autodiff_gradients;
use crate::error::{Error, Result};
use crate::gradients::Gradients;
use crate::loss::cross_entropy;
use crate::manual::backward_manual;
use crate::model::TwoLayerNet;

/// What the Equations view shows: `GET /api/equations`'s answer (WORKED in the API
/// contract).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worked {
    /// Updates applied since the workbench started.
    pub step: usize,
    /// Images in the batch.
    pub m: usize,
    /// Hidden units.
    pub hidden: usize,
    /// The learning rate `α` the next step uses.
    pub alpha: f64,
    /// The split the images come from.
    pub source: Source,
    /// The images' indices in that split.
    pub indices: Vec<usize>,
    /// Their labels.
    pub labels: Vec<u8>,
    /// The network's digit for each: the row of the largest `A2` in its column.
    pub predictions: Vec<usize>,
    /// The mean cross-entropy `L = −(1/m)·Σ_k log A2[y_k, k]` on the batch.
    pub loss: f64,
    /// The loss before and after the last update, when this answer follows one.
    pub stepped: Option<Stepped>,
    /// Every matrix of the equations.
    pub matrices: Matrices,
    /// Burn's autodiff gradients for the same weights and batch.
    pub autodiff: Autodiff,
}

/// The loss on the batch around one update `W −= α·dW, b −= α·db`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stepped {
    /// Before the update.
    pub loss_before: f64,
    /// After it.
    pub loss_after: f64,
}

/// The matrices of the seed equations, in seed notation (one column per image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrices {
    /// `784 × m` input, pixel / 255.
    pub X: Matrix,
    /// `h × 784` first-layer weights.
    pub W1: Matrix,
    /// `h × 1` first-layer bias.
    pub b1: Matrix,
    /// `h × m`: `W1·X + b1`.
    pub Z1: Matrix,
    /// `h × m`: `ReLU(Z1)`.
    pub A1: Matrix,
    /// `10 × h` second-layer weights.
    pub W2: Matrix,
    /// `10 × 1` second-layer bias.
    pub b2: Matrix,
    /// `10 × m`: `W2·A1 + b2`.
    pub Z2: Matrix,
    /// `10 × m`: `softmax(Z2)`, column by column.
    pub A2: Matrix,
    /// `10 × m` one-hot labels.
    pub Y: Matrix,
    /// `10 × m`: `A2 − Y`.
    pub dZ2: Matrix,
    /// `10 × h`: `(1/m)·dZ2·A1ᵀ`.
    pub dW2: Matrix,
    /// `10 × 1`: `(1/m)·Σ_k dZ2[:, k]`.
    pub db2: Matrix,
    /// `h × m`: `W2ᵀ·dZ2 ⊙ ReLU'(Z1)`.
    pub dZ1: Matrix,
    /// `h × 784`: `(1/m)·dZ1·Xᵀ`.
    pub dW1: Matrix,
    /// `h × 1`: `(1/m)·Σ_k dZ1[:, k]`.
    pub db1: Matrix,
}

impl Matrices {
    /// The names of the matrices, in the order of the equations.
    pub const NAMES: [&'static str; 16] = [
        "X", "W1", "b1", "Z1", "A1", "W2", "b2", "Z2", "A2", "Y", "dZ2", "dW2", "db2", "dZ1",
        "dW1", "db1",
    ];

    /// The matrix called `name` (one of [`Matrices::NAMES`]).
    pub fn get(&self, name: &str) -> Option<&Matrix> {
        Some(match name {
            "X" => &self.X,
            "W1" => &self.W1,
            "b1" => &self.b1,
            "Z1" => &self.Z1,
            "A1" => &self.A1,
            "W2" => &self.W2,
            "b2" => &self.b2,
            "Z2" => &self.Z2,
            "A2" => &self.A2,
            "Y" => &self.Y,
            "dZ2" => &self.dZ2,
            "dW2" => &self.dW2,
            "db2" => &self.db2,
            "dZ1" => &self.dZ1,
            "dW1" => &self.dW1,
            "db1" => &self.db1,
            _ => return None,
        })
    }
}

/// Burn's autodiff gradients of the same loss, and how far the hand-derived ones are
/// from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Autodiff {
    /// `∂L/∂W1` by autodiff, `h × 784`.
    pub dW1: Matrix,
    /// `∂L/∂b1` by autodiff, `h × 1`.
    pub db1: Matrix,
    /// `∂L/∂W2` by autodiff, `10 × h`.
    pub dW2: Matrix,
    /// `∂L/∂b2` by autodiff, `10 × 1`.
    pub db2: Matrix,
    /// Largest `|manual − autodiff|` of each gradient.
    pub max_abs_diff: ParamDiffs,
    /// The largest of the four.
    pub largest: f64,
}

/// One figure per parameter gradient.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParamDiffs {
    /// For `dW1`.
    pub dW1: f64,
    /// For `db1`.
    pub db1: f64,
    /// For `dW2`.
    pub dW2: f64,
    /// For `db2`.
    pub db2: f64,
}

/// What the library computes for `net` on `batch`, on the host.
#[derive(Debug, Clone)]
pub(crate) struct Computed {
    pub(crate) loss: f64,
    pub(crate) predictions: Vec<usize>,
    pub(crate) matrices: Matrices,
    pub(crate) autodiff: Autodiff,
    /// The hand-derived gradients, still on the device, for the update.
    pub(crate) grads: Gradients,
}

/// Runs the forward, the loss, the manual backward and autodiff for `net` (on `device`,
/// a CPU device) on `batch`, and reads every matrix back.
pub(crate) fn compute(net: &TwoLayerNet, batch: &Batch, device: &Device) -> Result<Computed> {
    let m = batch.m();
    let x_host = batch.x()?;
    let y_host = batch.y()?;
    let tensor = |h: &Matrix| {
        Tensor::<2>::from_data(
            TensorData::new(h.values().to_vec(), [h.rows(), h.cols()]),
            device,
        )
    };
    let x = tensor(&x_host);
    let y = tensor(&y_host);
    TwoLayerNet::check_input(&x)?;

    // The library's forward, loss and hand-derived backward.
    let fwd = net.forward(x.clone());
    let loss = cross_entropy(fwd.z2.clone(), y.clone());
    let backward = backward_manual(net, x.clone(), y.clone(), &fwd);

    // Burn's autodiff of the same loss, for the same weights.
    let ad_net = net.clone().to_device(&device.clone().autodiff()).train();
    let (_, ad) = autodiff_gradients(&ad_net, x, y);

    let loss = loss
        .try_into_scalar::<f32>()
        .map_err(|e| Error::device("computing the equations' loss", e))?;
    let grads = backward.grads.clone();
    let matrices = Matrices {
        X: x_host,
        W1: Matrix::from_tensor(net.W1.val())?,
        b1: Matrix::from_column(net.b1.val())?,
        Z1: Matrix::from_tensor(fwd.z1)?,
        A1: Matrix::from_tensor(fwd.a1)?,
        W2: Matrix::from_tensor(net.W2.val())?,
        b2: Matrix::from_column(net.b2.val())?,
        Z2: Matrix::from_tensor(fwd.z2)?,
        A2: Matrix::from_tensor(fwd.a2)?,
        Y: y_host,
        dZ2: Matrix::from_tensor(backward.dz2)?,
        dW2: Matrix::from_tensor(backward.grads.dw2)?,
        db2: Matrix::from_column(backward.grads.db2)?,
        dZ1: Matrix::from_tensor(backward.dz1)?,
        dW1: Matrix::from_tensor(backward.grads.dw1)?,
        db1: Matrix::from_column(backward.grads.db1)?,
    };
    let autodiff = compare(&matrices, ad)?;
    let predictions = (0..m).map(|k| column_argmax(&matrices.A2, k)).collect();
    Ok(Computed {
        loss: f64::from(loss),
        predictions,
        matrices,
        autodiff,
        grads,
    })
}

/// Autodiff's gradients on the host and their largest distance from the manual ones.
fn compare(manual: &Matrices, ad: Gradients) -> Result<Autodiff> {
    let dW1 = Matrix::from_tensor(ad.dw1)?;
    let db1 = Matrix::from_column(ad.db1)?;
    let dW2 = Matrix::from_tensor(ad.dw2)?;
    let db2 = Matrix::from_column(ad.db2)?;
    let max_abs_diff = ParamDiffs {
        dW1: manual.dW1.max_abs_diff(&dW1),
        db1: manual.db1.max_abs_diff(&db1),
        dW2: manual.dW2.max_abs_diff(&dW2),
        db2: manual.db2.max_abs_diff(&db2),
    };
    let d = max_abs_diff;
    // NaN-propagating maximum: a NaN gradient must not hide behind a finite one.
    let largest = [d.dW1, d.db1, d.dW2, d.db2]
        .into_iter()
        .fold(0.0, |a: f64, b| {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        });
    Ok(Autodiff {
        dW1,
        db1,
        dW2,
        db2,
        max_abs_diff,
        largest,
    })
}

/// The row of the largest value in column `k` (the first of equal ones).
fn column_argmax(a: &Matrix, k: usize) -> usize {
    (0..a.rows()).fold(
        0,
        |best, c| if a.at(c, k) > a.at(best, k) { c } else { best },
    )
}
