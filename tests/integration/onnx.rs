//! `export --format onnx`: onnxruntime runs the exported graph and gives the Rust
//! forward's digits and probabilities on 1,000 test images.

use mnist_nn::backend::BackendKind;
use mnist_nn::eval::score;
use mnist_nn::model::TwoLayerNet;

use crate::util::{mnist, python_check, root, run_bin, saved_params, trained_run};

#[test]
fn onnxruntime_gives_the_rust_forwards_probabilities() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("net.onnx");
    let run = trained_run();
    let out = run_bin(
        &[
            "export",
            "--model",
            run.to_str().unwrap(),
            "--format",
            "onnx",
            "--out",
            file.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ONNX"));

    let n = 1000;
    let Some(check) = python_check(
        &[
            root().join("tests/onnx_check.py").as_os_str(),
            file.as_os_str(),
            root().join("data/mnist").as_os_str(),
            n.to_string().as_ref(),
        ],
        "ONNX (onnxruntime, numpy)",
    ) else {
        return;
    };
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(read["inputs"][0][0], "image");
    assert_eq!(
        read["inputs"][0][1],
        serde_json::json!(["batch", 784]),
        "a symbolic batch"
    );
    assert_eq!(
        read["outputs"],
        serde_json::json!(["logits", "probabilities"])
    );
    assert_eq!(read["logits_shape"], serde_json::json!([n, 10]));

    let device = BackendKind::Ndarray.device().unwrap();
    let model = TwoLayerNet::from_host(&saved_params(run), &device);
    let scored = score(&model, &mnist().test.slice(0..n).to_device(&device)).unwrap();
    let rows = read["probabilities"].as_array().unwrap();
    assert_eq!(rows.len(), n);
    let mut worst = 0.0f64;
    for (row, p) in rows.iter().zip(&scored.predictions) {
        let ort: Vec<f64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let digit = (0..10).max_by(|&a, &b| ort[a].total_cmp(&ort[b])).unwrap();
        assert_eq!(digit, p.digit, "the same digit");
        for (a, b) in ort.iter().zip(&p.probabilities) {
            worst = worst.max((a - f64::from(*b)).abs());
        }
    }
    // Both compute the same float32 products in different summation orders (and
    // onnxruntime's softmax its own way): probabilities agree to ~1e-6; 1e-4 is far
    // below what a wrong layer, transpose or bias would do.
    assert!(worst < 1e-4, "largest probability difference {worst:.2e}");
}
