//! `mnist-nn`: trains the two-layer network from a TOML config.
//!
//! Parses the command line, prints progress, and hands the work to the library.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use mnist_nn::backend::BackendKind;
use mnist_nn::config::{Config, Mode, Overrides};
use mnist_nn::train::{EpochRecord, Evaluation, Observer};

/// Train the classic two-layer MNIST network on Burn, with hand-derived (manual) or
/// autodiff gradients, on the CPU or the GPU.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The run's TOML config (e.g. configs/sgd.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Backend, replacing the config's `backend`.
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Gradients, replacing the config's `mode`.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Seed, replacing the config's `seed`.
    #[arg(long)]
    seed: Option<u64>,
    /// Epochs, replacing the config's `train.epochs`.
    #[arg(long)]
    epochs: Option<usize>,
    /// Output directory (default: artifacts/<name>, or <name>-2, -3… if taken).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match train(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn train(cli: &Cli) -> anyhow::Result<()> {
    let mut config = Config::load(&cli.config)?;
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
    let mut ui = Progress::new(config.train.epochs);
    let summary = mnist_nn::run::run(&config, &cli.config, &dir, &mut ui)?;
    eprintln!(
        "done in {:.1} s: test accuracy {:.2}%, test loss {:.4}{}; outputs in {}",
        summary.total_seconds,
        100.0 * summary.test.accuracy,
        summary.test.loss,
        summary
            .valid
            .map(|v| format!(", validation accuracy {:.2}%", 100.0 * v.accuracy))
            .unwrap_or_default(),
        dir.display()
    );
    Ok(())
}

/// Progress on stderr: a bar within each epoch on a terminal, a few plain lines
/// otherwise, and one line per evaluated epoch.
struct Progress {
    epochs: usize,
    terminal: bool,
    bar: Option<ProgressBar>,
    batches: usize,
    epoch: usize,
    epoch_started: Instant,
}

impl Progress {
    fn new(epochs: usize) -> Self {
        Self {
            epochs,
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            batches: 0,
            epoch: 0,
            epoch_started: Instant::now(),
        }
    }
}

impl Observer for Progress {
    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        self.batches = batches;
        self.epoch = epoch;
        self.epoch_started = Instant::now();
        if self.terminal && batches > 1 {
            let bar = ProgressBar::new(batches as u64).with_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} batches, {per_sec}, eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{}", self.epochs));
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
            self.epochs,
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
