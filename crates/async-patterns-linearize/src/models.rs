//! Sequential specifications to check histories against: a register, a
//! key-value map with put, get, append and compare-and-set (checked key by
//! key), and our patterns as their docs state them: the semaphore, the
//! rate limiter and the keyed one, the circuit breaker and the adaptive
//! limit. A time-dependent model takes each operation's clock reading as
//! part of its input. Each is plainer than the code it checks and shares
//! none of its arithmetic (credit where the code keeps arrival times, sets
//! of permits where it keeps generations, exact fractions where it keeps
//! millionths).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::num::NonZeroU32;

use crate::Model;

/// A register holding a number (0 at first).
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

/// What a register operation asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// Returns the value (output `Some(value)`).
    Read,
    /// Sets the value (output `None`).
    Write(u64),
}

impl Model for Register {
    type State = u64;
    type Input = RegisterOp;
    type Output = Option<u64>;

    fn init(&self) -> u64 {
        0
    }

    fn step(&self, state: &u64, input: &RegisterOp, output: Option<&Option<u64>>) -> Option<u64> {
        match (input, output) {
            (RegisterOp::Read, None) => Some(*state),
            (RegisterOp::Read, Some(seen)) => (*seen == Some(*state)).then_some(*state),
            (RegisterOp::Write(v), None | Some(None)) => Some(*v),
            (RegisterOp::Write(_), Some(Some(_))) => None,
        }
    }

    fn read_only(&self, input: &RegisterOp) -> bool {
        *input == RegisterOp::Read
    }
}

/// A map from keys to strings, absent at first.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyValue;

/// What a key-value operation asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// The key's value (output [`KvOut::Value`]).
    Get(String),
    /// Sets the key (output [`KvOut::Done`]).
    Put(String, String),
    /// Appends to the key's value, absent counting as empty (output
    /// [`KvOut::Done`]): a write applied twice shows, as a register
    /// write does not.
    Append(String, String),
    /// Sets the key to the third if it holds the second (`None`: absent);
    /// output [`KvOut::Swapped`].
    Cas(String, Option<String>, String),
}

impl KvOp {
    /// The key it touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Get(k) | KvOp::Put(k, _) | KvOp::Append(k, _) | KvOp::Cas(k, _, _) => k,
        }
    }
}

/// What a key-value operation returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOut {
    /// A get's value.
    Value(Option<String>),
    /// A put or append took effect.
    Done,
    /// Whether a compare-and-set swapped.
    Swapped(bool),
}

impl Model for KeyValue {
    /// One key's value: each part of a partitioned history has one key.
    type State = Option<String>;
    type Input = KvOp;
    type Output = KvOut;

    fn init(&self) -> Option<String> {
        None
    }

    fn step(
        &self,
        state: &Option<String>,
        input: &KvOp,
        output: Option<&KvOut>,
    ) -> Option<Option<String>> {
        let (next, out) = match input {
            KvOp::Get(_) => (state.clone(), KvOut::Value(state.clone())),
            KvOp::Put(_, v) => (Some(v.clone()), KvOut::Done),
            KvOp::Append(_, v) => {
                let mut s = state.clone().unwrap_or_default();
                s.push_str(v);
                (Some(s), KvOut::Done)
            }
            KvOp::Cas(_, expected, new) => {
                if state == expected {
                    (Some(new.clone()), KvOut::Swapped(true))
                } else {
                    (state.clone(), KvOut::Swapped(false))
                }
            }
        };
        match output {
            Some(seen) if *seen != out => None,
            _ => Some(next),
        }
    }

    fn read_only(&self, input: &KvOp) -> bool {
        matches!(input, KvOp::Get(_))
    }

    fn partition(&self, inputs: &[&KvOp]) -> Vec<Vec<usize>> {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, op) in inputs.iter().enumerate() {
            by_key.entry(op.key()).or_default().push(i);
        }
        by_key.into_values().collect()
    }
}

/// A counting semaphore of `permits` permits, all free at first, as seen
/// through `try_acquire` and the release of what it granted (a history
/// with waiters queued is not this model's: a fair semaphore refuses a
/// `try_acquire` while anyone waits).
#[derive(Debug, Clone, Copy)]
pub struct Semaphore {
    /// Permits in all.
    pub permits: u64,
}

/// What a semaphore operation asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SemaphoreOp {
    /// Take `n` permits if `n` are free (output: whether it did).
    TryAcquire(u64),
    /// Give `n` permits back (output: `true`).
    Release(u64),
}

impl Model for Semaphore {
    /// Permits free.
    type State = u64;
    type Input = SemaphoreOp;
    type Output = bool;

    fn init(&self) -> u64 {
        self.permits
    }

    fn step(&self, free: &u64, input: &SemaphoreOp, output: Option<&bool>) -> Option<u64> {
        match *input {
            SemaphoreOp::TryAcquire(n) => {
                let granted = *free >= n;
                if output.is_some_and(|o| *o != granted) {
                    return None;
                }
                Some(if granted { free - n } else { *free })
            }
            SemaphoreOp::Release(n) => {
                let back = free.checked_add(n)?;
                (back <= self.permits && output.is_none_or(|o| *o)).then_some(back)
            }
        }
    }
}

/// A rate limiter as a token bucket counted in nanoseconds of credit: each
/// cell costs `interval_ns`, credit accrues one nanosecond per nanosecond
/// of the clock and holds at most `burst` cells' worth; full at first. The
/// clock reading each check made is part of its input; a reading earlier
/// than the last one counted is taken as the last (readings that go back
/// are not checked). Build it from the limiter's `Quota`:
/// `interval_ns` is `quota.interval()` in nanoseconds, `burst` is
/// `quota.burst()`.
#[derive(Debug, Clone, Copy)]
pub struct Limiter {
    /// The cost of one cell.
    pub interval_ns: u64,
    /// Cells the bucket holds.
    pub burst: u64,
}

/// A limiter's check: `cells` at clock reading `at_ns` (output: whether
/// they were admitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimiterCheck {
    /// The clock reading, in nanoseconds from the clock's start.
    pub at_ns: u64,
    /// Cells asked.
    pub cells: u64,
}

impl Limiter {
    /// A full bucket's credit, in nanoseconds.
    fn full(&self) -> u128 {
        u128::from(self.interval_ns) * u128::from(self.burst)
    }

    /// What `cells` cost, in nanoseconds of credit.
    fn cost(&self, cells: u64) -> u128 {
        u128::from(self.interval_ns) * u128::from(cells)
    }
}

impl Model for Limiter {
    /// (credit in nanoseconds, the reading it was counted at).
    type State = (u128, u64);
    type Input = LimiterCheck;
    type Output = bool;

    fn init(&self) -> (u128, u64) {
        (self.full(), 0)
    }

    fn step(
        &self,
        state: &(u128, u64),
        input: &LimiterCheck,
        output: Option<&bool>,
    ) -> Option<(u128, u64)> {
        let (credit, last) = *state;
        let now = input.at_ns.max(last);
        let credit = (credit + u128::from(now - last)).min(self.full());
        let cost = self.cost(input.cells);
        let admitted = credit >= cost;
        if output.is_some_and(|o| *o != admitted) {
            return None;
        }
        Some((if admitted { credit - cost } else { credit }, now))
    }
}

/// A keyed rate limiter: a [`Limiter`] bucket per key (`bucket`), each
/// full at first.
///
/// With `room` set it also models bounded memory, as the core's keyed
/// limiter under 128 keys does it (one shard: `room` is its `max_keys`): a
/// key whose bucket is not full is *busy* (it must be held), and a check
/// that costs something on a key that is not busy is refused while `room`
/// other keys are busy; a check of no cells is always admitted. From 128
/// keys the core splits its keys among shards by a private hash, which
/// this model does not know: use `None` there, for histories in which no
/// shard fills. With `room`, the history is one part and each state holds
/// every busy key: keep `room` small (tens), or the search's memory grows
/// with it at every step. Without `room`, keys never meet and a history is
/// checked key by key, at any number of keys.
///
/// A clock reading earlier than the last one counted is taken as the last
/// (readings that go back are not checked, here or in [`Limiter`]).
#[derive(Debug, Clone, Copy)]
pub struct KeyedLimiter {
    /// Each key's bucket.
    pub bucket: Limiter,
    /// How many keys may be busy at once (`None`: no bound).
    pub room: Option<u64>,
}

/// A keyed limiter's check: `cells` for `key` at clock reading `at_ns`
/// (output: whether they were admitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyedCheck {
    /// The key.
    pub key: u64,
    /// The clock reading, in nanoseconds from the clock's start.
    pub at_ns: u64,
    /// Cells asked.
    pub cells: u64,
}

/// A keyed limiter's state: the last clock reading, and the credit (in
/// nanoseconds, as of that reading) of every key whose bucket is not full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Buckets {
    at_ns: u64,
    busy: BTreeMap<u64, u128>,
}

impl Model for KeyedLimiter {
    type State = Buckets;
    type Input = KeyedCheck;
    type Output = bool;

    fn init(&self) -> Buckets {
        Buckets::default()
    }

    fn step(&self, state: &Buckets, input: &KeyedCheck, output: Option<&bool>) -> Option<Buckets> {
        let full = self.bucket.full();
        let now = input.at_ns.max(state.at_ns);
        let elapsed = u128::from(now - state.at_ns);
        // Credit accrues; a bucket full again is no longer busy.
        let mut busy: BTreeMap<u64, u128> = state
            .busy
            .iter()
            .map(|(&key, &credit)| (key, credit + elapsed))
            .filter(|&(_, credit)| credit < full)
            .collect();
        let cost = self.bucket.cost(input.cells);
        let admitted = if cost == 0 {
            true
        } else if let Some(credit) = busy.get_mut(&input.key) {
            let enough = *credit >= cost;
            if enough {
                *credit -= cost;
            }
            enough
        } else if self.room.is_some_and(|room| busy.len() as u64 >= room) || cost > full {
            false
        } else {
            busy.insert(input.key, full - cost);
            true
        };
        if output.is_some_and(|o| *o != admitted) {
            return None;
        }
        Some(Buckets { at_ns: now, busy })
    }

    fn partition(&self, inputs: &[&KeyedCheck]) -> Vec<Vec<usize>> {
        if self.room.is_some() {
            return vec![(0..inputs.len()).collect()];
        }
        let mut by_key: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, check) in inputs.iter().enumerate() {
            by_key.entry(check.key).or_default().push(i);
        }
        by_key.into_values().collect()
    }
}

/// A circuit breaker that trips on `consecutive_failures` failures in a
/// row and/or on the failure share of its last calls (`window`), stays
/// open `open_ns`, then lets `probes` calls at a time through and closes
/// after `close_after` of them succeed; one failed probe opens it again.
/// No slow calls and no growth of the open time. Every change of state
/// makes the calls admitted before it stale: their outcomes count for
/// nothing. Each permit is named by a number its acquire gave it (the
/// caller's choice, unique among the permits out): an outcome or drop of a
/// permit that is not out (never admitted, or already ended), or an
/// admission under a name already out, fits no order. Build it from the
/// same numbers as the breaker's `BreakerConfig` (a rate of 0.5 is
/// `failures: 1, of: 2`); the core's `tests/support/histories.rs`
/// (`breaker_pair`) builds both side by side.
#[derive(Debug, Clone, Copy)]
pub struct Breaker {
    /// Trip on this many failures in a row.
    pub consecutive_failures: Option<u32>,
    /// Trip on the failure share of the last calls.
    pub window: Option<FailureShare>,
    /// How long it stays open.
    pub open_ns: u64,
    /// Probes at a time while half-open.
    pub probes: u32,
    /// Successful probes that close it.
    pub close_after: u32,
}

/// Trip when, of the last `calls` outcomes (at least `min_calls` of them),
/// failures are at least `failures` in `of`.
#[derive(Debug, Clone, Copy)]
pub struct FailureShare {
    /// Outcomes remembered.
    pub calls: u32,
    /// Outcomes needed before judging.
    pub min_calls: u32,
    /// The share's numerator.
    pub failures: u32,
    /// The share's denominator.
    pub of: u32,
}

/// What a breaker operation asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerOp {
    /// Ask leave for a call, at a clock reading (output: admitted, or
    /// why not).
    Acquire {
        /// The permit's name, if admitted.
        permit: u64,
        /// The clock reading, in nanoseconds.
        at_ns: u64,
    },
    /// The permit's call succeeded (output [`BreakerOut::Done`]).
    Success {
        /// The permit.
        permit: u64,
        /// The clock reading, in nanoseconds.
        at_ns: u64,
    },
    /// The permit's call failed (output [`BreakerOut::Done`]).
    Failure {
        /// The permit.
        permit: u64,
        /// The clock reading, in nanoseconds.
        at_ns: u64,
    },
    /// The permit was dropped without an outcome (output
    /// [`BreakerOut::Done`]).
    Drop {
        /// The permit.
        permit: u64,
    },
}

/// What a breaker operation returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerOut {
    /// The call may run.
    Admitted,
    /// Refused: open until this reading.
    Open {
        /// When it may probe, in nanoseconds.
        until_ns: u64,
    },
    /// Refused: half-open with every probe running.
    ProbesBusy,
    /// An outcome or a drop was taken.
    Done,
}

/// A breaker's state, and the permits out: those whose outcomes still
/// count, and those admitted before the last change of state (whose
/// outcomes count for nothing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Circuit {
    mode: Mode,
    counting: BTreeSet<u64>,
    stale: BTreeSet<u64>,
}

impl Circuit {
    /// In `mode`, every permit out made stale.
    fn moved(mut self, mode: Mode) -> Circuit {
        self.stale.append(&mut self.counting);
        self.mode = mode;
        self
    }

    /// Takes `permit` back: `Some(true)` if its outcome counts, `Some(false)`
    /// if it is stale, `None` if it is not out (never admitted, or already
    /// ended).
    fn take_back(&mut self, permit: u64) -> Option<bool> {
        if self.counting.remove(&permit) {
            Some(true)
        } else {
            self.stale.remove(&permit).then_some(false)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Mode {
    /// Failures in a row, and the last outcomes (`true`: failed), oldest
    /// first.
    Closed(u32, VecDeque<bool>),
    Open(u64),
    /// Probes running, probes that succeeded.
    HalfOpen(u32, u32),
}

impl Breaker {
    fn trips(&self, in_a_row: u32, last: &VecDeque<bool>) -> bool {
        let by_row = self.consecutive_failures.is_some_and(|k| in_a_row >= k);
        let by_share = self.window.is_some_and(|w| {
            let calls = last.len() as u64;
            let failed = last.iter().filter(|&&f| f).count() as u64;
            calls >= u64::from(w.min_calls)
                && failed * u64::from(w.of) >= u64::from(w.failures) * calls
        });
        by_row || by_share
    }

    /// `circuit` after the outcome of one of its counting permits at `at`.
    fn outcome(&self, mut circuit: Circuit, failed: bool, at: u64) -> Circuit {
        let open = Mode::Open(at.saturating_add(self.open_ns));
        match &mut circuit.mode {
            Mode::Closed(in_a_row, last) => {
                *in_a_row = if failed { *in_a_row + 1 } else { 0 };
                last.push_back(failed);
                let keep = self.window.map_or(0, |w| w.calls as usize);
                while last.len() > keep {
                    last.pop_front();
                }
                if self.trips(*in_a_row, last) {
                    return circuit.moved(open);
                }
            }
            Mode::HalfOpen(_, _) if failed => return circuit.moved(open),
            Mode::HalfOpen(running, passed) => {
                *passed += 1;
                if *passed >= self.close_after {
                    return circuit.moved(Mode::Closed(0, VecDeque::new()));
                }
                *running -= 1;
            }
            Mode::Open(_) => {}
        }
        circuit
    }
}

impl Model for Breaker {
    type State = Circuit;
    type Input = BreakerOp;
    type Output = BreakerOut;

    fn init(&self) -> Circuit {
        Circuit {
            mode: Mode::Closed(0, VecDeque::new()),
            counting: BTreeSet::new(),
            stale: BTreeSet::new(),
        }
    }

    fn step(
        &self,
        state: &Circuit,
        input: &BreakerOp,
        output: Option<&BreakerOut>,
    ) -> Option<Circuit> {
        let mut next = state.clone();
        let out = match *input {
            BreakerOp::Acquire { permit, at_ns } => {
                if let Mode::Open(until_ns) = next.mode {
                    if at_ns < until_ns {
                        return output
                            .is_none_or(|o| *o == BreakerOut::Open { until_ns })
                            .then_some(next);
                    }
                    next = next.moved(Mode::HalfOpen(0, 0));
                }
                match &mut next.mode {
                    Mode::HalfOpen(running, _) if *running >= self.probes => BreakerOut::ProbesBusy,
                    mode => {
                        if let Mode::HalfOpen(running, _) = mode {
                            *running += 1;
                        }
                        // A name already out names two permits: refused.
                        if next.stale.contains(&permit) || !next.counting.insert(permit) {
                            return None;
                        }
                        BreakerOut::Admitted
                    }
                }
            }
            BreakerOp::Success { permit, at_ns } | BreakerOp::Failure { permit, at_ns } => {
                if next.take_back(permit)? {
                    let failed = matches!(input, BreakerOp::Failure { .. });
                    next = self.outcome(next, failed, at_ns);
                }
                BreakerOut::Done
            }
            BreakerOp::Drop { permit } => {
                if next.take_back(permit)?
                    && let Mode::HalfOpen(running, _) = &mut next.mode
                {
                    *running -= 1;
                }
                BreakerOut::Done
            }
        };
        output.is_none_or(|o| *o == out).then_some(next)
    }
}

/// An adaptive concurrency limit (AIMD): it admits a call while fewer than
/// the limit are in flight; a failure, or a success slower than
/// `latency_target_ns`, multiplies the limit by `backoff_num / backoff_den`
/// (rounded down, not below `min`); a success with at least half the limit
/// in flight (itself counted) adds `increase` (not above `max`); a dropped
/// call moves nothing.
#[derive(Debug, Clone, Copy)]
pub struct Adaptive {
    /// The floor.
    pub min: u32,
    /// The limit at first.
    pub initial: u32,
    /// The ceiling.
    pub max: u32,
    /// Added on a success while busy.
    pub increase: u32,
    /// The decrease's numerator.
    pub backoff_num: u32,
    /// The decrease's denominator (never zero).
    pub backoff_den: NonZeroU32,
    /// A success slower than this counts as a failure (`None`: none does).
    pub latency_target_ns: Option<u64>,
}

/// What an adaptive limit operation asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdaptiveOp {
    /// Admit one call (output: whether it was).
    Acquire,
    /// One admitted call ended (output: `true`), started and ended at these
    /// clock readings.
    Finish {
        /// How it ended.
        ending: Ending,
        /// Its start's reading, in nanoseconds.
        started_ns: u64,
        /// Its end's reading, in nanoseconds.
        at_ns: u64,
    },
}

/// How an admitted call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    /// It succeeded.
    Success,
    /// It failed.
    Failure,
    /// Its permit was dropped without an outcome.
    Dropped,
}

impl Model for Adaptive {
    /// (the limit, calls in flight).
    type State = (u32, u32);
    type Input = AdaptiveOp;
    type Output = bool;

    fn init(&self) -> (u32, u32) {
        (self.initial, 0)
    }

    fn step(
        &self,
        state: &(u32, u32),
        input: &AdaptiveOp,
        output: Option<&bool>,
    ) -> Option<(u32, u32)> {
        let (limit, in_flight) = *state;
        match *input {
            AdaptiveOp::Acquire => {
                let admitted = in_flight < limit;
                if output.is_some_and(|o| *o != admitted) {
                    return None;
                }
                Some((limit, in_flight + u32::from(admitted)))
            }
            AdaptiveOp::Finish {
                ending,
                started_ns,
                at_ns,
            } => {
                if in_flight == 0 || output.is_some_and(|o| !*o) {
                    return None;
                }
                let busy = 2 * u64::from(in_flight) >= u64::from(limit);
                let slow = self
                    .latency_target_ns
                    .is_some_and(|target| at_ns.saturating_sub(started_ns) > target);
                let smaller = u64::from(limit) * u64::from(self.backoff_num)
                    / u64::from(self.backoff_den.get());
                let limit = match ending {
                    Ending::Failure => (smaller as u32).max(self.min),
                    Ending::Success if slow => (smaller as u32).max(self.min),
                    Ending::Success if busy => limit.saturating_add(self.increase).min(self.max),
                    Ending::Success | Ending::Dropped => limit,
                };
                Some((limit, in_flight - 1))
            }
        }
    }
}
