//! The training loop: mini-batches gathered from device tensors in each epoch's
//! shuffled order, the manual or the autodiff update ([`Learner`]), and per-epoch
//! metrics. It reports through an [`Observer`] and prints nothing itself.
//!
//! What a checkpoint saves ([`TrainState`], [`Position`], [`EpochRecord`]) is in
//! `state.rs`; the running figures of an epoch, read back once per
//! [`DIVERGENCE_WINDOW`] steps, in `tally.rs`.

mod augmented;
mod state;
mod stopping;
mod tally;

use std::ops::Range;
use std::time::Instant;

use burn::prelude::*;
use burn_dispatch::DispatchDevice;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub use state::{EpochRecord, Position, StateRef, TrainState};
pub use stopping::{EarlyStop, early_stop, is_best, seconds_until};

use self::augmented::{AugmentedBatches, MadeBatch, Plan};
use self::tally::{Blowup, Tally};
use crate::IMAGE_PIXELS;
use crate::augment::Augmenter;
use crate::blocks::{Block, block_ranges, images_per_block};
use crate::config::{Config, Mode};
use crate::data::mnist::tensor_limit;
use crate::data::{Mnist, MnistTensors};
use crate::error::{Error, Result};
use crate::eval::{Evaluation, evaluate};
use crate::input::{Input, SPARSE_DENSITY};
use crate::learner::Learner;
use crate::model::TwoLayerNet;
use crate::nonzeros::SplitNonzeros;
use crate::schedule::Schedule;
use crate::sparse::SparseX;

/// Hooks the loop calls as it goes; every method has a default that does nothing.
/// `Send`: the loop, and so every call, runs on a thread of the run's own pool
/// ([`crate::pool::training_pool`]).
pub trait Observer: Send {
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
    /// Asked before gradient step `step` (1-based): whether to be shown it closely
    /// ([`Observer::look`]). Looking costs a copy of the network's handles and whatever
    /// the observer reads back, so it is for every so often, not every step.
    fn wants_look(&mut self, _step: usize) -> bool {
        false
    }
    /// A gradient step shown closely: the network before and after it, its batch and
    /// rate (after [`Observer::wants_look`] said yes).
    fn look(&mut self, _look: &Look<'_>) {}
}

/// One gradient step, for an observer to look at ([`Observer::look`]).
#[derive(Debug)]
pub struct Look<'a> {
    /// The step, 1-based over the run.
    pub step: usize,
    /// The epoch, 1-based.
    pub epoch: usize,
    /// The batch within the epoch, 0-based.
    pub batch: usize,
    /// The network the step started from.
    pub before: &'a TwoLayerNet,
    /// The network it made.
    pub after: &'a TwoLayerNet,
    /// `X`, `(784, m)`: the batch's images, one per column (when the batch was too
    /// large for the device in one piece, its first column block: see
    /// [`crate::blocks`]).
    pub x: &'a Tensor<2>,
    /// `Y`, `(10, m)`: their one-hot labels.
    pub y: &'a Tensor<2>,
    /// The images in the step's batch (`x`'s columns unless it was split in blocks).
    pub images: usize,
    /// The batch's mean loss before the step (one value).
    pub loss: &'a Tensor<1>,
    /// The learning rate of the step.
    pub rate: f64,
}

/// An observer that ignores everything.
impl Observer for () {}

/// Why training ended.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Ending {
    /// All epochs ran.
    Completed,
    /// [`Observer::stop_requested`] said stop; a checkpoint was offered first.
    Interrupted,
    /// A rule of the config (`train.target_accuracy`, `train.patience`) stopped the run
    /// after an epoch before the last; a checkpoint was offered first.
    Stopped(EarlyStop),
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
///
/// The run goes on a thread of a pool of its own ([`crate::pool::training_pool`]), which
/// also flushes subnormal floats to zero (Adam's moments of blank pixels' weights shrink
/// through that range, where x86 CPUs take a microcode assist per operation); the
/// observer is called there.
pub fn train_from(
    config: &Config,
    state: TrainState,
    data: &Mnist,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Trained> {
    let pool = crate::pool::training_pool()?;
    pool.install(|| train_on(config, state, data, device, observer, &pool))
}

/// [`train_from`] on a thread of `pool`, the run's own.
fn train_on(
    config: &Config,
    state: TrainState,
    data: &Mnist,
    device: &Device,
    observer: &mut dyn Observer,
    pool: &rayon::ThreadPool,
) -> Result<Trained> {
    let epoch_data = EpochData::upload(config, data, device, pool)?;
    let TrainState {
        model,
        optimizer,
        velocity,
        moments,
        mut at,
        mut history,
    } = state;
    let mut learner = Learner::for_config(config, model, optimizer, velocity, moments, device);
    let epochs = config.train.epochs;
    let ending = loop {
        if at.epoch > epochs {
            break Ending::Completed;
        }
        if at.batch == 0
            && let Some(stop) = early_stop(&config.train, &history)
        {
            break Ending::Stopped(stop);
        }
        let epoch = at.epoch;
        let (next, end) = epoch_data.run(learner, &mut at, observer)?;
        learner = next;
        match end {
            EpochEnd::Diverged(Blowup { step, loss }) => break Ending::Diverged { step, loss },
            EpochEnd::Stopped => {
                offer_checkpoint(observer, &learner, at, &history)?;
                break Ending::Interrupted;
            }
            EpochEnd::Finished { train, seconds } => {
                let evaluate_now = epoch.is_multiple_of(config.train.eval_every) || epoch == epochs;
                let mut record =
                    epoch_data.record(&learner, epoch, at.step, train, seconds, evaluate_now)?;
                // The first epoch to reach the target (an earlier one would have
                // stopped the run already).
                let target = config.train.target_accuracy;
                if target.is_some_and(|t| record.valid.is_some_and(|v| v.accuracy >= t)) {
                    record.to_target_s = Some(
                        seconds_until(&history, epoch) + record.train_seconds + record.eval_seconds,
                    );
                }
                observer.epoch_finished(&record)?;
                history.push(record);
                at = Position::after_epoch(epoch, at.step);
                offer_checkpoint(observer, &learner, at, &history)?;
                if at.epoch <= epochs && observer.stop_requested() {
                    break Ending::Interrupted;
                }
            }
        }
    };
    Ok(Trained {
        model: learner.model(),
        history,
        ending,
    })
}

/// Lends the observer the state to save.
fn offer_checkpoint(
    observer: &mut dyn Observer,
    learner: &Learner,
    at: Position,
    history: &[EpochRecord],
) -> Result<()> {
    observer.checkpoint(&StateRef {
        model: &learner.model(),
        optimizer: learner.optimizer(),
        velocity: learner.velocity(),
        moments: learner.moments(),
        at,
        history,
    })
}

/// How an epoch's batches ended.
enum EpochEnd {
    /// Every batch was done; the running figures and the seconds of its steps.
    Finished {
        /// Running loss and accuracy over the epoch.
        train: Evaluation,
        /// Seconds of gradient steps, before a resume included.
        seconds: f64,
    },
    /// A stop was requested; `at` holds the running sums so far.
    Stopped,
    /// A loss blew up.
    Diverged(Blowup),
}

/// Everything an epoch needs: the splits on the device and the run's settings.
struct EpochData<'a> {
    train: MnistTensors,
    valid: Option<MnistTensors>,
    test: MnistTensors,
    device: &'a Device,
    /// Full batch: every step takes all the images in order, so their bands are
    /// joined once, per column block, rather than at every step.
    whole: Option<Vec<Tensor<2>>>,
    /// The most images of a step's column block ([`crate::blocks`]): a batch larger
    /// than the device takes in one piece is stepped block by block.
    per_block: usize,
    /// Images per step.
    batch: usize,
    /// Steps per epoch.
    batches: usize,
    /// The base rate `α` and how it changes.
    alpha: f64,
    schedule: Schedule,
    /// Steps in the whole run, for the schedule.
    total_steps: usize,
    seed: u64,
    /// The training images' distortion and bytes, when augmenting.
    augment: Option<(Augmenter, &'a [u8])>,
    /// The run's pool, where the images are made.
    pool: &'a rayon::ThreadPool,
    /// Each training image's nonzero pixels, listed once, when the steps take the sparse
    /// products on shuffled batches ([`crate::nonzeros`]).
    nonzeros: Option<SplitNonzeros>,
}

impl<'a> EpochData<'a> {
    /// Uploads `data` to `device` for training as `config` says.
    fn upload(
        config: &Config,
        data: &'a Mnist,
        device: &'a Device,
        pool: &'a rayon::ThreadPool,
    ) -> Result<Self> {
        let n = data.train.len();
        if n == 0 {
            return Err(Error::NoImages { what: "training" });
        }
        let train = data.train.to_device(device);
        let batch = config.train.batch_size.resolve(n).clamp(1, n);
        // (Augmented batches are made on the host, so they need no joined copy.)
        let per_block = images_per_block(tensor_limit(device), config.model.hidden);
        let whole = (batch >= n && config.train.augment.is_off()).then(|| {
            block_ranges(0..n, per_block)
                .into_iter()
                .map(|range| train.images_in(range))
                .collect()
        });
        let listed = config.mode == Mode::Manual
            && config.train.sparse_input
            && config.train.augment.is_off()
            && batch < n
            && per_block >= batch
            && Input::sizes_pay(config.model.hidden, batch)
            && matches!(device.as_dispatch(), DispatchDevice::Flex(_));
        Ok(Self {
            nonzeros: listed.then(|| SplitNonzeros::of(&data.train.pixels)),
            train,
            valid: (!data.valid.is_empty()).then(|| data.valid.to_device(device)),
            test: data.test.to_device(device),
            device,
            whole,
            per_block,
            batch,
            batches: n.div_ceil(batch),
            alpha: config.train.learning_rate,
            schedule: config.train.schedule,
            total_steps: n.div_ceil(batch) * config.train.epochs,
            seed: config.seed,
            augment: (!config.train.augment.is_off()).then(|| {
                (
                    Augmenter::new(config.train.augment),
                    data.train.pixels.as_slice(),
                )
            }),
            pool,
        })
    }

    /// The batches of epoch `at.epoch` from `at.batch` on: steps `learner` through
    /// them, advancing `at`.
    fn run(
        &self,
        learner: Learner,
        at: &mut Position,
        observer: &mut dyn Observer,
    ) -> Result<(Learner, EpochEnd)> {
        let n = self.train.len();
        // The epoch's order. The labels are put in that order once, so that a batch's
        // labels are a range of them; each batch's images are gathered (or made, when
        // augmenting) as it comes.
        let order = (self.batch < n).then(|| shuffled_order(n, self.seed, at.epoch));
        let Some((augmenter, pixels)) = &self.augment else {
            return self.steps(learner, at, observer, order, None);
        };
        std::thread::scope(|scope| {
            let plan = Plan {
                augmenter,
                pixels,
                pool: self.pool,
                order: order.clone().unwrap_or_else(|| (0..n).collect()),
                batch: self.batch,
                first: at.batch,
                seed: self.seed,
                epoch: at.epoch,
                list_for: (learner.takes_sparse()
                    && self.per_block >= self.batch
                    && matches!(self.device.as_dispatch(), DispatchDevice::Flex(_)))
                .then(|| learner.hidden()),
            };
            let made = AugmentedBatches::start(scope, plan);
            self.steps(learner, at, observer, order, Some(&made))
        })
    }

    /// [`EpochData::run`] once the order (`None`: the split's own) and the source of
    /// distorted images, if any, are known.
    fn steps(
        &self,
        mut learner: Learner,
        at: &mut Position,
        observer: &mut dyn Observer,
        order: Option<Vec<usize>>,
        made: Option<&AugmentedBatches<'_>>,
    ) -> Result<(Learner, EpochEnd)> {
        let (n, batch, batches) = (self.train.len(), self.batch, self.batches);
        observer.epoch_started(at.epoch, batches);
        let started = Instant::now();
        let host_order = order.as_ref().filter(|_| self.nonzeros.is_some()).cloned();
        let order = order.map(|o| upload_order(&o, self.device));
        let (one_hot, labels) = match &order {
            Some(order) => self.train.permuted_labels(order.clone()),
            None => (self.train.one_hot.clone(), self.train.labels.clone()),
        };
        let mut tally = Tally::resume(at);
        // The next batch's listed `X`, made during the step before it.
        let mut next_listed: Option<(usize, Option<SparseX>)> = None;
        for b in at.batch..batches {
            let range = b * batch..((b + 1) * batch).min(n);
            let alpha = self.rate(at.step);
            let wants_look = observer.wants_look(at.step + 1);
            let hidden = learner.hidden();
            let mut made_now = made
                .map(|m| m.next().ok_or(Error::Augmentation))
                .transpose()?;
            let listed = match (&mut made_now, &host_order, learner.takes_sparse()) {
                (Some(MadeBatch { listed, .. }), _, true) => {
                    listed.take().filter(|x| x.density() <= SPARSE_DENSITY)
                }
                (None, Some(order), true) => match next_listed.take() {
                    Some((listed_for, x)) if listed_for == b => x,
                    _ => self.listed(&order[range.clone()], hidden),
                },
                _ => None,
            };
            let made_now = made_now.map(|m| m.images);
            let (looking, (next, loss, z2)) = match listed {
                Some(x) => {
                    let y = one_hot.clone().slice(range.clone()).transpose();
                    // The live page's look at the step needs the images themselves.
                    let looking = if wants_look {
                        let whole = [range.clone()];
                        let mut rows = self.batch_rows(&range, &whole, made_now, order.as_ref());
                        Some((learner.model(), rows.swap_remove(0).transpose(), y.clone()))
                    } else {
                        None
                    };
                    let next_images = host_order
                        .as_deref()
                        .filter(|_| b + 1 < batches)
                        .map(|order| &order[range.end..((b + 2) * batch).min(n)]);
                    let listed_next = &mut next_listed;
                    // Listing the next batch takes a worker of the pool while this thread
                    // runs the step's serial part (the loss and most of the backward pass).
                    let awake = crate::pool::KeepAwake::new();
                    let step = rayon::in_place_scope(|scope| {
                        // The other workers wait for the step's sections awake.
                        let _awake = awake.start(scope);
                        learner.step_sparse_then(x, y, alpha, || {
                            if let Some(images) = next_images {
                                scope.spawn(move |_| {
                                    *listed_next = Some((b + 1, self.listed(images, hidden)));
                                });
                            }
                        })
                    });
                    (looking, step)
                }
                None => {
                    let ranges = block_ranges(range.clone(), self.per_block);
                    let rows = self.batch_rows(&range, &ranges, made_now, order.as_ref());
                    let blocks: Vec<Block> = rows
                        .into_iter()
                        .zip(&ranges)
                        .map(|(x_rows, r)| Block {
                            x: x_rows.transpose(),
                            y: one_hot.clone().slice(r.clone()).transpose(),
                        })
                        .collect();
                    let looking = wants_look
                        .then(|| (learner.model(), blocks[0].x.clone(), blocks[0].y.clone()));
                    (looking, learner.step_blocks(blocks, alpha))
                }
            };
            learner = next;
            if let Some((before, x, y)) = looking {
                observer.look(&Look {
                    step: at.step + 1,
                    epoch: at.epoch,
                    batch: b,
                    before: &before,
                    after: &learner.model(),
                    x: &x,
                    y: &y,
                    images: range.len(),
                    loss: &loss,
                    rate: alpha,
                });
            }
            tally.push(loss, z2, range);
            at.step += 1;
            at.batch = b + 1;
            observer.batch_finished(b);
            let last = b + 1 == batches;
            let stop = !last && observer.stop_requested();
            if (tally.pending() == DIVERGENCE_WINDOW || last || stop)
                && let Some(blowup) = tally.settle(&labels, at.step)?
            {
                return Ok((learner, EpochEnd::Diverged(blowup)));
            }
            if stop {
                at.loss_sum = tally.loss_sum;
                at.correct = tally.correct;
                at.seconds += started.elapsed().as_secs_f64();
                return Ok((learner, EpochEnd::Stopped));
            }
        }
        let train = Evaluation {
            loss: tally.loss_sum / n as f64,
            accuracy: tally.correct as f64 / n as f64,
            images: n,
        };
        let seconds = at.seconds + started.elapsed().as_secs_f64();
        Ok((learner, EpochEnd::Finished { train, seconds }))
    }

    /// The batch of the images `range` of the epoch's order as `(m, 784)` rows, one
    /// tensor per column block of `ranges` (`range` split): made by the augmenter
    /// (`made`, `m · 784` values), the whole split joined once, or gathered in `order`
    /// (`None`: the split's own).
    fn batch_rows(
        &self,
        range: &Range<usize>,
        ranges: &[Range<usize>],
        made: Option<Vec<f32>>,
        order: Option<&Tensor<1, Int>>,
    ) -> Vec<Tensor<2>> {
        match (made, &self.whole, order) {
            (Some(images), _, _) => self.upload_rows(images, range.start, ranges),
            (None, Some(blocks), _) => blocks.clone(),
            (None, None, Some(order)) => ranges
                .iter()
                .map(|r| self.train.images_at(order.clone().slice(r.clone())))
                .collect(),
            (None, None, None) => ranges
                .iter()
                .map(|r| self.train.images_in(r.clone()))
                .collect(),
        }
    }

    /// The images `images` (indices into the training split) as a sparse `X`, from
    /// their nonzeros listed once; `None` when they are not listed, or the batch is too
    /// small or too dense for the sparse products to pay ([`Input::for_batch`]'s rule).
    fn listed(&self, images: &[usize], hidden: usize) -> Option<SparseX> {
        let nonzeros = self.nonzeros.as_ref()?;
        let m = images.len();
        let dense = nonzeros.count(images) as f64 > SPARSE_DENSITY * (IMAGE_PIXELS * m) as f64;
        (Input::sizes_pay(hidden, m) && !dense).then(|| nonzeros.batch(images))
    }

    /// The distorted `images` of a batch starting at image `first`, `(m, 784)` on the
    /// host, uploaded as one tensor per range of `ranges`.
    fn upload_rows(
        &self,
        images: Vec<f32>,
        first: usize,
        ranges: &[Range<usize>],
    ) -> Vec<Tensor<2>> {
        let upload = |pixels: Vec<f32>, rows: usize| {
            Tensor::from_data(TensorData::new(pixels, [rows, IMAGE_PIXELS]), self.device)
        };
        if let [range] = ranges {
            return vec![upload(images, range.len())];
        }
        ranges
            .iter()
            .map(|r| {
                let part = (r.start - first) * IMAGE_PIXELS..(r.end - first) * IMAGE_PIXELS;
                upload(images[part].to_vec(), r.len())
            })
            .collect()
    }

    /// The rate of the 0-based step `t`.
    fn rate(&self, t: usize) -> f64 {
        self.schedule
            .rate(self.alpha, t, self.batches, self.total_steps)
    }

    /// The record of a finished epoch, with the validation and test figures when
    /// `evaluate_now`.
    fn record(
        &self,
        learner: &Learner,
        epoch: usize,
        step: usize,
        train: Evaluation,
        train_seconds: f64,
        evaluate_now: bool,
    ) -> Result<EpochRecord> {
        let eval_started = Instant::now();
        let (valid, test) = if evaluate_now {
            let model = learner.model();
            let valid = self
                .valid
                .as_ref()
                .map(|v| evaluate(&model, v))
                .transpose()?;
            (valid, Some(evaluate(&model, &self.test)?))
        } else {
            (None, None)
        };
        Ok(EpochRecord {
            epoch,
            step,
            train,
            valid,
            test,
            lr: self.rate(step - 1),
            train_seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
            to_target_s: None,
        })
    }
}

/// A permutation of `0..n` for `epoch`, the same for a given seed on every run and
/// backend (ChaCha8 seeded with `seed`, stream `epoch`).
pub fn shuffled_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}

/// [`shuffled_order`] uploaded to `device`, once per epoch.
pub fn shuffled_indices(n: usize, seed: u64, epoch: usize, device: &Device) -> Tensor<1, Int> {
    upload_order(&shuffled_order(n, seed, epoch), device)
}

/// An order of image indices as a tensor on `device`.
fn upload_order(order: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = order.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [order.len()]), device)
}
