//! The Performance Lab: what bounded async concurrency buys over blocking
//! code, on real HTTP over loopback, with the core's patterns doing the
//! bounding.
//!
//! The lab starts an HTTP/1.1 upstream ([`server`]) on 127.0.0.1 with a
//! configured latency distribution, error rate and optional capacity, then
//! runs each [engine](engines) at each concurrency level in a child process
//! of its own (so one run's memory does not pollute the next), and reports
//! per run: requests/s, successes and errors (by cause), latency
//! p50/p95/p99/max of the successes, peak RSS, CPU time, what the server
//! saw, and the physical limit `C / L` (with latency `L` and concurrency `C`
//! no client can do better) with the engine's share of it.
//!
//! Instead of the embedded upstream, `lab run --target` runs the engines
//! against a user's own endpoints, with `L` measured by a short calibration
//! ([`lab::Calibration`]); `lab serve` runs the upstream on its own for
//! outside tools; `lab versus-wrk` puts an engine beside wrk ([`versus`]).
//!
//! `lab run` is the command line ([`lab::LabConfig`] its options); this
//! library is what the command and the tests share.
//!
//! Unlike the core and the simulations, the lab reads the wall clock and
//! sleeps for real: it measures real HTTP on real sockets. Its tests assert
//! on counts, never on times.

pub mod engines;
pub mod lab;
pub mod measure;
pub mod plot;
pub mod server;
pub mod versus;
