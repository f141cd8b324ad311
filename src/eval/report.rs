//! The evaluation of a network on a labelled set as a person reads it: accuracy,
//! per-class precision and recall, and the confusion matrix.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::Scored;
use crate::NUM_CLASSES;
use crate::error::{Error, Result};

/// Precision and recall of one digit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// The digit.
    pub digit: usize,
    /// Images labelled with it.
    pub support: u64,
    /// Of the images predicted as this digit, the fraction labelled with it (0 when
    /// none is predicted).
    pub precision: f64,
    /// Of the images labelled with this digit, the fraction predicted as it (0 when
    /// none is labelled).
    pub recall: f64,
}

/// The evaluation of a network on a labelled set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Number of images.
    pub images: usize,
    /// Fraction predicted correctly.
    pub accuracy: f64,
    /// Mean cross-entropy `−log A2[label]`, as [`super::evaluate`] computes it.
    pub loss: f64,
    /// `confusion[true][predicted]`: image counts.
    pub confusion: [[u64; NUM_CLASSES]; NUM_CLASSES],
    /// Per digit, 0 to 9.
    pub classes: Vec<ClassMetrics>,
    /// The classes' names (digits for MNIST), in label order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

impl EvalReport {
    /// Counts `scored`'s predictions against `labels` (same order and length), with
    /// its mean loss. A length that differs, or a label that is not a class, is an
    /// error.
    pub fn new(scored: &Scored, labels: &[u8]) -> Result<Self> {
        let predictions = &scored.predictions;
        if predictions.len() != labels.len() {
            return Err(Error::Shape {
                what: "labels",
                expected: format!("one per prediction ({})", predictions.len()),
                found: format!("{} labels", labels.len()),
            });
        }
        let mut confusion = [[0u64; NUM_CLASSES]; NUM_CLASSES];
        for (index, (p, &label)) in predictions.iter().zip(labels).enumerate() {
            let row = confusion
                .get_mut(usize::from(label))
                .ok_or(Error::Label { index, label })?;
            row[p.digit.min(NUM_CLASSES - 1)] += 1;
        }
        let images = predictions.len();
        let correct: u64 = (0..NUM_CLASSES).map(|d| confusion[d][d]).sum();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let classes = (0..NUM_CLASSES)
            .map(|d| {
                let support: u64 = confusion[d].iter().sum();
                let predicted: u64 = (0..NUM_CLASSES).map(|t| confusion[t][d]).sum();
                ClassMetrics {
                    digit: d,
                    support,
                    precision: ratio(confusion[d][d], predicted),
                    recall: ratio(confusion[d][d], support),
                }
            })
            .collect();
        Ok(Self {
            images,
            accuracy: ratio(correct, images as u64),
            loss: scored.evaluation.loss,
            confusion,
            classes,
            names: Vec::new(),
        })
    }

    /// The same report with the classes named (e.g. Fashion-MNIST's "Trouser") in its
    /// table and JSON.
    pub fn with_names(mut self, names: Vec<String>) -> Self {
        self.names = names;
        self
    }

    /// The name of class `c`: its entry in [`EvalReport::names`], else the digit.
    pub fn name(&self, c: usize) -> String {
        self.names.get(c).cloned().unwrap_or_else(|| c.to_string())
    }

    /// What a class is called in headings: `"digit"` where the classes are named by
    /// their digits (MNIST) or not named, `"class"` otherwise.
    pub fn noun(&self) -> &'static str {
        if (0..NUM_CLASSES).all(|c| self.name(c) == c.to_string()) {
            "digit"
        } else {
            "class"
        }
    }

    /// The report as text: the headline figures, the per-digit table and the
    /// confusion matrix (rows: true digit, columns: predicted digit).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} images: accuracy {:.2}%, mean cross-entropy {:.4}\n",
            self.images,
            100.0 * self.accuracy,
            self.loss
        );
        let width = (0..NUM_CLASSES)
            .map(|c| self.name(c).chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let head = self.noun();
        let _ = writeln!(s, "{head:>width$}  support  precision  recall");
        for c in &self.classes {
            let _ = writeln!(
                s,
                "{:>width$}  {:>7}  {:>8.2}%  {:>5.2}%",
                self.name(c.digit),
                c.support,
                100.0 * c.precision,
                100.0 * c.recall
            );
        }
        let _ = writeln!(
            s,
            "\nconfusion matrix (rows: true {head}, columns: predicted)"
        );
        let _ = write!(s, "true\\pred");
        for d in 0..NUM_CLASSES {
            let _ = write!(s, "{d:>6}");
        }
        let _ = writeln!(s);
        for (t, row) in self.confusion.iter().enumerate() {
            let _ = write!(s, "{t:>9}");
            for n in row {
                let _ = write!(s, "{n:>6}");
            }
            let _ = writeln!(s);
        }
        s
    }
}
