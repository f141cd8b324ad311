//! Training throughput of one configuration, measured three ways so that the time of
//! an epoch can be split into its parts:
//!
//! - **epoch**: the library's own loop ([`mnist_nn::train::train`]): shuffle, gather each
//!   batch from the device tensors, step, and the running loss and accuracy;
//! - **steps**: the same steps on batches gathered beforehand, so only the network's
//!   forward, backward and update are timed;
//! - **matmul**: the five matrix products of each step alone, on tensors of the same
//!   shapes: the time the backend's GEMM needs, whatever else is done.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use burn::prelude::*;
use mnist_nn::augment::{Augment, Augmenter};
use mnist_nn::autodiff::optimizer;
use mnist_nn::backend::BackendKind;
use mnist_nn::blocks::{Block, block_ranges, images_per_block};
use mnist_nn::config::{Config, Mode, OptimizerKind};
use mnist_nn::data::Mnist;
use mnist_nn::data::mnist::tensor_limit;
use mnist_nn::learner::Learner;
use mnist_nn::model::{Init, TwoLayerNet};
use mnist_nn::sparse::Kernels;
use mnist_nn::train::{Ending, shuffled_indices, train};
use mnist_nn::{IMAGE_PIXELS, NUM_CLASSES};

use crate::median;

/// Learning rate of every timed run: small enough that no configuration diverges (the
/// loop would stop early), and the time of a step does not depend on it.
const ALPHA: f64 = 0.01;

/// One configuration to time.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The backend.
    pub backend: BackendKind,
    /// Manual or autodiff gradients (autodiff with plain SGD).
    pub mode: Mode,
    /// Hidden units.
    pub hidden: usize,
    /// Images per step; `None` is the full batch.
    pub batch: Option<usize>,
}

/// Medians of one configuration, in seconds per epoch of the training images.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The library's training loop, shuffle and batching included.
    pub epoch: f64,
    /// Evaluating the 10,000 test images once (reported apart from the epoch).
    pub eval: f64,
    /// Forward, backward and update alone, on batches gathered beforehand.
    pub steps: f64,
    /// The five matrix products of each step alone.
    pub matmul: f64,
    /// GFLOP/s of a square GEMM ([`gemm_side`]) on the same backend, measured just
    /// before this case.
    pub gemm: f64,
    /// GFLOP/s of the FMA peak, measured just before this case (x86-64 with FMA only).
    pub fma: Option<f64>,
}

/// Floating-point operations of the five matrix products of one epoch of `n` images:
/// forward `W1·X` and `W2·A1`, backward `dZ2·A1ᵀ`, `W2ᵀ·dZ2` and `dZ1·Xᵀ`, each
/// `2·rows·inner·cols`. Element-wise work (bias, ReLU, softmax, update) is left out:
/// it is under 1% of these for 128 hidden units and more.
pub fn flop_per_epoch(hidden: usize, n: usize) -> f64 {
    let (h, p, c, n) = (
        hidden as f64,
        IMAGE_PIXELS as f64,
        NUM_CLASSES as f64,
        n as f64,
    );
    2.0 * n * h * (2.0 * p + 3.0 * c)
}

/// The side of the square GEMM that stands for `backend`'s ceiling: 2048 on a CPU
/// (about 0.1 s there), 4096 on a GPU (2048 is too small to fill a large one).
pub fn gemm_side(backend: BackendKind) -> usize {
    if backend == BackendKind::Wgpu {
        4096
    } else {
        2048
    }
}

/// Times `case` on `data` (all of whose training images make an epoch): `reps` epochs
/// of each kind after one warm-up epoch, preceded by the machine's limits (GEMM on the
/// same backend, FMA peak on `threads` threads), so that the fraction of the ceiling
/// compares figures taken minutes apart at most.
pub fn time_case(case: Case, data: &Mnist, reps: usize, threads: usize) -> anyhow::Result<Timing> {
    let device = case.backend.device()?;
    let fma = crate::machine::fma_peak(threads);
    let side = gemm_side(case.backend);
    let gemm = crate::machine::gemm_gflops(&device, [side, side, side], reps);
    let (epoch, eval) = epochs(case, data, &device, reps)?;
    // On a pool's thread, as the loop's steps run (`mnist_nn::pool::training_pool`).
    let pool = mnist_nn::pool::training_pool()?;
    let steps = pool.install(|| steps_only(case, data, &device, reps))?;
    let matmul = pool.install(|| matmul_only(case, data.train.len(), &device, reps))?;
    Ok(Timing {
        epoch,
        eval,
        steps,
        matmul,
        gemm,
        fma,
    })
}

/// `1 + reps` epochs of the library's loop; the medians of the epochs after the first
/// (training seconds as the loop measures them) and the final evaluation's seconds.
fn epochs(case: Case, data: &Mnist, device: &Device, reps: usize) -> anyhow::Result<(f64, f64)> {
    epochs_with(case, data, device, reps, "", "")
}

/// [`epochs`] with `train_keys` added to the run's `[train]` table and `extra` appended
/// to its config.
fn epochs_with(
    case: Case,
    data: &Mnist,
    device: &Device,
    reps: usize,
    train_keys: &str,
    extra: &str,
) -> anyhow::Result<(f64, f64)> {
    let epochs = 1 + reps;
    let batch = case
        .batch
        .map_or_else(|| "\"full\"".to_string(), |b| b.to_string());
    let text = format!(
        "name = \"bench\"\nseed = 1\nmode = \"{mode}\"\nbackend = \"{backend}\"\n\
         [model]\nhidden = {hidden}\ninit = \"he\"\n\
         [train]\nepochs = {epochs}\nbatch_size = {batch}\nlearning_rate = {ALPHA}\n\
         optimizer = \"sgd\"\neval_every = {epochs}\n{train_keys}\
         [data]\ndir = \"unused\"\nvalidation = 0\n{extra}",
        mode = case.mode,
        backend = case.backend,
        hidden = case.hidden,
    );
    let config = Config::parse(&text, Path::new("bench.toml"))?;
    let model = TwoLayerNet::new(case.hidden, Init::He, 1, device);
    let trained = train(&config, model, data, device, &mut ())?;
    if trained.ending != Ending::Completed {
        anyhow::bail!("{case:?} did not complete: {:?}", trained.ending);
    }
    let timed: Vec<f64> = trained.history[1..]
        .iter()
        .map(|r| r.train_seconds)
        .collect();
    let eval = trained.history.last().map_or(f64::NAN, |r| r.eval_seconds);
    Ok((median(timed), eval))
}

/// Medians of `reps` epochs of steps on batches gathered before the clock starts (in
/// one shuffled order, transposed as the loop does), after a warm-up epoch. Each step
/// lists its batch's nonzeros itself (the loop lists the next batch's during a step).
fn steps_only(case: Case, data: &Mnist, device: &Device, reps: usize) -> anyhow::Result<f64> {
    let t = data.train.to_device(device);
    let n = t.len();
    let b = case.batch.unwrap_or(n).min(n);
    let order = shuffled_indices(n, 1, 1, device);
    // A batch larger than the device holds in one piece goes in column blocks, as the
    // loop steps it.
    let per_block = images_per_block(tensor_limit(device), case.hidden);
    let batches: Vec<Vec<Block>> = (0..n.div_ceil(b))
        .map(|i| {
            block_ranges(i * b..((i + 1) * b).min(n), per_block)
                .into_iter()
                .map(|range| {
                    let idx = order.clone().slice(range);
                    Block {
                        x: t.images_at(idx.clone()).transpose(),
                        y: t.one_hot.clone().select(0, idx).transpose(),
                    }
                })
                .collect()
        })
        .collect();
    let model = TwoLayerNet::new(case.hidden, Init::He, 1, device);
    let mut learner = match case.mode {
        Mode::Manual => Learner::manual(model),
        _ => Learner::autodiff(model, optimizer(OptimizerKind::Sgd), device),
    };
    // On a worker of a pool of the run's kind, as the loop steps
    // (`mnist_nn::pool::training_pool`): from outside a pool each parallel section
    // wakes the workers and puts this thread to sleep, which on a 2-core Zen 5 made
    // these epochs three times the loop's own.
    let pool = mnist_nn::pool::training_pool()?;
    let times = pool.install(|| {
        let mut times = Vec::with_capacity(reps);
        for rep in 0..=reps {
            let started = Instant::now();
            let mut last = None;
            for blocks in &batches {
                let (next, loss, _) = learner.step_blocks(blocks.clone(), ALPHA);
                learner = next;
                last = Some(loss);
            }
            if let Some(loss) = last {
                // Waits for the device to finish the epoch's work.
                black_box(loss.into_scalar::<f32>());
            }
            if rep > 0 {
                times.push(started.elapsed().as_secs_f64());
            }
        }
        times
    });
    Ok(median(times))
}

/// Medians of `reps` epochs of only the five matrix products of each step, with the
/// operands laid out as the step has them (`X` a transposed view of gathered rows).
fn matmul_only(case: Case, n: usize, device: &Device, reps: usize) -> anyhow::Result<f64> {
    let (h, p, c) = (case.hidden, IMAGE_PIXELS, NUM_CLASSES);
    // A batch larger than the device holds in one piece is stepped in column blocks
    // (the same products, block by block), so the products here are a block's.
    let per_block = images_per_block(tensor_limit(device), h);
    let b = case.batch.unwrap_or(n).min(n).min(per_block);
    let full = n / b;
    let rest = n % b;
    let filled = |shape: [usize; 2]| Tensor::<2>::ones(shape, device).mul_scalar(0.01);
    let w1 = filled([h, p]);
    let w2 = filled([c, h]);
    // Operands for each batch size of the epoch (`full` batches of `b`, then the
    // remainder), made before the clock starts: `X`, `A1`, `dZ2`, and the count.
    let operands: Vec<(Tensor<2>, Tensor<2>, Tensor<2>, usize)> = [(b, full), (rest, 1)]
        .into_iter()
        .filter(|&(m, count)| m > 0 && count > 0)
        .map(|(m, count)| {
            let x = filled([m, p]).transpose(); // (784, m), a view as in the loop
            (x, filled([h, m]), filled([c, m]), count)
        })
        .collect();
    let epoch = |last: &mut Option<Tensor<2>>| {
        for (x, a1, dz2, count) in &operands {
            for _ in 0..*count {
                let z1 = w1.clone().matmul(x.clone()); // W1·X      (h, m)
                let z2 = w2.clone().matmul(a1.clone()); // W2·A1    (10, m)
                let dw2 = dz2.clone().matmul(a1.clone().transpose()); // (10, h)
                let dz1 = w2.clone().transpose().matmul(dz2.clone()); // (h, m)
                let dw1 = dz1.clone().matmul(x.clone().transpose()); // (h, 784)
                black_box((z1, z2, dw2));
                *last = Some(dw1);
            }
        }
    };
    let mut times = Vec::with_capacity(reps);
    for rep in 0..=reps {
        let started = Instant::now();
        let mut last = None;
        epoch(&mut last);
        if let Some(t) = last {
            black_box(t.slice([0..1, 0..1]).into_data());
        }
        if rep > 0 {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(median(times))
}

/// Stops training at the first epoch whose test accuracy reaches `target`.
struct StopAt {
    target: f64,
    reached: Option<(usize, f64)>,
    seconds: f64,
}

impl mnist_nn::train::Observer for StopAt {
    fn epoch_finished(&mut self, record: &mnist_nn::train::EpochRecord) -> mnist_nn::Result<()> {
        self.seconds += record.train_seconds;
        if let Some(test) = record.test
            && test.accuracy >= self.target
            && self.reached.is_none()
        {
            self.reached = Some((record.epoch, test.accuracy));
        }
        Ok(())
    }

    fn stop_requested(&mut self) -> bool {
        self.reached.is_some()
    }
}

/// The first epoch that reached the target accuracy.
#[derive(Debug, Clone, Copy)]
pub struct Reached {
    /// Epochs trained.
    pub epochs: usize,
    /// Training seconds over those epochs (evaluations excluded).
    pub seconds: f64,
    /// The test accuracy then.
    pub accuracy: f64,
}

/// Epochs, training seconds (evaluations excluded) and test accuracy when `target`
/// test accuracy is first reached with the settings of the config at `path` (its
/// optimizer, rate, schedule, batch, hidden size and epochs; its mode, or `mode` where
/// given) on `backend`, on all the training images, evaluating after every epoch; `None`
/// if its epochs do not reach it.
pub fn time_to_accuracy(
    path: &Path,
    mode: Option<Mode>,
    backend: BackendKind,
    data: &Mnist,
    target: f64,
) -> anyhow::Result<Option<Reached>> {
    let device = backend.device()?;
    let mut config = Config::load(path)?;
    config.backend = backend;
    config.mode = mode.unwrap_or(config.mode);
    config.train.eval_every = 1;
    config.train.target_accuracy = None;
    config.train.patience = None;
    let model = TwoLayerNet::new(config.model.hidden, config.model.init, config.seed, &device);
    let mut stop = StopAt {
        target,
        reached: None,
        seconds: 0.0,
    };
    train(&config, model, data, &device, &mut stop)?;
    Ok(stop.reached.map(|(epochs, accuracy)| Reached {
        epochs,
        seconds: stop.seconds,
        accuracy,
    }))
}

/// Each config's median seconds over `runs` (each a list of [`time_to_accuracy`]'s
/// answers, config by config), with the epochs and accuracy of the first run (the same
/// in every run: the configs are seeded). Not reached when the first run did not reach
/// the target.
pub fn median_reached(
    runs: Vec<Vec<(&'static str, BackendKind, Option<Reached>)>>,
) -> Vec<(&'static str, BackendKind, Option<Reached>)> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|&(config, backend, reached)| {
            let reached = reached.map(|r| {
                let seconds = runs
                    .iter()
                    .flatten()
                    .filter(|(c, b, _)| *c == config && *b == backend)
                    .filter_map(|(_, _, o)| o.map(|o| o.seconds))
                    .collect();
                Reached {
                    seconds: crate::median(seconds),
                    ..r
                }
            });
            (config, backend, reached)
        })
        .collect()
}

/// What distorting the training images costs an epoch of manual steps at hidden 800,
/// batch 128, with every distortion of `configs/simard.toml`'s kind switched on (shift
/// 2, rotation 10°, scale and shear 0.1, elastic α = 34, σ = 4), split in two: the
/// distorted digits' own cost (they hold more ink, and the sparse products' work
/// grows with the nonzero pixels) and the cost of making them during the epoch.
#[derive(Debug, Clone, Copy)]
pub struct AugmentationCost {
    /// Median seconds of a plain epoch.
    pub plain: f64,
    /// Median seconds of a plain epoch on one epoch's distorted images made beforehand
    /// (each stored as bytes rounded up, so that every nonzero pixel stays nonzero).
    pub made_before: f64,
    /// Median seconds of an epoch that makes its distorted images as it goes.
    pub on_the_fly: f64,
    /// The fraction of nonzero pixels in the plain training images.
    pub ink_plain: f64,
    /// The fraction of nonzero pixels in the distorted ones.
    pub ink_distorted: f64,
}

/// [`AugmentationCost`] on `backend`: the three kinds of epoch take turns `reps` times
/// (one warm-up epoch and one timed each), as [`alternated`] does.
pub fn augmentation_overhead(
    backend: BackendKind,
    data: &Mnist,
    reps: usize,
) -> anyhow::Result<AugmentationCost> {
    let settings = Augment {
        shift: 2.0,
        rotation: 10.0,
        scale: 0.1,
        shear: 0.1,
        elastic_alpha: 34.0,
        elastic_sigma: 4.0,
    };
    let augment = format!(
        "[train.augment]\nshift = {:?}\nrotation = {:?}\nscale = {:?}\nshear = {:?}\n\
         elastic_alpha = {:?}\nelastic_sigma = {:?}\n",
        settings.shift,
        settings.rotation,
        settings.scale,
        settings.shear,
        settings.elastic_alpha,
        settings.elastic_sigma
    );
    let distorted = distorted_copy(data, &Augmenter::new(settings));
    let seconds = alternated_on(
        backend,
        800,
        reps,
        &[(data, "", ""), (&distorted, "", ""), (data, "", &augment)],
    )?;
    Ok(AugmentationCost {
        plain: seconds[0],
        made_before: seconds[1],
        on_the_fly: seconds[2],
        ink_plain: ink(&data.train.pixels),
        ink_distorted: ink(&distorted.train.pixels),
    })
}

/// `data` with its training images distorted once (the first epoch of a run seeded 1),
/// each value rounded up to a byte (`⌈255·v⌉`).
fn distorted_copy(data: &Mnist, augmenter: &Augmenter) -> Mnist {
    let epoch = augmenter.epoch(1, 0);
    let pixels = (0..data.train.len())
        .flat_map(|i| epoch.image(&data.train.pixels, i))
        .map(|v| (v * 255.0).ceil().clamp(0.0, 255.0) as u8)
        .collect();
    let mut copy = data.clone();
    copy.train.pixels = pixels;
    copy
}

/// The fraction of `pixels` that are not 0.
fn ink(pixels: &[u8]) -> f64 {
    pixels.iter().filter(|&&p| p != 0).count() as f64 / pixels.len().max(1) as f64
}

/// Median seconds of an epoch of manual steps at `hidden`, batch 128 on `backend`, with
/// the products with `X` dense (`sparse_input = false`) and over its nonzero pixels
/// (the default), by [`alternated`].
pub fn sparse_speedup(
    backend: BackendKind,
    hidden: usize,
    data: &Mnist,
    reps: usize,
) -> anyhow::Result<(f64, f64)> {
    let dense = ("sparse_input = false\n", "");
    alternated(backend, hidden, data, reps, dense, ("", ""))
}

/// Median seconds of an epoch of manual steps at hidden 800, batch 128 on `backend`
/// with each vector variant of the sparse products' loops that this CPU runs (plain
/// Rust left out: it is there for CPUs without AVX2), the variants taking turns `reps`
/// times (one warm-up epoch and one timed each). Empty when fewer than two run here.
pub fn loops_compared(
    backend: BackendKind,
    data: &Mnist,
    reps: usize,
) -> anyhow::Result<Vec<(Kernels, f64)>> {
    let variants: Vec<Kernels> = Kernels::ALL
        .into_iter()
        .filter(|k| *k != Kernels::Plain && k.runs_here())
        .collect();
    if variants.len() < 2 {
        return Ok(Vec::new());
    }
    let device = backend.device()?;
    let case = Case {
        backend,
        mode: Mode::Manual,
        hidden: 800,
        batch: Some(128),
    };
    let mut times = vec![Vec::new(); variants.len()];
    for _ in 0..reps {
        for (variant, seconds) in variants.iter().zip(&mut times) {
            variant.prefer();
            seconds.push(epochs_with(case, data, &device, 1, "", "")?.0);
        }
    }
    Kernels::widest().prefer();
    Ok(variants
        .into_iter()
        .zip(times.into_iter().map(median))
        .collect())
}

/// Median seconds of an epoch of manual steps at `hidden`, batch 128 on `backend`, under
/// two settings, each `([train] keys, config text appended)` as [`epochs_with`] takes
/// them. The two alternate, `reps` runs of each (one warm-up epoch and one timed), so
/// that a shared machine's drift falls on both alike.
fn alternated(
    backend: BackendKind,
    hidden: usize,
    data: &Mnist,
    reps: usize,
    a: (&str, &str),
    b: (&str, &str),
) -> anyhow::Result<(f64, f64)> {
    let seconds = alternated_on(backend, hidden, reps, &[(data, a.0, a.1), (data, b.0, b.1)])?;
    Ok((seconds[0], seconds[1]))
}

/// Median seconds of an epoch of manual steps at `hidden`, batch 128 on `backend`, for
/// each of `cases` (the images, then `[train]` keys and config text as [`epochs_with`]
/// takes them), the cases taking turns `reps` times.
fn alternated_on(
    backend: BackendKind,
    hidden: usize,
    reps: usize,
    cases: &[(&Mnist, &str, &str)],
) -> anyhow::Result<Vec<f64>> {
    let device = backend.device()?;
    let case = Case {
        backend,
        mode: Mode::Manual,
        hidden,
        batch: Some(128),
    };
    let mut seconds = vec![Vec::new(); cases.len()];
    for _ in 0..reps {
        for ((data, keys, extra), times) in cases.iter().zip(&mut seconds) {
            times.push(epochs_with(case, data, &device, 1, keys, extra)?.0);
        }
    }
    Ok(seconds.into_iter().map(median).collect())
}
