//! Keeping the best network and stopping in time: the rules on known histories, and
//! real runs that keep `model-best.bpk`, stop at a target, and stop without progress.

use std::path::Path;

use mnist_nn::config::Config;
use mnist_nn::eval::Evaluation;
use mnist_nn::run_dir::{RunDir, Which, files};
use mnist_nn::train::{EarlyStop, EpochRecord, early_stop, is_best};

use crate::util::{root, run_bin, run_bin_ok, saved_params, write};

/// A finished epoch with validation accuracy `valid` (None: not evaluated).
fn record(epoch: usize, valid: Option<f64>) -> EpochRecord {
    let e = |accuracy| Evaluation {
        loss: 0.1,
        accuracy,
        images: 100,
    };
    EpochRecord {
        epoch,
        step: 10 * epoch,
        train: e(0.5),
        valid: valid.map(e),
        test: valid.map(e),
        lr: 0.1,
        train_seconds: 1.0,
        eval_seconds: 0.5,
        to_target_s: None,
    }
}

fn train_config(extra: &str) -> mnist_nn::config::TrainConfig {
    let text = format!(
        "name = \"x\"\n[model]\nhidden = 4\n[train]\nepochs = 20\nbatch_size = 10\nlearning_rate = 0.1\n{extra}"
    );
    Config::parse(&text, Path::new("x.toml")).unwrap().train
}

#[test]
fn the_rules_on_known_histories() {
    let accs = [0.80, 0.85, 0.84, 0.86, 0.86, 0.85];
    let history: Vec<EpochRecord> = accs
        .iter()
        .enumerate()
        .map(|(i, &a)| record(i + 1, Some(a)))
        .collect();
    // Target: the first epoch at or above it.
    let stop = early_stop(&train_config("target_accuracy = 0.85\n"), &history);
    assert_eq!(
        stop,
        Some(EarlyStop::TargetReached {
            epoch: 2,
            accuracy: 0.85
        })
    );
    assert_eq!(
        early_stop(&train_config("target_accuracy = 0.9\n"), &history),
        None
    );
    // Patience: epoch 4 is the best (epoch 5 only equals it); two evaluations since.
    let p2 = train_config("patience = 2\n");
    assert_eq!(
        early_stop(&p2, &history),
        Some(EarlyStop::NoImprovement {
            best_epoch: 4,
            accuracy: 0.86
        })
    );
    assert_eq!(
        early_stop(&p2, &history[..5]),
        None,
        "one evaluation since the best"
    );
    assert_eq!(early_stop(&train_config("patience = 3\n"), &history), None);
    // Epochs without an evaluation do not count.
    let sparse = vec![
        record(1, Some(0.9)),
        record(2, None),
        record(3, Some(0.8)),
        record(4, None),
    ];
    assert_eq!(early_stop(&train_config("patience = 2\n"), &sparse), None);
    // The best: strictly better than every earlier evaluation.
    let best: Vec<bool> = (1..=history.len())
        .map(|n| is_best(&history[..n]))
        .collect();
    assert_eq!(best, [true, true, false, true, false, false]);
    assert!(
        !is_best(&sparse[..2]),
        "an epoch without evaluation is not the best"
    );
}

/// A run of 2,000 images (hidden 16, batch 50), 500 held out, at rate `lr`.
fn config(dir: &Path, name: &str, epochs: usize, lr: f64, extra: &str) -> String {
    let text = format!(
        "name = \"{name}\"\nseed = 4\n[model]\nhidden = 16\n[train]\nepochs = {epochs}\nbatch_size = 50\nlearning_rate = {lr}\n{extra}[data]\ndir = {:?}\nvalidation = 500\nlimit = 2000\n",
        root().join("data/mnist")
    );
    let path = write(dir, &format!("{name}.toml"), &text);
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn the_best_file_holds_the_best_validation_epochs_parameters() {
    // A rate high enough that validation accuracy goes up and down (here 62.8, 69.8,
    // 85.0, 91.6, 88.4, 90.8, 88.6, 89.6%): the best epoch is then not the last
    // (checked), and model-best.bpk must equal the network of a run stopped at that
    // epoch (the same seed and steps on the same backend: bit for bit).
    let tmp = tempfile::tempdir().unwrap();
    let long = tmp.path().join("long");
    let c = config(tmp.path(), "long", 8, 0.5, "");
    run_bin_ok(
        &["--config", &c, "--out", long.to_str().unwrap()],
        tmp.path(),
    );
    let run = RunDir::open(&long).unwrap();
    let best = run
        .summary()
        .and_then(|s| s.best_epoch)
        .expect("a best epoch");
    let history = &run.checkpoint().unwrap().expect("checkpoint").history;
    let accs: Vec<f64> = history.iter().map(|r| r.valid.unwrap().accuracy).collect();
    assert!(
        best < history.len(),
        "best epoch {best} of {accs:?} should not be the last"
    );
    let top = accs.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(accs[best - 1], top, "{accs:?}");
    assert!(
        accs[..best - 1].iter().all(|&a| a < top),
        "the first best: {accs:?}"
    );

    let short = tmp.path().join("short");
    let c = config(tmp.path(), "short", best, 0.5, "");
    run_bin_ok(
        &["--config", &c, "--out", short.to_str().unwrap()],
        tmp.path(),
    );
    let kept = {
        let device = mnist_nn::backend::BackendKind::Ndarray.device().unwrap();
        run.load(Which::Best, &device).unwrap().to_host().unwrap()
    };
    assert_eq!(
        kept,
        saved_params(&short),
        "model-best.bpk is epoch {best}'s network"
    );
    assert_ne!(kept, saved_params(&long), "and not the last");
    // `eval --best` uses it.
    let out = run_bin(
        &["eval", "--best", "--model", long.to_str().unwrap()],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_target_accuracy_stops_at_the_first_epoch_that_reaches_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("target");
    let c = config(tmp.path(), "target", 30, 0.1, "target_accuracy = 0.85\n");
    let out = run_bin(
        &["--config", &c, "--out", dir.to_str().unwrap()],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("reached train.target_accuracy"), "{stderr}");
    let run = RunDir::open(&dir).unwrap();
    let summary = run.summary().unwrap();
    let history = &run.checkpoint().unwrap().unwrap().history;
    let accs: Vec<f64> = history.iter().map(|r| r.valid.unwrap().accuracy).collect();
    let Some(EarlyStop::TargetReached { epoch, .. }) = summary.stopped else {
        panic!("not stopped by the target: {summary:?}");
    };
    assert_eq!(epoch, history.len(), "stopped right after it: {accs:?}");
    assert!(epoch < 30, "{accs:?}");
    assert!(accs[epoch - 1] >= 0.85, "{accs:?}");
    assert!(
        accs[..epoch - 1].iter().all(|&a| a < 0.85),
        "the first: {accs:?}"
    );
    assert_eq!(summary.status.name(), "stopped");
    assert!(
        dir.join(files::MODEL).exists(),
        "a stopped run saves its network"
    );
    let metrics = std::fs::read_to_string(dir.join(files::METRICS)).unwrap();
    assert_eq!(metrics.matches("time/to_target_s").count(), 1, "{metrics}");
    // Resuming a stopped run is refused while the rule still holds, and leaves the run
    // as it was.
    let files_now = || {
        [files::CONFIG, files::SUMMARY, files::METRICS].map(|f| std::fs::read(dir.join(f)).unwrap())
    };
    let before = files_now();
    let out = run_bin(&["--resume", dir.to_str().unwrap()], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("config.toml: `train.target_accuracy` is 0.85")
            && stderr.contains("raise or remove it"),
        "{stderr}"
    );
    assert!(before == files_now(), "a refused resume changed the run");
    // With the rule removed from the run's config.toml, it trains on.
    let config_toml = std::fs::read_to_string(dir.join(files::CONFIG)).unwrap();
    let without: String = config_toml
        .lines()
        .filter(|l| !l.starts_with("target_accuracy"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        without, config_toml,
        "the run's config.toml names the target"
    );
    std::fs::write(dir.join(files::CONFIG), without).unwrap();
    let more = (epoch + 1).to_string();
    run_bin_ok(
        &["--resume", dir.to_str().unwrap(), "--epochs", &more],
        tmp.path(),
    );
    let again = RunDir::open(&dir).unwrap();
    assert_eq!(again.summary().unwrap().epochs, epoch + 1);
    assert_eq!(again.summary().unwrap().status.name(), "completed");
}

#[test]
fn patience_stops_a_run_that_stopped_improving() {
    // The run of the test above: its best validation accuracy is epoch 4's, and the
    // next two evaluations do not beat it.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("patience");
    let c = config(tmp.path(), "patience", 40, 0.5, "patience = 2\n");
    let out = run_bin(
        &["--config", &c, "--out", dir.to_str().unwrap()],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let run = RunDir::open(&dir).unwrap();
    let summary = run.summary().unwrap();
    let history = &run.checkpoint().unwrap().unwrap().history;
    let accs: Vec<f64> = history.iter().map(|r| r.valid.unwrap().accuracy).collect();
    let Some(EarlyStop::NoImprovement { best_epoch, .. }) = summary.stopped else {
        panic!("not stopped by patience: {accs:?}");
    };
    assert_eq!(
        history.len(),
        best_epoch + 2,
        "two evaluations after the best: {accs:?}"
    );
    assert!(history.len() < 40, "{accs:?}");
    assert_eq!(summary.best_epoch, Some(best_epoch));
}

#[test]
fn stopping_rules_need_a_validation_split_and_best_needs_a_best() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"v\"\n[model]\nhidden = 4\n[train]\nepochs = 2\nbatch_size = 50\nlearning_rate = 0.1\npatience = 2\n[data]\ndir = {:?}\nvalidation = 0\nlimit = 200\n",
        root().join("data/mnist")
    );
    let c = write(tmp.path(), "v.toml", &text);
    let out = run_bin(&["--config", c.to_str().unwrap(), "--out", "v"], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("data.validation"),
        "{stderr}"
    );

    let c = write(tmp.path(), "w.toml", &text.replace("patience = 2\n", ""));
    let out = run_bin(&["--config", c.to_str().unwrap(), "--out", "w"], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The last line says there is no validation figure rather than printing a dash.
    assert!(
        stderr.contains("test loss ") && stderr.contains(", no validation split; outputs in"),
        "{stderr}"
    );
    let out = run_bin(&["eval", "--best", "--model", "w"], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("model-best.bpk")
            && stderr.contains("not found")
            && stderr.contains("`data.validation` is 0")
            && !stderr.contains("none yet"),
        "never one, rather than none yet: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
