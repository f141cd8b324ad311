//! Learning-rate schedules: the rate `α_t` of each gradient step `t` as a function of
//! the step alone, so that a resumed run takes exactly the rates an uninterrupted one
//! would, with nothing to save in a checkpoint.
//!
//! With `α` the config's `train.learning_rate`, `t` the 0-based step, `E` the steps per
//! epoch, `T` the run's steps (`epochs · E`) and `W = warmup_epochs · E`:
//!
//! ```text
//! constant   α_t = α
//! step       α_t = α · factor^⌊⌊t / E⌋ / every⌋                 (every `every` epochs)
//! cosine     α_t = α · (t + 1)/W                                 for t < W (warm-up)
//!            α_t = α · ½·(1 + cos(π·(t − W)/(T − W)))           after
//! linear     α_t = α · (t + 1)/W                                 for t < W
//!            α_t = α · (1 − (t − W)/(T − W))                     after (to zero)
//! ```
//!
//! Burn's own schedulers (`burn::lr_scheduler`) are objects that advance one step per
//! call and must be saved with a checkpoint; a function of the step gives the same
//! rates and resumes exactly by construction.
//!
//! ```
//! use mnist_nn::schedule::Schedule;
//! let cosine = Schedule::Cosine { warmup_epochs: 1 };
//! // α = 0.1, 10 steps an epoch, 5 epochs: warm-up over the first epoch, then half-way
//! // through the remaining 40 steps the rate is α/2.
//! assert!((cosine.rate(0.1, 0, 10, 50) - 0.01).abs() < 1e-12);
//! assert!((cosine.rate(0.1, 30, 10, 50) - 0.05).abs() < 1e-12);
//! ```

use serde::{Deserialize, Serialize};

/// How the learning rate changes over a run (the config's `[train.schedule]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Schedule {
    /// The same rate throughout (the seed's gradient descent). A struct variant with no
    /// fields rather than a unit one, so that serde refuses keys given with it (a unit
    /// variant of an internally tagged enum ignores them: `kind = "constant"` with
    /// `every = 3` was taken silently).
    Constant {},
    /// The rate multiplied by `factor` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// What each decay multiplies the rate by, in `(0, 1]`.
        factor: f64,
    },
    /// Linear warm-up, then a half cosine from `α` down to zero.
    Cosine {
        /// Epochs of linear warm-up (0: none).
        #[serde(default)]
        warmup_epochs: usize,
    },
    /// Linear warm-up, then a straight line from `α` down to zero.
    Linear {
        /// Epochs of linear warm-up (0: none).
        #[serde(default)]
        warmup_epochs: usize,
    },
}

impl Default for Schedule {
    /// [`Schedule::Constant`], the seed's.
    fn default() -> Self {
        Schedule::Constant {}
    }
}

impl Schedule {
    /// The word of the config's `kind`.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Constant {} => "constant",
            Schedule::Step { .. } => "step",
            Schedule::Cosine { .. } => "cosine",
            Schedule::Linear { .. } => "linear",
        }
    }

    /// True for [`Schedule::Constant`] (which a run's `config.toml` leaves out).
    pub fn is_constant(&self) -> bool {
        *self == Schedule::Constant {}
    }

    /// The rate of the 0-based step `t`, for base rate `alpha`, `per_epoch` steps an
    /// epoch and `total` steps in the run (see the module docs for the formulas).
    pub fn rate(self, alpha: f64, t: usize, per_epoch: usize, total: usize) -> f64 {
        let per_epoch = per_epoch.max(1);
        match self {
            Schedule::Constant {} => alpha,
            Schedule::Step { every, factor } => {
                let decays = (t / per_epoch) / every.max(1);
                alpha * factor.powi(i32::try_from(decays).unwrap_or(i32::MAX))
            }
            Schedule::Cosine { warmup_epochs } | Schedule::Linear { warmup_epochs } => {
                let warmup = warmup_epochs * per_epoch;
                if t < warmup {
                    return alpha * (t + 1) as f64 / warmup as f64;
                }
                let p = (t - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
                let p = p.min(1.0);
                match self {
                    Schedule::Cosine { .. } => {
                        alpha * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
                    }
                    _ => alpha * (1.0 - p),
                }
            }
        }
    }

    /// What is wrong with this schedule for a run of `epochs` epochs, if anything: the
    /// key (under `train.schedule`) and the problem.
    pub fn problem(self, epochs: usize) -> Option<(&'static str, String)> {
        match self {
            Schedule::Constant {} => None,
            Schedule::Step { every, factor } => {
                if every == 0 {
                    Some(("every", "must be at least 1".into()))
                } else if !(factor.is_finite() && factor > 0.0 && factor <= 1.0) {
                    Some(("factor", format!("is {factor}; it must be in (0, 1]")))
                } else {
                    None
                }
            }
            Schedule::Cosine { warmup_epochs } | Schedule::Linear { warmup_epochs } => {
                (warmup_epochs >= epochs).then(|| {
                    (
                        "warmup_epochs",
                        format!(
                            "is {warmup_epochs}; it must be less than train.epochs ({epochs}), \
                             so that the rate has epochs left to decay over"
                        ),
                    )
                })
            }
        }
    }
}
