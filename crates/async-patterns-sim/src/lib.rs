//! Deterministic simulation testing for your own async clients and servers.
//!
//! [turmoil] gives the primitives: simulated hosts, TCP, virtual time,
//! partitions. This crate is the layer above them that a team needs to
//! trust its retries, breakers and deadlines under faults:
//!
//! * a [`Scenario`]: your hosts (turmoil hosts and clients running your real
//!   code), the [`Targets`] faults may hit, and your invariants, checked
//!   after every run and reported as typed [`Violation`]s;
//! * fault plans over those targets ([`FaultPlan`]: partitions both ways or
//!   one way, holds, loss, slow links, crashes with restart), drawn
//!   swarm-style from the seed ([`Swarm`], with the density you set) or
//!   written by hand as JSON and validated against the declarations;
//! * every seed run twice ([`run_checked`]): the second run stops at the
//!   first event that differs, and the seed fails with both lines
//!   ([`Divergence`]);
//! * sweeps on every core ([`sweep()`]), versioned per-seed JSON records and
//!   their merge across machines, replay with the full trace and a timeline
//!   plot with each violation marked, shrinking that keeps the failure it
//!   started from to a 1-minimal plan ([`shrink::shrink_keeping`]) and the
//!   proptest route ([`shrink::plans`]), a regressions folder that
//!   `cargo test` replays;
//! * sabotages you register (deliberately broken versions of your code) so
//!   the meta-test can show your invariants catch them;
//! * two ways in: [`cli::main`], a whole command line (`list`, `sweep`,
//!   `replay`, `shrink`, `merge`) in a binary of ten lines, and
//!   [`testing::check_seeds`] for `cargo test`, whose failure message is the
//!   shrunk plan and the line that replays it.
//!
//! # A scenario
//!
//! ```
//! use std::time::Duration;
//! use async_patterns_sim::{Ctx, RunInfo, Scenario, Targets, Violation, now};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! /// A client sends 5 requests to an echo server, each under a 1 s
//! /// timeout, through a link that faults may cut, hold or make lossy.
//! struct Echo;
//!
//! #[derive(Default)]
//! struct Record {
//!     answered: u32,
//!     failed: u32,
//! }
//!
//! impl Scenario for Echo {
//!     type Record = Record;
//!     fn name(&self) -> &str {
//!         "echo"
//!     }
//!     fn about(&self) -> &str {
//!         "5 echoes under faults: each ends once, answered or failed"
//!     }
//!     fn targets(&self) -> Targets {
//!         Targets::new()
//!             .link("client", "server")
//!             .host("server", "nothing: it keeps no state")
//!     }
//!     fn build(&self, ctx: &Ctx<Record>, sim: &mut turmoil::Sim<'_>) {
//!         let server = ctx.clone();
//!         // A host's closure runs again after each crash: clone inside it.
//!         sim.host("server", move || {
//!             let ctx = server.clone();
//!             async move {
//!                 let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 7)).await?;
//!                 loop {
//!                     let (mut s, _) = listener.accept().await?;
//!                     let ctx = ctx.clone();
//!                     // spawn_local, not tokio::spawn: rule 7 below.
//!                     tokio::task::spawn_local(async move {
//!                         let mut b = [0; 1];
//!                         if s.read_exact(&mut b).await.is_ok() {
//!                             ctx.log(format!("server: echoes {}", b[0]));
//!                             let _ = s.write_all(&b).await;
//!                         }
//!                     });
//!                 }
//!             }
//!         });
//!         let ctx = ctx.clone();
//!         sim.client("client", async move {
//!             for i in 0..5u8 {
//!                 let start = now();
//!                 let echo = async {
//!                     let mut s = turmoil::net::TcpStream::connect(("server", 7)).await?;
//!                     s.write_all(&[i]).await?;
//!                     let mut b = [0; 1];
//!                     s.read_exact(&mut b).await?;
//!                     Ok::<_, std::io::Error>(b[0])
//!                 };
//!                 match tokio::time::timeout(Duration::from_secs(1), echo).await {
//!                     Ok(Ok(b)) if b == i => {
//!                         ctx.record().answered += 1;
//!                         ctx.latency(now() - start);
//!                     }
//!                     _ => ctx.record().failed += 1,
//!                 }
//!                 ctx.log(format!("client: request {i} done"));
//!             }
//!             Ok(())
//!         });
//!     }
//!     fn check(&self, _: &RunInfo, r: &Record) -> Vec<Violation> {
//!         let mut v = Vec::new();
//!         if r.answered + r.failed != 5 {
//!             v.push(Violation::new(
//!                 "each request ends once",
//!                 format!("{} answered + {} failed", r.answered, r.failed),
//!             ));
//!         }
//!         v
//!     }
//! }
//!
//! // In a test: 8 seeds, each under its own swarm plan, each run twice.
//! async_patterns_sim::testing::check_seeds(&Echo, 0..8);
//! ```
//!
//! A binary over it (`fn main() -> ExitCode { cli::main(&[&Echo]) }`) then
//! has `sweep --seeds 1000`, `replay echo --seed 17 --trace --plot t.svg`,
//! `shrink echo --seed 17` and `merge`.
//!
//! # The determinism rules
//!
//! A run must be a pure function of (scenario, seed, plan). The harness
//! checks it (each seed runs twice and the traces must be equal), but the
//! rules are yours to keep:
//!
//! 1. **Time is virtual.** Read it with [`now`] (or tokio's `Instant`, which
//!    turmoil pauses), never `std::time::Instant::now()` or
//!    `SystemTime::now()`. Sleep with `tokio::time`.
//! 2. **Randomness comes from the seed.** Draw from [`Ctx::rng`] (one stream
//!    per purpose), never `rand::thread_rng()` or an entropy-seeded RNG. In
//!    production, seed from entropy instead; make that choice a parameter of
//!    your code, not a constant inside it.
//! 3. **No hash-ordered iteration.** `HashMap`/`HashSet` iterate in an order
//!    set by a random seed per process: use `BTreeMap`/`BTreeSet`, or an
//!    `IndexMap`, wherever the order can reach the trace or a decision.
//! 4. **No real threads or blocking.** Everything runs on the simulation's
//!    thread: `spawn_blocking`, `std::thread::spawn` and blocking I/O escape
//!    it (and `spawn_blocking` hangs a turmoil run).
//! 5. **No unseeded choices.** `tokio::select!` picks among ready branches at
//!    random unless it is `biased;`.
//! 6. **The network is turmoil's.** Use `turmoil::net` (or code generic over
//!    the stream type) inside the simulation; a real socket escapes it.
//! 7. **Spawn a host's tasks with `tokio::task::spawn_local`.** When a host
//!    crashes, turmoil drops its tasks; tasks from `tokio::spawn` are dropped
//!    in an order set by task ids counted across the whole process (so by the
//!    other simulations a parallel sweep runs beside it), and each dropped
//!    socket sends a FIN or RST that draws from the simulation's RNG. A
//!    `spawn_local` task lives in the host's `LocalSet`, dropped in spawn
//!    order. (Found by the run-twice check in `crates/example-orders`: 4-7 of
//!    500 seeds differed in a sweep, and never in a replay.) If your server
//!    spawns through an executor (hyper's `rt::Executor`), hand it one that
//!    calls `spawn_local` in the simulation.
//!
//! # Sabotages: a hook in your own code
//!
//! [`Ctx::sabotaged`] is only seen by the scenario, so a sabotage that
//! breaks *your* code needs a hook in it: a field of your client's or
//! server's config that the scenario sets when the run is under it (e.g.
//! `ClientConfig { sabotage: Sabotage { fresh_key_per_attempt: true, .. }, .. }`
//! in `crates/example-orders`), defaulting to off. The meta-test,
//! `testing::Checker::new(&s).sabotage("name").once().caught(0..64)`, then
//! proves your invariants catch that bug; `--no-sabotage` replays a saved
//! sabotaged plan against the code as it is.
//!
//! # Debug builds
//!
//! `cargo test` builds unoptimized, and turmoil and tokio, where a
//! simulation spends nearly all its time, then run many times slower (a
//! user's 32 seeds run twice: 25.7 s, against under 1 s in release). In
//! your *workspace root* `Cargo.toml` (cargo ignores profiles anywhere
//! else):
//!
//! ```toml
//! [profile.dev.package.turmoil]
//! opt-level = 2
//!
//! [profile.dev.package.tokio]
//! opt-level = 2
//! ```
//!
//! On this project's workspace they took a fresh clone's `cargo test` from
//! 237 s to 177 s, its simulation tests from 46 s to 9 s;
//! `[profile.dev.package."*"]` (every dependency, which still never reaches
//! your workspace members) made it 452 s.
//!
//! # Your HTTP stack
//!
//! With the `http` feature, [`net::http`](crate::net) runs an axum `Router`
//! ([`serve_local`](crate::net)) and hyper-util's pooled `Client`
//! (`net::http::client()`) on turmoil unchanged.
//!
//! [`CLIPPY_TOML`] is a `clippy.toml` that bans the items above that clippy
//! can see (the wall clock, `spawn_blocking`, `tokio::spawn`,
//! `std::thread::spawn`, `HashMap`/`HashSet`, an unbiased `tokio::select!`):
//! write it into your simulation crate
//! (`std::fs::write("clippy.toml", async_patterns_sim::CLIPPY_TOML)`, or copy
//! `crates/async-patterns-sim/clippy.toml`) so `cargo clippy` enforces the
//! rules. (Unseeded RNGs from other crates, such as `rand::thread_rng`, add
//! yourself: clippy rejects a path to a crate you do not depend on.)
//!
//! [turmoil]: https://docs.rs/turmoil

pub mod assert;
pub mod cli;
pub mod coverage;
pub mod disk;
pub mod engine;
pub mod explore;
pub mod fault;
pub mod history;
pub mod liveness;
pub mod moves;
pub mod net;
pub mod plot;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod site;
pub mod sweep;
pub mod testing;
pub mod trace;

pub use assert::{Point, point};
pub use disk::{Disk, DiskProfile};
pub use fault::{Fault, FaultKind, FaultPlan, PlanError, Sabotage, Swarm, Targets};
pub use history::{History, Linearizable};
pub use liveness::Eventually;
pub use run::{Outcome, run, run_checked};
pub use scenario::{AnyScenario, Ctx, Info, Network, RunInfo, Scenario, now};
pub use site::{Moment, Site, SiteAction, SiteFault};
pub use sweep::{SeedRecord, sweep};
pub use trace::{Divergence, Trace, Violation, hash_trace};

/// The seeded generator [`Ctx::rng`] hands out (SplitMix64: `next_u64`,
/// `between(lo, hi)`), re-exported so a scenario need not depend on the
/// core crate to name it.
pub use async_patterns::rng::SplitMix64;

/// A `clippy.toml` banning what breaks determinism in a simulation (the
/// wall clock, `spawn_blocking`, hash-ordered collections, unbiased
/// `tokio::select!`): copy it into your simulation crate.
pub const CLIPPY_TOML: &str = include_str!("../clippy.toml");
