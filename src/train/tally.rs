//! The running loss and accuracy of an epoch, read back from the device once per
//! window of steps, with the check for divergence.

use std::ops::Range;

use burn::prelude::*;

use super::{DIVERGED_LOSS, DIVERGENCE_WINDOW, Position};
use crate::error::{Error, Result};

/// The running loss and accuracy of an epoch. Each step's loss and predictions stay on
/// the device until [`DIVERGENCE_WINDOW`] steps have gathered; they are then read back
/// together, so the loop does not wait on the device at every step.
pub(super) struct Tally {
    /// Σ (batch mean loss × batch size) over the settled batches.
    pub loss_sum: f64,
    /// Correct predictions over the settled batches.
    pub correct: i64,
    /// Unsettled steps: the mean loss `(1)`, the predicted digits `(1, m)` and the
    /// batch's rows of the epoch's data.
    pending: Vec<(Tensor<1>, Tensor<2, Int>, Range<usize>)>,
}

/// A step whose loss was NaN, infinite or above [`DIVERGED_LOSS`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Blowup {
    /// Its 1-based step number.
    pub step: usize,
    /// Its loss.
    pub loss: f64,
}

impl Tally {
    /// Continues from the sums saved in `at`.
    pub fn resume(at: &Position) -> Self {
        Self {
            loss_sum: at.loss_sum,
            correct: at.correct,
            pending: Vec::with_capacity(DIVERGENCE_WINDOW),
        }
    }

    /// Adds a step's loss and logits `(10, m)` for the rows `range` of the epoch's data.
    pub fn push(&mut self, loss: Tensor<1>, z2: Tensor<2>, range: Range<usize>) {
        self.pending.push((loss, z2.argmax(0), range));
    }

    /// Steps not yet read back.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Reads the pending steps back (`labels`: the epoch's labels, in its order) and
    /// adds them to the sums; `last_step` is the 1-based number of the last pending
    /// step. Returns the first step whose loss is NaN, infinite or above
    /// [`DIVERGED_LOSS`], if any.
    pub fn settle(&mut self, labels: &Tensor<1, Int>, last_step: usize) -> Result<Option<Blowup>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let first = last_step + 1 - self.pending.len();
        let during = || {
            if last_step > first {
                format!("training (steps {first} to {last_step})")
            } else {
                format!("training (step {first})")
            }
        };
        let pending = std::mem::take(&mut self.pending);
        // The pending batches are consecutive rows of the epoch's data.
        let rows = pending[0].2.start..pending[pending.len() - 1].2.end;
        let sizes: Vec<usize> = pending.iter().map(|(_, _, r)| r.len()).collect();
        let (losses, predicted): (Vec<_>, Vec<_>) =
            pending.into_iter().map(|(l, p, _)| (l, p)).unzip();
        let predicted: Tensor<1, Int> = Tensor::cat(predicted, 1).squeeze_dim(0);
        let correct = predicted.equal(labels.clone().slice(rows)).int().sum();
        let losses = Tensor::cat(losses, 0)
            .try_into_vec_as::<f32>()
            .map_err(|e| Error::device(during(), e))?;
        self.correct += correct
            .try_into_scalar::<i64>()
            .map_err(|e| Error::device(during(), e))?;
        self.loss_sum += losses
            .iter()
            .zip(&sizes)
            .map(|(&l, &m)| f64::from(l) * m as f64)
            .sum::<f64>();
        Ok(losses
            .iter()
            .position(|v| !v.is_finite() || *v > DIVERGED_LOSS)
            .map(|k| Blowup {
                step: first + k,
                loss: f64::from(losses[k]),
            }))
    }
}
