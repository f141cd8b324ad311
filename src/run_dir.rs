//! A run directory, opened once: every file a run writes, named in one place and read
//! typed.
//!
//! ```text
//! artifacts/<name>/
//!   config.toml        the resolved config (overrides applied)
//!   metrics.csv        wall_time,step,tag,value rows, flushed every epoch
//!   model.bpk          the trained parameters (a Burn burnpack record)
//!   model-best.bpk     those of the epoch with the best validation accuracy
//!   summary.json       how the run ended, with its last figures
//!   checkpoint.json    the current checkpoint (see crate::checkpoint)
//!   checkpoints/       its network and optimizer files
//!   eval.json          written by `eval`
//!   report/            written by `report`
//!   train.lock         locked while a process trains the run (see crate::run_lock)
//! ```
//!
//! [`RunDir::open`] reads `config.toml`, `summary.json` and `checkpoint.json` once;
//! everything after that (the network on any device, the training state, the paths of
//! the other files) comes from the opened value, and what a run writes through it
//! (checkpoints, the summary) updates it, so no file is read twice. A run opened to be
//! written ([`RunDir::create`], [`RunDir::open_to_train`]) holds the directory's
//! [`RunLock`] for as long as it lives.
//!
//! ```
//! # fn main() -> mnist_nn::Result<()> {
//! use mnist_nn::config::Config;
//! use mnist_nn::run_dir::RunDir;
//!
//! let dir = std::env::temp_dir().join(format!("mnist-nn-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let config = Config::parse(
//!     "name = \"doc\"\n[model]\nhidden = 8\n[train]\nepochs = 1\nbatch_size = 10\nlearning_rate = 0.1\n",
//!     "doc.toml".as_ref(),
//! )?;
//! RunDir::create(&dir, config)?;
//! let run = RunDir::open(&dir)?;
//! assert_eq!(run.config().model.hidden, 8);
//! assert!(run.summary().is_none(), "nothing has trained yet");
//! assert_eq!(run.file(mnist_nn::run_dir::files::METRICS), dir.join("metrics.csv"));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::Device;

use crate::checkpoint::{self, Checkpoint};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::logging::{Status, Summary, write_atomic, write_json};
use crate::model::TwoLayerNet;
use crate::run_lock::RunLock;
use crate::train::{StateRef, TrainState};

/// File names inside a run directory.
pub mod files {
    /// The resolved config.
    pub const CONFIG: &str = "config.toml";
    /// TensorBoard-style scalars.
    pub const METRICS: &str = "metrics.csv";
    /// The trained parameters.
    pub const MODEL: &str = "model.bpk";
    /// The parameters of the epoch with the best validation accuracy.
    pub const BEST: &str = "model-best.bpk";
    /// Final figures.
    pub const SUMMARY: &str = "summary.json";
    /// The pointer to the current checkpoint.
    pub const CHECKPOINT: &str = "checkpoint.json";
    /// The folder of checkpoint files.
    pub const CHECKPOINTS: &str = "checkpoints";
    /// What `eval` writes by default.
    pub const EVAL: &str = "eval.json";
    /// The folder `report` writes.
    pub const REPORT: &str = "report";
    /// Locked while a process trains the run (see [`crate::run_lock`]).
    pub const LOCK: &str = "train.lock";
}

/// Which of a run's networks to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Which {
    /// The last: `model.bpk`, or the current checkpoint's while training.
    #[default]
    Last,
    /// The epoch with the best validation accuracy: `model-best.bpk`.
    Best,
}

/// An opened run directory (see the module docs).
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    config: Config,
    summary: Option<Summary>,
    /// `None` without a `checkpoint.json`; its problem, kept until a caller needs it,
    /// when it is unusable (a run with a `model.bpk` can be used without it).
    checkpoint: Option<std::result::Result<Checkpoint, String>>,
    /// Held while this value trains the run; `None` when opened only to be read.
    _lock: Option<RunLock>,
}

/// A new, empty directory made for a run by [`RunDir::claim`]. Dropped while still
/// empty (the run failed before writing anything: a missing data directory, no GPU), it
/// is removed again, and so is the runs directory if the claim made it, so a failed
/// start leaves nothing behind.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    /// The runs directory, when the claim made it.
    made: Option<PathBuf>,
}

impl Claim {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Each fails, as it should, once something has been written there.
        if std::fs::remove_dir(&self.path).is_ok()
            && let Some(made) = &self.made
        {
            let _ = std::fs::remove_dir(made);
        }
    }
}

impl RunDir {
    /// Opens the run in `path` to be read: reads and checks `config.toml`, and
    /// `summary.json` and `checkpoint.json` where they exist.
    pub fn open(path: &Path) -> Result<Self> {
        require_run(path)?;
        let config = Config::load(&path.join(files::CONFIG))?;
        let summary = read_summary(path)?;
        let pointer = path.join(files::CHECKPOINT);
        let checkpoint = match checkpoint::read(&pointer) {
            Ok(c) => Some(Ok(c)),
            Err(Error::MissingFile { .. }) => None,
            Err(Error::RunFile { problem, .. }) => Some(Err(problem)),
            Err(e) => return Err(e),
        };
        Ok(Self {
            path: path.to_path_buf(),
            config,
            summary,
            checkpoint,
            _lock: None,
        })
    }

    /// Opens the run in `path` to train it further (`--resume`): as [`RunDir::open`],
    /// after taking its lock. [`Error::RunBusy`] while another process trains it.
    pub fn open_to_train(path: &Path) -> Result<Self> {
        require_run(path)?;
        let lock = RunLock::acquire(path)?;
        let mut run = Self::open(path)?;
        run._lock = Some(lock);
        Ok(run)
    }

    /// Makes `path` the directory of a new run of `config`, taking its lock and writing
    /// its `config.toml`. A directory that already holds a run (a `metrics.csv`) is
    /// refused, and so are one that another process is training in and a path that is
    /// a file.
    pub fn create(path: &Path, config: Config) -> Result<Self> {
        if path.exists() && !path.is_dir() {
            return Err(Error::NotADirectory {
                path: path.to_path_buf(),
            });
        }
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let lock = RunLock::acquire(path)?;
        if path.join(files::METRICS).exists() {
            return Err(Error::RunExists {
                dir: path.to_path_buf(),
                resumable: path.join(files::CHECKPOINT).exists(),
            });
        }
        let run = Self {
            path: path.to_path_buf(),
            config,
            summary: None,
            checkpoint: None,
            _lock: Some(lock),
        };
        run.write_config()?;
        Ok(run)
    }

    /// Makes the first free directory for a run named `name` under `artifacts` (made
    /// if missing): `artifacts/<name>`, else `artifacts/<name>-2`, `-3`…, so that no
    /// earlier run is overwritten. Each name is taken by creating its directory, which
    /// succeeds for one process only: runs started at the same moment get a directory
    /// each.
    pub fn claim(artifacts: &Path, name: &str) -> Result<Claim> {
        let made = (!artifacts.is_dir()).then(|| artifacts.to_path_buf());
        std::fs::create_dir_all(artifacts).map_err(|e| Error::io(artifacts, e))?;
        let mut dir = artifacts.join(name);
        let mut k = 2;
        loop {
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Claim { path: dir, made }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    dir = artifacts.join(format!("{name}-{k}"));
                    k += 1;
                }
                Err(e) => return Err(Error::io(dir, e)),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` inside the directory (one of [`files`]).
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The run's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the config (e.g. `--resume --epochs N`), checking it as a file would be
    /// checked, and rewrites `config.toml`.
    pub fn set_config(&mut self, config: Config) -> Result<()> {
        config.validate(&self.file(files::CONFIG))?;
        self.config = config;
        self.write_config()
    }

    fn write_config(&self) -> Result<()> {
        write_atomic(&self.file(files::CONFIG), self.config.to_toml().as_bytes())
    }

    /// The run's `summary.json`, once the run has ended (or was stopped).
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// Writes `summary.json`.
    pub fn write_summary(&mut self, summary: Summary) -> Result<()> {
        write_json(&self.file(files::SUMMARY), &summary)?;
        self.summary = Some(summary);
        Ok(())
    }

    /// The current checkpoint: `None` before the first epoch has finished.
    pub fn checkpoint(&self) -> Result<Option<&Checkpoint>> {
        match &self.checkpoint {
            None => Ok(None),
            Some(Ok(c)) => Ok(Some(c)),
            Some(Err(problem)) => Err(Error::RunFile {
                path: self.file(files::CHECKPOINT),
                problem: problem.clone(),
            }),
        }
    }

    /// The current checkpoint, or an error saying there is none yet.
    pub fn require_checkpoint(&self) -> Result<&Checkpoint> {
        self.checkpoint()?.ok_or_else(|| Error::MissingFile {
            path: self.file(files::CHECKPOINT),
            what: "checkpoint",
            hint: ": the run has no checkpoint to continue from (it stopped before its first, \
                   which is written after the first epoch or at a Ctrl-C); remove the \
                   folder, or train again into another --out"
                .into(),
        })
    }

    /// The file the trained network is read from: `model.bpk` once training has
    /// completed, the current checkpoint's network before that (still training, or
    /// interrupted), `None` before the first epoch has finished.
    pub fn model_file(&self) -> Result<Option<PathBuf>> {
        let model = self.file(files::MODEL);
        if model.exists() {
            return Ok(Some(model));
        }
        Ok(self.checkpoint()?.map(|c| self.path.join(&c.model)))
    }

    /// The trained network (see [`RunDir::model_file`]) on `device`.
    pub fn load_model(&self, device: &Device) -> Result<TwoLayerNet> {
        let Some(path) = self.model_file()? else {
            return Err(Error::MissingFile {
                path: self.file(files::MODEL),
                what: "model file",
                hint: format!(" ({})", self.why_no_model()).into(),
            });
        };
        checkpoint::load_model(&path, &self.config, device)
    }

    /// Why the run has neither `model.bpk` nor a checkpoint, from how it ended: the
    /// reason `load_model`'s error and `report`'s page give.
    pub fn why_no_model(&self) -> &'static str {
        match self.summary.as_ref().map(|s| s.status) {
            None => "the run has not finished its first epoch, after which it saves its network",
            Some(Status::Diverged) => {
                "the run diverged before its first epoch finished, so it saved no network; \
                 train it again with a smaller train.learning_rate"
            }
            Some(_) => "the run ended before its first epoch finished, so it saved no network",
        }
    }

    /// The network that `which` names, on `device`.
    pub fn load(&self, which: Which, device: &Device) -> Result<TwoLayerNet> {
        match which {
            Which::Last => self.load_model(device),
            Which::Best => {
                let path = self.file(files::BEST);
                if !path.exists() {
                    let hint = if self.config.data.validation == 0 {
                        " (a run keeps one only when it has a validation split, and this \
                         one has none: `data.validation` is 0; drop --best for its last \
                         network)"
                    } else {
                        " (a run keeps one from its first evaluation with a validation \
                         split; this one has none yet)"
                    };
                    return Err(Error::MissingFile {
                        path,
                        what: "best model",
                        hint: hint.into(),
                    });
                }
                checkpoint::load_model(&path, &self.config, device)
            }
        }
    }

    /// Saves the trained network as `model.bpk`.
    pub fn save_model(&self, model: &TwoLayerNet) -> Result<()> {
        self.save_as(files::MODEL, model)
    }

    /// Saves `model` as `model-best.bpk`.
    pub fn save_best(&self, model: &TwoLayerNet) -> Result<()> {
        self.save_as(files::BEST, model)
    }

    /// Saves `model` as `name`, through a temporary file and a rename so that a crash
    /// leaves the previous file whole.
    fn save_as(&self, name: &str, model: &TwoLayerNet) -> Result<()> {
        let path = self.file(name);
        let tmp = path.with_extension("tmp.bpk");
        let failed = |e: &dyn std::fmt::Display| Error::SaveRecord {
            path: path.clone(),
            what: "the model",
            reason: e.to_string(),
        };
        model.clone().save_file(&tmp).map_err(|e| failed(&e))?;
        std::fs::rename(&tmp, &path).map_err(|e| failed(&e))
    }

    /// Saves `state` as the current checkpoint.
    pub fn save_checkpoint(&mut self, state: &StateRef<'_>) -> Result<()> {
        let pointer = checkpoint::save(&self.path, state)?;
        self.checkpoint = Some(Ok(pointer));
        Ok(())
    }

    /// The state of the current checkpoint on `device`, to continue training from.
    pub fn load_state(&self, device: &Device) -> Result<TrainState> {
        let pointer = self.require_checkpoint()?;
        checkpoint::load(&self.path, pointer, &self.config, device)
    }
}

/// Checks that `path` is a run directory: a directory holding a `config.toml`.
/// `summary.json` of the run in `path`, as `T` (the typed [`Summary`], or the JSON value
/// the page is sent): `None` when there is none (yet).
pub(crate) fn read_summary<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let summary_path = path.join(files::SUMMARY);
    match std::fs::read(&summary_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::RunFile {
                path: summary_path,
                problem: format!("not a valid summary file: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(summary_path, e)),
    }
}

fn require_run(path: &Path) -> Result<()> {
    if !path.is_dir() {
        return Err(Error::NotARunDir {
            path: path.to_path_buf(),
        });
    }
    let config_path = path.join(files::CONFIG);
    if !config_path.exists() {
        return Err(Error::MissingFile {
            path: config_path,
            what: "run config",
            hint: ": not a run directory (a run's folder holds the config.toml, \
                   model.bpk and metrics.csv that training or `import` wrote)"
                .into(),
        });
    }
    Ok(())
}
