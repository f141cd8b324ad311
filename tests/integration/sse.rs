//! A reader of server-sent events for the tests: sends a GET on a new connection, checks
//! the answer is `text/event-stream`, and yields `(event, data)` pairs as they arrive
//! (the body comes in chunks).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

/// An open event stream.
pub struct Events {
    stream: TcpStream,
    /// Raw bytes not yet decoded from chunks.
    raw: Vec<u8>,
    /// Decoded text not yet split into events.
    text: String,
}

impl Events {
    /// Opens `path` on `address`.
    pub fn open(address: &str, path: &str) -> Self {
        let mut stream = TcpStream::connect(address).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut events = Self {
            stream,
            raw: Vec::new(),
            text: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let end = loop {
            if let Some(i) = find(&events.raw, b"\r\n\r\n") {
                break i + 4;
            }
            assert!(Instant::now() < deadline, "no answer head from {path}");
            events.read_more();
        };
        let head = String::from_utf8_lossy(&events.raw[..end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        events.raw.drain(..end);
        events
    }

    fn read_more(&mut self) {
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => panic!("the server closed the event stream"),
            Ok(n) => self.raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading the event stream: {e}"),
        }
    }

    /// Moves whole chunks from `raw` to `text`.
    fn decode(&mut self) {
        loop {
            let Some(line) = find(&self.raw, b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.raw[..line]).into_owned();
            let size = usize::from_str_radix(size_text.trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            if self.raw.len() < line + 2 + size + 2 {
                return;
            }
            let chunk = self.raw[line + 2..line + 2 + size].to_vec();
            self.raw.drain(..line + 2 + size + 2);
            self.text
                .push_str(&String::from_utf8(chunk).expect("UTF-8 events"));
        }
    }

    /// The next event with a name (comments and `retry:` lines skipped), waiting up to
    /// `timeout`; `None` when none came.
    pub fn next(&mut self, timeout: Duration) -> Option<(String, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            self.decode();
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if let Some(name) = name {
                    let value = serde_json::from_str(&data)
                        .unwrap_or_else(|e| panic!("event {name} is not JSON ({e}): {data}"));
                    return Some((name, value));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.read_more();
        }
    }

    /// Events until `done` says stop (included), failing after `timeout`.
    pub fn until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&str, &Value) -> bool,
    ) -> Vec<(String, Value)> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some((name, value)) = self.next(left) else {
                let names: Vec<&str> = seen
                    .iter()
                    .map(|(n, _): &(String, Value)| n.as_str())
                    .collect();
                panic!("timed out after {} events: {names:?}", seen.len());
            };
            let stop = done(&name, &value);
            seen.push((name, value));
            if stop {
                return seen;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
