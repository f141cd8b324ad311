//! [`Config::validate`]: every value that parses but cannot be used, checked in one
//! place, each error naming its key.

use std::path::Path;

use super::{BatchSize, Config, MAX_HIDDEN};
use crate::error::ConfigError;

impl Config {
    /// Checks every value that parses but cannot be used; `path` names the source.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, problem: String| {
            Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                key: key.to_string(),
                problem,
            })
        };
        if !super::valid_name(&self.name) {
            return bad(
                "name",
                format!(
                    "is {:?}; use letters, digits, '-', '_' and '.' (it names a directory)",
                    self.name
                ),
            );
        }
        if self.model.hidden == 0 {
            return bad("model.hidden", "must be at least 1".into());
        }
        if self.model.hidden > MAX_HIDDEN {
            return bad(
                "model.hidden",
                format!(
                    "is {}; at most {MAX_HIDDEN} (W1 alone would hold {} floats)",
                    self.model.hidden,
                    self.model.hidden.saturating_mul(crate::IMAGE_PIXELS)
                ),
            );
        }
        if self.train.epochs == 0 {
            return bad("train.epochs", "must be at least 1".into());
        }
        if self.train.batch_size == BatchSize::Size(0) {
            return bad(
                "train.batch_size",
                "must be at least 1 (or \"full\")".into(),
            );
        }
        let lr = self.train.learning_rate;
        if !(lr.is_finite() && lr > 0.0) {
            return bad(
                "train.learning_rate",
                format!("is {lr}; it must be a finite number > 0"),
            );
        }
        if self.train.eval_every == 0 {
            return bad("train.eval_every", "must be at least 1".into());
        }
        if let Some((key, problem)) = self.train.schedule.problem(self.train.epochs) {
            return bad(&format!("train.schedule.{key}"), problem);
        }
        if crate::data::classes::known(&self.data.dataset).is_none() {
            return bad(
                "data.dataset",
                format!(
                    "is {:?}; expected one of: {} (or put a classes.txt beside the IDX files)",
                    self.data.dataset,
                    crate::data::classes::DATASETS.join(", ")
                ),
            );
        }
        if let Some((key, problem)) = self.train.augment.problem() {
            return bad(&format!("train.augment.{key}"), problem);
        }
        if let Some(decay) = self.train.weight_decay
            && !(decay.is_finite() && decay >= 0.0)
        {
            return bad(
                "train.weight_decay",
                format!("is {decay}; it must be a finite number ≥ 0"),
            );
        }
        if let Some(t) = self.train.target_accuracy
            && !(t > 0.0 && t <= 1.0)
        {
            return bad(
                "train.target_accuracy",
                format!("is {t}; it must be a fraction in (0, 1], e.g. 0.98"),
            );
        }
        if self.train.patience == Some(0) {
            return bad("train.patience", "must be at least 1".into());
        }
        let stops = self.train.target_accuracy.is_some() || self.train.patience.is_some();
        if stops && self.data.validation == 0 {
            return bad(
                "data.validation",
                "is 0, but train.target_accuracy and train.patience judge the validation \
                 split (never the test set); hold out some images"
                    .into(),
            );
        }
        if self.data.limit == Some(0) {
            return bad("data.limit", "must be at least 1".into());
        }
        Ok(())
    }
}
