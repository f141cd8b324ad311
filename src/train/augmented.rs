//! Distorted training batches made ahead of the steps: a thread of its own walks the
//! epoch's batches in order and makes each one's images in parallel (on the run's
//! pool, which the steps share), one batch ahead of the step that uses it.
//! Whatever the step leaves of the CPU (its small element-wise operations, a GPU
//! doing the work) goes to the next batch's images. For manual mode's sparse products
//! each part is also listed by its nonzero pixels where it is made, and the batch's
//! lists joined there, so that the step takes them as it takes a plain batch's.
//!
//! The images go to the pool [`PART`] at a time, not a batch at a time: a worker
//! finishes the job it holds before it takes its part of a step's parallel section, so
//! the step's products waited behind a whole batch of images (measured when the steps
//! were still handed to the pool from outside; a worker finishes its job either way).
//! Epochs at hidden 800 with every distortion on, on a 2-core Zen 5, fastest and median
//! of 15–18 epochs (alternated runs of 3 after the first): parts of 8 images 0.64 /
//! 0.76 s, 16 images 0.57–0.59 / 0.62–0.68 s, 32 images 0.47–0.49 / 0.51–0.59 s, 48
//! images 0.47 / 0.52 s, 64 images 0.50 / 0.58 s, a whole batch of 128 0.50–0.54 /
//! 0.56–0.64 s; the same distorted images made beforehand, 0.37–0.42 / 0.41–0.52 s.
//! (On a 2-core Xeon, 16 had looked best, but within its runs' spread of 32's:
//! 1.06–1.44 s against 1.14–1.63 s.)

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

use rayon::Yield;

use crate::IMAGE_PIXELS;
use crate::augment::Augmenter;
use crate::input::Input;
use crate::sparse::{SparseX, nonzeros_of};

/// Batches made ahead: this many wait, made, while the step uses the current one.
const AHEAD: usize = 1;

/// How long a training thread with nothing else to run waits on the channel before it
/// looks at the pool's work again: under half a part's making ([`PART`] images of
/// 3.5–8 µs on one core, 110–260 µs).
const IDLE_WAIT: Duration = Duration::from_micros(50);

/// Images handed to the pool at a time, made in tasks of at least 8
/// ([`crate::augment::EpochAugmenter::batch`]). A step's parallel section waits until
/// the workers have finished the job they are on, tasks split from it included: with a
/// batch's 128 images as one job a step waited for all of them. Of the sizes measured
/// (the module's figures), 32 and 48 were fastest.
const PART: usize = 32;

/// One batch of distorted images.
pub(super) struct MadeBatch {
    /// The images, `m · 784` values.
    pub images: Vec<f32>,
    /// The same images listed by their nonzeros, when the plan asked for it.
    pub listed: Option<SparseX>,
}

/// The batches of one epoch, from a thread that makes them.
pub(super) struct AugmentedBatches<'scope> {
    rx: Receiver<MadeBatch>,
    _maker: ScopedJoinHandle<'scope, ()>,
}

/// What the making thread needs.
pub(super) struct Plan<'a> {
    /// The augmenter.
    pub augmenter: &'a Augmenter,
    /// The run's pool: the images are made there.
    pub pool: &'a rayon::ThreadPool,
    /// The training split's bytes.
    pub pixels: &'a [u8],
    /// The epoch's order of image indices.
    pub order: Vec<usize>,
    /// Images per batch.
    pub batch: usize,
    /// The first batch to make (after a resume, the one to continue from).
    pub first: usize,
    /// The run's seed and the epoch: with the index, they fix each image.
    pub seed: u64,
    /// The epoch.
    pub epoch: usize,
    /// When the steps take a listed `X` (manual mode's sparse products), the hidden
    /// units: each batch large enough for the sparse products to pay is also listed
    /// by its nonzeros, part by part as its images are made, so that the step does
    /// not list them on its own critical path.
    pub list_for: Option<usize>,
}

impl<'scope> AugmentedBatches<'scope> {
    /// Starts making the batches of `plan` from `plan.first` on.
    pub fn start<'env>(scope: &'scope Scope<'scope, 'env>, plan: Plan<'env>) -> Self {
        let (tx, rx) = sync_channel(AHEAD);
        let maker = scope.spawn(move || make(plan, tx));
        Self { rx, _maker: maker }
    }

    /// The next batch; `None` if the maker has stopped (it only stops early by
    /// panicking, which the scope then reports).
    ///
    /// On a thread of a Rayon pool (the training's), the wait runs the pool's pending
    /// work, the images' parts among it: a worker that slept on the channel would hold
    /// up the images it waits for, for ever in a pool of one thread.
    pub fn next(&self) -> Option<MadeBatch> {
        loop {
            match self.rx.try_recv() {
                Ok(images) => return Some(images),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => match rayon::yield_now() {
                    Some(Yield::Executed) => {}
                    // Nothing to run here: the last parts are being made elsewhere.
                    Some(Yield::Idle) => match self.rx.recv_timeout(IDLE_WAIT) {
                        Ok(images) => return Some(images),
                        Err(RecvTimeoutError::Disconnected) => return None,
                        Err(RecvTimeoutError::Timeout) => {}
                    },
                    None => return self.rx.recv().ok(),
                },
            }
        }
    }
}

/// Makes the batches in order until the last, or until the receiver is gone (the
/// epoch stopped early).
fn make(plan: Plan<'_>, tx: SyncSender<MadeBatch>) {
    let epoch = plan.augmenter.epoch(plan.seed, plan.epoch);
    for chunk in plan.order.chunks(plan.batch).skip(plan.first) {
        let list = plan
            .list_for
            .is_some_and(|hidden| Input::sizes_pay(hidden, chunk.len()));
        let mut images = vec![0.0f32; chunk.len() * IMAGE_PIXELS];
        let mut lists = Vec::with_capacity(chunk.len().div_ceil(PART));
        for (part, out) in chunk
            .chunks(PART)
            .zip(images.chunks_mut(PART * IMAGE_PIXELS))
        {
            let listed = plan.pool.install(|| {
                epoch.batch(plan.pixels, part, out);
                list.then(|| nonzeros_of(out))
            });
            lists.extend(listed);
        }
        let listed = list.then(|| plan.pool.install(|| SparseX::from_parts(lists)));
        if tx.send(MadeBatch { images, listed }).is_err() {
            return;
        }
    }
}
