//! `serve`: the page and the JSON API over a real socket on 127.0.0.1. Most tests share
//! one server started in this process by the library (as `mnist-nn serve` starts it);
//! the last ones run the real binary.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use image::{GrayImage, Luma};
use mnist_nn::backend::BackendKind;
use mnist_nn::model::HostParams;
use mnist_nn::preprocess::{Gray, preprocess};
use mnist_nn::serve::{self, LoadedRun};
use mnist_nn::{IMAGE_PIXELS, NUM_CLASSES};
use serde_json::{Value, json};

use crate::http::{self, Reply, get, post, post_json, request, send_raw};
use crate::util::{
    assert_close, bin, copy_of_run, mnist, predict_json, root, run_bin, saved_params, trained_run,
};

/// The shared server's `host:port`.
fn server() -> &'static str {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS.get_or_init(|| {
        let run = LoadedRun::load(trained_run(), Some(BackendKind::Ndarray), None)
            .expect("the shared run loads");
        let server = serve::start(run, "127.0.0.1", 0).expect("the server listens");
        // The server's thread runs until the test binary exits.
        server.address().to_string()
    })
}

fn params() -> &'static HostParams {
    static PARAMS: OnceLock<HostParams> = OnceLock::new();
    PARAMS.get_or_init(|| saved_params(trained_run()))
}

/// An independent forward pass in f64 on the host: `(A1, A2)` for one image.
fn host_forward(p: &HostParams, x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let h = p.hidden;
    let a1: Vec<f64> = (0..h)
        .map(|j| {
            let z: f64 = (0..IMAGE_PIXELS)
                .map(|i| f64::from(p.w1[j * IMAGE_PIXELS + i]) * f64::from(x[i]))
                .sum::<f64>()
                + f64::from(p.b1[j]);
            z.max(0.0)
        })
        .collect();
    let z2: Vec<f64> = (0..NUM_CLASSES)
        .map(|d| {
            (0..h)
                .map(|j| f64::from(p.w2[d * h + j]) * a1[j])
                .sum::<f64>()
                + f64::from(p.b2[d])
        })
        .collect();
    let max = z2.iter().copied().fold(f64::MIN, f64::max);
    let exp: Vec<f64> = z2.iter().map(|z| (z - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    (a1, exp.iter().map(|e| e / sum).collect())
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_f64().expect("a number"))
        .collect()
}

fn test_image(i: usize) -> Vec<f32> {
    mnist().test.image(i).expect("test image").to_vec()
}

/// A PNG of the given grayscale pixels.
fn png(width: u32, height: u32, f: impl Fn(u32, u32) -> u8) -> Vec<u8> {
    let img = GrayImage::from_fn(width, height, |x, y| Luma([f(x, y)]));
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

fn predict(body: &Value) -> Reply {
    post_json(server(), "/api/predict", body)
}

// ---- the page ---------------------------------------------------------------------

#[test]
fn page_files_are_served_and_load_nothing_from_elsewhere() {
    let page = get(server(), "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let html = page.text();
    for id in [
        "id=\"pad\"",
        "id=\"digit\"",
        "id=\"bars\"",
        "id=\"seen\"",
        "id=\"units\"",
    ] {
        assert!(html.contains(id), "the page has no {id}");
    }
    let js = get(server(), "/app.js");
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let css = get(server(), "/style.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    for (name, file) in [("index.html", &page), ("app.js", &js), ("style.css", &css)] {
        assert_eq!(file.status, 200, "{name}");
        assert!(
            !file.text().contains("://"),
            "{name} names an address elsewhere"
        );
    }
    assert!(html.contains("src=\"/app.js\"") && html.contains("href=\"/style.css\""));
}

// ---- GET /api/model ---------------------------------------------------------------

#[test]
fn model_describes_the_run_and_its_test_accuracy() {
    let info = get(server(), "/api/model").json();
    assert_eq!(info["hidden"], 32);
    assert_eq!(info["backend"], "ndarray");
    assert_eq!(info["config"]["name"], "shared");
    assert_eq!(info["config"]["train"]["batch_size"], 16);
    assert_eq!(info["summary"]["status"], "completed");
    assert_eq!(info["limits"]["max_body_bytes"], 1 << 20);
    assert_eq!(
        info["classes"],
        serde_json::json!(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]),
        "MNIST's classes are its digits"
    );
    // The accuracy recounted here from the saved parameters, on the host in f64.
    let test = &mnist().test;
    let correct = (0..test.len())
        .filter(|&i| {
            let (_, a2) = host_forward(params(), &test_image(i));
            let digit = (0..NUM_CLASSES)
                .max_by(|&a, &b| a2[a].total_cmp(&a2[b]))
                .unwrap();
            digit == usize::from(test.labels[i])
        })
        .count();
    assert_eq!(info["test"]["images"], 10_000);
    let accuracy = info["test"]["accuracy"].as_f64().unwrap();
    // f32 on the device and f64 here may break a near-tie differently on an image or
    // two: allow 3 in 10,000.
    assert!(
        (accuracy - correct as f64 / 10_000.0).abs() <= 3e-4,
        "served {accuracy}, recounted {correct}/10000"
    );
    assert_eq!(
        info["test"]["mistakes"].as_u64().unwrap(),
        (10_000.0 * (1.0 - accuracy)).round() as u64
    );
    assert!(info["test_unavailable"].is_null());
}

// ---- POST /api/predict ------------------------------------------------------------

#[test]
fn predict_on_784_values_matches_an_independent_forward_pass() {
    for i in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1234, 9999] {
        let x = test_image(i);
        let answer = predict(&json!({ "pixels": x })).json();
        let (a1, a2) = host_forward(params(), &x);
        // f32 sums of 784 products against f64 ones: relative differences near 1e-6 of
        // the largest value; 1e-4 leaves room and still catches a wrong unit or layer.
        assert_close(
            &format!("A1 of image {i}"),
            &floats(&answer["hidden"]),
            &a1,
            1e-4,
        );
        assert_close(
            &format!("A2 of image {i}"),
            &floats(&answer["probabilities"]),
            &a2,
            1e-4,
        );
        let digit = answer["digit"].as_u64().unwrap() as usize;
        let best = (0..NUM_CLASSES)
            .max_by(|&a, &b| a2[a].total_cmp(&a2[b]))
            .unwrap();
        assert_eq!(digit, best, "image {i}");
        // Already in MNIST's form: given to the network as it is.
        let input: Vec<f32> = floats(&answer["input"]).iter().map(|&v| v as f32).collect();
        assert_eq!(input, x, "image {i}: the input must come back unchanged");
    }
}

#[test]
fn predict_on_an_image_file_matches_the_predict_command() {
    let run = trained_run();
    for name in ["one.png", "seven.png", "two.pgm"] {
        let path = root().join("examples/digits").join(name);
        let want = predict_json(run, &path);
        let content_type = if name.ends_with(".png") {
            "image/png"
        } else {
            "image/x-portable-graymap"
        };
        let answer = post(
            server(),
            "/api/predict",
            content_type,
            &std::fs::read(&path).unwrap(),
        );
        assert_eq!(answer.status, 200, "{name}: {}", answer.text());
        let answer = answer.json();
        assert_eq!(answer["digit"], want["digit"], "{name}");
        // The same preprocessing and the same forward pass on the same backend; the
        // input tensor is laid out differently (one column against a transposed row),
        // so allow rounding in the last bits.
        assert_close(
            &format!("{name}: probabilities"),
            &floats(&answer["probabilities"]),
            &floats(&want["probabilities"]),
            1e-6,
        );
        let expected = preprocess(&Gray::open(&path).unwrap()).unwrap();
        let input: Vec<f32> = floats(&answer["input"]).iter().map(|&v| v as f32).collect();
        assert_eq!(input, expected.to_vec(), "{name}: the preprocessed image");
    }
}

#[test]
fn predict_on_a_picture_as_json_preprocesses_it_like_a_file() {
    let gray = Gray::open(&root().join("examples/digits/seven.png")).unwrap();
    let answer = predict(&json!({
        "width": gray.width,
        "height": gray.height,
        "pixels": gray.pixels,
    }));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let input: Vec<f32> = floats(&answer.json()["input"])
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_eq!(input, preprocess(&gray).unwrap().to_vec());
}

#[test]
fn predict_takes_a_body_without_content_type_by_its_first_byte() {
    let x = test_image(0);
    let json_body = json!({ "pixels": x }).to_string();
    let reply = request(server(), "POST", "/api/predict", &[], json_body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.text());
    let png_body = std::fs::read(root().join("examples/digits/one.png")).unwrap();
    let reply = request(server(), "POST", "/api/predict", &[], &png_body);
    assert_eq!(reply.status, 200, "{}", reply.text());
}

// ---- GET /api/hidden/<unit> and /api/test/... -------------------------------------

#[test]
fn hidden_unit_is_a_row_of_w1_a_bias_and_a_column_of_w2() {
    let p = params();
    for unit in [0, 5, p.hidden - 1] {
        let reply = get(server(), &format!("/api/hidden/{unit}")).json();
        assert_eq!(reply["unit"], unit);
        let weights: Vec<f32> = floats(&reply["weights"])
            .iter()
            .map(|&v| v as f32)
            .collect();
        assert_eq!(
            weights,
            p.w1[unit * IMAGE_PIXELS..(unit + 1) * IMAGE_PIXELS]
        );
        assert_eq!(reply["bias"].as_f64().unwrap() as f32, p.b1[unit]);
        let outgoing: Vec<f32> = floats(&reply["outgoing"])
            .iter()
            .map(|&v| v as f32)
            .collect();
        let column: Vec<f32> = (0..NUM_CLASSES)
            .map(|d| p.w2[d * p.hidden + unit])
            .collect();
        assert_eq!(outgoing, column);
    }
}

#[test]
fn test_images_come_with_their_label_and_the_network_s_answer() {
    let test = &mnist().test;
    let reply = get(server(), "/api/test/42").json();
    assert_eq!(reply["index"], 42);
    assert_eq!(reply["label"], test.labels[42]);
    let input: Vec<f32> = floats(&reply["input"]).iter().map(|&v| v as f32).collect();
    assert_eq!(input, test_image(42));
    let (_, a2) = host_forward(params(), &test_image(42));
    assert_close(
        "A2 of test image 42",
        &floats(&reply["probabilities"]),
        &a2,
        1e-4,
    );
    assert_eq!(
        reply["correct"],
        reply["digit"].as_u64() == Some(u64::from(test.labels[42]))
    );
    for _ in 0..5 {
        let mistake = get(server(), "/api/test/mistake").json();
        assert_eq!(mistake["correct"], false);
        assert_ne!(mistake["digit"], mistake["label"]);
        let i = mistake["index"].as_u64().unwrap() as usize;
        assert_eq!(mistake["label"], test.labels[i]);
        let random = get(server(), "/api/test/random").json();
        assert!(random["index"].as_u64().unwrap() < 10_000);
    }
}

// ---- bad requests: each is answered with a status and a message, and the server goes on

#[test]
fn predict_refuses_a_wrong_pixel_count() {
    let message = predict(&json!({ "pixels": vec![0.0; 783] })).error(400);
    assert!(
        message.contains("783 pixel values; expected 784"),
        "{message}"
    ); // The count is told even when the values are also wrong.
    let message = predict(&json!({ "pixels": [1, 2] })).error(400);
    assert!(
        message.contains("2 pixel values; expected 784"),
        "{message}"
    );
}

#[test]
fn predict_refuses_values_outside_0_to_1() {
    let mut x = vec![0.0; IMAGE_PIXELS];
    x[3] = 1.5;
    let message = predict(&json!({ "pixels": x })).error(400);
    assert!(
        message.contains("pixels[3] = 1.5 is outside [0, 1]"),
        "{message}"
    );
    x[3] = -0.25;
    let message = predict(&json!({ "pixels": x })).error(400);
    assert!(message.contains("pixels[3] = -0.25"), "{message}");
}

#[test]
fn predict_refuses_malformed_json() {
    for body in [
        "{\"pixels\": [0.1, 0.2",
        "{\"pixels\": [0.1, \"a\"]}",
        "{\"pixels\": [1e999]}",
        "{\"pixel\": []}",
        "[]",
    ] {
        let reply = post(
            server(),
            "/api/predict",
            "application/json",
            body.as_bytes(),
        );
        let message = reply.error(400);
        assert!(message.starts_with("bad JSON"), "{body}: {message}");
        // In the API's words, not the server's type names.
        assert!(!message.contains("PixelBody"), "{body}: {message}");
    }
}

#[test]
fn predict_refuses_a_picture_whose_size_does_not_match() {
    let message =
        predict(&json!({ "width": 10, "height": 10, "pixels": vec![0.5; 99] })).error(400);
    assert!(
        message.contains("99 pixel values for a 10×10 picture"),
        "{message}"
    );
    let message = predict(&json!({ "width": 10, "pixels": vec![0.5; 100] })).error(400);
    assert!(message.contains("both width and height"), "{message}");
    let message = predict(&json!({ "width": 0, "height": 0, "pixels": [] })).error(400);
    assert!(message.contains("must be 1 to 2048"), "{message}");
}

#[test]
fn predict_refuses_a_blank_picture() {
    let message = predict(&json!({ "width": 3, "height": 2, "pixels": vec![1.0; 6] })).error(400);
    assert!(message.contains("blank"), "{message}");
    let message = post(
        server(),
        "/api/predict",
        "image/png",
        &png(40, 40, |_, _| 255),
    )
    .error(400);
    assert!(message.contains("blank"), "{message}");
}

#[test]
fn predict_refuses_bytes_that_are_not_an_image() {
    let message = post(
        server(),
        "/api/predict",
        "image/png",
        b"not a picture at all",
    )
    .error(400);
    assert!(message.contains("not a PNG, JPEG or PGM"), "{message}");
}

#[test]
fn predict_refuses_a_truncated_png() {
    let whole = std::fs::read(root().join("examples/digits/seven.png")).unwrap();
    let message = post(
        server(),
        "/api/predict",
        "image/png",
        &whole[..whole.len() / 2],
    )
    .error(400);
    assert!(message.contains("cannot decode"), "{message}");
}

#[test]
fn predict_refuses_a_png_wider_than_the_limit() {
    // 3000 × 2 pixels compress to a few hundred bytes: small body, too many pixels.
    let wide = png(3000, 2, |x, _| if x % 7 == 0 { 0 } else { 255 });
    assert!(wide.len() < 4096);
    let message = post(server(), "/api/predict", "image/png", &wide).error(400);
    assert!(
        message.contains("3000×2 pixels; at most 2048 on a side"),
        "{message}"
    );
}

#[test]
fn predict_refuses_an_empty_body() {
    let message = post(server(), "/api/predict", "image/png", b"").error(400);
    assert!(message.contains("no body"), "{message}");
}

#[test]
fn predict_refuses_an_unknown_content_type() {
    let message = post(server(), "/api/predict", "text/plain", b"seven").error(415);
    assert!(message.contains("text/plain"), "{message}");
}

#[test]
fn predict_refuses_a_body_over_the_limit() {
    let body = vec![b' '; (1 << 20) + 1];
    let message = post(server(), "/api/predict", "application/json", &body).error(413);
    assert!(
        message.contains("1048577 bytes; the limit is 1048576"),
        "{message}"
    );
}

#[test]
fn predict_refuses_a_huge_declared_length_before_reading_it() {
    let head = "POST /api/predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n\
                Content-Length: 1000000000000\r\n\r\n";
    let message = send_raw(server(), head.as_bytes()).error(413);
    assert!(message.contains("1000000000000 bytes"), "{message}");
}

#[test]
fn predict_refuses_a_chunked_body() {
    let bytes = "POST /api/predict HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
                 2\r\n{}\r\n0\r\n\r\n";
    let message = send_raw(server(), bytes.as_bytes()).error(411);
    assert!(message.contains("Content-Length"), "{message}");
}

#[test]
fn malformed_http_is_refused_and_the_server_goes_on() {
    let message = send_raw(server(), b"NOT HTTP AT ALL\r\n\r\n").error(400);
    assert!(message.contains("malformed HTTP request"), "{message}");
    let head = format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(20_000));
    let message = send_raw(server(), head.as_bytes()).error(431);
    assert!(message.contains("over 16384 bytes"), "{message}");
    let bad_length = "POST /api/predict HTTP/1.1\r\nContent-Length: twelve\r\n\r\n";
    let message = send_raw(server(), bad_length.as_bytes()).error(400);
    assert!(message.contains("not a byte count"), "{message}");
    assert_eq!(get(server(), "/api/model").status, 200);
}

#[test]
fn unknown_routes_are_404_and_wrong_methods_405() {
    let message = get(server(), "/api/nothing").error(404);
    assert!(message.contains("/api/nothing"), "{message}");
    let reply = get(server(), "/api/predict");
    let message = reply.error(405);
    assert!(message.contains("takes POST"), "{message}");
    assert_eq!(reply.header("allow"), Some("POST"));
    post(server(), "/api/model", "application/json", b"{}").error(405);
}

#[test]
fn hidden_units_out_of_range_or_not_numbers_are_refused() {
    let message = get(server(), "/api/hidden/32").error(404);
    assert!(
        message.contains("no hidden unit 32: the network has 32 (0 to 31)"),
        "{message}"
    );
    let message = get(server(), "/api/hidden/-1").error(400);
    assert!(message.contains("not a whole number"), "{message}");
    // A number too large for any index is past the end too, not "not a number".
    let message = get(server(), "/api/hidden/99999999999999999999999").error(404);
    assert!(
        message.contains("no hidden unit 99999999999999999999999: the network has 32"),
        "{message}"
    );
}

#[test]
fn test_images_out_of_range_or_misnamed_are_refused() {
    let message = get(server(), "/api/test/10000").error(404);
    assert!(
        message.contains("the test set has 10000 (0 to 9999)"),
        "{message}"
    );
    let message = get(server(), "/api/test/99999999999999999999999").error(404);
    assert!(
        message.contains("no test image 99999999999999999999999: the test set has 10000"),
        "{message}"
    );
    let message = get(server(), "/api/test/any").error(400);
    assert!(message.contains("/api/test/random"), "{message}");
}

// ---- connections ------------------------------------------------------------------

#[test]
fn one_connection_carries_several_requests() {
    let mut stream = http::connect(server());
    let mut bytes = http::encode("GET", "/api/hidden/1", &[], &[]);
    bytes.extend(http::encode("GET", "/api/test/3", &[], &[]));
    let body = json!({ "pixels": test_image(3) }).to_string();
    bytes.extend(http::encode(
        "POST",
        "/api/predict",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    ));
    stream.write_all(&bytes).unwrap();
    let mut pending = Vec::new();
    let first = http::read_reply(&mut stream, &mut pending);
    let second = http::read_reply(&mut stream, &mut pending);
    let third = http::read_reply(&mut stream, &mut pending);
    assert_eq!(first.json()["unit"], 1);
    assert_eq!(second.json()["index"], 3);
    assert_eq!(second.header("connection"), Some("keep-alive"));
    assert_eq!(
        third.json()["probabilities"],
        second.json()["probabilities"]
    );
}

#[test]
fn concurrent_requests_each_get_their_own_answer() {
    let images: Vec<usize> = (100..116).collect();
    let want: Vec<Value> = images
        .iter()
        .map(|&i| predict(&json!({ "pixels": test_image(i) })).json()["probabilities"].clone())
        .collect();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (images, want) = (&images, &want);
            scope.spawn(move || {
                for k in 0..24 {
                    let n = (t * 5 + k) % images.len();
                    let reply = predict(&json!({ "pixels": test_image(images[n]) }));
                    assert_eq!(reply.status, 200, "{}", reply.text());
                    assert_eq!(
                        reply.json()["probabilities"],
                        want[n],
                        "image {}",
                        images[n]
                    );
                }
            });
        }
    });
}

// ---- the real binary --------------------------------------------------------------

/// `mnist-nn serve` running as a child process, killed when dropped.
pub struct ServeProcess {
    child: Child,
    /// The URL it printed, e.g. `http://127.0.0.1:40123/`.
    pub url: String,
}

impl ServeProcess {
    /// Starts `mnist-nn serve --model RUN --port 0 <extra>` and reads the URL it prints.
    pub fn start(run: &Path, extra: &[&str]) -> Self {
        Self::spawn(
            &["serve", "--model", run.to_str().unwrap(), "--port", "0"],
            extra,
        )
    }

    /// Starts `mnist-nn serve --port 0 --watch DIR` without a model, in the repository
    /// root (where the shipped configs' `data/mnist` is).
    pub fn watching(dir: &Path) -> Self {
        Self::spawn(
            &["serve", "--port", "0", "--watch", dir.to_str().unwrap()],
            &[],
        )
    }

    /// Starts the binary with `args` and `extra` in the repository root and reads the
    /// URL it prints.
    pub fn spawn(args: &[&str], extra: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .current_dir(root())
            .args(args)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mnist-nn serve starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(url) = line.trim().strip_prefix("serving ") else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "no URL printed ({line:?}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        Self {
            url: url.to_string(),
            child,
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    /// Stops the server and returns what it wrote on stderr.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        let _ = self.child.wait();
        stderr
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_command_prints_its_url_on_loopback_and_answers() {
    let server = ServeProcess::start(trained_run(), &[]);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    let info = get(&server.address(), "/api/model").json();
    assert_eq!(info["hidden"], 32);
    let reply = post(
        &server.address(),
        "/api/predict",
        "image/png",
        &std::fs::read(root().join("examples/digits/seven.png")).unwrap(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let stderr = server.stop();
    assert!(stderr.contains("test set"), "{stderr}");
}

#[test]
fn serve_without_a_test_set_still_answers_drawings() {
    // The run's own data.dir is gone (a --data that does not read is refused instead).
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-data");
    let run = tmp.path().join("run");
    copy_of_run(&run, &["config.toml", "model.bpk"]);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let moved: String = config
        .lines()
        .map(|l| match l.starts_with("dir = ") {
            true => format!("dir = {missing:?}\n"),
            false => format!("{l}\n"),
        })
        .collect();
    assert_ne!(moved, config, "{config}");
    std::fs::write(run.join("config.toml"), moved).unwrap();
    let server = ServeProcess::start(&run, &[]);
    let info = get(&server.address(), "/api/model").json();
    assert!(info["test"].is_null());
    let why = info["test_unavailable"].as_str().unwrap().to_string();
    assert!(why.contains("no-data"), "{why}");
    let message = get(&server.address(), "/api/test/random").error(503);
    assert!(message.contains("no test set to browse"), "{message}");
    let reply = post_json(
        &server.address(),
        "/api/predict",
        &json!({ "pixels": test_image(0) }),
    );
    assert_eq!(reply.status, 200);
    let stderr = server.stop();
    assert!(stderr.contains("no test set to browse"), "{stderr}");
}

#[test]
fn serve_refuses_a_missing_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_bin(
        &["serve", "--model", "no-such-run", "--port", "0"],
        tmp.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-run"), "{stderr}");
}

#[test]
fn serve_says_when_the_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = trained_run();
    let out = run_bin(
        &["serve", "--model", run.to_str().unwrap(), "--port", &port],
        &root(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}
