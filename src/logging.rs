//! What a run leaves behind: `metrics.csv` (TensorBoard-style scalars, one per row,
//! flushed every epoch), the same scalars and more in a TensorBoard event file
//! ([`crate::tensorboard`]), and `summary.json`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::config::Mode;
use crate::error::{Error, Result};
use crate::eval::Evaluation;
use burn::prelude::Tensor;

use crate::manual::backward_manual;
use crate::model::TwoLayerNet;
use crate::tensorboard::{self, EventWriter};
use crate::train::{EarlyStop, EpochRecord, Observer};

/// Header of `metrics.csv`.
pub const METRICS_HEADER: &str = "wall_time,step,tag,value";

/// The whole lines of `text`: everything up to its last newline. A run writing
/// `metrics.csv`, or killed while it wrote, can leave half a last row, and half a row
/// may still parse (`0.9284` cut to `0.`), so readers take only what ends in a newline.
///
/// ```
/// use mnist_nn::logging::whole_lines;
/// assert_eq!(whole_lines("a,1\nb,0."), "a,1\n");
/// assert_eq!(whole_lines("a,1\n"), "a,1\n");
/// assert_eq!(whole_lines("a,1"), "");
/// ```
pub fn whole_lines(text: &str) -> &str {
    text.rfind('\n').map_or("", |end| &text[..=end])
}

/// Appends `wall_time,step,tag,value` rows to `metrics.csv`, and each scalar with the
/// same tag, step and wall time to a TensorBoard event file when one is attached
/// ([`MetricsWriter::with_events`]).
#[derive(Debug)]
pub struct MetricsWriter {
    path: PathBuf,
    out: BufWriter<File>,
    events: Option<EventWriter>,
}

impl MetricsWriter {
    /// Creates `path` (which must not exist yet) and writes the header.
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let mut writer = Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            events: None,
        };
        writer.line(METRICS_HEADER)?;
        writer.flush()?;
        Ok(writer)
    }

    /// Opens an existing `path` to add rows after a resume, first dropping the rows
    /// logged after `step` (by a run that went on past its last checkpoint). The file is
    /// rewritten through a temporary file and a rename.
    pub fn append(path: &Path, step: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut kept = format!("{METRICS_HEADER}\n");
        for (i, line) in whole_lines(&text).lines().enumerate() {
            if (i == 0 && line == METRICS_HEADER) || line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            let row_step = match fields.as_slice() {
                [_, step, _, value] if value.parse::<f64>().is_ok() => step.parse::<usize>().ok(),
                _ => None,
            };
            match row_step {
                Some(s) if s > step => {}
                Some(_) => {
                    kept.push_str(line);
                    kept.push('\n');
                }
                None => {
                    return Err(Error::Metrics {
                        path: path.to_path_buf(),
                        line: i + 1,
                        problem: format!("not a `{METRICS_HEADER}` row"),
                    });
                }
            }
        }
        write_atomic(path, kept.as_bytes())?;
        let file = File::options()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            events: None,
        })
    }

    /// Also writes every scalar, the weights and the config to `events`.
    pub fn with_events(mut self, events: EventWriter) -> Self {
        self.events = Some(events);
        self
    }

    /// One scalar. The wall time is rounded to the millisecond that `metrics.csv`
    /// keeps, so the event file holds the very same number.
    pub fn scalar(&mut self, step: usize, tag: &str, value: f64) -> Result<()> {
        let wall_time = (tensorboard::wall_time() * 1000.0).round() / 1000.0;
        self.line(&format!("{wall_time:.3},{step},{tag},{value}"))?;
        if let Some(events) = &mut self.events {
            events.scalar(wall_time, step, tag, value)?;
        }
        Ok(())
    }

    /// The config as text in the event file (TensorBoard's Text tab), at step `step`.
    pub fn config_text(&mut self, step: usize, toml: &str) -> Result<()> {
        if let Some(events) = &mut self.events {
            let text = format!("```toml\n{toml}\n```");
            events.text(tensorboard::wall_time(), step, "config", &text)?;
            events.flush()?;
        }
        Ok(())
    }

    /// Histograms of the parameters and the first layer's weights as tiles, at `step`,
    /// in the event file (when one is attached); with a `probe` batch `(X, Y)`, also
    /// histograms of the gradients `dW1`, `db1`, `dW2`, `db2` of the mean loss on it
    /// (the hand-derived backward, which the tests hold equal to autodiff's).
    pub fn weights(
        &mut self,
        step: usize,
        model: &TwoLayerNet,
        probe: Option<&(Tensor<2>, Tensor<2>)>,
    ) -> Result<()> {
        let Some(events) = &mut self.events else {
            return Ok(());
        };
        let p = model
            .to_host()
            .map_err(|e| Error::device("reading the weights back", e))?;
        let now = tensorboard::wall_time();
        for (tag, values) in [
            ("weights/W1", &p.w1),
            ("weights/b1", &p.b1),
            ("weights/W2", &p.w2),
            ("weights/b2", &p.b2),
        ] {
            events.histogram(now, step, tag, values)?;
        }
        if let Some((x, y)) = probe {
            let g = backward_manual(model, x.clone(), y.clone(), &model.forward(x.clone())).grads;
            let read = |t: Tensor<2>| {
                t.try_into_vec_as::<f32>()
                    .map_err(|e| Error::device("reading the gradients back", e))
            };
            for (tag, values) in [
                ("gradients/dW1", read(g.dw1)?),
                ("gradients/db1", read(g.db1.unsqueeze())?),
                ("gradients/dW2", read(g.dw2)?),
                ("gradients/db2", read(g.db2.unsqueeze())?),
            ] {
                events.histogram(now, step, tag, &values)?;
            }
        }
        let zoom = if p.hidden <= 64 { 2 } else { 1 };
        let tiles = crate::report::tiles::weight_tiles_image(&p.w1, p.hidden, zoom)?;
        let (width, height) = tiles.dimensions();
        let mut png = Vec::new();
        tiles
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| Error::Figure {
                path: events.path().to_path_buf(),
                action: "encode the weight tiles as PNG",
                reason: e.to_string(),
            })?;
        events.image(now, step, "weights/W1_tiles", png, [width, height, 3])?;
        events.flush()
    }

    /// Writes buffered rows and events to disk.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        if let Some(events) = &mut self.events {
            events.flush()?;
        }
        Ok(())
    }

    fn line(&mut self, line: &str) -> Result<()> {
        writeln!(self.out, "{line}").map_err(|e| Error::io(&self.path, e))
    }

    /// Every scalar of one epoch, then a flush.
    pub fn epoch(&mut self, r: &EpochRecord) -> Result<()> {
        let eval = |w: &mut Self, split: &str, e: &Evaluation| -> Result<()> {
            w.scalar(r.step, &format!("{split}/loss"), e.loss)?;
            w.scalar(r.step, &format!("{split}/accuracy"), e.accuracy)
        };
        eval(self, "train", &r.train)?;
        if let Some(v) = &r.valid {
            eval(self, "valid", v)?;
        }
        if let Some(t) = &r.test {
            eval(self, "test", t)?;
        }
        self.scalar(r.step, "epoch", r.epoch as f64)?;
        self.scalar(r.step, "lr", r.lr)?;
        self.scalar(r.step, "time/epoch_s", r.train_seconds)?;
        self.scalar(r.step, "time/eval_s", r.eval_seconds)?;
        if let Some(s) = r.to_target_s {
            self.scalar(r.step, "time/to_target_s", s)?;
        }
        self.flush()
    }
}

impl Observer for MetricsWriter {
    fn epoch_finished(&mut self, record: &EpochRecord) -> Result<()> {
        self.epoch(record)
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Every epoch ran.
    Completed,
    /// Stopped on request (Ctrl-C), with a checkpoint to resume from.
    Interrupted,
    /// The loss blew up; the last good checkpoint is kept.
    Diverged,
    /// A rule of the config (target accuracy, patience) ended it before its last
    /// epoch; the network is saved as for a completed run.
    Stopped,
    /// Not trained here: weights made elsewhere, brought in by `import`.
    Imported,
}

impl Status {
    /// The word written to `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Interrupted => "interrupted",
            Status::Diverged => "diverged",
            Status::Stopped => "stopped",
            Status::Imported => "imported",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The final figures of a run, written to `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Run name.
    pub name: String,
    /// How the run ended.
    pub status: Status,
    /// The backend it trained on.
    pub backend: BackendKind,
    /// Which gradients trained it.
    pub mode: Mode,
    /// Hidden units.
    pub hidden: usize,
    /// Epochs run.
    pub epochs: usize,
    /// Gradient steps taken.
    pub steps: usize,
    /// Images trained on.
    pub train_images: usize,
    /// Last epoch's running training figures (absent if no epoch finished).
    pub train: Option<Evaluation>,
    /// Held-out figures after the last epoch (absent with `data.validation = 0`).
    pub valid: Option<Evaluation>,
    /// Test figures after the last finished epoch.
    pub test: Option<Evaluation>,
    /// Why the run stopped early, when a rule of the config stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<EarlyStop>,
    /// Seconds of training and evaluation until validation accuracy first reached
    /// `train.target_accuracy`, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_target_s: Option<f64>,
    /// The epoch whose network is kept as `model-best.bpk` (best validation
    /// accuracy), when there was a validation split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    /// Seconds of gradient steps, summed over epochs.
    pub train_seconds: f64,
    /// Wall-clock seconds of the whole run.
    pub total_seconds: f64,
}

/// Writes `value` as pretty JSON to `path`, via a temporary file and a rename so that a
/// crash never leaves half a file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::RunFile {
        path: path.to_path_buf(),
        problem: format!("cannot serialise: {e}"),
    })?;
    write_atomic(path, format!("{text}\n").as_bytes())
}

/// Writes `bytes` to `path` through a temporary file beside it (`path` with `.tmp`
/// appended) and a rename, so `path` holds the old bytes or the new, never part of
/// either. Errors name `path`, the file the caller asked for; the temporary file is
/// removed on any error (a full disk keeps no half-written one).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
}
