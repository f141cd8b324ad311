//! The training loop: mini-batches sliced from device tensors, the manual or the
//! autodiff update, and per-epoch metrics. It reports through an [`Observer`] and
//! prints nothing itself.

use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::autodiff::{autodiff_step, optimizer};
use crate::config::{Config, Mode};
use crate::data::{Mnist, MnistTensors};
use crate::error::Result;
use crate::loss::cross_entropy;
use crate::manual::backward_manual;
use crate::model::TwoLayerNet;

/// Loss and accuracy over a set of images.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of images whose most probable class is the label, in `[0, 1]`.
    pub accuracy: f64,
    /// Number of images.
    pub images: usize,
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    /// Learning rate used.
    pub lr: f64,
    /// Seconds spent on the epoch's gradient steps (shuffle included, evaluation not).
    pub train_seconds: f64,
    /// Seconds spent evaluating after the epoch.
    pub eval_seconds: f64,
}

/// Hooks the loop calls as it goes; every method has an empty default.
pub trait Observer {
    /// An epoch of `batches` batches begins.
    fn epoch_started(&mut self, _epoch: usize, _batches: usize) {}
    /// Batch `batch` (0-based) of the current epoch is done.
    fn batch_finished(&mut self, _batch: usize) {}
    /// An epoch is done; an error stops training.
    fn epoch_finished(&mut self, _record: &EpochRecord) -> Result<()> {
        Ok(())
    }
}

/// An observer that ignores everything.
impl Observer for () {}

/// A trained network and how it got there.
#[derive(Debug)]
pub struct Trained {
    /// The network, on the plain (non-autodiff) device.
    pub model: TwoLayerNet,
    /// One record per epoch.
    pub history: Vec<EpochRecord>,
}

/// The network and its update rule.
enum Learner {
    /// Hand-derived gradients, plain gradient descent, plain device.
    Manual(TwoLayerNet),
    /// Autodiff gradients and a Burn optimizer, autodiff device.
    Autodiff(TwoLayerNet, ModuleOptimizer),
}

impl Learner {
    /// One gradient step on `x` `(784, m)` and `y` `(10, m)`; returns the batch's mean
    /// loss and logits from before the step.
    fn step(self, x: Tensor<2>, y: Tensor<2>, alpha: f64) -> (Self, Tensor<1>, Tensor<2>) {
        match self {
            Learner::Manual(net) => {
                let fwd = net.forward(x.clone());
                let loss = cross_entropy(fwd.z2.clone(), y.clone());
                let grads = backward_manual(&net, x, y, &fwd);
                (
                    Learner::Manual(net.gradient_descent(&grads, alpha)),
                    loss,
                    fwd.z2,
                )
            }
            Learner::Autodiff(net, mut optim) => {
                let (net, loss, z2) = autodiff_step(net, &mut optim, x, y, alpha);
                (Learner::Autodiff(net, optim), loss, z2)
            }
        }
    }

    /// The network on the plain device, for evaluation and saving.
    fn model(&self) -> TwoLayerNet {
        match self {
            Learner::Manual(net) => net.clone(),
            Learner::Autodiff(net, _) => net.valid(),
        }
    }
}

/// The tensors one training run needs on its device.
struct DeviceData {
    train: MnistTensors,
    valid: Option<MnistTensors>,
    test: MnistTensors,
}

/// Trains `model` (on the plain `device`) on `data` as `config` says.
pub fn train(
    config: &Config,
    model: TwoLayerNet,
    data: &Mnist,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Trained> {
    let tensors = DeviceData {
        train: data.train.to_device(device),
        valid: (!data.valid.is_empty()).then(|| data.valid.to_device(device)),
        test: data.test.to_device(device),
    };
    let mut learner = match config.mode {
        Mode::Manual => Learner::Manual(model),
        Mode::Autodiff => Learner::Autodiff(
            model.to_device(&device.clone().autodiff()).train(),
            optimizer(config.train.optimizer),
        ),
    };
    let n = tensors.train.len();
    let batch = config.train.batch_size.resolve(n).min(n);
    let batches = n.div_ceil(batch);
    let alpha = config.train.learning_rate;
    let epochs = config.train.epochs;
    let mut history = Vec::with_capacity(epochs);
    let mut step = 0;
    for epoch in 1..=epochs {
        observer.epoch_started(epoch, batches);
        let started = Instant::now();
        let order = (batch < n).then(|| shuffled_indices(n, config.seed, epoch, device));
        let mut loss_sum = Tensor::<1>::zeros([1], device);
        let mut correct = Tensor::<1, Int>::zeros([1], device);
        for b in 0..batches {
            let range = b * batch..((b + 1) * batch).min(n);
            let m = range.len();
            let (x_rows, y_rows, labels) = match &order {
                Some(order) => {
                    let idx = order.clone().slice(range);
                    let t = &tensors.train;
                    (
                        t.images.clone().select(0, idx.clone()),
                        t.one_hot.clone().select(0, idx.clone()),
                        t.labels.clone().select(0, idx),
                    )
                }
                None => {
                    let t = &tensors.train;
                    (t.images.clone(), t.one_hot.clone(), t.labels.clone())
                }
            };
            let (next, loss, z2) = learner.step(x_rows.transpose(), y_rows.transpose(), alpha);
            learner = next;
            loss_sum = loss_sum + loss.mul_scalar(m as f64);
            correct = correct + count_correct(z2, labels);
            step += 1;
            observer.batch_finished(b);
        }
        let train = Evaluation {
            loss: loss_sum.into_scalar::<f64>() / n as f64,
            accuracy: correct.into_scalar::<i64>() as f64 / n as f64,
            images: n,
        };
        let train_seconds = started.elapsed().as_secs_f64();
        let eval_started = Instant::now();
        let evaluate_now = epoch.is_multiple_of(config.train.eval_every) || epoch == epochs;
        let (valid, test) = if evaluate_now {
            let model = learner.model();
            (
                tensors.valid.as_ref().map(|v| evaluate(&model, v)),
                Some(evaluate(&model, &tensors.test)),
            )
        } else {
            (None, None)
        };
        let record = EpochRecord {
            epoch,
            step,
            train,
            valid,
            test,
            lr: alpha,
            train_seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
        };
        observer.epoch_finished(&record)?;
        history.push(record);
    }
    Ok(Trained {
        model: learner.model(),
        history,
    })
}

/// A permutation of `0..n` for `epoch`, the same for a given seed on every run and
/// backend (ChaCha8 seeded with `seed`, stream `epoch`), uploaded once per epoch.
pub fn shuffled_indices(n: usize, seed: u64, epoch: usize, device: &Device) -> Tensor<1, Int> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    let mut order: Vec<i64> = (0..n as i64).collect();
    order.shuffle(&mut rng);
    Tensor::from_data(TensorData::new(order, [n]), device)
}

/// How many columns of `(10, m)` logits have their maximum at the label, as a `(1)`
/// tensor left on the device.
fn count_correct(z2: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Int> {
    let predicted: Tensor<1, Int> = z2.argmax(0).squeeze_dim(0);
    predicted.equal(labels).int().sum()
}

/// Images evaluated per forward pass, to bound memory on large hidden layers.
const EVAL_CHUNK: usize = 10_000;

/// Mean loss and accuracy of `model` on `data`.
pub fn evaluate(model: &TwoLayerNet, data: &MnistTensors) -> Evaluation {
    let n = data.len();
    let device = data.images.device();
    let mut loss_sum = Tensor::<1>::zeros([1], &device);
    let mut correct = Tensor::<1, Int>::zeros([1], &device);
    for start in (0..n).step_by(EVAL_CHUNK) {
        let range = start..(start + EVAL_CHUNK).min(n);
        let m = range.len();
        let x = data.images.clone().slice(range.clone()).transpose();
        let y = data.one_hot.clone().slice(range.clone()).transpose();
        let z2 = model.forward(x).z2;
        loss_sum = loss_sum + cross_entropy(z2.clone(), y).mul_scalar(m as f64);
        correct = correct + count_correct(z2, data.labels.clone().slice(range));
    }
    Evaluation {
        loss: loss_sum.into_scalar::<f64>() / n as f64,
        accuracy: correct.into_scalar::<i64>() as f64 / n as f64,
        images: n,
    }
}
