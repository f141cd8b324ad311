//! What a checkpoint saves: where the loop stands, the records of the finished epochs,
//! and (with the network and the optimizer) everything needed to continue training.

use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use crate::adam::AdamMoments;
use crate::eval::Evaluation;
use crate::gradients::Gradients;
use crate::model::TwoLayerNet;

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Gradient steps taken so far, this epoch's included.
    pub step: usize,
    /// Running loss and accuracy over the epoch's batches, each measured before its step.
    pub train: Evaluation,
    /// Held-out images, on evaluation epochs when there are any.
    pub valid: Option<Evaluation>,
    /// Test images, on evaluation epochs.
    pub test: Option<Evaluation>,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Seconds spent on the epoch's gradient steps (shuffle included, evaluation not).
    pub train_seconds: f64,
    /// Seconds spent evaluating after the epoch.
    pub eval_seconds: f64,
    /// On the first epoch whose validation accuracy reaches `train.target_accuracy`:
    /// seconds of training and evaluation from the start of the run to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_target_s: Option<f64>,
}

/// Where training stands: the epoch in progress, how many of its batches are done, and
/// the running sums of its training figures. Together with the seed this is all the
/// loop needs to continue: each epoch's shuffle is derived from `(seed, epoch)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// 1-based epoch in progress (`epochs + 1` once training is over).
    pub epoch: usize,
    /// Batches of `epoch` already done.
    pub batch: usize,
    /// Gradient steps taken so far.
    pub step: usize,
    /// Sum over the done batches of `epoch` of (batch mean loss × batch size).
    pub loss_sum: f64,
    /// Correct predictions over the done batches of `epoch`.
    pub correct: i64,
    /// Seconds of gradient steps spent on the done batches of `epoch`.
    pub seconds: f64,
}

impl Position {
    /// The start of training.
    pub const START: Position = Position {
        epoch: 1,
        batch: 0,
        step: 0,
        loss_sum: 0.0,
        correct: 0,
        seconds: 0.0,
    };

    /// The start of the epoch after `epoch`, `step` steps in.
    pub fn after_epoch(epoch: usize, step: usize) -> Position {
        Position {
            epoch: epoch + 1,
            step,
            ..Position::START
        }
    }
}

/// Everything needed to continue training: the network, the optimizer's state (autodiff
/// mode), where the loop stands, and the records of the epochs done.
pub struct TrainState {
    /// The network, on the plain device.
    pub model: TwoLayerNet,
    /// The Burn optimizer and its state, where the update is one
    /// ([`crate::config::Config::burn_optimizer`]).
    pub optimizer: Option<ModuleOptimizer>,
    /// The momentum velocity (manual mode with momentum, after its first step).
    pub velocity: Option<Gradients>,
    /// Adam's moments (manual mode with Adam).
    pub moments: Option<AdamMoments>,
    /// Where the loop stands.
    pub at: Position,
    /// One record per finished epoch.
    pub history: Vec<EpochRecord>,
}

impl TrainState {
    /// A fresh start from `model`.
    pub fn new(model: TwoLayerNet) -> Self {
        Self {
            model,
            optimizer: None,
            velocity: None,
            moments: None,
            at: Position::START,
            history: Vec::new(),
        }
    }
}

/// A view of the state at a checkpoint, lent to
/// [`Observer::checkpoint`](super::Observer::checkpoint).
pub struct StateRef<'a> {
    /// The network, on the plain device.
    pub model: &'a TwoLayerNet,
    /// The Burn optimizer, where the update is one.
    pub optimizer: Option<&'a ModuleOptimizer>,
    /// The momentum velocity (manual mode with momentum).
    pub velocity: Option<&'a Gradients>,
    /// Adam's moments (manual mode with Adam).
    pub moments: Option<&'a AdamMoments>,
    /// Where the loop stands.
    pub at: Position,
    /// One record per finished epoch.
    pub history: &'a [EpochRecord],
}
