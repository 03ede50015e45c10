//! The simulation: the real server and client on turmoil's network, under
//! the faults async-patterns-sim draws, with the invariants a user of an
//! orders API cares about.
//!
//! Hosts: `server` (the [`OrdersServer`], flaky: 5% of requests answered
//! `503`, 2-40 ms of work each) over a [`MemoryStore`] created outside the
//! host, so its orders survive a crash; `client` (one [`OrdersClient`])
//! placing [`ORDERS`] logical orders, one every 20-120 ms, each its own
//! task, each with its own idempotency key. Faults may hit the
//! `client<->server` link and crash `server`.
//!
//! Invariants:
//!
//! * **exactly-once**: every logical order is stored at most once, and an
//!   order the client reported placed is stored exactly once, under the id
//!   it was told. (An order the client gave up on may or may not be
//!   stored: the client cannot know, and says so.)
//! * **bounded-latency**: every call ends, within its deadline plus
//!   [`SLACK`].
//! * **breaker-respected**: no attempt goes on the wire while the client's
//!   breaker is open (read from the order of events: a send after the
//!   breaker opened and before it half-opened).
//! * **linearizable**: the same promise as exactly-once, with nothing
//!   written about duplicates: each logical order is an append of one mark
//!   to its item's key (done when the client reports it placed, of unknown
//!   outcome when it gave up), and a read of each item's marks from the
//!   final store (one per order stored) must fit some order of them.
//!
//! After the last fault, the recovery phase asks that **orders go through
//! again**: an order is stored within [`RECOVERY_BOUND`] of the heal. Its
//! probe places orders of its own (items `probe-N`, which the invariants
//! above leave out) with a fresh client, since the workload may be over
//! before the last fault ends.
//!
//! Sabotages (`--sabotage NAME`) plant one real bug each in the client:
//! `retry-without-idempotency-key`, `no-deadline`, `bypass-open-breaker`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_patterns::circuit_breaker::BreakerState;
use async_patterns_sim::history::Op;
use async_patterns_sim::history::models::{KeyValue, KvOp, KvOut};
use async_patterns_sim::net::http::{client as http_client, serve_local};
use async_patterns_sim::{
    Ctx, Eventually, History, Linearizable, Point, RunInfo, Sabotage, Scenario, Targets, Violation,
    now,
};

use crate::client::{self, ClientConfig, ClientEvent, OrdersClient, Placed};
use crate::server::{MemoryStore, NewOrder, OrdersServer, ServerConfig, ServerEvent};

/// Logical orders per run.
pub const ORDERS: u64 = 40;
/// The service's port.
pub const PORT: u16 = 8080;
/// How far past its deadline a call may end: the simulation's clock moves
/// in 2 ms ticks, so a timer fires up to a tick late; two ticks.
pub const SLACK: Duration = Duration::from_millis(4);

/// How long after the last fault an order must be stored again: one call
/// of the probe's (its 2 s deadline covers its retries), the probe's pause
/// between calls, and two ticks of slack.
pub const RECOVERY_BOUND: Duration = Duration::from_millis(2_000 + 100 + 4);
/// The probe's pause between its orders.
const PROBE_SPACING: Duration = Duration::from_millis(100);

/// What an order's append adds to its item's key in the history.
const MARK: &str = "+";

/// The orders scenario (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default)]
pub struct Orders;

/// What a run records for the checks.
#[derive(Debug, Default)]
pub struct Record {
    /// The server's database: created outside the host, so it survives a
    /// crash.
    store: MemoryStore,
    /// Each logical order: when it started, its key, and how it ended.
    calls: BTreeMap<u64, Call>,
    /// When each order was stored, by id (from the server's events).
    stored_at: BTreeMap<u64, Duration>,
    /// The breaker's state as the client's events tell it, and each send
    /// seen while it was open.
    breaker: Option<BreakerState>,
    open_sends: Vec<(Duration, String)>,
    /// Each logical order as an append of a mark to its item's key.
    history: History<KvOp, KvOut>,
}

#[derive(Debug)]
struct Call {
    key: String,
    item: String,
    started: Duration,
    ended: Option<(Duration, Result<Placed, String>)>,
}

const SABOTAGES: [Sabotage; 3] = [
    Sabotage {
        name: "retry-without-idempotency-key",
        about: "each retry sends a fresh idempotency key: a retry after a lost answer stores the order twice",
    },
    Sabotage {
        name: "no-deadline",
        about: "attempts get a fresh timeout each and retries ignore the call's deadline",
    },
    Sabotage {
        name: "bypass-open-breaker",
        about: "an attempt the breaker refuses is sent anyway",
    },
];

impl Scenario for Orders {
    type Record = Record;

    fn name(&self) -> &str {
        "orders"
    }

    fn about(&self) -> &str {
        "40 idempotent POST /orders through retry + breaker + limiter + deadline against a flaky \
         hyper server: exactly-once storage, every call within its deadline, nothing sent while \
         the breaker is open"
    }

    fn points(&self) -> Vec<Point> {
        vec![
            Point::reachable(async_patterns::points::BREAKER_OPENED, "the breaker opened"),
            Point::reachable(
                async_patterns::points::BREAKER_CLOSED_AGAIN,
                "the breaker closed again after probes",
            ),
            Point::reachable(
                async_patterns::points::LIMITER_MADE_WAIT,
                "the rate limiter made an order wait",
            ),
            Point::reachable(
                async_patterns::points::RETRY_BUDGET_EXHAUSTED,
                "the retry budget ran dry",
            ),
            Point::reachable(async_patterns::points::RETRY_GAVE_UP, "a retrier gave up"),
        ]
    }

    fn eventually(&self) -> Vec<Eventually<Record>> {
        vec![Eventually::new(
            "orders go through again",
            "an order is stored after the last fault",
            RECOVERY_BOUND,
            |r: &Record, heal| r.stored_at.values().any(|at| *at >= heal),
        )]
    }

    fn probe(&self, ctx: &Ctx<Record>) -> Option<Pin<Box<dyn Future<Output = ()>>>> {
        // A client of its own (the workload's may be done, its breaker
        // open), placing an order every PROBE_SPACING until one is stored.
        let ctx = ctx.clone();
        Some(Box::pin(async move {
            let config = ClientConfig::new(ctx.rng(3).next_u64());
            let base = format!("http://server:{PORT}");
            let client = match OrdersClient::new(http_client(), &base, config) {
                Ok(client) => client,
                Err(e) => return ctx.log(format!("probe: no client: {e}")),
            };
            for i in 0.. {
                let key = format!("probe-{i}");
                let order = NewOrder {
                    item: key.clone(),
                    quantity: 1,
                };
                match client.place(&key, &order).await {
                    Ok(placed) => ctx.log(format!("probe: {key} placed as order {}", placed.id)),
                    Err(e) => ctx.log(format!("probe: {key} gave up: {e}")),
                }
                tokio::time::sleep(PROBE_SPACING).await;
            }
        }))
    }

    fn targets(&self) -> Targets {
        Targets::new().link("client", "server").host(
            "server",
            "the order store (a database outside the host): orders and their keys survive; \
             connections and requests in flight are lost",
        )
    }

    fn sabotages(&self) -> Vec<Sabotage> {
        SABOTAGES.to_vec()
    }

    fn build(&self, ctx: &Ctx<Record>, sim: &mut turmoil::Sim<'_>) {
        let store = ctx.record().store.clone();
        let server_seed = ctx.rng(2).next_u64();
        let c = ctx.clone();
        sim.host("server", move || {
            let (store, ctx) = (store.clone(), c.clone());
            async move {
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
                let config = ServerConfig {
                    fail_per_mille: 50,
                    work: (Duration::from_millis(2), Duration::from_millis(40)),
                    seed: server_seed,
                };
                let router = OrdersServer::new(store, config)
                    .with_observer(move |event| {
                        if let ServerEvent::Stored { id, .. } = event {
                            ctx.record().stored_at.insert(*id, now());
                        }
                        ctx.log(format!("server: {event}"));
                    })
                    .router();
                // The production router, served on turmoil's listener with
                // each connection on the host's LocalSet.
                serve_local(listener, router).await?;
                Ok(())
            }
        });

        let ctx = ctx.clone();
        sim.client("client", async move {
            let mut config = ClientConfig::new(ctx.seed());
            config.sabotage = client::Sabotage {
                fresh_key_per_attempt: ctx.sabotaged("retry-without-idempotency-key"),
                no_deadline: ctx.sabotaged("no-deadline"),
                bypass_open_breaker: ctx.sabotaged("bypass-open-breaker"),
            };
            let watch = ctx.clone();
            // hyper-util's Client, as in production, over turmoil's TCP.
            let base = format!("http://server:{PORT}");
            let client = OrdersClient::new(http_client(), &base, config)?
                .with_observer(move |event| observe(&watch, event));
            let client = Arc::new(client);
            let mut gaps = ctx.rng(1);
            let mut calls = Vec::new();
            for i in 0..ORDERS {
                let key = format!("order-{i}");
                let order = NewOrder {
                    item: format!("book-{i}"),
                    quantity: 1 + (i % 3) as u32,
                };
                ctx.record().calls.insert(
                    i,
                    Call {
                        key: key.clone(),
                        item: order.item.clone(),
                        started: now(),
                        ended: None,
                    },
                );
                let op = ctx
                    .record()
                    .history
                    .call(1, KvOp::Append(order.item.clone(), MARK.into()));
                let (client, ctx) = (client.clone(), ctx.clone());
                // On the host's LocalSet, like the server's connections
                // (determinism rule 7).
                calls.push(tokio::task::spawn_local(async move {
                    let result = client.place(&key, &order).await;
                    let result = match result {
                        Ok(placed) => {
                            ctx.log(format!(
                                "client: {key} placed as order {} (attempt {}, {})",
                                placed.id,
                                placed.attempt,
                                if placed.created { "201" } else { "200" }
                            ));
                            Ok(placed)
                        }
                        Err(e) => {
                            ctx.log(format!("client: {key} gave up: {e}"));
                            Err(e.to_string())
                        }
                    };
                    let mut record = ctx.record();
                    let call = record.calls.get_mut(&i).expect("registered above");
                    let took = now() - call.started;
                    let placed = result.is_ok();
                    if placed {
                        ctx.latency(took);
                    }
                    call.ended = Some((now(), result));
                    // Gave up: unknown (the server may have stored it).
                    if placed {
                        record.history.ok(op, KvOut::Done);
                    }
                }));
                tokio::time::sleep(Duration::from_millis(gaps.between(20, 120))).await;
            }
            for call in calls {
                call.await?;
            }
            Ok(())
        });
    }

    fn check(&self, _: &RunInfo, record: &Record) -> Vec<Violation> {
        let mut v = Vec::new();
        let deadline = ClientConfig::new(0).deadline;
        let stored = record.store.orders();
        for (i, call) in &record.calls {
            let mine: Vec<_> = stored
                .iter()
                .filter(|o| o.order.item == call.item)
                .collect();
            if mine.len() > 1 {
                let ids: Vec<String> = mine
                    .iter()
                    .map(|o| format!("{} under key {}", o.id, o.key))
                    .collect();
                let at = record.stored_at.get(&mine[1].id).copied();
                let mut violation = Violation::new(
                    "exactly-once",
                    format!(
                        "order {i} ({}) stored {} times: {}",
                        call.key,
                        mine.len(),
                        ids.join(", ")
                    ),
                );
                if let Some(at) = at {
                    violation = violation.at(at);
                }
                v.push(violation);
            }
            match &call.ended {
                None => v.push(Violation::new(
                    "bounded-latency",
                    format!("order {i} ({}) never ended", call.key),
                )),
                Some((ended, result)) => {
                    if let Ok(placed) = result
                        && !mine.iter().any(|o| o.id == placed.id)
                    {
                        v.push(
                            Violation::new(
                                "exactly-once",
                                format!(
                                    "order {i} ({}) was reported placed as order {}, which the \
                                     store does not hold for it",
                                    call.key, placed.id
                                ),
                            )
                            .at(*ended),
                        );
                    }
                    let took = *ended - call.started;
                    if took > deadline + SLACK {
                        v.push(
                            Violation::new(
                                "bounded-latency",
                                format!(
                                    "order {i} ({}) took {took:?}, past its {deadline:?} deadline \
                                     and {SLACK:?} of slack",
                                    call.key
                                ),
                            )
                            .at(*ended),
                        );
                    }
                }
            }
        }
        for (at, what) in &record.open_sends {
            v.push(Violation::new("breaker-respected", what.clone()).at(*at));
        }
        // The final store, read after the run: one mark per order stored.
        let mut history = record.history.clone();
        let end = history.end() + 1;
        for call in record.calls.values() {
            let n = stored.iter().filter(|o| o.order.item == call.item).count();
            let marks = (n > 0).then(|| MARK.repeat(n));
            history.push(Op::returned(
                0,
                KvOp::Get(call.item.clone()),
                end,
                end,
                KvOut::Value(marks),
            ));
        }
        v.extend(Linearizable::new(KeyValue).check(&history));
        v
    }
}

/// The client's observer in the simulation: every event to the trace, the
/// breaker's state and the sends made while it was open to the record.
fn observe(ctx: &Ctx<Record>, event: &ClientEvent<'_>) {
    ctx.log(format!("client: {event}"));
    let mut record = ctx.record();
    match event {
        ClientEvent::Breaker(t) => record.breaker = Some(t.to),
        ClientEvent::Sending { key, attempt, .. } => {
            if let Some(BreakerState::Open { until }) = record.breaker {
                record.open_sends.push((
                    now(),
                    format!("{key} attempt {attempt} was sent while the breaker was open (until {until:?})"),
                ));
            }
        }
        ClientEvent::Failed { .. } => {}
    }
}
