//! `mnist-nn`: trains the two-layer network from a TOML config, and uses what it
//! trained (`eval`, `predict`, `report`, `export`, `serve`).
//!
//! This file is the command line and its dispatch; the commands (which print) are in
//! `cli/commands.rs`, the progress display in `cli/progress.rs`, and the work in the
//! library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use mnist_nn::backend::BackendKind;
use mnist_nn::config::Mode;
use mnist_nn::export::Format;
use mnist_nn::run_dir::Which;

mod cli;

use cli::commands;

/// `--backend`: one of the backend words, listed in `--help`.
fn backend_word() -> impl TypedValueParser<Value = BackendKind> {
    PossibleValuesParser::new(BackendKind::ALL.map(BackendKind::name))
        .try_map(|word| word.parse::<BackendKind>())
}

/// `--mode`: manual or autodiff.
fn mode_word() -> impl TypedValueParser<Value = Mode> {
    PossibleValuesParser::new(Mode::ALL.map(Mode::name)).try_map(|word| word.parse::<Mode>())
}

/// `--format`: safetensors, npz or onnx.
fn format_word() -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(Format::ALL.map(Format::extension))
        .try_map(|word| word.parse::<Format>())
}

/// `--epochs`: a whole number, at least 1 (the flag's own error, rather than one
/// about the config's `train.epochs` that the flag replaced).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Train the classic two-layer MNIST network on Burn, with hand-derived (manual) or
/// autodiff gradients, on the CPU or the GPU; then evaluate, predict, report and export.
///
/// Training: `mnist-nn --config configs/sgd.toml`, or `mnist-nn --resume artifacts/<run>/`.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

/// Training (no subcommand).
#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// The run's TOML config (e.g. configs/sgd.toml).
    #[arg(long, value_name = "FILE", required_unless_present = "resume")]
    pub(crate) config: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint, with its own
    /// config.toml (`--epochs` and `--backend` may change).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "mode", "seed", "out"])]
    pub(crate) resume: Option<PathBuf>,
    /// Backend, replacing the config's `backend`.
    #[arg(long, value_parser = backend_word())]
    pub(crate) backend: Option<BackendKind>,
    /// Gradients, replacing the config's `mode`.
    #[arg(long, value_parser = mode_word())]
    pub(crate) mode: Option<Mode>,
    /// Seed, replacing the config's `seed`.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Epochs, replacing the config's `train.epochs` (with --resume: the total to reach).
    #[arg(long, value_parser = at_least_one)]
    pub(crate) epochs: Option<usize>,
    /// Output directory (default: artifacts/<name>, or <name>-2, -3… if taken).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

/// The run directory that `eval`, `report` and `export` read: alone
/// (`mnist-nn eval artifacts/sgd`) or after `--model` (or `--run`).
#[derive(Debug, Args)]
struct RunDirArg {
    /// A run directory (holding config.toml and model.bpk).
    #[arg(
        value_name = "RUN_DIR",
        required_unless_present = "model",
        conflicts_with = "model"
    )]
    dir: Option<PathBuf>,
    /// The same, as an option.
    #[arg(long, value_name = "RUN_DIR", visible_alias = "run")]
    model: Option<PathBuf>,
}

impl RunDirArg {
    /// The directory given, one way or the other (clap requires exactly one).
    fn path(&self) -> anyhow::Result<&Path> {
        self.dir
            .as_deref()
            .or(self.model.as_deref())
            .ok_or_else(|| anyhow::anyhow!("give a run directory (RUN_DIR or --model RUN_DIR)"))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Accuracy, per-digit precision and recall, and the confusion matrix of a trained
    /// model on the test set (or another IDX test set); also written to eval.json.
    Eval {
        #[command(flatten)]
        run: RunDirArg,
        /// Use the network of the epoch with the best validation accuracy
        /// (model-best.bpk) rather than the last.
        #[arg(long)]
        best: bool,
        /// A directory with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]
        /// (default: the run's data.dir).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Backend to evaluate on (default: the run's).
        #[arg(long, value_parser = backend_word())]
        backend: Option<BackendKind>,
        /// Where to write the JSON report (default: RUN_DIR/eval.json).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// The digit in each image (PNG, JPEG or PGM; any size; dark-on-light or
    /// light-on-dark), preprocessed as MNIST was.
    Predict {
        /// A run directory (holding config.toml and model.bpk).
        #[arg(long, value_name = "RUN_DIR", visible_alias = "run")]
        model: PathBuf,
        /// Use the network of the epoch with the best validation accuracy
        /// (model-best.bpk) rather than the last.
        #[arg(long)]
        best: bool,
        /// Print one JSON object per image instead of text.
        #[arg(long)]
        json: bool,
        /// Also show the 28×28 input the network received: as text under each answer,
        /// or as its 784 values (`input`) in the JSON.
        #[arg(long)]
        show: bool,
        /// Backend (default: the run's).
        #[arg(long, value_parser = backend_word())]
        backend: Option<BackendKind>,
        /// The images (`-`: one read from standard input).
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// Pictures of a run in RUN_DIR/report/ (learning curves, confusion matrix, the most
    /// confident mistakes, first-layer weights) gathered by an index.html. Works on a
    /// run that is still training.
    Report {
        #[command(flatten)]
        run: RunDirArg,
        /// Backend to evaluate on (default: the run's).
        #[arg(long, value_parser = backend_word())]
        backend: Option<BackendKind>,
    },
    /// A web page to train the network and watch it learn, see the seed's equations
    /// compute on real digits, follow the runs of a directory, and draw a digit for a
    /// trained network; and the JSON API behind it. Runs until stopped (Ctrl-C).
    Serve {
        /// A run directory (holding config.toml and model.bpk) to draw on: the page
        /// opens on Draw. Without it the page opens on Train.
        #[arg(long, value_name = "RUN_DIR", visible_alias = "run")]
        model: Option<PathBuf>,
        /// The directory whose runs the Runs view lists and follows, and where the
        /// Train view trains (default artifacts); given, the page opens on Runs.
        #[arg(long, value_name = "DIR")]
        watch: Option<PathBuf>,
        /// Serve the training controls to other machines too (by default only to this
        /// one, since training uses its CPU and disk).
        #[arg(long)]
        allow_training: bool,
        /// A name besides localhost and IP addresses by which the page may change this
        /// server (train, open a run, the Equations batch), e.g. the machine's name on
        /// the network (repeatable). Other names are refused, so that a page under
        /// someone else's domain cannot reach the server through DNS rebinding.
        #[arg(long = "allowed-host", value_name = "NAME")]
        allowed_hosts: Vec<String>,
        /// Use the network of the epoch with the best validation accuracy
        /// (model-best.bpk) rather than the last.
        #[arg(long)]
        best: bool,
        /// Address to listen on (default: this machine only; 0.0.0.0 for every interface).
        #[arg(long, default_value = mnist_nn::serve::DEFAULT_HOST)]
        host: String,
        /// Port (0: any free port; the URL printed says which).
        #[arg(long, default_value_t = mnist_nn::serve::DEFAULT_PORT)]
        port: u16,
        /// The test set to browse: a directory with t10k-images-idx3-ubyte[.gz] and
        /// t10k-labels-idx1-ubyte[.gz] (default: the run's data.dir).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Backend (default: the run's).
        #[arg(long, value_parser = backend_word())]
        backend: Option<BackendKind>,
    },
    /// Writes W1, b1, W2, b2 (float32, the design notes' shapes) for use outside Burn,
    /// or the whole forward pass as an ONNX model
    Export {
        #[command(flatten)]
        run: RunDirArg,
        /// Use the network of the epoch with the best validation accuracy
        /// (model-best.bpk) rather than the last.
        #[arg(long)]
        best: bool,
        /// File format (default: the one --out's extension names, else safetensors).
        #[arg(long, value_parser = format_word())]
        format: Option<Format>,
        /// Output file (default: RUN_DIR/model.safetensors, .npz or .onnx).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Makes a run directory from weights trained elsewhere (a .safetensors or .npz with
    /// float32 W1, b1, W2, b2 in the design notes' shapes, or PyTorch's 0.weight, 0.bias,
    /// 2.weight, 2.bias), so that eval, predict, report, serve and export work on them
    Import {
        /// The weights file.
        #[arg(
            value_name = "FILE",
            required_unless_present = "weights",
            conflicts_with = "weights"
        )]
        file: Option<PathBuf>,
        /// The same, as an option.
        #[arg(long, value_name = "FILE")]
        weights: Option<PathBuf>,
        /// The run's name (default: the file's name without its extension).
        #[arg(long)]
        name: Option<String>,
        /// The run directory to make (default: artifacts/<name>).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The MNIST directory whose test set evaluates the weights (and that the run's
        /// config names).
        #[arg(long, value_name = "DIR", default_value = "data/mnist")]
        data: PathBuf,
    },
}

/// `--best`: the network of the best validation accuracy, else the last.
fn which(best: bool) -> Which {
    if best { Which::Best } else { Which::Last }
}

/// Lets a closed output pipe end the process quietly, as it ends other command-line
/// tools (`mnist-nn eval artifacts/sgd | head`): Rust ignores `SIGPIPE`, so the next
/// print would panic instead. A training run ended so keeps its last checkpoint, as
/// after `kill`. Not for `serve`, whose writes to a client that went away
/// must fail and leave the server running. Unix only: Windows has no `SIGPIPE`.
#[cfg(unix)]
fn end_quietly_on_closed_pipe() {
    // SAFETY: `signal` only sets how the process takes SIGPIPE; nothing here depends on
    // the previous disposition, and no other thread has started yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn end_quietly_on_closed_pipe() {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Some(Command::Serve { .. })) {
        end_quietly_on_closed_pipe();
    }
    let result = match &cli.command {
        None => commands::train(&cli.train),
        Some(Command::Eval {
            run,
            best,
            data,
            backend,
            out,
        }) => run.path().and_then(|model| {
            commands::eval(
                model,
                which(*best),
                data.as_deref(),
                *backend,
                out.as_deref(),
            )
        }),
        Some(Command::Predict {
            model,
            best,
            json,
            show,
            backend,
            images,
        }) => commands::predict_images(model, which(*best), images, *backend, *json, *show),
        Some(Command::Report { run, backend }) => {
            run.path().and_then(|run| commands::report(run, *backend))
        }
        Some(Command::Serve {
            model,
            watch,
            allow_training,
            allowed_hosts,
            best,
            host,
            port,
            data,
            backend,
        }) => commands::serve(
            &commands::ServeArgs {
                model: model.as_deref(),
                watch: watch.as_deref(),
                allow_training: *allow_training,
                allowed_hosts: allowed_hosts.clone(),
                which: which(*best),
                data: data.as_deref(),
                backend: *backend,
            },
            host,
            *port,
        ),
        Some(Command::Export {
            run,
            best,
            format,
            out,
        }) => run
            .path()
            .and_then(|model| commands::export(model, which(*best), *format, out.as_deref())),
        Some(Command::Import {
            file,
            weights,
            name,
            out,
            data,
        }) => file
            .as_deref()
            .or(weights.as_deref())
            .ok_or_else(|| anyhow::anyhow!("give a weights file (FILE or --weights FILE)"))
            .and_then(|weights| commands::import(weights, name.as_deref(), out.as_deref(), data)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
