//! `mnist-nn serve`: a web page on which you draw a digit and watch the trained network
//! read it, and the JSON API behind the page.
//!
//! The run is loaded once at start-up ([`LoadedRun::load`], the same loading as
//! `predict`) and shared by every connection; drawings go through the same
//! [`crate::preprocess::preprocess`] as `predict`'s files. The routes are listed in
//! `src/serve/api.rs`; the page's files are in `src/serve/page/`.

mod api;
mod http;
mod input;
pub mod loaded;
mod page;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

pub use api::LIMITS;
pub use loaded::LoadedRun;

use crate::error::{Error, Result};

/// The default address: this machine only.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The default port.
pub const DEFAULT_PORT: u16 = 8080;

/// A server that is listening.
#[derive(Debug)]
pub struct Server {
    address: SocketAddr,
    acceptor: JoinHandle<()>,
}

/// Listens on `host:port` (port 0: any free port) and serves `run` from a background
/// thread.
pub fn start(run: LoadedRun, host: &str, port: u16) -> Result<Server> {
    // An IPv6 address is written in brackets before the port.
    let address = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let listen_error = |source| Error::Listen {
        address: address.clone(),
        source,
    };
    let listener = TcpListener::bind(&address).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    let run = Arc::new(run);
    let handler: Arc<http::Handler> = Arc::new(move |request| api::handle(&run, request));
    let acceptor = std::thread::Builder::new()
        .name("http-accept".into())
        .spawn(move || http::serve(listener, handler, input::MAX_BODY_BYTES))
        .map_err(listen_error)?;
    Ok(Server {
        address: bound,
        acceptor,
    })
}

impl Server {
    /// The address it listens on, with the actual port.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// Blocks for as long as the server runs (until the process ends).
    pub fn wait(self) {
        let _ = self.acceptor.join();
    }
}
