//! The one evaluator: the forward pass over a set of images in chunks, with the mean
//! cross-entropy of [`crate::loss::cross_entropy`] and the accuracy computed on the
//! device, and, where asked, each image's class probabilities `A2` read back.
//!
//! Training evaluates its validation and test splits with [`evaluate`]; `eval`,
//! `report` and `serve` score the test set with [`score`] (the same figures, plus one
//! [`Prediction`] per image, from which [`EvalReport`] and [`mistakes`] are made);
//! `predict` and the web page answer single images with [`predict`] and
//! [`activations`].
//!
//! On flex a chunk of digits goes through the sparse product `W1·X`
//! ([`crate::input::Input::for_batch`]), as a training step does; a single image, or a
//! small network, takes the dense one.

mod report;

use std::ops::Range;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use report::{ClassMetrics, EvalReport};

use crate::data::MnistTensors;
use crate::error::{Error, Result};
use crate::input::Input;
use crate::loss::cross_entropy;
use crate::model::TwoLayerNet;
use crate::{IMAGE_PIXELS, NUM_CLASSES};

/// Images per forward pass, to bound memory on large hidden layers.
pub const CHUNK: usize = 10_000;

/// Loss and accuracy over a set of images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of images whose most probable class is the label, in `[0, 1]`.
    pub accuracy: f64,
    /// Number of images.
    pub images: usize,
}

/// What the network makes of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The most probable digit.
    pub digit: usize,
    /// `A2`: the probability of each digit, 0 to 9.
    pub probabilities: [f32; NUM_CLASSES],
}

impl Prediction {
    /// The prediction whose probabilities are `probabilities` (the digit is the most
    /// probable one; the last of equals).
    pub fn from_probabilities(probabilities: [f32; NUM_CLASSES]) -> Self {
        let digit = (0..NUM_CLASSES)
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
            .unwrap_or(0);
        Self {
            digit,
            probabilities,
        }
    }
}

/// A labelled set as scored by the network: the figures and each image's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Mean loss and accuracy.
    pub evaluation: Evaluation,
    /// One answer per image, in order.
    pub predictions: Vec<Prediction>,
}

/// The ranges of `n` images taken [`CHUNK`] at a time.
fn chunks(n: usize) -> impl Iterator<Item = Range<usize>> {
    (0..n).step_by(CHUNK).map(move |s| s..(s + CHUNK).min(n))
}

/// `(10, m)` probabilities read back as one [`Prediction`] per column.
fn read_predictions(a2: Tensor<2>, during: &str) -> Result<Vec<Prediction>> {
    // Transposed to (m, 10), the values read back one image per row.
    let values = a2
        .transpose()
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::device(during, e))?;
    Ok(values
        .chunks_exact(NUM_CLASSES)
        .map(|row| {
            let mut p = [0.0f32; NUM_CLASSES];
            p.copy_from_slice(row);
            Prediction::from_probabilities(p)
        })
        .collect())
}

/// The forward pass over `data` in chunks: the mean loss and accuracy, summed on the
/// device and read back once, and with `keep_predictions` each image's `A2`.
fn chunked(model: &TwoLayerNet, data: &MnistTensors, keep_predictions: bool) -> Result<Scored> {
    let n = data.len();
    if n == 0 {
        return Err(Error::NoImages { what: "evaluation" });
    }
    let device = data.labels.device();
    let mut loss_sum = Tensor::<1>::zeros([1], &device);
    let mut correct = Tensor::<1, Int>::zeros([1], &device);
    let mut predictions = Vec::with_capacity(if keep_predictions { n } else { 0 });
    for range in chunks(n) {
        let m = range.len();
        let x = data.images_in(range.clone()).transpose();
        let y = data.one_hot.clone().slice(range.clone()).transpose();
        let fwd = model.forward_input(&Input::for_batch(x, model.hidden()));
        loss_sum = loss_sum + cross_entropy(fwd.z2.clone(), y).mul_scalar(m as f64);
        let predicted: Tensor<1, Int> = fwd.z2.argmax(0).squeeze_dim(0);
        correct = correct
            + predicted
                .equal(data.labels.clone().slice(range))
                .int()
                .sum();
        if keep_predictions {
            predictions.extend(read_predictions(fwd.a2, "evaluating")?);
        }
    }
    let loss = loss_sum
        .try_into_scalar::<f64>()
        .map_err(|e| Error::device("evaluating", e))?;
    let correct = correct
        .try_into_scalar::<i64>()
        .map_err(|e| Error::device("evaluating", e))?;
    Ok(Scored {
        evaluation: Evaluation {
            loss: loss / n as f64,
            accuracy: correct as f64 / n as f64,
            images: n,
        },
        predictions,
    })
}

/// Mean loss and accuracy of `model` on `data` (nothing else is read back).
pub fn evaluate(model: &TwoLayerNet, data: &MnistTensors) -> Result<Evaluation> {
    Ok(chunked(model, data, false)?.evaluation)
}

/// [`evaluate`], with each image's [`Prediction`] as well.
pub fn score(model: &TwoLayerNet, data: &MnistTensors) -> Result<Scored> {
    chunked(model, data, true)
}

/// The forward pass on unlabelled `images` (row-major, 784 values in `[0, 1]` per
/// image), in chunks, with `A2` read back.
pub fn predict(model: &TwoLayerNet, images: &[f32], device: &Device) -> Result<Vec<Prediction>> {
    if !images.len().is_multiple_of(IMAGE_PIXELS) {
        return Err(Error::Shape {
            what: "images",
            expected: "a multiple of 784 values".into(),
            found: format!("{} values", images.len()),
        });
    }
    let m = images.len() / IMAGE_PIXELS;
    let mut out = Vec::with_capacity(m);
    for range in chunks(m) {
        let chunk = images[range.start * IMAGE_PIXELS..range.end * IMAGE_PIXELS].to_vec();
        let x = Tensor::<2>::from_data(TensorData::new(chunk, [range.len(), IMAGE_PIXELS]), device)
            .transpose();
        let x = Input::for_batch(x, model.hidden());
        out.extend(read_predictions(model.forward_input(&x).a2, "predicting")?);
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
    // A1 is (hidden, 1): one value per row.
    let hidden = forward
        .a1
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::device("reading A1 back", e))?;
    let prediction = read_predictions(forward.a2, "reading A2 back")?
        .pop()
        .ok_or_else(|| Error::Shape {
            what: "A2",
            expected: "one column".into(),
            found: "none".into(),
        })?;
    Ok(Activations { prediction, hidden })
}

/// A labelled image the network gets wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mistake {
    /// Its index in the set.
    pub index: usize,
    /// Its label.
    pub label: usize,
    /// The network's answer.
    pub predicted: usize,
    /// The probability the network gave its answer.
    pub confidence: f32,
}

/// Every image whose prediction is not its label, in order.
pub fn mistakes(predictions: &[Prediction], labels: &[u8]) -> Vec<Mistake> {
    predictions
        .iter()
        .zip(labels)
        .enumerate()
        .filter(|(_, (p, l))| p.digit != usize::from(**l))
        .map(|(index, (p, l))| Mistake {
            index,
            label: usize::from(*l),
            predicted: p.digit,
            confidence: p.probabilities[p.digit],
        })
        .collect()
}
