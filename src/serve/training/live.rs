//! The training thread's observer: Pause, Step and Stop after each batch, and the
//! `step`, `weights` and `epoch` events it publishes.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::figures::Figures;
use super::{Control, LOOK_EVERY, RECENT_STEPS, State, Trainer, WEIGHTS_EVERY};
use crate::data::MnistTensors;
use crate::eval::score;
use crate::model::TwoLayerNet;
use crate::serve::events::Keep;
use crate::train::{EpochRecord, Look, Observer, StateRef};

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
    grad_norms: super::figures::Four<f64>,
    /// `None` (null) where the parameter was all zeros (biases at the start).
    update_ratio: super::figures::Four<Option<f64>>,
    dead_relu: f64,
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
pub(super) struct Live<'a> {
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
    pub(super) fn new(
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
        let m = look.images;
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
