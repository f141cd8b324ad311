//! Server-sent events: a [`Hub`] that a producer (the training loop) publishes to once
//! per event, and that fans each event out to every viewer's [`EventStream`]. An event
//! is written as text once and shared; a viewer that falls [`QUEUE`] events behind is
//! dropped (its browser reconnects and is sent the replay), so a slow or stalled viewer
//! never holds the producer up.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// Events a viewer may fall behind by before it is dropped.
pub const QUEUE: usize = 1024;
/// Viewers of one hub at once; the next is refused (503).
pub const MAX_VIEWERS: usize = 256;

/// The body of a `text/event-stream` answer: events as they are sent, until the
/// producer or the hub drops this viewer.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<Bytes>,
}

impl EventStream {
    /// A stream, and the sender that feeds it; `backlog` events can wait in it.
    pub fn channel(backlog: usize) -> (mpsc::Sender<Bytes>, Self) {
        let (tx, rx) = mpsc::channel(backlog.max(1));
        (tx, Self { rx })
    }
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|next| next.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// One event as it goes on the wire: `event: NAME`, `data: JSON`, a blank line.
pub fn encode(name: &str, data: &impl serde::Serialize) -> Bytes {
    let json = serde_json::to_string(data)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

/// How many of an event kind a late viewer is sent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every one so far (e.g. each epoch's figures).
    All,
    /// The last `n`.
    Recent(usize),
    /// Only the latest.
    Latest,
}

/// A producer's viewers, and what a new viewer is sent before the live events.
#[derive(Debug, Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    viewers: Vec<mpsc::Sender<Bytes>>,
    /// Per event name, in the order names were first published: what to replay.
    replay: Vec<(String, Keep, VecDeque<Bytes>)>,
}

impl Hub {
    /// Sends `data` as event `name` to every viewer, and keeps it for later viewers as
    /// `keep` says.
    pub fn publish(&self, name: &str, keep: Keep, data: &impl serde::Serialize) {
        let event = encode(name, data);
        let mut inner = self.lock();
        let at = match inner.replay.iter().position(|(n, _, _)| n == name) {
            Some(at) => at,
            None => {
                inner.replay.push((name.to_string(), keep, VecDeque::new()));
                inner.replay.len() - 1
            }
        };
        let kept = &mut inner.replay[at].2;
        kept.push_back(event.clone());
        let limit = match keep {
            Keep::All => usize::MAX,
            Keep::Recent(n) => n.max(1),
            Keep::Latest => 1,
        };
        while kept.len() > limit {
            kept.pop_front();
        }
        // A full or closed queue: that viewer is dropped.
        inner.viewers.retain(|v| v.try_send(event.clone()).is_ok());
    }

    /// Forgets what a new viewer would be sent (a new run starts); viewers stay.
    pub fn clear(&self) {
        self.lock().replay.clear();
    }

    /// A new viewer: the kept events first, then everything published after. `None`
    /// when [`MAX_VIEWERS`] are watching already.
    pub fn subscribe(&self) -> Option<EventStream> {
        let mut inner = self.lock();
        inner.viewers.retain(|v| !v.is_closed());
        if inner.viewers.len() >= MAX_VIEWERS {
            return None;
        }
        let backlog: usize = inner.replay.iter().map(|(_, _, k)| k.len()).sum();
        let (tx, stream) = EventStream::channel(backlog + QUEUE);
        let _ = tx.try_send(Bytes::from_static(b"retry: 1000\n\n"));
        for (_, _, kept) in &inner.replay {
            for event in kept {
                let _ = tx.try_send(event.clone());
            }
        }
        inner.viewers.push(tx);
        Some(stream)
    }

    /// Viewers connected now.
    pub fn viewers(&self) -> usize {
        let mut inner = self.lock();
        inner.viewers.retain(|v| !v.is_closed());
        inner.viewers.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while publishing leaves nothing half-done that matters here.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
