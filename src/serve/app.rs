//! What the server holds: the network the Draw view shows (given at start with
//! `--model`, or opened later from the Runs view), the one training of the Train view,
//! the Equations view's workbench, and the options it was started with.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use serde::Serialize;

use super::loaded::LoadedRun;
use super::training::Trainer;
use crate::data::Mnist;

/// The page's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// Train a network and watch it learn.
    Train,
    /// The seed's equations on a few real digits.
    Equations,
    /// Draw a digit for a trained network.
    Draw,
    /// The runs of the runs directory.
    Runs,
}

/// How the server was started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where runs are listed from and trained into (`--watch`, default `artifacts`).
    pub runs: PathBuf,
    /// Serve the training controls to other machines too (`--allow-training`).
    pub allow_training: bool,
    /// Names besides `localhost` and IP addresses that a state-changing request's
    /// `Host` may give (`--allowed-host`): a name someone else could point here is not
    /// taken otherwise, against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// The view the page opens on.
    pub start_view: View,
    /// The MNIST directory the Equations view takes its digits from when no run names
    /// one.
    pub data_dir: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            runs: PathBuf::from("artifacts"),
            allow_training: false,
            allowed_hosts: Vec::new(),
            start_view: View::Train,
            data_dir: PathBuf::from("data/mnist"),
        }
    }
}

/// The network of the Draw view, and the run's name.
pub type Drawn = Option<(String, Arc<LoadedRun>)>;

/// Everything the handlers share.
#[derive(Debug)]
pub struct App {
    /// Start-up options.
    pub options: Options,
    drawn: RwLock<Drawn>,
    /// The training of the Train view.
    pub trainer: Arc<Trainer>,
    /// The Equations view's batch and network.
    pub bench: super::equations::Bench,
    data: OnceLock<Result<Arc<Mnist>, String>>,
}

impl App {
    /// A server's state, with `drawn` for the Draw view (or none yet).
    pub fn new(options: Options, drawn: Drawn) -> Self {
        Self {
            options,
            drawn: RwLock::new(drawn),
            trainer: Arc::new(Trainer::default()),
            bench: super::equations::Bench::default(),
            data: OnceLock::new(),
        }
    }

    /// The Draw view's network, if there is one.
    pub fn drawn(&self) -> Option<(String, Arc<LoadedRun>)> {
        self.drawn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `run` the Draw view's network.
    pub fn set_drawn(&self, name: String, run: LoadedRun) {
        *self.drawn.write().unwrap_or_else(|e| e.into_inner()) = Some((name, Arc::new(run)));
    }

    /// The MNIST images of the Equations view (read once, on first use): the Draw run's
    /// `data.dir`, else [`Options::data_dir`].
    pub fn data(&self) -> Result<Arc<Mnist>, String> {
        self.data
            .get_or_init(|| {
                let dir = self
                    .drawn()
                    .map(|(_, run)| run.info(super::LIMITS).config.data.dir.clone())
                    .unwrap_or_else(|| self.options.data_dir.clone());
                Mnist::load(&dir, 0, None)
                    .map(Arc::new)
                    .map_err(|e| format!("cannot read the MNIST images in {}: {e}", dir.display()))
            })
            .clone()
    }
}
