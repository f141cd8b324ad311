//! The real binary, end to end, in temporary directories.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use mnist_nn::backend::BackendKind;
use mnist_nn::eval::evaluate;
use mnist_nn::run_dir::{RunDir, files};

use crate::util::{bin, devices, mnist, root, write};

/// A config for a short run on the bundled data.
fn short_config(dir: &Path, limit: usize, hidden: usize) -> std::path::PathBuf {
    // Batch 16, α 0.1. One epoch of 10,000 images lands at 89.3–91.5% depending on the
    // seed (the last steps are noisy; an independent numpy run of the same recipe agrees),
    // too close to 90% to test; 20,000 images gave 91.5–93.5% over seeds 1–8.
    let text = format!(
        "name = \"short\"\nseed = 1\n[model]\nhidden = {hidden}\n[train]\nepochs = 1\nbatch_size = 16\nlearning_rate = 0.1\n[data]\ndir = {:?}\nvalidation = 5000\nlimit = {limit}\n",
        root().join("data/mnist")
    );
    write(dir, "short.toml", &text)
}

fn mnist_nn(args: &[&str], cwd: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses `metrics.csv`, checking its shape; returns `(step, tag, value)` rows.
fn metrics(path: &Path) -> Vec<(usize, String, f64)> {
    let text = std::fs::read_to_string(path).expect("metrics.csv exists");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("wall_time,step,tag,value"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 4, "row {l:?}");
            let wall: f64 = f[0].parse().expect("wall_time is a number");
            assert!(wall > 1.6e9, "wall_time is Unix seconds: {wall}");
            let value: f64 = f[3].parse().expect("value is a number");
            assert!(value.is_finite(), "row {l:?}");
            (
                f[1].parse().expect("step is an integer"),
                f[2].to_string(),
                value,
            )
        })
        .collect()
}

#[test]
fn short_run_reaches_90_percent_and_its_saved_model_reloads() {
    let tmp = tempfile::tempdir().unwrap();
    let config = short_config(tmp.path(), 20_000, 64);
    let out = tmp.path().join("run");
    let o = mnist_nn(
        &[
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(&o));
    assert!(
        stderr(&o).contains("test accuracy"),
        "a final summary is printed: {}",
        stderr(&o)
    );

    for f in [files::CONFIG, files::METRICS, files::MODEL, files::SUMMARY] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let rows = metrics(&out.join(files::METRICS));
    let tags: BTreeSet<&str> = rows.iter().map(|(_, t, _)| t.as_str()).collect();
    for t in [
        "train/loss",
        "train/accuracy",
        "valid/loss",
        "valid/accuracy",
        "test/loss",
        "test/accuracy",
        "lr",
        "time/epoch_s",
    ] {
        assert!(tags.contains(t), "metrics.csv has {t}: {tags:?}");
    }
    let steps: BTreeSet<usize> = rows.iter().map(|r| r.0).collect();
    assert_eq!(
        steps,
        BTreeSet::from([20_000usize.div_ceil(16)]),
        "one epoch, logged at its last step"
    );

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(files::SUMMARY)).unwrap()).unwrap();
    let acc = summary["test"]["accuracy"]
        .as_f64()
        .expect("summary has test accuracy");
    let logged = rows.iter().find(|r| r.1 == "test/accuracy").unwrap().2;
    assert_eq!(acc, logged, "summary.json and metrics.csv agree");
    assert!(
        acc >= 0.90,
        "1 epoch on 20,000 images reaches ≥ 90% test accuracy, got {acc}"
    );

    let device = BackendKind::Ndarray.device().unwrap();
    let model = RunDir::open(&out)
        .and_then(|run| run.load_model(&device))
        .expect("run directory reloads");
    let test = mnist().test.to_device(&device);
    let reloaded = evaluate(&model, &test).expect("evaluates").accuracy;
    assert_eq!(
        reloaded, acc,
        "the saved model reproduces the reported test accuracy"
    );
}

#[test]
fn every_backend_trains_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let config = short_config(tmp.path(), 2000, 16);
    for (kind, _) in devices() {
        let out = tmp.path().join(kind.name());
        let o = mnist_nn(
            &[
                "--config",
                config.to_str().unwrap(),
                "--backend",
                kind.name(),
                "--mode",
                "autodiff",
                "--out",
                out.to_str().unwrap(),
            ],
            &root(),
        );
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        let summary = std::fs::read_to_string(out.join(files::SUMMARY)).unwrap();
        assert!(
            summary.contains(&format!("\"backend\": \"{kind}\"")),
            "{summary}"
        );
        assert!(summary.contains("\"mode\": \"autodiff\""), "{summary}");
    }
}

#[test]
fn default_output_is_a_fresh_directory_under_artifacts() {
    let tmp = tempfile::tempdir().unwrap();
    let config = short_config(tmp.path(), 200, 4);
    for expected in ["short", "short-2"] {
        let o = mnist_nn(&["--config", config.to_str().unwrap()], tmp.path());
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            tmp.path()
                .join("artifacts")
                .join(expected)
                .join(files::SUMMARY)
                .is_file(),
            "{expected}"
        );
    }
}

#[test]
fn an_out_directory_holding_a_run_is_refused_and_left_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let config = short_config(tmp.path(), 200, 4);
    let out = tmp.path().join("run");
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    assert!(mnist_nn(&args, &root()).status.success());
    let before = std::fs::read(out.join(files::METRICS)).unwrap();
    let o = mnist_nn(&args, &root());
    assert!(!o.status.success());
    // It has a checkpoint, so continuing it is one of the ways out.
    assert!(
        stderr(&o).contains("already holds a run")
            && stderr(&o).contains("continue it with --resume"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(out.join(files::METRICS)).unwrap(),
        before,
        "earlier run untouched"
    );
    // An --out that is a file is named as such, and the file is left as it was.
    let file = write(tmp.path(), "notes.txt", "kept");
    let o = mnist_nn(
        &[
            "--config",
            config.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "{}: exists and is not a directory",
            file.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept");
}

#[test]
fn bad_input_exits_non_zero_with_one_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(short_config(tmp.path(), 200, 4)).unwrap();
    let cases = [
        ("hidden = 4", "hidden = 0", "model.hidden"),
        ("hidden = 4", "hidden = 4\nwidth = 3", "width"),
        (
            "validation = 5000",
            "validation = 60000",
            "`data.validation` is 60000, which leaves no training images",
        ),
        ("batch_size = 16", "batch_size = 201", "train.batch_size"),
    ];
    for (from, to, needle) in cases {
        let path = write(tmp.path(), "bad.toml", &good.replace(from, to));
        let o = mnist_nn(
            &[
                "--config",
                path.to_str().unwrap(),
                "--out",
                tmp.path().join("x").to_str().unwrap(),
            ],
            &root(),
        );
        let err = stderr(&o);
        assert!(!o.status.success(), "{to}: must fail");
        assert!(
            err.contains(needle) && err.contains("bad.toml"),
            "{to}: {err}"
        );
        assert!(!err.contains("panicked"), "{to}: no panic: {err}");
        assert!(
            !tmp.path().join("x").exists(),
            "{to}: nothing written for a bad config"
        );
    }
    let o = mnist_nn(&["--config", "/nonexistent.toml"], &root());
    assert!(
        !o.status.success() && stderr(&o).contains("/nonexistent.toml"),
        "{}",
        stderr(&o)
    );
    // What the OS said, once: the error's message holds it, and its source (the same
    // text) is not repeated after it.
    let os = std::fs::read("/nonexistent.toml").unwrap_err().to_string();
    assert_eq!(stderr(&o).matches(&os).count(), 1, "{}", stderr(&o));
    let sgd = root().join("configs/sgd.toml");
    // The flag is named, not the config's key it replaces (sgd.toml says 10).
    let o = mnist_nn(
        &["--config", sgd.to_str().unwrap(), "--epochs", "0"],
        tmp.path(),
    );
    assert!(
        !o.status.success()
            && stderr(&o).contains("'--epochs <EPOCHS>': must be at least 1")
            && !stderr(&o).contains("train.epochs"),
        "{}",
        stderr(&o)
    );
    // Relative data directories resolve against the working directory: none here.
    let o = mnist_nn(&["--config", sgd.to_str().unwrap()], tmp.path());
    assert!(
        !o.status.success()
            && stderr(&o).contains("data/mnist: data directory (data.dir) not found"),
        "{}",
        stderr(&o)
    );
    assert!(
        !tmp.path().join("artifacts").exists(),
        "nothing written when the data is missing"
    );
    // A data.dir that is a file is named as one, with the config and its key.
    let text = std::fs::read_to_string(&sgd)
        .unwrap()
        .replace("dir = \"data/mnist\"", &format!("dir = {sgd:?}"));
    assert!(
        text.contains(sgd.to_str().unwrap()),
        "sgd.toml sets data.dir"
    );
    let file_data = write(tmp.path(), "file-data.toml", &text);
    let o = mnist_nn(&["--config", file_data.to_str().unwrap()], tmp.path());
    assert!(
        !o.status.success()
            && stderr(&o).contains("file-data.toml")
            && stderr(&o).contains("data.dir")
            && stderr(&o).contains("sgd.toml is a file; it should be the directory"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("artifacts").exists());
}
