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
            (RegisterOp::Write(v), _) => Some(*v),
        }
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

    fn partition(&self, inputs: &[&KvOp]) -> Vec<Vec<usize>> {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, op) in inputs.iter().enumerate() {
            by_key.entry(op.key()).or_default().push(i);
        }
        by_key.into_values().collect()
    }
}
