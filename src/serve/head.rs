//! The first request head of a connection, read and checked before hyper takes the
//! connection, so that a malformed or oversized one is refused with a message naming
//! the problem (hyper would answer the same status with an empty body). What was read
//! is then handed to hyper first ([`Rewind`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Most headers one request may carry.
const MAX_HEADERS: usize = 64;

/// Why the first head is not handed on.
#[derive(Debug)]
pub enum Stop {
    /// Closed or reset before a whole head arrived: nobody to answer.
    Gone,
    /// Answer this status and message, then close.
    Refuse(u16, String),
}

/// Reads until the first request head is complete, checks it, and returns every byte
/// read (the head, and whatever followed it).
pub async fn read_first(stream: &mut TcpStream, max_head: usize) -> Result<Vec<u8>, Stop> {
    let mut pending = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let head_len = complete_head(&pending)?;
        if let Some(n) = head_len {
            if n > max_head {
                return Err(too_large(max_head));
            }
            return Ok(pending);
        }
        if pending.len() >= max_head {
            return Err(too_large(max_head));
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(Stop::Gone),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

fn too_large(max_head: usize) -> Stop {
    Stop::Refuse(431, format!("the request head is over {max_head} bytes"))
}

/// The length of the complete head at the start of `pending`, once it is all there and
/// passes [`check`].
fn complete_head(pending: &[u8]) -> Result<Option<usize>, Stop> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(pending) {
        Ok(httparse::Status::Complete(n)) => check(request.headers).map(|()| Some(n)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Stop::Refuse(
            431,
            format!("more than {MAX_HEADERS} headers"),
        )),
        Err(e) => Err(Stop::Refuse(400, format!("malformed HTTP request: {e}"))),
    }
}

/// Refuses what this server does not take: a body without a byte count, a length that
/// is not a number or two different lengths, and an `Expect` other than
/// `100-continue`.
fn check(headers: &[httparse::Header<'_>]) -> Result<(), Stop> {
    let bad = |message: String| Stop::Refuse(400, message);
    let mut length: Option<u64> = None;
    for header in headers {
        let value = std::str::from_utf8(header.value)
            .map(str::trim)
            .map_err(|_| bad(format!("the {} header is not UTF-8", header.name)))?;
        match header.name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| bad(format!("Content-Length {value:?} is not a byte count")))?;
                if length.is_some_and(|m| m != n) {
                    return Err(bad("two different Content-Length headers".into()));
                }
                length = Some(n);
            }
            "transfer-encoding" => {
                return Err(Stop::Refuse(
                    411,
                    "send the body with a Content-Length (no Transfer-Encoding)".into(),
                ));
            }
            "expect" if !value.eq_ignore_ascii_case("100-continue") => {
                return Err(Stop::Refuse(417, format!("cannot meet Expect: {value}")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Half-closes the connection and reads what the client still sends, for a while, so
/// that the answer already written is not lost to a reset.
pub async fn linger(mut stream: TcpStream, max_bytes: usize, time: Duration) {
    let _ = stream.shutdown().await;
    let drained = async {
        let mut sink = [0u8; 16 * 1024];
        let mut n = 0;
        while n < max_bytes {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(k) => n += k,
            }
        }
    };
    let _ = tokio::time::timeout(time, drained).await;
}

/// A stream that first gives back bytes already read from it.
#[derive(Debug)]
pub struct Rewind {
    prefix: Vec<u8>,
    at: usize,
    stream: TcpStream,
}

impl Rewind {
    /// `stream`, with `prefix` to be read again first.
    pub fn new(prefix: Vec<u8>, stream: TcpStream) -> Self {
        Self {
            prefix,
            at: 0,
            stream,
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
