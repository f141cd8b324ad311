//! `import`: a run directory made from weights trained elsewhere (PyTorch, numpy, an
//! earlier `export`), so that `eval`, `predict`, `report`, `serve` and `export` work on
//! them as on a run trained here.
//!
//! The file is a `.safetensors` or a numpy `.npz` holding float32 `W1` (hidden × 784),
//! `b1` (hidden), `W2` (10 × hidden) and `b2` (10) — the design notes' names and shapes,
//! as `export` writes them — or, in a `.safetensors`, PyTorch's names for
//! `nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, 10))`: `0.weight`,
//! `0.bias`, `2.weight`, `2.bias` (`nn.Linear` keeps its weight as `(out, in)`, the same
//! layout). The run gets a `config.toml` with the network's shape and the data
//! directory, `model.bpk`, an empty `metrics.csv` and a `summary.json` of status
//! `imported` with the test figures measured on import.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Config;
use crate::data::MnistSplit;
use crate::error::{Error, Result};
use crate::eval::evaluate;
use crate::export::{self, Format};
use crate::logging::{MetricsWriter, Status, Summary};
use crate::model::TwoLayerNet;
use crate::run_dir::{RunDir, files};

/// What [`import`] made.
#[derive(Debug)]
pub struct Imported {
    /// The new run.
    pub run: RunDir,
    /// Its summary (test figures included).
    pub summary: Summary,
}

/// The format of a weights file, from its extension.
pub fn format_of(path: &Path) -> Result<Format> {
    let problem = match Format::of_file(path) {
        Some(f @ (Format::Safetensors | Format::Npz)) => return Ok(f),
        Some(Format::Onnx) => "an ONNX model is written by export, not read back; import \
                               the weights as .safetensors or .npz"
            .to_string(),
        None => format!(
            "the extension is {}; expected .safetensors or .npz",
            path.extension().map_or("missing".to_string(), |e| format!(
                ".{}",
                e.to_string_lossy()
            ))
        ),
    };
    Err(Error::Weights {
        path: path.to_path_buf(),
        problem,
    })
}

/// Makes the run directory `dir` (which must not hold a run) named `name` from the
/// weights in `weights`, evaluating them on the test set of `data_dir`.
pub fn import(weights: &Path, dir: &Path, name: &str, data_dir: PathBuf) -> Result<Imported> {
    let started = Instant::now();
    let params = export::read(weights, format_of(weights)?)?;
    let text = format!(
        "name = {name:?}\nmode = \"manual\"\n\n[model]\nhidden = {}\n\n\
         # Imported from {}: no training happened here, and these settings only\n\
         # describe how to train further from scratch with this shape.\n\
         [train]\nepochs = 1\nbatch_size = 128\nlearning_rate = 0.1\n\n\
         [data]\ndir = {:?}\n",
        params.hidden,
        weights.display(),
        data_dir
    );
    let config_path = dir.join(files::CONFIG);
    let config = Config::parse(&text, &config_path)?;
    config.validate(&config_path)?;
    // Read the test set before anything is written: a missing data directory leaves
    // no half-made run behind.
    let test = MnistSplit::read_test(&config.data.dir)?;
    let device = config.backend.device()?;
    let model = TwoLayerNet::from_host(&params, &device);
    let tested = evaluate(&model, &test.to_device(&device))?;
    let mut run = RunDir::create(dir, config)?;
    run.save_model(&model)?;
    MetricsWriter::create(&run.file(files::METRICS))?;
    let config = run.config();
    let summary = Summary {
        name: config.name.clone(),
        status: Status::Imported,
        backend: config.backend,
        mode: config.mode,
        hidden: params.hidden,
        epochs: 0,
        steps: 0,
        train_images: 0,
        train: None,
        valid: None,
        test: Some(tested),
        stopped: None,
        to_target_s: None,
        best_epoch: None,
        train_seconds: 0.0,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    run.write_summary(summary.clone())?;
    Ok(Imported { run, summary })
}
