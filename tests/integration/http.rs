//! A small HTTP/1.1 client for the tests, on std's TCP sockets: requests written as
//! bytes, answers read by their `Content-Length` (or chunks), so that malformed
//! requests can be sent too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (fails the test, showing the body, if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// The `error` message of a JSON error answer, after checking the status.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "status of: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {}", self.text()))
            .to_string()
    }
}

/// Connects to `address` (`host:port`) with timeouts that keep a broken server from
/// hanging the test.
pub fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("{address}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// The bytes of a request with a body and `Content-Length`.
pub fn encode(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One request on a new connection.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    send_raw(address, &encode(method, path, headers, body))
}

/// `GET path`.
pub fn get(address: &str, path: &str) -> Reply {
    request(address, "GET", path, &[], &[])
}

/// `POST path` with a content type.
pub fn post(address: &str, path: &str, content_type: &str, body: &[u8]) -> Reply {
    request(
        address,
        "POST",
        path,
        &[("Content-Type", content_type)],
        body,
    )
}

/// `POST path` with a JSON body.
pub fn post_json(address: &str, path: &str, value: &serde_json::Value) -> Reply {
    post(
        address,
        path,
        "application/json",
        value.to_string().as_bytes(),
    )
}

/// Writes `bytes` as they are on a new connection and reads one answer. A write that
/// fails (the server refused early and closed) still lets the answer be read.
pub fn send_raw(address: &str, bytes: &[u8]) -> Reply {
    let mut stream = connect(address);
    let _ = stream.write_all(bytes);
    let mut pending = Vec::new();
    read_reply(&mut stream, &mut pending)
}

/// Reads one answer from `stream`; `pending` holds bytes read past the previous one.
pub fn read_reply(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Reply {
    let head_end = loop {
        if let Some(i) = find(pending, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, pending, "the head");
    };
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    pending.drain(..head_end);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(stream, pending)
    } else {
        let length: usize = value("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        while pending.len() < length {
            fill(stream, pending, "the body");
        }
        pending.drain(..length).collect()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn read_chunked(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(pending, b"\r\n") {
                break i;
            }
            fill(stream, pending, "a chunk size");
        };
        let size_text = String::from_utf8_lossy(&pending[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        pending.drain(..line_end + 2);
        while pending.len() < size + 2 {
            fill(stream, pending, "a chunk");
        }
        body.extend(pending.drain(..size));
        pending.drain(..2);
        if size == 0 {
            return body;
        }
    }
}

fn fill(stream: &mut TcpStream, pending: &mut Vec<u8>, what: &str) {
    let mut chunk = [0u8; 64 * 1024];
    let n = stream
        .read(&mut chunk)
        .unwrap_or_else(|e| panic!("reading {what} of the answer: {e}"));
    assert!(n > 0, "the connection closed before {what} of the answer");
    pending.extend_from_slice(&chunk[..n]);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
