//! `mnist-nn`: trains the two-layer network from a TOML config, and uses what it
//! trained (`eval`, `predict`, `report`, `export`, `serve`).
//!
//! Parses the command line, prints progress, and hands the work to the library.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mnist_nn::backend::BackendKind;
use mnist_nn::config::{Config, Mode, Overrides};
use mnist_nn::export::Format;
use mnist_nn::run::ResumeOverrides;
use mnist_nn::train::{Ending, EpochRecord, Evaluation, Observer, StateRef};

mod commands;

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
struct TrainArgs {
    /// The run's TOML config (e.g. configs/sgd.toml).
    #[arg(long, value_name = "FILE", required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint, with its own
    /// config.toml (`--epochs` and `--backend` may change).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "mode", "seed", "out"])]
    resume: Option<PathBuf>,
    /// Backend, replacing the config's `backend`.
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Gradients, replacing the config's `mode`.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Seed, replacing the config's `seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// Epochs, replacing the config's `train.epochs` (with --resume: the total to reach).
    #[arg(long)]
    epochs: Option<usize>,
    /// Output directory (default: artifacts/<name>, or <name>-2, -3… if taken).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Accuracy, per-digit precision and recall, and the confusion matrix of a trained
    /// model on the test set (or another IDX test set); also written to eval.json.
    Eval {
        /// A run directory (holding config.toml and model.bpk).
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
        /// A directory with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]
        /// (default: the run's data.dir).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Backend to evaluate on (default: the run's).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Where to write the JSON report (default: RUN_DIR/eval.json).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// The digit in each image (PNG, JPEG or PGM; any size; dark-on-light or
    /// light-on-dark), preprocessed as MNIST was.
    Predict {
        /// A run directory (holding config.toml and model.bpk).
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
        /// Print one JSON object per image instead of text.
        #[arg(long)]
        json: bool,
        /// Backend (default: the run's).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// The images.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// Pictures of a run in RUN_DIR/report/ (learning curves, confusion matrix, the most
    /// confident mistakes, first-layer weights) gathered by an index.html. Works on a
    /// run that is still training.
    Report {
        /// The run directory.
        #[arg(long, value_name = "RUN_DIR")]
        run: PathBuf,
        /// Backend to evaluate on (default: the run's).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// A web page on which you draw a digit and watch the network read it (what it
    /// sees, its hidden layer, its answer), with the test set to browse, and the JSON
    /// API behind it. Runs until stopped (Ctrl-C).
    Serve {
        /// A run directory (holding config.toml and model.bpk).
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
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
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
    },
    /// Writes W1, b1, W2, b2 (float32, the design notes' shapes) for use outside Burn.
    Export {
        /// A run directory (holding config.toml and model.bpk).
        #[arg(long, value_name = "RUN_DIR")]
        model: PathBuf,
        /// File format.
        #[arg(long, value_enum, default_value = "safetensors")]
        format: Format,
        /// Output file (default: RUN_DIR/model.safetensors or RUN_DIR/model.npz).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Set by the first Ctrl-C: training stops after the current batch.
static STOP: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    // Burn puts loaded optimizer state on its default device until the next step moves
    // it; without this the default would be the GPU, initialised even for CPU runs.
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("BURN_DEVICE", "ndarray") };
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        None => train(&cli.train),
        Some(Command::Eval {
            model,
            data,
            backend,
            out,
        }) => commands::eval(model, data.as_deref(), *backend, out.as_deref()),
        Some(Command::Predict {
            model,
            json,
            backend,
            images,
        }) => commands::predict_images(model, images, *backend, *json),
        Some(Command::Report { run, backend }) => commands::report(run, *backend),
        Some(Command::Serve {
            model,
            host,
            port,
            data,
            backend,
        }) => commands::serve(model, host, *port, data.as_deref(), *backend),
        Some(Command::Export { model, format, out }) => {
            commands::export(model, *format, out.as_deref())
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn train(cli: &TrainArgs) -> anyhow::Result<ExitCode> {
    let mut ui = Progress::new();
    let interrupts = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting now; the last checkpoint is kept");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: stopping after this batch (press again to quit at once)");
    });
    if let Err(e) = interrupts {
        eprintln!("warning: Ctrl-C will not checkpoint before stopping: {e}");
    }
    let (dir, outcome) = if let Some(dir) = &cli.resume {
        let overrides = ResumeOverrides {
            epochs: cli.epochs,
            backend: cli.backend,
        };
        eprintln!("resuming {} from its last checkpoint", dir.display());
        let saved = Config::load(&dir.join(mnist_nn::run::files::CONFIG))?;
        ui.epochs = Some(cli.epochs.unwrap_or(saved.train.epochs));
        (
            dir.clone(),
            mnist_nn::run::resume(dir, &overrides, &mut ui)?,
        )
    } else {
        let config_path = cli.config.as_deref().unwrap_or(Path::new("config.toml"));
        let mut config = Config::load(config_path)?;
        config.apply(&Overrides {
            backend: cli.backend,
            mode: cli.mode,
            seed: cli.seed,
            epochs: cli.epochs,
        });
        config.validate(Path::new("<command line>"))?;
        let dir = mnist_nn::run::run_dir(Path::new("artifacts"), &config.name, cli.out.as_deref());
        eprintln!(
            "training {} (hidden {}, {} mode, backend {}, batch {}, α {}, {} epochs) → {}",
            config.name,
            config.model.hidden,
            format!("{:?}", config.mode).to_lowercase(),
            config.backend,
            config.train.batch_size,
            config.train.learning_rate,
            config.train.epochs,
            dir.display()
        );
        ui.epochs = Some(config.train.epochs);
        let outcome = mnist_nn::run::run(&config, config_path, &dir, &mut ui)?;
        (dir, outcome)
    };
    let summary = &outcome.summary;
    if outcome.ending == Ending::Interrupted {
        eprintln!(
            "interrupted after {} steps; checkpoint and logs saved in {}. Continue with:\n  \
             cargo run --release -- --resume {}",
            ui.steps,
            dir.display(),
            dir.display()
        );
        return Ok(ExitCode::from(130));
    }
    let pct =
        |e: Option<Evaluation>| e.map_or("-".into(), |e| format!("{:.2}%", 100.0 * e.accuracy));
    eprintln!(
        "done in {:.1} s: test accuracy {}, test loss {}, validation accuracy {}; outputs in {}",
        summary.total_seconds,
        pct(summary.test),
        summary
            .test
            .map_or("-".into(), |t| format!("{:.4}", t.loss)),
        pct(summary.valid),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Progress on stderr: a bar within each epoch on a terminal, a few plain lines
/// otherwise, and one line per evaluated epoch.
struct Progress {
    epochs: Option<usize>,
    steps: usize,
    terminal: bool,
    bar: Option<ProgressBar>,
    batches: usize,
    epoch: usize,
    epoch_started: Instant,
}

impl Progress {
    fn new() -> Self {
        Self {
            epochs: None,
            steps: 0,
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            batches: 0,
            epoch: 0,
            epoch_started: Instant::now(),
        }
    }
}

impl Progress {
    fn total(&self) -> String {
        self.epochs.map_or("?".into(), |e| e.to_string())
    }
}

impl Observer for Progress {
    fn checkpoint(&mut self, state: &StateRef<'_>) -> mnist_nn::Result<()> {
        self.steps = state.at.step;
        Ok(())
    }

    fn stop_requested(&mut self) -> bool {
        STOP.load(Ordering::SeqCst)
    }

    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        self.batches = batches;
        self.epoch = epoch;
        self.epoch_started = Instant::now();
        if self.terminal && batches > 1 {
            let bar = ProgressBar::new(batches as u64).with_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} batches, {elapsed} elapsed, eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{}", self.total()));
            self.bar = Some(bar);
        }
    }

    fn batch_finished(&mut self, batch: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        } else if !self.terminal
            && self.batches >= 100
            && (batch + 1).is_multiple_of(self.batches / 4)
        {
            eprintln!(
                "  epoch {}: batch {}/{} ({:.1} s)",
                self.epoch,
                batch + 1,
                self.batches,
                self.epoch_started.elapsed().as_secs_f64()
            );
        }
    }

    fn epoch_finished(&mut self, r: &EpochRecord) -> mnist_nn::Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let Some(test) = r.test else {
            return Ok(());
        };
        let pct = |e: &Evaluation| format!("{:.2}%", 100.0 * e.accuracy);
        eprintln!(
            "epoch {:>3}/{}  train loss {:.4} acc {}  valid {}  test loss {:.4} acc {}  ({:.2} s)",
            r.epoch,
            self.total(),
            r.train.loss,
            pct(&r.train),
            r.valid.as_ref().map_or("-".into(), pct),
            test.loss,
            pct(&test),
            r.train_seconds
        );
        Ok(())
    }
}
