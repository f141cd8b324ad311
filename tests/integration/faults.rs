//! Training faults through the real binary: divergence, Ctrl-C, `kill -9`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mnist_nn::checkpoint;
use mnist_nn::run_dir::files;

use crate::util::{bin, root, run_bin, run_bin_ok, saved_params, write};

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

/// Sends `sig` (`-INT`…) to the child through `kill` (Unix only: Windows has no
/// signals to send; `Child::kill` stands for `kill -9` there).
#[cfg(unix)]
fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn assert_same_params(a: &Path, b: &Path, what: &str) {
    let (a, b) = (saved_params(a), saved_params(b));
    assert!(
        a.w1 == b.w1 && a.b1 == b.b1 && a.w2 == b.w2 && a.b2 == b.b2,
        "{what}: parameters differ from the uninterrupted run"
    );
}

/// Trains `epochs` epochs to `dir/straight`, then starts the same run into `dir/run`
/// and returns both directories and the running child.
fn straight_run_then_another(dir: &Path, epochs: usize) -> (PathBuf, PathBuf, Child) {
    let c = config(dir, epochs, 0.05);
    let straight = dir.join("straight");
    run_bin_ok(&["--config", &c, "--out", straight.to_str().unwrap()], dir);
    let run = dir.join("run");
    let child = spawn(&["--config", &c, "--out", run.to_str().unwrap()], dir);
    (straight, run, child)
}

#[test]
#[cfg(unix)]
fn ctrl_c_checkpoints_mid_epoch_and_resume_finishes_as_if_never_stopped() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let (straight, run, mut child) = straight_run_then_another(tmp.path(), 4);
    // Stop in the second epoch, after the first checkpoint: the signal goes out when the
    // progress line of its first quarter arrives, two and a half epochs before the end,
    // however fast or slow this machine is.
    let mut stderr = String::new();
    let lines = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let mut signalled = false;
    for line in lines {
        let line = line.expect("stderr reads");
        if !signalled && line.contains("epoch 2: batch 150/600") {
            signal(&child, "-INT");
            signalled = true;
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(signalled, "never saw epoch 2 begin: {stderr}");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let pointer = checkpoint::read(&run.join(files::CHECKPOINT)).unwrap();
    assert_eq!(pointer.position.epoch, 2, "stopped inside epoch 2");
    assert!(pointer.position.batch >= 150, "{:?}", pointer.position);
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(summary.contains("\"status\": \"interrupted\""), "{summary}");
    // eval scores the checkpoint's network, and says so.
    let out = run_bin(&["eval", "--model", run.to_str().unwrap()], tmp.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "no model.bpk yet (the run was interrupted or is still training): using the \
             network of its checkpoint at step {}",
            pointer.position.step
        )),
        "{err}"
    );
    // A total of 1 epoch is behind this checkpoint: refused, the run left as it was
    // (it once trained on to nowhere and saved epoch 2's unfinished weights as final).
    let before = std::fs::read(run.join(files::CHECKPOINT)).unwrap();
    let out = run_bin(
        &["--resume", run.to_str().unwrap(), "--epochs", "1"],
        tmp.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`train.epochs` is 1 (--epochs) and")
            && err.contains("already finished 1 epoch (and ")
            && err.contains(" of epoch 2)"),
        "{err}"
    );
    assert_eq!(before, std::fs::read(run.join(files::CHECKPOINT)).unwrap());
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(summary.contains("\"status\": \"interrupted\""), "{summary}");
    run_bin_ok(&["--resume", run.to_str().unwrap()], tmp.path());
    assert_same_params(&straight, &run, "Ctrl-C + resume");
}

#[test]
#[cfg(unix)]
fn a_second_ctrl_c_says_truly_whether_a_checkpoint_is_kept() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let c = config(tmp.path(), 4, 0.05);
    let mut child = spawn(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    // Two signals as soon as the run is announced, while its data loads: the first asks
    // for a stop with a checkpoint after the first batch, the second quits at once,
    // usually before that checkpoint (20 ms apart, so that they do not merge into one).
    let mut stderr = String::new();
    for line in BufReader::new(child.stderr.take().expect("stderr is piped")).lines() {
        let line = line.expect("stderr reads");
        if line.starts_with("training f ") {
            signal(&child, "-INT");
            std::thread::sleep(Duration::from_millis(20));
            signal(&child, "-INT");
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Whichever came first, what the message says is what is on disk.
    let pointer = checkpoint::read(&run.join(files::CHECKPOINT));
    if stderr.contains("second Ctrl-C") {
        match pointer {
            Ok(p) => assert!(
                stderr.contains(&format!(
                    "the checkpoint of step {} is kept",
                    p.position.step
                )) && stderr.contains("--resume"),
                "{stderr}"
            ),
            Err(_) if run.join(files::CONFIG).exists() => {
                assert!(
                    stderr.contains("has no checkpoint yet") && !stderr.contains("is kept"),
                    "{stderr}"
                );
                // And the run is refused as such, with the way out.
                let out = run_bin(&["--resume", run.to_str().unwrap()], tmp.path());
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(1), "{err}");
                assert!(
                    err.contains("the run has no checkpoint to continue from")
                        && err.contains("another --out"),
                    "{err}"
                );
            }
            Err(_) => assert!(
                stderr.contains("nothing was written to") && !stderr.contains("is kept"),
                "{stderr}"
            ),
        }
    } else {
        eprintln!("the run stopped before the second signal was handled: {stderr}");
        assert!(
            pointer.is_ok(),
            "an interrupted run keeps a checkpoint: {stderr}"
        );
    }
}

#[test]
fn kill_9_at_any_moment_leaves_a_checkpoint_that_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    // Ten epochs: the kill, at most half a second after the first checkpoint, lands
    // while the run is still going even on a fast machine (about 0.2 s an epoch seen
    // on a 2-core one); the test checks that it did.
    let (straight, run, mut child) = straight_run_then_another(tmp.path(), 10);
    wait_for("the first checkpoint", || {
        run.join(files::CHECKPOINT).exists()
    });
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let delay = u64::from(seed % 500);
    eprintln!("killing {delay} ms after the first checkpoint");
    std::thread::sleep(Duration::from_millis(delay));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the kill; lengthen it"
    );
    // SIGKILL on Unix, TerminateProcess on Windows: no handler runs either way.
    child.kill().expect("the run is killed");
    let _ = child.wait_with_output();
    let pointer = checkpoint::read(&run.join(files::CHECKPOINT))
        .expect("checkpoint.json parses after kill -9");
    assert!(run.join(&pointer.model).exists());
    assert!(run.join(pointer.optimizer.as_ref().unwrap()).exists());
    assert!(pointer.position.epoch <= 10, "{:?}", pointer.position);
    run_bin_ok(&["--resume", run.to_str().unwrap()], tmp.path());
    assert_same_params(&straight, &run, "kill -9 + resume");
}

#[test]
fn divergence_stops_at_the_step_keeps_the_last_good_checkpoint_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let c = config(tmp.path(), 1, 0.05);
    run_bin_ok(
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
    assert_eq!(
        checkpoint::read(&run.join(files::CHECKPOINT))
            .unwrap()
            .position
            .epoch,
        2
    );
    let kept = saved_params(&run);
    assert_eq!(kept.w1, good.w1);
}

#[test]
fn a_run_that_diverges_in_its_first_epoch_says_it_has_no_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let c = config(tmp.path(), 3, 1e6);
    let out = run_bin(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no epoch had finished, so there is no checkpoint"),
        "{stderr}"
    );
    let summary = std::fs::read_to_string(run.join(files::SUMMARY)).unwrap();
    assert!(summary.contains("\"status\": \"diverged\""), "{summary}");
    // No epoch trained: 0 seconds, not the -0 of an empty float sum.
    assert!(summary.contains("\"train_seconds\": 0.0,"), "{summary}");
    let e = eval_error(&run);
    assert!(
        e.contains("diverged before its first epoch finished") && e.contains("learning_rate"),
        "{e}"
    );
}

/// A copy of the shared trained run that a test may damage.
fn copy_of_trained_run(to: &Path) {
    let from = crate::util::trained_run();
    std::fs::create_dir_all(to).unwrap();
    for name in ["config.toml", "model.bpk", "metrics.csv", "summary.json"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

fn eval_error(run: &Path) -> String {
    let out = run_bin(&["eval", "--model", run.to_str().unwrap()], run);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one message: {stderr}");
    stderr
}

#[test]
fn damaged_or_foreign_model_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    // Truncated.
    let run = tmp.path().join("truncated");
    copy_of_trained_run(&run);
    let bytes = std::fs::read(run.join("model.bpk")).unwrap();
    std::fs::write(run.join("model.bpk"), &bytes[..bytes.len() / 2]).unwrap();
    let e = eval_error(&run);
    assert!(e.contains("model.bpk"), "{e}");
    // Not a model at all.
    let run = tmp.path().join("text");
    copy_of_trained_run(&run);
    std::fs::write(run.join("model.bpk"), "definitely not a model").unwrap();
    let e = eval_error(&run);
    assert!(e.contains("model.bpk"), "{e}");
    // Another architecture: the config says hidden 64, the file holds 32.
    let run = tmp.path().join("other");
    copy_of_trained_run(&run);
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    std::fs::write(
        run.join("config.toml"),
        cfg.replace("hidden = 32", "hidden = 64"),
    )
    .unwrap();
    let e = eval_error(&run);
    assert!(e.contains("model.bpk") && e.contains("hidden = 64"), "{e}");
    assert!(e.contains("32"), "names the shape it found: {e}");
    // Missing.
    let run = tmp.path().join("missing");
    copy_of_trained_run(&run);
    std::fs::remove_file(run.join("model.bpk")).unwrap();
    let e = eval_error(&run);
    assert!(e.contains("model.bpk") && e.contains("not found"), "{e}");
}

#[test]
fn an_output_path_that_cannot_be_a_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let c = config(tmp.path(), 1, 0.05);
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, "keep me").unwrap();
    let out = run_bin(
        &[
            "--config",
            &c,
            "--out",
            blocker.join("run").to_str().unwrap(),
        ],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a-file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&blocker).unwrap(), "keep me");
}

#[test]
fn wgpu_without_any_adapter_says_so_and_suggests_a_cpu_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let c = config(tmp.path(), 1, 0.05);
    let out = crate::util::run_bin_without_gpu(
        &["--config", &c, "--backend", "wgpu", "--out", "x"],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no usable GPU adapter"), "{stderr}");
    assert!(stderr.contains("--backend flex"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !tmp.path().join("x").exists(),
        "nothing written before the device is known"
    );
}

#[test]
fn a_write_failing_mid_run_stops_with_the_path_and_keeps_what_was_written() {
    // The run directory exists with a plain file where the checkpoint folder must go,
    // so the first checkpoint fails after epoch 1 has been logged: the same path as a
    // full disk or a directory turned read-only during the run.
    let tmp = tempfile::tempdir().unwrap();
    let c = config(tmp.path(), 2, 0.05);
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("checkpoints"), "in the way").unwrap();
    let out = run_bin(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("checkpoints"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(
        metrics.contains(",600,test/accuracy,"),
        "epoch 1 was logged: {metrics}"
    );
    assert!(run.join("config.toml").exists());
}

#[test]
fn a_write_failing_after_a_checkpoint_says_how_to_resume_and_the_resume_completes() {
    // A folder in the way of epoch 2's checkpoint file (600 steps an epoch): its save
    // fails as one on a full disk does (seen: "No space left on device" from the same
    // call on a full tmpfs), after epoch 1's checkpoint was written.
    let tmp = tempfile::tempdir().unwrap();
    let c = config(tmp.path(), 3, 0.05);
    let straight = tmp.path().join("straight");
    run_bin_ok(
        &["--config", &c, "--out", straight.to_str().unwrap()],
        tmp.path(),
    );
    let run = tmp.path().join("run");
    let blocker = run.join("checkpoints").join("model-step-1200.bpk");
    std::fs::create_dir_all(&blocker).unwrap();
    write(&blocker, "in the way", "");
    let out = run_bin(
        &["--config", &c, "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let hint = format!(
        "the run's last checkpoint (step 600) is whole: once that is mended, continue \
         with\n  cargo run --release -- --resume {}\n",
        run.display()
    );
    assert!(
        stderr.contains("model-step-1200.bpk") && stderr.contains(&hint),
        "{stderr}"
    );
    std::fs::remove_dir_all(&blocker).unwrap();
    run_bin_ok(&["--resume", run.to_str().unwrap()], tmp.path());
    assert_same_params(&straight, &run, "failed save, then --resume");
}

#[test]
#[cfg(target_os = "linux")]
fn a_file_whose_write_fails_keeps_its_old_bytes_and_leaves_no_temporary() {
    // Every write to /dev/full fails with "No space left on device": a link to it where
    // the temporary file goes fails the write as a full disk does.
    if !Path::new("/dev/full").exists() {
        eprintln!("SKIPPING: no /dev/full here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "summary.json", "{\"old\": true}\n");
    let temporary = tmp.path().join("summary.json.tmp");
    std::os::unix::fs::symlink("/dev/full", &temporary).unwrap();
    let e = mnist_nn::logging::write_json(&path, &serde_json::json!({"new": true}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("summary.json") && e.contains("No space left on device"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"old\": true}\n");
    assert!(
        std::fs::symlink_metadata(&temporary).is_err(),
        "the temporary file is removed"
    );
}

#[test]
fn a_device_out_of_memory_report_becomes_one_line_with_a_hint() {
    // The shape of the report Burn gives when a wgpu buffer cannot be allocated (seen
    // with configs/seed.toml's full batch of 55,000 images on Mesa's lavapipe, before
    // such batches were stepped in column blocks).
    let report = "An error happened during execution\nCaused by:\n  Several failures at once\n\
                  Caused by:\n  An IO error happened\nCaused by:\n  can't allocate buffer of size: 172480000\n";
    let e = mnist_nn::Error::device("training (step 1)", report).to_string();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("training (step 1)") && e.contains("172 MB"),
        "{e}"
    );
    assert!(
        e.contains("train.batch_size") && e.contains("--backend flex"),
        "{e}"
    );
    // Anything else keeps the report's first line.
    let e = mnist_nn::Error::device("evaluating", "device lost\nCaused by: x").to_string();
    assert_eq!(e, "the device failed while evaluating: device lost");
}
