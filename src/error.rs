//! The crate's error types. Each variant carries the file, key or shape that was wrong,
//! so the message a user sees says where to look.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong reading an IDX file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// An MNIST file that is in its directory neither gzipped (`path`) nor raw (`path`
    /// without `.gz`).
    #[error(
        "{path}: not found, nor without .gz (an MNIST directory holds \
         train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and \
         t10k-labels-idx1-ubyte, each raw or gzipped)"
    )]
    Missing {
        /// The gzipped name looked for.
        path: PathBuf,
    },
    /// The file has no bytes at all.
    #[error("{path}: the file is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The name ends in `.gz` but the content is not gzip.
    #[error("{path}: named .gz but is not a gzip file")]
    NotGzip {
        /// The file.
        path: PathBuf,
    },
    /// The gzip stream is corrupt or ends early.
    #[error("{path}: corrupt or truncated gzip stream: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        source: std::io::Error,
    },
    /// Fewer bytes than the header needs.
    #[error("{path}: too short for an IDX header ({found} bytes, need {needed})")]
    Header {
        /// The file.
        path: PathBuf,
        /// Header length for this kind of file.
        needed: usize,
        /// Bytes present.
        found: usize,
    },
    /// The magic number is not the one this kind of file must have.
    #[error(
        "{path}: bad magic number {found} (expected {expected}){}",
        swapped_idx_kind(*found, *expected)
    )]
    Magic {
        /// The file.
        path: PathBuf,
        /// 2051 for images, 2049 for labels.
        expected: u32,
        /// What the file has.
        found: u32,
    },
    /// Images are not 28 × 28.
    #[error("{path}: images are {rows}×{cols} pixels; MNIST images must be 28×28")]
    Dimensions {
        /// The file.
        path: PathBuf,
        /// Declared rows.
        rows: usize,
        /// Declared columns.
        cols: usize,
    },
    /// The data after the header is not as long as the header declares.
    #[error("{path}: header declares {expected} data bytes but the file holds {found}")]
    Length {
        /// The file.
        path: PathBuf,
        /// Bytes the header declares.
        expected: usize,
        /// Bytes present after the header.
        found: usize,
    },
    /// A label is not a digit 0–9.
    #[error("{path}: label {label} at index {index} is outside 0-9")]
    Label {
        /// The file.
        path: PathBuf,
        /// Position of the first bad label.
        index: usize,
        /// Its value.
        label: u8,
    },
    /// An image file and its label file disagree in count.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Its count.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Its count.
        label_count: usize,
    },
}

/// A configuration that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Invalid TOML, an unknown key or a wrong type (the message names line and key).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line, column and key.
        message: String,
    },
    /// A value that parses but cannot be used.
    #[error("{path}: `{key}` {problem}")]
    Invalid {
        /// The file (or `<command line>` for a flag).
        path: PathBuf,
        /// Dotted key, e.g. `train.learning_rate`.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Any failure of a training or evaluation run.
///
/// Every variant names what to look at: the file (and key, line or shape), or the
/// device and what it was doing. More variants may come as the crate grows.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad data file.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file or directory of the run could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A path given as a run directory is not a directory.
    #[error("{path}: no such run directory")]
    NotARunDir {
        /// The path given.
        path: PathBuf,
    },
    /// A new run was asked to write where a file (not a directory) already is.
    #[error("{path}: exists and is not a directory; choose another --out")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// A new run was asked to write into a directory that already holds one.
    #[error(
        "{dir}: already holds a run (metrics.csv); choose another --out{}",
        if *.resumable { ", remove it, or continue it with --resume" } else { " or remove it" }
    )]
    RunExists {
        /// The run directory.
        dir: PathBuf,
        /// Whether it has a checkpoint to continue from (an imported run, or one stopped
        /// in its first epoch, has none).
        resumable: bool,
    },
    /// Another process is training in the directory (it holds the run's `train.lock`).
    #[error(
        "{dir}: a run is being trained there by {holder}; a run directory takes one \
         trainer at a time: wait for it to end or stop it (Ctrl-C), or choose another \
         directory",
        holder = holder(*.pid)
    )]
    RunBusy {
        /// The run directory.
        dir: PathBuf,
        /// The process id the trainer wrote in `train.lock`, once written.
        pid: Option<u32>,
    },
    /// A file the run needs is not there.
    #[error("{path}: {what} not found{hint}")]
    MissingFile {
        /// The file.
        path: PathBuf,
        /// What it should hold, e.g. "model file".
        what: &'static str,
        /// What to do about it (empty, or starting with a space).
        hint: std::borrow::Cow<'static, str>,
    },
    /// A file of the run directory (`checkpoint.json`, `summary.json`) that cannot be
    /// used.
    #[error("{path}: {problem}")]
    RunFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A network file holds no network of the configured shape.
    #[error("{path}: cannot load a network with hidden = {hidden} from it: {reason}")]
    LoadModel {
        /// The model file.
        path: PathBuf,
        /// The hidden size the run's config asks for.
        hidden: usize,
        /// Burn's reason (it names the shape it found).
        reason: String,
    },
    /// The optimizer state of a checkpoint cannot be loaded.
    #[error("{path}: cannot load optimizer state: {reason}")]
    LoadOptimizer {
        /// The optimizer file.
        path: PathBuf,
        /// Burn's reason.
        reason: String,
    },
    /// A Burn record (network or optimizer state) could not be written.
    #[error("{path}: cannot save {what}: {reason}")]
    SaveRecord {
        /// The file.
        path: PathBuf,
        /// "the model", "checkpoint" or "optimizer state".
        what: &'static str,
        /// Burn's reason.
        reason: String,
    },
    /// Exported or imported weights (safetensors, npz) that cannot be written or read.
    #[error("{path}: {problem}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// A row of `metrics.csv` that is not a `wall_time,step,tag,value` row.
    #[error("{path}: line {line}: {problem}")]
    Metrics {
        /// The metrics file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A figure of the report could not be drawn or written.
    #[error("{path}: cannot {action}: {reason}")]
    Figure {
        /// The figure's file.
        path: PathBuf,
        /// "draw" or "write PNG".
        action: &'static str,
        /// The drawing library's reason.
        reason: String,
    },
    /// An image file could not be decoded.
    #[error("{path}: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A tensor or slice of the wrong size was passed to a public function.
    #[error("{what} has {found}; expected {expected}")]
    Shape {
        /// The argument, e.g. "X" or "images".
        what: &'static str,
        /// The shape or length it should have.
        expected: String,
        /// The shape or length it has.
        found: String,
    },
    /// A label that is not a class of the network.
    #[error("label {label} of image {index} is not a class 0-9")]
    Label {
        /// Position of the image.
        index: usize,
        /// Its label.
        label: u8,
    },
    /// A set of images that must not be empty is.
    #[error("there are no {what} images")]
    NoImages {
        /// Which set, e.g. "training".
        what: &'static str,
    },
    /// The thread making distorted training images stopped before the epoch's last
    /// batch (it panicked; the panic is reported with it).
    #[error("the thread making the augmented training images stopped early")]
    Augmentation,
    /// The training run's threads could not be started.
    #[error("cannot start the training threads: {reason}")]
    Threads {
        /// What the operating system said.
        reason: String,
    },
    /// The loss became NaN, infinite or exploded.
    #[error(
        "training diverged at step {step}: the loss was {loss} (NaN, infinite or above 100). \
         Try a smaller train.learning_rate (it is {learning_rate}). The run is marked \
         diverged in {dir}/summary.json and metrics.csv; {kept}",
        dir = dir.display(),
        kept = match last_good_epoch {
            Some(epoch) => format!("the last good checkpoint (epoch {epoch}) is kept"),
            None => "no epoch had finished, so there is no checkpoint".to_string(),
        }
    )]
    Diverged {
        /// The first step whose loss was out of bounds.
        step: usize,
        /// Its loss.
        loss: f64,
        /// α of the run.
        learning_rate: f64,
        /// The run directory.
        dir: PathBuf,
        /// The epoch of the checkpoint kept, if one had been saved.
        last_good_epoch: Option<usize>,
    },
    /// The device failed while computing (out of memory, a lost device…).
    #[error("the device failed while {during}: {message}")]
    Device {
        /// What the program was doing, e.g. "training (step 12)".
        during: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// The chosen backend cannot run here.
    #[error("backend `{backend}`: {message}")]
    Backend {
        /// The backend word.
        backend: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// The web server could not listen on the address it was given.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// `host:port` as given.
        address: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure of the device while `during`, from Burn's report `source` (often many
    /// lines of "Caused by"), reduced to the line that says what happened and a hint.
    ///
    /// Burn 0.22 hands a device's failures over as `ExecutionError`, whose variants carry
    /// the backend's reason as text only: CubeCL's typed allocation error is already
    /// flattened into it. So the one condition worth a hint of its own, a buffer that
    /// could not be allocated, is recognised by CubeCL's wording of it.
    ///
    /// ```
    /// let e = mnist_nn::Error::device("evaluating", "device lost\nCaused by: x");
    /// assert_eq!(e.to_string(), "the device failed while evaluating: device lost");
    /// // W1 of 50,000 hidden units: 784 × 50,000 floats.
    /// let e = mnist_nn::Error::device("training", "failed\n  can't allocate buffer of size: 156800000");
    /// assert!(e.to_string().contains("a buffer of 157 MB; try a smaller train.batch_size or model.hidden"));
    /// ```
    pub fn device(during: impl Into<String>, source: impl std::fmt::Display) -> Self {
        let report = source.to_string();
        let allocation = report
            .lines()
            .find_map(|l| l.trim().strip_prefix("can't allocate buffer of size: "))
            .and_then(|bytes| bytes.trim().parse::<u64>().ok());
        let message = match allocation {
            Some(bytes) => format!(
                "it could not allocate a buffer of {:.0} MB; try a smaller train.batch_size \
                 or model.hidden, or a CPU backend (--backend flex or ndarray)",
                bytes as f64 / 1e6
            ),
            None => report.lines().next().unwrap_or("unknown error").to_string(),
        };
        Error::Device {
            during: during.into(),
            message,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// A trainer named by its process id, for [`Error::RunBusy`].
fn holder(pid: Option<u32>) -> String {
    pid.map_or("another process".into(), |pid| format!("process {pid}"))
}

/// The hint for an IDX file of the other kind (labels where images belong, or the
/// reverse), the likeliest slip with the four MNIST files: empty for any other number.
fn swapped_idx_kind(found: u32, expected: u32) -> &'static str {
    use crate::data::idx::{IMAGES_MAGIC, LABELS_MAGIC};
    match (found, expected) {
        (LABELS_MAGIC, IMAGES_MAGIC) => ": this is a labels file, where an images file belongs",
        (IMAGES_MAGIC, LABELS_MAGIC) => ": this is an images file, where a labels file belongs",
        _ => "",
    }
}
