//! Your HTTP stack in the simulation, unchanged: a hyper-util client that
//! connects over turmoil's TCP, and a way to serve an axum `Router` (or any
//! tower service of HTTP requests) on turmoil's listener. Feature `http`.
//!
//! | you run in production | in the simulation | why not the obvious one |
//! |---|---|---|
//! | `hyper_util::client::legacy::Client` with `HttpConnector` | [`client()`]: the same `Client`, over [`Connector`] | `HttpConnector` opens real sockets |
//! | `axum::serve(listener, router)` | [`serve_local(listener, router)`](serve_local) | `axum::serve` spawns each connection with `tokio::spawn` and selects without `biased;`: both break the determinism rules (7 and 5) |
//! | `hyper_util::rt::TokioExecutor` | [`SpawnLocal`] | a crashed host's `tokio::spawn`ed tasks are dropped in an order set by the whole process |
//!
//! Every adapter here keeps the rules of the [crate docs](crate): tasks on
//! the host's `LocalSet` (dropped in spawn order when it crashes), time from
//! tokio's paused clock (the pool's idle timer included: without
//! `pool_timer`, hyper-util's pool reads the wall clock), and connect errors
//! that name the host (`connecting to server:8080: ...`). Checked by
//! `tests/http.rs`: an axum server and a hyper-util client under crashes and
//! partitions, every seed run twice in a parallel sweep.
//!
//! ```
//! # async fn doc() -> std::io::Result<()> {
//! use async_patterns_sim::net::http;
//! use axum::{Router, routing::get};
//!
//! // In a host's closure: your router, unchanged.
//! let router: Router = Router::new().route("/ping", get(|| async { "pong" }));
//! let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 8080)).await?;
//! http::serve_local(listener, router).await
//! # }
//! // In a client: hyper-util's Client, over turmoil.
//! let client = async_patterns_sim::net::http::client::<http_body_util::Empty<bytes::Bytes>>();
//! // client.get("http://server:8080/ping".parse().unwrap()).await
//! # let _ = client;
//! ```
//!
//! **reqwest** cannot take a connector (its transport is built in; turmoil's
//! own tracker says so), so a reqwest client cannot run on turmoil. Put the
//! calls behind a small trait of your own (one `send(request) -> response`
//! method), implemented with reqwest in production and with [`client()`] in
//! the simulation; or build your client on hyper-util's `Client` (reqwest's
//! own foundation) with async-patterns' tower layers, which run unchanged
//! in both.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

/// hyper's executor for a simulated host: each future on the host's
/// `LocalSet` (`tokio::task::spawn_local`), so a crash drops them in spawn
/// order (determinism rule 7). Give it wherever hyper or hyper-util asks
/// for an executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpawnLocal;

impl<F: Future + 'static> hyper::rt::Executor<F> for SpawnLocal {
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

/// A hyper-util connector over turmoil's TCP: `http://HOST:PORT/...`
/// connects to the simulated host `HOST` (port 80 when the URI has none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Connector;

/// A connection [`Connector`] made: turmoil's TCP stream, as hyper reads
/// and writes it.
#[derive(Debug)]
pub struct SimStream(TokioIo<turmoil::net::TcpStream>);

impl Connection for SimStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SimStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = SimStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<SimStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("{uri}: no host"))
            })?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(80);
            let stream = turmoil::net::TcpStream::connect((host.as_str(), port))
                .await
                // turmoil's error says only the address: say the host, and
                // what happened.
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("connecting to {host}:{port}: {}", e.kind()),
                    )
                })?;
            Ok(SimStream(TokioIo::new(stream)))
        })
    }
}

/// hyper-util's pooled `Client` over turmoil: [`Connector`], the
/// [`SpawnLocal`] executor, and tokio's timer for the pool (virtual time:
/// idle connections expire after hyper-util's default 90 s of *simulated*
/// time). `B` is the request body type. For other settings, start from
/// [`client_builder`].
pub fn client<B>() -> Client<Connector, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    client_builder().build(Connector)
}

/// hyper-util's client `Builder` with what the simulation needs set: the
/// [`SpawnLocal`] executor and tokio's (virtual) timers for the pool and
/// the connections. Finish with `.build(Connector)`.
pub fn client_builder() -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(SpawnLocal);
    builder
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .timer(hyper_util::rt::TokioTimer::new());
    builder
}

/// Serves `service` on `listener` until accepting fails (that error is
/// returned): each connection is HTTP/1.1 (hyper-util's server connection,
/// keep-alive on) run on the host's `LocalSet` ([`SpawnLocal`]). An axum
/// `Router` is such a service, unchanged; so is anything
/// `tower::Service<http::Request<Incoming>>` that is `Clone`.
pub async fn serve_local<S, B>(listener: turmoil::net::TcpListener, service: S) -> io::Result<()>
where
    S: tower_service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::task::spawn_local(async move {
            // A connection broken mid-request (a crash, a partition) is the
            // client's to retry; nothing to report here.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
