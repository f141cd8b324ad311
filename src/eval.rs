//! Using a trained network: class probabilities for images, and the evaluation of a
//! labelled set (accuracy, per-class precision and recall, confusion matrix).

use std::fmt::Write as _;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::MnistSplit;
use crate::error::{Error, Result};
use crate::model::TwoLayerNet;
use crate::{IMAGE_PIXELS, NUM_CLASSES};

/// Images per forward pass, to bound memory on large hidden layers.
const CHUNK: usize = 10_000;

/// What the network makes of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The most probable digit.
    pub digit: usize,
    /// `A2`: the probability of each digit, 0 to 9.
    pub probabilities: [f32; NUM_CLASSES],
}

impl Prediction {
    fn from_probabilities(probabilities: [f32; NUM_CLASSES]) -> Self {
        let digit = (0..NUM_CLASSES)
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
            .unwrap_or(0);
        Self {
            digit,
            probabilities,
        }
    }
}

/// The forward pass on `images` (row-major, 784 values in `[0, 1]` per image), in
/// chunks, with `A2` read back to the host.
pub fn predict(model: &TwoLayerNet, images: &[f32], device: &Device) -> Result<Vec<Prediction>> {
    let m = images.len() / IMAGE_PIXELS;
    let mut out = Vec::with_capacity(m);
    for start in (0..m).step_by(CHUNK) {
        let end = (start + CHUNK).min(m);
        let chunk = images[start * IMAGE_PIXELS..end * IMAGE_PIXELS].to_vec();
        let x = Tensor::<2>::from_data(TensorData::new(chunk, [end - start, IMAGE_PIXELS]), device)
            .transpose();
        // A2 is (10, m); transposed to (m, 10) it reads back one image per row.
        let a2 = model.forward(x).a2.transpose();
        let values = a2.try_into_vec_as::<f32>().map_err(|e| Error::Backend {
            backend: format!("{device:?}"),
            message: format!("cannot read predictions back: {e:?}"),
        })?;
        out.extend(values.chunks_exact(NUM_CLASSES).map(|row| {
            let mut p = [0.0f32; NUM_CLASSES];
            p.copy_from_slice(row);
            Prediction::from_probabilities(p)
        }));
    }
    Ok(out)
}

/// What the network computes for one image: its answer and its hidden layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activations {
    /// The answer, from `A2`.
    pub prediction: Prediction,
    /// `A1 = ReLU(W1·x + b1)`: one value per hidden unit.
    pub hidden: Vec<f32>,
}

/// The forward pass on one image (784 values in `[0, 1]`), with `A1` and `A2` read back.
pub fn activations(
    model: &TwoLayerNet,
    image: &[f32; IMAGE_PIXELS],
    device: &Device,
) -> Result<Activations> {
    let x = Tensor::<2>::from_data(TensorData::new(image.to_vec(), [IMAGE_PIXELS, 1]), device);
    let forward = model.forward(x);
    let read = |t: Tensor<2>, what: &str| {
        t.try_into_vec_as::<f32>().map_err(|e| Error::Backend {
            backend: format!("{device:?}"),
            message: format!("cannot read {what} back: {e:?}"),
        })
    };
    // A1 is (hidden, 1) and A2 is (10, 1): one value per row.
    let hidden = read(forward.a1, "A1")?;
    let a2 = read(forward.a2, "A2")?;
    let probabilities: [f32; NUM_CLASSES] =
        a2.try_into().map_err(|v: Vec<f32>| Error::Backend {
            backend: format!("{device:?}"),
            message: format!("A2 has {} values, expected {NUM_CLASSES}", v.len()),
        })?;
    Ok(Activations {
        prediction: Prediction::from_probabilities(probabilities),
        hidden,
    })
}

/// [`predict`] on every image of a split (pixels scaled from 0–255 to 0–1).
pub fn predict_split(
    model: &TwoLayerNet,
    split: &MnistSplit,
    device: &Device,
) -> Result<Vec<Prediction>> {
    let images: Vec<f32> = split.pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    predict(model, &images, device)
}

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
    /// Mean cross-entropy `−log A2[label]`.
    pub loss: f64,
    /// `confusion[true][predicted]`: image counts.
    pub confusion: [[u64; NUM_CLASSES]; NUM_CLASSES],
    /// Per digit, 0 to 9.
    pub classes: Vec<ClassMetrics>,
}

impl EvalReport {
    /// Scores `predictions` against `labels` (same order and length).
    pub fn new(predictions: &[Prediction], labels: &[u8]) -> Self {
        let mut confusion = [[0u64; NUM_CLASSES]; NUM_CLASSES];
        let mut loss = 0.0f64;
        for (p, &label) in predictions.iter().zip(labels) {
            let label = usize::from(label);
            confusion[label][p.digit] += 1;
            // Probabilities are f32 and may round to 0: floor them at f32's smallest
            // normal so one confident mistake gives a large, finite loss.
            loss -= f64::from(p.probabilities[label].max(f32::MIN_POSITIVE)).ln();
        }
        let images = predictions.len().min(labels.len());
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
        Self {
            images,
            accuracy: ratio(correct, images as u64),
            loss: if images == 0 {
                0.0
            } else {
                loss / images as f64
            },
            confusion,
            classes,
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
        let _ = writeln!(s, "digit  support  precision  recall");
        for c in &self.classes {
            let _ = writeln!(
                s,
                "{:>5}  {:>7}  {:>8.2}%  {:>5.2}%",
                c.digit,
                c.support,
                100.0 * c.precision,
                100.0 * c.recall
            );
        }
        let _ = writeln!(
            s,
            "\nconfusion matrix (rows: true digit, columns: predicted)"
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
