//! Sweeps: many seeds on every core, one JSON record per seed, and the
//! report (table, failures with their replay lines, verdict) that a sweep
//! and a merge of sharded sweeps both print.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_patterns_stats::LatencyRecorder;
use serde::{Deserialize, Serialize};

use crate::fault::{FaultPlan, PlanError};
use crate::run::run_checked;
use crate::scenario::AnyScenario;
use crate::trace::Violation;

/// One seed's result: what `sweep --json` writes (one JSON object a line)
/// and `merge` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRecord {
    /// The scenario.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The plan it ran (with its sabotage, if any).
    pub plan: FaultPlan,
    /// The first run's trace hash, in hex.
    pub trace_hash: String,
    /// How many times it ran: 2, or 1 when the determinism check was off.
    pub runs: u32,
    /// Whether the second run gave the same trace (true if only one ran).
    pub deterministic: bool,
    /// The invariants broken (a nondeterministic seed has one more).
    pub violations: Vec<Violation>,
    /// The successful requests' latencies: `[nanoseconds, how many]`,
    /// ascending (exact, so merged shards summarise as one sweep does).
    pub latencies_ns: Vec<(u64, u64)>,
}

impl SeedRecord {
    /// Whether the seed failed (a violation, or two different runs).
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }
}

/// Runs `seeds` of `scenario` on every core (each simulation is
/// single-threaded and independent), each under the seed's swarm plan with
/// `sabotage`, twice when `twice`; calls `done` after each seed. Returns
/// the records in seed order.
pub fn sweep(
    scenario: &dyn AnyScenario,
    seeds: &[u64],
    sabotage: Option<&str>,
    twice: bool,
    done: &(dyn Fn() + Sync),
) -> Result<Vec<SeedRecord>, PlanError> {
    let info = scenario.info();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<SeedRecord, PlanError>>>> =
        Mutex::new(seeds.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(seeds.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    let mut plan = info.swarm.plan(seed);
                    plan.sabotage = sabotage.map(str::to_string);
                    let record = run_checked(scenario, seed, &plan, twice)
                        .map(|c| record_of(&info.name, seed, plan, &c));
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(record);
                    done();
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every seed ran"))
        .collect()
}

fn record_of(scenario: &str, seed: u64, plan: FaultPlan, c: &crate::run::Checked) -> SeedRecord {
    let mut latencies: Vec<u64> = c
        .outcome
        .latencies
        .iter()
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .collect();
    latencies.sort_unstable();
    let mut histogram: Vec<(u64, u64)> = Vec::new();
    for ns in latencies {
        match histogram.last_mut() {
            Some((v, n)) if *v == ns => *n += 1,
            _ => histogram.push((ns, 1)),
        }
    }
    SeedRecord {
        scenario: scenario.to_string(),
        seed,
        plan,
        trace_hash: format!("{:016x}", c.outcome.trace_hash),
        runs: if c.again.is_some() { 2 } else { 1 },
        deterministic: c.deterministic(),
        violations: c.outcome.violations.clone(),
        latencies_ns: histogram,
    }
}

/// Why records cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeError {
    /// A line of a file is not a seed record.
    NotARecord {
        /// The file.
        file: String,
        /// Its line, from 1.
        line: usize,
        /// The parser's message.
        why: String,
    },
    /// One scenario's seed appears twice (shards overlap, or a file was
    /// given twice).
    Duplicate {
        /// The scenario.
        scenario: String,
        /// The seed.
        seed: u64,
    },
    /// A record of a scenario the binary does not know.
    UnknownScenario {
        /// Its name.
        scenario: String,
    },
    /// Records run under different sabotages (or some under none): they
    /// are not one sweep.
    MixedSabotage {
        /// One record's sabotage.
        one: Option<String>,
        /// Another's.
        other: Option<String>,
    },
    /// No records at all.
    Empty,
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::NotARecord { file, line, why } => {
                write!(f, "{file}:{line}: not a seed record: {why}")
            }
            MergeError::Duplicate { scenario, seed } => write!(
                f,
                "{scenario} seed {seed} appears twice (overlapping shards, or a file given twice)"
            ),
            MergeError::UnknownScenario { scenario } => {
                write!(f, "records of an unknown scenario {scenario:?}")
            }
            MergeError::MixedSabotage { one, other } => {
                let name = |s: &Option<String>| {
                    s.as_ref()
                        .map_or("no sabotage".to_string(), |s| format!("--sabotage {s}"))
                };
                write!(
                    f,
                    "records run with {} and with {}: not shards of one sweep",
                    name(one),
                    name(other)
                )
            }
            MergeError::Empty => f.write_str("no seed records in the files"),
        }
    }
}

impl std::error::Error for MergeError {}

/// Reads the records of one `sweep --json` file (`name` is for messages).
pub fn read_records(name: &str, text: &str) -> Result<Vec<SeedRecord>, MergeError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| MergeError::NotARecord {
                file: name.to_string(),
                line: i + 1,
                why: e.to_string(),
            })
        })
        .collect()
}

/// Puts records from several shards in one sweep's order: scenarios in
/// `order`, seeds ascending; refuses duplicates and unknown scenarios.
pub fn merge(
    order: &[String],
    mut records: Vec<SeedRecord>,
) -> Result<Vec<SeedRecord>, MergeError> {
    if records.is_empty() {
        return Err(MergeError::Empty);
    }
    if let Some(r) = records
        .iter()
        .find(|r| r.plan.sabotage != records[0].plan.sabotage)
    {
        return Err(MergeError::MixedSabotage {
            one: records[0].plan.sabotage.clone(),
            other: r.plan.sabotage.clone(),
        });
    }
    let mut keys = Vec::with_capacity(records.len());
    for r in &records {
        let Some(rank) = order.iter().position(|s| *s == r.scenario) else {
            return Err(MergeError::UnknownScenario {
                scenario: r.scenario.clone(),
            });
        };
        keys.push((rank, r.seed));
    }
    let mut seen = BTreeSet::new();
    for (key, r) in keys.iter().zip(&records) {
        if !seen.insert(*key) {
            return Err(MergeError::Duplicate {
                scenario: r.scenario.clone(),
                seed: r.seed,
            });
        }
    }
    let mut keyed: Vec<_> = keys.into_iter().zip(records.drain(..)).collect();
    keyed.sort_by_key(|(k, _)| *k);
    Ok(keyed.into_iter().map(|(_, r)| r).collect())
}

/// The report of a sweep (or a merge): the table, each failure with its
/// replay line, and the verdict. `replay` is the command prefix that runs
/// the user's binary (`cargo run -p sim --release --`).
pub fn report(records: &[SeedRecord], replay: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | seeds | failing seeds | latency p50 | latency p99 | faults injected |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let mut scenarios: Vec<&str> = Vec::new();
    for r in records {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
    }
    for name in &scenarios {
        let mine: Vec<&SeedRecord> = records.iter().filter(|r| r.scenario == *name).collect();
        let mut latencies = LatencyRecorder::new(3, Duration::from_secs(3_600))
            .expect("3 significant digits up to an hour is a valid histogram");
        for r in &mine {
            for (ns, n) in &r.latencies_ns {
                for _ in 0..*n {
                    latencies.record(Duration::from_nanos(*ns));
                }
            }
        }
        let faults: usize = mine.iter().map(|r| r.plan.faults.len()).sum();
        let failing = mine.iter().filter(|r| r.failed()).count();
        let (p50, p99) = if latencies.is_empty() {
            ("n/a".to_string(), "n/a".to_string())
        } else {
            let s = latencies.summary();
            (format!("{:.1?}", s.p50), format!("{:.1?}", s.p99))
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {failing} | {p50} | {p99} | {faults} |",
            mine.len()
        );
    }
    if records.iter().all(|r| r.runs >= 2) {
        let _ = writeln!(
            out,
            "(each seed ran twice, and its trace hashes were compared)"
        );
    } else {
        let _ = writeln!(out, "(seeds run once: their determinism was not checked)");
    }
    for r in records.iter().filter(|r| r.failed()) {
        let _ = writeln!(out, "\nFAILED {} seed {}:", r.scenario, r.seed);
        for v in &r.violations {
            let _ = writeln!(out, "  {v}");
        }
        let _ = writeln!(
            out,
            "  replay: {}",
            replay_line(
                replay,
                &r.scenario,
                r.seed,
                r.plan.sabotage.as_deref(),
                None
            )
        );
    }
    let sabotages: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r.plan.sabotage.as_deref())
        .collect();
    let under = if sabotages.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = sabotages.into_iter().collect();
        format!(" under --sabotage {}", names.join(", "))
    };
    let failing = records.iter().filter(|r| r.failed()).count();
    let total = records.len();
    if failing == 0 {
        let checked = if records.iter().all(|r| r.runs >= 2) {
            "traces deterministic"
        } else {
            "determinism not checked"
        };
        let _ = writeln!(out, "\nPASS: {total} seeds{under}, 0 violations, {checked}");
    } else {
        let violating = records
            .iter()
            .filter(|r| r.violations.iter().any(|v| v.invariant != "deterministic"))
            .count();
        let nondeterministic = records.iter().filter(|r| !r.deterministic).count();
        let _ = writeln!(
            out,
            "\nFAIL: {failing} of {total} seeds{under} failing ({violating} with violations, {nondeterministic} nondeterministic)"
        );
    }
    out
}

/// The command that replays one run exactly.
pub fn replay_line(
    prefix: &str,
    scenario: &str,
    seed: u64,
    sabotage: Option<&str>,
    plan: Option<&std::path::Path>,
) -> String {
    let mut line = format!("{prefix} replay {scenario} --seed {seed}");
    if let Some(s) = sabotage {
        line += &format!(" --sabotage {s}");
    }
    if let Some(p) = plan {
        line += &format!(" --plan {}", p.display());
    }
    line + " --trace"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{Fault, FaultKind};
    use crate::plot::Timeline;
    use crate::run::{Checked, Outcome};

    fn outcome(latencies_ms: &[u64], violations: Vec<Violation>) -> Outcome {
        Outcome {
            trace: vec!["x".into()],
            trace_hash: 0xab,
            violations,
            latencies: latencies_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            faults: 0,
            timeline: Timeline::default(),
        }
    }

    fn record(
        scenario: &str,
        seed: u64,
        latencies_ms: &[u64],
        violations: Vec<Violation>,
    ) -> SeedRecord {
        let checked = Checked {
            outcome: outcome(latencies_ms, violations),
            again: Some(0xab),
        };
        record_of(scenario, seed, FaultPlan::default(), &checked)
    }

    #[test]
    fn a_record_keeps_an_exact_latency_histogram() {
        let r = record("s", 3, &[7, 5, 5, 9, 7, 7], vec![]);
        assert_eq!(
            r.latencies_ns,
            vec![(5_000_000, 2), (7_000_000, 3), (9_000_000, 1)]
        );
        assert_eq!((r.seed, r.runs, r.deterministic), (3, 2, true));
        assert_eq!(r.trace_hash, "00000000000000ab");
        let differs = Checked {
            outcome: outcome(&[], vec![]),
            again: Some(1),
        };
        assert!(!record_of("s", 0, FaultPlan::default(), &differs).deterministic);
        let once = Checked {
            outcome: outcome(&[], vec![]),
            again: None,
        };
        assert_eq!(record_of("s", 0, FaultPlan::default(), &once).runs, 1);
    }

    #[test]
    fn records_are_read_a_line_each_and_a_bad_line_is_named() {
        let a = serde_json::to_string(&record("s", 1, &[1], vec![])).unwrap();
        let b = serde_json::to_string(&record("s", 2, &[], vec![])).unwrap();
        let text = format!("{a}\n\n{b}\n");
        let read = read_records("f.json", &text).unwrap();
        assert_eq!(read.iter().map(|r| r.seed).collect::<Vec<_>>(), [1, 2]);
        let err = read_records("f.json", &format!("{a}\n{{\"x\":1}}\n")).unwrap_err();
        assert!(
            err.to_string().starts_with("f.json:2: not a seed record: "),
            "{err}"
        );
        assert_eq!(read_records("f.json", "").unwrap(), vec![]);
    }

    #[test]
    fn merge_orders_by_scenario_then_seed_and_refuses_what_is_not_one_sweep() {
        let order = ["b".to_string(), "a".to_string()];
        let merged = merge(
            &order,
            vec![
                record("a", 2, &[], vec![]),
                record("b", 9, &[], vec![]),
                record("a", 1, &[], vec![]),
                record("b", 3, &[], vec![]),
            ],
        )
        .unwrap();
        let keys: Vec<(&str, u64)> = merged
            .iter()
            .map(|r| (r.scenario.as_str(), r.seed))
            .collect();
        assert_eq!(keys, [("b", 3), ("b", 9), ("a", 1), ("a", 2)]);
        assert_eq!(merge(&order, vec![]), Err(MergeError::Empty));
        assert_eq!(
            merge(&order, vec![record("c", 1, &[], vec![])]),
            Err(MergeError::UnknownScenario {
                scenario: "c".into()
            })
        );
        assert_eq!(
            merge(
                &order,
                vec![
                    record("a", 1, &[], vec![]),
                    record("b", 1, &[], vec![]),
                    record("a", 1, &[], vec![])
                ]
            ),
            Err(MergeError::Duplicate {
                scenario: "a".into(),
                seed: 1
            })
        );
        let mut sabotaged = record("a", 5, &[], vec![]);
        sabotaged.plan.sabotage = Some("bug".into());
        let err = merge(&order, vec![record("a", 1, &[], vec![]), sabotaged]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "records run with no sabotage and with --sabotage bug: not shards of one sweep"
        );
    }

    #[test]
    fn the_report_counts_what_failed_and_how() {
        let v = || vec![Violation::new("inv", "broken")];
        let mut flaky = record(
            "a",
            4,
            &[],
            vec![Violation::new("deterministic", "two hashes")],
        );
        flaky.deterministic = false;
        let mut planned = record("a", 2, &[10, 30], v());
        planned
            .plan
            .faults
            .push(Fault::new(FaultKind::Crash, "h", 1, 1));
        let records = vec![
            record("a", 1, &[20], vec![]),
            planned,
            record("a", 3, &[], v()),
            flaky,
            record("b", 1, &[], vec![]),
        ];
        let text = report(&records, "my-sim");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "| a | 4 | 3 | 20.0ms | 30.0ms | 1 |", "{text}");
        assert_eq!(lines[3], "| b | 1 | 0 | n/a | n/a | 0 |", "{text}");
        assert_eq!(
            lines[4],
            "(each seed ran twice, and its trace hashes were compared)"
        );
        assert!(
            text.contains(
                "\nFAILED a seed 2:\n  inv: broken\n  replay: my-sim replay a --seed 2 --trace\n"
            ),
            "{text}"
        );
        assert!(text.contains("\nFAILED a seed 4:\n"), "{text}");
        assert!(
            !text.contains("FAILED a seed 1") && !text.contains("FAILED b"),
            "{text}"
        );
        assert_eq!(
            lines.last().unwrap(),
            &"FAIL: 3 of 5 seeds failing (2 with violations, 1 nondeterministic)"
        );
        let clean = vec![record("a", 1, &[20], vec![])];
        assert_eq!(
            report(&clean, "x").lines().last().unwrap(),
            "PASS: 1 seeds, 0 violations, traces deterministic"
        );
        let mut once = record("a", 1, &[], vec![]);
        once.runs = 1;
        once.plan.sabotage = Some("bug".into());
        let text = report(&[once], "x");
        assert!(
            text.contains("(seeds run once: their determinism was not checked)"),
            "{text}"
        );
        assert_eq!(
            text.lines().last().unwrap(),
            "PASS: 1 seeds under --sabotage bug, 0 violations, determinism not checked"
        );
        let mut failing = record("a", 7, &[], v());
        failing.plan.sabotage = Some("bug".into());
        assert!(
            report(&[failing], "x").contains("replay: x replay a --seed 7 --sabotage bug --trace")
        );
    }
}
