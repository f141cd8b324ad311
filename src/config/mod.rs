//! The run configuration: a TOML file parsed into typed structs, with command-line
//! overrides, and every value checked in one place ([`Config::validate`]).
//!
//! ```toml
//! name = "sgd"            # outputs go to artifacts/<name>/
//! seed = 42
//! mode = "manual"         # manual | autodiff
//! backend = "flex"        # flex | ndarray | wgpu
//!
//! [model]
//! hidden = 128
//! init = "he"             # he | uniform
//!
//! [train]
//! epochs = 10
//! batch_size = 64         # or "full"
//! learning_rate = 0.1
//! optimizer = "sgd"       # sgd | momentum | nesterov | adam | adamw; weight_decay = λ
//!
//! [train.schedule]        # optional; constant when absent (see crate::schedule)
//! kind = "cosine"         # constant | step | cosine | linear
//! warmup_epochs = 1       # cosine, linear; step takes every = N and factor = f
//!
//! [data]
//! dir = "data/mnist"
//! validation = 5000
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod validate;

use crate::augment::Augment;
use crate::backend::BackendKind;
use crate::error::ConfigError;
use crate::model::Init;
use crate::schedule::Schedule;
use crate::word::UnknownWord;

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run name; outputs go to `artifacts/<name>/` unless `--out` says otherwise.
    pub name: String,
    /// Seeds the initial weights and the per-epoch shuffles.
    #[serde(default)]
    pub seed: u64,
    /// Which gradients train the network.
    #[serde(default)]
    pub mode: Mode,
    /// Where the tensors live.
    #[serde(default)]
    pub backend: BackendKind,
    /// The network.
    pub model: ModelConfig,
    /// The optimisation.
    pub train: TrainConfig,
    /// The data.
    #[serde(default)]
    pub data: DataConfig,
}

/// Which gradients train the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The hand-derived backward ([`crate::manual`]), and the seed's gradient descent
    /// (or momentum, or Adam) computed in place, or a Burn optimizer
    /// ([`Config::burn_optimizer`]).
    #[default]
    Manual,
    /// Burn's autodiff of the mean cross-entropy and a Burn optimizer.
    Autodiff,
}

impl Mode {
    /// Every mode, in the order `--help` lists them.
    pub const ALL: [Mode; 2] = [Mode::Manual, Mode::Autodiff];

    /// The word used on the command line, in configs and in `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Manual => "manual",
            Mode::Autodiff => "autodiff",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Mode {
    type Err = UnknownWord;

    /// ```
    /// use mnist_nn::config::Mode;
    /// assert_eq!("autodiff".parse::<Mode>(), Ok(Mode::Autodiff));
    /// let e = "auto".parse::<Mode>().unwrap_err();
    /// assert_eq!(e.to_string(), "unknown mode `auto`; expected one of: manual, autodiff");
    /// ```
    fn from_str(word: &str) -> Result<Self, Self::Err> {
        UnknownWord::pick("mode", Mode::ALL, Mode::name, word)
    }
}

/// The widest hidden layer a config may ask for: 65,536 units, 82 times Simard's 800
/// and 16 times the bench's widest. Its `W1` alone is 784 × 65,536 floats (205 MB);
/// 2³² + 1 units once aborted on allocating 13 TB, and 2⁶³ − 1 overflowed `W1`'s size
/// (a panic).
pub const MAX_HIDDEN: usize = 1 << 16;

/// The network's shape and starting point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Hidden units, 1 to [`MAX_HIDDEN`].
    pub hidden: usize,
    /// Weight initialisation.
    #[serde(default)]
    pub init: Init,
}

/// The optimisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per gradient step.
    pub batch_size: BatchSize,
    /// `α` of `W -= α·dW`.
    pub learning_rate: f64,
    /// The update: in `manual` mode `sgd` and `momentum` (without `weight_decay`) are
    /// computed in place ([`crate::update`]), the others by the Burn optimizer on the
    /// hand-derived gradients; in `autodiff` mode every one is the Burn optimizer's.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Evaluate on validation and test images every this many epochs (and after the
    /// last).
    #[serde(default = "one")]
    pub eval_every: usize,
    /// Weight decay λ of the Burn optimizer: an L2 penalty for sgd, momentum, nesterov
    /// and adam, the decoupled decay of adamw (0.01 when absent). In manual mode it
    /// makes even `sgd` and `momentum` the Burn optimizer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// Stop when the validation accuracy reaches this fraction (e.g. 0.98), logging
    /// the time it took as `time/to_target_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_accuracy: Option<f64>,
    /// Stop when this many evaluations in a row have not beaten the best validation
    /// accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// How the rate changes from step to step (`[train.schedule]`; constant when
    /// absent).
    #[serde(default, skip_serializing_if = "Schedule::is_constant")]
    pub schedule: Schedule,
    /// How the training images are distorted each epoch (`[train.augment]`; not at all
    /// when absent).
    #[serde(default, skip_serializing_if = "Augment::is_off")]
    pub augment: Augment,
    /// Manual mode on the flex backend: compute `W1·X` and `dZ1·Xᵀ` over the nonzero pixels
    /// of a batch only ([`crate::sparse`]) when they are few enough to pay (true, the
    /// default), or always as dense matrix products (false). The same gradients up to
    /// the order of float sums.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub sparse_input: bool,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A Burn optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Plain SGD: `W -= α·dW`, the same update as manual mode.
    #[default]
    Sgd,
    /// SGD with momentum 0.9 (no dampening, as PyTorch).
    Momentum,
    /// SGD with Nesterov momentum 0.9.
    Nesterov,
    /// Adam with β = (0.9, 0.999), ε = 1e-8.
    Adam,
    /// AdamW (Adam with decoupled weight decay), β = (0.9, 0.999), ε = 1e-8.
    #[serde(rename = "adamw")]
    AdamW,
}

impl OptimizerKind {
    /// The word used in configs.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Nesterov => "nesterov",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
        }
    }
}

/// Images per step: a number, or every training image (`"full"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// Full-batch gradient descent.
    Full,
    /// Mini-batches of this many images (the last one may be smaller).
    Size(usize),
}

impl BatchSize {
    /// The batch size for `n` training images.
    pub fn resolve(self, n: usize) -> usize {
        match self {
            BatchSize::Full => n,
            BatchSize::Size(s) => s,
        }
    }
}

impl fmt::Display for BatchSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchSize::Full => f.write_str("full"),
            BatchSize::Size(s) => write!(f, "{s}"),
        }
    }
}

impl Serialize for BatchSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BatchSize::Full => s.serialize_str("full"),
            BatchSize::Size(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum, so that serde's own errors (a missing
        // `batch_size`, a float) come through as they are instead of one catch-all.
        d.deserialize_any(BatchSizeVisitor)
    }
}

/// Reads `batch_size`: a non-negative integer (0 is refused by validation, which names
/// the key) or the word `"full"`.
struct BatchSizeVisitor;

impl serde::de::Visitor<'_> for BatchSizeVisitor {
    type Value = BatchSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a positive integer or \"full\"")
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<BatchSize, E> {
        usize::try_from(n)
            .map(BatchSize::Size)
            .map_err(|_| E::custom(format!("batch size {n} is too large")))
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<BatchSize, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::custom(format!(
                "expected a positive integer or \"full\", found {n}"
            ))),
        }
    }

    fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<BatchSize, E> {
        if word == "full" {
            Ok(BatchSize::Full)
        } else {
            Err(E::custom(format!(
                "expected a positive integer or \"full\", found \"{word}\""
            )))
        }
    }
}

/// Where the data is and how it is split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Directory of the four MNIST IDX files (raw or `.gz`), relative to the current
    /// directory.
    #[serde(default = "default_data_dir")]
    pub dir: PathBuf,
    /// The last this-many training images are held out for validation (0 allowed).
    #[serde(default = "default_validation")]
    pub validation: usize,
    /// Train on the first this-many training images only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Which data set the files hold, for the class names (`mnist`, `fashion-mnist`,
    /// `kmnist`; a `classes.txt` beside the files takes precedence).
    #[serde(default = "default_dataset", skip_serializing_if = "is_mnist")]
    pub dataset: String,
}

fn default_dataset() -> String {
    "mnist".into()
}

fn is_mnist(name: &str) -> bool {
    name == "mnist"
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data/mnist")
}

fn default_validation() -> usize {
    5000
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: default_data_dir(),
            validation: default_validation(),
            limit: None,
            dataset: default_dataset(),
        }
    }
}

/// Values from the command line that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--backend`.
    pub backend: Option<BackendKind>,
    /// `--mode`.
    pub mode: Option<Mode>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--epochs`.
    pub epochs: Option<usize>,
}

thread_local! {
    /// Configs parsed on this thread, for [`parses_on_this_thread`].
    static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether `name` may name a run (and so a directory): letters, digits, `-`, `_` and
/// `.`, not empty and not starting with a dot (so never `..` or a path).
///
/// ```
/// assert!(mnist_nn::config::valid_name("sgd-2"));
/// assert!(!mnist_nn::config::valid_name("../sgd") && !mnist_nn::config::valid_name("a b"));
/// ```
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.chars().all(name_char)
}

/// A character a run name may hold.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// `name` made into a valid run name: each character [`valid_name`] refuses becomes
/// `-`, leading dots are dropped, and an empty result is `imported`.
pub fn name_from(name: &str) -> String {
    let made: String = name
        .trim_start_matches('.')
        .chars()
        .map(|c| if name_char(c) { c } else { '-' })
        .collect();
    if made.is_empty() {
        "imported".into()
    } else {
        made
    }
}

/// How many times [`Config::parse`] (and so [`Config::load`]) has run on the calling
/// thread: lets a test check that a command reads a run's `config.toml` once.
pub fn parses_on_this_thread() -> usize {
    PARSES.with(std::cell::Cell::get)
}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::parse(&text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Parses TOML text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::parse_with(text, path, |e| {
            let message = e.to_string().trim_end().to_string();
            let hint = did_you_mean(&message).unwrap_or_default();
            format!("{message}{hint}")
        })
    }

    /// Parses TOML text written from the page's Train form (its JSON through
    /// `toml::to_string`) as [`Config::parse`] does, with errors that name the key
    /// (`` `model.hidden`: invalid value… ``) rather than a line and column of a text
    /// that the sender never saw.
    pub fn parse_form(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::parse_with(text, path, |e| keyed_message(text, e))
    }

    /// The one parse behind [`Config::parse`] and [`Config::parse_form`], with the
    /// error's message worded by `message`.
    fn parse_with(
        text: &str,
        path: &Path,
        message: impl FnOnce(&toml::de::Error) -> String,
    ) -> Result<Self, ConfigError> {
        PARSES.with(|n| n.set(n.get() + 1));
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: message(&e),
        })
    }

    /// Applies command-line overrides; `--epochs 0` and the like are caught by
    /// [`Config::validate`] afterwards.
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(b) = o.backend {
            self.backend = b;
        }
        if let Some(m) = o.mode {
            self.mode = m;
        }
        if let Some(s) = o.seed {
            self.seed = s;
        }
        if let Some(e) = o.epochs {
            self.train.epochs = e;
        }
    }

    /// Whether the update is a Burn optimizer's, with a state a checkpoint keeps: always
    /// in autodiff mode; in manual mode for every update but the three it computes in
    /// place ([`crate::update`]): plain gradient descent and momentum without weight
    /// decay, and Adam with or without its L2 penalty ([`Config::adam_in_place`]).
    ///
    /// ```
    /// use std::path::Path;
    /// use mnist_nn::config::Config;
    /// let text = |optimizer: &str| format!(
    ///     "name = \"n\"\nmode = \"manual\"\n[model]\nhidden = 8\n[train]\nepochs = 1\nbatch_size = 8\n\
    ///      learning_rate = 0.1\noptimizer = \"{optimizer}\"\n[data]\ndir = \"d\"\n");
    /// let manual = |o: &str| Config::parse(&text(o), Path::new("x.toml")).unwrap();
    /// assert!(!manual("momentum").burn_optimizer());
    /// assert!(!manual("adam").burn_optimizer());
    /// assert!(manual("adam").adam_in_place());
    /// assert!(manual("nesterov").burn_optimizer());
    /// ```
    pub fn burn_optimizer(&self) -> bool {
        self.mode == Mode::Autodiff
            || (!self.adam_in_place()
                && (self.train.weight_decay.is_some()
                    || !matches!(
                        self.train.optimizer,
                        OptimizerKind::Sgd | OptimizerKind::Momentum
                    )))
    }

    /// Whether the update is Adam computed in place ([`crate::adam`]): manual mode with
    /// `optimizer = "adam"`, its `weight_decay` the L2 penalty.
    pub fn adam_in_place(&self) -> bool {
        self.mode == Mode::Manual && self.train.optimizer == OptimizerKind::Adam
    }

    /// The config as TOML, as written to a run's `config.toml`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
    }
}

/// A parse error's message led by the dotted key it is about, where its span points
/// into one `key = value` line (else by the table it is in, if any).
fn keyed_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let hint = did_you_mean(message).unwrap_or_default();
    // A missing field's span is the table that lacks it, not a line of its own.
    let key = if message.starts_with("missing field") {
        e.span().and_then(|span| table_at(text, span.start))
    } else {
        e.span().and_then(|span| key_at(text, span))
    };
    match key {
        Some(key) => format!("`{key}`: {message}{hint}"),
        None => format!("{message}{hint}"),
    }
}

/// The table name of a `[table]` header line.
fn header(line: &str) -> Option<String> {
    let name = line.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(name.to_string())
}

/// Where the line holding byte `at` starts.
fn line_start(text: &str, at: usize) -> Option<usize> {
    Some(text.get(..at)?.rfind('\n').map_or(0, |i| i + 1))
}

/// The table whose header is on, or nearest above, the line of byte `at`; `None` at
/// the top level.
fn table_at(text: &str, at: usize) -> Option<String> {
    let start = line_start(text, at)?;
    let line = text[start..].lines().next().unwrap_or("");
    header(line).or_else(|| text[..start].lines().rev().find_map(header))
}

/// The dotted key of the `key = value` line that `span` lies in, or the table whose
/// header `span` starts at; `None` for a span over several lines.
fn key_at(text: &str, span: std::ops::Range<usize>) -> Option<String> {
    let start = line_start(text, span.start)?;
    let line = text[start..].lines().next()?;
    if let Some(table) = header(line) {
        return Some(table);
    }
    if span.end > start + line.len() {
        return None;
    }
    let (key, _) = line.split_once('=')?;
    Some(match table_at(text, span.start) {
        Some(table) => format!("{table}.{}", key.trim()),
        None => key.trim().to_string(),
    })
}

/// For serde's "unknown field `X`, expected one of `a`, `b`" (or "unknown variant"),
/// a suggestion of the expected name closest to `X` when it is a likely typo: at most
/// two edits (one for names of up to four letters), where swapping two neighbouring
/// letters counts as one edit (`sede` → `seed`).
fn did_you_mean(message: &str) -> Option<String> {
    let line = message
        .lines()
        .find(|l| l.contains("unknown field `") || l.contains("unknown variant `"))?;
    let mut quoted = line.split('`').skip(1).step_by(2);
    let unknown = quoted.next()?;
    let (best, distance) = quoted
        .map(|candidate| (candidate, strsim::osa_distance(unknown, candidate)))
        .min_by_key(|(_, d)| *d)?;
    let limit = if unknown.chars().count() <= 4 { 1 } else { 2 };
    (distance <= limit).then(|| format!("\ndid you mean `{best}`?"))
}
