//! The page in a real browser: headless Chromium, driven over WebDriver, loads the page
//! served by `mnist-nn serve`, has test-set digits traced on the pad with synthetic
//! pointer strokes, and must show the digit and probabilities that `mnist-nn predict`
//! gives for a PNG of the same strokes (the pad's own pixels).
//!
//! Skipped with a message when chromedriver or Chromium is missing, unless
//! `MNIST_NN_REQUIRE_BROWSER` is set (as in CI). `MNIST_NN_SCREENSHOT=FILE` saves the
//! page after the last digit, and `MNIST_NN_BROWSER_RUN=RUN_DIR` serves another run
//! (README's screenshot: the run of configs/sgd.toml).
//!
//! The second test trains from the Train view's form against `mnist-nn serve --watch
//! DIR` (no model), pauses, runs one batch, stops; works a step in the Equations view
//! and checks a clicked cell against the API; and opens the run in the Runs view.

use std::path::PathBuf;
use std::time::Duration;

use mnist_nn::{IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES};
use serde_json::{Value, json};

use crate::http::get;
use crate::serve::ServeProcess;
use crate::util::{assert_close, mnist, photo, predict_json, root, trained_run};
use crate::webdriver::{Driver, Session, tools};

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
        assert_same_probabilities(&format!("test image {index}"), &shown, &want);
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

    // A photograph chosen with "Open a picture…": shown on the pad and read as predict
    // reads the file (the page sends it again as a JPEG, so the figures may differ in
    // the last digits, but not the answer for a digit this plain).
    let picture = tmp.path().join("photographed-7.png");
    photographed(0).save(&picture).unwrap();
    let want = predict_json(&run, &picture);
    let shown = open_picture(
        &session,
        &picture,
        "document.getElementById('picture-file')",
    );
    assert_eq!(shown["error"], "", "the page shows an error");
    assert_eq!(
        shown["digit"],
        want["digit"].to_string(),
        "the photographed 7"
    );
    assert!(
        shown["source"]
            .as_str()
            .unwrap_or_default()
            .contains("photographed-7.png"),
        "{shown}"
    );
    assert!(
        shown["padInk"].as_f64().unwrap() > 0.0,
        "the pad shows the picture"
    );
    // A PGM dropped on the pad: the browser cannot show it, so the file goes to the
    // server as it is and the answer is predict's, figure for figure.
    let pgm = root().join("examples/digits/two.pgm");
    let want = predict_json(&run, &pgm);
    let shown = open_picture(&session, &pgm, "document.getElementById('pad')");
    assert_eq!(shown["error"], "", "the page shows an error");
    assert_eq!(shown["digit"], want["digit"].to_string(), "two.pgm");
    assert_same_probabilities("two.pgm", &shown, &want);
    assert!(
        shown["padInk"].as_f64().unwrap() > 0.0,
        "the pad shows the input"
    );
}

/// The ten probabilities the page shows (`shown["p"]`) are `predict --json`'s (`want`).
/// Same pixels, same preprocessing and forward pass: the server's input column and
/// predict's transposed row may round differently in the last bits only.
fn assert_same_probabilities(what: &str, shown: &Value, want: &Value) {
    let page_p: Vec<f64> = (0..NUM_CLASSES)
        .map(|d| shown["p"][d].as_f64().unwrap())
        .collect();
    let want_p: Vec<f64> = (0..NUM_CLASSES)
        .map(|d| want["probabilities"][d].as_f64().unwrap())
        .collect();
    assert_close(&format!("probabilities of {what}"), &page_p, &want_p, 1e-6);
}

/// Test image `index` photographed: enlarged 6 times on a 300 × 260 sheet lit from the
/// left, as a PNG.
fn photographed(index: usize) -> image::GrayImage {
    let (w, h) = (300, 260);
    let gray = photo(index, 6, (w, h), (60, 50), |x, y| {
        0.6 + 0.3 * x as f32 / w as f32 + 0.05 * y as f32 / h as f32
    });
    let bytes = gray
        .pixels
        .iter()
        .map(|v| (255.0 * v).round() as u8)
        .collect();
    image::GrayImage::from_raw(w as u32, h as u32, bytes).expect("w × h pixels")
}

/// Hands the file at `path` to the page: to the file chooser (a `change`) when `target`
/// is the chooser, else dropped on `target`; waits for the answer and returns it with
/// the pad's ink (the mean darkness of its pixels).
fn open_picture(session: &Session<'_>, path: &std::path::Path, target: &str) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let script = format!(
        "const target = {target}; \
         const file = new File([new Uint8Array(arguments[0])], arguments[1]); \
         const files = new DataTransfer(); files.items.add(file); \
         if (target.type === 'file') {{ \
           target.files = files.files; target.dispatchEvent(new Event('change')); \
         }} else {{ \
           target.dispatchEvent(new DragEvent('drop', {{ dataTransfer: files, bubbles: true }})); \
         }}"
    );
    session.execute(&script, &[json!(bytes), json!(name)]);
    session.wait_for(
        &format!("return document.getElementById('source').textContent.includes({name:?}) && (() => {{ {} }})()", ANSWERED),
        &format!("the answer to {name}"),
        Duration::from_secs(20),
    );
    session.execute(
        "const pad = document.getElementById('pad'); \
         const px = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data; \
         let dark = 0; for (let i = 0; i < px.length; i += 4) dark += 255 - px[i]; \
         return { digit: document.getElementById('digit').textContent, \
           p: Array.from(document.querySelectorAll('#bars .bar')).map(b => Number(b.dataset.p)), \
           error: document.getElementById('message').textContent, \
           source: document.getElementById('source').textContent, \
           padInk: dark / (255 * px.length / 4) };",
        &[],
    )
}

// ---- the Train, Equations and Runs views ------------------------------------------

/// `MNIST_NN_SCREENSHOT_DIR=DIR` saves the views of the second test as
/// DIR/serve-train.png, DIR/serve-equations.png and DIR/serve-runs.png (README's).
const SCREENSHOT_DIR: &str = "MNIST_NN_SCREENSHOT_DIR";

/// Generous limits: CI runs the browser, the server and its training on 2 slow cores.
const SHORT: Duration = Duration::from_secs(30);
const LONG: Duration = Duration::from_secs(180);

/// What the page and the server show, for a failure's message.
const PAGE_STATE: &str = "const $ = (id) => document.getElementById(id); \
    return { view: document.body.dataset.view, error: $('page-error').textContent, \
      train: [$('train-state').dataset.state, $('train-step-count').dataset.step, \
        $('train-message').textContent], \
      equations: [document.body.dataset.eqBusy, $('eq-step-count').dataset.step, \
        $('eq-message').textContent], \
      runs: [$('runs-detail').dataset.run, $('runs-message').textContent] };";

/// Polls `script` until it returns true; fails after `limit` with `what` and the
/// page's and the server's state.
fn wait(session: &Session<'_>, address: &str, script: &str, what: &str, limit: Duration) {
    if !session.poll(script, limit) {
        panic!(
            "timed out after {limit:?} waiting for {what}\n  page: {}\n  server: {}",
            session.execute(PAGE_STATE, &[]),
            get(address, "/api/train").text()
        );
    }
}

/// Fails when the page has written an uncaught error in #page-error.
fn assert_no_page_error(session: &Session<'_>, when: &str) {
    let error = session.execute(
        "return document.getElementById('page-error').textContent;",
        &[],
    );
    assert_eq!(error, "", "a page error {when}");
}

/// The page saved as DIR/NAME when `MNIST_NN_SCREENSHOT_DIR` is set: from the top to
/// the bottom of the card holding `last` (a CSS selector), or the whole page.
fn save_screenshot(session: &Session<'_>, name: &str, last: Option<&str>) {
    let Some(dir) = std::env::var_os(SCREENSHOT_DIR) else {
        return;
    };
    let path = PathBuf::from(dir).join(name);
    let height = session.execute(
        "window.scrollTo(0, 0); \
         const last = arguments[0] && document.querySelector(arguments[0]); \
         return last ? Math.ceil(last.closest('.card').getBoundingClientRect().bottom) + 16 \
           : document.documentElement.scrollHeight;",
        &[json!(last)],
    );
    let height = height.as_u64().expect("a height") as u32;
    std::fs::write(&path, session.full_page_screenshot(height.min(3000))).unwrap();
    eprintln!("screenshot saved to {}", path.display());
}

/// The value of `script` as an integer.
fn int(session: &Session<'_>, script: &str) -> i64 {
    let value = session.execute(script, &[]);
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{script}: not an integer: {value}"))
}

/// The literal of the top-level `"value"` in a JSON object's text, exactly as written
/// (serde_json's default parsing of floats may differ from Rust's in the last bit).
fn value_literal(json_text: &str) -> &str {
    let (mut depth, mut in_string, mut escaped) = (0, false, false);
    for (i, c) in json_text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '"' if depth == 1 && json_text[i..].starts_with("\"value\"") => {
                let rest = json_text[i + "\"value\"".len()..].trim_start();
                let rest = rest.strip_prefix(':').expect("a colon").trim_start();
                let end = rest.find([',', '}', ' ', '\n']).unwrap_or(rest.len());
                return &rest[..end];
            }
            '"' => in_string = true,
            _ => {}
        }
    }
    panic!("no top-level \"value\" in {json_text}")
}

#[test]
fn value_literal_reads_the_top_level_key_only() {
    let text = r#"{"a":{"value":1},"s":"\"value\":2","t":[{"value":3}],"value":-4.5e-7,"z":0}"#;
    assert_eq!(value_literal(text), "-4.5e-7");
    assert_eq!(value_literal(r#"{"value" : 0.25}"#), "0.25");
}

#[test]
fn a_run_trained_paused_stepped_and_stopped_on_the_page_then_its_equations_and_runs() {
    let Some((chromedriver, chromium)) = tools() else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let server = ServeProcess::watching(runs.path());
    let address = server.address();
    let tmp = tempfile::tempdir().unwrap();
    let driver = Driver::start(&chromedriver);
    let session = driver.session(&chromium, &tmp.path().join("profile"), 1400, 1150);
    session.navigate(&server.url);

    // ---- 1. The page opens on the view the server names, with no error: Runs, as
    // README says of `serve --watch DIR` (Train without --watch, Draw with --model).
    let start_view = get(&address, "/api/server").json()["start_view"].clone();
    assert_eq!(start_view, "runs", "the start view of serve --watch");
    wait(
        &session,
        &address,
        "return document.body.dataset.view !== ''",
        "the page to choose a view",
        SHORT,
    );
    let view = session.execute("return document.body.dataset.view;", &[]);
    assert_eq!(view, start_view, "the view the page opens on");
    assert_no_page_error(&session, "on load");

    // The charts' axes fall on round numbers: an accuracy curve from 0.055 gets 0, ¼, ½,
    // ¾, 1 (it read −0.05, 0.213, 0.475… before); a loss up to 2.8 gets whole numbers;
    // gradient norms from 5e-6 to 4.6 (log10 units) get every second decade.
    let ticks = session.execute(
        "const n = window.charts.niceTicks; \
         return [n(0.055, 1.0).ticks, n(0, 2.8).ticks, n(-5.26, 0.66, 4, true).ticks];",
        &[],
    );
    assert_eq!(
        ticks,
        serde_json::json!([[0, 0.25, 0.5, 0.75, 1], [0, 1, 2, 3], [-6, -4, -2, 0, 2]]),
        "axis ticks"
    );

    // ---- 2. Train: a small run from the form, paused, one batch, stopped.
    session.execute("document.getElementById('tab-train').click();", &[]);
    wait(
        &session,
        &address,
        "return document.body.dataset.view === 'train' \
           && document.getElementById('train-config').value === 'sgd' \
           && document.querySelector('#train-fields [data-path=\"model.hidden\"]') !== null \
           && !document.getElementById('train-start').disabled",
        "the Train view's form",
        SHORT,
    );
    // 100 batches an epoch on 2,000 images, and epochs enough that the run is still
    // going when Pause is clicked after two evaluated epochs and a screenshot (a fast
    // machine trains this small network at a thousand batches a second). For README's
    // screenshot, a run worth looking at: 64 units on all 55,000 training images in
    // batches of 10, about a second an epoch here (the page is sent a step at most
    // every 250 ms), shown after five epochs.
    let screenshots = std::env::var_os(SCREENSHOT_DIR).is_some();
    let (hidden, batch, limit, epochs_shown) = if screenshots {
        ("64", "10", "", 5)
    } else {
        ("16", "20", "2000", 2)
    };
    let fields = json!({
        "name": "browser",
        "model.hidden": hidden,
        "train.epochs": "50",
        "train.batch_size": batch,
        "data.limit": limit,
    });
    let missing = session.execute(
        "const missing = []; \
         for (const [path, value] of Object.entries(arguments[0])) { \
           const input = document.querySelector(`#train-fields [data-path=\"${path}\"]`); \
           if (input) input.value = value; else missing.push(path); \
         } \
         return missing;",
        &[fields],
    );
    assert_eq!(missing, json!([]), "fields the form lacks");
    session.execute("document.getElementById('train-start').click();", &[]);
    wait(
        &session,
        &address,
        "return Number(document.getElementById('chart-loss').dataset.points) > 0 \
           || document.getElementById('train-message').textContent !== ''",
        "the first points of the loss chart",
        LONG,
    );
    let message = session.execute(
        "return document.getElementById('train-message').textContent;",
        &[],
    );
    assert_eq!(message, "", "the Train view's message after Start");
    let first = int(
        &session,
        "return document.getElementById('chart-loss').dataset.points;",
    );
    assert!(first > 0);
    wait(
        &session,
        &address,
        &format!("return Number(document.getElementById('chart-loss').dataset.points) > {first}"),
        &format!("the loss chart to grow from {first} points"),
        LONG,
    );
    // Evaluated epochs: the test set's confusion matrix, W1's picture, and points on
    // every chart.
    wait(
        &session,
        &address,
        &format!(
            "return Number(document.getElementById('train-confusion').dataset.epoch) \
               >= {epochs_shown} || ['finished', 'stopped', 'failed'].includes( \
                 document.getElementById('train-state').dataset.state)"
        ),
        &format!("{epochs_shown} evaluated epochs"),
        LONG,
    );
    let shown = session.execute(
        "const cells = Array.from(document.querySelectorAll('#train-confusion td[data-count]')); \
         const points = (id) => Number(document.getElementById(id).dataset.points); \
         return { state: document.getElementById('train-state').dataset.state, \
           counts: cells.map((td) => Number(td.dataset.count)), \
           weights: document.getElementById('train-weights').dataset.step || null, \
           others: ['chart-accuracy', 'chart-lr', 'chart-grads', 'chart-ratios', 'chart-dead'] \
             .map(points) };",
        &[],
    );
    assert_eq!(shown["state"], "running", "the run ended too soon: {shown}");
    let counts: Vec<u64> = shown["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), 100, "a 10 × 10 confusion matrix");
    assert_eq!(counts.iter().sum::<u64>(), 10_000, "the whole test set");
    assert!(!shown["weights"].is_null(), "no picture of W1: {shown}");
    for (chart, n) in ["accuracy", "lr", "grads", "ratios", "dead"]
        .iter()
        .zip(shown["others"].as_array().unwrap())
    {
        assert!(n.as_i64().unwrap() > 0, "the {chart} chart is empty");
    }
    assert_no_page_error(&session, "while training");
    save_screenshot(&session, "serve-train.png", None);

    session.execute("document.getElementById('train-pause').click();", &[]);
    wait(
        &session,
        &address,
        "return ['paused', 'finished', 'stopped', 'failed'].includes( \
           document.getElementById('train-state').dataset.state)",
        "the run to pause",
        SHORT,
    );
    let status = get(&address, "/api/train").json();
    assert_eq!(status["state"], "paused", "{status}");
    let s = status["step"].as_i64().unwrap();
    // Steps sent before the pause may still be on their way to the page.
    wait(
        &session,
        &address,
        &format!("return document.getElementById('train-step-count').dataset.step === '{s}'"),
        &format!("the page to show step {s}, where the server paused"),
        SHORT,
    );
    session.execute("document.getElementById('train-step').click();", &[]);
    let after_one = format!(
        "return document.getElementById('train-step-count').dataset.step === '{}' \
           && document.getElementById('train-state').dataset.state === 'paused'",
        s + 1
    );
    wait(
        &session,
        &address,
        &after_one,
        "one batch, then paused again",
        SHORT,
    );
    // Nothing more happens while paused (a check of absence: a fixed wait).
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        session.execute(&after_one, &[]),
        true,
        "the page moved on from step {}",
        s + 1
    );
    assert_eq!(get(&address, "/api/train").json()["step"], s + 1);

    session.execute("document.getElementById('train-stop').click();", &[]);
    wait(
        &session,
        &address,
        "return ['stopped', 'finished', 'failed'].includes( \
           document.getElementById('train-state').dataset.state)",
        "the run to stop",
        LONG,
    );
    let state = session.execute(
        "return [document.getElementById('train-state').dataset.state, \
           document.getElementById('train-draw').hidden, \
           document.getElementById('train-message').textContent];",
        &[],
    );
    assert_eq!(state, json!(["stopped", false, ""]), "after Stop");
    let dir = runs.path().join("browser");
    assert!(
        dir.join("checkpoint.json").is_file(),
        "no checkpoint.json in {}",
        dir.display()
    );
    assert_no_page_error(&session, "after Stop");

    // ---- 3. Equations: a fresh 784-8-10 network on 4 images.
    session.execute("document.getElementById('tab-equations').click();", &[]);
    wait(
        &session,
        &address,
        "return document.body.dataset.view === 'equations'",
        "the Equations view",
        SHORT,
    );
    session.execute(
        "const set = (id, v) => { document.getElementById(id).value = v; }; \
         set('eq-network', 'fresh'); set('eq-hidden', '8'); set('eq-m', '4'); \
         set('eq-alpha', '0.5'); \
         document.getElementById('eq-start').click();",
        &[],
    );
    wait(
        &session,
        &address,
        "const f = document.querySelector('canvas[data-matrix=\"dW2\"]'); \
         return document.body.dataset.eqBusy === '0' \
           && (document.getElementById('eq-message').textContent !== '' \
               || (f !== null && f.parentElement.dataset.cols === '8'));",
        "the worked step",
        LONG,
    );
    let message = session.execute(
        "return document.getElementById('eq-message').textContent;",
        &[],
    );
    assert_eq!(message, "", "the Equations view's message");
    let step = session.execute(
        "return document.getElementById('eq-step-count').dataset.step;",
        &[],
    );
    assert_eq!(step, "0");
    // A cell of dW2 clicked where the page draws it: the heat map has one canvas pixel
    // per cell, stretched over the canvas's content box.
    // Row 7 (the digit 7), column 1: a hidden unit active on 3 of the 4 images, before
    // and after the step, so that the explanation has terms to show.
    let (row, col) = (7, 1);
    let geometry = session.execute(
        "const c = document.querySelector('canvas[data-matrix=\"dW2\"]'); \
         c.scrollIntoView({ block: 'center' }); \
         const r = c.getBoundingClientRect(); \
         return [r.left + c.clientLeft, r.top + c.clientTop, c.clientWidth, c.clientHeight, \
           c.width, c.height];",
        &[],
    );
    let [left, top, width, height, cols, rows] =
        [0, 1, 2, 3, 4, 5].map(|i| geometry[i].as_f64().expect("a number"));
    assert_eq!((rows, cols), (10.0, 8.0), "dW2's shape on the canvas");
    session.click_at(
        left + (col as f64 + 0.5) * width / cols,
        top + (row as f64 + 0.5) * height / rows,
    );
    // The pointer away again, so that the heat map's tooltip goes.
    session.actions(json!([{
        "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" },
        "actions": [{ "type": "pointerMove", "duration": 0, "origin": "viewport", "x": 1, "y": 1 }],
    }]));
    wait(
        &session,
        &address,
        "return document.getElementById('eq-cell-value').dataset.matrix === 'dW2'",
        "the clicked cell's value",
        SHORT,
    );
    let cell = session.execute(
        "const v = document.getElementById('eq-cell-value'); \
         return [v.dataset.row, v.dataset.col, v.dataset.value, \
           document.getElementById('eq-cell').textContent];",
        &[],
    );
    assert_eq!(
        (cell[0].as_str().unwrap(), cell[1].as_str().unwrap()),
        (row.to_string().as_str(), col.to_string().as_str()),
        "the cell clicked"
    );
    let reply = get(
        &address,
        &format!("/api/equations/cell?matrix=dW2&row={row}&col={col}"),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let api = reply.json();
    let shown_value = cell[2].as_str().unwrap();
    let text = reply.text();
    let want = value_literal(&text);
    assert_eq!(
        shown_value.parse::<f64>().ok(),
        Some(want.parse::<f64>().expect("a number")),
        "the page shows dW2[{row},{col}] = {shown_value}; the API says {want}"
    );
    assert_eq!(shown_value, want, "the value as the server wrote it");
    let explained = cell[3].as_str().unwrap();
    let formula = api["formula"].as_str().unwrap();
    assert!(
        explained.contains(formula),
        "the page's explanation {explained:?} lacks the formula {formula:?}"
    );
    let diffs = session.execute(
        "return Array.from(document.querySelectorAll('#eq-autodiff-diff dd')) \
           .map((dd) => [dd.dataset.param, Number(dd.dataset.value)]);",
        &[],
    );
    assert_eq!(diffs.as_array().unwrap().len(), 4, "{diffs}");
    for pair in diffs.as_array().unwrap() {
        let diff = pair[1].as_f64().unwrap_or(f64::NAN);
        assert!(diff < 1e-5, "hand-derived {} vs autodiff: {diff}", pair[0]);
    }

    session.execute("document.getElementById('eq-step').click();", &[]);
    wait(
        &session,
        &address,
        "return document.body.dataset.eqBusy === '0' \
           && (document.getElementById('eq-step-count').dataset.step === '1' \
               || document.getElementById('eq-message').textContent !== '')",
        "the step taken",
        LONG,
    );
    let after = session.execute(
        "return [document.getElementById('eq-step-count').dataset.step, \
           document.getElementById('eq-loss').textContent, \
           document.getElementById('eq-message').textContent];",
        &[],
    );
    assert_eq!(after[0], "1", "{after}");
    let losses: Vec<f64> = after[1]
        .as_str()
        .unwrap()
        .split('→')
        .map(|s| s.trim().parse().expect("a number"))
        .collect();
    assert!(
        losses.len() == 2 && losses[1] < losses[0],
        "the loss shown after the step: {after}"
    );
    // The clicked cell explained again, for the new step's dW2.
    let reply = get(
        &address,
        &format!("/api/equations/cell?matrix=dW2&row={row}&col={col}"),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    let now = value_literal(&text);
    assert_ne!(
        now, shown_value,
        "dW2[{row},{col}] is the same after the step"
    );
    wait(
        &session,
        &address,
        &format!(
            "const v = document.getElementById('eq-cell-value'); \
             return v.dataset.value === '{now}' && v.dataset.matrix === 'dW2' \
               && v.dataset.row === '{row}' && v.dataset.col === '{col}';"
        ),
        &format!("the clicked cell's new value {now}"),
        SHORT,
    );
    assert_no_page_error(&session, "in the Equations view");
    // The clicked cell's explanation, at the top, in the picture.
    save_screenshot(
        &session,
        "serve-equations.png",
        Some("canvas[data-matrix=\"dW2\"]"),
    );

    // ---- 4. Runs: the stopped run listed; opened, its curves drawn.
    session.execute("document.getElementById('tab-runs').click();", &[]);
    wait(
        &session,
        &address,
        "return document.querySelector('#runs-table tr[data-run=\"browser\"]') !== null",
        "the run in the Runs list",
        SHORT,
    );
    session.execute(
        "document.querySelector('#runs-table tr[data-run=\"browser\"]').click();",
        &[],
    );
    wait(
        &session,
        &address,
        "const points = (id) => Number(document.getElementById(id).dataset.points); \
         return document.getElementById('runs-detail').dataset.run === 'browser' \
           && points('runs-chart-loss') > 0 && points('runs-chart-accuracy') > 0",
        "the run's charts",
        SHORT,
    );
    let detail = session.execute(
        "return [document.querySelector('#runs-table tr[data-run=\"browser\"]').dataset.status, \
           document.getElementById('runs-config').textContent, \
           document.getElementById('runs-message').textContent];",
        &[],
    );
    assert_eq!(
        detail[1]
            .as_str()
            .map(|t| t.contains(&format!("hidden = {hidden}\n"))),
        Some(true),
        "{detail}"
    );
    assert_eq!(detail[2], "", "the Runs view's message");
    eprintln!("the stopped run is listed as {}", detail[0]);
    assert_no_page_error(&session, "in the Runs view");
    save_screenshot(&session, "serve-runs.png", None);
}
