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
use crate::error::{Error, Result};
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// Where training stands: the epoch in progress, how many of its batches are done, and
/// the running sums of its training figures. Together with the seed this is all the
/// loop needs to continue: each epoch's shuffle is derived from `(seed, epoch)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// The optimizer and its state (autodiff mode only).
    pub optimizer: Option<ModuleOptimizer>,
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
            at: Position::START,
            history: Vec::new(),
        }
    }
}

/// A view of the state at a checkpoint, lent to [`Observer::checkpoint`].
pub struct StateRef<'a> {
    /// The network, on the plain device.
    pub model: &'a TwoLayerNet,
    /// The optimizer (autodiff mode only).
    pub optimizer: Option<&'a ModuleOptimizer>,
    /// Where the loop stands.
    pub at: Position,
    /// One record per finished epoch.
    pub history: &'a [EpochRecord],
}

/// Hooks the loop calls as it goes; every method has a default that does nothing.
pub trait Observer {
    /// An epoch of `batches` batches begins (or continues, after a resume).
    fn epoch_started(&mut self, _epoch: usize, _batches: usize) {}
    /// Batch `batch` (0-based) of the current epoch is done.
    fn batch_finished(&mut self, _batch: usize) {}
    /// An epoch is done; an error stops training.
    fn epoch_finished(&mut self, _record: &EpochRecord) -> Result<()> {
        Ok(())
    }
    /// A consistent state to save: after every epoch, and when training stops early
    /// on request. An error stops training.
    fn checkpoint(&mut self, _state: &StateRef<'_>) -> Result<()> {
        Ok(())
    }
    /// Asked after every batch; `true` stops training there (e.g. on Ctrl-C).
    fn stop_requested(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything.
impl Observer for () {}

/// Why training ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ending {
    /// All epochs ran.
    Completed,
    /// [`Observer::stop_requested`] said stop; a checkpoint was offered first.
    Interrupted,
    /// The loss became NaN, infinite or larger than [`DIVERGED_LOSS`] at this (1-based)
    /// gradient step. No checkpoint was offered after it: the last one is the last good
    /// state.
    Diverged {
        /// The first step whose loss was out of bounds.
        step: usize,
        /// That step's loss.
        loss: f64,
    },
}

/// A trained network and how it got there.
#[derive(Debug)]
pub struct Trained {
    /// The network, on the plain (non-autodiff) device.
    pub model: TwoLayerNet,
    /// One record per epoch, those before a resume included.
    pub history: Vec<EpochRecord>,
    /// Why training ended.
    pub ending: Ending,
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
                    Learner::Manual(net.gradient_descent(grads, alpha)),
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

    fn optimizer(&self) -> Option<&ModuleOptimizer> {
        match self {
            Learner::Manual(_) => None,
            Learner::Autodiff(_, optim) => Some(optim),
        }
    }
}

/// The tensors one training run needs on its device.
struct DeviceData {
    train: MnistTensors,
    valid: Option<MnistTensors>,
    test: MnistTensors,
}

/// A mean cross-entropy above this many nats means training has blown up: the network
/// gives the right digit a probability below e⁻¹⁰⁰ on average. A fresh network starts
/// near ln 10 ≈ 2.3 (He init) or below 20 (uniform init), and gradient descent lowers
/// it; a learning rate far too high instead sends it to hundreds or thousands, where
/// dead ReLUs can hold it finite forever, so NaN alone is not a good enough signal.
pub const DIVERGED_LOSS: f32 = 100.0;

/// Steps between checks of the loss for divergence. Each check reads the window's losses
/// back from the device once, so the loop does not wait on the device every step.
pub const DIVERGENCE_WINDOW: usize = 16;

/// Trains `model` (on the plain `device`) on `data` as `config` says, from the start.
pub fn train(
    config: &Config,
    model: TwoLayerNet,
    data: &Mnist,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Trained> {
    train_from(config, TrainState::new(model), data, device, observer)
}

/// Trains from `state` (a fresh start or a checkpoint) until `config.train.epochs`
/// epochs are done, a stop is requested, or the loss diverges.
pub fn train_from(
    config: &Config,
    state: TrainState,
    data: &Mnist,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Trained> {
    let tensors = DeviceData {
        train: data.train.to_device(device),
        valid: (!data.valid.is_empty()).then(|| data.valid.to_device(device)),
        test: data.test.to_device(device),
    };
    let TrainState {
        model,
        optimizer: saved_optimizer,
        mut at,
        mut history,
    } = state;
    let mut learner = match config.mode {
        Mode::Manual => Learner::Manual(model),
        Mode::Autodiff => Learner::Autodiff(
            model.to_device(&device.clone().autodiff()).train(),
            saved_optimizer.unwrap_or_else(|| optimizer(config.train.optimizer)),
        ),
    };
    let n = tensors.train.len();
    let batch = config.train.batch_size.resolve(n).min(n);
    let batches = n.div_ceil(batch);
    let alpha = config.train.learning_rate;
    let epochs = config.train.epochs;
    // Full batch: every step takes all the images in order, so their bands are joined
    // once rather than at every step.
    let whole = (batch >= n).then(|| tensors.train.images_in(0..n));
    while at.epoch <= epochs {
        let epoch = at.epoch;
        observer.epoch_started(epoch, batches);
        let started = Instant::now();
        // The epoch's order. The labels are put in that order once, so that a batch's
        // labels are a range of them; each batch's images are gathered as it comes.
        let train = &tensors.train;
        let order = (batch < n).then(|| shuffled_indices(n, config.seed, epoch, device));
        let (one_hot, labels) = match &order {
            Some(order) => train.permuted_labels(order.clone()),
            None => (train.one_hot.clone(), train.labels.clone()),
        };
        let mut tally = Tally::resume(&at);
        for b in at.batch..batches {
            let range = b * batch..((b + 1) * batch).min(n);
            let x_rows = match (&whole, &order) {
                (Some(x), _) => x.clone(),
                (None, Some(order)) => train.images_at(order.clone().slice(range.clone())),
                (None, None) => train.images_in(range.clone()),
            };
            let y_rows = one_hot.clone().slice(range.clone());
            let (next, loss, z2) = learner.step(x_rows.transpose(), y_rows.transpose(), alpha);
            learner = next;
            tally.push(loss, z2, range);
            at.step += 1;
            at.batch = b + 1;
            observer.batch_finished(b);
            let last = b + 1 == batches;
            let stop = !last && observer.stop_requested();
            if tally.pending() == DIVERGENCE_WINDOW || last || stop {
                // The window holds the losses of steps `first ..= at.step`.
                let first = at.step + 1 - tally.pending();
                if let Some((k, loss)) = tally.settle(&labels, first)? {
                    return Ok(Trained {
                        model: learner.model(),
                        history,
                        ending: Ending::Diverged {
                            step: first + k,
                            loss,
                        },
                    });
                }
            }
            if stop {
                at.loss_sum = tally.loss_sum;
                at.correct = tally.correct;
                at.seconds += started.elapsed().as_secs_f64();
                let model = learner.model();
                observer.checkpoint(&StateRef {
                    model: &model,
                    optimizer: learner.optimizer(),
                    at,
                    history: &history,
                })?;
                return Ok(Trained {
                    model,
                    history,
                    ending: Ending::Interrupted,
                });
            }
        }
        let train = Evaluation {
            loss: tally.loss_sum / n as f64,
            accuracy: tally.correct as f64 / n as f64,
            images: n,
        };
        let train_seconds = at.seconds + started.elapsed().as_secs_f64();
        let eval_started = Instant::now();
        let model = learner.model();
        let evaluate_now = epoch.is_multiple_of(config.train.eval_every) || epoch == epochs;
        let (valid, test) = if evaluate_now {
            (
                tensors
                    .valid
                    .as_ref()
                    .map(|v| evaluate(&model, v))
                    .transpose()?,
                Some(evaluate(&model, &tensors.test)?),
            )
        } else {
            (None, None)
        };
        let record = EpochRecord {
            epoch,
            step: at.step,
            train,
            valid,
            test,
            lr: alpha,
            train_seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
        };
        observer.epoch_finished(&record)?;
        history.push(record);
        at = Position::after_epoch(epoch, at.step);
        observer.checkpoint(&StateRef {
            model: &model,
            optimizer: learner.optimizer(),
            at,
            history: &history,
        })?;
        if epoch < epochs && observer.stop_requested() {
            return Ok(Trained {
                model,
                history,
                ending: Ending::Interrupted,
            });
        }
    }
    Ok(Trained {
        model: learner.model(),
        history,
        ending: Ending::Completed,
    })
}

/// The running loss and accuracy of an epoch. Each step's loss and predictions stay on
/// the device until [`DIVERGENCE_WINDOW`] steps have gathered; they are then read back
/// together, so the loop does not wait on the device at every step.
struct Tally {
    /// Σ (batch mean loss × batch size) over the settled batches.
    loss_sum: f64,
    /// Correct predictions over the settled batches.
    correct: i64,
    /// Unsettled steps: the mean loss `(1)`, the predicted digits `(1, m)` and the
    /// batch's rows of the epoch's data.
    pending: Vec<(Tensor<1>, Tensor<2, Int>, std::ops::Range<usize>)>,
}

impl Tally {
    /// Continues from the sums saved in `at`.
    fn resume(at: &Position) -> Self {
        Self {
            loss_sum: at.loss_sum,
            correct: at.correct,
            pending: Vec::with_capacity(DIVERGENCE_WINDOW),
        }
    }

    /// Adds a step's loss and logits `(10, m)` for the rows `range` of the epoch's data.
    fn push(&mut self, loss: Tensor<1>, z2: Tensor<2>, range: std::ops::Range<usize>) {
        self.pending.push((loss, z2.argmax(0), range));
    }

    /// Steps not yet read back.
    fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Reads the pending steps back (`labels`: the epoch's labels, in its order) and
    /// adds them to the sums. Returns the 0-based index and value of the first loss
    /// that is NaN, infinite or above [`DIVERGED_LOSS`], if any; `first` is the first
    /// pending step, for the error should the device fail.
    fn settle(&mut self, labels: &Tensor<1, Int>, first: usize) -> Result<Option<(usize, f64)>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let last = first + self.pending.len() - 1;
        let during = || {
            if last > first {
                format!("training (steps {first} to {last})")
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
            .map(|k| (k, f64::from(losses[k]))))
    }
}

/// A one-element tensor's value, or the device's failure as an [`Error::Device`].
fn read<E: burn::tensor::Element, K: burn::tensor::kind::Basic>(
    t: Tensor<1, K>,
    during: &str,
) -> Result<E> {
    t.try_into_scalar::<E>()
        .map_err(|e| Error::device(during, e))
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
pub fn evaluate(model: &TwoLayerNet, data: &MnistTensors) -> Result<Evaluation> {
    let n = data.len();
    let device = data.labels.device();
    let mut loss_sum = Tensor::<1>::zeros([1], &device);
    let mut correct = Tensor::<1, Int>::zeros([1], &device);
    for start in (0..n).step_by(EVAL_CHUNK) {
        let range = start..(start + EVAL_CHUNK).min(n);
        let m = range.len();
        let x = data.images_in(range.clone()).transpose();
        let y = data.one_hot.clone().slice(range.clone()).transpose();
        let z2 = model.forward(x).z2;
        loss_sum = loss_sum + cross_entropy(z2.clone(), y).mul_scalar(m as f64);
        correct = correct + count_correct(z2, data.labels.clone().slice(range));
    }
    Ok(Evaluation {
        loss: read::<f64, _>(loss_sum, "evaluating")? / n as f64,
        accuracy: read::<i64, _>(correct, "evaluating")? as f64 / n as f64,
        images: n,
    })
}
