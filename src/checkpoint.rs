//! Checkpoints: what `--resume` needs to continue a run exactly where it stopped.
//!
//! A run directory's `checkpoint.json` names the current checkpoint's files under
//! `checkpoints/` (the network, and the optimizer's state in autodiff mode) and holds the
//! loop's [`Position`] and the records of the finished epochs. The files of a new
//! checkpoint are written under new names first; only then is `checkpoint.json` replaced
//! (write to a temporary file, rename), and only after that are the old files removed.
//! A process killed at any moment therefore leaves a `checkpoint.json` whose files are
//! complete.
//!
//! No random-number state is stored: the shuffle of epoch `e` is drawn from ChaCha8
//! seeded with the config's `seed` on stream `e` (see [`crate::train::shuffled_indices`]),
//! so the position and the config determine the rest of the run.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::autodiff::optimizer;
use crate::config::{Config, Mode};
use crate::error::{Error, Result};
use crate::logging::write_json;
use crate::model::TwoLayerNet;
use crate::train::{EpochRecord, Position, StateRef, TrainState};

/// The pointer file in a run directory.
pub const POINTER: &str = "checkpoint.json";
/// The folder of checkpoint files in a run directory.
pub const FOLDER: &str = "checkpoints";
/// Version of the `checkpoint.json` layout.
const FORMAT: u32 = 1;

/// The contents of `checkpoint.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Layout version (1).
    pub format: u32,
    /// The network's file, relative to the run directory.
    pub model: PathBuf,
    /// The optimizer state's file (autodiff mode), relative to the run directory.
    pub optimizer: Option<PathBuf>,
    /// Where the loop stands.
    pub position: Position,
    /// How each epoch's shuffle is drawn (for people reading the file).
    pub rng: String,
    /// One record per finished epoch.
    pub history: Vec<EpochRecord>,
}

/// Saves `state` as the run's current checkpoint in `dir` (see the module docs for the
/// order that keeps it intact when the process is killed).
pub fn save(dir: &Path, state: &StateRef<'_>) -> Result<()> {
    let folder = dir.join(FOLDER);
    std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    let tag = format!("step-{}", state.at.step);
    let model = Path::new(FOLDER).join(format!("model-{tag}.bpk"));
    state
        .model
        .clone()
        .save_file(dir.join(&model))
        .map_err(|e| Error::Model {
            path: dir.join(&model),
            message: format!("cannot save checkpoint: {e}"),
        })?;
    let optimizer = match state.optimizer {
        Some(optim) => {
            let file = Path::new(FOLDER).join(format!("optimizer-{tag}.bpk"));
            optim.save(dir.join(&file)).map_err(|e| Error::Model {
                path: dir.join(&file),
                message: format!("cannot save optimizer state: {e}"),
            })?;
            Some(file)
        }
        None => None,
    };
    let pointer = Checkpoint {
        format: FORMAT,
        model,
        optimizer,
        position: state.at,
        rng: "epoch e shuffles with ChaCha8 seeded by `seed`, stream e".into(),
        history: state.history.to_vec(),
    };
    write_json(&dir.join(POINTER), &pointer)?;
    remove_stale(dir, &pointer);
    Ok(())
}

/// Removes checkpoint files that `current` does not name. Failing to remove one loses
/// nothing, so errors are ignored.
fn remove_stale(dir: &Path, current: &Checkpoint) {
    let keep: Vec<PathBuf> = std::iter::once(dir.join(&current.model))
        .chain(current.optimizer.iter().map(|o| dir.join(o)))
        .collect();
    let Ok(entries) = std::fs::read_dir(dir.join(FOLDER)) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !keep.contains(&path) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Reads `dir`'s `checkpoint.json`.
pub fn read(dir: &Path) -> Result<Checkpoint> {
    let path = dir.join(POINTER);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (is this a run directory? runs write a checkpoint after their first epoch)"
        } else {
            ""
        };
        Error::io(
            &path,
            std::io::Error::new(e.kind(), format!("cannot read checkpoint: {e}{hint}")),
        )
    })?;
    let pointer: Checkpoint = serde_json::from_str(&text).map_err(|e| Error::Model {
        path: path.clone(),
        message: format!("not a valid checkpoint file: {e}"),
    })?;
    if pointer.format != FORMAT {
        return Err(Error::Model {
            path,
            message: format!(
                "checkpoint format {} is not the supported {FORMAT}",
                pointer.format
            ),
        });
    }
    Ok(pointer)
}

/// Loads `dir`'s current checkpoint onto `device`, for a run configured by `config`.
pub fn load(dir: &Path, config: &Config, device: &Device) -> Result<TrainState> {
    let pointer = read(dir)?;
    let model_path = dir.join(&pointer.model);
    let model = load_model(&model_path, config, device)?;
    let optimizer = match (config.mode, &pointer.optimizer) {
        (Mode::Autodiff, Some(file)) => {
            let path = dir.join(file);
            let optim =
                optimizer(config.train.optimizer)
                    .load(&path)
                    .map_err(|e| Error::Model {
                        path: path.clone(),
                        message: format!("cannot load optimizer state: {e}"),
                    })?;
            Some(optim)
        }
        (Mode::Autodiff, None) => {
            return Err(Error::Model {
                path: dir.join(POINTER),
                message: "autodiff run, but the checkpoint has no optimizer state".into(),
            });
        }
        (Mode::Manual, _) => None,
    };
    Ok(TrainState {
        model,
        optimizer,
        at: pointer.position,
        history: pointer.history,
    })
}

/// Loads a network of the shape `config` describes from a Burn record file, with an
/// error naming the file and what does not match.
pub fn load_model(path: &Path, config: &Config, device: &Device) -> Result<TwoLayerNet> {
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "model file not found"),
        ));
    }
    let blank = TwoLayerNet::new(config.model.hidden, config.model.init, config.seed, device);
    blank.try_load_file(path).map_err(|e| Error::Model {
        path: path.to_path_buf(),
        message: format!(
            "cannot load a network with hidden = {} from it: {e}",
            config.model.hidden
        ),
    })
}
