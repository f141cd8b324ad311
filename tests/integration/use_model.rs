//! `eval`, `predict`, `export` and `report` on a trained run, through the real binary.

use std::path::Path;

use image::{GrayImage, Luma, imageops};
use mnist_nn::backend::BackendKind;
use mnist_nn::eval::{EvalReport, Evaluation, Prediction, Scored, predict, score};
use mnist_nn::export::{self, Format};
use mnist_nn::model::TwoLayerNet;
use mnist_nn::{IMAGE_PIXELS, IMAGE_SIDE};

use crate::util::{bin, copy_of_run, mnist, root, run_bin, saved_params, trained_run};

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn eval_prints_and_writes_the_figures_of_the_model() {
    let run = trained_run();
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("eval.json");
    let stdout = ok(&run_bin(
        &[
            "eval",
            "--model",
            run.to_str().unwrap(),
            "--out",
            json.to_str().unwrap(),
        ],
        tmp.path(),
    ));
    let report: EvalReport =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // Recompute from the saved model through the library, independently of the
    // command: the counts must agree exactly.
    let device = BackendKind::Ndarray.device().unwrap();
    let model = TwoLayerNet::from_host(&saved_params(run), &device);
    let test = &mnist().test;
    let predictions = score(&model, &test.to_device(&device)).unwrap().predictions;
    let correct = predictions
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| p.digit == usize::from(**l))
        .count();
    assert_eq!(report.images, 10_000);
    assert_eq!(report.accuracy, correct as f64 / 10_000.0);
    assert!(report.accuracy > 0.90, "accuracy {}", report.accuracy);
    // Rows of the confusion matrix sum to the label counts, the diagonal to the hits.
    for d in 0..10 {
        let labelled = test.labels.iter().filter(|&&l| usize::from(l) == d).count();
        assert_eq!(report.confusion[d].iter().sum::<u64>(), labelled as u64);
        assert_eq!(report.classes[d].support, labelled as u64);
        let predicted = predictions.iter().filter(|p| p.digit == d).count() as u64;
        let hits = report.confusion[d][d] as f64;
        assert!((report.classes[d].precision - hits / predicted as f64).abs() < 1e-12);
        assert!((report.classes[d].recall - hits / labelled as f64).abs() < 1e-12);
    }
    assert_eq!(
        (0..10).map(|d| report.confusion[d][d]).sum::<u64>(),
        correct as u64
    );
    assert!(stdout.contains(&format!("accuracy {:.2}%", 100.0 * report.accuracy)));
    // MNIST's classes are digits, and the table says so.
    assert!(
        stdout.contains("digit  support  precision  recall")
            && stdout.contains("confusion matrix (rows: true digit,"),
        "{stdout}"
    );
}

#[test]
fn eval_report_counts_a_known_case() {
    let p = |digit: usize| {
        let mut probabilities = [0.0f32; 10];
        probabilities[digit] = 0.5;
        probabilities[(digit + 1) % 10] = 0.5;
        Prediction {
            digit,
            probabilities,
        }
    };
    let scored = |predictions: Vec<Prediction>| Scored {
        evaluation: Evaluation {
            loss: 0.25,
            accuracy: f64::NAN, // the report counts for itself
            images: predictions.len(),
        },
        predictions,
    };
    // Labels 0,0,1,1 predicted 0,1,1,1: digit 0 precision 1, recall 1/2; digit 1
    // precision 2/3, recall 1.
    let four = scored(vec![p(0), p(1), p(1), p(1)]);
    let report = EvalReport::new(&four, &[0, 0, 1, 1]).unwrap();
    assert_eq!(report.accuracy, 0.75);
    assert_eq!(report.confusion[0][0], 1);
    assert_eq!(report.confusion[0][1], 1);
    assert_eq!(report.confusion[1][1], 2);
    assert_eq!(report.classes[0].precision, 1.0);
    assert_eq!(report.classes[0].recall, 0.5);
    assert!((report.classes[1].precision - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(report.classes[1].recall, 1.0);
    // The loss is the evaluator's, not recomputed.
    assert_eq!(report.loss, 0.25);
    // Bad input is an error, not a panic.
    let e = EvalReport::new(&four, &[0, 0, 1, 10])
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 10 of image 3"), "{e}");
    let e = EvalReport::new(&four, &[0, 0, 1]).unwrap_err().to_string();
    assert!(e.contains("3 labels"), "{e}");
}

#[test]
fn the_evaluators_loss_is_the_mean_of_minus_log_a2_at_the_label() {
    // The one loss definition (log-softmax on the device) against the textbook
    // −(1/m)·Σ ln A2[label, i], recomputed on the host in f64 from the same answers.
    // Tolerance: A2 is read back in f32 (relative error ~1e-7 per value), and the
    // log-softmax avoids the rounding of ln(softmax) near 1, so the two means agree to
    // ~1e-6 of a loss near 0.1; 1e-5 leaves room, while a loss off by a factor (a
    // missing 1/m, a sum over classes) would be off by far more.
    let device = BackendKind::Ndarray.device().unwrap();
    let model = TwoLayerNet::from_host(&saved_params(trained_run()), &device);
    let test = mnist().test.slice(0..2000);
    let scored = score(&model, &test.to_device(&device)).unwrap();
    let host: f64 = scored
        .predictions
        .iter()
        .zip(&test.labels)
        .map(|(p, &l)| -f64::from(p.probabilities[usize::from(l)]).ln())
        .sum::<f64>()
        / test.len() as f64;
    let loss = scored.evaluation.loss;
    assert!((loss - host).abs() < 1e-5, "device {loss} vs host {host}");
    let correct = scored
        .predictions
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| p.digit == usize::from(**l))
        .count();
    assert_eq!(
        scored.evaluation.accuracy,
        correct as f64 / test.len() as f64
    );
}

/// Test image `i` re-drawn as a person might hand it over: dark ink on light paper,
/// at another size, as PNG (or JPEG / PGM).
fn redraw(i: usize, path: &Path, side: u32) {
    let test = &mnist().test;
    let img = GrayImage::from_fn(IMAGE_SIDE as u32, IMAGE_SIDE as u32, |x, y| {
        let v = test.pixels[i * IMAGE_PIXELS + y as usize * IMAGE_SIDE + x as usize];
        Luma([255 - v])
    });
    let big = imageops::resize(&img, side, side, imageops::FilterType::Triangle);
    big.save(path).unwrap();
}

#[test]
fn predict_reads_redrawn_test_digits_like_the_originals() {
    let run = trained_run();
    let tmp = tempfile::tempdir().unwrap();
    let n = 60;
    let mut paths = Vec::new();
    for i in 0..n {
        let ext = ["png", "jpg", "pgm"][i % 3];
        let path = tmp.path().join(format!("digit-{i}.{ext}"));
        redraw(i, &path, 70 + 10 * (i as u32 % 5));
        paths.push(path.to_str().unwrap().to_string());
    }
    let mut args = vec!["predict", "--json", "--model", run.to_str().unwrap()];
    args.extend(paths.iter().map(String::as_str));
    let stdout = ok(&run_bin(&args, tmp.path()));
    let answers: Vec<usize> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let p: Vec<f64> = serde_json::from_value(v["probabilities"].clone()).unwrap();
            assert!(
                (p.iter().sum::<f64>() - 1.0).abs() < 1e-4,
                "probabilities {p:?}"
            );
            v["digit"].as_u64().unwrap() as usize
        })
        .collect();
    assert_eq!(answers.len(), n);
    // The same model on the original 28×28 images.
    let device = BackendKind::Ndarray.device().unwrap();
    let model = TwoLayerNet::from_host(&saved_params(run), &device);
    let originals = score(&model, &mnist().test.slice(0..n).to_device(&device))
        .unwrap()
        .predictions;
    let agree = answers
        .iter()
        .zip(&originals)
        .filter(|(a, o)| **a == o.digit)
        .count();
    let right = answers
        .iter()
        .zip(&mnist().test.labels)
        .filter(|(a, l)| **a == usize::from(**l))
        .count();
    eprintln!("redrawn digits: {agree}/{n} agree with the originals, {right}/{n} correct");
    // Resampling twice and re-centring moves a few grey levels and at most a pixel, so
    // a borderline digit may flip: allow 10% disagreement. A broken preprocessing
    // (no inversion, no scaling, no centring) agrees on far fewer (about chance).
    assert!(agree >= n * 9 / 10, "{agree}/{n} agree");
    assert!(right >= n * 85 / 100, "{right}/{n} correct");
}

#[test]
fn predict_reads_digits_drawn_on_a_transparent_canvas() {
    // A drawing program's export: the strokes in one colour, the digit in the alpha
    // channel only. Read as plain brightness, every pixel is the same: blank.
    let run = trained_run();
    let tmp = tempfile::tempdir().unwrap();
    let test = &mnist().test;
    let n = 12;
    let mut files = Vec::new();
    for i in 0..n {
        let ink =
            |x: u32, y: u32| test.pixels[i * IMAGE_PIXELS + y as usize * IMAGE_SIDE + x as usize];
        let side = IMAGE_SIDE as u32;
        let opaque = GrayImage::from_fn(side, side, |x, y| Luma([255 - ink(x, y)]));
        let path = |kind: &str| tmp.path().join(format!("{i}-{kind}.png"));
        opaque.save(path("opaque")).unwrap();
        for (kind, colour) in [("dark", 0u8), ("light", 255)] {
            let drawn = image::RgbaImage::from_fn(side, side, |x, y| {
                image::Rgba([colour, colour, colour, ink(x, y)])
            });
            drawn.save(path(kind)).unwrap();
        }
        files.extend(["opaque", "dark", "light"].map(|k| path(k).to_str().unwrap().to_string()));
    }
    let mut args = vec!["predict", "--json", "--model", run.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let stdout = ok(&run_bin(&args, tmp.path()));
    let answers: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 3 * n, "{stdout}");
    // Laid over white (dark strokes) or black (light ones), each is the opaque picture
    // up to float rounding: a · luma + (1 − a) · background in f32 differs from the
    // opaque (255 − v) / 255 by about 1e-7 a pixel, which moves a probability by far
    // less than 1e-5. Blank, or laid over the wrong background, they give no answer or
    // another one.
    let probabilities = |answer: &serde_json::Value| -> Vec<f64> {
        serde_json::from_value(answer["probabilities"].clone()).unwrap()
    };
    for three in answers.chunks(3) {
        for drawn in &three[1..] {
            assert_eq!(drawn["digit"], three[0]["digit"], "{three:?}");
            let (p, q) = (probabilities(drawn), probabilities(&three[0]));
            assert!(
                p.iter().zip(&q).all(|(a, b)| (a - b).abs() < 1e-5),
                "{p:?} against {q:?}"
            );
        }
    }
}

#[test]
fn predict_reports_an_unreadable_image_and_still_answers_the_others() {
    let run = trained_run();
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("seven.png");
    redraw(0, &good, 90);
    let bad = tmp.path().join("not-an-image.png");
    std::fs::write(&bad, b"hello").unwrap();
    let blank = tmp.path().join("blank.png");
    GrayImage::from_pixel(40, 40, Luma([255]))
        .save(&blank)
        .unwrap();
    // One row past the limit, a few hundred bytes: refused from its header (a 30,000-pixel
    // square of blank paper under 1 MB once took 10.5 GB to decode and preprocess).
    let huge = tmp.path().join("huge.png");
    GrayImage::from_pixel(12_001, 1, Luma([255]))
        .save(&huge)
        .unwrap();
    let out = run_bin(
        &[
            "predict",
            "--model",
            run.to_str().unwrap(),
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
            blank.to_str().unwrap(),
            huge.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("seven.png: 7"), "{stdout}");
    assert!(stderr.contains("not-an-image.png"), "{stderr}");
    assert!(
        stderr.contains("blank.png") && stderr.contains("blank"),
        "{stderr}"
    );
    assert!(
        stderr.contains("huge.png: the image is 12001×1 pixels; at most 12000 on a side"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn exported_weights_read_back_equal_in_both_formats() {
    let run = trained_run();
    let tmp = tempfile::tempdir().unwrap();
    let params = saved_params(run);
    for format in [Format::Safetensors, Format::Npz] {
        let path = tmp.path().join(format!("w.{}", format.extension()));
        let fmt = format.extension();
        ok(&run_bin(
            &[
                "export",
                "--model",
                run.to_str().unwrap(),
                "--format",
                fmt,
                "--out",
                path.to_str().unwrap(),
            ],
            tmp.path(),
        ));
        let back = export::read(&path, format).unwrap();
        assert_eq!(back.hidden, 32);
        assert_eq!(back.w1, params.w1, "{fmt} W1");
        assert_eq!(back.b1, params.b1, "{fmt} b1");
        assert_eq!(back.w2, params.w2, "{fmt} W2");
        assert_eq!(back.b2, params.b2, "{fmt} b2");
        // Without --format the extension chooses (it once wrote safetensors into w.npz).
        let named = tmp.path().join(format!("named.{fmt}"));
        let model = run.to_str().unwrap();
        ok(&run_bin(
            &["export", model, "--out", named.to_str().unwrap()],
            tmp.path(),
        ));
        assert_eq!(export::read(&named, format).unwrap().w1, params.w1, "{fmt}");
        // A --format the extension contradicts is refused, and nothing is written.
        let other = [Format::Safetensors, Format::Npz, Format::Onnx]
            .into_iter()
            .find(|&f| f != format)
            .unwrap();
        let wrong = tmp.path().join(format!("wrong.{fmt}"));
        let out = run_bin(
            &[
                "export",
                model,
                "--format",
                other.extension(),
                "--out",
                wrong.to_str().unwrap(),
            ],
            tmp.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "its extension says {fmt}, --format says {}",
                other.extension()
            )),
            "{stderr}"
        );
        assert!(!wrong.exists(), "nothing written");
    }
}

#[test]
fn exported_weights_give_the_same_predictions_in_numpy() {
    let run = trained_run();
    let tmp = tempfile::tempdir().unwrap();
    let n = 1000;
    let device = BackendKind::Ndarray.device().unwrap();
    let model = TwoLayerNet::from_host(&saved_params(run), &device);
    let test = mnist().test.slice(0..n);
    let rust: Vec<usize> = score(&model, &test.to_device(&device))
        .unwrap()
        .predictions
        .iter()
        .map(|p| p.digit)
        .collect();
    let images = tmp.path().join("images.u8");
    std::fs::write(&images, &test.pixels).unwrap();
    for format in [Format::Safetensors, Format::Npz] {
        let path = tmp.path().join(format!("w.{}", format.extension()));
        export::write(&saved_params(run), format, &path).unwrap();
        let script = crate::util::root().join("tests/numpy_forward.py");
        let args = [script.as_os_str(), path.as_os_str(), images.as_os_str()];
        let Some(out) = crate::util::python_check(&args, "numpy") else {
            return;
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let numpy: Vec<usize> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|d| d.parse().unwrap())
            .collect();
        assert_eq!(numpy.len(), n);
        let same = numpy.iter().zip(&rust).filter(|(a, b)| a == b).count();
        // float32 sums in another order can flip an argmax only where two classes tie
        // to ~1e-6; allow 2 in 1,000.
        assert!(
            same >= n - 2,
            "{}: {same}/{n} predictions agree",
            format.extension()
        );
    }
}

#[test]
fn report_writes_figures_and_a_page_that_shows_them() {
    let run = trained_run();
    let out = run_bin(&["report", "--run", run.to_str().unwrap()], run);
    let stdout = ok(&out);
    let dir = run.join("report");
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for figure in [
        "loss.svg",
        "accuracy.svg",
        "confusion.svg",
        "weights.png",
        "mistakes/00.png",
    ] {
        let path = dir.join(figure);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 200, "{figure}: {size} bytes");
        assert!(
            html.contains(&format!("src=\"{figure}\"")),
            "page lacks {figure}"
        );
    }
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("polyline"),
        "loss.svg has no curve"
    );
    let confusion = std::fs::read_to_string(dir.join("confusion.svg")).unwrap();
    // 100 cells, each a rectangle.
    assert!(confusion.matches("<rect").count() >= 100);
    let weights = image::open(dir.join("weights.png")).unwrap();
    // hidden 32 → a 6×6 grid of 28-pixel tiles at zoom 3 with 2-pixel gaps.
    assert_eq!(weights.width(), 6 * (28 * 3 + 2) + 2);
    assert!(stdout.contains("test accuracy"), "{stdout}");
}

#[test]
fn report_works_on_a_run_that_is_still_training() {
    let tmp = tempfile::tempdir().unwrap();
    // After its first checkpoint: no model.bpk or summary.json yet; the weights come
    // from the checkpoint.
    let run = tmp.path().join("training");
    copy_of_run(
        &run,
        &[
            "config.toml",
            "metrics.csv",
            "checkpoint.json",
            "checkpoints",
        ],
    );
    let stdout = ok(&run_bin(&["report", "--run", run.to_str().unwrap()], &run));
    let html = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert!(html.contains("in progress"), "status shown");
    assert!(run.join("report/weights.png").exists() && run.join("report/confusion.svg").exists());
    let saved = saved_params(trained_run());
    let from_checkpoint = mnist_nn::run_dir::RunDir::open(&run)
        .and_then(|r| r.load_model(&BackendKind::Ndarray.device().unwrap()))
        .unwrap();
    assert_eq!(from_checkpoint.to_host().unwrap().w1, saved.w1);
    assert!(stdout.contains("test accuracy"), "{stdout}");

    // Before the first epoch ends: only the config and the metrics header. Curves only.
    let run = tmp.path().join("starting");
    copy_of_run(&run, &["config.toml"]);
    std::fs::write(run.join("metrics.csv"), "wall_time,step,tag,value\n").unwrap();
    let stdout = ok(&run_bin(&["report", "--run", run.to_str().unwrap()], &run));
    assert!(run.join("report/loss.svg").exists() && run.join("report/index.html").exists());
    assert!(!run.join("report/weights.png").exists());
    assert!(!stdout.contains("test accuracy"), "{stdout}");
    assert!(
        !run.join("report/augmented.png").exists(),
        "no augmentation, no grid"
    );
    let html = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert!(html.contains("No model saved yet"), "{html}");
    // The commands that need the network say why it is missing.
    let no_model = |run: &Path, why: &str| {
        let out = run_bin(&["eval", run.to_str().unwrap()], run);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("model.bpk: model file not found") && stderr.contains(why),
            "{stderr}"
        );
    };
    no_model(&run, "the run has not finished its first epoch");

    // A run that diverged in its first epoch will have none: the page says so, not "yet".
    let run = tmp.path().join("diverged");
    copy_of_run(&run, &["config.toml", "summary.json"]);
    std::fs::write(run.join("metrics.csv"), "wall_time,step,tag,value\n").unwrap();
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    let diverged = summary.replace("\"status\": \"completed\"", "\"status\": \"diverged\"");
    assert_ne!(diverged, summary, "{summary}");
    std::fs::write(run.join("summary.json"), diverged).unwrap();
    ok(&run_bin(&["report", "--run", run.to_str().unwrap()], &run));
    let html = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert!(
        html.contains("Status: diverged")
            && html.contains("the run diverged before its first epoch finished")
            && !html.contains("yet"),
        "{html}"
    );
    no_model(&run, "the run diverged before its first epoch finished");
}

#[test]
fn the_report_reads_only_whole_rows_of_a_run_still_writing() {
    // Half a last row may still parse (`0.9284` cut to `0.`): it must not become a point.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("metrics.csv");
    std::fs::write(
        &path,
        "wall_time,step,tag,value\n1.0,100,test/accuracy,0.91\n2.0,200,test/accuracy,0.",
    )
    .unwrap();
    let series = mnist_nn::report::metrics::read(&path).unwrap();
    assert_eq!(series.get("test/accuracy"), &[(100.0, 0.91)]);

    // A malformed row that is not the last is an error naming its line.
    std::fs::write(
        &path,
        "wall_time,step,tag,value\n1.0,100,test/accuracy\n2.0,200,test/accuracy,0.93\n",
    )
    .unwrap();
    let err = mnist_nn::report::metrics::read(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("metrics.csv: line 2:"), "{err}");
}

#[test]
fn report_shows_what_augmentation_made_of_the_first_training_images() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("augmented");
    copy_of_run(&run, &["config.toml"]);
    let mut config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    config.push_str("\n[train.augment]\nrotation = 15.0\nelastic_alpha = 34.0\n");
    std::fs::write(run.join("config.toml"), config).unwrap();
    std::fs::write(run.join("metrics.csv"), "wall_time,step,tag,value\n").unwrap();
    ok(&run_bin(&["report", "--run", run.to_str().unwrap()], &run));
    let html = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    assert!(
        html.contains("src=\"augmented.png\""),
        "page lacks the grid"
    );
    let grid = image::open(run.join("report/augmented.png"))
        .unwrap()
        .to_luma8();
    // 8 rows (images) of 7 tiles (the original and epochs 1–6), 28 pixels at zoom 2,
    // 2-pixel gaps and 8 more between the originals and the rest.
    assert_eq!((grid.width(), grid.height()), (7 * 58 + 2 + 8, 8 * 58 + 2));
    // Each distorted tile differs from its original (rotations up to 15° and
    // elastic fields), and the originals are the training images themselves.
    let tile = |row: u32, col: u32| -> Vec<u8> {
        let ox = 2 + col * 58 + if col > 0 { 8 } else { 0 };
        let oy = 2 + row * 58;
        (0..56)
            .flat_map(|y| (0..56).map(move |x| (x, y)))
            .map(|(x, y)| grid.get_pixel(ox + x, oy + y)[0])
            .collect()
    };
    let first: Vec<u8> = mnist().train.pixels[..IMAGE_PIXELS]
        .iter()
        .map(|&p| 255 - p)
        .collect();
    let shown: Vec<u8> = tile(0, 0)
        .chunks(112)
        .flat_map(|two_rows| two_rows[..56].iter().step_by(2).copied())
        .collect();
    // The picture stores 255·(1 − p/255) truncated to a byte: within 1 of 255 − p.
    let off = shown.iter().zip(&first).map(|(&a, &b)| a.abs_diff(b)).max();
    assert!(
        shown.len() == first.len() && off <= Some(1),
        "the first original differs from training image 0 by {off:?}"
    );
    for col in 1..7 {
        assert_ne!(
            tile(0, col),
            tile(0, 0),
            "epoch {col} shows a distorted image"
        );
    }
}

#[test]
fn predict_on_the_library_matches_the_forward_pass() {
    // One image through `predict` equals softmax of the forward's logits.
    let device = BackendKind::Ndarray.device().unwrap();
    let model = TwoLayerNet::from_host(&saved_params(trained_run()), &device);
    let image: Vec<f32> = mnist().test.pixels[..IMAGE_PIXELS]
        .iter()
        .map(|&p| mnist_nn::data::pixel_value(p))
        .collect();
    let p = predict(&model, &image, &device).unwrap().remove(0);
    let sum: f32 = p.probabilities.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "{sum}");
    let max = p.probabilities.iter().copied().fold(0.0f32, f32::max);
    assert_eq!(p.probabilities[p.digit], max);
}

#[test]
fn the_run_directory_is_taken_alone_or_after_model_or_run() {
    let run = trained_run();
    let tmp = tempfile::tempdir().unwrap();
    let dir = run.to_str().unwrap();
    // The three spellings evaluate the same network: the same report, byte for byte
    // (eval.json holds no clock).
    let mut reports = Vec::new();
    for (i, args) in [vec![dir], vec!["--model", dir], vec!["--run", dir]]
        .into_iter()
        .enumerate()
    {
        let json = tmp.path().join(format!("eval-{i}.json"));
        let mut all = vec!["eval"];
        all.extend(&args);
        all.extend(["--out", json.to_str().unwrap()]);
        ok(&run_bin(&all, tmp.path()));
        reports.push(std::fs::read_to_string(&json).unwrap());
    }
    assert_eq!(reports[0], reports[1], "RUN_DIR against --model");
    assert_eq!(reports[0], reports[2], "RUN_DIR against --run");
    // Export by the directory alone: the saved parameters, bit for bit.
    let path = tmp.path().join("w.safetensors");
    ok(&run_bin(
        &["export", dir, "--out", path.to_str().unwrap()],
        tmp.path(),
    ));
    let back = export::read(&path, Format::Safetensors).unwrap();
    assert_eq!(back.w1, saved_params(run).w1);
    // Both at once is a usage error naming the two, and nothing runs.
    let both = run_bin(&["eval", dir, "--model", dir], tmp.path());
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert_eq!(both.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("RUN_DIR") && stderr.contains("--model"),
        "{stderr}"
    );
    // An export that cannot be written names the file asked for, not a temporary one.
    let bad = tmp.path().join("no-such-dir").join("w.safetensors");
    let out = run_bin(&["export", dir, "--out", bad.to_str().unwrap()], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:", bad.display())) && !stderr.contains("w.safetensors.tmp"),
        "{stderr}"
    );
    // eval's --out is checked before the test set is scored: no table printed and then
    // lost, and the folder that is missing is named.
    let bad_json = tmp.path().join("no-such-dir").join("eval.json");
    let out = run_bin(
        &["eval", dir, "--out", bad_json.to_str().unwrap()],
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(&format!("{}:", bad_json.display()))
            && stderr.contains(&format!(
                "{} is not a directory",
                tmp.path().join("no-such-dir").display()
            )),
        "{stderr}"
    );
    // An --out that is a folder is refused by both, and the folder keeps what it held.
    for command in ["eval", "export"] {
        let out = run_bin(
            &[command, dir, "--out", tmp.path().to_str().unwrap()],
            tmp.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(stderr.contains("is a directory"), "{command}: {stderr}");
        assert!(tmp.path().join("w.safetensors").is_file(), "{command}");
    }
    // A folder that holds no run says so, naming the config it looked for.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run_bin(&["eval", empty.to_str().unwrap()], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&empty.join("config.toml").display().to_string())
            && stderr.contains("not a run directory"),
        "{stderr}"
    );
    // Neither: clap asks for the directory.
    let neither = run_bin(&["report"], tmp.path());
    let stderr = String::from_utf8_lossy(&neither.stderr);
    assert_eq!(neither.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("<RUN_DIR>"), "{stderr}");
}

#[test]
#[cfg(unix)]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    // `mnist-nn eval RUN | head -1`: the reader closes the pipe before eval has printed
    // anything (loading the test set alone outlasts the drop below). Before, the first
    // print panicked ("failed printing to stdout: Broken pipe") with a backtrace; now
    // the process ends on SIGPIPE, as `ls | head` does, with nothing on stderr.
    let mut child = Command::new(bin())
        .args(["eval", trained_run().to_str().unwrap()])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("binary ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn predict_reads_a_picture_from_standard_input_as_dash() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let run = trained_run().to_str().unwrap();
    let seven = root().join("examples/digits/seven.png");
    let piped = |bytes: &[u8]| {
        let mut child = Command::new(bin())
            .args(["predict", "--json", "--model", run, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary runs");
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        child.wait_with_output().expect("binary ends")
    };
    // The same answer as for the file, named "-".
    let out = piped(&std::fs::read(&seven).unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = crate::util::predict_json(trained_run(), &seven);
    assert_eq!(got["image"], "-");
    assert_eq!(got["probabilities"], want["probabilities"]);
    // Nothing on standard input: an error that names it, and status 1.
    let out = piped(b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("-: standard input"), "{stderr}");
}

#[test]
fn predict_show_prints_the_input_the_network_received() {
    use mnist_nn::preprocess::{Gray, preprocess};
    let run = trained_run().to_str().unwrap();
    let seven = root().join("examples/digits/seven.png");
    let file = seven.to_str().unwrap();
    // --json --show: the 784 values are preprocess's for the file, row-major.
    let out = run_bin(
        &["predict", "--json", "--show", "--model", run, file],
        &root(),
    );
    let answer: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let input: Vec<f32> = answer["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let want = preprocess(&Gray::open(&seven).unwrap()).unwrap();
    assert_eq!(input, want.to_vec());
    // --show: the answer line, then 28 rows of two characters a pixel, darker for more
    // ink, in the same order.
    let text = ok(&run_bin(
        &["predict", "--show", "--model", run, file],
        &root(),
    ));
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), IMAGE_SIDE, "{text}");
    let shades = [' ', '.', ':', '-', '=', '+', '#', '@'];
    for (y, row) in rows.iter().enumerate() {
        let chars: Vec<char> = row.chars().collect();
        assert_eq!(chars.len(), 2 * IMAGE_SIDE, "row {y}: {row:?}");
        for x in 0..IMAGE_SIDE {
            let shade = shades[(want[y * IMAGE_SIDE + x] * 7.0).round() as usize];
            assert_eq!(chars[2 * x], shade, "pixel ({x}, {y})");
            assert_eq!(chars[2 * x + 1], shade, "pixel ({x}, {y})");
        }
    }
}
