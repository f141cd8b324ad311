//! Training started from the page: one run at a time, on its own thread, through the
//! same [`crate::run::run`] as `mnist-nn train` (so the run directory holds the same
//! files), with Pause, Step, Resume and Stop, and its progress published to a [`Hub`]
//! that every viewer's event stream reads.
//!
//! The loop publishes; it never waits on a viewer. Per published step it reads back a
//! handful of numbers (loss, accuracy, norms), at most every [`LOOK_EVERY`]; the W1
//! tiles at most every [`WEIGHTS_EVERY`]; the confusion matrix once per evaluated
//! epoch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

mod figures;
mod live;

use serde::Serialize;

use self::live::Live;
use super::events::{Hub, Keep};
use crate::config::Config;
use crate::model::TwoLayerNet;
use crate::run::{load_data, run_on};
use crate::run_dir::{Claim, RunDir};
use crate::train::Ending;

/// Least time between two published steps (while running; every step is published
/// while stepping by hand).
pub const LOOK_EVERY: Duration = Duration::from_millis(250);
/// Least time between two published pictures of W1.
pub const WEIGHTS_EVERY: Duration = Duration::from_millis(1000);
/// Steps a late viewer is sent first.
const RECENT_STEPS: usize = 2000;

/// Where a training is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Nothing started yet.
    #[default]
    Idle,
    /// Stepping.
    Running,
    /// Waiting for Resume, Step or Stop.
    Paused,
    /// Asked to stop: finishing the batch and saving a checkpoint.
    Stopping,
    /// Every epoch ran (or a rule of the config stopped it).
    Finished,
    /// Stopped on request, with a checkpoint (`--resume` continues it).
    Stopped,
    /// An error ended it (see the message).
    Failed,
}

impl State {
    /// Running, paused or stopping: a training holds the trainer.
    pub fn is_active(self) -> bool {
        matches!(self, State::Running | State::Paused | State::Stopping)
    }
}

/// What `GET /api/train` answers, and every `state` event.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Status {
    /// Where the training is.
    pub state: State,
    /// The run's name (its directory's).
    pub run: Option<String>,
    /// Its directory.
    pub dir: Option<String>,
    /// The current epoch, 1-based (0 before the first).
    pub epoch: usize,
    /// Epochs in all.
    pub epochs: usize,
    /// Gradient steps done.
    pub step: usize,
    /// Steps per epoch.
    pub batches: usize,
    /// Steps in the whole run.
    pub total_steps: usize,
    /// Why it failed, or how it ended.
    pub message: Option<String>,
}

/// What a request to the trainer may get wrong: an HTTP status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 409, …
    pub status: u16,
    /// For the user.
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// Pause, Step and Stop, as the loop sees them after each batch.
#[derive(Debug, Default)]
struct Control {
    flags: Mutex<Flags>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Flags {
    paused: bool,
    /// Batches that may still run while paused (Step).
    steps: usize,
    stop: bool,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, Flags> {
        self.flags.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The server's one training, and its viewers.
#[derive(Debug, Default)]
pub struct Trainer {
    hub: Hub,
    session: Mutex<Session>,
}

#[derive(Debug, Default)]
struct Session {
    status: Status,
    control: Arc<Control>,
    /// The network as last published, for the Equations view.
    latest: Option<TwoLayerNet>,
}

impl Trainer {
    /// The training's status now.
    pub fn status(&self) -> Status {
        self.lock().status.clone()
    }

    /// The training's network as last published (`None` before the first step).
    pub fn latest_model(&self) -> Option<TwoLayerNet> {
        self.lock().latest.clone()
    }

    /// A new viewer of the training's events (`None` when too many watch).
    pub fn subscribe(&self) -> Option<super::events::EventStream> {
        self.hub.subscribe()
    }

    /// Viewers connected now.
    pub fn viewers(&self) -> usize {
        self.hub.viewers()
    }

    /// Starts training `config` into a new directory under `artifacts` (named after the
    /// config, `-2`, `-3`… when taken). 409 while another training is active.
    pub fn start(self: &Arc<Self>, config: Config, artifacts: &Path) -> Result<Status, Refusal> {
        let mut session = self.lock();
        if session.status.state.is_active() {
            return Err(refuse(
                409,
                format!(
                    "a run is already training: {}; stop it first",
                    session.status.run.as_deref().unwrap_or("?")
                ),
            ));
        }
        if !config.data.dir.is_dir() {
            return Err(refuse(
                400,
                format!(
                    "data.dir: {} is not a directory (it should hold the four IDX files)",
                    config.data.dir.display()
                ),
            ));
        }
        let claim =
            RunDir::claim(artifacts, &config.name).map_err(|e| refuse(500, e.to_string()))?;
        let dir = claim.path();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let control = Arc::new(Control::default());
        session.control = Arc::clone(&control);
        session.latest = None;
        session.status = Status {
            state: State::Running,
            run: Some(name),
            dir: Some(dir.display().to_string()),
            epochs: config.train.epochs,
            ..Status::default()
        };
        let status = session.status.clone();
        self.hub.clear();
        self.hub.publish("state", Keep::Latest, &status);
        drop(session);
        let trainer = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("training".into())
            .spawn(move || trainer.train(config, claim, control));
        if let Err(e) = spawned {
            self.finish(State::Failed, Some(format!("cannot start a thread: {e}")));
        }
        Ok(status)
    }

    /// Pause: the loop waits after its current batch.
    pub fn pause(&self) -> Result<Status, Refusal> {
        self.control(|f| f.paused = true)
    }

    /// Resume after a pause.
    pub fn resume(&self) -> Result<Status, Refusal> {
        self.control(|f| {
            f.paused = false;
            f.steps = 0;
        })
    }

    /// Exactly one more batch, then paused again.
    pub fn step(&self) -> Result<Status, Refusal> {
        self.control(|f| {
            f.paused = true;
            f.steps += 1;
        })
    }

    /// Stop after the current batch, with a checkpoint (as Ctrl-C does).
    pub fn stop(&self) -> Result<Status, Refusal> {
        let status = self.control(|f| f.stop = true)?;
        Ok(self.set_state(State::Stopping).unwrap_or(status))
    }

    fn control(&self, change: impl FnOnce(&mut Flags)) -> Result<Status, Refusal> {
        let session = self.lock();
        if !session.status.state.is_active() {
            return Err(refuse(409, "nothing is training: start a run first"));
        }
        let control = Arc::clone(&session.control);
        let status = session.status.clone();
        drop(session);
        change(&mut control.lock());
        control.changed.notify_all();
        Ok(status)
    }

    /// The training thread: runs to the end and publishes how it ended.
    /// `claim` is the run's new directory, removed if the run fails before writing to it.
    fn train(self: Arc<Self>, config: Config, claim: Claim, control: Arc<Control>) {
        let started = std::time::Instant::now();
        let form = PathBuf::from("the Train form");
        // The images are read once: the run trains on them, and the page's confusion
        // matrix is taken on their test split.
        let data = match load_data(&config, &form) {
            Ok(data) => data,
            Err(e) => return self.finish(State::Failed, Some(e.to_string())),
        };
        let test = config
            .backend
            .device()
            .ok()
            .map(|device| (data.test.to_device(&device), data.test.labels.clone()));
        let mut live = Live::new(&self, control, test);
        match run_on(config, &data, claim.path(), &mut live, started) {
            Ok(outcome) => {
                let (state, message) = match outcome.ending {
                    Ending::Interrupted => (
                        State::Stopped,
                        "stopped with a checkpoint; `mnist-nn --resume <its directory>` continues it",
                    ),
                    Ending::Stopped(_) => (State::Finished, "a rule of the config ended it"),
                    _ => (State::Finished, "all epochs ran"),
                };
                self.finish(state, Some(message.into()));
            }
            Err(e) => self.finish(State::Failed, Some(e.to_string())),
        }
    }

    fn finish(&self, state: State, message: Option<String>) {
        let mut session = self.lock();
        session.status.state = state;
        session.status.message = message;
        let status = session.status.clone();
        drop(session);
        self.hub.publish("state", Keep::Latest, &status);
    }

    /// Sets the state, and publishes it when it changed.
    fn set_state(&self, state: State) -> Option<Status> {
        let mut session = self.lock();
        if session.status.state == state || !session.status.state.is_active() {
            return None;
        }
        session.status.state = state;
        let status = session.status.clone();
        drop(session);
        self.hub.publish("state", Keep::Latest, &status);
        Some(status)
    }

    fn update(&self, change: impl FnOnce(&mut Session)) {
        change(&mut self.lock());
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }
}
