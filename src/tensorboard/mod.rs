//! TensorBoard event files, written beside `metrics.csv` as a run trains, so that
//! `tensorboard --logdir artifacts` shows every run: the same scalars as `metrics.csv`
//! (same tags, steps and wall times), per evaluated epoch histograms of `W1`, `b1`,
//! `W2`, `b2` and the first layer's weights as an image, and the run's config as text.
//!
//! A file is a sequence of TFRecords ([`record`]) holding `tensorflow.Event` protocol
//! buffers ([`proto`], encoded by `prost`). Each training session (a start or a
//! `--resume`) writes a file of its own, `events.out.tfevents.<seconds>.<host>.mnist-nn`;
//! a resumed session first logs a `SessionLog START` at its first step, which tells
//! TensorBoard to drop whatever an earlier file logged from that step on (epochs a
//! killed run finished after its last checkpoint), so the steps read as one run.

pub mod proto;
pub mod record;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use self::proto::{
    Event, Histogram, Image, Kind, PluginData, SessionLog, Summary, SummaryMetadata, TensorProto,
    TensorShape, Value, What,
};
use crate::error::{Error, Result};

/// Buckets of a histogram: equal widths between the values' least and greatest.
pub const BUCKETS: usize = 30;

/// Seconds since the Unix epoch, as event files and `metrics.csv` record them.
pub fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Appends events to one event file.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates a new event file in `dir` and writes its version record. With
    /// `resumed_at = Some(step)`, also a `SessionLog START` at `step + 1` (the first step
    /// the resumed session takes), so that readers drop what an earlier session logged
    /// past the checkpoint.
    pub fn create(dir: &Path, resumed_at: Option<usize>) -> Result<Self> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let now = wall_time();
        let mut name = format!("events.out.tfevents.{}.{host}.mnist-nn", now as u64);
        // Two sessions in the same second (a quick resume) get distinct files.
        let mut n = 1;
        while dir.join(&name).exists() {
            n += 1;
            name = format!("events.out.tfevents.{}.{host}.mnist-nn.{n}", now as u64);
        }
        let path = dir.join(name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut writer = Self {
            path,
            out: BufWriter::new(file),
        };
        writer.write(Event {
            wall_time: now,
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        if let Some(step) = resumed_at {
            writer.write(Event {
                wall_time: now,
                step: step as i64 + 1,
                what: Some(What::SessionLog(SessionLog {
                    status: 1,
                    msg: format!("resumed from the checkpoint at step {step}"),
                })),
            })?;
        }
        writer.flush()?;
        Ok(writer)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One scalar.
    pub fn scalar(&mut self, wall_time: f64, step: usize, tag: &str, value: f64) -> Result<()> {
        self.value(wall_time, step, tag, None, Kind::SimpleValue(value as f32))
    }

    /// A histogram of `values` in [`BUCKETS`] equal buckets (nothing for no values).
    pub fn histogram(
        &mut self,
        wall_time: f64,
        step: usize,
        tag: &str,
        values: &[f32],
    ) -> Result<()> {
        let Some(histo) = histogram(values) else {
            return Ok(());
        };
        self.value(wall_time, step, tag, None, Kind::Histo(histo))
    }

    /// A PNG image of `width × height` pixels with `channels` channels (1, 3 or 4).
    pub fn image(
        &mut self,
        wall_time: f64,
        step: usize,
        tag: &str,
        png: Vec<u8>,
        [width, height, channels]: [u32; 3],
    ) -> Result<()> {
        let image = Image {
            height: height as i32,
            width: width as i32,
            colorspace: channels as i32,
            encoded_image_string: png,
        };
        self.value(wall_time, step, tag, None, Kind::Image(image))
    }

    /// A text (Markdown), shown by TensorBoard's text plugin.
    pub fn text(&mut self, wall_time: f64, step: usize, tag: &str, text: &str) -> Result<()> {
        let metadata = SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "text".into(),
            }),
        };
        let tensor = TensorProto {
            dtype: 7, // DT_STRING
            tensor_shape: Some(TensorShape {}),
            string_val: vec![text.as_bytes().to_vec()],
        };
        self.value(wall_time, step, tag, Some(metadata), Kind::Tensor(tensor))
    }

    /// Writes buffered events to disk.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }

    fn value(
        &mut self,
        wall_time: f64,
        step: usize,
        tag: &str,
        metadata: Option<SummaryMetadata>,
        kind: Kind,
    ) -> Result<()> {
        self.write(Event {
            wall_time,
            step: step as i64,
            what: Some(What::Summary(Summary {
                value: vec![Value {
                    tag: tag.to_string(),
                    metadata,
                    kind: Some(kind),
                }],
            })),
        })
    }

    fn write(&mut self, event: Event) -> Result<()> {
        let framed = record::frame(&event.encode_to_vec());
        self.out
            .write_all(&framed)
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// The histogram of `values`: count, extremes, sum, sum of squares and [`BUCKETS`]
/// equal buckets whose right edges are the limits (the last one the greatest value).
pub fn histogram(values: &[f32]) -> Option<Histogram> {
    let first = f64::from(*values.first()?);
    let (mut min, mut max, mut sum, mut sum_squares) = (first, first, 0.0, 0.0);
    for &v in values {
        let v = f64::from(v);
        min = min.min(v);
        max = max.max(v);
        sum += v;
        sum_squares += v * v;
    }
    let width = (max - min) / BUCKETS as f64;
    let mut bucket = vec![0.0; BUCKETS];
    for &v in values {
        let i = if width > 0.0 {
            (((f64::from(v) - min) / width).ceil() as usize).clamp(1, BUCKETS) - 1
        } else {
            0
        };
        bucket[i] += 1.0;
    }
    let bucket_limit = (1..=BUCKETS)
        .map(|i| {
            if i == BUCKETS {
                max
            } else {
                min + width * i as f64
            }
        })
        .collect();
    Some(Histogram {
        min,
        max,
        num: values.len() as f64,
        sum,
        sum_squares,
        bucket_limit,
        bucket,
    })
}
