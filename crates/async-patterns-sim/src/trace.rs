//! What a run recorded: the event trace, its hash, and typed violations.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An event log shared by the hosts of one simulation, each event stamped
/// with virtual time. Two runs of a seed must log the same events in the
/// same order: the run-twice check compares their [`hash_trace`].
///
/// ```
/// use std::time::Duration;
/// use async_patterns_sim::Trace;
///
/// let trace = Trace::default();
/// trace.log(Duration::from_millis(12), "client: request 1 sent");
/// assert_eq!(trace.events(), ["   12.000 ms  client: request 1 sent"]);
/// ```
#[derive(Clone, Default)]
pub struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    /// Records `event` at virtual time `at`.
    pub fn log(&self, at: Duration, event: impl AsRef<str>) {
        let line = format!("{:>9.3} ms  {}", at.as_secs_f64() * 1e3, event.as_ref());
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    /// The events so far.
    pub fn events(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Trace").field(&self.events().len()).finish()
    }
}

/// The trace's hash: std's SipHash with fixed keys, stable for a build
/// (compare hashes from one binary, not across Rust versions).
pub fn hash_trace(trace: &[String]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    trace.hash(&mut h);
    h.finish()
}

/// One broken invariant: which, what was seen, and (when one instant is to
/// blame) when, in virtual time since the simulation began.
///
/// ```
/// use std::time::Duration;
/// use async_patterns_sim::Violation;
///
/// let v = Violation::new("exactly-once", "request 7 ended 2 times")
///     .at(Duration::from_millis(1_250));
/// assert_eq!(v.to_string(), "exactly-once: request 7 ended 2 times (at 1.25s)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Violation {
    /// When it happened, if one instant is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Duration>,
    /// The invariant's short name, as the scenario documents it.
    pub invariant: String,
    /// What was seen.
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant`, described by `detail`.
    pub fn new(invariant: impl Into<String>, detail: impl Into<String>) -> Self {
        Violation {
            at: None,
            invariant: invariant.into(),
            detail: detail.into(),
        }
    }

    /// The same, blamed on the instant `at`.
    #[must_use]
    pub fn at(mut self, at: Duration) -> Self {
        self.at = Some(at);
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)?;
        if let Some(at) = self.at {
            write!(f, " (at {at:?})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_traces_hash_equal_and_a_changed_event_does_not() {
        let a = vec!["x".to_string(), "y".to_string()];
        let b = vec!["x".to_string(), "z".to_string()];
        assert_eq!(hash_trace(&a), hash_trace(&a.clone()));
        assert_ne!(hash_trace(&a), hash_trace(&b));
        // Event boundaries count: ["xy"] is not ["x", "y"].
        assert_ne!(hash_trace(&a), hash_trace(&["xy".to_string()]));
    }
}
