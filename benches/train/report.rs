//! The benchmark's figures as one Markdown page: the machine's limits, training,
//! inference, memory, and each target of the speed issue with its measured value.

use std::fmt::Write as _;

use mnist_nn::backend::BackendKind;
use mnist_nn::config::Mode;

use crate::inference::Inference;
use crate::machine::Host;
use crate::torch::Reference;
use crate::training::{Case, Timing, flop_per_epoch, mode_name};

/// Everything measured.
pub struct Figures {
    /// FMA peak over all threads, GFLOP/s.
    pub fma_peak: Option<f64>,
    /// GEMM 2048³ per backend, GFLOP/s.
    pub gemm: Vec<(BackendKind, f64)>,
    /// Training timings.
    pub training: Vec<(Case, Timing)>,
    /// Inference per backend and hidden size.
    pub inference: Vec<(BackendKind, usize, Inference)>,
    /// Peak RSS of `configs/sgd.toml` for one epoch, bytes, per backend.
    pub rss: Vec<(BackendKind, u64)>,
    /// The PyTorch reference.
    pub torch: Reference,
}

impl Default for Figures {
    fn default() -> Self {
        Self {
            fma_peak: None,
            gemm: Vec::new(),
            training: Vec::new(),
            inference: Vec::new(),
            rss: Vec::new(),
            torch: Reference::Skipped("not run".into()),
        }
    }
}

/// The run's circumstances.
pub struct Run<'a> {
    /// The machine.
    pub host: &'a Host,
    /// Threads of every measurement.
    pub threads: usize,
    /// Timed runs per figure.
    pub reps: usize,
    /// Images per training epoch.
    pub train_images: usize,
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Days since 1970-01-01 to a proleptic Gregorian date (era-based algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn batch_word(batch: Option<usize>) -> String {
    batch.map_or_else(|| "full".into(), |b| b.to_string())
}

/// The best GEMM rate measured on a CPU backend: the ceiling the training figures are
/// compared with.
fn cpu_ceiling(f: &Figures) -> Option<(BackendKind, f64)> {
    f.gemm
        .iter()
        .filter(|(b, _)| *b != BackendKind::Wgpu)
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// PyTorch's seconds per epoch for `(hidden, batch)` and a mode, when it ran.
fn torch_seconds(f: &Figures, hidden: usize, batch: usize, mode: &str) -> Option<f64> {
    match &f.torch {
        Reference::Ran { times, .. } => times.get(&(hidden, batch, mode.to_string())).copied(),
        Reference::Skipped(_) => None,
    }
}

fn timing_of(f: &Figures, backend: BackendKind, mode: Mode, hidden: usize) -> Option<Timing> {
    f.training
        .iter()
        .find(|(c, _)| {
            c.backend == backend && c.mode == mode && c.hidden == hidden && c.batch == Some(128)
        })
        .map(|(_, t)| *t)
}

/// The whole page.
pub fn markdown(run: &Run<'_>, f: &Figures) -> String {
    let mut s = String::new();
    let n = run.train_images;
    let torch_line = match &f.torch {
        Reference::Ran { version, .. } => format!("PyTorch {version} (CPU)"),
        Reference::Skipped(why) => format!("PyTorch skipped: {why}"),
    };
    let _ = writeln!(
        s,
        "# Training benchmark, {date}, {host}\n\n\
         {cpu}, {cpus} logical CPUs; **{threads} threads** for every figure \
         (`RAYON_NUM_THREADS` for Burn, `torch.set_num_threads` for PyTorch). \
         Burn 0.22.1; {torch_line}. Each figure is the median of {reps} runs after one \
         warm-up. Made by `cargo bench --bench train`.\n",
        date = run.date,
        host = run.host.name,
        cpu = run.host.cpu,
        cpus = run.host.cpus,
        threads = run.threads,
        reps = run.reps,
    );

    let _ = writeln!(s, "## The machine's float32 limits\n");
    let _ = writeln!(s, "| measure | GFLOP/s |\n|---|---:|");
    match f.fma_peak {
        Some(g) => {
            let _ = writeln!(s, "| FMA peak (AVX2, {} threads) | {g:.0} |", run.threads);
        }
        None => {
            let _ = writeln!(s, "| FMA peak | not measured (no AVX2/FMA) |");
        }
    }
    for (backend, g) in &f.gemm {
        let lib = match backend {
            BackendKind::Ndarray => "matrixmultiply",
            BackendKind::Flex => "gemm",
            BackendKind::Wgpu => "CubeCL",
        };
        let _ = writeln!(s, "| GEMM 2048×2048×2048, {backend} ({lib}) | {g:.0} |");
    }
    let ceiling = cpu_ceiling(f);
    let _ = writeln!(s);

    let _ = writeln!(
        s,
        "## Training: one epoch of {n} images\n\n\
         *epoch*: the library's loop (shuffle, gather each batch on the device, step, \
         running loss and accuracy); *steps*: forward, backward and update alone on \
         batches gathered beforehand; *matmul*: the five matrix products of each step \
         alone. GFLOP counts those five products (`2·n·hidden·(2·784 + 3·10)`). \
         *% ceiling*: the steps' rate against the best CPU GEMM above. *vs PyTorch*: \
         PyTorch's epoch (autograd, `torch.optim.SGD`) divided by ours; above 1 is \
         faster than PyTorch.\n"
    );
    let _ = writeln!(
        s,
        "| backend | mode | hidden | batch | GFLOP | epoch s | images/s | steps s | \
         matmul s | steps GFLOP/s | % ceiling | PyTorch s | vs PyTorch |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (case, t) in &f.training {
        let flop = flop_per_epoch(case.hidden, n);
        let rate = flop / t.steps / 1e9;
        let pct = match (case.backend, ceiling) {
            (BackendKind::Wgpu, _) | (_, None) => "–".to_string(),
            (_, Some((_, c))) => format!("{:.0}%", 100.0 * rate / c),
        };
        let batch = case.batch.unwrap_or(n);
        let torch = torch_seconds(f, case.hidden, batch, "autograd");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} | {:.3} | {:.0} | {:.3} | {:.3} | {:.0} | {} | {} | {} |",
            case.backend,
            mode_name(case.mode),
            case.hidden,
            batch_word(case.batch),
            flop / 1e9,
            t.epoch,
            n as f64 / t.epoch,
            t.steps,
            t.matmul,
            rate,
            pct,
            torch.map_or("–".into(), |v| format!("{v:.3}")),
            torch.map_or("–".into(), |v| format!("{:.2}×", v / t.epoch)),
        );
    }
    let _ = writeln!(s);
    if let Reference::Ran { times, .. } = &f.torch {
        let _ = writeln!(
            s,
            "PyTorch, seconds per epoch (same loop: shuffle, gather, step, running loss):\n\n\
             | hidden | batch | autograd + SGD | manual formulas |\n|---:|---:|---:|---:|"
        );
        let mut keys: Vec<(usize, usize)> = times.keys().map(|(h, b, _)| (*h, *b)).collect();
        keys.dedup();
        for (h, b) in keys {
            let get = |m: &str| {
                times
                    .get(&(h, b, m.to_string()))
                    .map_or("–".into(), |v| format!("{v:.3}"))
            };
            let _ = writeln!(s, "| {h} | {b} | {} | {} |", get("autograd"), get("manual"));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "Evaluation of the 10,000 test images, after the last epoch (not in the epoch):\n\n\
         | backend | mode | hidden | batch | eval s |\n|---|---|---:|---:|---:|"
    );
    for (case, t) in &f.training {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.3} |",
            case.backend,
            mode_name(case.mode),
            case.hidden,
            batch_word(case.batch),
            t.eval
        );
    }
    let _ = writeln!(s);

    let _ = writeln!(
        s,
        "## Inference (`predict`: upload, forward, read back)\n\n\
         | backend | hidden | one image, µs | 10,000 test images, images/s |\n|---|---:|---:|---:|"
    );
    for (backend, hidden, inf) in &f.inference {
        let _ = writeln!(
            s,
            "| {backend} | {hidden} | {:.0} | {:.0} |",
            inf.latency * 1e6,
            inf.throughput
        );
    }
    let _ = writeln!(s);

    let _ = writeln!(
        s,
        "## Peak memory\n\n`mnist-nn --config configs/sgd.toml --epochs 1` (full MNIST, \
         hidden 128, batch 64), the process's peak resident set size:\n\n\
         | backend | peak RSS, MB |\n|---|---:|"
    );
    for (backend, bytes) in &f.rss {
        let _ = writeln!(s, "| {backend} | {:.0} |", *bytes as f64 / 1e6);
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## Targets (batch 128)\n");
    targets(&mut s, f, ceiling, n);
    s
}

/// One line per target of the speed issue, measured value and met or not.
fn targets(s: &mut String, f: &Figures, ceiling: Option<(BackendKind, f64)>, n: usize) {
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let default = BackendKind::default();
    for hidden in [128, 800] {
        let ours = timing_of(f, default, Mode::Manual, hidden);
        let torch = torch_seconds(f, hidden, 128, "autograd");
        if let (Some(t), Some(p)) = (ours, torch) {
            let ratio = p / t.epoch;
            let _ = writeln!(
                s,
                "- manual on {default} (the default), hidden {hidden}, vs PyTorch: \
                 {ratio:.2}× (≥ 1.0): {}",
                verdict(ratio >= 1.0)
            );
        }
    }
    if let Some((lib, c)) = ceiling {
        for &(backend, _) in &f.gemm {
            if backend == BackendKind::Wgpu {
                continue;
            }
            if let Some(t) = timing_of(f, backend, Mode::Manual, 800) {
                let pct = 100.0 * flop_per_epoch(800, n) / t.steps / 1e9 / c;
                let _ = writeln!(
                    s,
                    "- hidden 800 on {backend}, manual: {pct:.0}% of the GEMM ceiling \
                     ({c:.0} GFLOP/s, {lib}) (≥ 50%): {}",
                    verdict(pct >= 50.0)
                );
            }
        }
    }
    for &(backend, _) in &f.gemm {
        for hidden in [128, 800] {
            let (Some(m), Some(a)) = (
                timing_of(f, backend, Mode::Manual, hidden),
                timing_of(f, backend, Mode::Autodiff, hidden),
            ) else {
                continue;
            };
            let ratio = a.epoch / m.epoch;
            let _ = writeln!(
                s,
                "- autodiff / manual on {backend}, hidden {hidden}: {ratio:.2}× (≤ 1.5): {}",
                verdict(ratio <= 1.5)
            );
        }
    }
    for (backend, bytes) in &f.rss {
        let mb = *bytes as f64 / 1e6;
        let _ = writeln!(
            s,
            "- peak RSS on {backend}: {mb:.0} MB (< 600 MB): {}",
            verdict(mb < 600.0)
        );
    }
}
