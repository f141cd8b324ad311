//! One training run from a config to a run directory: check everything that can be
//! checked before writing anything, then train, log and save.
//!
//! A run directory holds `config.toml` (the resolved config), `metrics.csv`,
//! `model.bpk` (the trained parameters, a Burn burnpack record), `summary.json`, and the
//! latest checkpoint (`checkpoint.json` and `checkpoints/`, see [`crate::checkpoint`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;

use crate::checkpoint;
use crate::config::Config;
use crate::data::{LoadError, Mnist};
use crate::error::{ConfigError, Error, Result};
use crate::logging::{MetricsWriter, Summary, write_atomic, write_json};
use crate::model::TwoLayerNet;
use crate::train::{Ending, EpochRecord, Observer, StateRef, Trained, train, train_from};

/// File names inside a run directory.
pub mod files {
    /// The resolved config.
    pub const CONFIG: &str = "config.toml";
    /// TensorBoard-style scalars.
    pub const METRICS: &str = "metrics.csv";
    /// The trained parameters.
    pub const MODEL: &str = "model.bpk";
    /// Final figures.
    pub const SUMMARY: &str = "summary.json";
}

/// Where a run writes: `out` as given, or the first free `artifacts/<name>`,
/// `artifacts/<name>-2`, … so that no earlier run is overwritten.
pub fn run_dir(artifacts: &Path, name: &str, out: Option<&Path>) -> PathBuf {
    if let Some(out) = out {
        return out.to_path_buf();
    }
    let mut dir = artifacts.join(name);
    let mut k = 2;
    while dir.exists() {
        dir = artifacts.join(format!("{name}-{k}"));
        k += 1;
    }
    dir
}

/// Loads the data `config` names and checks what depends on it.
pub fn load_data(config: &Config, config_path: &Path) -> Result<Mnist> {
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

/// Trains as `config` says and writes everything to `dir`, which must not already hold
/// a run. `ui` sees the same progress as the metrics log.
pub fn run(
    config: &Config,
    config_path: &Path,
    dir: &Path,
    ui: &mut dyn Observer,
) -> Result<Outcome> {
    let started = Instant::now();
    let data = load_data(config, config_path)?;
    let device = config.backend.device()?;
    create_run_dir(dir)?;
    write_atomic(&dir.join(files::CONFIG), config.to_toml().as_bytes())?;
    let metrics = MetricsWriter::create(&dir.join(files::METRICS))?;
    let model = TwoLayerNet::new(config.model.hidden, config.model.init, config.seed, &device);
    let mut observers = Tee { dir, metrics, ui };
    let trained = train(config, model, &data, &device, &mut observers)?;
    finish(config, dir, &data, trained, observers.metrics, started)
}

/// What `--resume` may change in a run's config.
#[derive(Debug, Clone, Default)]
pub struct ResumeOverrides {
    /// Train until this many epochs in all.
    pub epochs: Option<usize>,
    /// Continue on another backend.
    pub backend: Option<crate::backend::BackendKind>,
}

/// Continues the run in `dir` from its last checkpoint, with its own `config.toml`.
/// Metrics logged after the checkpoint (by a run killed later) are dropped so that the
/// log reads as one run.
pub fn resume(dir: &Path, overrides: &ResumeOverrides, ui: &mut dyn Observer) -> Result<Outcome> {
    let started = Instant::now();
    let config_path = dir.join(files::CONFIG);
    let mut config = Config::load(&config_path)?;
    if let Some(epochs) = overrides.epochs {
        config.train.epochs = epochs;
    }
    if let Some(backend) = overrides.backend {
        config.backend = backend;
    }
    config.validate(&config_path)?;
    let pointer = checkpoint::read(dir)?;
    let done = pointer.position.epoch - 1;
    if done >= config.train.epochs && pointer.position.batch == 0 {
        return Err(Error::Config(ConfigError::Invalid {
            path: config_path,
            key: "train.epochs".into(),
            problem: format!(
                "is {} and the run has already finished {done} epochs; pass --epochs N with \
                 N > {done} to train further",
                config.train.epochs
            ),
        }));
    }
    let data = load_data(&config, &config_path)?;
    let device = config.backend.device()?;
    let state = checkpoint::load(dir, &config, &device)?;
    write_atomic(&config_path, config.to_toml().as_bytes())?;
    let metrics = MetricsWriter::append(&dir.join(files::METRICS), state.at.step)?;
    let mut observers = Tee { dir, metrics, ui };
    let trained = train_from(&config, state, &data, &device, &mut observers)?;
    finish(&config, dir, &data, trained, observers.metrics, started)
}

/// Saves the model and the summary of a run that ended as `trained` says. A diverged
/// run saves no model (the last checkpoint is the last good one) and is an error.
fn finish(
    config: &Config,
    dir: &Path,
    data: &Mnist,
    trained: Trained,
    mut metrics: MetricsWriter,
    started: Instant,
) -> Result<Outcome> {
    let status = match trained.ending {
        Ending::Completed => "completed",
        Ending::Interrupted => "interrupted",
        Ending::Diverged { .. } => "diverged",
    };
    if trained.ending == Ending::Completed {
        let model_path = dir.join(files::MODEL);
        trained
            .model
            .clone()
            .save_file(&model_path)
            .map_err(|e| Error::Model {
                path: model_path.clone(),
                message: e.to_string(),
            })?;
    }
    if let Ending::Diverged { step, .. } = trained.ending {
        metrics.scalar(step, "status/diverged", 1.0)?;
        metrics.flush()?;
    }
    let summary = summarize(config, data, &trained.history, status, started);
    write_json(&dir.join(files::SUMMARY), &summary)?;
    if let Ending::Diverged { step, loss } = trained.ending {
        let last_good = checkpoint::read(dir)
            .map(|c| {
                format!(
                    "the last good checkpoint (epoch {}) is kept",
                    c.position.epoch - 1
                )
            })
            .unwrap_or_else(|_| "no epoch had finished, so there is no checkpoint".into());
        return Err(Error::Diverged {
            step,
            loss,
            learning_rate: config.train.learning_rate,
            dir: dir.to_path_buf(),
            detail: last_good,
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
    status: &str,
    started: Instant,
) -> Summary {
    let last = history.last();
    Summary {
        name: config.name.clone(),
        status: status.into(),
        backend: config.backend.name().into(),
        mode: format!("{:?}", config.mode).to_lowercase(),
        hidden: config.model.hidden,
        epochs: history.len(),
        steps: last.map_or(0, |r| r.step),
        train_images: data.train.len(),
        train: last.map(|r| r.train),
        valid: last.and_then(|r| r.valid),
        test: last.and_then(|r| r.test),
        train_seconds: history.iter().map(|r| r.train_seconds).sum(),
        total_seconds: started.elapsed().as_secs_f64(),
    }
}

/// Creates `dir`; refuses one that already holds a run.
fn create_run_dir(dir: &Path) -> Result<()> {
    if dir.join(files::METRICS).exists() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already holds a run (metrics.csv); choose another --out, remove it, or \
                 continue it with --resume",
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Sends every event to the metrics log and the checkpoint files, then to the user
/// interface.
struct Tee<'a> {
    dir: &'a Path,
    metrics: MetricsWriter,
    ui: &'a mut dyn Observer,
}

impl Observer for Tee<'_> {
    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        self.ui.epoch_started(epoch, batches);
    }
    fn batch_finished(&mut self, batch: usize) {
        self.ui.batch_finished(batch);
    }
    fn epoch_finished(&mut self, record: &EpochRecord) -> Result<()> {
        self.metrics.epoch_finished(record)?;
        self.ui.epoch_finished(record)
    }
    fn checkpoint(&mut self, state: &StateRef<'_>) -> Result<()> {
        checkpoint::save(self.dir, state)?;
        self.ui.checkpoint(state)
    }
    fn stop_requested(&mut self) -> bool {
        self.ui.stop_requested()
    }
}

/// Reads a run directory's `config.toml`.
pub fn read_config(dir: &Path) -> Result<Config> {
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such run directory"),
        ));
    }
    Ok(Config::load(&dir.join(files::CONFIG))?)
}

/// Reads a run directory's `config.toml` and `model.bpk` onto `device`. A run that
/// has no `model.bpk` yet (still training, or interrupted) gives its last checkpoint.
pub fn load_run(dir: &Path, device: &burn::prelude::Device) -> Result<(Config, TwoLayerNet)> {
    let config = read_config(dir)?;
    let model_path = dir.join(files::MODEL);
    let model_path = if !model_path.exists() && dir.join(checkpoint::POINTER).exists() {
        dir.join(checkpoint::read(dir)?.model)
    } else {
        model_path
    };
    let model = checkpoint::load_model(&model_path, &config, device)?;
    Ok((config, model))
}
