//! A small HTTP/1.1 server on the standard library's sockets, enough for the page and its
//! JSON API: one thread per connection (at most [`MAX_CONNECTIONS`] at once),
//! keep-alive, request bodies sized by `Content-Length` only, and a bound on everything
//! a client sends (head, body, idle time), so that no request can make the process
//! allocate without limit, hang a thread for ever, or panic.
//!
//! A request that breaks the protocol or a limit is answered (400, 411, 413, 417, 431,
//! as JSON `{"error": "…"}`) and its connection closed; a panic in the handler is
//! answered 500 and the server goes on.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Largest request head (request line and headers), in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers one request may carry.
const MAX_HEADERS: usize = 64;
/// Connections served at once; the next one is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client may stay silent (between requests, or within one) before its
/// connection is closed, and how long a write to it may block.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// After refusing a request, how much of what the client still sends is read and
/// dropped (so that the refusal reaches it rather than a connection reset), and for how
/// long.
const LINGER_BYTES: usize = 4 << 20;
const LINGER_TIME: Duration = Duration::from_secs(1);

/// A request, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The target's path, without the query string.
    pub path: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

/// A response, sent with `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Further headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &impl serde::Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status,
                content_type: "application/json",
                headers: Vec::new(),
                body,
            },
            Err(e) => Self::error(500, &format!("cannot write the answer as JSON: {e}")),
        }
    }

    /// An error as JSON: `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::json!({ "error": message })
                .to_string()
                .into_bytes(),
        }
    }
}

/// What answers each request.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// Accepts connections on `listener` for ever, each on its own thread, answering every
/// request with `handler`. Bodies longer than `max_body` bytes are refused with 413.
pub fn serve(listener: TcpListener, handler: Arc<Handler>, max_body: usize) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was
                // accepted: wait a moment rather than spin.
                eprintln!("warning: cannot accept a connection: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let slot = Slot::take(&active);
        if slot.is_none() {
            let _ = stream.set_write_timeout(Some(LINGER_TIME));
            let busy = Response::error(503, "too many connections; try again");
            let _ = stream.write_all(&encode(&busy, false));
            continue;
        }
        let handler = Arc::clone(&handler);
        let spawned = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                let _slot = slot;
                serve_connection(stream, &*handler, max_body);
            });
        if let Err(e) = spawned {
            eprintln!("warning: cannot start a thread for a connection: {e}");
        }
    }
}

/// One of the [`MAX_CONNECTIONS`] places, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>) -> Option<Slot> {
        let before = active.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(Arc::clone(active));
        (before < MAX_CONNECTIONS).then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a connection stops: the client went away, or a request was refused.
enum Stop {
    /// Closed, timed out or reset: nobody to answer.
    Gone,
    /// Answer this, then close.
    Refuse(u16, String),
}

/// Serves the requests of one connection until it closes, times out or errs.
fn serve_connection(mut stream: TcpStream, handler: &Handler, max_body: usize) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    // Bytes read but not used yet: a partial head, or the start of the next request.
    let mut pending = Vec::new();
    loop {
        match read_request(&mut stream, &mut pending, max_body) {
            Ok((request, keep_alive)) => {
                let response = catch_unwind(AssertUnwindSafe(|| handler(&request)))
                    .unwrap_or_else(|_| Response::error(500, "internal error (see the log)"));
                if stream.write_all(&encode(&response, keep_alive)).is_err() || !keep_alive {
                    return;
                }
            }
            Err(Stop::Gone) => return,
            Err(Stop::Refuse(status, message)) => {
                let _ = stream.write_all(&encode(&Response::error(status, &message), false));
                linger(stream);
                return;
            }
        }
    }
}

/// Half-closes the connection and reads what the client still sends, for a while, so
/// that the answer already written is not lost to a reset.
fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(LINGER_TIME));
    let mut sink = [0u8; 16 * 1024];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// Reads more bytes into `pending`; `Gone` when the connection closed, timed out or
/// failed.
fn fill(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Result<(), Stop> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(Stop::Gone),
            Ok(n) => {
                pending.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Stop::Gone),
        }
    }
}

/// The length of the complete head at the start of `pending`, if it is there yet.
fn head_length(pending: &[u8]) -> Result<Option<usize>, Stop> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::Request::new(&mut headers).parse(pending) {
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Stop::Refuse(
            431,
            format!("more than {MAX_HEADERS} headers"),
        )),
        Err(e) => Err(Stop::Refuse(400, format!("malformed HTTP request: {e}"))),
    }
}

/// What the head says about the body and the connection.
struct Head {
    method: String,
    target: String,
    content_type: Option<String>,
    content_length: usize,
    expect_continue: bool,
    keep_alive: bool,
}

fn parse_head(head: &[u8]) -> Result<Head, Stop> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    request
        .parse(head)
        .map_err(|e| Stop::Refuse(400, format!("malformed HTTP request: {e}")))?;
    let bad = |message: String| Stop::Refuse(400, message);
    let mut content_length: Option<usize> = None;
    let mut content_type = None;
    let mut expect_continue = false;
    let mut connection = String::new();
    for header in request.headers.iter() {
        let name = header.name.to_ascii_lowercase();
        let value = || {
            std::str::from_utf8(header.value)
                .map(str::trim)
                .map_err(|_| bad(format!("the {} header is not UTF-8", header.name)))
        };
        match name.as_str() {
            "content-length" => {
                let text = value()?;
                let n: usize = text
                    .parse()
                    .map_err(|_| bad(format!("Content-Length {text:?} is not a byte count")))?;
                if content_length.is_some_and(|m| m != n) {
                    return Err(bad("two different Content-Length headers".into()));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => {
                return Err(Stop::Refuse(
                    411,
                    "send the body with a Content-Length (no Transfer-Encoding)".into(),
                ));
            }
            "content-type" => content_type = Some(value()?.to_string()),
            "expect" => {
                let text = value()?;
                if !text.eq_ignore_ascii_case("100-continue") {
                    return Err(Stop::Refuse(417, format!("cannot meet Expect: {text}")));
                }
                expect_continue = true;
            }
            "connection" => connection = value()?.to_ascii_lowercase(),
            _ => {}
        }
    }
    let tokens: Vec<&str> = connection.split(',').map(str::trim).collect();
    // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told
    // to keep it.
    let keep_alive = if request.version == Some(1) {
        !tokens.contains(&"close")
    } else {
        tokens.contains(&"keep-alive")
    };
    Ok(Head {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or("/").to_string(),
        content_type,
        content_length: content_length.unwrap_or(0),
        expect_continue,
        keep_alive,
    })
}

/// Reads one whole request (head and body) from the connection, and whether to keep
/// the connection open after answering it.
fn read_request(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    max_body: usize,
) -> Result<(Request, bool), Stop> {
    let head_len = loop {
        if let Some(n) = head_length(pending)? {
            break n;
        }
        if pending.len() >= MAX_HEAD_BYTES {
            return Err(Stop::Refuse(
                431,
                format!("the request head is over {MAX_HEAD_BYTES} bytes"),
            ));
        }
        fill(stream, pending)?;
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(Stop::Refuse(
            431,
            format!("the request head is over {MAX_HEAD_BYTES} bytes"),
        ));
    }
    let head = parse_head(&pending[..head_len])?;
    pending.drain(..head_len);
    if head.content_length > max_body {
        return Err(Stop::Refuse(
            413,
            format!(
                "the request body is {} bytes; the limit is {max_body}",
                head.content_length
            ),
        ));
    }
    if head.expect_continue {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| Stop::Gone)?;
    }
    while pending.len() < head.content_length {
        fill(stream, pending)?;
    }
    let body: Vec<u8> = pending.drain(..head.content_length).collect();
    let path = head
        .target
        .split_once('?')
        .map_or(head.target.as_str(), |(path, _query)| path)
        .to_string();
    Ok((
        Request {
            method: head.method,
            path,
            content_type: head.content_type,
            body,
        },
        head.keep_alive,
    ))
}

/// The response as bytes on the wire.
fn encode(response: &Response, keep_alive: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    bytes
}

/// The reason phrase of each status this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}
