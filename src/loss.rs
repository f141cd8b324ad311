//! Softmax and cross-entropy over the columns of `(10, m)` logits.
//!
//! ```text
//! softmax(Z)[k, i]     = exp(Z[k,i] − max_k Z[·,i]) / Σ_k exp(Z[k,i] − max_k Z[·,i])
//! log_softmax(Z)[k, i] = Z[k,i] − max − log Σ_k exp(Z[k,i] − max)
//! L(Z, Y)              = −(1/m) Σ_i Σ_k Y[k,i] · log_softmax(Z)[k,i]
//! ```
//!
//! `∂L/∂Z = (softmax(Z) − Y)/m`, which is why the manual backward starts from
//! `dZ2 = A2 − Y` and divides by `m` in the weight gradients.

use burn::prelude::*;

/// Column-wise softmax of `(classes, m)` logits, shifted by each column's max so that
/// `exp` never overflows.
pub fn softmax_columns(z: Tensor<2>) -> Tensor<2> {
    // The max is a constant shift: detached, autodiff does not trace a zero gradient.
    let shifted = z.clone() - z.max_dim(0).detach();
    let e = shifted.exp();
    e.clone() / e.sum_dim(0)
}

/// Column-wise log-softmax of `(classes, m)` logits, computed without forming
/// `log(softmax)` (which would be `-inf` where a probability underflows).
pub fn log_softmax_columns(z: Tensor<2>) -> Tensor<2> {
    let shifted = z.clone() - z.max_dim(0).detach();
    shifted.clone() - shifted.exp().sum_dim(0).log()
}

/// Mean cross-entropy of `softmax(z)` against one-hot `y`, both `(classes, m)`.
///
/// The sum runs along each class's row, then over the classes: reductions along an
/// axis, which every backend adds up in a fixed order. A whole-tensor `sum()` on wgpu
/// adds its workgroups' partial sums atomically, in whatever order they finish, so the
/// loss's last bits would vary from run to run on a GPU.
pub fn cross_entropy(z: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    let m = z.dims()[1];
    (log_softmax_columns(z) * y)
        .sum_dim(1)
        .sum_dim(0)
        .reshape([1])
        .neg()
        .div_scalar(m as f64)
}
