//! The crate's error types. Each variant carries the file, key or shape that was wrong,
//! so the message a user sees says where to look.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong reading an IDX file.
#[derive(Debug, Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
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
    #[error("{path}: bad magic number {found} (expected {expected})")]
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
#[derive(Debug, Error)]
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
    /// A saved model could not be loaded or saved.
    #[error("{path}: {message}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An image file could not be decoded.
    #[error("{path}: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The loss became NaN, infinite or exploded.
    #[error(
        "training diverged at step {step}: the loss was {loss} (NaN, infinite or above 100). \
         Try a smaller train.learning_rate (it is {learning_rate}). The run is marked \
         diverged in {dir}/summary.json and metrics.csv; {detail}",
        dir = dir.display()
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
        /// What was kept.
        detail: String,
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
    pub fn device(during: impl Into<String>, source: impl std::fmt::Display) -> Self {
        let report = source.to_string();
        let allocation = report
            .lines()
            .find_map(|l| l.trim().strip_prefix("can't allocate buffer of size: "))
            .and_then(|bytes| bytes.trim().parse::<u64>().ok());
        let message = match allocation {
            Some(bytes) => format!(
                "it could not allocate a buffer of {:.0} MB; try a smaller train.batch_size, \
                 or a CPU backend (--backend flex or ndarray)",
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
