//! `mnist-nn serve`: a web page to train the network and watch it learn (Train), see
//! the seed's equations compute on real digits (Equations), draw a digit for a trained
//! network (Draw), and follow the runs of a directory (Runs); and the JSON API behind
//! it.
//!
//! A run given at start ([`LoadedRun::load`], the same loading as `predict`) or opened
//! later is shared by every connection; drawings go through the same
//! [`crate::preprocess::preprocess`] as `predict`'s files. The routes are listed in
//! `src/serve/api.rs`; the page's files are in `src/serve/page/`.

mod access;
mod api;
pub mod app;
mod control;
pub mod equations;
mod events;
mod head;
mod http;
mod input;
pub mod loaded;
mod page;
mod training;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

pub use api::LIMITS;
pub use app::{App, Options, View};
pub use loaded::LoadedRun;

use crate::error::{Error, Result};

/// The default address: this machine only.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The default port.
pub const DEFAULT_PORT: u16 = 8080;

/// Threads that answer the slower requests at once, per server thread; more wait.
const HANDLER_THREADS: usize = 8;
/// Threads that take connections and answer the quick requests.
const SERVER_THREADS: usize = 4;

/// A server that is listening.
#[derive(Debug)]
pub struct Server {
    address: SocketAddr,
    thread: JoinHandle<()>,
    app: Arc<App>,
}

/// Listens on `host:port` (port 0: any free port) and serves `run` on the Draw view,
/// with the default [`Options`], from a background thread.
pub fn start(run: LoadedRun, host: &str, port: u16) -> Result<Server> {
    let name = run_name(&run);
    let options = Options {
        start_view: View::Draw,
        ..Options::default()
    };
    start_app(App::new(options, Some((name, Arc::new(run)))), host, port)
}

/// The name a loaded run is shown by: its directory's.
pub fn run_name(run: &LoadedRun) -> String {
    let info = run.info(LIMITS);
    info.run.file_name().map_or_else(
        || info.run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Listens on `host:port` and serves `app` from a background thread.
pub fn start_app(app: App, host: &str, port: u16) -> Result<Server> {
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
    let listener = std::net::TcpListener::bind(&address).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let app = Arc::new(app);
    let shared = Arc::clone(&app);
    let handler: Arc<http::Handler> = Arc::new(move |request| api::handle(&shared, request));
    // One single-threaded runtime per thread, all accepting on the same socket: a
    // connection stays on the thread that accepted it, so no thread wakes another to
    // hand work over (a multi-threaded runtime cost ~20% more CPU per request).
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let max_connections = http::connection_cap();
    let mut handles = Vec::new();
    for k in 0..SERVER_THREADS {
        let listener = listener.try_clone().map_err(listen_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(HANDLER_THREADS)
            .thread_name("http")
            .enable_all()
            .build()
            .map_err(listen_error)?;
        let handler = Arc::clone(&handler);
        let active = Arc::clone(&active);
        let thread = std::thread::Builder::new()
            .name(format!("http-{k}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let limits = http::Limits {
                                max_body: input::MAX_BODY_BYTES,
                                active,
                                max_connections,
                            };
                            http::serve(listener, handler, api::quick, limits).await
                        }
                        Err(e) => eprintln!("error: cannot listen: {e}"),
                    }
                });
            })
            .map_err(listen_error)?;
        handles.push(thread);
    }
    let thread = handles.remove(0);
    Ok(Server {
        address: bound,
        thread,
        app,
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

    /// Stops the page's training, if one is running, as Ctrl-C stops a command-line
    /// run (after its batch, with a checkpoint), and waits until it has saved.
    pub fn stop_training(&self) {
        if self.app.trainer.stop().is_ok() {
            while self.app.trainer.status().state.is_active() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }

    /// Blocks for as long as the server runs (until the process ends).
    pub fn wait(self) {
        let _ = self.thread.join();
    }
}
