//! Class names: `data.dataset` names Fashion-MNIST's or KMNIST's classes, a
//! `classes.txt` beside the IDX files names any set's; eval and predict print them;
//! bad names and files are errors naming the key or file; a missing Fashion-MNIST says
//! how to get it.

use std::path::Path;

use crate::util::{copy_of_run, root, run_bin, run_bin_ok, write};

/// A copy of the trained test run whose config says `data` (lines for `[data]`).
fn run_with_data(to: &Path, data: &str) {
    copy_of_run(
        to,
        &["config.toml", "model.bpk", "metrics.csv", "summary.json"],
    );
    let config = std::fs::read_to_string(to.join("config.toml")).unwrap();
    assert!(config.contains("[data]\n"), "{config}");
    std::fs::write(
        to.join("config.toml"),
        config.replace("[data]\n", &format!("[data]\n{data}")),
    )
    .unwrap();
}

#[test]
fn fashion_mnist_names_appear_in_eval_and_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    run_with_data(&run, "dataset = \"fashion-mnist\"\n");
    let out = run_bin(&["eval", "--model", run.to_str().unwrap()], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["T-shirt/top", "Trouser", "Ankle boot"] {
        assert!(stdout.contains(name), "eval lacks {name}: {stdout}");
    }
    assert!(stdout.contains("rows: true class,"), "{stdout}");
    // The report's heat map and table call them classes too.
    run_bin_ok(&["report", run.to_str().unwrap()], tmp.path());
    let svg = std::fs::read_to_string(run.join("report/confusion.svg")).unwrap();
    assert!(svg.contains("rows: true class,"), "confusion.svg's caption");
    let html = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert!(html.contains("<th>class</th>") && html.contains("Ankle boot"));
    let json = std::fs::read_to_string(run.join("eval.json")).unwrap();
    assert!(json.contains("\"Sneaker\""), "{json}");
    // predict: the class's name, and a note that the pictures are prepared as digits.
    let image = tmp.path().join("first.png");
    let pixels: Vec<u8> = crate::util::mnist().test.pixels[..mnist_nn::IMAGE_PIXELS]
        .iter()
        .map(|&p| 255 - p)
        .collect();
    image::GrayImage::from_raw(28, 28, pixels)
        .unwrap()
        .save(&image)
        .unwrap();
    let out = run_bin(
        &[
            "predict",
            "--model",
            run.to_str().unwrap(),
            "--json",
            image.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let digit = line["digit"].as_u64().unwrap() as usize;
    let names = mnist_nn::data::classes::known("fashion-mnist").unwrap();
    assert_eq!(line["class"], names[digit]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("fashion-mnist"));
}

/// `mnist-nn eval --model RUN --data DIR`, run in `cwd`.
fn eval_with_data(run: &Path, data: &Path, cwd: &Path) -> std::process::Output {
    run_bin(
        &[
            "eval",
            "--model",
            run.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
        cwd,
    )
}

#[test]
fn a_classes_file_beside_the_data_names_the_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(root().join("data/mnist").join(f), data.join(f)).unwrap();
    }
    let names = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    write(&data, "classes.txt", &names.join("\n"));
    let run = tmp.path().join("run");
    run_with_data(&run, "");
    let out = eval_with_data(&run, &data, tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("seven") && stdout.contains("class"),
        "{stdout}"
    );

    // Nine names: an error naming the file.
    write(&data, "classes.txt", &names[..9].join("\n"));
    let out = eval_with_data(&run, &data, tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("classes.txt") && stderr.contains("holds 9"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_dataset_names_the_key_and_a_missing_fashion_mnist_says_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let config = |data: &str| {
        format!(
            "name = \"c\"\n[model]\nhidden = 8\n[train]\nepochs = 1\nbatch_size = 10\nlearning_rate = 0.1\n[data]\n{data}"
        )
    };
    let bad = write(tmp.path(), "bad.toml", &config("dataset = \"cifar\"\n"));
    let out = run_bin(&["--config", bad.to_str().unwrap()], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("data.dataset") && stderr.contains("fashion-mnist"),
        "{stderr}"
    );

    let missing = write(
        tmp.path(),
        "missing.toml",
        &config("dir = \"/nonexistent/fashion\"\ndataset = \"fashion-mnist\"\n"),
    );
    let out = run_bin(&["--config", missing.to_str().unwrap()], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("/nonexistent/fashion") && stderr.contains("dataset-fashion-mnist"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_shipped_fashion_config_loads_and_names_debians_directory() {
    let c = mnist_nn::config::Config::load(&root().join("configs/fashion.toml")).unwrap();
    assert_eq!(c.data.dataset, "fashion-mnist");
    assert_eq!(c.data.dir, Path::new("/usr/share/datasets/fashion-mnist"));
}

#[test]
fn the_page_gets_the_class_names_from_the_model_description() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    run_with_data(&run, "dataset = \"fashion-mnist\"\n");
    let loaded = mnist_nn::serve::LoadedRun::load(&run, None, None).unwrap();
    let info = serde_json::to_value(loaded.info(mnist_nn::serve::LIMITS)).unwrap();
    assert_eq!(info["classes"][1], "Trouser");
    assert_eq!(info["classes"][9], "Ankle boot");
}
