//! One training run from a config to a run directory: check everything that can be
//! checked before writing anything, then train, log and save.
//!
//! A run directory holds `config.toml` (the resolved config), `metrics.csv`,
//! `model.bpk` (the trained parameters, a Burn burnpack record) and `summary.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;

use crate::config::Config;
use crate::data::{LoadError, Mnist};
use crate::error::{ConfigError, Error, Result};
use crate::logging::{MetricsWriter, Summary, write_atomic, write_json};
use crate::model::TwoLayerNet;
use crate::train::{EpochRecord, Observer, train};

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

/// Trains as `config` says and writes everything to `dir`, which must not already hold
/// a run. `ui` sees the same progress as the metrics log.
pub fn run(
    config: &Config,
    config_path: &Path,
    dir: &Path,
    ui: &mut dyn Observer,
) -> Result<Summary> {
    let started = Instant::now();
    let data = load_data(config, config_path)?;
    let device = config.backend.device()?;
    create_run_dir(dir)?;
    write_atomic(&dir.join(files::CONFIG), config.to_toml().as_bytes())?;
    let metrics = MetricsWriter::create(&dir.join(files::METRICS))?;
    let model = TwoLayerNet::new(config.model.hidden, config.model.init, config.seed, &device);
    let mut observers = Tee { metrics, ui };
    let trained = train(config, model, &data, &device, &mut observers)?;
    let model_path = dir.join(files::MODEL);
    trained
        .model
        .clone()
        .save_file(&model_path)
        .map_err(|e| Error::Model {
            path: model_path.clone(),
            message: e.to_string(),
        })?;
    let last = trained.history.last().ok_or_else(|| Error::Model {
        path: model_path,
        message: "training ran no epoch".into(),
    })?;
    let summary = summarize(config, &data, &trained.history, last, started);
    write_json(&dir.join(files::SUMMARY), &summary)?;
    Ok(summary)
}

fn summarize(
    config: &Config,
    data: &Mnist,
    history: &[EpochRecord],
    last: &EpochRecord,
    started: Instant,
) -> Summary {
    Summary {
        name: config.name.clone(),
        status: "completed".into(),
        backend: config.backend.name().into(),
        mode: format!("{:?}", config.mode).to_lowercase(),
        hidden: config.model.hidden,
        epochs: history.len(),
        steps: last.step,
        train_images: data.train.len(),
        train: last.train,
        valid: last.valid,
        // The last epoch always evaluates (see `train`).
        test: last.test.unwrap_or(last.train),
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
                "already holds a run (metrics.csv); choose another --out or remove it",
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Sends every event to the metrics log, then to the user interface.
struct Tee<'a> {
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
}

/// Reads a run directory's `config.toml` and `model.bpk` onto `device`.
pub fn load_run(dir: &Path, device: &burn::prelude::Device) -> Result<(Config, TwoLayerNet)> {
    let config_path = dir.join(files::CONFIG);
    let config = Config::load(&config_path)?;
    let model_path = dir.join(files::MODEL);
    if !model_path.exists() {
        return Err(Error::io(
            &model_path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no model file in this run directory",
            ),
        ));
    }
    let blank = TwoLayerNet::new(config.model.hidden, config.model.init, config.seed, device);
    let model = blank.try_load_file(&model_path).map_err(|e| Error::Model {
        path: model_path.clone(),
        message: e.to_string(),
    })?;
    Ok((config, model))
}
