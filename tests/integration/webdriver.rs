//! A small W3C WebDriver client for the browser test: starts `chromedriver`, opens a
//! headless Chromium session, and sends it commands as JSON over HTTP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http;

/// Set in CI, where Chromium and chromedriver are installed: without them the browser
/// test then fails rather than being skipped.
pub const REQUIRE_BROWSER: &str = "MNIST_NN_REQUIRE_BROWSER";

/// The first of `names` found on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|p| p.is_file())
}

/// `(chromedriver, chromium)`, or `None` (with a loud message) when either is missing
/// and the browser is not required.
pub fn tools() -> Option<(PathBuf, PathBuf)> {
    let driver = on_path(&["chromedriver"]);
    let browser = on_path(&["chromium", "chromium-browser", "google-chrome"]);
    match (driver, browser) {
        (Some(d), Some(b)) => Some((d, b)),
        (d, b) => {
            let missing = format!(
                "chromedriver {}, chromium {} (Debian: apt-get install chromium chromium-driver)",
                if d.is_some() { "found" } else { "missing" },
                if b.is_some() { "found" } else { "missing" },
            );
            if std::env::var_os(REQUIRE_BROWSER).is_some() {
                panic!("the browser test is required here ({REQUIRE_BROWSER} is set): {missing}");
            }
            eprintln!("SKIPPING the browser test: {missing}");
            None
        }
    }
}

/// A running chromedriver, killed when dropped.
pub struct Driver {
    child: Child,
    address: String,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it is ready.
    pub fn start(chromedriver: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            let ready = std::net::TcpStream::connect(&driver.address).is_ok()
                && http::get(&driver.address, "/status").json()["value"]["ready"] == true;
            if ready {
                return driver;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not get ready on {}",
                driver.address
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A headless Chromium session with its own profile in `profile` and a
    /// `width × height` window.
    pub fn session(&self, chromium: &Path, profile: &Path, width: u32, height: u32) -> Session<'_> {
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let reply = call(&self.address, "POST", "/session", &capabilities);
        let id = reply["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {reply}"))
            .to_string();
        Session { driver: self, id }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command; its `value`, or a test failure with the driver's message.
fn call(address: &str, method: &str, path: &str, body: &Value) -> Value {
    let bytes = if method == "POST" {
        body.to_string().into_bytes()
    } else {
        Vec::new()
    };
    let reply = http::request(
        address,
        method,
        path,
        &[("Content-Type", "application/json; charset=utf-8")],
        &bytes,
    );
    let value = reply.json()["value"].clone();
    assert_eq!(reply.status, 200, "{method} {path}: {value}");
    value
}

/// A browser session, closed (with its browser) when dropped.
pub struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    fn command(&self, method: &str, what: &str, body: &Value) -> Value {
        call(
            &self.driver.address,
            method,
            &format!("/session/{}/{what}", self.id),
            body,
        )
    }

    /// Opens `url`.
    pub fn navigate(&self, url: &str) {
        self.command("POST", "url", &json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.command(
            "POST",
            "execute/sync",
            &json!({ "script": script, "args": args }),
        )
    }

    /// Performs input actions (W3C "Perform Actions").
    pub fn actions(&self, actions: Value) {
        self.command("POST", "actions", &json!({ "actions": actions }));
    }

    /// The viewport as a PNG.
    pub fn screenshot(&self) -> Vec<u8> {
        let text = self.command("GET", "screenshot", &Value::Null);
        base64(text.as_str().expect("base64 text"))
    }

    /// The whole page as a PNG, at most `max_height` CSS pixels of it: the window is
    /// made as tall as the page for the picture, then given its size back.
    pub fn full_page_screenshot(&self, max_height: u32) -> Vec<u8> {
        let rect = self.command("GET", "window/rect", &Value::Null);
        let height = self.execute(
            "return Math.min(arguments[0], document.documentElement.scrollHeight) \
               + window.outerHeight - window.innerHeight;",
            &[json!(max_height)],
        );
        self.command(
            "POST",
            "window/rect",
            &json!({ "width": rect["width"], "height": height }),
        );
        self.next_frames();
        let png = self.screenshot();
        self.command(
            "POST",
            "window/rect",
            &json!({ "width": rect["width"], "height": rect["height"] }),
        );
        png
    }

    /// Returns once the page has drawn two more frames (a resize's layout and what the
    /// page draws on the next animation frame).
    pub fn next_frames(&self) {
        self.execute(
            "return new Promise((done) => \
               requestAnimationFrame(() => requestAnimationFrame(() => done(true))));",
            &[],
        );
    }

    /// A left click at `(x, y)` CSS pixels of the viewport.
    pub fn click_at(&self, x: f64, y: f64) {
        self.actions(json!([{
            "type": "pointer", "id": "mouse",
            "parameters": { "pointerType": "mouse" },
            "actions": [
                { "type": "pointerMove", "duration": 0, "origin": "viewport",
                  "x": x.round() as i64, "y": y.round() as i64 },
                { "type": "pointerDown", "button": 0 },
                { "type": "pointerUp", "button": 0 },
            ],
        }]));
    }

    /// Polls `script` until it returns true; fails with `what` after `limit`.
    pub fn wait_for(&self, script: &str, what: &str, limit: Duration) {
        assert!(self.poll(script, limit), "timed out waiting for {what}");
    }

    /// Polls `script` until it returns true (then true) or `limit` has passed (false).
    pub fn poll(&self, script: &str, limit: Duration) -> bool {
        let started = Instant::now();
        while self.execute(script, &[]) != Value::Bool(true) {
            if started.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = http::request(
            &self.driver.address,
            "DELETE",
            &format!("/session/{}", self.id),
            &[],
            &[],
        );
    }
}

/// Standard base64 (RFC 4648, with padding) to bytes.
pub fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", char::from(c)),
        }
    };
    let symbols: Vec<u8> = text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(symbols.len() * 3 / 4);
    for group in symbols.chunks(4) {
        let bits = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | value(c) << (18 - 6 * i));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    out
}
