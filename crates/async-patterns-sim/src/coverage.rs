//! What a sweep reached: per scenario, how many seeds reached each declared
//! point, and the verdict on the points no seed reached.
//!
//! Coverage is computed from the seed records alone (each holds the points
//! its seed reached), so the shards of a sweep, merged, give exactly the
//! coverage of the single sweep. A shard never fails for coverage: a point
//! one shard missed another may reach; `merge` judges the whole.
//!
//! | guarantee | check |
//! |---|---|
//! | a declared point that must be reached and that no seed reached fails a whole sweep (a warning with `--coverage warn`; a note in a shard) | `coverage::tests::an_unreached_point_fails_a_whole_sweep_only`; `sim/tests/meta.rs` `a_point_never_reached_fails_the_sweep` |
//! | shards merge to the single sweep's coverage | `sweep::tests::shards_merge_to_the_coverage_of_one_sweep` |

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::assert::Point;
use crate::sweep::SeedRecord;

/// One scenario's declared points, as a sweep file's header holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// The scenario.
    pub scenario: String,
    /// Its points, in declaration order.
    pub points: Vec<Point>,
}

/// One point and how many seeds reached it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reach {
    /// The point.
    pub point: Point,
    /// Seeds that reached it (for a `sometimes`: saw it true).
    pub seeds: u64,
}

/// One scenario's coverage in a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    /// The scenario.
    pub scenario: String,
    /// The seeds it ran.
    pub seeds: u64,
    /// Each declared point, in declaration order.
    pub points: Vec<Reach>,
}

impl Coverage {
    /// The points that must be reached and that no seed reached.
    pub fn unreached(&self) -> impl Iterator<Item = &Reach> {
        self.points
            .iter()
            .filter(|r| r.point.must_reach() && r.seeds == 0)
    }
}

/// Each catalogued scenario's coverage over `records` (scenarios without
/// points are left out).
pub fn coverage(catalogues: &[Catalogue], records: &[SeedRecord]) -> Vec<Coverage> {
    catalogues
        .iter()
        .filter(|c| !c.points.is_empty())
        .map(|c| {
            let mine: Vec<&SeedRecord> = records
                .iter()
                .filter(|r| r.scenario == c.scenario)
                .collect();
            Coverage {
                scenario: c.scenario.clone(),
                seeds: mine.len() as u64,
                points: c
                    .points
                    .iter()
                    .map(|p| Reach {
                        point: p.clone(),
                        seeds: mine.iter().filter(|r| r.points.contains(&p.name)).count() as u64,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// How a sweep treats a declared point that no seed reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Judge {
    /// It fails the sweep (the default).
    #[default]
    Fail,
    /// It is reported, and the sweep may still pass (`--coverage warn`).
    Warn,
    /// A shard of a sweep: reported, never failing; `merge` judges.
    Shard,
}

/// Whether `coverage` fails a sweep judged by `judge`.
pub fn fails(coverage: &[Coverage], judge: Judge) -> bool {
    judge == Judge::Fail && coverage.iter().any(|c| c.unreached().next().is_some())
}

/// The coverage table and, for each point never reached, a line saying
/// what the sweep therefore proves nothing about; empty without points.
pub fn report(coverage: &[Coverage], judge: Judge) -> String {
    let mut out = String::new();
    if coverage.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\n| scenario | point | kind | seeds reaching it |");
    let _ = writeln!(out, "|---|---|---|---|");
    for c in coverage {
        for r in &c.points {
            let mark = match (r.point.must_reach(), r.seeds) {
                (true, 0) => " (never)",
                (false, 1..) => " (must be 0)",
                _ => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} of {}{mark} |",
                c.scenario, r.point.name, r.point.kind, r.seeds, c.seeds
            );
        }
    }
    let unreached: Vec<(&str, &Reach)> = coverage
        .iter()
        .flat_map(|c| c.unreached().map(move |r| (c.scenario.as_str(), r)))
        .collect();
    if unreached.is_empty() {
        return out;
    }
    out.push('\n');
    for (scenario, r) in &unreached {
        let _ = writeln!(
            out,
            "NOT REACHED: {scenario}: no seed reached the {} point {:?} ({}): the sweep proves nothing about it",
            r.point.kind, r.point.name, r.point.about
        );
    }
    let _ = match judge {
        Judge::Fail => writeln!(
            out,
            "(a declared point no seed reached fails the sweep: run more seeds or denser plans, \
             or, if the scenario cannot reach it (a pattern it does not use), take it out of \
             its points(); --coverage warn reports it without failing)"
        ),
        Judge::Warn => writeln!(out, "(--coverage warn: reported, not failing the sweep)"),
        Judge::Shard => writeln!(
            out,
            "(a shard: another shard may reach it; `merge` judges the whole sweep's coverage)"
        ),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultPlan;

    fn record(scenario: &str, seed: u64, points: &[&str]) -> SeedRecord {
        SeedRecord {
            scenario: scenario.into(),
            seed,
            plan: FaultPlan::default(),
            trace_hash: "0".repeat(16),
            runs: 2,
            deterministic: true,
            violations: Vec::new(),
            latencies_ns: Vec::new(),
            points: points.iter().map(|p| p.to_string()).collect(),
            recoveries: Vec::new(),
        }
    }

    fn catalogue() -> Vec<Catalogue> {
        vec![
            Catalogue {
                scenario: "a".into(),
                points: vec![
                    Point::reachable("opened", "the breaker opened"),
                    Point::sometimes("full", "the queue filled"),
                    Point::unreachable("lost", "a write was lost"),
                ],
            },
            Catalogue {
                scenario: "b".into(),
                points: Vec::new(),
            },
        ]
    }

    #[test]
    fn each_point_counts_the_seeds_that_reached_it() {
        let records = [
            record("a", 0, &["opened"]),
            record("a", 1, &["opened", "full"]),
            record("a", 2, &[]),
            record("b", 0, &["opened"]),
        ];
        let cov = coverage(&catalogue(), &records);
        assert_eq!(cov.len(), 1, "a scenario without points has no coverage");
        assert_eq!(cov[0].seeds, 3);
        let seeds: Vec<u64> = cov[0].points.iter().map(|r| r.seeds).collect();
        assert_eq!(seeds, [2, 1, 0]);
        assert_eq!(cov[0].unreached().count(), 0, "unreachable: 0 is right");
    }

    #[test]
    fn an_unreached_point_fails_a_whole_sweep_only() {
        let cov = coverage(&catalogue(), &[record("a", 0, &["opened"])]);
        let names: Vec<&str> = cov[0].unreached().map(|r| r.point.name.as_str()).collect();
        assert_eq!(names, ["full"]);
        assert!(fails(&cov, Judge::Fail));
        assert!(!fails(&cov, Judge::Warn));
        assert!(!fails(&cov, Judge::Shard));
        let text = report(&cov, Judge::Fail);
        assert!(
            text.contains(
                "NOT REACHED: a: no seed reached the sometimes point \"full\" (the queue filled): \
                 the sweep proves nothing about it"
            ),
            "{text}"
        );
        assert!(
            text.contains("| a | full | sometimes | 0 of 1 (never) |"),
            "{text}"
        );
        assert!(report(&cov, Judge::Shard).contains("`merge` judges"));
        assert!(report(&cov, Judge::Warn).contains("not failing"));
        let all = coverage(&catalogue(), &[record("a", 0, &["opened", "full", "lost"])]);
        assert!(!fails(&all, Judge::Fail));
        let text = report(&all, Judge::Fail);
        assert!(
            text.contains("| a | lost | unreachable | 1 of 1 (must be 0) |"),
            "{text}"
        );
        assert!(!text.contains("NOT REACHED"), "{text}");
        assert_eq!(report(&[], Judge::Fail), "");
    }
}
