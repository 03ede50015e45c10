//! Deterministic simulations of the patterns over turmoil's simulated TCP.
//!
//! A scenario is a pure function of `(seed, fault plan)`: turmoil's RNG,
//! the network's latencies and every workload choice come from the seed;
//! time is turmoil's (tokio's paused clock); nothing iterates a hash map.
//! Each run returns its event trace, a hash of it, a few metrics and the
//! invariant violations it found. A sweep runs every seed twice and
//! compares the trace hashes, so nondeterminism is caught on every run.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub mod aggregator;
pub mod resilient_client;

/// One fault: a partition between two named hosts, from `start` for
/// `duration` (both after the simulation begins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// When the link goes down.
    pub start: Duration,
    /// How long it stays down.
    pub duration: Duration,
}

/// The faults a run injects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Partitions between the client and the server.
    pub partitions: Vec<Partition>,
}

impl FaultPlan {
    /// The plan a seed gets when none is given: one partition starting
    /// between 0.5 s and 2.5 s, lasting between 0.5 s and 2.5 s.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = async_patterns::rng::SplitMix64::derive(seed, 0xfa17);
        let ms = |rng: &mut async_patterns::rng::SplitMix64| {
            Duration::from_millis(rng.between(500, 2_500))
        };
        let start = ms(&mut rng);
        let duration = ms(&mut rng);
        FaultPlan {
            partitions: vec![Partition { start, duration }],
        }
    }
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every event, in order, stamped with virtual time.
    pub trace: Vec<String>,
    /// A hash of the trace (fixed-key SipHash): equal seeds, equal hashes.
    pub trace_hash: u64,
    /// Invariant violations, described.
    pub violations: Vec<String>,
    /// Latencies of the logical requests that succeeded.
    pub latencies: Vec<Duration>,
    /// Faults injected.
    pub faults: usize,
}

/// A scenario: a name, what it checks, and the run itself.
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it exercises and which invariants it checks.
    pub checks: &'static str,
    /// Runs one seed under a plan.
    pub run: fn(u64, &FaultPlan) -> Outcome,
}

/// Every scenario.
pub fn scenarios() -> Vec<Scenario> {
    vec![resilient_client::SCENARIO, aggregator::SCENARIO]
}

/// An event log shared by the hosts of one simulation.
#[derive(Clone, Default)]
pub struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    /// Records `event` at virtual time `at`.
    pub fn log(&self, at: Duration, event: impl AsRef<str>) {
        self.0.lock().expect("trace lock").push(format!(
            "{:>9.3} ms  {}",
            at.as_secs_f64() * 1e3,
            event.as_ref()
        ));
    }

    /// The events so far.
    pub fn events(&self) -> Vec<String> {
        self.0.lock().expect("trace lock").clone()
    }
}

/// The trace's hash: std's SipHash with fixed keys, stable for a build.
pub fn hash_trace(trace: &[String]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    trace.hash(&mut h);
    h.finish()
}
