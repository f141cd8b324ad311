//! Checkpoints: what `--resume` needs to continue a run exactly where it stopped.
//!
//! A run directory's `checkpoint.json` names the current checkpoint's files under
//! `checkpoints/` (the network, and the state of the update: the Burn optimizer's where
//! it is one, manual momentum's velocity, manual Adam's moments) and holds the
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
use std::sync::Once;

use burn::module::Module;
use burn::prelude::*;
use burn_dispatch::DispatchDevice;
use serde::{Deserialize, Serialize};

use crate::adam::AdamMoments;
use crate::autodiff::optimizer_for;
use crate::config::{Config, OptimizerKind};
use crate::error::{Error, Result};
use crate::gradients::Gradients;
use crate::logging::write_json;
use crate::model::TwoLayerNet;
use crate::run_dir::files;
use crate::train::{EpochRecord, Position, StateRef, TrainState};

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
    /// The momentum velocity's file (manual mode with momentum, saved as a network's
    /// record), relative to the run directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velocity: Option<PathBuf>,
    /// Adam's moments (manual mode with Adam, [`crate::adam`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moments: Option<MomentFiles>,
    /// Where the loop stands.
    pub position: Position,
    /// How each epoch's shuffle is drawn (for people reading the file).
    pub rng: String,
    /// One record per finished epoch.
    pub history: Vec<EpochRecord>,
}

/// Where a checkpoint keeps manual Adam's moments: `m` and `v`, each saved as a
/// network's record, and the steps taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentFiles {
    /// The first moments' file, relative to the run directory.
    pub first: PathBuf,
    /// The second moments' file, relative to the run directory.
    pub second: PathBuf,
    /// Adam's steps taken (its bias corrections depend on them).
    pub steps: u32,
}

impl Checkpoint {
    /// Epochs finished when it was saved.
    pub fn epochs_done(&self) -> usize {
        self.position.epoch - 1
    }
}

/// Saves `state` as the run's current checkpoint in `dir` (see the module docs for the
/// order that keeps it intact when the process is killed); returns what
/// `checkpoint.json` now says.
pub fn save(dir: &Path, state: &StateRef<'_>) -> Result<Checkpoint> {
    let folder = dir.join(files::CHECKPOINTS);
    std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    let tag = format!("step-{}", state.at.step);
    let model = Path::new(files::CHECKPOINTS).join(format!("model-{tag}.bpk"));
    state
        .model
        .clone()
        .save_file(dir.join(&model))
        .map_err(|e| Error::SaveRecord {
            path: dir.join(&model),
            what: "checkpoint",
            reason: e.to_string(),
        })?;
    let optimizer = match state.optimizer {
        Some(optim) => {
            let file = Path::new(files::CHECKPOINTS).join(format!("optimizer-{tag}.bpk"));
            optim.save(dir.join(&file)).map_err(|e| Error::SaveRecord {
                path: dir.join(&file),
                what: "optimizer state",
                reason: e.to_string(),
            })?;
            Some(file)
        }
        None => None,
    };
    let velocity = match state.velocity {
        Some(v) => Some(save_set(
            dir,
            v,
            &format!("velocity-{tag}"),
            "momentum velocity",
        )?),
        None => None,
    };
    let moments = match state.moments {
        Some(m) => Some(MomentFiles {
            first: save_set(
                dir,
                &m.first,
                &format!("adam-m-{tag}"),
                "Adam's first moments",
            )?,
            second: save_set(
                dir,
                &m.second,
                &format!("adam-v-{tag}"),
                "Adam's second moments",
            )?,
            steps: m.steps,
        }),
        None => None,
    };
    let pointer = Checkpoint {
        format: FORMAT,
        model,
        optimizer,
        velocity,
        moments,
        position: state.at,
        rng: "epoch e shuffles with ChaCha8 seeded by `seed`, stream e".into(),
        history: state.history.to_vec(),
    };
    write_json(&dir.join(files::CHECKPOINT), &pointer)?;
    remove_stale(dir, &pointer);
    Ok(pointer)
}

/// Saves a set of four parameter-shaped tensors (`what`) as a network's record in
/// `checkpoints/<name>.bpk`; returns the file's path relative to `dir`.
fn save_set(dir: &Path, set: &Gradients, name: &str, what: &'static str) -> Result<PathBuf> {
    let file = Path::new(files::CHECKPOINTS).join(format!("{name}.bpk"));
    set.clone()
        .into_net()
        .save_file(dir.join(&file))
        .map_err(|e| Error::SaveRecord {
            path: dir.join(&file),
            what,
            reason: e.to_string(),
        })?;
    Ok(file)
}

/// Removes checkpoint files that `current` does not name. Failing to remove one loses
/// nothing, so errors are ignored.
fn remove_stale(dir: &Path, current: &Checkpoint) {
    let keep: Vec<PathBuf> = std::iter::once(dir.join(&current.model))
        .chain(current.optimizer.iter().map(|o| dir.join(o)))
        .chain(current.velocity.iter().map(|v| dir.join(v)))
        .chain(
            current
                .moments
                .iter()
                .flat_map(|m| [dir.join(&m.first), dir.join(&m.second)]),
        )
        .collect();
    let Ok(entries) = std::fs::read_dir(dir.join(files::CHECKPOINTS)) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !keep.contains(&path) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Reads a `checkpoint.json` (`path`: the file). A missing file is
/// [`Error::MissingFile`]; one that does not parse, or has another layout version, is
/// [`Error::RunFile`].
pub fn read(path: &Path) -> Result<Checkpoint> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile {
                path: path.to_path_buf(),
                what: "checkpoint",
                hint: " (is this a run directory? runs write a checkpoint after their first epoch)"
                    .into(),
            }
        } else {
            Error::io(path, e)
        }
    })?;
    let bad = |problem: String| Error::RunFile {
        path: path.to_path_buf(),
        problem,
    };
    let pointer: Checkpoint = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a valid checkpoint file: {e}")))?;
    if pointer.format != FORMAT {
        return Err(bad(format!(
            "checkpoint format {} is not the supported {FORMAT}",
            pointer.format
        )));
    }
    Ok(pointer)
}

/// Loads the checkpoint `pointer` of the run in `dir` onto `device`, for a run
/// configured by `config`.
pub fn load(
    dir: &Path,
    pointer: &Checkpoint,
    config: &Config,
    device: &Device,
) -> Result<TrainState> {
    let model = load_model(&dir.join(&pointer.model), config, device)?;
    // Manual Adam's checkpoints from before it was computed in place keep Burn's Adam
    // state instead of the moments; such a run carries on with Burn's Adam, which takes
    // the same steps to the bit.
    let burns_adam = config.adam_in_place() && pointer.moments.is_none();
    let optimizer = match (config.burn_optimizer() || burns_adam, &pointer.optimizer) {
        (true, Some(file)) => {
            let path = dir.join(file);
            default_device_follows(device);
            let optim =
                optimizer_for(&config.train)
                    .load(&path)
                    .map_err(|e| Error::LoadOptimizer {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
            Some(optim)
        }
        (true, None) => {
            let problem = if burns_adam {
                "the run's update is Adam in manual mode, but the checkpoint has neither \
                 Adam's moments nor Burn's optimizer state"
                    .to_string()
            } else {
                format!(
                    "the run's update is Burn's {} optimizer, but the checkpoint has no optimizer state",
                    config.train.optimizer.name()
                )
            };
            return Err(Error::RunFile {
                path: dir.join(files::CHECKPOINT),
                problem,
            });
        }
        (false, _) => None,
    };
    let velocity = match (
        &pointer.velocity,
        config.burn_optimizer(),
        config.train.optimizer,
    ) {
        (Some(file), false, OptimizerKind::Momentum) => Some(Gradients::from_net(&load_model(
            &dir.join(file),
            config,
            device,
        )?)),
        _ => None,
    };
    let moments = match (&pointer.moments, config.adam_in_place()) {
        (Some(files), true) => {
            let set = |file: &PathBuf| {
                load_model(&dir.join(file), config, device).map(|net| Gradients::from_net(&net))
            };
            Some(AdamMoments {
                first: set(&files.first)?,
                second: set(&files.second)?,
                steps: files.steps,
            })
        }
        // Burn's Adam state, loaded above.
        (None, true) => None,
        (_, false) => None,
    };
    Ok(TrainState {
        model,
        optimizer,
        velocity,
        moments,
        at: pointer.position,
        history: pointer.history.clone(),
    })
}

/// Burn's `ModuleOptimizer::load` puts the state it reads on `Device::default()`
/// (the next step moves it to the parameters' device). With wgpu compiled in, that
/// default is the GPU: a CPU run would start the GPU runtime to hold its Adam moments
/// for one step, and fail where the machine has no adapter. Burn reads `BURN_DEVICE`
/// for that default, so for a CPU `device` it is pointed at the CPU backend before the
/// first optimizer state is loaded (unless the user has set it).
fn default_device_follows(device: &Device) {
    static PINNED: Once = Once::new();
    let word = match device.as_dispatch() {
        DispatchDevice::NdArray(_) => "ndarray",
        DispatchDevice::Flex(_) => "flex",
        _ => return,
    };
    PINNED.call_once(|| {
        if std::env::var_os("BURN_DEVICE").is_none() {
            // SAFETY: `set_var` is unsound only while another thread reads the
            // environment. This runs once, before the first optimizer state of the
            // process is loaded; the threads alive then (rayon's workers, idle between
            // tensor operations) do not read the environment.
            unsafe { std::env::set_var("BURN_DEVICE", word) };
        }
    });
}

/// Loads a network of the shape `config` describes from a Burn record file, with an
/// error naming the file and what does not match.
pub fn load_model(path: &Path, config: &Config, device: &Device) -> Result<TwoLayerNet> {
    if !path.exists() {
        return Err(Error::MissingFile {
            path: path.to_path_buf(),
            what: "model file",
            hint: "".into(),
        });
    }
    let blank = TwoLayerNet::new(config.model.hidden, config.model.init, config.seed, device);
    blank.try_load_file(path).map_err(|e| Error::LoadModel {
        path: path.to_path_buf(),
        hidden: config.model.hidden,
        reason: e.to_string(),
    })
}
