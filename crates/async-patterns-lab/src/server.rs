//! The embedded upstream: an HTTP/1.1 server on 127.0.0.1 (hyper), on an
//! ephemeral port, on its own tokio runtime in a background thread.
//!
//! Every request waits out a latency drawn from a [`Latency`] distribution,
//! fails with a 500 at the configured error rate, and, with a capacity,
//! queues for one of that many slots (the core's semaphore). Latency and
//! error draws depend only on the seed and the request's arrival number, so
//! a run's injected errors are the same on every run. The server counts
//! what it sees (requests, errors it injected, connections accepted, most
//! requests in flight at once) so the lab can report it beside the client's
//! view.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_patterns::rng::SplitMix64;
use async_patterns::semaphore::Semaphore;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

/// The shape of the server's latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Every request takes the mean.
    Fixed,
    /// Uniform between half and one and a half times the mean.
    Uniform,
    /// 95% of requests take 0.75× the mean, 5% take 5.75× it (a tail 7.7×
    /// the common case; the mean is still the mean).
    LongTail,
}

/// A latency distribution: a shape around a mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Its shape.
    pub shape: Shape,
    /// Its mean (what the physical limit C / L uses).
    pub mean: Duration,
}

impl Latency {
    /// The latency of the `n`th request under `seed`.
    pub fn sample(&self, seed: u64, n: u64) -> Duration {
        let u = unit(seed, 2 * n);
        let factor = match self.shape {
            Shape::Fixed => 1.0,
            Shape::Uniform => 0.5 + u,
            Shape::LongTail if u < 0.95 => 0.75,
            Shape::LongTail => 5.75,
        };
        self.mean.mul_f64(factor)
    }
}

/// A uniform draw in [0, 1) from the seed's stream number `id`.
fn unit(seed: u64, id: u64) -> f64 {
    (SplitMix64::derive(seed, id).next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// How the upstream behaves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// Per-request latency.
    pub latency: Latency,
    /// The share of requests answered with a 500, in [0, 1].
    pub error_rate: f64,
    /// At most this many requests served at once; the rest queue.
    pub capacity: Option<usize>,
    /// Seeds the latency and error draws.
    pub seed: u64,
}

/// What the server saw since it started or was last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Requests received.
    pub requests: u64,
    /// Requests answered with an injected 500.
    pub errors_injected: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// Most requests in flight at once (received, not yet answered).
    pub max_in_flight: usize,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    connections: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A running upstream; stopped when dropped.
pub struct Server {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts the server on 127.0.0.1, on a port the OS picks, with
    /// `threads` runtime workers.
    pub fn start(config: ServerConfig, threads: usize) -> std::io::Result<Server> {
        Self::start_on(config, threads, 0)
    }

    /// Starts the server on 127.0.0.1:`port` (0: a port the OS picks), with
    /// `threads` runtime workers. A port in use is an error
    /// (`AddrInUse`).
    pub fn start_on(config: ServerConfig, threads: usize, port: u16) -> std::io::Result<Server> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("lab-upstream")
            .enable_all()
            .build()?;
        // A deep accept backlog: 500 clients connecting at once must not
        // overflow it (a dropped SYN costs a 1 s retransmit).
        let listener = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
            socket.listen(4096)
        })?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let shared = counters.clone();
        let thread = std::thread::Builder::new()
            .name("lab-upstream-accept".into())
            .spawn(move || runtime.block_on(accept(listener, config, shared, stopped)))?;
        Ok(Server {
            addr,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// What it saw.
    pub fn stats(&self) -> ServerStats {
        let c = &self.counters;
        ServerStats {
            requests: c.requests.load(Ordering::SeqCst),
            errors_injected: c.errors.load(Ordering::SeqCst),
            connections: c.connections.load(Ordering::SeqCst),
            max_in_flight: c.max_in_flight.load(Ordering::SeqCst),
        }
    }

    /// Zeroes the counts, between runs. The request numbering the latency
    /// and error draws use restarts too, so every run sees the same draws.
    pub fn reset(&self) {
        let c = &self.counters;
        c.requests.store(0, Ordering::SeqCst);
        c.errors.store(0, Ordering::SeqCst);
        c.connections.store(0, Ordering::SeqCst);
        c.max_in_flight
            .store(c.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    counters: Arc<Counters>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let capacity = config
        .capacity
        .map(|c| Arc::new(Semaphore::new(c).expect("capacity checked by the caller")));
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or similar: keep serving the
                // connections already open, and try again shortly rather
                // than spin on the error.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        counters.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        let (counters, capacity) = (counters.clone(), capacity.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                handle(request, config, counters.clone(), capacity.clone())
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One request in flight at the server, from arrival until dropped.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> Self {
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    _request: Request<hyper::body::Incoming>,
    config: ServerConfig,
    counters: Arc<Counters>,
    capacity: Option<Arc<Semaphore>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = counters.requests.fetch_add(1, Ordering::SeqCst);
    // Counted out on every path, also when hyper drops this handler
    // because the client went away.
    let in_flight = InFlight::enter(&counters);
    let _slot = match &capacity {
        Some(c) => Some(c.clone().acquire_owned().await),
        None => None,
    };
    let delay = config.latency.sample(config.seed, n);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let fail = unit(config.seed, 2 * n + 1) < config.error_rate;
    drop(in_flight);
    let response = if fail {
        counters.errors.fetch_add(1, Ordering::SeqCst);
        Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Full::new(Bytes::from_static(b"injected error\n")))
    } else {
        Response::builder().body(Full::new(Bytes::from_static(b"ok\n")))
    };
    Ok(response.expect("a valid response"))
}
