//! One training run into a run directory ([`RunDir`]): check everything that can be
//! checked before writing anything, then train, log and save; or continue a run from
//! its last checkpoint.

use std::path::Path;
use std::time::Instant;

use burn::prelude::{Device, Tensor};

use crate::config::Config;
use crate::data::{LoadError, Mnist};
use crate::error::{ConfigError, Error, Result};
use crate::logging::{MetricsWriter, Status, Summary};
use crate::model::TwoLayerNet;
use crate::run_dir::{RunDir, files};
use crate::tensorboard::EventWriter;
use crate::train::{
    EarlyStop, Ending, EpochRecord, Look, Observer, StateRef, TrainState, Trained, early_stop,
    is_best, train_from,
};

/// Loads the data `config` names and checks what depends on it.
pub fn load_data(config: &Config, config_path: &Path) -> Result<Mnist> {
    if config.data.dir.is_file() {
        return Err(Error::Config(ConfigError::Invalid {
            path: config_path.to_path_buf(),
            key: "data.dir".into(),
            problem: format!(
                "{} is a file; it should be the directory that holds the four IDX files",
                config.data.dir.display()
            ),
        }));
    }
    if !config.data.dir.is_dir() {
        return Err(Error::MissingFile {
            path: config.data.dir.clone(),
            what: "data directory (data.dir)",
            hint: if config.data.dataset == "fashion-mnist" {
                " (Fashion-MNIST: `sudo apt install dataset-fashion-mnist` puts it in \
                 /usr/share/datasets/fashion-mnist, or download the four files from \
                 https://github.com/zalandoresearch/fashion-mnist into data.dir)"
            } else {
                " (it should hold the four IDX files, raw or .gz)"
            }
            .into(),
        });
    }
    let data =
        Mnist::load(&config.data.dir, config.data.validation, config.data.limit).map_err(|e| {
            match e {
                LoadError::Idx(e) => Error::Idx(e),
                LoadError::Validation { .. } => Error::Config(ConfigError::Invalid {
                    path: config_path.to_path_buf(),
                    key: "data.validation".into(),
                    problem: e.to_string(),
                }),
            }
        })?;
    let n = data.train.len();
    if let crate::config::BatchSize::Size(b) = config.train.batch_size
        && b > n
    {
        return Err(Error::Config(ConfigError::Invalid {
            path: config_path.to_path_buf(),
            key: "train.batch_size".into(),
            problem: format!("is {b} but there are only {n} training images"),
        }));
    }
    Ok(data)
}

/// How a run ended, with its summary (already written to `summary.json`).
#[derive(Debug)]
pub struct Outcome {
    /// The final figures.
    pub summary: Summary,
    /// Why training ended.
    pub ending: Ending,
}

/// Trains as `config` says (read from `config_path`, which names it in errors) and
/// writes everything to `dir`, which must not already hold a run. `ui` sees the same
/// progress as the metrics log.
pub fn run(
    config: Config,
    config_path: &Path,
    dir: &Path,
    ui: &mut dyn Observer,
) -> Result<Outcome> {
    let started = Instant::now();
    let data = load_data(&config, config_path)?;
    run_on(config, &data, dir, ui, started)
}

/// [`run`] on `data` already loaded by [`load_data`] (for a caller that also uses the
/// images); `started` is when the run began, for its total time.
pub fn run_on(
    config: Config,
    data: &Mnist,
    dir: &Path,
    ui: &mut dyn Observer,
    started: Instant,
) -> Result<Outcome> {
    let device = config.backend.device()?;
    let model = TwoLayerNet::new(config.model.hidden, config.model.init, config.seed, &device);
    let run = RunDir::create(dir, config)?;
    let events = EventWriter::create(run.path(), None)?;
    let mut metrics = MetricsWriter::create(&run.file(files::METRICS))?.with_events(events);
    metrics.config_text(0, &run.config().to_toml())?;
    let state = TrainState::new(model);
    train_and_save(run, state, data, &device, metrics, ui, started)
}

/// What `--resume` may change in a run's config.
#[derive(Debug, Clone, Default)]
pub struct ResumeOverrides {
    /// Train until this many epochs in all.
    pub epochs: Option<usize>,
    /// Continue on another backend.
    pub backend: Option<crate::backend::BackendKind>,
}

/// Continues `run` from its last checkpoint, with its own config (and `overrides`).
/// Metrics logged after the checkpoint (by a run killed later) are dropped so that the
/// log reads as one run.
pub fn resume(
    mut run: RunDir,
    overrides: &ResumeOverrides,
    ui: &mut dyn Observer,
) -> Result<Outcome> {
    let started = Instant::now();
    let config_path = run.file(files::CONFIG);
    let mut config = run.config().clone();
    if let Some(epochs) = overrides.epochs {
        config.train.epochs = epochs;
    }
    if let Some(backend) = overrides.backend {
        config.backend = backend;
    }
    config.validate(&config_path)?;
    if run.summary().is_some_and(|s| s.status == Status::Imported) {
        return Err(Error::RunFile {
            path: run.file(files::SUMMARY),
            problem: "the run was imported from a weights file: it has no training to \
                      continue (no checkpoint, no optimizer state); train a new run with \
                      --config"
                .into(),
        });
    }
    let pointer = run.require_checkpoint()?;
    let done = pointer.epochs_done();
    // A total already reached is refused, also from a checkpoint inside the next epoch:
    // training on from there would stop at once and save that epoch's unfinished weights
    // under a summary of the finished ones.
    if done >= config.train.epochs {
        let partway = match pointer.position.batch {
            0 => String::new(),
            b => format!(
                " (and {b} batch{} of epoch {})",
                if b == 1 { "" } else { "es" },
                done + 1
            ),
        };
        return Err(Error::Config(ConfigError::Invalid {
            path: config_path,
            key: "train.epochs".into(),
            problem: format!(
                "is {}{} and the run has already finished {done} epoch{}{partway}; pass \
                 --epochs N with N > {done} to train further",
                config.train.epochs,
                if overrides.epochs.is_some() {
                    " (--epochs)"
                } else {
                    ""
                },
                if done == 1 { "" } else { "s" }
            ),
        }));
    }
    // A run stopped by a rule that still holds would stop again before its next epoch:
    // refused, as a finished total is, rather than rewriting its config and summary for
    // nothing.
    if pointer.position.batch == 0
        && let Some(stop) = early_stop(&config.train, &pointer.history)
    {
        return Err(still_stopped(config_path, &config, stop));
    }
    let data = load_data(&config, &config_path)?;
    let device = config.backend.device()?;
    let state = run.load_state(&device)?;
    run.set_config(config)?;
    let events = EventWriter::create(run.path(), Some(state.at.step))?;
    let mut metrics =
        MetricsWriter::append(&run.file(files::METRICS), state.at.step)?.with_events(events);
    metrics.config_text(state.at.step + 1, &run.config().to_toml())?;
    train_and_save(run, state, &data, &device, metrics, ui, started)
}

/// The refusal to resume a run whose stopping rule `stop` still holds under `config`.
fn still_stopped(config_path: std::path::PathBuf, config: &Config, stop: EarlyStop) -> Error {
    let (key, problem) = match stop {
        EarlyStop::TargetReached { epoch, accuracy } => (
            "train.target_accuracy",
            format!(
                "is {} and epoch {epoch}'s validation accuracy {:.2}% reached it, so the run \
                 would stop again before its next epoch; raise or remove it there to train \
                 further",
                config.train.target_accuracy.unwrap_or(f64::NAN),
                100.0 * accuracy
            ),
        ),
        EarlyStop::NoImprovement {
            best_epoch,
            accuracy,
        } => (
            "train.patience",
            format!(
                "is {} and no evaluation since epoch {best_epoch} beat its validation \
                 accuracy {:.2}%, so the run would stop again before its next epoch; raise \
                 or remove it there to train further",
                config.train.patience.unwrap_or(0),
                100.0 * accuracy
            ),
        ),
    };
    Error::Config(ConfigError::Invalid {
        path: config_path,
        key: key.into(),
        problem,
    })
}

/// Trains `run` from `state` as its config says, logging to `metrics` and
/// checkpointing into the run, then saves what [`finish`] saves.
fn train_and_save(
    mut run: RunDir,
    state: TrainState,
    data: &Mnist,
    device: &Device,
    metrics: MetricsWriter,
    ui: &mut dyn Observer,
    started: Instant,
) -> Result<Outcome> {
    let config = run.config().clone();
    // The first training images (up to PROBE), on which the event file's gradient
    // histograms are taken after each evaluated epoch.
    let k = data.train.len().min(PROBE);
    let probe = (k > 0).then(|| {
        let train = data.train.slice(0..k).to_device(device);
        (train.images_in(0..k).transpose(), train.one_hot.transpose())
    });
    let mut tee = Tee {
        run: &mut run,
        metrics,
        ui,
        probe,
    };
    let trained = train_from(&config, state, data, device, &mut tee)?;
    let metrics = tee.metrics;
    finish(&mut run, data, trained, metrics, started)
}

/// Saves the model and the summary of a run that ended as `trained` says. A diverged
/// run saves no model (the last checkpoint is the last good one) and is an error.
fn finish(
    run: &mut RunDir,
    data: &Mnist,
    trained: Trained,
    mut metrics: MetricsWriter,
    started: Instant,
) -> Result<Outcome> {
    let status = match trained.ending {
        Ending::Completed => Status::Completed,
        Ending::Stopped(_) => Status::Stopped,
        Ending::Interrupted => Status::Interrupted,
        Ending::Diverged { .. } => Status::Diverged,
    };
    if matches!(status, Status::Completed | Status::Stopped) {
        run.save_model(&trained.model)?;
    }
    if let Ending::Diverged { step, .. } = trained.ending {
        metrics.scalar(step, "status/diverged", 1.0)?;
        metrics.flush()?;
    }
    let mut summary = summarize(run.config(), data, &trained.history, status, started);
    if let Ending::Stopped(stop) = trained.ending {
        summary.stopped = Some(stop);
    }
    run.write_summary(summary.clone())?;
    if let Ending::Diverged { step, loss } = trained.ending {
        return Err(Error::Diverged {
            step,
            loss,
            learning_rate: run.config().train.learning_rate,
            dir: run.path().to_path_buf(),
            last_good_epoch: run.checkpoint().ok().flatten().map(|c| c.epochs_done()),
        });
    }
    Ok(Outcome {
        summary,
        ending: trained.ending,
    })
}

fn summarize(
    config: &Config,
    data: &Mnist,
    history: &[EpochRecord],
    status: Status,
    started: Instant,
) -> Summary {
    let last = history.last();
    Summary {
        name: config.name.clone(),
        status,
        backend: config.backend,
        mode: config.mode,
        hidden: config.model.hidden,
        epochs: history.len(),
        steps: last.map_or(0, |r| r.step),
        train_images: data.train.len(),
        train: last.map(|r| r.train),
        valid: last.and_then(|r| r.valid),
        test: last.and_then(|r| r.test),
        stopped: None,
        to_target_s: history.iter().find_map(|r| r.to_target_s),
        best_epoch: (1..=history.len())
            .rev()
            .find(|&n| is_best(&history[..n]))
            .map(|n| history[n - 1].epoch),
        // Folded from +0: an empty float sum is -0, which summary.json would show.
        train_seconds: history.iter().fold(0.0, |t, r| t + r.train_seconds),
        total_seconds: started.elapsed().as_secs_f64(),
    }
}

/// Sends every event to the metrics log and the run's checkpoint, then to the user
/// interface.
struct Tee<'a> {
    run: &'a mut RunDir,
    metrics: MetricsWriter,
    ui: &'a mut dyn Observer,
    /// `(X, Y)` of the gradient histograms.
    probe: Option<(Tensor<2>, Tensor<2>)>,
}

/// Training images whose gradients the event file shows after each evaluated epoch.
const PROBE: usize = 1000;

impl Observer for Tee<'_> {
    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        self.ui.epoch_started(epoch, batches);
    }
    fn batch_finished(&mut self, batch: usize) {
        self.ui.batch_finished(batch);
    }
    fn epoch_finished(&mut self, record: &EpochRecord) -> Result<()> {
        self.metrics.epoch(record)?;
        self.ui.epoch_finished(record)
    }
    fn checkpoint(&mut self, state: &StateRef<'_>) -> Result<()> {
        self.run.save_checkpoint(state)?;
        // After an evaluated epoch: the weights in TensorBoard.
        let evaluated = state.history.last().is_some_and(|r| r.test.is_some());
        if state.at.batch == 0 && evaluated {
            self.metrics
                .weights(state.at.step, state.model, self.probe.as_ref())?;
        }
        // After a finished epoch (not a stop mid-epoch) with the best validation
        // accuracy so far, its network is also kept as the best.
        if state.at.batch == 0 && is_best(state.history) {
            self.run.save_best(state.model)?;
        }
        self.ui.checkpoint(state)
    }
    fn stop_requested(&mut self) -> bool {
        self.ui.stop_requested()
    }
    fn wants_look(&mut self, step: usize) -> bool {
        self.ui.wants_look(step)
    }
    fn look(&mut self, look: &Look<'_>) {
        self.ui.look(look);
    }
}
