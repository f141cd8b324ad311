//! The page in a real browser: headless Chromium, driven over WebDriver, loads the page
//! served by `mnist-nn serve`, has test-set digits traced on the pad with synthetic
//! pointer strokes, and must show the digit and probabilities that `mnist-nn predict`
//! gives for a PNG of the same strokes (the pad's own pixels).
//!
//! Skipped with a message when chromedriver or Chromium is missing, unless
//! `MNIST_NN_REQUIRE_BROWSER` is set (as in CI). `MNIST_NN_SCREENSHOT=FILE` saves the
//! page after the last digit, and `MNIST_NN_BROWSER_RUN=RUN_DIR` serves another run
//! (README's screenshot: the run of configs/sgd.toml).

use std::path::PathBuf;
use std::time::Duration;

use mnist_nn::{IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES};
use serde_json::{Value, json};

use crate::serve::ServeProcess;
use crate::util::{assert_close, mnist, predict_json, trained_run};
use crate::webdriver::{Driver, tools};

/// Test images traced on the pad: indices 2, 1, 3 and 0 of the test set (a 1, a 2, a 0
/// and a 7).
const TRACED: [usize; 4] = [2, 1, 3, 0];

/// The pad's side in its own pixels (the page's canvas is 280 × 280).
const PAD: f64 = 280.0;

/// Horizontal strokes over the ink of test image `index`: one per run of pixels at or
/// above half intensity in each row, from the first pixel's centre to the last one's,
/// in 28×28 pixel units.
fn strokes(index: usize) -> Vec<[(f64, f64); 2]> {
    let pixels = &mnist().test.pixels[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS];
    let mut out = Vec::new();
    for y in 0..IMAGE_SIDE {
        let row = &pixels[y * IMAGE_SIDE..(y + 1) * IMAGE_SIDE];
        let mut x = 0;
        while x < IMAGE_SIDE {
            if row[x] < 128 {
                x += 1;
                continue;
            }
            let start = x;
            while x < IMAGE_SIDE && row[x] >= 128 {
                x += 1;
            }
            let cy = y as f64 + 0.5;
            out.push([(start as f64 + 0.5, cy), (x as f64 - 0.5, cy)]);
        }
    }
    out
}

/// The strokes as one pointer's W3C actions, given the pad's content box on the page
/// (`left`, `top`, `side` in CSS pixels).
fn pointer_actions(strokes: &[[(f64, f64); 2]], left: f64, top: f64, side: f64) -> Value {
    let scale = side / IMAGE_SIDE as f64;
    let at = |(x, y): (f64, f64)| {
        json!({
            "type": "pointerMove", "duration": 0, "origin": "viewport",
            "x": (left + x * scale).round() as i64, "y": (top + y * scale).round() as i64,
        })
    };
    let mut steps = Vec::new();
    for &[from, to] in strokes {
        steps.push(at(from));
        steps.push(json!({ "type": "pointerDown", "button": 0 }));
        steps.push(at(to));
        steps.push(json!({ "type": "pointerUp", "button": 0 }));
    }
    json!([{
        "type": "pointer", "id": "pen",
        "parameters": { "pointerType": "mouse" },
        "actions": steps,
    }])
}

/// The page has answered the drawing as it is now: nothing in flight, and the digit
/// shown is for the pad's latest version.
const ANSWERED: &str = "const d = document.getElementById('digit'); \
    return document.body.dataset.busy === '0' && d.dataset.version === document.body.dataset.version";

#[test]
fn drawing_on_the_page_shows_what_predict_says_for_the_same_strokes() {
    let Some((chromedriver, chromium)) = tools() else {
        return;
    };
    let run = std::env::var_os("MNIST_NN_BROWSER_RUN")
        .map(PathBuf::from)
        .unwrap_or_else(|| trained_run().to_path_buf());
    let server = ServeProcess::start(&run, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let session = driver.session(&chromium, &tmp.path().join("profile"), 1400, 1150);
    session.navigate(&server.url);
    session.wait_for(
        "return document.querySelectorAll('#units .unit').length > 0",
        "the page to describe the model",
        Duration::from_secs(20),
    );
    let pad = session.execute(
        "const p = document.getElementById('pad'); const r = p.getBoundingClientRect(); \
         return [r.left + p.clientLeft, r.top + p.clientTop, p.clientWidth, p.width];",
        &[],
    );
    let [left, top, side, width] = [0, 1, 2, 3].map(|i| pad[i].as_f64().expect("a number"));
    assert_eq!(width, PAD, "the pad's resolution");

    let mut agreed_with_labels = 0;
    for index in TRACED {
        session.execute("document.getElementById('clear').click();", &[]);
        let strokes = strokes(index);
        session.actions(pointer_actions(&strokes, left, top, side));
        session.wait_for(
            ANSWERED,
            "the answer to the drawing",
            Duration::from_secs(20),
        );
        let shown = session.execute(
            "return { digit: document.getElementById('digit').textContent, \
               p: Array.from(document.querySelectorAll('#bars .bar')).map(b => Number(b.dataset.p)), \
               error: document.getElementById('message').textContent, \
               png: document.getElementById('pad').toDataURL('image/png') };",
            &[],
        );
        assert_eq!(shown["error"], "", "the page shows an error");
        let png = shown["png"]
            .as_str()
            .and_then(|url| url.strip_prefix("data:image/png;base64,"))
            .expect("a PNG data URL");
        let file = tmp.path().join(format!("drawn-{index}.png"));
        std::fs::write(&file, crate::webdriver::base64(png)).unwrap();
        let want = predict_json(&run, &file);
        let label = mnist().test.labels[index];
        let digit = shown["digit"].as_str().unwrap_or_default().to_string();
        eprintln!(
            "test image {index} (label {label}) traced in {} strokes: the page shows {digit}, \
             predict says {}",
            strokes.len(),
            want["digit"]
        );
        assert_eq!(digit, want["digit"].to_string(), "test image {index}");
        let page_p: Vec<f64> = (0..NUM_CLASSES)
            .map(|d| shown["p"][d].as_f64().unwrap())
            .collect();
        let want_p: Vec<f64> = (0..NUM_CLASSES)
            .map(|d| want["probabilities"][d].as_f64().unwrap())
            .collect();
        // Same pixels, same preprocessing and forward pass; the server's input column
        // and predict's transposed row may round differently in the last bits.
        assert_close(
            &format!("probabilities of test image {index}"),
            &page_p,
            &want_p,
            1e-6,
        );
        agreed_with_labels += usize::from(digit == label.to_string());
    }
    // The traced digits are thicker than the originals but still plainly themselves:
    // a network that reads them wrongly, or a page that sends the wrong pixels,
    // shows here.
    assert!(
        agreed_with_labels >= TRACED.len() - 1,
        "only {agreed_with_labels} of {} traced digits read as their labels",
        TRACED.len()
    );
    if let Some(path) = std::env::var_os("MNIST_NN_SCREENSHOT") {
        std::fs::write(&path, session.screenshot()).unwrap();
        eprintln!("screenshot saved to {}", PathBuf::from(path).display());
    }

    // A hidden unit clicked: its weights and its activation for the drawing.
    session.execute(
        "document.querySelector('#units .unit[data-unit=\"3\"]').click();",
        &[],
    );
    session.wait_for(
        "return document.getElementById('unit-title').textContent.startsWith('Unit 3 (kept')",
        "hidden unit 3's description",
        Duration::from_secs(10),
    );
    // One of the network's mistakes from the test set, with its label and answer.
    session.execute("document.getElementById('mistake-test').click();", &[]);
    session.wait_for(
        "return document.getElementById('test-status').textContent.startsWith('Test image')",
        "a mistake from the test set",
        Duration::from_secs(10),
    );
    let status = session.execute(
        "return [document.getElementById('test-status').textContent,                  document.getElementById('digit').textContent];",
        &[],
    );
    let text = status[0].as_str().unwrap_or_default();
    assert!(text.contains("(wrong)"), "{text}");
    let shown = status[1].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("the network says {shown} ")),
        "{text} / {shown}"
    );
}
