//! Checkpoints and `--resume`, through the real binary.

use std::path::Path;

use mnist_nn::checkpoint;
use mnist_nn::run_dir::files;

use crate::util::{root, run_bin, run_bin_ok, saved_params, write};

/// A small run: 2,000 images, hidden 16, batch 50, `epochs` epochs.
fn config(dir: &Path, mode: &str, optimizer: &str, epochs: usize) -> String {
    let text = format!(
        "name = \"r\"\nseed = 11\nmode = \"{mode}\"\n[model]\nhidden = 16\n[train]\nepochs = {epochs}\nbatch_size = 50\nlearning_rate = {}\noptimizer = \"{optimizer}\"\n[data]\ndir = {:?}\nvalidation = 500\nlimit = 2000\n",
        if optimizer == "adam" { 0.003 } else { 0.1 },
        root().join("data/mnist")
    );
    let path = write(dir, &format!("{mode}-{optimizer}-{epochs}.toml"), &text);
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn two_epochs_then_resume_to_four_equals_four_straight() {
    // Manual SGD has no optimizer state; manual momentum's velocity and Adam's moments
    // and step count (Burn's Adam on autodiff's gradients; in manual mode the learner's
    // own, computed in place) must survive the checkpoint too.
    for (mode, optimizer) in [
        ("manual", "sgd"),
        ("manual", "momentum"),
        ("autodiff", "adam"),
        ("manual", "adam"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let straight = tmp.path().join("straight");
        let split = tmp.path().join("split");
        let c4 = config(tmp.path(), mode, optimizer, 4);
        let c2 = config(tmp.path(), mode, optimizer, 2);
        run_bin_ok(
            &["--config", &c4, "--out", straight.to_str().unwrap()],
            tmp.path(),
        );
        run_bin_ok(
            &["--config", &c2, "--out", split.to_str().unwrap()],
            tmp.path(),
        );
        let halfway = checkpoint::read(&split.join(files::CHECKPOINT)).unwrap();
        assert_eq!(
            halfway.position.epoch, 3,
            "{mode}: checkpoint after epoch 2"
        );
        assert_eq!(halfway.optimizer.is_some(), mode == "autodiff");
        assert_eq!(
            halfway.moments.as_ref().map(|m| m.steps),
            (mode == "manual" && optimizer == "adam").then_some(80),
            "{mode} {optimizer}: Adam's moments after 2 epochs of 40 steps (2,000 images, batch 50)"
        );
        assert_eq!(
            halfway.velocity.is_some(),
            optimizer == "momentum" && mode == "manual"
        );
        run_bin_ok(
            &["--resume", split.to_str().unwrap(), "--epochs", "4"],
            tmp.path(),
        );
        // The same operations on the same backend in the same order: bit for bit.
        let (a, b) = (saved_params(&straight), saved_params(&split));
        assert_eq!(a.w1, b.w1, "{mode}: W1 differs after resume");
        assert_eq!(a.b1, b.b1, "{mode}: b1 differs after resume");
        assert_eq!(a.w2, b.w2, "{mode}: W2 differs after resume");
        assert_eq!(a.b2, b.b2, "{mode}: b2 differs after resume");
        // The log reads as one run: each epoch once, same figures.
        let rows = |dir: &Path| -> Vec<(String, String, String)> {
            std::fs::read_to_string(dir.join("metrics.csv"))
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    (f[1].to_string(), f[2].to_string(), f[3].to_string())
                })
                .filter(|(_, tag, _): &(String, String, String)| !tag.starts_with("time/"))
                .collect()
        };
        assert_eq!(rows(&straight), rows(&split), "{mode}: metrics differ");
        let summary = std::fs::read_to_string(split.join("summary.json")).unwrap();
        assert!(summary.contains("\"epochs\": 4"), "{summary}");
        assert!(summary.contains("\"status\": \"completed\""), "{summary}");
    }
}

#[test]
fn resume_refuses_a_finished_run_and_a_directory_without_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("done");
    let c = config(tmp.path(), "manual", "sgd", 1);
    run_bin_ok(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    let out = run_bin(&["--resume", run.to_str().unwrap()], tmp.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already finished 1 epoch;") && err.contains("--epochs"),
        "{err}"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run_bin(&["--resume", empty.to_str().unwrap()], tmp.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_checkpoint_keeps_only_its_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let c = config(tmp.path(), "autodiff", "momentum", 3);
    run_bin_ok(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    let pointer = checkpoint::read(&run.join(files::CHECKPOINT)).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let step = pointer.position.step;
    assert_eq!(
        files,
        [
            format!("model-step-{step}.bpk"),
            format!("optimizer-step-{step}.bpk")
        ]
    );
    assert_eq!(pointer.history.len(), 3);
}

#[test]
fn an_adam_run_resumes_on_the_cpu_where_there_is_no_gpu_at_all() {
    // Burn loads optimizer state onto its default device, the GPU when wgpu is built
    // in; the library points that default at the run's CPU backend before loading. With
    // no Vulkan driver and no EGL (as on a bare server) the resume must not touch wgpu.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("adam");
    let c1 = config(tmp.path(), "autodiff", "adam", 1);
    run_bin_ok(
        &["--config", &c1, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    let out = crate::util::run_bin_without_gpu(
        &["--resume", run.to_str().unwrap(), "--epochs", "2"],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let pointer = checkpoint::read(&run.join(files::CHECKPOINT)).unwrap();
    assert_eq!(pointer.position.epoch, 3, "two epochs done");
}

#[test]
fn a_half_written_last_row_is_dropped_on_resume() {
    // A run killed while writing `metrics.csv` can leave half a last row, and half a row
    // may still parse: `…,test/accuracy,0.` for `…,test/accuracy,0.9284`.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("torn");
    let c = config(tmp.path(), "manual", "sgd", 2);
    run_bin_ok(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    let metrics = run.join("metrics.csv");
    let whole = std::fs::read_to_string(&metrics).unwrap();
    let last = whole.trim_end().rsplit('\n').next().unwrap();
    let value_at = last.rfind(',').unwrap() + 1;
    let torn = &last[..value_at + 2];
    let before_last = &whole[..whole.len() - last.len() - 1];
    std::fs::write(&metrics, format!("{before_last}{torn}")).unwrap();

    run_bin_ok(
        &["--resume", run.to_str().unwrap(), "--epochs", "3"],
        tmp.path(),
    );
    let resumed = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        resumed.starts_with(before_last),
        "the whole rows before the torn one are kept"
    );
    let after = &resumed[before_last.len()..];
    assert!(
        !after.lines().any(|line| line == torn),
        "the torn row `{torn}` was kept:\n{after}"
    );
    assert!(
        after.lines().all(|line| line.split(',').count() == 4),
        "{after}"
    );
}

#[test]
fn a_manual_adam_checkpoint_without_its_moments_is_refused_by_name() {
    // Manual mode's Adam keeps its moments in the checkpoint (or, from before it was
    // computed in place, Burn's optimizer state). One with neither would restart Adam
    // from zero moments mid-run: the resume stops, names the file and the problem, and
    // leaves the run as it was.
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("adam");
    let c = config(tmp.path(), "manual", "adam", 1);
    run_bin_ok(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    let pointer = run.join(files::CHECKPOINT);
    let text = std::fs::read_to_string(&pointer).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(json["moments"]["steps"].as_u64() == Some(40), "{text}");
    assert!(json["optimizer"].is_null(), "{text}");
    json.as_object_mut().unwrap().remove("moments");
    let without = serde_json::to_string_pretty(&json).unwrap();
    std::fs::write(&pointer, &without).unwrap();
    let model_before = saved_params(&run);
    let out = run_bin(
        &["--resume", run.to_str().unwrap(), "--epochs", "2"],
        tmp.path(),
    );
    assert!(!out.status.success(), "resumed without Adam's moments");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checkpoint.json") && err.contains("neither Adam's moments nor"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read_to_string(&pointer).unwrap(), without);
    assert_eq!(saved_params(&run), model_before, "the saved model changed");
}

/// Saves every checkpoint it is offered in its directory, as a run does.
struct SaveCheckpoints(std::path::PathBuf);

impl mnist_nn::train::Observer for SaveCheckpoints {
    fn checkpoint(&mut self, state: &mnist_nn::train::StateRef<'_>) -> mnist_nn::Result<()> {
        checkpoint::save(&self.0, state).map(|_| ())
    }
}

#[test]
fn a_manual_adam_checkpoint_of_burns_optimizer_state_resumes_exactly() {
    // Before manual mode computed Adam in place, its checkpoints kept Burn's Adam state
    // (`optimizer`, no `moments`). Such a run resumes with Burn's Adam on the
    // hand-derived gradients, whose steps are the in-place ones to the bit: 2 epochs so
    // saved and resumed to 4 equal 4 epochs in place from the start.
    use mnist_nn::autodiff::optimizer_for;
    use mnist_nn::train::{TrainState, train, train_from};
    let text = "name = \"a\"\nseed = 5\nmode = \"manual\"\n[model]\nhidden = 16\n[train]\n\
                epochs = 2\nbatch_size = 100\nlearning_rate = 0.003\noptimizer = \"adam\"\n\
                weight_decay = 0.0001\n[data]\ndir = \"d\"\n";
    let mut c = mnist_nn::config::Config::parse(text, Path::new("a.toml")).unwrap();
    let device = mnist_nn::backend::BackendKind::Flex.device().unwrap();
    let data = crate::util::small_mnist();
    let fresh = || mnist_nn::model::TwoLayerNet::new(16, c.model.init, c.seed, &device);
    let tmp = tempfile::tempdir().unwrap();
    // The earlier kind of run: a state holding Burn's Adam.
    let mut old_kind = TrainState::new(fresh());
    old_kind.optimizer = Some(optimizer_for(&c.train));
    let mut save = SaveCheckpoints(tmp.path().to_path_buf());
    train_from(&c, old_kind, &data, &device, &mut save).unwrap();
    let pointer = checkpoint::read(&tmp.path().join(files::CHECKPOINT)).unwrap();
    assert!(pointer.optimizer.is_some() && pointer.moments.is_none());
    c.train.epochs = 4;
    let state = checkpoint::load(tmp.path(), &pointer, &c, &device).unwrap();
    assert!(state.optimizer.is_some() && state.moments.is_none());
    let resumed = train_from(&c, state, &data, &device, &mut ()).unwrap();
    let straight = train(&c, fresh(), &data, &device, &mut ()).unwrap();
    assert_eq!(
        resumed.model.to_host().unwrap(),
        straight.model.to_host().unwrap(),
        "Burn's Adam resumed against Adam in place"
    );
}
