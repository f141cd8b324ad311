//! One trainer per run directory: a `--resume` or an `--out` into a run that another
//! process is training is refused before it writes anything, the lock goes with its
//! holder however it ends, and runs started at the same moment get a directory each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mnist_nn::run_dir::{RunDir, files};
use mnist_nn::run_lock::RunLock;

use crate::util::{bin, root, run_bin, wait_until_released, whole_copy, write};

/// Every file under `dir` with its bytes, by path relative to `dir`.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    files
}

/// A config for a run of `epochs` epochs of `limit` images (hidden 16, batch 16).
fn config(dir: &Path, name: &str, limit: usize, epochs: usize) -> PathBuf {
    let text = format!(
        "name = \"{name}\"\nseed = 1\n[model]\nhidden = 16\n[train]\nepochs = {epochs}\n\
         batch_size = 16\nlearning_rate = 0.1\n[data]\ndir = {:?}\nlimit = {limit}\n",
        root().join("data/mnist")
    );
    write(dir, &format!("{name}.toml"), &text)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_run_being_trained_refuses_a_second_trainer_and_keeps_its_files() {
    let (tmp, run) = whole_copy();
    // This test stands for the first trainer.
    let trainer = RunDir::open_to_train(&run).unwrap();
    assert!(RunLock::held(&run));
    let before = snapshot(&run);
    let short = config(tmp.path(), "short", 200, 1);
    let busy = format!("being trained there by process {}", std::process::id());
    for args in [
        vec!["--resume", run.to_str().unwrap(), "--epochs", "2"],
        vec![
            "--config",
            short.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ],
    ] {
        let o = run_bin(&args, tmp.path());
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(run.to_str().unwrap()) && stderr(&o).contains(&busy),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(
            snapshot(&run) == before,
            "{args:?} changed a file of the run"
        );
    }
    let e = RunDir::open_to_train(&run).unwrap_err().to_string();
    assert!(e.contains(&busy), "{e}");
    // Reading the run needs no lock.
    assert!(RunDir::open(&run).is_ok());

    drop(trainer);
    wait_until_released(&run);
    let o = run_bin(
        &["--resume", run.to_str().unwrap(), "--epochs", "2"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_lock_goes_with_a_trainer_killed_mid_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // 100 epochs of 20,000 images: far longer than this test waits.
    let long = config(tmp.path(), "long", 20_000, 100);
    let mut child = Command::new(bin())
        .args([
            "--config",
            long.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ])
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first checkpoint, so there is something to resume.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run.join(files::CHECKPOINT).exists() {
        assert!(Instant::now() < deadline, "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(RunLock::held(&run));
    let o = run_bin(&["--resume", run.to_str().unwrap()], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let busy = format!("being trained there by process {}", child.id());
    assert!(stderr(&o).contains(&busy), "{}", stderr(&o));

    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(!RunLock::held(&run), "the lock died with its process");
    let done = RunDir::open(&run)
        .unwrap()
        .require_checkpoint()
        .unwrap()
        .epochs_done();
    let epochs = (done + 1).to_string();
    let o = run_bin(
        &["--resume", run.to_str().unwrap(), "--epochs", &epochs],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn runs_started_at_the_same_moment_get_a_directory_each() {
    let tmp = tempfile::tempdir().unwrap();
    let short = config(tmp.path(), "same", 200, 1);
    // Each reads the data (a second or so) between choosing its directory and writing
    // to it; the four start well within that.
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(bin())
                .args(["--config", short.to_str().unwrap()])
                .current_dir(tmp.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut named = Vec::new();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let line = stderr(&o).lines().next().unwrap_or_default().to_string();
        named.push(line.rsplit("→ ").next().unwrap().trim().to_string());
    }
    named.sort();
    let expected = ["same", "same-2", "same-3", "same-4"].map(|n| format!("artifacts/{n}"));
    assert_eq!(named, expected, "each run names its own directory");
    for dir in expected {
        let metrics = std::fs::read_to_string(tmp.path().join(&dir).join(files::METRICS)).unwrap();
        assert_eq!(
            metrics.matches("wall_time,step,tag,value").count(),
            1,
            "{dir}: one run's log"
        );
        assert!(
            tmp.path().join(&dir).join(files::SUMMARY).is_file(),
            "{dir}"
        );
    }
}

#[test]
fn claims_made_at_once_from_many_threads_are_all_different() {
    let tmp = tempfile::tempdir().unwrap();
    let artifacts = tmp.path().join("artifacts");
    let barrier = std::sync::Barrier::new(16);
    let claims: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    RunDir::claim(&artifacts, "x").unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut paths: Vec<_> = claims.iter().map(|c| c.path().to_path_buf()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 16, "{paths:?}");
    drop(claims);
    // Still empty when dropped: each is removed (and the folder too when the claim
    // that made it goes last).
    let left = std::fs::read_dir(&artifacts).map_or(0, Iterator::count);
    assert_eq!(left, 0);
    // One claim alone also removes the folder it had to make.
    let fresh = tmp.path().join("fresh");
    drop(RunDir::claim(&fresh, "x").unwrap());
    assert!(!fresh.exists());
}
