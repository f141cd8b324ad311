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
use std::time::{Duration, Instant};

use burn::prelude::*;
use serde::Serialize;

use super::events::{Hub, Keep};
use crate::config::Config;
use crate::data::{MnistSplit, MnistTensors};
use crate::eval::score;
use crate::manual::backward_manual;
use crate::model::TwoLayerNet;
use crate::run::run;
use crate::run_dir::RunDir;
use crate::train::{Ending, EpochRecord, Look, Observer, StateRef};

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
        std::fs::create_dir_all(artifacts)
            .map_err(|e| refuse(500, format!("cannot create {}: {e}", artifacts.display())))?;
        let dir = RunDir::first_free(artifacts, &config.name);
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
            .spawn(move || trainer.train(config, dir, control));
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
    fn train(self: Arc<Self>, config: Config, dir: PathBuf, control: Arc<Control>) {
        let form = PathBuf::from("the Train form");
        let test = load_test(&config);
        let mut live = Live::new(&self, control, test);
        match run(config, &form, &dir, &mut live) {
            Ok(outcome) => {
                let (state, message) = match outcome.ending {
                    Ending::Interrupted => (
                        State::Stopped,
                        "stopped with a checkpoint; `mnist-nn train --resume` continues it",
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

/// The test set on the training's device, for the confusion matrix (`None` when it
/// cannot be read: the run itself then says why).
fn load_test(config: &Config) -> Option<(MnistTensors, Vec<u8>)> {
    let split = MnistSplit::read_test(&config.data.dir).ok()?;
    let device = config.backend.device().ok()?;
    let labels = split.labels.clone();
    Some((split.to_device(&device), labels))
}

/// A `step` event.
#[derive(Debug, Serialize)]
struct StepEvent {
    step: usize,
    epoch: usize,
    batch: usize,
    loss: f64,
    accuracy: f64,
    lr: f64,
    images_per_s: f64,
    progress: f64,
    grad_norms: Four<f64>,
    /// `None` (null) where the parameter was all zeros (biases at the start).
    update_ratio: Four<Option<f64>>,
    dead_relu: f64,
}

/// One value per parameter.
#[derive(Debug, Serialize, Clone, Copy)]
#[allow(non_snake_case)] // named as the parameters are in the design notes
struct Four<T> {
    W1: T,
    b1: T,
    W2: T,
    b2: T,
}

/// A `weights` event.
#[derive(Debug, Serialize)]
struct WeightsEvent {
    step: usize,
    hidden: usize,
    png: String,
}

/// An `epoch` event.
#[derive(Debug, Serialize)]
struct EpochEvent<'a> {
    epoch: usize,
    step: usize,
    lr: f64,
    seconds: f64,
    train: &'a crate::eval::Evaluation,
    valid: Option<&'a crate::eval::Evaluation>,
    test: Option<&'a crate::eval::Evaluation>,
    confusion: Option<Vec<[usize; 10]>>,
}

/// The observer on the training thread: control after each batch, and what it
/// publishes.
struct Live<'a> {
    trainer: &'a Trainer,
    control: Arc<Control>,
    test: Option<(MnistTensors, Vec<u8>)>,
    epoch: usize,
    batches: usize,
    step: usize,
    /// Sampled batches' loss and accuracy in this epoch: (loss sum, accuracy sum, n).
    running: (f64, f64, usize),
    last_look: Option<Instant>,
    last_weights: Option<Instant>,
    /// Steps and images since the last look, and when the count began (reset after a
    /// pause so that waiting is not counted).
    since: (usize, Instant),
    /// The epoch record to publish with its confusion matrix at the checkpoint.
    record: Option<EpochRecord>,
    /// True while stepping by hand: every step is published.
    stepping: bool,
}

impl<'a> Live<'a> {
    fn new(
        trainer: &'a Trainer,
        control: Arc<Control>,
        test: Option<(MnistTensors, Vec<u8>)>,
    ) -> Self {
        Self {
            trainer,
            control,
            test,
            epoch: 0,
            batches: 0,
            step: 0,
            running: (0.0, 0.0, 0),
            last_look: None,
            last_weights: None,
            since: (0, Instant::now()),
            record: None,
            stepping: false,
        }
    }

    /// Waits while paused, letting one batch through per Step; returns when running,
    /// stepping or stopping.
    fn wait_while_paused(&mut self) {
        let control = Arc::clone(&self.control);
        let mut flags = control.lock();
        let mut announced = false;
        loop {
            if flags.stop {
                return;
            }
            if !flags.paused {
                self.stepping = false;
                if announced {
                    self.trainer.set_state(State::Running);
                    self.since = (0, Instant::now());
                }
                return;
            }
            if flags.steps > 0 {
                flags.steps -= 1;
                self.stepping = true;
                return;
            }
            if !announced {
                self.trainer.set_state(State::Paused);
                announced = true;
            }
            flags = control
                .changed
                .wait(flags)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn publish_step(&mut self, look: &Look<'_>) -> Option<()> {
        let figures = Figures::of(look)?;
        self.running.0 += figures.loss;
        self.running.1 += figures.accuracy;
        self.running.2 += 1;
        let (steps, from) = self.since;
        let seconds = from.elapsed().as_secs_f64();
        let m = look.x.dims()[1];
        let total = (self.batches * self.trainer.status().epochs).max(1);
        let event = StepEvent {
            step: look.step,
            epoch: look.epoch,
            batch: look.batch,
            loss: self.running.0 / self.running.2 as f64,
            accuracy: self.running.1 / self.running.2 as f64,
            lr: look.rate,
            images_per_s: if seconds > 0.0 && steps > 0 {
                (steps * m) as f64 / seconds
            } else {
                0.0
            },
            progress: (look.step as f64 / total as f64).min(1.0),
            grad_norms: figures.grad_norms,
            update_ratio: figures.update_ratio,
            dead_relu: figures.dead_relu,
        };
        self.since = (0, Instant::now());
        self.trainer
            .hub
            .publish("step", Keep::Recent(RECENT_STEPS), &event);
        Some(())
    }

    fn publish_weights(&mut self, step: usize, model: &TwoLayerNet) -> Option<()> {
        let host = model.to_host().ok()?;
        let tiles = crate::report::tiles::weight_tiles_image(&host.w1, host.hidden, 1).ok()?;
        let mut png = Vec::new();
        tiles
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .ok()?;
        use base64::Engine as _;
        let event = WeightsEvent {
            step,
            hidden: host.hidden,
            png: format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&png)
            ),
        };
        self.trainer.hub.publish("weights", Keep::Latest, &event);
        Some(())
    }

    fn publish_epoch(&mut self, record: &EpochRecord, model: &TwoLayerNet) {
        let confusion = match (&self.test, record.test.is_some()) {
            (Some((test, labels)), true) => score(model, test).ok().map(|scored| {
                let mut counts = vec![[0usize; 10]; 10];
                for (p, &label) in scored.predictions.iter().zip(labels) {
                    if let Some(row) = counts.get_mut(usize::from(label)) {
                        row[p.digit.min(9)] += 1;
                    }
                }
                counts
            }),
            _ => None,
        };
        let event = EpochEvent {
            epoch: record.epoch,
            step: record.step,
            lr: record.lr,
            seconds: record.train_seconds,
            train: &record.train,
            valid: record.valid.as_ref(),
            test: record.test.as_ref(),
            confusion,
        };
        self.trainer.hub.publish("epoch", Keep::All, &event);
    }
}

impl Observer for Live<'_> {
    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        self.epoch = epoch;
        self.batches = batches;
        self.running = (0.0, 0.0, 0);
        let status = {
            let mut session = self.trainer.lock();
            session.status.epoch = epoch;
            session.status.batches = batches;
            session.status.total_steps = batches * session.status.epochs;
            session.status.clone()
        };
        self.trainer.hub.publish("state", Keep::Latest, &status);
    }

    fn batch_finished(&mut self, _batch: usize) {
        self.step += 1;
        self.since.0 += 1;
        let step = self.step;
        self.trainer
            .update(|s| s.status.step = s.status.step.max(step));
        if self.stepping {
            // A hand step done: show its number right away.
            let status = self.trainer.status();
            self.trainer.hub.publish("state", Keep::Latest, &status);
        }
        self.wait_while_paused();
    }

    fn epoch_finished(&mut self, record: &EpochRecord) -> crate::Result<()> {
        self.step = record.step;
        self.record = Some(record.clone());
        Ok(())
    }

    fn checkpoint(&mut self, state: &StateRef<'_>) -> crate::Result<()> {
        self.trainer
            .update(|s| s.latest = Some(state.model.clone()));
        if let Some(record) = self.record.take() {
            self.publish_epoch(&record, state.model);
        }
        Ok(())
    }

    fn stop_requested(&mut self) -> bool {
        self.control.lock().stop
    }

    fn wants_look(&mut self, step: usize) -> bool {
        self.step = step - 1;
        self.stepping || step == 1 || self.last_look.is_none_or(|t| t.elapsed() >= LOOK_EVERY)
    }

    fn look(&mut self, look: &Look<'_>) {
        self.last_look = Some(Instant::now());
        // What cannot be read back is left out of the page, not a reason to stop.
        let _ = self.publish_step(look);
        if self.stepping
            || self
                .last_weights
                .is_none_or(|t| t.elapsed() >= WEIGHTS_EVERY)
        {
            self.last_weights = Some(Instant::now());
            let _ = self.publish_weights(look.step, look.after);
        }
        self.trainer.update(|s| s.latest = Some(look.after.clone()));
    }
}

/// What a published step shows, read back from the device at once.
struct Figures {
    loss: f64,
    accuracy: f64,
    grad_norms: Four<f64>,
    update_ratio: Four<Option<f64>>,
    dead_relu: f64,
}

impl Figures {
    /// The step's figures: the gradients of the network the step started from (by the
    /// hand-derived backward, equal to autodiff's), how far each parameter moved
    /// relative to its size, and the hidden units silent on the whole batch.
    fn of(look: &Look<'_>) -> Option<Self> {
        let (x, y) = (look.x.clone(), look.y.clone());
        let forward = look.before.forward(x.clone());
        let m = x.dims()[1];
        let hidden = forward.a1.dims()[0];
        let back = backward_manual(look.before, x, y.clone(), &forward);
        let g = back.grads;
        let (b, a) = (look.before, look.after);
        let sq2 = |t: Tensor<2>| t.powf_scalar(2.0).sum();
        let sq1 = |t: Tensor<1>| t.powf_scalar(2.0).sum();
        let correct = forward.a2.argmax(0).equal(y.argmax(0)).float().sum();
        let dead = forward.a1.max_dim(1).equal_elem(0.0).float().sum();
        let parts = vec![
            look.loss.clone().sum(),
            correct,
            dead,
            sq2(g.dw1),
            sq1(g.db1),
            sq2(g.dw2),
            sq1(g.db2),
            sq2(b.W1.val()),
            sq1(b.b1.val()),
            sq2(b.W2.val()),
            sq1(b.b2.val()),
            sq2(a.W1.val() - b.W1.val()),
            sq1(a.b1.val() - b.b1.val()),
            sq2(a.W2.val() - b.W2.val()),
            sq1(a.b2.val() - b.b2.val()),
        ];
        let v: Vec<f64> = Tensor::cat(parts, 0)
            .try_into_vec_as::<f32>()
            .ok()?
            .into_iter()
            .map(f64::from)
            .collect();
        let ratio = |delta: f64, weight: f64| (weight > 0.0).then(|| (delta / weight).sqrt());
        Some(Self {
            loss: v[0],
            accuracy: v[1] / m as f64,
            dead_relu: v[2] / hidden.max(1) as f64,
            grad_norms: Four {
                W1: v[3].sqrt(),
                b1: v[4].sqrt(),
                W2: v[5].sqrt(),
                b2: v[6].sqrt(),
            },
            update_ratio: Four {
                W1: ratio(v[11], v[7]),
                b1: ratio(v[12], v[8]),
                W2: ratio(v[13], v[9]),
                b2: ratio(v[14], v[10]),
            },
        })
    }
}
