//! Training faults through the real binary: divergence, Ctrl-C, `kill -9`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mnist_nn::checkpoint;

use crate::util::{bin, root, run_bin, saved_params, write};

/// A run of `epochs` epochs over 6,000 images at batch 10 (600 steps an epoch), long
/// enough to be interrupted mid-epoch.
fn config(dir: &Path, epochs: usize, alpha: f64) -> String {
    let text = format!(
        "name = \"f\"\nseed = 4\nmode = \"autodiff\"\n[model]\nhidden = 24\n[train]\nepochs = {epochs}\nbatch_size = 10\nlearning_rate = {alpha}\noptimizer = \"momentum\"\n[data]\ndir = {:?}\nvalidation = 500\nlimit = 6000\n",
        root().join("data/mnist")
    );
    write(dir, &format!("f-{epochs}-{alpha}.toml"), &text)
        .to_str()
        .unwrap()
        .to_string()
}

fn spawn(args: &[&str], cwd: &Path) -> Child {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

/// Waits until `ready` holds (polling), failing the test after a minute.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn finish(args: &[&str], cwd: &Path) {
    let out = run_bin(args, cwd);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_same_params(a: &Path, b: &Path, what: &str) {
    let (a, b) = (saved_params(a), saved_params(b));
    assert!(
        a.w1 == b.w1 && a.b1 == b.b1 && a.w2 == b.w2 && a.b2 == b.b2,
        "{what}: parameters differ from the uninterrupted run"
    );
}

#[test]
fn ctrl_c_checkpoints_mid_epoch_and_resume_finishes_as_if_never_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let c = config(tmp.path(), 2, 0.05);
    let straight = tmp.path().join("straight");
    finish(
        &["--config", &c, "--out", straight.to_str().unwrap()],
        tmp.path(),
    );

    let run = tmp.path().join("run");
    let child = spawn(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    // Stop in the second epoch, after the first checkpoint.
    wait_for("the first checkpoint", || {
        run.join(checkpoint::POINTER).exists()
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let pointer = checkpoint::read(&run).unwrap();
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    if pointer.position.epoch <= 2 {
        // Stopped inside an epoch (the usual case): the checkpoint says where.
        assert!(summary.contains("\"status\": \"interrupted\""), "{summary}");
    }
    finish(&["--resume", run.to_str().unwrap()], tmp.path());
    assert_same_params(&straight, &run, "Ctrl-C + resume");
}

#[test]
fn kill_9_at_any_moment_leaves_a_checkpoint_that_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let c = config(tmp.path(), 3, 0.05);
    let straight = tmp.path().join("straight");
    finish(
        &["--config", &c, "--out", straight.to_str().unwrap()],
        tmp.path(),
    );
    // Kill at a few different moments after the first checkpoint, each time resuming
    // and killing again; the pointer must always name complete files.
    let run = tmp.path().join("run");
    let child = spawn(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    wait_for("the first checkpoint", || {
        run.join(checkpoint::POINTER).exists()
    });
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let delay = u64::from(seed % 700);
    eprintln!("killing {delay} ms after the first checkpoint");
    std::thread::sleep(Duration::from_millis(delay));
    signal(&child, "-KILL");
    let _ = child.wait_with_output();
    let pointer = checkpoint::read(&run).expect("checkpoint.json parses after kill -9");
    assert!(run.join(&pointer.model).exists());
    assert!(run.join(pointer.optimizer.as_ref().unwrap()).exists());
    finish(&["--resume", run.to_str().unwrap()], tmp.path());
    assert_same_params(&straight, &run, "kill -9 + resume");
}

#[test]
fn divergence_stops_at_the_step_keeps_the_last_good_checkpoint_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let c = config(tmp.path(), 1, 0.05);
    finish(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    let good = saved_params(&run);
    // Continue for a second epoch with α far too high.
    let cfg = run.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("learning_rate = 0.05", "learning_rate = 1000000.0"),
    )
    .unwrap();
    let out = run_bin(
        &["--resume", run.to_str().unwrap(), "--epochs", "2"],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("diverged at step"), "{stderr}");
    assert!(stderr.contains("smaller"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let step: usize = stderr
        .split("diverged at step ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .expect("the message names the step");
    // Epoch 1 was 600 steps; with α = 10⁶ the weights overflow float32 within tens of
    // steps of epoch 2.
    assert!((601..=700).contains(&step), "step {step}");
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(summary.contains("\"status\": \"diverged\""), "{summary}");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(
        metrics.contains(&format!(",{step},status/diverged,1")),
        "{metrics}"
    );
    // Nothing good was overwritten: the checkpoint is still epoch 1's, and so is the model.
    assert_eq!(checkpoint::read(&run).unwrap().position.epoch, 2);
    let kept = saved_params(&run);
    assert_eq!(kept.w1, good.w1);
}
