//! `import`: weights from elsewhere become a run that eval, predict and export use;
//! export → import gives the same parameters bit for bit; PyTorch's names are read; bad
//! files get errors naming the file and what is wrong, and leave no run behind.

use std::path::Path;

use mnist_nn::export::{self, Format};
use mnist_nn::model::HostParams;
use safetensors::{Dtype, tensor::TensorView};

use crate::util::{root, run_bin, saved_params, trained_run};

fn import(weights: &Path, out: &Path) -> std::process::Output {
    import_as(&["--weights", weights.to_str().unwrap()], out)
}

/// `import` with the weights file given by `weights` (`--weights FILE` or `FILE`).
fn import_as(weights: &[&str], out: &Path) -> std::process::Output {
    let data = root().join("data/mnist");
    let mut args = vec!["import"];
    args.extend(weights);
    args.extend([
        "--out",
        out.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    run_bin(&args, out.parent().unwrap())
}

#[test]
fn export_then_import_gives_the_same_parameters_and_the_same_test_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let params = saved_params(trained_run());
    for format in [Format::Safetensors, Format::Npz] {
        let file = tmp.path().join(format!("w.{}", format.extension()));
        export::write(&params, format, &file).unwrap();
        let run = tmp.path().join(format!("run-{}", format.extension()));
        let out = import(&file, &run);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("test accuracy"), "{stdout}");
        let back = saved_params(&run);
        assert_eq!(back, params, "{format:?}: bit for bit");
        // The run works with the other commands: eval reads the same accuracy.
        let eval = run_bin(&["eval", "--model", run.to_str().unwrap()], tmp.path());
        assert!(
            eval.status.success(),
            "{}",
            String::from_utf8_lossy(&eval.stderr)
        );
        let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
        assert!(summary.contains("\"status\": \"imported\""), "{summary}");
        // There is nothing to resume, and the error says why rather than "checkpoint
        // not found (is this a run directory? …)".
        let resumed = run_bin(&["--resume", run.to_str().unwrap()], tmp.path());
        let stderr = String::from_utf8_lossy(&resumed.stderr);
        assert_eq!(resumed.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("imported from a weights file: it has no training to continue"),
            "{stderr}"
        );
        // Nor does the refusal to import over it suggest --resume.
        let again = import(&file, &run);
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert_eq!(again.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("already holds a run (metrics.csv); choose another --out or remove it")
                && !stderr.contains("--resume"),
            "{stderr}"
        );
    }
}

#[test]
fn the_run_is_named_after_the_file_in_letters_a_directory_may_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("my weights (1).NPZ");
    export::write(&saved_params(trained_run()), Format::Npz, &file).unwrap();
    let data = root().join("data/mnist");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            file.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ];
        args.extend(extra);
        run_bin(&args, tmp.path())
    };
    // A --name that is no directory name is refused, and nothing is made.
    let out = import(&["--name", "../elsewhere"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--name \"../elsewhere\": use letters"),
        "{stderr}"
    );
    assert!(!tmp.path().join("artifacts").exists(), "nothing made");
    // Without --name the file's name, its spaces and brackets made into '-' (they were
    // refused as the config's name once the run's directory had been made).
    let out = import(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let run = tmp.path().join("artifacts/my-weights--1-");
    assert!(run.join("model.bpk").is_file(), "{stderr}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("name = \"my-weights--1-\""), "{config}");
}

#[test]
fn the_weights_file_may_be_given_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let params = saved_params(trained_run());
    let file = tmp.path().join("w.npz");
    export::write(&params, Format::Npz, &file).unwrap();
    let run = tmp.path().join("run");
    let out = import_as(&[file.to_str().unwrap()], &run);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(saved_params(&run), params, "bit for bit");
}

/// `params` in a safetensors file under PyTorch's nn.Sequential names, with `w1_dtype`
/// for the first layer's weight.
fn torch_file(path: &Path, params: &HostParams, w1_dtype: Dtype) {
    let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let h = params.hidden;
    let data = [
        ("0.weight", vec![h, 784], bytes(&params.w1)),
        ("0.bias", vec![h], bytes(&params.b1)),
        ("2.weight", vec![10, h], bytes(&params.w2)),
        ("2.bias", vec![10], bytes(&params.b2)),
    ];
    let views: Vec<(&str, TensorView<'_>)> = data
        .iter()
        .map(|(n, shape, b)| {
            let dtype = if *n == "0.weight" {
                w1_dtype
            } else {
                Dtype::F32
            };
            // An F64 header over f32 bytes needs twice the bytes: use half the shape.
            let shape = if dtype == Dtype::F64 {
                vec![shape[0], shape[1] / 2]
            } else {
                shape.clone()
            };
            (*n, TensorView::new(dtype, shape, b).unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn pytorch_state_dict_names_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let params = saved_params(trained_run());
    let file = tmp.path().join("torch.safetensors");
    torch_file(&file, &params, Dtype::F32);
    let run = tmp.path().join("torch");
    let out = import(&file, &run);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(saved_params(&run), params);
}

#[test]
fn bad_weight_files_name_the_problem_and_leave_no_run() {
    let tmp = tempfile::tempdir().unwrap();
    let params = saved_params(trained_run());
    let f64_file = tmp.path().join("f64.safetensors");
    torch_file(&f64_file, &params, Dtype::F64);
    let mut wrong_shape = params.clone();
    wrong_shape.b2.pop();
    let shape_file = tmp.path().join("shape.npz");
    // Written by hand: `export::write` lays out b2 with the length it has (9).
    export::write(&wrong_shape, Format::Npz, &shape_file).unwrap();
    let text_file = tmp.path().join("notes.txt");
    std::fs::write(&text_file, "not weights").unwrap();
    // A valid safetensors file holding no tensors, and one that is not safetensors.
    let empty = tmp.path().join("empty.safetensors");
    std::fs::write(&empty, b"\x02\x00\x00\x00\x00\x00\x00\x00{}").unwrap();
    let garbage = tmp.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"\x08\x00\x00\x00\x00\x00\x00\x00{}").unwrap();
    let cases = [
        (&f64_file, "F64"),
        (&shape_file, "b2"),
        (&text_file, ".safetensors or .npz"),
        (&empty, "W1"),
        (&garbage, "not a safetensors file"),
        (&tmp.path().join("missing.npz"), "missing.npz"),
        // What export writes but nothing here reads.
        (
            &tmp.path().join("model.onnx"),
            "written by export, not read back",
        ),
    ];
    for (i, (file, needle)) in cases.into_iter().enumerate() {
        let run = tmp.path().join(format!("bad-{i}"));
        let out = import(file, &run);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: accepted", file.display());
        assert!(err.contains(needle), "{}: {err}", file.display());
        assert!(
            err.contains(&*file.file_name().unwrap().to_string_lossy()),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!run.exists(), "{}: a run was left behind", file.display());
    }
}

#[test]
fn exported_names_and_shapes_are_the_ones_readme_maps_onto_pytorch_linear_layers() {
    // README loads the export into nn.Sequential(Linear(784, h), ReLU, Linear(h, 10)) by
    // renaming W1 → 0.weight, b1 → 0.bias, W2 → 2.weight, b2 → 2.bias: Linear keeps its
    // weight as (out, in), so the shapes must be exactly these, in float32.
    let tmp = tempfile::tempdir().unwrap();
    let params = saved_params(trained_run());
    let h = params.hidden;
    let file = tmp.path().join("w.safetensors");
    export::write(&params, Format::Safetensors, &file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(names, ["W1", "W2", "b1", "b2"]);
    for (name, shape) in [
        ("W1", vec![h, 784]),
        ("b1", vec![h]),
        ("W2", vec![10, h]),
        ("b2", vec![10]),
    ] {
        let t = st.tensor(name).unwrap();
        assert_eq!(
            (t.shape().to_vec(), t.dtype()),
            (shape, Dtype::F32),
            "{name}"
        );
    }
}
