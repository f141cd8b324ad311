//! TensorBoard event files: read back by TensorBoard's own reader, every scalar of
//! `metrics.csv` is there with the same tag, step and wall time; the histograms match
//! the saved weights; a resumed run reads as one run; and the records are framed as
//! TFRecords with valid checksums.

use std::path::Path;

use mnist_nn::tensorboard::histogram;
use mnist_nn::tensorboard::proto::{Event, What};
use mnist_nn::tensorboard::record::masked_crc;
use prost::Message;

use crate::util::{python_check, root, run_bin_ok, saved_params, write};

fn config(dir: &Path, epochs: usize) -> String {
    let text = format!(
        "name = \"tb\"\nseed = 5\n[model]\nhidden = 16\n[train]\nepochs = {epochs}\nbatch_size = 100\nlearning_rate = 0.2\n[data]\ndir = {:?}\nvalidation = 500\nlimit = 3000\n",
        root().join("data/mnist")
    );
    let path = write(dir, &format!("tb-{epochs}.toml"), &text);
    path.to_str().expect("utf-8").to_string()
}

/// The records of an event file, each checked against its two masked CRC-32Cs.
fn read_events(path: &Path) -> Vec<Event> {
    let bytes = std::fs::read(path).unwrap();
    let mut events = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let length_bytes = &bytes[at..at + 8];
        let length = u64::from_le_bytes(length_bytes.try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(crc, masked_crc(length_bytes), "length CRC at byte {at}");
        let data = &bytes[at + 12..at + 12 + length];
        let crc = u32::from_le_bytes(
            bytes[at + 12 + length..at + 16 + length]
                .try_into()
                .unwrap(),
        );
        assert_eq!(crc, masked_crc(data), "data CRC at byte {at}");
        events.push(Event::decode(data).unwrap());
        at += 16 + length;
    }
    events
}

fn event_files(run: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn masked_crc_matches_tensorflows_for_a_known_input() {
    // CRC-32C("123456789") = 0xE3069283 (the check value of the Castagnoli CRC);
    // TensorFlow masks it as ((c >> 15) | (c << 17)) + 0xa282ead8, computed here in u64
    // arithmetic as an independent check of the rotation and the wrap.
    let c: u64 = 0xE306_9283;
    let rotated = ((c >> 15) | (c << 17)) & 0xFFFF_FFFF;
    let want = ((rotated + 0xa282_ead8) & 0xFFFF_FFFF) as u32;
    assert_eq!(masked_crc(b"123456789"), want);
}

#[test]
fn histograms_count_every_value_in_its_bucket() {
    let values = [-1.0f32, -0.5, 0.0, 0.25, 2.0];
    let h = histogram(&values).unwrap();
    assert_eq!((h.num, h.min, h.max), (5.0, -1.0, 2.0));
    assert_eq!(h.bucket.iter().sum::<f64>(), 5.0);
    assert_eq!(
        h.bucket.first(),
        Some(&1.0),
        "the least value in the first bucket"
    );
    assert_eq!(h.bucket.last(), Some(&1.0), "the greatest in the last");
    assert_eq!(h.bucket_limit.last(), Some(&2.0));
    assert!((h.sum - 0.75).abs() < 1e-12 && (h.sum_squares - 5.3125).abs() < 1e-12);
    assert!(histogram(&[]).is_none());
}

#[test]
fn tensorboard_reads_every_metric_the_weights_and_the_config_of_a_resumed_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // Two epochs, then a resume to four: two sessions, two event files.
    run_bin_ok(
        &[
            "--config",
            &config(tmp.path(), 2),
            "--out",
            run.to_str().unwrap(),
        ],
        tmp.path(),
    );
    run_bin_ok(
        &["--resume", run.to_str().unwrap(), "--epochs", "4"],
        tmp.path(),
    );
    let files = event_files(&run);
    assert_eq!(files.len(), 2, "{files:?}");
    // The framing and the resume marker, read here.
    let first = read_events(&files[0]);
    let second = read_events(&files[1]);
    assert!(matches!(&first[0].what, Some(What::FileVersion(v)) if v == "brain.Event:2"));
    let start = second
        .iter()
        .find_map(|e| match &e.what {
            Some(What::SessionLog(log)) => Some((log.status, e.step)),
            _ => None,
        })
        .expect("the resumed file starts a session");
    // 3,000 training images at batch 100: 30 steps an epoch, the checkpoint at 60.
    assert_eq!(start, (1, 61), "SessionLog START at the first resumed step");

    let Some(out) = python_check(
        &[
            root().join("tests/tensorboard_read.py").as_os_str(),
            run.as_os_str(),
        ],
        "TensorBoard (tensorboard)",
    ) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // TensorBoard's own protos find the marker in `session_log` (field 7), the one its
    // reader purges on; in any other field it would be ignored and a resumed curve would
    // double back over the steps logged after the checkpoint.
    assert_eq!(
        read["session_logs"],
        serde_json::json!([[1, 61, "START"]]),
        "one SessionLog START, in the resumed file"
    );

    // Every row of metrics.csv, and nothing else, in the scalars.
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut rows = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (wall, step, tag, value): (f64, u64, &str, f64) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2],
            f[3].parse().unwrap(),
        );
        let events = read["scalars"][tag]
            .as_array()
            .unwrap_or_else(|| panic!("no {tag}"));
        let found = events
            .iter()
            .filter(|e| e[0].as_u64() == Some(step))
            .collect::<Vec<_>>();
        assert_eq!(found.len(), 1, "{tag} at step {step}: {found:?}");
        // The same wall time (both keep milliseconds) and the value as TensorBoard's
        // float32 holds it (a relative 1e-7 is f32 rounding).
        assert!(
            (found[0][1].as_f64().unwrap() - wall).abs() < 1e-6,
            "{tag} wall time"
        );
        let got = found[0][2].as_f64().unwrap();
        assert!(
            (got - value).abs() <= 1e-7 * value.abs().max(1e-30),
            "{tag}: {got} vs {value}"
        );
        rows += 1;
    }
    let events: usize = read["scalars"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert_eq!(events, rows, "as many scalar events as metrics.csv rows");
    let steps: Vec<u64> = read["scalars"]["test/accuracy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        [30, 60, 90, 120],
        "one per epoch, in order, across the resume"
    );

    // Histograms per evaluated epoch; the last one against the saved weights.
    let saved = saved_params(&run);
    for (tag, values) in [
        ("weights/W1", &saved.w1),
        ("weights/b1", &saved.b1),
        ("weights/W2", &saved.w2),
        ("weights/b2", &saved.b2),
    ] {
        let hs = read["histograms"][tag]
            .as_array()
            .unwrap_or_else(|| panic!("no {tag}"));
        assert_eq!(hs.len(), 4, "{tag}: one per epoch");
        let last = hs.last().unwrap();
        assert_eq!(last["step"].as_u64(), Some(120));
        let n = values.len() as f64;
        let min = values.iter().copied().fold(f32::INFINITY, f32::min) as f64;
        let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        assert_eq!(last["num"].as_f64(), Some(n), "{tag} count");
        assert_eq!(
            last["buckets"].as_f64(),
            Some(n),
            "{tag}: every value in a bucket"
        );
        // serde_json reads floats to within an ulp of Python's shortest repr.
        let near = |got: Option<f64>, want: f64| {
            got.is_some_and(|g| (g - want).abs() <= 1e-15 * want.abs().max(1e-30))
        };
        assert!(
            near(last["min"].as_f64(), min) && near(last["max"].as_f64(), max),
            "{tag}: {last}"
        );
        // The same f64 sum in the same order: equal up to the last bit or two.
        assert!(
            (last["sum"].as_f64().unwrap() - sum).abs() < 1e-9 * n,
            "{tag} sum"
        );
    }
    // The gradient histograms: the mean loss's gradients on the first 1,000 training
    // images, recomputed here from the saved network on the same backend.
    let device = mnist_nn::backend::BackendKind::Flex.device().unwrap();
    let model = mnist_nn::model::TwoLayerNet::from_host(&saved, &device);
    let train = mnist_nn::data::Mnist::load(&root().join("data/mnist"), 500, Some(3000))
        .unwrap()
        .train
        .slice(0..1000)
        .to_device(&device);
    let (x, y) = (
        train.images_in(0..1000).transpose(),
        train.one_hot.clone().transpose(),
    );
    let g = mnist_nn::manual::backward_manual(&model, x.clone(), y, &model.forward(x)).grads;
    let dw1 = g.dw1.try_into_vec_as::<f32>().unwrap();
    let hs = read["histograms"]["gradients/dW1"]
        .as_array()
        .expect("dW1 histograms");
    let last = hs.last().unwrap();
    assert_eq!(last["num"].as_f64(), Some(dw1.len() as f64));
    let sum: f64 = dw1.iter().map(|&v| f64::from(v)).sum();
    let scale: f64 = dw1
        .iter()
        .map(|&v| f64::from(v).abs())
        .sum::<f64>()
        .max(1e-30);
    assert!(
        (last["sum"].as_f64().unwrap() - sum).abs() <= 1e-6 * scale,
        "dW1 sum: {last} vs {sum}"
    );
    for tag in ["gradients/db1", "gradients/dW2", "gradients/db2"] {
        assert_eq!(
            read["histograms"][tag].as_array().map(Vec::len),
            Some(4),
            "{tag}"
        );
    }
    let images = read["images"]["weights/W1_tiles"]
        .as_array()
        .expect("weight tiles");
    // hidden 16 at zoom 2: a 4×4 grid of 56-pixel tiles with 2-pixel gaps.
    assert_eq!(images.last().unwrap()[1].as_u64(), Some(4 * 58 + 2));
    let text = read["text"]["config"]
        .as_array()
        .expect("the config as text");
    assert!(
        text[0].as_str().unwrap().contains("hidden = 16"),
        "{text:?}"
    );
}
