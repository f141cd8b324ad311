//! The run a server serves: the trained network loaded once (as `predict` loads it),
//! its first and second layer weights on the host for the page's pictures of hidden
//! units, and the test set with the network's answer to each image, for browsing.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use rand::Rng;
use serde::Serialize;

use crate::backend::BackendKind;
use crate::config::Config;
use crate::data::MnistSplit;
use crate::data::classes::class_names;
use crate::error::{Error, Result};
use crate::eval::{Activations, Prediction, activations, mistakes, score};
use crate::logging::Summary;
use crate::model::{HostParams, TwoLayerNet};
use crate::run_dir::{RunDir, Which};
use crate::{IMAGE_PIXELS, NUM_CLASSES};

/// A trained run, ready to answer.
#[derive(Debug)]
pub struct LoadedRun {
    run: RunDir,
    backend: BackendKind,
    model: TwoLayerNet,
    device: Device,
    params: HostParams,
    test: std::result::Result<TestSet, String>,
    classes: Vec<String>,
}

/// The test set and what the network makes of it.
#[derive(Debug)]
pub struct TestSet {
    dir: PathBuf,
    split: MnistSplit,
    predictions: Vec<Prediction>,
    mistakes: Vec<usize>,
    accuracy: f64,
}

/// A hidden unit: its incoming weights (a row of `W1`, drawn as a 28×28 picture), its
/// bias, and its outgoing weights (a column of `W2`, one per digit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HiddenUnit {
    /// Index in `0..hidden`.
    pub unit: usize,
    /// `b1[unit]`.
    pub bias: f32,
    /// `W1[unit, :]`: 784 weights, row-major 28×28.
    pub weights: Vec<f32>,
    /// `W2[:, unit]`: how much the unit's activation adds to each digit's logit.
    pub outgoing: [f32; NUM_CLASSES],
}

/// A test image as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestImage {
    /// Index in the test set.
    pub index: usize,
    /// Its label.
    pub label: u8,
    /// Its 784 pixels in `[0, 1]`.
    pub input: [f32; IMAGE_PIXELS],
}

/// Which test image to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// This one.
    Index(usize),
    /// Any, at random.
    Random,
    /// Any the network gets wrong, at random.
    Mistake,
}

/// The test-set figures in `GET /api/model`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestSummary {
    /// The directory read.
    pub dir: PathBuf,
    /// Images.
    pub images: usize,
    /// Fraction the loaded network gets right.
    pub accuracy: f64,
    /// Images it gets wrong.
    pub mistakes: usize,
}

/// What `GET /api/model` says.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo<'a> {
    /// The run directory.
    pub run: &'a Path,
    /// Hidden units.
    pub hidden: usize,
    /// The backend the network runs on here.
    pub backend: BackendKind,
    /// The run's config (as trained).
    pub config: &'a Config,
    /// The run's `summary.json`, when it has one.
    pub summary: Option<&'a Summary>,
    /// The test set, when it could be read.
    pub test: Option<TestSummary>,
    /// Why the test set cannot be browsed, when it cannot.
    pub test_unavailable: Option<&'a str>,
    /// Request limits.
    pub limits: Limits,
    /// The classes' names, in label order (the digits for MNIST; see
    /// [`crate::data::classes`]).
    pub classes: Vec<String>,
}

/// The limits on `POST /api/predict` bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Largest body.
    pub max_body_bytes: usize,
    /// Largest picture width or height.
    pub max_image_side: u32,
}

impl LoadedRun {
    /// Loads the run in `dir` onto `backend` (default: the run's own), and the test set
    /// from `data` (default: the run's `data.dir`) with the network's answer to every
    /// image. The run's own test set that cannot be read is not an error (browsing is
    /// then unavailable, with the reason); one named by `data` is.
    pub fn load(dir: &Path, backend: Option<BackendKind>, data: Option<&Path>) -> Result<Self> {
        Self::from_run(RunDir::open(dir)?, Which::Last, backend, data)
    }

    /// [`LoadedRun::load`] from a run directory already opened, with the network
    /// `which` names.
    pub fn from_run(
        run: RunDir,
        which: Which,
        backend: Option<BackendKind>,
        data: Option<&Path>,
    ) -> Result<Self> {
        let backend = backend.unwrap_or(run.config().backend);
        let device = backend.device()?;
        let model = run.load(which, &device)?;
        let params = model
            .to_host()
            .map_err(|e| Error::device("reading the parameters back", e))?;
        let test_dir = data.unwrap_or(&run.config().data.dir).to_path_buf();
        // Without the run's own test set the page still draws; a set asked for by name
        // (`--data`) that does not read is an error.
        let test = match MnistSplit::read_test(&test_dir) {
            Ok(split) => Ok(TestSet::new(&test_dir, split, &model, &device)?),
            Err(e) if data.is_some() => return Err(e.into()),
            Err(e) => Err(e.to_string()),
        };
        let classes = class_names(&run.config().data.dataset, &test_dir)?;
        Ok(Self {
            run,
            backend,
            model,
            device,
            params,
            test,
            classes,
        })
    }

    /// The network's parameters, on the host.
    pub fn params(&self) -> &HostParams {
        &self.params
    }

    /// What the network computes for one input.
    pub fn look(&self, input: &[f32; IMAGE_PIXELS]) -> Result<Activations> {
        activations(&self.model, input, &self.device)
    }

    /// Number of hidden units.
    pub fn hidden(&self) -> usize {
        self.params.hidden
    }

    /// Hidden unit `unit`, or `None` past the last.
    pub fn unit(&self, unit: usize) -> Option<HiddenUnit> {
        let h = self.params.hidden;
        if unit >= h {
            return None;
        }
        let mut outgoing = [0.0f32; NUM_CLASSES];
        for (d, w) in outgoing.iter_mut().enumerate() {
            *w = self.params.w2[d * h + unit];
        }
        Some(HiddenUnit {
            unit,
            bias: self.params.b1[unit],
            weights: self.params.w1[unit * IMAGE_PIXELS..(unit + 1) * IMAGE_PIXELS].to_vec(),
            outgoing,
        })
    }

    /// The test set, or why there is none.
    pub fn test_set(&self) -> std::result::Result<&TestSet, &str> {
        self.test.as_ref().map_err(String::as_str)
    }

    /// The description served by `GET /api/model`.
    pub fn info(&self, limits: Limits) -> ModelInfo<'_> {
        ModelInfo {
            run: self.run.path(),
            hidden: self.hidden(),
            backend: self.backend,
            config: self.run.config(),
            summary: self.run.summary(),
            test: self.test.as_ref().ok().map(TestSet::summary),
            test_unavailable: self.test.as_ref().err().map(String::as_str),
            limits,
            classes: self.classes.clone(),
        }
    }
}

impl TestSet {
    fn new(dir: &Path, split: MnistSplit, model: &TwoLayerNet, device: &Device) -> Result<Self> {
        let scored = score(model, &split.to_device(device))?;
        let mistakes: Vec<usize> = mistakes(&scored.predictions, &split.labels)
            .into_iter()
            .map(|m| m.index)
            .collect();
        // From the answers themselves, so that the count of mistakes and the accuracy
        // agree to the image.
        let n = split.len();
        let accuracy = if n == 0 {
            0.0
        } else {
            (n - mistakes.len()) as f64 / n as f64
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            split,
            predictions: scored.predictions,
            mistakes,
            accuracy,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.split.len()
    }

    /// True when the test set holds no image.
    pub fn is_empty(&self) -> bool {
        self.split.is_empty()
    }

    /// The network's answer to each image, in order.
    pub fn predictions(&self) -> &[Prediction] {
        &self.predictions
    }

    /// The image `pick` names, or `None` when there is no such image (an index past
    /// the end, or no mistake to show).
    pub fn pick(&self, pick: Pick) -> Option<TestImage> {
        let mut rng = rand::rng();
        let index = match pick {
            Pick::Index(i) => i,
            Pick::Random if self.is_empty() => return None,
            Pick::Random => rng.random_range(0..self.len()),
            Pick::Mistake if self.mistakes.is_empty() => return None,
            Pick::Mistake => self.mistakes[rng.random_range(0..self.mistakes.len())],
        };
        Some(TestImage {
            index,
            label: *self.split.labels.get(index)?,
            input: self.split.image(index)?,
        })
    }

    fn summary(&self) -> TestSummary {
        TestSummary {
            dir: self.dir.clone(),
            images: self.len(),
            accuracy: self.accuracy,
            mistakes: self.mistakes.len(),
        }
    }
}
