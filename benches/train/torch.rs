//! The PyTorch reference (`bench/torch_ref.py`), run as a child process when `python3`
//! can import `torch`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Median seconds per epoch, by (hidden, batch, "autograd" | "manual").
pub type TorchTimes = BTreeMap<(usize, usize, String), f64>;

/// What became of the reference.
pub enum Reference {
    /// It ran: its version and its times.
    Ran {
        /// `torch.__version__`.
        version: String,
        /// The timings.
        times: TorchTimes,
    },
    /// It did not, and why.
    Skipped(String),
}

/// The reference as far as it ran: skipped (and why), or its version and the times
/// gathered so far.
pub fn reference(skipped: &Option<String>, version: &str, times: &TorchTimes) -> Reference {
    match skipped {
        Some(why) => Reference::Skipped(why.clone()),
        None => Reference::Ran {
            version: version.to_string(),
            times: times.clone(),
        },
    }
}

/// Runs the reference for each `(hidden, batch)` (`None`: full batch) with `threads`
/// threads and `reps` timed epochs.
pub fn run(
    root: &Path,
    data: &Path,
    cases: &[(usize, Option<usize>)],
    threads: usize,
    reps: usize,
) -> Reference {
    let args: Vec<String> = cases
        .iter()
        .flat_map(|(hidden, batch)| {
            let batch = batch.map_or_else(|| "full".to_string(), |b| b.to_string());
            ["--case".to_string(), format!("{hidden}:{batch}")]
        })
        .collect();
    let lines = match script_lines(root, "torch_ref.py", data, threads, reps, &args) {
        Ok(lines) => lines,
        Err(why) => return Reference::Skipped(why),
    };
    let mut times = TorchTimes::new();
    let mut version = String::new();
    for v in lines {
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
        if let (Some(h), Some(b), Some(mode), Some(s)) = (
            field("hidden"),
            field("batch"),
            v.get("mode").and_then(|m| m.as_str()),
            v.get("epoch_s").and_then(serde_json::Value::as_f64),
        ) {
            times.insert((h as usize, b as usize, mode.to_string()), s);
        }
        if let Some(ver) = v.get("torch").and_then(|t| t.as_str()) {
            version = ver.to_string();
        }
    }
    if times.is_empty() {
        return Reference::Skipped("bench/torch_ref.py printed no timings".into());
    }
    Reference::Ran { version, times }
}

/// One PyTorch recipe's time to the target test accuracy.
#[derive(Debug, Clone)]
pub struct TorchReached {
    /// The recipe's name in `bench/torch_ref.py`'s `RECIPES`.
    pub recipe: String,
    /// Epochs to reach the target (`None`: not within `--max-epochs`).
    pub epochs: Option<usize>,
    /// Training seconds (evaluations excluded).
    pub seconds: f64,
    /// Test accuracy at the end.
    pub accuracy: f64,
    /// PyTorch's version, as the script printed it.
    pub version: String,
}

/// Trains the network in PyTorch by each of `recipes` (`bench/torch_ref.py`'s `RECIPES`)
/// until `target` test accuracy.
pub fn to_accuracy(
    root: &Path,
    data: &Path,
    recipes: &[&str],
    threads: usize,
    target: f64,
) -> Result<Vec<TorchReached>, String> {
    let mut args = vec!["--target".to_string(), target.to_string()];
    for recipe in recipes {
        args.extend(["--to-accuracy".to_string(), recipe.to_string()]);
    }
    let mut reached = Vec::new();
    // `--reps` is unused by the recipes (each trains once).
    for v in script_lines(root, "torch_ref.py", data, threads, 1, &args)? {
        let (Some(recipe), Some(seconds), Some(accuracy)) = (
            v.get("recipe").and_then(|r| r.as_str()),
            v.get("seconds").and_then(serde_json::Value::as_f64),
            v.get("accuracy").and_then(serde_json::Value::as_f64),
        ) else {
            continue;
        };
        reached.push(TorchReached {
            recipe: recipe.to_string(),
            epochs: v
                .get("epochs")
                .and_then(serde_json::Value::as_u64)
                .map(|e| e as usize),
            seconds,
            accuracy,
            version: v
                .get("torch")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_string(),
        });
    }
    Ok(reached)
}

/// Each recipe's median seconds over `runs` (each run's recipes from [`to_accuracy`]),
/// with the epochs and accuracy of its first run (the same in every run: the recipes
/// are seeded). The first run's error when any run failed.
pub fn median_reached(
    runs: Vec<Result<Vec<TorchReached>, String>>,
) -> Result<Vec<TorchReached>, String> {
    let runs: Vec<Vec<TorchReached>> = runs.into_iter().collect::<Result<_, _>>()?;
    let Some(first) = runs.first() else {
        return Err("not run".into());
    };
    Ok(first
        .iter()
        .map(|r| {
            let seconds = runs
                .iter()
                .flatten()
                .filter(|o| o.recipe == r.recipe)
                .map(|o| o.seconds)
                .collect();
            TorchReached {
                seconds: crate::median(seconds),
                ..r.clone()
            }
        })
        .collect())
}

/// Runs `bench/<script>` with `--data`, `--threads`, `--reps` and `args`, and returns
/// the JSON objects it printed, one a line, or why it could not run (exit status 3:
/// the script could not import its library).
fn script_lines(
    root: &Path,
    script: &str,
    data: &Path,
    threads: usize,
    reps: usize,
    args: &[String],
) -> Result<Vec<serde_json::Value>, String> {
    let out = Command::new("python3")
        .arg(root.join("bench").join(script))
        .arg("--data")
        .arg(data)
        .args([
            "--threads",
            &threads.to_string(),
            "--reps",
            &reps.to_string(),
        ])
        .args(args)
        .output()
        .map_err(|e| format!("python3 could not be started: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        return Err(format!(
            "{script}: cannot import its library ({})",
            stderr.trim()
        ));
    }
    if !out.status.success() {
        return Err(format!("bench/{script} failed: {}", stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect())
}

/// PyTorch's float32 rate in GFLOP/s on a `side`³ product with `threads` threads (median
/// of `reps`), or why it was not measured.
pub fn gemm(
    root: &Path,
    data: &Path,
    side: usize,
    threads: usize,
    reps: usize,
) -> Result<f64, String> {
    let args = ["--gemm".to_string(), side.to_string()];
    script_lines(root, "torch_ref.py", data, threads, reps, &args)?
        .iter()
        .find_map(|v| v.get("gflops").and_then(serde_json::Value::as_f64))
        .ok_or_else(|| "bench/torch_ref.py printed no GEMM rate".to_string())
}

/// Median seconds of an epoch of the seed's equations in numpy (`bench/numpy_ref.py`)
/// at `hidden`, batch 128, with `threads` BLAS threads, or why it was not measured.
pub fn numpy_epoch(
    root: &Path,
    data: &Path,
    hidden: usize,
    threads: usize,
    reps: usize,
) -> Result<f64, String> {
    let args = ["--case".to_string(), format!("{hidden}:128")];
    script_lines(root, "numpy_ref.py", data, threads, reps, &args)?
        .iter()
        .find_map(|v| v.get("epoch_s").and_then(serde_json::Value::as_f64))
        .ok_or_else(|| "bench/numpy_ref.py printed no timing".to_string())
}
