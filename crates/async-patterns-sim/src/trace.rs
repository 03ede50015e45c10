//! What a run recorded: the event trace, its hash, and typed violations.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An event log shared by the hosts of one simulation, each event stamped
/// with virtual time. Two runs of a seed must log the same events in the
/// same order: the run-twice check compares them as the second run logs
/// ([`Trace::against`]) and stops at the first difference.
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
pub struct Trace(Arc<Mutex<Log>>);

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    /// The first run's lines, when this is the second run of a seed.
    expected: Option<Arc<Vec<String>>>,
    /// Where this run first logged something else than the first.
    diverged: Option<Divergence>,
}

impl Trace {
    /// A trace that compares each event, as it is logged, with the same
    /// event of `expected` (the first run of the seed), and remembers the
    /// first that differs ([`Trace::divergence`]).
    pub fn against(expected: Arc<Vec<String>>) -> Self {
        Trace(Arc::new(Mutex::new(Log {
            expected: Some(expected),
            ..Log::default()
        })))
    }

    /// Records `event` at virtual time `at`.
    pub fn log(&self, at: Duration, event: impl AsRef<str>) {
        let line = format!("{:>9.3} ms  {}", at.as_secs_f64() * 1e3, event.as_ref());
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if log.diverged.is_none()
            && let Some(expected) = &log.expected
        {
            let index = log.lines.len();
            if expected.get(index) != Some(&line) {
                log.diverged = Some(Divergence::at(expected, &log.lines, Some(&line), Some(at)));
            }
        }
        log.lines.push(line);
    }

    /// The events so far.
    pub fn events(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lines
            .clone()
    }

    /// The first event that differs from the expected trace's, if this
    /// trace was made [`against`](Trace::against) one and one did.
    pub fn divergence(&self) -> Option<Divergence> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .diverged
            .clone()
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Trace").field(&self.events().len()).finish()
    }
}

/// Where two runs of one seed first differ: the event's index, its virtual
/// time (when the second run logged it), each run's line (`None`: that run
/// had ended), and the lines both logged just before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The event's index in the trace, from 0.
    pub index: usize,
    /// When the second run logged its line, in virtual time.
    pub at: Option<Duration>,
    /// The first run's line there (`None`: its trace had ended).
    pub first: Option<String>,
    /// The second run's line there (`None`: its trace had ended).
    pub second: Option<String>,
    /// Up to two lines both runs logged just before it.
    pub before: Vec<String>,
}

/// Lines of context a divergence keeps from before it.
const CONTEXT: usize = 2;

impl Divergence {
    /// The divergence at index `second.len()`, where the second run logs
    /// `line` (`None`: it ended there).
    fn at(
        first: &[String],
        second: &[String],
        line: Option<&String>,
        at: Option<Duration>,
    ) -> Self {
        let index = second.len();
        Divergence {
            index,
            at,
            first: first.get(index).cloned(),
            second: line.cloned(),
            before: second[index.saturating_sub(CONTEXT)..].to_vec(),
        }
    }

    /// The first place `first` and `second` differ (one ending before the
    /// other counts), if they do.
    pub fn between(first: &[String], second: &[String]) -> Option<Self> {
        let index = (0..first.len().max(second.len())).find(|i| first.get(*i) != second.get(*i))?;
        Some(Divergence::at(
            first,
            &second[..index],
            second.get(index),
            None,
        ))
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |l: &Option<String>| match l {
            Some(l) => format!("{:?}", l.trim_start()),
            None => "(its trace had ended)".to_string(),
        };
        write!(
            f,
            "the two runs of the seed first differ at event {}",
            self.index
        )?;
        if let Some(at) = self.at {
            write!(f, " (virtual time {at:?})")?;
        }
        f.write_str(":")?;
        for (i, l) in self.before.iter().enumerate() {
            let label = if i == 0 { "both runs:" } else { "" };
            write!(f, "\n  {label:<11} {:?}", l.trim_start())?;
        }
        write!(f, "\n  first run:  {}", line(&self.first))?;
        write!(f, "\n  second run: {}", line(&self.second))?;
        Ok(())
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
