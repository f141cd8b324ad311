//! What a published step shows: the gradients of the network the step started from,
//! how far each parameter moved, and the silent hidden units, read back at once.

use burn::prelude::*;
use serde::Serialize;

use crate::manual::backward_manual;
use crate::train::Look;

/// One value per parameter.
#[derive(Debug, Serialize, Clone, Copy)]
#[allow(non_snake_case)] // named as the parameters are in the design notes
pub(super) struct Four<T> {
    /// For `W1`.
    pub W1: T,
    /// For `b1`.
    pub b1: T,
    /// For `W2`.
    pub W2: T,
    /// For `b2`.
    pub b2: T,
}

/// What a published step shows, read back from the device at once.
pub(super) struct Figures {
    /// The batch's mean loss before the step.
    pub loss: f64,
    /// The share of the batch the network got right before the step.
    pub accuracy: f64,
    /// ‖dW1‖, ‖db1‖, ‖dW2‖, ‖db2‖ of the step's batch.
    pub grad_norms: Four<f64>,
    /// ‖ΔW‖/‖W‖ per parameter (`None` where ‖W‖ was 0).
    pub update_ratio: Four<Option<f64>>,
    /// The share of hidden units that output 0 for every image of the batch.
    pub dead_relu: f64,
}

impl Figures {
    /// The step's figures: the gradients of the network the step started from (by the
    /// hand-derived backward, equal to autodiff's), how far each parameter moved
    /// relative to its size, and the hidden units silent on the whole batch.
    pub(super) fn of(look: &Look<'_>) -> Option<Self> {
        let (x, y) = (look.x.clone(), look.y.clone());
        let forward = look.before.forward(x.clone());
        let m = x.dims()[1];
        let hidden = forward.a1.dims()[0];
        let back = backward_manual(look.before, x, y.clone(), &forward);
        let g = back.grads;
        let (b, a) = (look.before, look.after);
        let sq2 = |t: Tensor<2>| t.powf_scalar(2.0).sum();
        let sq1 = |t: Tensor<1>| t.powf_scalar(2.0).sum();
        let correct = forward.a2.argmax(0).equal(y.argmax(0)).float().sum();
        let dead = forward.a1.max_dim(1).equal_elem(0.0).float().sum();
        let parts = vec![
            look.loss.clone().sum(),
            correct,
            dead,
            sq2(g.dw1),
            sq1(g.db1),
            sq2(g.dw2),
            sq1(g.db2),
            sq2(b.W1.val()),
            sq1(b.b1.val()),
            sq2(b.W2.val()),
            sq1(b.b2.val()),
            sq2(a.W1.val() - b.W1.val()),
            sq1(a.b1.val() - b.b1.val()),
            sq2(a.W2.val() - b.W2.val()),
            sq1(a.b2.val() - b.b2.val()),
        ];
        let v: Vec<f64> = Tensor::cat(parts, 0)
            .try_into_vec_as::<f32>()
            .ok()?
            .into_iter()
            .map(f64::from)
            .collect();
        let ratio = |delta: f64, weight: f64| (weight > 0.0).then(|| (delta / weight).sqrt());
        Some(Self {
            loss: v[0],
            accuracy: v[1] / m as f64,
            dead_relu: v[2] / hidden.max(1) as f64,
            grad_norms: Four {
                W1: v[3].sqrt(),
                b1: v[4].sqrt(),
                W2: v[5].sqrt(),
                b2: v[6].sqrt(),
            },
            update_ratio: Four {
                W1: ratio(v[11], v[7]),
                b1: ratio(v[12], v[8]),
                W2: ratio(v[13], v[9]),
                b2: ratio(v[14], v[10]),
            },
        })
    }
}
