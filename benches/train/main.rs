//! `cargo bench --bench train`: how fast the two-layer network trains and predicts on
//! this machine, against PyTorch and against the machine's own limits, all measured in
//! one run with one thread count.
//!
//! Options (after `--`): `--reps N` timed runs per figure (default 5, after one warm-up),
//! `--quick` (2 reps), `--threads N` (default: every CPU), `--hidden 128,800` (only the
//! training figures of these sizes), `--no-accuracy` (no time to 98%), `--backends
//! ndarray,flex,wgpu` (default `ndarray,flex`; wgpu on a machine with a GPU),
//! `--gpu-peak GFLOPS` (the GPU's float32 peak from its data sheet, for the wgpu rows'
//! fraction of it), `--accuracy-reps N` (runs of each recipe to 98%, PyTorch's and ours
//! taking turns; default 3), `--no-torch`, `--out FILE` (default
//! `bench/results/<date>-<host>.md`).

mod inference;
mod machine;
mod report;
mod rss;
mod torch;
mod training;

use std::path::PathBuf;

use mnist_nn::backend::BackendKind;
use mnist_nn::config::Mode;
use mnist_nn::data::Mnist;

use crate::report::{Figures, Run};
use crate::training::Case;

/// The median of `v` (the mean of the two middle values for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// What `--help` prints.
const USAGE: &str = "cargo bench --bench train [-- OPTIONS]: training and inference speed \
against PyTorch and the machine's limits, written to bench/results/<date>-<host>.md

  --reps N            timed runs per figure, after one warm-up (default 5)
  --quick             2 timed runs per figure
  --threads N         threads (default: every CPU)
  --hidden LIST       only the training figures of these hidden sizes (e.g. 128,800)
  --backends LIST     ndarray, flex, wgpu (default ndarray,flex)
  --gpu-peak GFLOPS   the GPU's float32 peak, for the wgpu rows' fraction of it
  --no-accuracy       no time to 98% test accuracy
  --accuracy-reps N   runs of each recipe to 98% (default 3)
  --no-torch          no PyTorch reference
  --out FILE          the report's path";

/// The command line.
struct Options {
    reps: usize,
    threads: usize,
    backends: Vec<BackendKind>,
    torch: bool,
    out: Option<PathBuf>,
    hidden: Option<Vec<usize>>,
    accuracy: bool,
    accuracy_reps: usize,
    gpu_peak: Option<f64>,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let mut o = Options {
            reps: 5,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backends: vec![BackendKind::Ndarray, BackendKind::Flex],
            torch: true,
            out: None,
            hidden: None,
            accuracy: true,
            accuracy_reps: 3,
            gpu_peak: None,
        };
        if let Some(n) = std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            o.threads = n;
        }
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))
            };
            match arg.as_str() {
                "--bench" => {} // passed by `cargo bench`
                "--help" | "-h" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                "--quick" => o.reps = 2,
                "--no-torch" => o.torch = false,
                "--no-accuracy" => o.accuracy = false,
                "--gpu-peak" => o.gpu_peak = Some(value("--gpu-peak")?.parse()?),
                "--reps" => o.reps = value("--reps")?.parse()?,
                "--accuracy-reps" => o.accuracy_reps = value("--accuracy-reps")?.parse()?,
                "--threads" => o.threads = value("--threads")?.parse()?,
                "--out" => o.out = Some(PathBuf::from(value("--out")?)),
                "--hidden" => {
                    o.hidden = Some(
                        value("--hidden")?
                            .split(',')
                            .map(|w| w.trim().parse())
                            .collect::<Result<_, _>>()?,
                    );
                }
                "--backends" => {
                    o.backends = value("--backends")?
                        .split(',')
                        .map(|w| {
                            w.trim()
                                .parse::<BackendKind>()
                                .map_err(|e| anyhow::anyhow!("--backends: {e}"))
                        })
                        .collect::<anyhow::Result<_>>()?;
                }
                other => anyhow::bail!("unknown option {other}\n\n{USAGE}"),
            }
        }
        if o.reps == 0 || o.threads == 0 || o.accuracy_reps == 0 {
            anyhow::bail!("--reps, --accuracy-reps and --threads must be at least 1");
        }
        Ok(o)
    }
}

/// The CPU shapes `(hidden, batch)` (`None`: full batch): hidden 128 and 800 at batch
/// 128, and the seed's network (hidden 10) at full batch. PyTorch is timed on these.
const CPU_SHAPES: [(usize, Option<usize>); 3] = [(128, Some(128)), (800, Some(128)), (10, None)];

/// The shapes timed on `backend`: [`CPU_SHAPES`], and on a GPU also hidden 4096 and
/// batches of 1024 and all.
fn shapes(backend: BackendKind) -> Vec<(usize, Option<usize>)> {
    let mut v = CPU_SHAPES.to_vec();
    if backend == BackendKind::Wgpu {
        for hidden in [128, 800, 4096] {
            for batch in [Some(128), Some(1024), None] {
                if !v.contains(&(hidden, batch)) {
                    v.push((hidden, batch));
                }
            }
        }
    }
    v
}

/// The test accuracy whose time is measured.
const TARGET: f64 = 0.98;
/// Our recipes timed to [`TARGET`]: the report's name for each, its config, and the
/// mode replacing the config's (as `--mode` does), if any. `adam.toml` in both modes,
/// beside PyTorch's Adam recipes: autodiff mode runs Burn's Adam, manual mode Adam in
/// place.
const TO_ACCURACY_CONFIGS: [(&str, &str, Option<Mode>); 3] = [
    ("configs/fast.toml", "configs/fast.toml", None),
    ("configs/adam.toml", "configs/adam.toml", None),
    (
        "configs/adam.toml --mode manual",
        "configs/adam.toml",
        Some(Mode::Manual),
    ),
];
/// PyTorch's recipes timed to [`TARGET`] (`bench/torch_ref.py`'s `RECIPES`).
const TORCH_RECIPES: [&str; 5] = ["adam", "adam-cosine", "fast", "fast-512", "fast-b64"];

fn main() -> anyhow::Result<()> {
    let o = Options::parse()?;
    // SAFETY: set before any thread starts (rayon's pool is built on first use).
    unsafe { std::env::set_var("RAYON_NUM_THREADS", o.threads.to_string()) };
    // The repository and the binary where Cargo built them, or where
    // `MNIST_NN_ROOT` and `MNIST_NN_BIN` say (a copy run on another machine:
    // scripts/device-check).
    let root = std::env::var_os("MNIST_NN_ROOT")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let root = root.as_path();
    // Peak RSS first: a child inherits the high-water mark of the process it was spawned
    // from (the kernel keeps it across exec), so it is measured while this one is small.
    let mut peaks = Vec::new();
    let bin = std::env::var_os("MNIST_NN_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_mnist-nn")),
        PathBuf::from,
    );
    let bin = bin.as_path();
    let scratch = tempfile::tempdir()?;
    for &backend in &o.backends {
        eprintln!("bench: peak RSS of configs/sgd.toml on {backend}");
        let out = scratch.path().join(backend.name());
        let args = [
            "--config",
            "configs/sgd.toml",
            "--epochs",
            "1",
            "--backend",
            backend.name(),
            "--out",
        ];
        let mut args: Vec<&str> = args.to_vec();
        let out_str = out.to_string_lossy().into_owned();
        args.push(&out_str);
        if let Some(bytes) = rss::peak_rss(bin, &args, root)? {
            peaks.push((backend, bytes));
        }
    }

    let data_dir = root.join("data/mnist");
    let data = Mnist::load(&data_dir, 0, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", data_dir.display()))?;
    let host = machine::Host::read();
    eprintln!(
        "bench: {} ({} CPUs), {} threads, {} reps",
        host.cpu, host.cpus, o.threads, o.reps
    );

    let mut figures = Figures {
        rss: peaks,
        gpu_peak: o.gpu_peak,
        ..Figures::default()
    };
    let date = report::today();
    let out = o.out.clone().unwrap_or_else(|| {
        root.join("bench/results")
            .join(format!("{date}-{}.md", host.name))
    });
    // The report is written after every phase, marked unfinished until the last, so
    // that a bench stopped part way (a time limit on a lent machine) keeps what it
    // measured.
    let save = |figures: &Figures, unfinished: Option<&str>| -> anyhow::Result<String> {
        let run = Run {
            host: &host,
            threads: o.threads,
            reps: o.reps,
            train_images: data.train.len(),
            date: date.clone(),
            unfinished,
        };
        let text = report::markdown(&run, figures);
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&out, &text).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
        Ok(text)
    };

    if o.torch {
        eprintln!("bench: PyTorch's 2048³ GEMM");
        figures.torch_gemm = torch::gemm(root, &data_dir, 2048, o.threads, o.reps).ok();
    }

    // Shape by shape, PyTorch just before ours, so that both meet the machine in the
    // same state (a shared machine's speed drifts over minutes).
    let mut all_shapes: Vec<(usize, Option<usize>)> = Vec::new();
    for &backend in &o.backends {
        for shape in shapes(backend) {
            if !all_shapes.contains(&shape) {
                all_shapes.push(shape);
            }
        }
    }
    all_shapes.retain(|(h, _)| o.hidden.as_ref().is_none_or(|keep| keep.contains(h)));
    let mut torch_times = torch::TorchTimes::new();
    let mut torch_version = String::new();
    let mut torch_skipped = (!o.torch).then(|| "--no-torch".to_string());
    figures.torch = torch::reference(&torch_skipped, &torch_version, &torch_times);
    for &(hidden, batch) in &all_shapes {
        let word = batch.map_or("full".to_string(), |b| b.to_string());
        if torch_skipped.is_none() && CPU_SHAPES.contains(&(hidden, batch)) {
            eprintln!("bench: PyTorch hidden {hidden} batch {word}");
            match torch::run(root, &data_dir, &[(hidden, batch)], o.threads, o.reps) {
                torch::Reference::Ran { version, times } => {
                    torch_version = version;
                    torch_times.extend(times);
                }
                torch::Reference::Skipped(why) => torch_skipped = Some(why),
            }
            figures.torch = torch::reference(&torch_skipped, &torch_version, &torch_times);
        }
        if hidden == 128 && batch == Some(128) {
            eprintln!("bench: numpy hidden 128 batch 128");
            figures.numpy = Some(torch::numpy_epoch(root, &data_dir, 128, o.threads, o.reps));
        }
        for &backend in &o.backends {
            if !shapes(backend).contains(&(hidden, batch)) {
                continue;
            }
            for mode in [Mode::Manual, Mode::Autodiff] {
                eprintln!(
                    "bench: training {backend} {} hidden {hidden} batch {word}",
                    mode.name()
                );
                let case = Case {
                    backend,
                    mode,
                    hidden,
                    batch,
                };
                // A case the device cannot run (e.g. a full batch beyond a GPU's buffer
                // limit) is reported, and the others still measured.
                match training::time_case(case, &data, o.reps, o.threads) {
                    Ok(timing) => figures.training.push((case, timing)),
                    Err(e) => {
                        eprintln!("bench: failed: {e:#}");
                        figures.failed.push((case, format!("{e:#}")));
                    }
                }
                save(&figures, Some("training epochs"))?;
            }
        }
    }

    if o.hidden.as_ref().is_none_or(|keep| keep.contains(&800)) {
        let backend = BackendKind::default();
        for hidden in [128, 800] {
            eprintln!("bench: sparse against dense products with X on {backend}, hidden {hidden}");
            let (dense, sparse) = training::sparse_speedup(backend, hidden, &data, o.reps)?;
            figures.sparse.push((hidden, dense, sparse));
        }
        eprintln!("bench: the sparse products' loops by vector extension, hidden 800");
        figures.loops = training::loops_compared(backend, &data, o.reps)?;
        eprintln!("bench: augmentation overhead on {backend}, hidden 800");
        figures.augmentation = Some(training::augmentation_overhead(backend, &data, o.reps)?);
        save(&figures, Some("sparse products and augmentation"))?;
    }

    if o.accuracy {
        // PyTorch's recipes, then ours (each config on each backend), in turns: a single
        // run of a few seconds is at the mercy of a shared machine's drift, so each
        // figure is the median of `accuracy_reps` runs.
        let mut torch_runs = Vec::new();
        let mut our_runs = Vec::new();
        for rep in 1..=o.accuracy_reps {
            if o.torch {
                eprintln!(
                    "bench: PyTorch's time to 98% test accuracy ({rep}/{})",
                    o.accuracy_reps
                );
                torch_runs.push(torch::to_accuracy(
                    root,
                    &data_dir,
                    &TORCH_RECIPES,
                    o.threads,
                    TARGET,
                ));
            }
            let mut ours = Vec::new();
            for &backend in &o.backends {
                for (name, config, mode) in TO_ACCURACY_CONFIGS {
                    eprintln!(
                        "bench: time to 98% test accuracy, {name} on {backend} ({rep}/{})",
                        o.accuracy_reps
                    );
                    let path = root.join(config);
                    let reached = training::time_to_accuracy(&path, mode, backend, &data, TARGET)?;
                    ours.push((name, backend, reached));
                }
            }
            our_runs.push(ours);
        }
        if o.torch {
            figures.torch_to_accuracy = torch::median_reached(torch_runs);
            // With no training figures (`--hidden` naming none of them), PyTorch's
            // version comes from the recipes' runs.
            if let (torch::Reference::Ran { version, .. }, Ok(reached)) =
                (&mut figures.torch, &figures.torch_to_accuracy)
                && version.is_empty()
                && let Some(r) = reached.first()
            {
                version.clone_from(&r.version);
            }
        }
        figures.to_accuracy = training::median_reached(our_runs);
        figures.accuracy_reps = o.accuracy_reps;
        save(&figures, Some("time to 98%"))?;
    }

    for &backend in &o.backends {
        let device = backend.device()?;
        for hidden in [128, 800] {
            eprintln!("bench: inference {backend} hidden {hidden}");
            let inf = inference::time_inference(hidden, &data.test, &device, 100 * o.reps)?;
            figures.inference.push((backend, hidden, inf));
            save(&figures, Some("inference"))?;
        }
    }

    let text = save(&figures, None)?;
    println!("{text}");
    eprintln!("bench: written to {}", out.display());
    Ok(())
}
