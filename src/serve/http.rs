//! HTTP/1.1 on hyper and tokio: a connection is a task, not a thread, so hundreds of
//! idle or half-sent connections cost a few kilobytes each and never keep anyone else
//! from being answered. Every connection has its timeouts: a request head must arrive
//! whole within [`IDLE_TIMEOUT`] of the connection opening or of the previous answer,
//! and a body within the same time; past it the connection is closed.
//!
//! The handler sees a [`Request`] read whole (bodies are bounded by `max_body`) and
//! answers a [`Reply`]: a whole [`Response`], or a stream of server-sent events
//! ([`super::events::EventStream`]). Quick answers are given on the connection's task;
//! the rest run on tokio's blocking pool.
//!
//! A request that breaks the protocol or a limit is answered (400, 411, 413, 417, 431,
//! as JSON `{"error": "…"}`) and its connection closed; a panic in the handler is
//! answered 500 and the server goes on. The first request head of each connection is
//! checked here ([`super::head`]) so that its refusal carries a message; hyper refuses a
//! bad head later on a kept-alive connection with the same status and no body.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::events::EventStream;
use super::head::{self, Rewind};

/// Largest request head (request line and headers), in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Connections served at once, at most; the next one is answered 503 and closed. Idle
/// ones are closed after [`IDLE_TIMEOUT`], so only clients that keep sending hold a
/// place. Fewer when the process may not open that many files
/// ([`connection_cap`]).
pub const MAX_CONNECTIONS: usize = 4096;
/// Files the process keeps for itself beyond its connections (data, runs, the
/// training's checkpoints, the runtime's own).
const OTHER_FILES: usize = 256;
/// How long a client may stay silent (between requests, or within one) before its
/// connection is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
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
    /// The query string, without the `?` (empty when there is none).
    pub query: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Host` header, if any.
    pub host: Option<String>,
    /// The `Origin` header, if any.
    pub origin: Option<String>,
    /// Who sent it.
    pub peer: SocketAddr,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

/// The media type of a `Content-Type` header (`image/png` of `image/png; q=1`),
/// lower-cased; `None` without the header.
pub fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

impl Request {
    /// 415 unless the body may be read as JSON: `Content-Type` is `application/json`
    /// (with any parameters) or absent. A form posted from another site always names
    /// its own type, so it is refused here before anything reads it.
    pub fn require_json(&self) -> Result<(), Response> {
        match media_type(self.content_type.as_deref()).as_deref() {
            None | Some("application/json") => Ok(()),
            Some(other) => Err(Response::error(
                415,
                &format!(
                    "Content-Type {other} is not accepted here: send the body as \
                     application/json"
                ),
            )),
        }
    }
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

/// What a handler answers: a whole response, or a stream of server-sent events.
#[derive(Debug)]
pub enum Reply {
    /// Sent with `Content-Length`.
    Whole(Response),
    /// `text/event-stream`, sent as it comes until the client leaves.
    Events(EventStream),
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        Reply::Whole(response)
    }
}

/// Limits shared by every thread that serves the same socket.
#[derive(Debug)]
pub struct Limits {
    /// Largest request body, in bytes (413 beyond).
    pub max_body: usize,
    /// Connections open now.
    pub active: Arc<AtomicUsize>,
    /// Connections served at once ([`connection_cap`]).
    pub max_connections: usize,
}

/// What answers each request.
pub type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// Which requests are answered without leaving the connection's task (see
/// [`serve`]): ones whose answer takes microseconds and never waits.
pub type Quick = fn(&Request) -> bool;

/// The body hyper sends.
type Body = Either<Full<Bytes>, EventStream>;

/// Accepts connections on `listener` until the runtime ends, each served on its own
/// task, answering every request with `handler`. Bodies longer than `max_body` bytes are
/// refused with 413.
pub async fn serve(listener: TcpListener, handler: Arc<Handler>, quick: Quick, limits: Limits) {
    let Limits {
        max_body,
        active,
        max_connections,
    } = limits;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was
                // accepted: wait a moment rather than spin.
                eprintln!("warning: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&active, max_connections) else {
            tokio::spawn(refuse_busy(stream));
            continue;
        };
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            let _slot = slot;
            connection(stream, peer, handler, quick, max_body).await;
        });
    }
}

/// One of the connection places, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        let before = active.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(Arc::clone(active));
        (before < max).then_some(slot)
    }
}

/// Raises this process's limit of open files to what it may (its hard limit, at most
/// what [`MAX_CONNECTIONS`] needs), and returns how many connections that allows:
/// [`MAX_CONNECTIONS`], or fewer where the limit is lower (64 at the least). Where
/// there is no such limit (Windows), [`MAX_CONNECTIONS`].
pub fn connection_cap() -> usize {
    open_file_limit()
        .saturating_sub(OTHER_FILES)
        .clamp(64, MAX_CONNECTIONS)
}

/// The limit of open files, raised first as far as the hard limit allows (up to what
/// [`MAX_CONNECTIONS`] needs); 64 + [`OTHER_FILES`] where it cannot be read.
#[cfg(unix)]
fn open_file_limit() -> usize {
    let want = (MAX_CONNECTIONS + OTHER_FILES) as libc::rlim_t;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 64 + OTHER_FILES;
        }
        if limit.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want.min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        limit.rlim_cur
    };
    usize::try_from(soft).unwrap_or(usize::MAX)
}

/// No per-process limit of open sockets to raise: as many as [`MAX_CONNECTIONS`] needs.
#[cfg(not(unix))]
fn open_file_limit() -> usize {
    MAX_CONNECTIONS + OTHER_FILES
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn refuse_busy(mut stream: TcpStream) {
    let busy = Response::error(503, "too many connections; try again");
    let _ = tokio::time::timeout(LINGER_TIME, stream.write_all(&encode(&busy))).await;
}

/// Serves one connection: its first head checked here, then hyper.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<Handler>,
    quick: Quick,
    max_body: usize,
) {
    let _ = stream.set_nodelay(true);
    let first = tokio::time::timeout(IDLE_TIMEOUT, head::read_first(&mut stream, MAX_HEAD_BYTES));
    let prefix = match first.await {
        Err(_) | Ok(Err(head::Stop::Gone)) => return,
        Ok(Err(head::Stop::Refuse(status, message))) => {
            let _ = tokio::time::timeout(
                IDLE_TIMEOUT,
                stream.write_all(&encode(&Response::error(status, &message))),
            )
            .await;
            head::linger(stream, LINGER_BYTES, LINGER_TIME).await;
            return;
        }
        Ok(Ok(prefix)) => prefix,
    };
    let io = TokioIo::new(Rewind::new(prefix, stream));
    let service = hyper::service::service_fn(move |request| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Infallible>(respond(request, peer, handler, quick, max_body).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, service)
        .await;
}

/// Reads the request's body within the limits, asks the handler, and turns its reply
/// into hyper's response.
async fn respond(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    handler: Arc<Handler>,
    quick: Quick,
    max_body: usize,
) -> hyper::Response<Body> {
    let (parts, body) = request.into_parts();
    let keep_alive = wants_keep_alive(&parts);
    if parts.headers.contains_key(hyper::header::TRANSFER_ENCODING) {
        return refusal(
            411,
            "send the body with a Content-Length (no Transfer-Encoding)",
        );
    }
    let declared = header(&parts.headers, hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if declared > max_body as u64 {
        drain(body).await;
        return refusal(
            413,
            &format!("the request body is {declared} bytes; the limit is {max_body}"),
        );
    }
    let read = tokio::time::timeout(IDLE_TIMEOUT, Limited::new(body, max_body).collect());
    let body = match read.await {
        // Bytes → Vec takes the buffer over without a copy when it is the only owner.
        Ok(Ok(collected)) => Vec::from(collected.to_bytes()),
        Ok(Err(e)) => return refusal(400, &format!("cannot read the request body: {e}")),
        Err(_) => return refusal(408, "the request body did not arrive in time"),
    };
    let request = Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        content_type: header(&parts.headers, hyper::header::CONTENT_TYPE),
        host: header(&parts.headers, hyper::header::HOST),
        origin: header(&parts.headers, hyper::header::ORIGIN),
        peer,
        body,
    };
    // A quick answer (a page file, one image through the network) is given on this
    // task: handing it to another thread would cost more than it does. The rest may
    // read files or run a whole batch, and goes to the blocking pool so that it never
    // holds up the connections this thread serves.
    let answered = if (quick)(&request) {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&request))).map_err(|_| ())
    } else {
        tokio::task::spawn_blocking(move || handler(&request))
            .await
            .map_err(|_| ())
    };
    match answered {
        Ok(Reply::Whole(response)) => whole(response, keep_alive),
        Ok(Reply::Events(stream)) => events(stream),
        Err(_) => whole(Response::error(500, "internal error (see the log)"), false),
    }
}

/// Whether the client keeps the connection: HTTP/1.1 unless told to close, HTTP/1.0
/// only when told to keep it.
fn wants_keep_alive(parts: &hyper::http::request::Parts) -> bool {
    let connection = header(&parts.headers, hyper::header::CONNECTION)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let tokens: Vec<&str> = connection.split(',').map(str::trim).collect();
    if parts.version == hyper::Version::HTTP_11 {
        !tokens.contains(&"close")
    } else {
        tokens.contains(&"keep-alive")
    }
}

fn header(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// Reads and drops what the client still sends of a refused body, for a while.
async fn drain(mut body: Incoming) {
    let drained = async {
        let mut n = 0;
        while n < LINGER_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => n += frame.data_ref().map_or(0, Bytes::len),
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drained).await;
}

/// A refusal, after which the connection is closed.
fn refusal(status: u16, message: &str) -> hyper::Response<Body> {
    whole(Response::error(status, message), false)
}

/// The headers every answer carries.
fn common_headers(headers: &mut HeaderMap, content_type: &str) {
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("content-type", content_type);
    set("cache-control", "no-store");
    set("x-content-type-options", "nosniff");
}

fn whole(response: Response, keep_alive: bool) -> hyper::Response<Body> {
    let mut answer = hyper::Response::new(Either::Left(Full::new(Bytes::from(response.body))));
    *answer.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = answer.headers_mut();
    common_headers(headers, response.content_type);
    headers.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static(if keep_alive { "keep-alive" } else { "close" }),
    );
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    answer
}

fn events(stream: EventStream) -> hyper::Response<Body> {
    let mut answer = hyper::Response::new(Either::Right(stream));
    common_headers(answer.headers_mut(), "text/event-stream");
    answer
}

/// A response as bytes on the wire, for the answers given before hyper takes the
/// connection (a refused first head, or no place left); the connection then closes.
fn encode(response: &Response) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        response.status,
        hyper::StatusCode::from_u16(response.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
        response.content_type,
        response.body.len(),
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    bytes
}
