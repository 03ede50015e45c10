//! A pipeline across two hosts: a producer streams items through the core's
//! bounded pipeline to a consumer that crashes and restarts, with
//! acknowledgements and retries (at-least-once delivery) and de-duplication
//! in the consumer's store (exactly-once output).
//!
//! The producer emits one item every 40 ms; its pipeline stage sends each
//! one (at most 4 at once, in order) and retries it with jittered backoff
//! until the consumer acknowledges it. The consumer works on an item for
//! 30 ms, writes it to its store (durable: it survives a crash) unless the
//! store already has it, and only then acknowledges. A crash between the
//! write and the acknowledgement makes the producer send the item again:
//! the store sees a duplicate and keeps one copy.
//!
//! Faults from the plan: a partition and a hold on the producer–consumer
//! link, and a crash of the consumer, bounced when the fault ends.
//!
//! Invariants, checked on every run:
//! * every item is acknowledged (nothing lost), each exactly once, in order;
//! * output equals input: the store holds every item once, with the
//!   producer's payload, and nothing else;
//! * every duplicate the consumer saw is a retry: an item arrives at most as
//!   many times as the producer sent it;
//! * the producer never has more than 4 sends in flight.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::time::Duration;

use async_patterns::deadline::timeout;
use async_patterns::pipeline::{OnError, Order, pipeline};
use async_patterns::retry::{Jitter, Retrier, RetryPolicy};
use async_patterns::rng::SplitMix64;
use async_patterns_sim::history::Op;
use async_patterns_sim::history::models::{KeyValue, KvOp, KvOut};
use async_patterns_sim::plot::{AMBER, BLUE, GREEN, Lane};
use async_patterns_sim::point::Fire;
use async_patterns_sim::{
    Ctx, Disk, Eventually, History, Linearizable, Network, Point, RunInfo, Sabotage, Scenario,
    Site, Swarm, Targets, Violation, now, point,
};
use async_patterns_tokio::TokioTimer;
use std::io::Write;
use turmoil::fs::shim::std::fs::{self, OpenOptions};

use crate::classic_swarm;
use crate::wire::{exchange, serve};

/// The scenario.
pub struct Pipeline;

/// The consumer acknowledges an item once its line is written, before it
/// is synced (it syncs every 200 ms), so a crash in between loses the item.
const ACK_BEFORE_STORE: &str = "ack-before-store";

const ITEMS: u64 = 60;
const EVERY: Duration = Duration::from_millis(40);
const IN_FLIGHT: usize = 4;
const WORK: Duration = Duration::from_millis(30);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);
const PORT: u16 = 9000;

/// What a run records, for the checks.
#[derive(Default)]
pub struct Record {
    /// The consumer's store: item -> payload, as its log on disk holds it
    /// (read back at each restart, then each item synced).
    store: BTreeMap<u64, u64>,
    /// Times the consumer (re)started and read its log.
    restarts: u32,
    /// I/O errors the consumer met (reads at recovery, writes).
    io_errors: u64,
    /// Every arrival at the consumer, duplicates included.
    arrivals: Vec<u64>,
    /// (when, item, stored now or a duplicate).
    writes: Vec<(Duration, u64, bool)>,
    /// Sends by the producer, per item.
    sends: BTreeMap<u64, u64>,
    /// Items acknowledged, in the order the pipeline delivered them, with
    /// when.
    acked: Vec<(Duration, u64)>,
    /// Items whose retries gave up (must stay empty).
    lost: Vec<(u64, String)>,
    /// The producer's sends as operations on a key-value store (a put of
    /// each item's payload under its id: done when acknowledged, unknown
    /// when its retries gave up), checked with a read of every item from
    /// the final store.
    history: History<KvOp, KvOut>,
    /// Most sends in flight at once, and now.
    max_in_flight: usize,
    in_flight: usize,
}

/// What the producer sends for `id`: a payload the store must keep intact.
fn payload(seed: u64, id: u64) -> u64 {
    SplitMix64::derive(seed, 1_000 + id).next_u64()
}

/// How long after the last fault every item may take to be acknowledged:
/// the whole stream again (60 items emitted 40 ms apart, 2.4 s, if the fault
/// held back all of it), plus an item's longest backoff (400 ms), an
/// attempt's timeout (250 ms) and the consumer's work (30 ms). The worst of
/// 1,000 seeds took 2.5 s.
const RECOVERY_BOUND: Duration = Duration::from_millis(60 * 40 + 400 + 250 + 30);

impl Scenario for Pipeline {
    type Record = Record;

    fn name(&self) -> &str {
        "pipeline"
    }

    fn about(&self) -> &str {
        "producer -> bounded pipeline -> consumer that crashes and restarts, with acks, retries and a \
         de-duplicating store: every item acked once and in order, output equals input, duplicates only \
         from retries, <= 4 sends in flight"
    }

    fn eventually(&self) -> Vec<Eventually<Record>> {
        vec![Eventually::new(
            "drains",
            "every item is acknowledged",
            RECOVERY_BOUND,
            |r: &Record, _| r.acked.len() as u64 == ITEMS,
        )]
    }

    fn points(&self) -> Vec<Point> {
        vec![Point::sometimes(
            DUPLICATE_DROPPED,
            "the store saw an item twice (a crash between its write and its acknowledgement)",
        )]
    }

    fn targets(&self) -> Targets {
        Targets::new()
            .link("producer", "consumer")
            .host(
                "consumer",
                "its log on the simulated disk, as far as it was synced; the work in flight is lost",
            )
            .site(
                Site::new(STORE_SYNC, "the consumer syncs a new item's line to its log")
                    .fails()
                    .delays(),
            )
            .disk(
                Disk::new("the consumer's log (no replica: corrupt reads are left out)")
                    .io_errors()
                    .early_syncs()
                    .torn_writes(),
            )
    }

    fn swarm(&self) -> Swarm {
        classic_swarm("producer<->consumer", "producer<->consumer", "consumer")
    }

    fn sabotages(&self) -> Vec<Sabotage> {
        vec![
            Sabotage {
                name: ACK_BEFORE_STORE,
                about: "the consumer acknowledges an item before its line is synced to disk (a crash in between loses it)",
            },
            Sabotage {
                name: ACK_ON_FAILED_SYNC,
                about: "deep: a failed sync is acknowledged anyway (the next item's sync usually saves it; a crash before that loses it)",
            },
            Sabotage {
                name: TORN_LINE_ACCEPTED,
                about: "deep: recovery keeps a log line without checking it (a crash that tears an unsynced line, under a delayed sync, stores a wrong value)",
            },
            Sabotage {
                name: TORN_TAIL_KEPT,
                about: "deep: recovery leaves a torn last line in the log (a crash under a delayed sync tore it): the next line is glued to it, and a later restart skips both, losing an acknowledged item",
            },
            Sabotage {
                name: EMPTY_LOG_ON_READ_ERROR,
                about: "rare: recovery takes a read error for an empty log (an I/O error on the last restart's one read forgets the store; at most 2 runs in 100 can, whatever the plan)",
            },
        ]
    }

    fn network(&self, seed: u64) -> Network {
        let mut rng = SplitMix64::derive(seed, 5);
        Network::latency_ms(rng.between(1, 3), rng.between(4, 15))
    }

    fn build(&self, ctx: &Ctx<Record>, sim: &mut turmoil::Sim<'_>) {
        let seed = ctx.seed();
        let consumer = ctx.clone();
        sim.host("consumer", move || {
            let ctx = consumer.clone();
            async move {
                // What the disk holds is what the store is: read it back.
                let known = Rc::new(RefCell::new(recover(&ctx)));
                let sabotaged = ctx.sabotaged(ACK_BEFORE_STORE);
                // The sabotaged consumer acknowledges once the line is
                // written, and syncs every 200 ms: a crash in between loses
                // what was acknowledged.
                if sabotaged {
                    let ctx = ctx.clone();
                    tokio::task::spawn_local(async move {
                        loop {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            if let Ok(file) = OpenOptions::new().append(true).open(LOG)
                                && file.sync_all().is_ok()
                            {
                                ctx.log("consumer: synced");
                            }
                        }
                    });
                }
                serve(PORT, move |line| {
                    let (ctx, known) = (ctx.clone(), known.clone());
                    async move {
                        let mut words = line.split_whitespace().map(|w| w.parse::<u64>());
                        let (Some(Ok(id)), Some(Ok(value))) = (words.next(), words.next()) else {
                            return format!("bad request {:?}", line.trim());
                        };
                        ctx.record().arrivals.push(id);
                        if !sabotaged {
                            tokio::time::sleep(WORK).await;
                        }
                        match store(&ctx, &known, id, value, sabotaged).await {
                            Ok(()) => format!("ack {id}"),
                            Err(e) => format!("error {e}"),
                        }
                    }
                })
                .await
            }
        });

        let ctx = ctx.clone();
        sim.client("producer", async move {
            let timer = TokioTimer::new();
            let policy = RetryPolicy::builder()
                .max_attempts(1_000)
                .max_elapsed(Duration::from_secs(30))
                .exponential(Duration::from_millis(20), 2.0, Duration::from_millis(400))
                .jitter(Jitter::Full)
                .seed(seed)
                .build()
                .expect("a valid policy");
            let source = futures_util::stream::unfold(0, |id| async move {
                if id == ITEMS {
                    return None;
                }
                tokio::time::sleep(EVERY).await;
                Some((id, id + 1))
            });
            let limit = NonZeroUsize::new(IN_FLIGHT).expect("4 > 0");
            let report = pipeline::<_, (u64, String)>(source, Order::Ordered)
                .stage(limit, |id| {
                    let (ctx, retrier) =
                        (ctx.clone(), Retrier::new(policy.clone(), timer).with_id(id));
                    async move {
                        let start = now();
                        let call = ctx
                            .record()
                            .history
                            .call(1, KvOp::Put(id.to_string(), payload(seed, id).to_string()));
                        let sent = retrier
                            .run(|attempt| {
                                let ctx = ctx.clone();
                                async move {
                                    {
                                        let mut r = ctx.record();
                                        *r.sends.entry(id).or_default() += 1;
                                        r.in_flight += 1;
                                        r.max_in_flight = r.max_in_flight.max(r.in_flight);
                                    }
                                    ctx.log(format!(
                                        "producer: item {id} attempt {}",
                                        attempt.number
                                    ));
                                    let request = format!("{id} {}", payload(seed, id));
                                    let reply = timeout(
                                        &timer,
                                        ATTEMPT_TIMEOUT,
                                        exchange("consumer", PORT, request),
                                    )
                                    .await;
                                    ctx.record().in_flight -= 1;
                                    match reply {
                                        Ok(Ok(ack)) if ack == format!("ack {id}") => Ok(()),
                                        Ok(Ok(other)) => Err(format!("unexpected reply {other:?}")),
                                        Ok(Err(e)) => Err(e),
                                        Err(_) => Err("timed out".to_string()),
                                    }
                                }
                            })
                            .await;
                        match sent {
                            Ok(()) => {
                                ctx.latency(now() - start);
                                ctx.record().history.ok(call, KvOut::Done);
                                Ok(id)
                            }
                            Err(e) => {
                                Err((id, format!("{} after {} attempts", e.error, e.attempts)))
                            }
                        }
                    }
                })
                .run(OnError::Deliver, |item| match item {
                    Ok(id) => {
                        ctx.log(format!("producer: item {id} acknowledged"));
                        ctx.record().acked.push((now(), id));
                    }
                    Err((id, e)) => {
                        ctx.log(format!("producer: item {id} lost: {e}"));
                        ctx.record().lost.push((id, e));
                    }
                })
                .await;
            ctx.log(format!(
                "producer: done, {} acknowledged, {} lost",
                report.delivered, report.errors_delivered
            ));
            // Let a sabotaged consumer flush what it holds before the end.
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(())
        });
    }

    fn check(&self, run: &RunInfo, record: &Record) -> Vec<Violation> {
        check(record, run.seed)
    }

    fn lanes(&self, _: &RunInfo, record: &Record) -> Vec<Lane> {
        let mut writes = Lane::new("consumer writes (amber: duplicate dropped)");
        writes.points = record
            .writes
            .iter()
            .map(|(at, _, new)| (*at, if *new { GREEN } else { AMBER }))
            .collect();
        let mut acked = Lane::new("producer acknowledgements");
        acked.points = record.acked.iter().map(|(at, _)| (*at, BLUE)).collect();
        vec![writes, acked]
    }
}

/// Deep sabotages: each needs two things to coincide (and a rare one:
/// one event of at most 2% a run, which no plan makes likelier).
const ACK_ON_FAILED_SYNC: &str = "ack-on-failed-sync";
const TORN_LINE_ACCEPTED: &str = "torn-line-accepted";
const EMPTY_LOG_ON_READ_ERROR: &str = "empty-log-on-read-error";
/// The bug a guided search found in this store (fixed in `recover`), put
/// back: three things must coincide (torn writes, a crash inside a delayed
/// sync, and a later restart).
const TORN_TAIL_KEPT: &str = "torn-tail-kept";

/// Guides: numbers a guided search pushes up (a site that fires is a
/// signal of its own: a search needs no point to see it).
const IO_ERRORS_MET: &str = "io errors met";
const LONGEST_SYNC_WAIT: &str = "longest sync wait (ms)";
const RESTARTS: &str = "consumer starts";

/// A fault site: the sync of a new item's line.
const STORE_SYNC: &str = "store sync";

/// A point: the store's de-duplication did something.
const DUPLICATE_DROPPED: &str = "duplicate dropped";

/// The consumer's log on its simulated disk: a line `id value check` per
/// item stored.
const LOG: &str = "/store.log";

/// A line's check: a torn or otherwise damaged line does not match.
fn check_of(id: u64, value: u64) -> u64 {
    SplitMix64::derive(id, value).next_u64() >> 16
}

/// Reads the log back at a (re)start: the items it holds (a line that does
/// not parse or check is skipped; a torn last line, the unsynced tail a
/// crash tore, is cut off the file), which become the store. Creates the log (and makes its name durable) on the
/// first start. An I/O error is retried: the disk may fail any read.
fn recover(ctx: &Ctx<Record>) -> BTreeMap<u64, u64> {
    let bytes = loop {
        match fs::read(LOG) {
            Ok(bytes) => break bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let made = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(LOG)
                    .and_then(|f| f.sync_all())
                    .and_then(|()| fs::sync_dir("/"));
                if made.is_ok() {
                    break Vec::new();
                }
            }
            Err(_) => {
                let n = {
                    let mut r = ctx.record();
                    r.io_errors += 1;
                    r.io_errors
                };
                point::guide!(IO_ERRORS_MET, n);
                if ctx.sabotaged(EMPTY_LOG_ON_READ_ERROR) {
                    break Vec::new();
                }
            }
        }
    };
    let lenient = ctx.sabotaged(TORN_LINE_ACCEPTED);
    // A crash may leave a torn last line, without its newline: cut it off
    // (and make the cut durable) before anything is appended to it, or the
    // next line would be glued to it and lost with it.
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() && !ctx.sabotaged(TORN_TAIL_KEPT) {
        while OpenOptions::new()
            .write(true)
            .open(LOG)
            .and_then(|f| f.set_len(whole as u64).and_then(|()| f.sync_all()))
            .is_err()
        {}
    }
    let kept = if lenient { &bytes[..] } else { &bytes[..whole] };
    let text = String::from_utf8_lossy(kept);
    let mut items = BTreeMap::new();
    let mut skipped = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace().map(|w| w.parse::<u64>());
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some(Ok(id)), Some(Ok(value)), Some(Ok(check)), None)
                if check == check_of(id, value) =>
            {
                items.insert(id, value);
            }
            (Some(Ok(id)), Some(Ok(value)), _, _) if lenient => {
                items.insert(id, value);
            }
            _ => skipped += 1,
        }
    }
    ctx.log(format!(
        "consumer: recovered {} items from disk ({skipped} damaged lines skipped)",
        items.len()
    ));
    let mut r = ctx.record();
    r.store = items.clone();
    r.restarts += 1;
    point::guide!(RESTARTS, u64::from(r.restarts));
    items
}

/// The consumer's de-duplicating write: an item the store has is a
/// duplicate, dropped; a new one is appended to the log and synced (the
/// fault site "store sync" may fail or delay the sync) before it counts as
/// stored. The sabotaged consumer skips the sync.
async fn store(
    ctx: &Ctx<Record>,
    known: &RefCell<BTreeMap<u64, u64>>,
    id: u64,
    value: u64,
    sabotaged: bool,
) -> Result<(), String> {
    let new = !known.borrow().contains_key(&id);
    point::sometimes!(DUPLICATE_DROPPED, !new);
    if new {
        let mut file = OpenOptions::new()
            .append(true)
            .open(LOG)
            .map_err(|e| format!("open: {e}"))?;
        let line = format!("{id} {value} {}\n", check_of(id, value));
        if let Err(e) = file.write_all(line.as_bytes()) {
            let n = {
                let mut r = ctx.record();
                r.io_errors += 1;
                r.io_errors
            };
            point::guide!(IO_ERRORS_MET, n);
            return Err(format!("write: {e}"));
        }
        if !sabotaged {
            let synced = match point::site!(STORE_SYNC) {
                Fire::Pass => true,
                Fire::Fail => false,
                Fire::Delay(d) => {
                    point::guide!(LONGEST_SYNC_WAIT, d.as_millis() as u64);
                    tokio::time::sleep(d).await;
                    true
                }
            };
            if !synced && !ctx.sabotaged(ACK_ON_FAILED_SYNC) {
                return Err("sync: failed".to_string());
            }
            if synced {
                file.sync_all().map_err(|e| format!("sync: {e}"))?;
            }
        }
        known.borrow_mut().insert(id, value);
        ctx.record().store.insert(id, value);
    }
    ctx.record().writes.push((now(), id, new));
    let what = if new {
        "stored"
    } else {
        "a duplicate, dropped"
    };
    ctx.log(format!("consumer: item {id} {what}"));
    Ok(())
}

fn check(r: &Record, seed: u64) -> Vec<Violation> {
    let mut v = Vec::new();
    for (id, e) in &r.lost {
        v.push(Violation::new(
            "nothing lost",
            format!("item {id} was never acknowledged: {e}"),
        ));
    }
    let acked: Vec<u64> = r.acked.iter().map(|(_, id)| *id).collect();
    if acked != (0..ITEMS).collect::<Vec<_>>() {
        v.push(Violation::new(
            "acked once and in order",
            format!(
                "acknowledged {} items, not 0..{ITEMS} once each in order: {acked:?}",
                acked.len()
            ),
        ));
    }
    let expected: BTreeMap<u64, u64> = (0..ITEMS).map(|id| (id, payload(seed, id))).collect();
    if r.store != expected {
        let missing: Vec<u64> = (0..ITEMS).filter(|id| !r.store.contains_key(id)).collect();
        let wrong: Vec<u64> = r
            .store
            .iter()
            .filter(|(id, value)| expected.get(id) != Some(value))
            .map(|(id, _)| *id)
            .collect();
        v.push(Violation::new(
            "output equals input",
            format!("missing {missing:?}, wrong or unknown {wrong:?}"),
        ));
    }
    let mut arrivals: BTreeMap<u64, u64> = BTreeMap::new();
    for id in &r.arrivals {
        *arrivals.entry(*id).or_default() += 1;
    }
    for (id, n) in &arrivals {
        let sent = r.sends.get(id).copied().unwrap_or(0);
        if *n > sent {
            v.push(Violation::new(
                "duplicates only from retries",
                format!("item {id} arrived {n} times but was sent {sent} times"),
            ));
        }
    }
    // The same promise as a history: every acknowledged put is read back
    // from the final store (unacknowledged ones may or may not be there).
    let mut history = r.history.clone();
    let end = history.end() + 1;
    for id in 0..ITEMS {
        let value = r.store.get(&id).map(u64::to_string);
        history.push(Op::returned(
            0,
            KvOp::Get(id.to_string()),
            end,
            end,
            KvOut::Value(value),
        ));
    }
    v.extend(Linearizable::new(KeyValue).check(&history));
    if r.max_in_flight > IN_FLIGHT {
        v.push(Violation::new(
            "sends in flight within 4",
            format!(
                "{} sends in flight at once, limit {IN_FLIGHT}",
                r.max_in_flight
            ),
        ));
    }
    v
}
