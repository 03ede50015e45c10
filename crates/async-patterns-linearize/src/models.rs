//! Sequential specifications to check histories against: a register, and
//! a key-value map with put, get, append and compare-and-set (checked key
//! by key).

use std::collections::BTreeMap;

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
/// clock reading each check made is part of its input (readings must not
/// go back).
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

impl Model for Limiter {
    /// (credit in nanoseconds, the reading it was counted at).
    type State = (u128, u64);
    type Input = LimiterCheck;
    type Output = bool;

    fn init(&self) -> (u128, u64) {
        (u128::from(self.interval_ns) * u128::from(self.burst), 0)
    }

    fn step(
        &self,
        state: &(u128, u64),
        input: &LimiterCheck,
        output: Option<&bool>,
    ) -> Option<(u128, u64)> {
        let (credit, last) = *state;
        let full = u128::from(self.interval_ns) * u128::from(self.burst);
        let now = input.at_ns.max(last);
        let credit = (credit + u128::from(now - last)).min(full);
        let cost = u128::from(self.interval_ns) * u128::from(input.cells);
        let admitted = credit >= cost;
        if output.is_some_and(|o| *o != admitted) {
            return None;
        }
        Some((if admitted { credit - cost } else { credit }, now))
    }
}
