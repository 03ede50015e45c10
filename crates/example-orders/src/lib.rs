//! A user's own service under simulation, end to end: an orders API
//! ([`server`], hyper 1) and its resilient client ([`client`]: circuit
//! breaker, retry with a budget and jitter, rate limiter, a deadline per
//! call), and the [`sim`] that runs both, unchanged, on turmoil's network
//! under async-patterns-sim's faults.
//!
//! The walkthrough (sweep, replay, shrink, a planted bug caught) is in the
//! crate's `README.md`; this page is the recipe.
//!
//! # The recipe: code a simulation can run
//!
//! 1. **Your HTTP stack, unchanged.** The server is an axum `Router`
//!    ([`server::OrdersServer::router`]): production serves it with
//!    `axum::serve`, the simulation with
//!    `async_patterns_sim::net::http::serve_local`. The client sends
//!    through hyper-util's pooled `Client`, whatever its connector
//!    ([`client::OrdersClient::new`]): `HttpConnector` in production,
//!    `async_patterns_sim::net::http::client()` over turmoil in the
//!    simulation. No trait of our own, no `cfg`: one `cargo test` builds
//!    and runs both paths (`tests/sim.rs`, `tests/loopback.rs`).
//! 2. **Time is tokio's.** The client's patterns run on
//!    `async_patterns_tokio::TokioTimer`, the server sleeps with
//!    `tokio::time`: real time in production, turmoil's virtual time in the
//!    simulation. Nothing reads `std::time::Instant` (the `clippy.toml`
//!    bans it).
//! 3. **Randomness is seeded by the caller.** The retry jitter's seed is a
//!    field of [`client::ClientConfig`] with no default:
//!    `async_patterns_tokio::entropy_seed()` in production, the run's seed
//!    in the simulation. The flaky server's draws come from
//!    [`server::ServerConfig::seed`].
//! 4. **Durable state lives outside the process.** The server holds a
//!    clone of its [`server::OrderStore`]; the simulation creates the store
//!    outside the host, so a crash loses connections and requests in
//!    flight but not the orders, as with a real database.
//! 5. **Spawning stays on the host.** In the simulation every task is a
//!    `spawn_local` on the host's `LocalSet` (serve_local's connections,
//!    the client's pooled connections through `SpawnLocal`, the scenario's
//!    own calls): a crashed host's `tokio::spawn`ed tasks are dropped in an
//!    order set by the whole process, and a parallel sweep then replays
//!    some seeds differently.
//! 6. **Behaviour is observable.** Server and client report what they do
//!    to an observer ([`server::ServerEvent`], [`client::ClientEvent`]):
//!    logs in production, the trace and the invariants' record in the
//!    simulation.
//! 7. **Bugs can be planted.** [`client::Sabotage`] switches on a
//!    deliberately broken behaviour; the scenario turns it on under
//!    `--sabotage`, and the meta-test shows the invariants catch it.

pub mod client;
pub mod server;
pub mod sim;
