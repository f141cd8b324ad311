//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::prelude::*;
use mnist_nn::IMAGE_PIXELS;
use mnist_nn::NUM_CLASSES;
use mnist_nn::backend::BackendKind;
use mnist_nn::data::Mnist;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The repository root (where `data/` and `configs/` are): where Cargo built the
/// tests, or `MNIST_NN_ROOT` for a copy run elsewhere (scripts/device-check).
pub fn root() -> PathBuf {
    std::env::var_os("MNIST_NN_ROOT")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The real binary under test: Cargo's, or `MNIST_NN_BIN` for a copy run elsewhere.
pub fn bin() -> PathBuf {
    std::env::var_os("MNIST_NN_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_mnist-nn")),
        PathBuf::from,
    )
}

/// The bundled MNIST, read once per test binary (no validation split, all images).
pub fn mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| {
        Mnist::load(&root().join("data/mnist"), 5000, None).expect("bundled MNIST loads")
    })
}

/// Set in CI, where a (software) Vulkan driver is installed: a missing wgpu adapter is
/// then a failure rather than a skipped backend.
const REQUIRE_WGPU: &str = "MNIST_NN_REQUIRE_WGPU";

/// The devices of every backend available here. wgpu is skipped, loudly, only when no
/// adapter exists and `MNIST_NN_REQUIRE_WGPU` is unset.
pub fn devices() -> Vec<(BackendKind, Device)> {
    let mut out = Vec::new();
    for kind in BackendKind::ALL {
        match kind.device() {
            Ok(device) => out.push((kind, device)),
            Err(e) if std::env::var_os(REQUIRE_WGPU).is_none() => {
                eprintln!("SKIPPING backend {kind}: {e}");
            }
            Err(e) => panic!("backend {kind} is required here ({REQUIRE_WGPU} is set): {e}"),
        }
    }
    out
}

/// A `(784, m)` input of uniform pixels in `[0, 1]` and its `(10, m)` one-hot labels,
/// with labels `(m)` drawn from `seed`.
pub fn random_batch(m: usize, seed: u64, device: &Device) -> (Tensor<2>, Tensor<2>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pixels: Vec<f32> = (0..m * IMAGE_PIXELS).map(|_| rng.random::<f32>()).collect();
    let labels: Vec<usize> = (0..m).map(|_| rng.random_range(0..NUM_CLASSES)).collect();
    let mut one_hot = vec![0.0f32; m * NUM_CLASSES];
    for (i, &l) in labels.iter().enumerate() {
        one_hot[i * NUM_CLASSES + l] = 1.0;
    }
    let x = Tensor::<2>::from_data(TensorData::new(pixels, [m, IMAGE_PIXELS]), device);
    let y = Tensor::<2>::from_data(TensorData::new(one_hot, [m, NUM_CLASSES]), device);
    (x.transpose(), y.transpose(), labels)
}

/// A tensor's values as `f64`.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.try_into_vec_as::<f64>().expect("tensor reads back")
}

/// Largest `|a − b|` and largest `|b|`.
pub fn max_diff(a: &[f64], b: &[f64]) -> (f64, f64) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    (diff, scale)
}

/// Asserts `|got − want| ≤ tol · max|want|` elementwise (a relative bound on the
/// largest entry, so that entries near zero are not held to an impossible standard) and
/// reports the largest difference seen either way.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let (diff, scale) = max_diff(got, want);
    let bound = tol * scale;
    eprintln!("{what}: max |diff| = {diff:.3e} (max |ref| = {scale:.3e}, bound {bound:.1e})");
    assert!(
        diff <= bound,
        "{what}: max |diff| = {diff:e} exceeds {bound:e} (max |ref| = {scale:e})"
    );
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file writes");
    path
}

/// Runs the binary with `args` in `cwd`.
pub fn run_bin(args: &[&str], cwd: &Path) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("binary runs")
}

/// `mnist-nn predict --json` on one image with the model of `run`: its JSON answer (the
/// command must succeed).
pub fn predict_json(run: &Path, image: &Path) -> serde_json::Value {
    let out = run_bin(
        &[
            "predict",
            "--json",
            "--model",
            run.to_str().unwrap(),
            image.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a Python check: `PYTHON` (default `python3`) with `args`. `None`, after a
/// `SKIPPING` line naming `what`, when Python cannot be started or the script exits 3
/// (a module it needs does not import), unless `MNIST_NN_REQUIRE_PYTHON` is set: then
/// either fails the test.
pub fn python_check(args: &[&std::ffi::OsStr], what: &str) -> Option<std::process::Output> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let required = std::env::var_os("MNIST_NN_REQUIRE_PYTHON").is_some();
    let out = match std::process::Command::new(&python).args(args).output() {
        Ok(out) => out,
        Err(e) if !required => {
            eprintln!("SKIPPING the {what} check: {python} does not start ({e})");
            return None;
        }
        Err(e) => panic!("MNIST_NN_REQUIRE_PYTHON is set but {python} does not start: {e}"),
    };
    if out.status.code() == Some(3) && !required {
        eprintln!("SKIPPING the {what} check: {python} lacks a module it needs");
        return None;
    }
    Some(out)
}

/// Runs the binary with `args` in `cwd` and fails the test, with its stderr, unless it
/// succeeds.
pub fn run_bin_ok(args: &[&str], cwd: &Path) {
    let out = run_bin(args, cwd);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A run directory trained once per test binary by the real binary: hidden 32, one
/// epoch of 20,000 images at batch 16 (about 93% test accuracy), on ndarray.
pub fn trained_run() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = RUN.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "name = \"shared\"\nseed = 3\n[model]\nhidden = 32\n[train]\nepochs = 1\nbatch_size = 16\nlearning_rate = 0.1\n[data]\ndir = {:?}\nlimit = 20000\n",
            root().join("data/mnist")
        );
        let config = write(tmp.path(), "shared.toml", &text);
        let dir = tmp.path().join("run");
        let out = run_bin(
            &[
                "--config",
                config.to_str().expect("utf-8 path"),
                "--out",
                dir.to_str().expect("utf-8 path"),
            ],
            tmp.path(),
        );
        assert!(
            out.status.success(),
            "training the shared run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (tmp, dir)
    });
    dir
}

/// The parameters saved in a run directory.
pub fn saved_params(dir: &Path) -> mnist_nn::model::HostParams {
    let device = BackendKind::Ndarray.device().expect("ndarray");
    let model = mnist_nn::run_dir::RunDir::open(dir)
        .and_then(|run| run.load_model(&device))
        .expect("run loads");
    model.to_host().expect("parameters read back")
}

/// Copies `names` (files or folders) of the shared trained run into `to`.
pub fn copy_of_run(to: &Path, names: &[&str]) {
    let from = trained_run();
    std::fs::create_dir_all(to.join("checkpoints")).unwrap();
    for name in names {
        let source = from.join(name);
        if source.is_dir() {
            for entry in std::fs::read_dir(&source).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), to.join(name).join(entry.file_name())).unwrap();
            }
        } else {
            std::fs::copy(source, to.join(name)).unwrap();
        }
    }
}

/// The real binary with `args` in `cwd`, on a machine made to look as if it had no GPU
/// at all: no Vulkan driver manifest and no display, so wgpu finds no Vulkan adapter,
/// and no EGL vendor library, so its OpenGL fallback finds none either.
pub fn run_bin_without_gpu(args: &[&str], cwd: &Path) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .env("__EGL_VENDOR_LIBRARY_DIRS", "/nonexistent")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent.json")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("BURN_DEVICE")
        .output()
        .expect("binary runs")
}

/// 1,000 training images (10 steps an epoch at batch 100), 500 validation, 1,000 test.
pub fn small_mnist() -> Mnist {
    let all = mnist();
    Mnist {
        train: all.train.slice(0..1000),
        valid: all.valid.slice(0..500),
        test: all.test.slice(0..1000),
    }
}

/// What a checkpoint offered: the parameters, the position and the history.
pub type Saved = (
    mnist_nn::model::HostParams,
    mnist_nn::train::Position,
    Vec<mnist_nn::train::EpochRecord>,
);

/// Stops training once epoch `epoch` is done (with `at_batch`, `at_batch` batches into
/// the next one instead), keeping the state it was last offered. Counts batches of
/// [`small_mnist`] at batch 100: 10 an epoch.
pub struct StopAt {
    pub epoch: usize,
    pub at_batch: Option<usize>,
    pub batches_seen: usize,
    pub saved: Option<Saved>,
}

impl StopAt {
    /// Stops after `epoch` epochs, or `at_batch` batches into the next.
    pub fn new(epoch: usize, at_batch: Option<usize>) -> Self {
        Self {
            epoch,
            at_batch,
            batches_seen: 0,
            saved: None,
        }
    }

    /// The saved state as a [`mnist_nn::train::TrainState`] on `device`.
    pub fn state(self, device: &Device) -> mnist_nn::train::TrainState {
        let (params, at, history) = self.saved.expect("a checkpoint was offered");
        mnist_nn::train::TrainState {
            model: mnist_nn::model::TwoLayerNet::from_host(&params, device),
            optimizer: None,
            velocity: None,
            moments: None,
            at,
            history,
        }
    }
}

impl mnist_nn::train::Observer for StopAt {
    fn batch_finished(&mut self, _batch: usize) {
        self.batches_seen += 1;
    }
    fn checkpoint(&mut self, state: &mnist_nn::train::StateRef<'_>) -> mnist_nn::Result<()> {
        let params = state.model.to_host().expect("reads back");
        self.saved = Some((params, state.at, state.history.to_vec()));
        Ok(())
    }
    fn stop_requested(&mut self) -> bool {
        let done = self.batches_seen / 10;
        match self.at_batch {
            Some(b) => done == self.epoch && self.batches_seen % 10 == b,
            None => done >= self.epoch,
        }
    }
}

/// MNIST test digit `i` enlarged `zoom` times (nearest pixel), dark ink on paper, at
/// `(left, top)` of a `w × h` picture whose paper has brightness `paper(x, y)`; the ink
/// darkens the paper by up to 80%.
pub fn photo(
    i: usize,
    zoom: usize,
    (w, h): (usize, usize),
    (left, top): (usize, usize),
    paper: impl Fn(usize, usize) -> f32,
) -> mnist_nn::preprocess::Gray {
    let digit = &mnist().test.pixels[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS];
    let pixels = (0..w * h)
        .map(|k| {
            let (x, y) = (k % w, k / w);
            let (dx, dy) = (x.wrapping_sub(left) / zoom, y.wrapping_sub(top) / zoom);
            let ink = if dx < mnist_nn::IMAGE_SIDE && dy < mnist_nn::IMAGE_SIDE {
                f32::from(digit[dy * mnist_nn::IMAGE_SIDE + dx]) / 255.0
            } else {
                0.0
            };
            (paper(x, y) * (1.0 - 0.8 * ink)).clamp(0.0, 1.0)
        })
        .collect();
    mnist_nn::preprocess::Gray {
        width: w,
        height: h,
        pixels,
    }
}

/// Waits until no process holds `dir`'s run lock, failing the test after 10 s. A lock
/// this process dropped can outlive the drop by a moment: a child that another test
/// forks meanwhile shares the lock's file until it reaches `exec` (which closes it),
/// and on two busy cores a child can wait that long to be scheduled.
pub fn wait_until_released(dir: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mnist_nn::run_lock::RunLock::held(dir) {
        assert!(
            std::time::Instant::now() < deadline,
            "{}: still locked 10 s after its holder let go",
            dir.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every file of the shared run, copied to a fresh directory (so that writing into it
/// disturbs no other test).
pub fn whole_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    copy_of_run(
        &run,
        &[
            mnist_nn::run_dir::files::CONFIG,
            mnist_nn::run_dir::files::METRICS,
            mnist_nn::run_dir::files::MODEL,
            mnist_nn::run_dir::files::SUMMARY,
            mnist_nn::run_dir::files::CHECKPOINT,
            mnist_nn::run_dir::files::CHECKPOINTS,
        ],
    );
    (tmp, run)
}
