//! A replicated key-value store whose only invariant is its history: three
//! clients append to and read three keys through a primary, under retries
//! with a per-attempt timeout; the primary copies each key's new value to a
//! backup in the background.
//!
//! No invariant here is written about duplicates or stale reads: each
//! client records what it asked and what it got in a
//! [`History`], and the run is checked for linearizability against the
//! plain key-value model ([`KeyValue`]). Appends carry a unique token, so a
//! write applied twice shows in a later read (a register write applied
//! twice would not: it is still linearizable).
//!
//! * An append is retried under the same request id (its idempotency key):
//!   the primary applies each id once and answers a repeat with the first
//!   answer. An append whose every attempt timed out has an unknown
//!   outcome: the primary may or may not have applied it.
//! * A read goes to the primary; one that gets no answer took no effect and
//!   leaves the history.
//!
//! Sabotages (each caught by the history check alone):
//! * `retry-without-key`: each attempt gets a fresh request id, so an
//!   attempt whose answer was lost or late is applied again;
//! * `read-from-backup`: reads go to the backup, which lags the primary.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use async_patterns::deadline;
use async_patterns::retry::{Jitter, Retrier, RetryPolicy};
use async_patterns_sim::history::models::{KeyValue, KvOp, KvOut};
use async_patterns_sim::plot::Lane;
use async_patterns_sim::{
    Ctx, History, Linearizable, Network, Point, RunInfo, Sabotage, Scenario, Swarm, Targets,
    Violation, now, point,
};
use async_patterns_tokio::TokioTimer;

use crate::wire::{exchange, join_all, serve};

/// The scenario.
pub struct KvStore;

const RETRY_WITHOUT_KEY: &str = "retry-without-key";
const READ_FROM_BACKUP: &str = "read-from-backup";

const CLIENTS: [&str; 3] = ["c1", "c2", "c3"];
const KEYS: [&str; 3] = ["x", "y", "z"];
const OPS_PER_CLIENT: u64 = 24;
const SPACING: Duration = Duration::from_millis(80);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(100);
const PORT: u16 = 7000;

/// Points: an append retried (what the request ids must survive), and an
/// append whose outcome nobody learnt.
const RETRIED: &str = "append retried";
const UNKNOWN: &str = "append outcome unknown";

/// What a run records: the history, and where the check blamed it.
#[derive(Default)]
pub struct Record {
    history: History<KvOp, KvOut>,
}

impl Scenario for KvStore {
    type Record = Record;

    fn name(&self) -> &str {
        "kv-store"
    }

    fn about(&self) -> &str {
        "3 clients append to and read 3 keys on a primary that copies to a backup, with retries under \
         a timeout: the history is linearizable (no invariant written about duplicates or stale reads)"
    }

    fn points(&self) -> Vec<Point> {
        vec![
            Point::sometimes(RETRIED, "an append was sent again after a timeout"),
            Point::sometimes(
                UNKNOWN,
                "every attempt of an append timed out: it may or may not have landed",
            ),
        ]
    }

    fn targets(&self) -> Targets {
        let mut t = Targets::new();
        for c in CLIENTS {
            t = t.link(c, "primary");
        }
        t.link("primary", "backup").link("c1", "backup").host(
            "backup",
            "nothing: it is filled again by the primary's next copies",
        )
    }

    fn swarm(&self) -> Swarm {
        // Every kind on every link, at most 3 at once: more leave so many
        // appends of unknown outcome that a history is out of the
        // checker's reach (each may have landed anywhere after its call).
        Swarm::over(&self.targets()).max_faults(3)
    }

    fn sabotages(&self) -> Vec<Sabotage> {
        vec![
            Sabotage {
                name: RETRY_WITHOUT_KEY,
                about: "an append's retry carries a fresh request id: one whose answer was lost is applied twice",
            },
            Sabotage {
                name: READ_FROM_BACKUP,
                about: "reads are served by the backup, which the primary updates in the background",
            },
        ]
    }

    fn network(&self, seed: u64) -> Network {
        let mut rng = async_patterns::rng::SplitMix64::derive(seed, 7);
        Network::latency_ms(rng.between(1, 3), rng.between(4, 20))
    }

    fn build(&self, ctx: &Ctx<Record>, sim: &mut turmoil::Sim<'_>) {
        let c = ctx.clone();
        sim.host("primary", move || primary(c.clone()));
        sim.host("backup", backup);
        for (c, name) in CLIENTS.iter().enumerate() {
            let ctx = ctx.clone();
            sim.client(*name, async move {
                client(ctx, c as u64 + 1).await;
                Ok(())
            });
        }
    }

    fn check(&self, _: &RunInfo, record: &Record) -> Vec<Violation> {
        Linearizable::new(KeyValue).check(&record.history)
    }

    fn lanes(&self, _: &RunInfo, record: &Record) -> Vec<Lane> {
        Linearizable::new(KeyValue).lanes(&record.history)
    }
}

/// The primary: each request id applied once, each new value copied to the
/// backup in the background (a copy carries the key's version, so a late
/// copy never overwrites a newer one).
async fn primary(ctx: Ctx<Record>) -> turmoil::Result {
    #[derive(Default)]
    struct Store {
        values: BTreeMap<String, (u64, String)>,
        applied: BTreeSet<String>,
    }
    let store = Rc::new(RefCell::new(Store::default()));
    serve(PORT, move |line| {
        let (store, ctx) = (store.clone(), ctx.clone());
        async move {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["append", id, key, value] => {
                    let copy = {
                        let mut s = store.borrow_mut();
                        if s.applied.insert((*id).to_string()) {
                            let entry = s.values.entry((*key).to_string()).or_default();
                            entry.0 += 1;
                            entry.1.push_str(value);
                            ctx.log(format!("primary: request {id} appends {value} to {key}"));
                            Some(format!("set {key} {} {}", entry.0, entry.1))
                        } else {
                            ctx.log(format!(
                                "primary: request {id} again: answered, not applied"
                            ));
                            None
                        }
                    };
                    if let Some(copy) = copy {
                        tokio::task::spawn_local(async move {
                            let _ = exchange("backup", PORT, copy).await;
                        });
                    }
                    "ok".into()
                }
                ["get", key] => value_reply(store.borrow().values.get(*key).map(|v| &v.1)),
                _ => "error".into(),
            }
        }
    })
    .await
}

/// The backup: the newest copy of each key.
async fn backup() -> turmoil::Result {
    let values: Rc<RefCell<BTreeMap<String, (u64, String)>>> = Rc::default();
    serve(PORT, move |line| {
        let values = values.clone();
        async move {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["set", key, version, value] => {
                    let version: u64 = version.parse().unwrap_or(0);
                    let mut v = values.borrow_mut();
                    let entry = v.entry((*key).to_string()).or_default();
                    if version > entry.0 {
                        *entry = (version, (*value).to_string());
                    }
                    "ok".into()
                }
                ["get", key] => value_reply(values.borrow().get(*key).map(|v| &v.1)),
                _ => "error".into(),
            }
        }
    })
    .await
}

fn value_reply(value: Option<&String>) -> String {
    value.map_or_else(|| "none".into(), |v| format!("value {v}"))
}

/// One client: appends of unique tokens and reads, at random, on random
/// keys, each recorded in the history.
async fn client(ctx: Ctx<Record>, client: u64) {
    let timer = TokioTimer::new();
    let fresh_ids = ctx.sabotaged(RETRY_WITHOUT_KEY);
    let reads_from = if ctx.sabotaged(READ_FROM_BACKUP) {
        "backup"
    } else {
        "primary"
    };
    let policy = RetryPolicy::builder()
        .max_attempts(8)
        .exponential(Duration::from_millis(20), 2.0, Duration::from_millis(400))
        .jitter(Jitter::Full)
        .seed(ctx.seed())
        .build()
        .expect("a valid policy");
    let mut rng = ctx.rng(100 + client);
    let mut tasks = Vec::new();
    for n in 0..OPS_PER_CLIENT {
        tokio::time::sleep(SPACING).await;
        let key = KEYS[rng.between(0, 2) as usize];
        let append = rng.between(0, 1) == 0;
        let ctx = ctx.clone();
        let retrier = Retrier::new(policy.clone(), timer).with_id(client * 1000 + n);
        // Each operation in a task of its own: a slow one does not hold up
        // the next, so operations of one client overlap too.
        tasks.push(tokio::task::spawn_local(async move {
            let start = now();
            if append {
                let token = format!("{client}.{n};");
                let call = ctx
                    .record()
                    .history
                    .call(client, KvOp::Append(key.into(), token.clone()));
                let result = retrier
                    .run(|attempt| {
                        let id = if fresh_ids {
                            format!("{client}.{n}.{}", attempt.number)
                        } else {
                            format!("{client}.{n}")
                        };
                        point::sometimes!(RETRIED, attempt.number > 1);
                        let request = format!("append {id} {key} {token}");
                        async move {
                            match deadline::timeout(
                                &timer,
                                ATTEMPT_TIMEOUT,
                                exchange("primary", PORT, request),
                            )
                            .await
                            {
                                Ok(Ok(reply)) if reply == "ok" => Ok(()),
                                Ok(Ok(reply)) => Err(format!("answer {reply:?}")),
                                Ok(Err(e)) => Err(e),
                                Err(_) => Err("timed out".to_string()),
                            }
                        }
                    })
                    .await;
                point::sometimes!(UNKNOWN, result.is_err());
                match result {
                    Ok(()) => {
                        ctx.record().history.ok(call, KvOut::Done);
                        ctx.latency(now() - start);
                        ctx.log(format!("c{client}: append {token} to {key}: ok"));
                    }
                    // Unknown: an attempt may have landed. Left open.
                    Err(e) => ctx.log(format!("c{client}: append {token} to {key}: {e:?}")),
                }
            } else {
                let call = ctx.record().history.call(client, KvOp::Get(key.into()));
                let reply = deadline::timeout(
                    &timer,
                    ATTEMPT_TIMEOUT,
                    exchange(reads_from, PORT, format!("get {key}")),
                )
                .await;
                let value = match &reply {
                    Ok(Ok(r)) if r == "none" => Some(None),
                    Ok(Ok(r)) => r.strip_prefix("value ").map(|v| Some(v.to_string())),
                    _ => None,
                };
                match value {
                    Some(v) => {
                        ctx.log(format!(
                            "c{client}: get {key} from the {reads_from}: {}",
                            v.as_deref().unwrap_or("(none)")
                        ));
                        ctx.record().history.ok(call, KvOut::Value(v));
                        ctx.latency(now() - start);
                    }
                    // A read with no answer changed nothing.
                    None => ctx.record().history.failed(call),
                }
            }
        }));
    }
    join_all(tasks).await;
    ctx.log(format!("c{client}: done at {:?}", now()));
}
