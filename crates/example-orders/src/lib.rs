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
//! 1. **The network is a parameter.** The server takes any [`net::Accept`]
//!    (a source of streams), the client any [`net::Connect`] (a way to open
//!    one); both hand out any tokio `AsyncRead + AsyncWrite` stream, and
//!    hyper speaks HTTP over it through `TokioIo`. Production passes
//!    tokio's `TcpListener` and [`net::TcpConnect`]; the simulation
//!    implements the two traits on turmoil's `net` types ([`sim`]).
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
//! 5. **Spawning is a parameter too.** The server hands each connection
//!    to a `hyper::rt::Executor`: `TokioExecutor` in production,
//!    [`sim::SpawnLocal`] in the simulation, because a crashed host's
//!    `tokio::spawn`ed tasks are dropped in an order that depends on the
//!    whole process (see [`sim::SpawnLocal`]). The client drives its
//!    connection inside the call, so nothing it starts outlives a timeout.
//! 6. **Behaviour is observable.** Server and client report what they do
//!    to an observer ([`server::ServerEvent`], [`client::ClientEvent`]):
//!    logs in production, the trace and the invariants' record in the
//!    simulation.
//! 7. **Bugs can be planted.** [`client::Sabotage`] switches on a
//!    deliberately broken behaviour; the scenario turns it on under
//!    `--sabotage`, and the meta-test shows the invariants catch it.
//!
//! # Why a trait, and not turmoil's types under a `cfg`
//!
//! turmoil's own examples swap `tokio::net` for `turmoil::net` with a
//! `cfg` (or a feature). Then the production build and the simulation
//! build are two different programs, and the one `cargo test` builds is
//! the simulation: the real-network path is compiled only when someone
//! builds without the flag, and a CI that runs `cargo test` never runs it.
//! With the traits, one `cargo test` compiles and tests both: the
//! simulation (`tests/sim.rs`) and the same server and client on real
//! loopback TCP (`tests/loopback.rs`). The cost is two small traits and
//! one generic parameter each; hyper is already generic over its stream,
//! so nothing else changes.

pub mod client;
pub mod net;
pub mod server;
pub mod sim;
