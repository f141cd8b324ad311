//! Stopping in time: a run ends before its last epoch when its validation accuracy
//! reaches `train.target_accuracy`, or has not improved for `train.patience`
//! evaluations. Both rules read the epochs' records only, so a resumed run decides as
//! an uninterrupted one would; and only the validation split, never the test set.

use serde::{Deserialize, Serialize};

use super::EpochRecord;
use crate::config::TrainConfig;

/// Why a run stopped before its last epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum EarlyStop {
    /// Validation accuracy reached `train.target_accuracy` at this epoch.
    TargetReached {
        /// The epoch that reached it.
        epoch: usize,
        /// Its validation accuracy.
        accuracy: f64,
    },
    /// `train.patience` evaluations in a row did not beat the best validation accuracy.
    NoImprovement {
        /// The epoch of the best validation accuracy.
        best_epoch: usize,
        /// That accuracy.
        accuracy: f64,
    },
}

/// The rule of `train` that `history` (the finished epochs, in order) satisfies, if
/// any.
pub fn early_stop(train: &TrainConfig, history: &[EpochRecord]) -> Option<EarlyStop> {
    let evaluated: Vec<(usize, f64)> = history
        .iter()
        .filter_map(|r| r.valid.map(|v| (r.epoch, v.accuracy)))
        .collect();
    if let Some(target) = train.target_accuracy
        && let Some(&(epoch, accuracy)) = evaluated.iter().find(|(_, a)| *a >= target)
    {
        return Some(EarlyStop::TargetReached { epoch, accuracy });
    }
    let patience = train.patience?;
    let (best, &(best_epoch, accuracy)) = evaluated.iter().enumerate().fold(
        None,
        |best: Option<(usize, &(usize, f64))>, (i, e)| match best {
            Some((_, b)) if b.1 >= e.1 => best,
            _ => Some((i, e)),
        },
    )?;
    (evaluated.len() - 1 - best >= patience).then_some(EarlyStop::NoImprovement {
        best_epoch,
        accuracy,
    })
}

/// Whether the last of `history` has the best validation accuracy of all (strictly
/// better than every earlier one): the epoch whose network is kept as the best.
pub fn is_best(history: &[EpochRecord]) -> bool {
    let Some((last, earlier)) = history.split_last() else {
        return false;
    };
    let Some(v) = last.valid else {
        return false;
    };
    earlier
        .iter()
        .filter_map(|r| r.valid)
        .all(|e| v.accuracy > e.accuracy)
}

/// Seconds of training and evaluation up to and including `epoch`.
pub fn seconds_until(history: &[EpochRecord], epoch: usize) -> f64 {
    history
        .iter()
        .take_while(|r| r.epoch <= epoch)
        .map(|r| r.train_seconds + r.eval_seconds)
        .sum()
}
