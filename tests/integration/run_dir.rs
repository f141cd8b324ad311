//! The run directory, opened once: what it reads, what it refuses, and that each use
//! of a run (the library paths behind `eval`, `predict`, `export`, `report`, `serve`
//! and `--resume`) parses its `config.toml` exactly once.

use mnist_nn::backend::BackendKind;
use mnist_nn::config::parses_on_this_thread;
use mnist_nn::run::{ResumeOverrides, resume};
use mnist_nn::run_dir::{RunDir, files};
use mnist_nn::serve::LoadedRun;

use crate::util::{copy_of_run, trained_run, whole_copy};

/// Config parses on this thread while `work` runs.
fn parses_during(work: impl FnOnce()) -> usize {
    let before = parses_on_this_thread();
    work();
    parses_on_this_thread() - before
}

#[test]
fn each_use_of_a_run_parses_its_config_once() {
    let device = BackendKind::Ndarray.device().unwrap();
    let n = parses_during(|| {
        let run = RunDir::open(trained_run()).unwrap();
        run.load_model(&device).unwrap();
        assert!(run.summary().is_some() && run.checkpoint().unwrap().is_some());
    });
    assert_eq!(n, 1, "eval, predict and export: open, then the model");

    let (_tmp, copy) = whole_copy();
    let n = parses_during(|| {
        let run = RunDir::open(&copy).unwrap();
        mnist_nn::report::write(&run, &device).unwrap();
    });
    assert_eq!(n, 1, "report");

    let n = parses_during(|| {
        LoadedRun::load(trained_run(), Some(BackendKind::Ndarray), None).unwrap();
    });
    assert_eq!(n, 1, "serve");

    let n = parses_during(|| {
        let run = RunDir::open(&copy).unwrap();
        let overrides = ResumeOverrides {
            epochs: Some(2),
            backend: Some(BackendKind::Flex),
        };
        let outcome = resume(run, &overrides, &mut ()).unwrap();
        assert_eq!(outcome.summary.epochs, 2);
    });
    assert_eq!(n, 1, "--resume");
}

#[test]
fn a_path_that_is_not_a_directory_is_no_run() {
    let tmp = tempfile::tempdir().unwrap();
    let e = RunDir::open(&tmp.path().join("nowhere"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nowhere") && e.contains("no such run directory"),
        "{e}"
    );
}

#[test]
fn a_new_run_refuses_a_directory_that_holds_one() {
    let (_tmp, copy) = whole_copy();
    let config = RunDir::open(&copy).unwrap().config().clone();
    let e = RunDir::create(&copy, config).unwrap_err().to_string();
    assert!(e.contains("already holds a run"), "{e}");
    assert!(copy.join(files::MODEL).exists(), "nothing removed");
}

#[test]
fn a_corrupt_checkpoint_pointer_matters_only_where_it_is_needed() {
    let (_tmp, copy) = whole_copy();
    std::fs::write(copy.join(files::CHECKPOINT), "{ not json").unwrap();
    let run = RunDir::open(&copy).expect("a run with model.bpk opens");
    let device = BackendKind::Ndarray.device().unwrap();
    run.load_model(&device)
        .expect("model.bpk needs no checkpoint");
    let e = run.load_state(&device).err().expect("resuming needs it");
    let e = e.to_string();
    assert!(
        e.contains("checkpoint.json") && e.contains("not a valid checkpoint"),
        "{e}"
    );
}

#[test]
fn a_corrupt_summary_is_named() {
    let (_tmp, copy) = whole_copy();
    std::fs::write(copy.join(files::SUMMARY), "[]").unwrap();
    let e = RunDir::open(&copy).unwrap_err().to_string();
    assert!(
        e.contains("summary.json") && e.contains("not a valid summary"),
        "{e}"
    );
}

#[test]
fn a_run_before_its_first_epoch_has_no_model_yet() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("starting");
    copy_of_run(&run, &[files::CONFIG]);
    let run = RunDir::open(&run).unwrap();
    assert_eq!(run.model_file().unwrap(), None);
    let e = run
        .load_model(&BackendKind::Ndarray.device().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("model.bpk") && e.contains("not found"), "{e}");
}
