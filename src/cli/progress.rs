//! Progress on stderr while training, and Ctrl-C: the first stops after the current
//! batch (with a checkpoint), the second at once.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use mnist_nn::eval::Evaluation;
use mnist_nn::run_dir::RunDir;
use mnist_nn::train::{EpochRecord, Observer, StateRef};

/// Set by the first Ctrl-C: training stops after the current batch.
static STOP: AtomicBool = AtomicBool::new(false);

/// The directory of the run being trained, once known: a second Ctrl-C says what its
/// `checkpoint.json` holds.
static RUN: OnceLock<PathBuf> = OnceLock::new();

/// Installs the Ctrl-C handler that sets [`STOP`] (and exits on a second Ctrl-C).
pub fn stop_on_ctrl_c() {
    let interrupts = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting now; {}", what_is_kept());
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: stopping after this batch (press again to quit at once)");
    });
    if let Err(e) = interrupts {
        eprintln!("warning: Ctrl-C will not checkpoint before stopping: {e}");
    }
}

/// Names `dir` as the run a second Ctrl-C reports on (the first call counts).
pub fn training_in(dir: &Path) {
    let _ = RUN.set(dir.to_path_buf());
}

/// What a second Ctrl-C leaves: the run's current checkpoint (`checkpoint.json` is
/// replaced by a rename, so it is read whole, the old one or the new) or none.
fn what_is_kept() -> String {
    let Some(dir) = RUN.get() else {
        return "nothing was trained yet".into();
    };
    // A run directory opens once its config.toml is written, the run's first file.
    let Ok(run) = RunDir::open(dir) else {
        return format!("nothing was written to {} yet", dir.display());
    };
    match run.checkpoint() {
        Ok(Some(c)) => format!(
            "the checkpoint of step {} is kept; continue with\n  {}",
            c.position.step,
            resume_command(dir)
        ),
        _ => format!(
            "{} has no checkpoint yet (the run stopped before its first), so it cannot be \
             resumed: remove it, or train into another --out",
            dir.display()
        ),
    }
}

/// The command that continues the run in `dir`.
pub fn resume_command(dir: &Path) -> String {
    format!("cargo run --release -- --resume {}", dir.display())
}

/// Progress on stderr: a bar within each epoch on a terminal, a few plain lines
/// otherwise, and one line per evaluated epoch.
pub struct Progress {
    /// Epochs the run will reach (for "epoch 3/10").
    pub epochs: Option<usize>,
    /// Steps taken by the last checkpoint.
    pub steps: usize,
    terminal: bool,
    bar: Option<ProgressBar>,
    batches: usize,
    epoch: usize,
    epoch_started: Instant,
}

impl Progress {
    /// A display for stderr.
    pub fn new() -> Self {
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
