//! The benchmark's figures as one Markdown page: the machine's limits, training,
//! inference, memory, and each target of the speed issue with its measured value.

use std::fmt::Write as _;

use mnist_nn::backend::BackendKind;
use mnist_nn::config::Mode;

use crate::inference::Inference;
use crate::machine::Host;
use crate::torch::{Reference, TorchReached};
use crate::training::{AugmentationCost, Case, Reached, Timing, flop_per_epoch};

/// Everything measured.
pub struct Figures {
    /// Training timings (each with the machine's limits measured just before it).
    pub training: Vec<(Case, Timing)>,
    /// The GPU's float32 peak (data sheet), GFLOP/s, when given.
    pub gpu_peak: Option<f64>,
    /// Cases that could not run, and why.
    pub failed: Vec<(Case, String)>,
    /// Epochs, training seconds and test accuracy on first reaching 98%, per config
    /// and backend; `None` if it was not reached.
    pub to_accuracy: Vec<(&'static str, BackendKind, Option<Reached>)>,
    /// PyTorch's recipes to 98%, or why they were not run.
    pub torch_to_accuracy: Result<Vec<TorchReached>, String>,
    /// Runs behind each time-to-98% figure (its median).
    pub accuracy_reps: usize,
    /// Seconds of an epoch of the seed's equations in numpy at hidden 128, batch 128, or
    /// why not.
    pub numpy: Option<Result<f64, String>>,
    /// PyTorch's float32 GEMM rate on 2048³, GFLOP/s (a second ceiling).
    pub torch_gemm: Option<f64>,
    /// What distorted images cost an epoch (hidden 800, batch 128, manual, on the
    /// default backend).
    pub augmentation: Option<AugmentationCost>,
    /// Hidden units, and seconds of an epoch of manual steps (batch 128, default backend)
    /// with dense products with `X` and with sparse ones.
    pub sparse: Vec<(usize, f64, f64)>,
    /// Seconds of an epoch of manual steps (hidden 800, batch 128, default backend) with
    /// each variant of the sparse products' loops that the CPU runs.
    pub loops: Vec<(mnist_nn::sparse::Kernels, f64)>,
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
            training: Vec::new(),
            failed: Vec::new(),
            gpu_peak: None,
            to_accuracy: Vec::new(),
            torch_to_accuracy: Err("not run".into()),
            accuracy_reps: 0,
            augmentation: None,
            sparse: Vec::new(),
            loops: Vec::new(),
            torch_gemm: None,
            numpy: None,
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
    /// While the bench still runs: the phase it has reached (the report is written after
    /// every phase, so that one stopped part way keeps what it measured).
    pub unfinished: Option<&'a str>,
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

/// Median, smallest and largest of `v`.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (crate::median(v.to_vec()), lo, hi)
}

/// The backends timed, in order.
fn backends(f: &Figures) -> Vec<BackendKind> {
    let mut v: Vec<BackendKind> = Vec::new();
    for (c, _) in &f.training {
        if !v.contains(&c.backend) {
            v.push(c.backend);
        }
    }
    v
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
         {cpu} ({vector}), {cpus} logical CPUs; **{threads} threads** for every figure \
         (`RAYON_NUM_THREADS` for Burn, `torch.set_num_threads` for PyTorch). \
         Burn 0.22.1; {torch_line}. Each figure is the median of {reps} runs after one \
         warm-up. Made by `cargo bench --bench train`.\n",
        date = run.date,
        host = run.host.name,
        cpu = run.host.cpu,
        vector = run.host.vector,
        cpus = run.host.cpus,
        threads = run.threads,
        reps = run.reps,
    );
    if let Some(phase) = run.unfinished {
        let _ = writeln!(
            s,
            "**Unfinished**: written while the bench was still in its {phase}; the \
             figures below are those measured by then, and later phases' sections are \
             empty.\n"
        );
    }

    let _ = writeln!(
        s,
        "## The machine's float32 limits\n\n\
         Measured before every training figure below, which is compared with the ones \
         taken just before it; a shared machine's speed drifts, hence the range.\n\n\
         | measure | GFLOP/s, median | lowest | highest |\n|---|---:|---:|---:|"
    );
    let fma: Vec<f64> = f.training.iter().filter_map(|(_, t)| t.fma).collect();
    if fma.is_empty() {
        let why = if f.training.is_empty() {
            "not measured (no training figures in this run)"
        } else {
            "not measured (no AVX2/FMA)"
        };
        let _ = writeln!(s, "| FMA peak | {why} | | |");
    } else {
        let (m, lo, hi) = spread(&fma);
        let _ = writeln!(
            s,
            "| FMA peak ({}, {} threads) | {m:.0} | {lo:.0} | {hi:.0} |",
            crate::machine::fma_width(),
            run.threads
        );
    }
    if let Some(g) = f.torch_gemm {
        let _ = writeln!(
            s,
            "| PyTorch GEMM 2048³ ({} threads) | {g:.0} | | |",
            run.threads
        );
    }
    for backend in backends(f) {
        let lib = match backend {
            BackendKind::Ndarray => "matrixmultiply",
            BackendKind::Flex => crate::machine::gemm_kernels(),
            // The crate's `autotune` feature: CubeCL times its candidate kernels per shape.
            BackendKind::Wgpu if cfg!(feature = "autotune") => "CubeCL, autotuned",
            BackendKind::Wgpu => "CubeCL, default kernel",
            _ => "its own matmul",
        };
        let g: Vec<f64> = f
            .training
            .iter()
            .filter(|(c, _)| c.backend == backend)
            .map(|(_, t)| t.gemm)
            .collect();
        let (m, lo, hi) = spread(&g);
        let n = crate::training::gemm_side(backend);
        let _ = writeln!(
            s,
            "| GEMM {n}×{n}×{n}, {backend} ({lib}) | {m:.0} | {lo:.0} | {hi:.0} |"
        );
    }
    let _ = writeln!(s);

    let _ = writeln!(
        s,
        "## Training: one epoch of {n} images\n\n\
         *epoch*: the library's loop (shuffle, gather each batch on the device, step, \
         running loss and accuracy); *steps*: forward, backward and update alone on \
         batches gathered beforehand; *matmul*: the five matrix products of each step \
         alone. GFLOP counts those five products (`2·n·hidden·(2·784 + 3·10)`). \
         *% GEMM*, *% peak*: the steps' rate against the backend's GEMM and the FMA peak \
         measured just before (on wgpu: the GPU's data-sheet peak, when `--gpu-peak` \
         gives it). *vs PyTorch*: \
         PyTorch's epoch (autograd, `torch.optim.SGD`) divided by ours; above 1 is \
         faster than PyTorch. Manual steps on flex take the sparse products \
         with `X` (the default `sparse_input`; see *Sparse products with X*), which skip \
         the zero pixels' terms: their GFLOP/s and percentages count the dense products' \
         work (a dense-equivalent rate), so they can pass the GEMM ceiling.\n"
    );
    let _ = writeln!(
        s,
        "| backend | mode | hidden | batch | GFLOP | epoch s | images/s | steps s | \
         matmul s | steps GFLOP/s | % GEMM | % peak | PyTorch s | vs PyTorch |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (case, t) in &f.training {
        let flop = flop_per_epoch(case.hidden, n);
        let rate = flop / t.steps / 1e9;
        let pct_gemm = format!("{:.0}%", 100.0 * rate / t.gemm);
        let peak = match case.backend {
            BackendKind::Wgpu => f.gpu_peak,
            _ => t.fma,
        };
        let pct_fma = peak.map_or("–".to_string(), |p| format!("{:.0}%", 100.0 * rate / p));
        let batch = case.batch.unwrap_or(n);
        let torch = torch_seconds(f, case.hidden, batch, "autograd");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} | {:.3} | {:.0} | {:.3} | {:.3} | {:.0} | {} | {} | {} | {} |",
            case.backend,
            case.mode.name(),
            case.hidden,
            batch_word(case.batch),
            flop / 1e9,
            t.epoch,
            n as f64 / t.epoch,
            t.steps,
            t.matmul,
            rate,
            pct_gemm,
            pct_fma,
            torch.map_or("–".into(), |v| format!("{v:.3}")),
            torch.map_or("–".into(), |v| format!("{:.2}×", v / t.epoch)),
        );
    }
    let _ = writeln!(s);
    for (case, why) in &f.failed {
        let _ = writeln!(
            s,
            "- {} {} hidden {} batch {}: **failed**: {why}",
            case.backend,
            case.mode.name(),
            case.hidden,
            batch_word(case.batch)
        );
    }
    if !f.failed.is_empty() {
        let _ = writeln!(s);
    }
    if let Reference::Ran { times, .. } = &f.torch {
        let _ = writeln!(
            s,
            "PyTorch, seconds per epoch (same loop: shuffle, gather, step, running loss; and \
             the five products of each step alone, as in *matmul* above):\n\n\
             | hidden | batch | autograd + SGD | manual formulas | matmul only |\n\
             |---:|---:|---:|---:|---:|"
        );
        let mut keys: Vec<(usize, usize)> = times.keys().map(|(h, b, _)| (*h, *b)).collect();
        keys.dedup();
        for (h, b) in keys {
            let get = |m: &str| {
                times
                    .get(&(h, b, m.to_string()))
                    .map_or("–".into(), |v| format!("{v:.3}"))
            };
            let _ = writeln!(
                s,
                "| {h} | {b} | {} | {} | {} |",
                get("autograd"),
                get("manual"),
                get("matmul")
            );
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
            case.mode.name(),
            case.hidden,
            batch_word(case.batch),
            t.eval
        );
    }
    let _ = writeln!(s);

    time_to_accuracy(&mut s, f, n);
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
    if f.rss.is_empty() {
        let _ = writeln!(s, "| (not measured: this OS has no `wait4`) | |");
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## Targets (batch 128)\n");
    targets(&mut s, f, n);
    s
}

/// The time-to-98% table: our configs per backend, then PyTorch's recipes, and the
/// ratio of our fastest to PyTorch's fastest.
fn time_to_accuracy(s: &mut String, f: &Figures, n: usize) {
    let reps = f.accuracy_reps;
    let _ = writeln!(
        s,
        "## Time to 98% test accuracy\n\n\
         Each recipe trains the network from scratch on all {n} training images (784-800-10, \
         but 784-384-10 for `fast` and 784-512-10 for `fast-512` and `fast-b64`) with the \
         same thread count, the test set evaluated after every epoch; training seconds \
         only (evaluations excluded), the median of {reps} runs, PyTorch's and ours taking \
         turns. PyTorch's recipes are in `bench/torch_ref.py` \
         (`RECIPES`); `fast` there is `configs/fast.toml` written in PyTorch, `fast-512` \
         its earlier recipe (512 units, α = 0.2 decayed over 4 epochs), `fast-b64` that \
         one at batch 64 with the rate decayed over 2 epochs.\n\n\
         | who | recipe | backend | epochs | seconds | test accuracy |\n|---|---|---|---:|---:|---:|"
    );
    for (config, backend, reached) in &f.to_accuracy {
        match reached {
            Some(r) => {
                let _ = writeln!(
                    s,
                    "| mnist-nn | `{config}` | {backend} | {} | {:.1} | {:.2}% |",
                    r.epochs,
                    r.seconds,
                    100.0 * r.accuracy
                );
            }
            None => {
                let _ = writeln!(s, "| mnist-nn | `{config}` | {backend} | not reached | | |");
            }
        }
    }
    match &f.torch_to_accuracy {
        Ok(recipes) => {
            for r in recipes {
                let epochs = r
                    .epochs
                    .map_or("not reached".to_string(), |e| e.to_string());
                let _ = writeln!(
                    s,
                    "| PyTorch | `{}` | CPU | {epochs} | {:.1} | {:.2}% |",
                    r.recipe,
                    r.seconds,
                    100.0 * r.accuracy
                );
            }
        }
        Err(why) => {
            let _ = writeln!(s, "\nPyTorch's recipes: skipped ({why}).");
        }
    }
    let ours = f
        .to_accuracy
        .iter()
        .filter(|(_, b, _)| *b == BackendKind::default())
        .filter_map(|(_, _, r)| r.map(|r| r.seconds))
        .fold(f64::INFINITY, f64::min);
    let theirs = f.torch_to_accuracy.as_ref().map_or(f64::INFINITY, |rs| {
        rs.iter()
            .filter(|r| r.epochs.is_some())
            .map(|r| r.seconds)
            .fold(f64::INFINITY, f64::min)
    });
    if ours.is_finite() && theirs.is_finite() {
        let _ = writeln!(
            s,
            "\nFastest on {} against PyTorch's fastest: {ours:.1} s against {theirs:.1} s, \
             {:.2}× PyTorch's time (target ≤ 0.5×).",
            BackendKind::default(),
            ours / theirs
        );
    }
    if !f.sparse.is_empty() {
        let _ = writeln!(
            s,
            "\n## Sparse products with X\n\nAn epoch of manual steps at batch 128 on {}, \
             `W1·X` and `dZ1·Xᵀ` as dense matrix products (`sparse_input = false`) and over \
             the batch's nonzero pixels (the default; `src/sparse.rs`):\n\n\
             | hidden | dense | sparse | speed-up |\n|---:|---:|---:|---:|",
            BackendKind::default()
        );
        for (hidden, dense, sparse) in &f.sparse {
            let _ = writeln!(
                s,
                "| {hidden} | {dense:.3} s | {sparse:.3} s | **{:.2}×** |",
                dense / sparse
            );
        }
    }
    if let Some((_, widest)) = f.loops.last() {
        let _ = writeln!(
            s,
            "\nThe same epoch at hidden 800 with each variant of the sparse loops that this \
             CPU runs (the widest is the default), taking turns:\n\n\
             | loops | epoch | widest's speed-up |\n|---|---:|---:|"
        );
        for (loops, seconds) in &f.loops {
            let _ = writeln!(
                s,
                "| {} | {seconds:.3} s | {:.2}× |",
                loops.name(),
                seconds / widest
            );
        }
    }
    if let Some(cost) = f.augmentation {
        augmentation(s, &cost);
    }
}

/// The augmentation section: a plain epoch, one on distorted images made beforehand and
/// one that makes them as it goes, with the parts of the difference.
fn augmentation(s: &mut String, c: &AugmentationCost) {
    let more = |a: f64, b: f64| 100.0 * (a / b - 1.0);
    let _ = writeln!(
        s,
        "\n## Augmentation\n\nAn epoch of manual steps at hidden 800, batch 128 on {}, \
         with shift, rotation, scale, shear and Simard's elastic distortion all on \
         (median of alternated runs):\n\n\
         | epoch | seconds | against plain |\n|---|---|---|\n\
         | plain images ({:.1}% of pixels nonzero) | {:.3} s | |\n\
         | distorted images made beforehand ({:.1}% nonzero) | {:.3} s | {:+.0}% |\n\
         | distorted images made during the epoch | {:.3} s | **{:+.0}%** (target ≤ +20%) |\n\n\
         The distorted digits' own cost (their extra ink: the sparse products' work grows \
         with the nonzero pixels) is {:+.0}%; making them during the epoch adds {:+.0}% to \
         an epoch on the same images made beforehand.",
        BackendKind::default(),
        100.0 * c.ink_plain,
        c.plain,
        100.0 * c.ink_distorted,
        c.made_before,
        more(c.made_before, c.plain),
        c.on_the_fly,
        more(c.on_the_fly, c.plain),
        more(c.made_before, c.plain),
        more(c.on_the_fly, c.made_before),
    );
}

/// One line per target of the speed issue, measured value and met or not.
fn targets(s: &mut String, f: &Figures, n: usize) {
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
    match (&f.numpy, timing_of(f, default, Mode::Manual, 128)) {
        (Some(Ok(numpy)), Some(t)) => {
            let ratio = numpy / t.epoch;
            let _ = writeln!(
                s,
                "- manual on {default}, hidden 128, vs numpy (`bench/numpy_ref.py`, {numpy:.2} s an \
                 epoch): {ratio:.2}× (≥ 1.0): {}",
                verdict(ratio >= 1.0)
            );
        }
        (Some(Err(why)), _) => {
            let _ = writeln!(s, "- numpy reference: not measured ({why})");
        }
        _ => {}
    }
    for backend in backends(f) {
        if backend == BackendKind::Wgpu {
            continue;
        }
        if let Some(t) = timing_of(f, backend, Mode::Manual, 800) {
            // The best GEMM rate seen on the machine: the backend's own or PyTorch's.
            let best = f.torch_gemm.map_or(t.gemm, |p| p.max(t.gemm));
            let pct = 100.0 * flop_per_epoch(800, n) / t.steps / 1e9 / best;
            let _ = writeln!(
                s,
                "- hidden 800 on {backend}, manual: steps at {pct:.0}% of the best GEMM rate \
                 measured ({best:.0} GFLOP/s, the higher of its own and PyTorch's; \
                 dense-equivalent, with sparse products) (≥ 60%): {}",
                verdict(pct >= 60.0)
            );
        }
    }
    for backend in backends(f) {
        for hidden in [128, 800] {
            let (Some(m), Some(a)) = (
                timing_of(f, backend, Mode::Manual, hidden),
                timing_of(f, backend, Mode::Autodiff, hidden),
            ) else {
                continue;
            };
            let ratio = a.epoch / m.epoch;
            // Autodiff computes the dense products; the like-for-like comparison is with
            // manual mode's dense products, where the sparse section measured them.
            let dense = f
                .sparse
                .iter()
                .find(|(h, ..)| *h == hidden && backend == BackendKind::default())
                .map(|(_, dense, _)| a.epoch / dense);
            match dense {
                Some(like) => {
                    let _ = writeln!(
                        s,
                        "- autodiff / manual on {backend}, hidden {hidden}: {ratio:.2}× against \
                         manual's sparse products; {like:.2}× against its dense ones, the \
                         products autodiff computes (≤ 1.5): {}",
                        verdict(like <= 1.5)
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "- autodiff / manual on {backend}, hidden {hidden}: {ratio:.2}× (≤ 1.5): {}",
                        verdict(ratio <= 1.5)
                    );
                }
            }
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
