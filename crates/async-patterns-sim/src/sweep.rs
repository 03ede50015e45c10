//! Sweeps: many seeds on every core; the versioned JSON record a sweep
//! writes (a header, then one line per seed) and the checks that let
//! `merge` put shards together only when they are one sweep of one build;
//! and the report (table, failures with their replay lines, verdict) that
//! a sweep and a merge of its shards both print.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

use async_patterns_stats::LatencyRecorder;
use serde::{Deserialize, Serialize};

use crate::coverage::{Catalogue, Coverage, Judge, coverage};
use crate::fault::{FaultPlan, PlanError, Swarm};
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
    /// The scenario's declared points the seed reached (its first run),
    /// in declaration order: what [`coverage`](crate::coverage) counts.
    pub points: Vec<String>,
    /// Each recovery property's time to hold after the last fault's end,
    /// in nanoseconds (`None`: it never did), if the run had a recovery
    /// phase (see [`liveness`](crate::liveness)).
    pub recoveries: Vec<(String, Option<u64>)>,
}

impl SeedRecord {
    /// Whether the seed failed (a violation, or two different runs: a
    /// record whose `deterministic` is false fails even without the
    /// violation a sweep adds for it).
    pub fn failed(&self) -> bool {
        !self.violations.is_empty() || !self.deterministic
    }
}

/// Runs `seeds` of `scenario` on every core (each simulation is
/// single-threaded and independent), each under the plan `swarm` draws for
/// the seed (`None`: the scenario's own [`Scenario::swarm`](crate::Scenario::swarm)),
/// with `sabotage`, twice when `twice`; calls `done` after each seed.
/// Returns the records in seed order.
pub fn sweep(
    scenario: &dyn AnyScenario,
    seeds: &[u64],
    swarm: Option<&Swarm>,
    sabotage: Option<&str>,
    twice: bool,
    done: &(dyn Fn() + Sync),
) -> Result<Vec<SeedRecord>, PlanError> {
    let mut info = scenario.info();
    if let Some(swarm) = swarm {
        info.swarm = swarm.clone();
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    crate::explore::par_map(seeds, workers, |&seed| {
        let mut plan = info.swarm.plan(seed);
        plan.sabotage = sabotage.map(str::to_string);
        let record = run_checked(scenario, seed, &plan, twice)
            .map(|c| record_of(&info.name, seed, plan, &c));
        done();
        record
    })
    .into_iter()
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
        points: c.outcome.points.clone(),
        recoveries: c
            .outcome
            .recoveries
            .iter()
            .map(|r| {
                let ns = r
                    .after
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                (r.name.clone(), ns)
            })
            .collect(),
    }
}

/// The version of the `sweep --json` format this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;

/// One line of a `sweep --json` file: an object with one key naming its
/// kind. The first line is the [`SweepHeader`] (`{"sweep": {...}}`), then
/// one [`SeedRecord`] a line (`{"seed": {...}}`). A later version adds
/// kinds of its own (coverage, a search corpus) and says so in the header's
/// `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Line {
    /// The header: what sweep the records belong to.
    Sweep(SweepHeader),
    /// One seed's record.
    Seed(SeedRecord),
    /// One scenario's coverage, after the records (for a reader: `merge`
    /// counts it again from the records).
    Coverage(Coverage),
}

/// The build a record was made by: trace hashes are comparable only
/// within one. The id hashes the workspace's git commit and `Cargo.lock`,
/// the compiler's version and the profile (never the executable: every job
/// of a CI matrix builds its own); `about` says them in words. Commit
/// before you shard: uncommitted changes are not in the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The id.
    pub id: String,
    /// What it was derived from.
    pub about: String,
}

impl Build {
    /// This binary's build.
    pub fn current() -> Build {
        Build {
            id: env!("ASYNC_PATTERNS_SIM_BUILD_ID").to_string(),
            about: env!("ASYNC_PATTERNS_SIM_BUILD").to_string(),
        }
    }
}

/// What a `sweep --json` file holds: the seed range (and the shard of it),
/// the scenarios, the sabotage, how the plans were drawn and the build.
/// `merge` refuses files whose headers do not make one sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepHeader {
    /// [`FORMAT_VERSION`] when written.
    pub version: u32,
    /// The build that ran it.
    pub build: Build,
    /// The scenarios swept, in order.
    pub scenarios: Vec<String>,
    /// The first seed of the whole sweep (`--from`).
    pub from: u64,
    /// How many seeds the whole sweep has (`--seeds`).
    pub seeds: u64,
    /// This file's shard `[K, N]` of the seeds (`[1, 1]`: all of them).
    pub shard: [u64; 2],
    /// The sabotage every seed ran under, if any.
    pub sabotage: Option<String>,
    /// Runs a seed: 2, or 1 with `--once`.
    pub runs: u32,
    /// The plan-drawing flags given (`--keep 1/4 --max-faults 3`...), empty
    /// for the scenarios' own swarms: replay lines repeat them.
    pub swarm: String,
    /// Each scenario's trace hash for the sweep's first seed (`from`),
    /// whatever the shard: shards whose code behaves differently (a change
    /// not committed, so not in the build id) disagree here, and `merge`
    /// refuses them.
    pub probes: Vec<Probe>,
    /// Each scenario's declared points: what coverage is counted against,
    /// so `merge` knows a point that no shard reached.
    pub catalogue: Vec<Catalogue>,
}

/// One scenario's trace hash for a fixed seed: see [`SweepHeader::probes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// The scenario.
    pub scenario: String,
    /// The seed (the sweep's `from`).
    pub seed: u64,
    /// Its first run's trace hash, in hex.
    pub trace_hash: String,
}

impl SweepHeader {
    /// The sweep, as the flags that ran it, for messages.
    fn describe(&self) -> String {
        let mut d = format!(
            "--from {} --seeds {} of {}",
            self.from,
            self.seeds,
            self.scenarios.join(", ")
        );
        if let Some(s) = &self.sabotage {
            d += &format!(" under --sabotage {s}");
        }
        if !self.swarm.is_empty() {
            d += &format!(" with {}", self.swarm.trim());
        }
        d
    }

    /// Whether `other` is a shard of the same sweep (all but the shard's K;
    /// the declared points are compared by `points_differ`, by name and
    /// kind: a reworded `about` is the same point).
    fn same_sweep(&self, other: &SweepHeader) -> bool {
        (
            &self.scenarios,
            self.from,
            self.seeds,
            self.shard[1],
            &self.sabotage,
            &self.swarm,
        ) == (
            &other.scenarios,
            other.from,
            other.seeds,
            other.shard[1],
            &other.sabotage,
            &other.swarm,
        )
    }
}

/// A `sweep --json` file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepFile {
    /// Its name, for messages.
    pub name: String,
    /// Its header.
    pub header: SweepHeader,
    /// Its seed records.
    pub records: Vec<SeedRecord>,
}

/// The seeds of one sweep, or of shard `K/N` of it: those whose offset
/// from `from` is K-1 modulo N, among `seeds` seeds.
pub fn shard_seeds(from: u64, seeds: u64, shard: (u64, u64)) -> Result<Vec<u64>, String> {
    let (k, n) = shard;
    if seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    if k == 0 || n == 0 || k > n {
        return Err(format!("shard {k}/{n}: need 1 <= K <= N"));
    }
    // The shard's share: the offsets k-1, k-1+n, ... below `seeds`.
    let share = (seeds - 1) / n + u64::from((seeds - 1) % n >= k - 1);
    if share > MAX_SEEDS {
        return Err(format!(
            "{share} seeds in one process is more than it holds ({MAX_SEEDS}); \
             run fewer with --seeds and --from, or split them over processes with --shard K/N"
        ));
    }
    let Some(last) = from.checked_add(seeds - 1) else {
        let room = (u64::MAX - from).saturating_add(1);
        return Err(format!(
            "--from {from} --seeds {seeds} runs past the last seed ({}): at most {room} seed{} \
             start{} at {from}",
            u64::MAX,
            if room == 1 { "" } else { "s" },
            if room == 1 { "s" } else { "" },
        ));
    };
    if share == 0 {
        return Err(format!(
            "shard {k}/{n} of {seeds} seeds from {from} selects none; use more seeds or fewer shards"
        ));
    }
    Ok((0..share)
        .map(|i| from + (k - 1) + i * n)
        .take_while(|s| *s <= last)
        .collect())
}

/// The most seeds one process runs (their records are held in memory, some
/// hundreds of bytes each); more is split with `--shard`.
pub const MAX_SEEDS: u64 = 1_000_000;

/// Why records cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeError {
    /// A line of a file is not what the format says.
    NotARecord {
        /// The file.
        file: String,
        /// Its line, from 1.
        line: usize,
        /// The parser's message.
        why: String,
    },
    /// A file without the header line (written before the format was
    /// versioned, or not by `sweep --json`).
    NoHeader {
        /// The file.
        file: String,
    },
    /// A file of another format version.
    Version {
        /// The file.
        file: String,
        /// Its version.
        version: u64,
    },
    /// Files written by different builds (trace hashes do not compare).
    DifferentBuilds {
        /// One file, and its build.
        one: Box<(String, Build)>,
        /// Another, and its build.
        other: Box<(String, Build)>,
    },
    /// Files whose code behaves differently: the same scenario and seed
    /// gave different traces (a change the build id does not see).
    DifferentBehaviour {
        /// The scenario.
        scenario: String,
        /// The seed.
        seed: u64,
        /// One file and its trace hash, and another and its.
        files: Box<[(String, String); 2]>,
    },
    /// Files of one sweep but for the points a scenario declares (its
    /// code changed between them): coverage would not add up.
    DifferentPoints {
        /// The scenario.
        scenario: String,
        /// One file, and the points only it declares (`kind "name"`).
        one: (String, Vec<String>),
        /// Another, and the points only it declares.
        other: (String, Vec<String>),
    },
    /// Files of different sweeps (seed ranges, shard counts, scenarios,
    /// sabotages or plan flags).
    DifferentSweeps {
        /// One file, and its sweep.
        one: (String, String),
        /// Another, and its sweep.
        other: (String, String),
    },
    /// The same shard given twice.
    ShardTwice {
        /// The shard's K.
        shard: u64,
        /// Of N.
        of: u64,
        /// The two files.
        files: (String, String),
    },
    /// Shards of the sweep that no file holds: a hole in its seeds.
    MissingShards {
        /// The missing shards' K.
        missing: Vec<u64>,
        /// Of N.
        of: u64,
        /// The sweep.
        sweep: String,
    },
    /// A file whose records do not match its header (a seed it should not
    /// hold, one twice, or one missing: a truncated file).
    Incomplete {
        /// The file.
        file: String,
        /// What is wrong.
        why: String,
    },
    /// A record of a scenario the binary does not know.
    UnknownScenario {
        /// Its name.
        scenario: String,
    },
    /// No files at all.
    Empty,
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::NotARecord { file, line, why } => {
                write!(f, "{file}:{line}: not a line of a sweep record: {why}")
            }
            MergeError::NoHeader { file } => write!(
                f,
                "{file}: no sweep header on its first line (a file from before the format was \
                 versioned, or not written by `sweep --json`): sweep again"
            ),
            MergeError::Version { file, version } => write!(
                f,
                "{file}: format version {version}; this build reads version {FORMAT_VERSION}"
            ),
            MergeError::DifferentBuilds { one, other } => write!(
                f,
                "{} and {} come from different builds (trace hashes compare only within one): \
                 {} ({}) and {} ({}); run every shard from one commit, lock file, compiler and profile",
                one.0, other.0, one.1.id, one.1.about, other.1.id, other.1.about
            ),
            MergeError::DifferentBehaviour {
                scenario,
                seed,
                files,
            } => {
                let [one, other] = &**files;
                write!(
                    f,
                    "{} and {} ran different code: {scenario} seed {seed} traced {} in one and {} \
                     in the other (a change the build id does not see, such as one not \
                     committed); run every shard from the same code",
                    one.0, other.0, one.1, other.1
                )
            }
            MergeError::DifferentPoints {
                scenario,
                one,
                other,
            } => {
                let list = |p: &[String]| {
                    if p.is_empty() {
                        "none".to_string()
                    } else {
                        p.join(", ")
                    }
                };
                write!(
                    f,
                    "not shards of one sweep: {scenario} declares other points in {} (only \
                     there: {}) than in {} (only there: {}); run every shard from the same code",
                    one.0,
                    list(&one.1),
                    other.0,
                    list(&other.1)
                )
            }
            MergeError::DifferentSweeps { one, other } => write!(
                f,
                "not shards of one sweep: {} ran {}, {} ran {}",
                one.0, one.1, other.0, other.1
            ),
            MergeError::ShardTwice { shard, of, files } => write!(
                f,
                "shard {shard}/{of} is given twice ({} and {})",
                files.0, files.1
            ),
            MergeError::MissingShards { missing, of, sweep } => {
                let list: Vec<String> = missing.iter().map(|k| format!("{k}/{of}")).collect();
                write!(
                    f,
                    "a hole in the sweep ({sweep}): no file holds shard {}",
                    list.join(", ")
                )
            }
            MergeError::Incomplete { file, why } => write!(f, "{file}: {why}"),
            MergeError::UnknownScenario { scenario } => {
                write!(f, "records of an unknown scenario {scenario:?}")
            }
            MergeError::Empty => f.write_str("no sweep files to merge"),
        }
    }
}

impl std::error::Error for MergeError {}

/// The text of a `sweep --json` file: the header line, then a line a
/// record.
pub fn write_sweep(header: &SweepHeader, records: &[SeedRecord]) -> String {
    let mut text = serde_json::to_string(&Line::Sweep(header.clone())).unwrap_or_default();
    text.push('\n');
    for r in records {
        text += &serde_json::to_string(&Line::Seed(r.clone())).unwrap_or_default();
        text.push('\n');
    }
    for c in coverage(&header.catalogue, records) {
        text += &serde_json::to_string(&Line::Coverage(c)).unwrap_or_default();
        text.push('\n');
    }
    text
}

/// Reads one `sweep --json` file (`name` is for messages).
pub fn read_sweep(name: &str, text: &str) -> Result<SweepFile, MergeError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let bad = |line: usize, why: String| MergeError::NotARecord {
        file: name.to_string(),
        line: line + 1,
        why,
    };
    let no_header = || MergeError::NoHeader {
        file: name.to_string(),
    };
    let (i, first) = lines.next().ok_or_else(no_header)?;
    // The version first: a later version's header may hold fields this
    // one does not know.
    let value: serde_json::Value =
        serde_json::from_str(first).map_err(|e| bad(i, e.to_string()))?;
    let version = value
        .get("sweep")
        .ok_or_else(no_header)?
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(no_header)?;
    if version != u64::from(FORMAT_VERSION) {
        return Err(MergeError::Version {
            file: name.to_string(),
            version,
        });
    }
    let Line::Sweep(header) = serde_json::from_value(value).map_err(|e| bad(i, e.to_string()))?
    else {
        return Err(no_header());
    };
    let mut records = Vec::new();
    for (i, l) in lines {
        match serde_json::from_str(l).map_err(|e| bad(i, e.to_string()))? {
            Line::Seed(r) => records.push(r),
            // Counted again from the records by whoever reads them.
            Line::Coverage(_) => {}
            Line::Sweep(_) => return Err(bad(i, "a second sweep header".into())),
        }
    }
    Ok(SweepFile {
        name: name.to_string(),
        header,
        records,
    })
}

/// Merges the files of a sharded sweep into one sweep's records (scenarios
/// in `order`, the binary's, then seeds ascending), and the header of the
/// whole. Refuses what is not one whole sweep: different builds or sweeps,
/// a shard twice or missing, a file whose records do not match its header,
/// unknown scenarios.
pub fn merge(
    order: &[String],
    files: Vec<SweepFile>,
) -> Result<(SweepHeader, Vec<SeedRecord>), MergeError> {
    let Some(first) = files.first() else {
        return Err(MergeError::Empty);
    };
    let mut whole = first.header.clone();
    let mut shards: Vec<Option<&str>> = vec![None; whole.shard[1] as usize];
    for f in &files {
        let h = &f.header;
        if h.build.id != whole.build.id {
            return Err(MergeError::DifferentBuilds {
                one: Box::new((first.name.clone(), whole.build.clone())),
                other: Box::new((f.name.clone(), h.build.clone())),
            });
        }
        if let Some((scenario, only_one, only_other)) = points_differ(&whole, h) {
            return Err(MergeError::DifferentPoints {
                scenario,
                one: (first.name.clone(), only_one),
                other: (f.name.clone(), only_other),
            });
        }
        if !h.same_sweep(&whole) {
            return Err(MergeError::DifferentSweeps {
                one: (first.name.clone(), whole.describe()),
                other: (f.name.clone(), h.describe()),
            });
        }
        for p in &h.probes {
            if let Some(q) = whole.probes.iter().find(|q| {
                q.scenario == p.scenario && q.seed == p.seed && q.trace_hash != p.trace_hash
            }) {
                return Err(MergeError::DifferentBehaviour {
                    scenario: p.scenario.clone(),
                    seed: p.seed,
                    files: Box::new([
                        (first.name.clone(), q.trace_hash.clone()),
                        (f.name.clone(), p.trace_hash.clone()),
                    ]),
                });
            }
        }
        let k = h.shard[0];
        let slot = k
            .checked_sub(1)
            .and_then(|i| shards.get_mut(i as usize))
            .ok_or_else(|| MergeError::Incomplete {
                file: f.name.clone(),
                why: format!("shard {k}/{} is not a shard", h.shard[1]),
            })?;
        if let Some(other) = slot {
            return Err(MergeError::ShardTwice {
                shard: k,
                of: h.shard[1],
                files: (other.to_string(), f.name.clone()),
            });
        }
        *slot = Some(&f.name);
        whole.runs = whole.runs.min(h.runs);
        check_records(f)?;
    }
    let missing: Vec<u64> = (1..)
        .zip(&shards)
        .filter(|(_, f)| f.is_none())
        .map(|(k, _)| k)
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingShards {
            missing,
            of: whole.shard[1],
            sweep: whole.describe(),
        });
    }
    whole.shard = [1, 1];
    let mut keyed = Vec::new();
    for r in files.into_iter().flat_map(|f| f.records) {
        let Some(rank) = order.iter().position(|s| *s == r.scenario) else {
            return Err(MergeError::UnknownScenario {
                scenario: r.scenario,
            });
        };
        keyed.push(((rank, r.seed), r));
    }
    keyed.sort_by_key(|(k, _)| *k);
    Ok((whole, keyed.into_iter().map(|(_, r)| r).collect()))
}

/// A file's records are exactly its header's: each scenario's seeds of its
/// shard, once each, under its sabotage.
/// The first scenario whose declared points differ between two headers,
/// and the points (`kind "name"`) only in each.
fn points_differ(
    one: &SweepHeader,
    other: &SweepHeader,
) -> Option<(String, Vec<String>, Vec<String>)> {
    let named = |c: &Catalogue| -> Vec<String> {
        c.points
            .iter()
            .map(|p| format!("{} {:?}", p.kind, p.name))
            .collect()
    };
    one.catalogue.iter().find_map(|a| {
        let b = other.catalogue.iter().find(|b| b.scenario == a.scenario)?;
        let (a_points, b_points) = (named(a), named(b));
        if a_points == b_points {
            return None;
        }
        let only = |x: &[String], y: &[String]| -> Vec<String> {
            x.iter().filter(|p| !y.contains(p)).cloned().collect()
        };
        Some((
            a.scenario.clone(),
            only(&a_points, &b_points),
            only(&b_points, &a_points),
        ))
    })
}

fn check_records(f: &SweepFile) -> Result<(), MergeError> {
    let h = &f.header;
    let bad = |why: String| MergeError::Incomplete {
        file: f.name.clone(),
        why,
    };
    let seeds = shard_seeds(h.from, h.seeds, (h.shard[0], h.shard[1])).map_err(&bad)?;
    let mut want: BTreeSet<(&str, u64)> = h
        .scenarios
        .iter()
        .flat_map(|s| seeds.iter().map(move |seed| (s.as_str(), *seed)))
        .collect();
    for r in &f.records {
        if r.plan.sabotage != h.sabotage {
            return Err(bad(format!(
                "{} seed {} ran under {:?}, the header says {:?}",
                r.scenario, r.seed, r.plan.sabotage, h.sabotage
            )));
        }
        if !want.remove(&(r.scenario.as_str(), r.seed)) {
            return Err(bad(format!(
                "{} seed {} appears twice, or is not in shard {}/{} of {}",
                r.scenario,
                r.seed,
                h.shard[0],
                h.shard[1],
                h.describe()
            )));
        }
    }
    if let Some((scenario, seed)) = want.first() {
        return Err(bad(format!(
            "{} record(s) missing, from {scenario} seed {seed} (a sweep cut short, or a truncated file)",
            want.len()
        )));
    }
    Ok(())
}

/// The report of a sweep (or a merge): the table, each failure with its
/// replay line, and the verdict. `replay` is the command prefix that runs
/// the user's binary (`cargo run -p sim --release --`); `flags`, the
/// plan-drawing flags the sweep was given, which replay lines repeat;
/// `coverage` and `judge`, what the sweep reached of the scenarios'
/// declared points and how a point never reached counts.
pub fn report(
    records: &[SeedRecord],
    replay: &str,
    flags: &str,
    coverage: &[Coverage],
    judge: Judge,
) -> String {
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
    let mut no_latency = false;
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
            no_latency = true;
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
    if no_latency {
        let _ = writeln!(
            out,
            "(latency n/a: no request latency was recorded; a scenario records one with \
             ctx.latency(..))"
        );
    }
    for r in records.iter().filter(|r| r.failed()) {
        let _ = writeln!(out, "\nFAILED {} seed {}:", r.scenario, r.seed);
        for v in &r.violations {
            let _ = writeln!(out, "  {v}");
        }
        let line = replay_line(
            replay,
            &r.scenario,
            r.seed,
            r.plan.sabotage.as_deref(),
            None,
            flags,
        );
        // One run of a nondeterministic seed may well pass: its replay runs
        // it twice, and shows where the runs differ.
        let line = if r.deterministic { line } else { twice(&line) };
        let _ = writeln!(out, "  replay: {line}");
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
    out += &recovery_table(records);
    out += &crate::coverage::report(coverage, judge);
    let failing = records.iter().filter(|r| r.failed()).count();
    let total = records.len();
    if failing == 0 {
        let checked = if records.iter().all(|r| r.runs >= 2) {
            "traces deterministic"
        } else {
            "determinism not checked"
        };
        let unreached: usize = coverage.iter().map(|c| c.unreached().count()).sum();
        if crate::coverage::fails(coverage, judge) {
            let _ = writeln!(
                out,
                "\nFAIL: {}{under}, 0 violations, {checked}, but {unreached} declared \
                 point(s) never reached",
                seeds(total)
            );
        } else {
            let _ = writeln!(
                out,
                "\nPASS: {}{under}, 0 violations, {checked}",
                seeds(total)
            );
        }
    } else {
        let violating = records
            .iter()
            .filter(|r| r.violations.iter().any(|v| v.invariant != "deterministic"))
            .count();
        let nondeterministic = records.iter().filter(|r| !r.deterministic).count();
        let _ = writeln!(
            out,
            "\nFAIL: {failing} of {}{under} failing ({violating} with violations, {nondeterministic} nondeterministic)",
            seeds(total)
        );
    }
    out
}

/// Per scenario and recovery property: the seeds with a recovery phase,
/// the worst recovery time after the last fault's end, and the seeds in
/// which it never held; empty when no record has a phase.
fn recovery_table(records: &[SeedRecord]) -> String {
    struct Row<'a> {
        scenario: &'a str,
        name: &'a str,
        judged: usize,
        worst: Option<u64>,
        never: usize,
    }
    let mut rows: Vec<Row<'_>> = Vec::new();
    for r in records {
        for (name, after) in &r.recoveries {
            let i = match rows
                .iter()
                .position(|row| row.scenario == r.scenario && row.name == name)
            {
                Some(i) => i,
                None => {
                    rows.push(Row {
                        scenario: &r.scenario,
                        name,
                        judged: 0,
                        worst: None,
                        never: 0,
                    });
                    rows.len() - 1
                }
            };
            let row = &mut rows[i];
            row.judged += 1;
            match after {
                Some(ns) => row.worst = Some(row.worst.map_or(*ns, |w| w.max(*ns))),
                None => row.never += 1,
            }
        }
    }
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\n| scenario | eventually | seeds judged | worst recovery | never held |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for row in rows {
        let worst = row.worst.map_or("n/a".to_string(), |ns| {
            format!("{:.1?}", Duration::from_nanos(ns))
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {worst} | {} |",
            row.scenario, row.name, row.judged, row.never
        );
    }
    out
}

/// "1 seed", "2 seeds".
fn seeds(n: usize) -> String {
    if n == 1 {
        "1 seed".into()
    } else {
        format!("{n} seeds")
    }
}

/// Whether a sweep (or a merge) with these records and this coverage
/// fails: a failing seed, or a declared point never reached when `judge`
/// says that fails.
pub fn fails(records: &[SeedRecord], coverage: &[Coverage], judge: Judge) -> bool {
    records.iter().any(SeedRecord::failed) || crate::coverage::fails(coverage, judge)
}

/// The command that replays one run exactly (`flags`: the plan-drawing
/// flags the seed's plan was drawn with, if it was not given as a file).
pub fn replay_line(
    prefix: &str,
    scenario: &str,
    seed: u64,
    sabotage: Option<&str>,
    plan: Option<&std::path::Path>,
    flags: &str,
) -> String {
    let mut line = format!("{prefix} replay {scenario} --seed {seed}");
    if plan.is_none() && !flags.trim().is_empty() {
        line += &format!(" {}", flags.trim());
    }
    if let Some(s) = sabotage {
        line += &format!(" --sabotage {s}");
    }
    if let Some(p) = plan {
        line += &format!(" --plan {}", p.display());
    }
    line + " --trace"
}

/// A replay line that runs the seed twice (`--twice`, before `--trace`).
pub fn twice(line: &str) -> String {
    match line.strip_suffix(" --trace") {
        Some(head) => format!("{head} --twice --trace"),
        None => format!("{line} --twice"),
    }
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
            points: Vec::new(),
            recoveries: Vec::new(),
            guides: Default::default(),
            fired: Vec::new(),
            moments: Vec::new(),
            ended: Duration::ZERO,
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
            divergence: None,
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
            divergence: crate::trace::Divergence::between(&["a".into()], &["b".into()]),
        };
        assert!(!record_of("s", 0, FaultPlan::default(), &differs).deterministic);
        let once = Checked {
            outcome: outcome(&[], vec![]),
            again: None,
            divergence: None,
        };
        assert_eq!(record_of("s", 0, FaultPlan::default(), &once).runs, 1);
    }

    fn header(scenarios: &[&str], seeds: u64, shard: [u64; 2]) -> SweepHeader {
        SweepHeader {
            version: FORMAT_VERSION,
            build: Build::current(),
            scenarios: scenarios.iter().map(|s| s.to_string()).collect(),
            from: 0,
            seeds,
            shard,
            sabotage: None,
            runs: 2,
            swarm: String::new(),
            // A different hash for each scenario: probes compare only
            // scenario with scenario.
            probes: scenarios
                .iter()
                .map(|s| Probe {
                    scenario: s.to_string(),
                    seed: 0,
                    trace_hash: format!("{:0>16}", s),
                })
                .collect(),
            catalogue: Vec::new(),
        }
    }

    /// Shard `k` of `n` of a sweep of `seeds` seeds of `scenarios`, as a
    /// file named `name`.
    fn shard(name: &str, scenarios: &[&str], seeds: u64, k: u64, n: u64) -> SweepFile {
        let h = header(scenarios, seeds, [k, n]);
        let records: Vec<SeedRecord> = scenarios
            .iter()
            .flat_map(|s| {
                shard_seeds(0, seeds, (k, n))
                    .unwrap()
                    .into_iter()
                    .map(move |seed| record(s, seed, &[], vec![]))
            })
            .collect();
        read_sweep(name, &write_sweep(&h, &records)).unwrap()
    }

    #[test]
    fn a_sweep_file_is_a_header_then_a_record_a_line_and_a_bad_line_is_named() {
        let h = header(&["s"], 2, [1, 1]);
        let text = write_sweep(
            &h,
            &[record("s", 0, &[1], vec![]), record("s", 1, &[], vec![])],
        );
        assert!(
            text.starts_with(r#"{"sweep":{"version":2,"build":{"id":""#),
            "{text}"
        );
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with(r#"{"seed":{"scenario":"s","seed":0,"#)
        );
        let read = read_sweep("f.json", &text.replace('\n', "\n\n")).unwrap();
        assert_eq!(read.header, h);
        assert_eq!(
            read.records.iter().map(|r| r.seed).collect::<Vec<_>>(),
            [0, 1]
        );
        let err = read_sweep("f.json", &format!("{text}{{\"x\":1}}\n")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("f.json:4: not a line of a sweep record: "),
            "{err}"
        );
        // No header (the format before it was versioned), a newer version,
        // an empty file, a second header.
        let old = serde_json::to_string(&record("s", 0, &[], vec![])).unwrap();
        for text in [old.as_str(), ""] {
            assert_eq!(
                read_sweep("f.json", text),
                Err(MergeError::NoHeader {
                    file: "f.json".into()
                })
            );
        }
        let newer = text.replacen(r#""version":2"#, r#""version":3,"coverage":{}"#, 1);
        assert_eq!(
            read_sweep("f.json", &newer).unwrap_err().to_string(),
            "f.json: format version 3; this build reads version 2"
        );
        let first = text.lines().next().unwrap();
        assert!(read_sweep("f.json", &format!("{first}\n{first}\n")).is_err());
    }

    #[test]
    fn shard_seeds_split_a_range_without_gaps_or_overlap() {
        for (seeds, n) in [(12, 4), (13, 4), (3, 4), (1, 1), (7, 3)] {
            let mut all: Vec<u64> = (1..=n)
                .filter_map(|k| shard_seeds(100, seeds, (k, n)).ok())
                .flatten()
                .collect();
            all.sort_unstable();
            assert_eq!(
                all,
                (100..100 + seeds).collect::<Vec<_>>(),
                "{seeds} in {n}"
            );
        }
        assert_eq!(shard_seeds(0, 10, (2, 4)).unwrap(), [1, 5, 9]);
        assert!(
            shard_seeds(0, 3, (4, 4))
                .unwrap_err()
                .contains("selects none")
        );
        assert!(shard_seeds(0, 0, (1, 1)).is_err());
        assert!(shard_seeds(0, 5, (0, 1)).is_err() && shard_seeds(0, 5, (3, 2)).is_err());
        assert_eq!(shard_seeds(u64::MAX, 1, (1, 1)).unwrap(), [u64::MAX]);
        let err = shard_seeds(u64::MAX, 2, (1, 1)).unwrap_err();
        assert!(err.contains("past the last seed"), "{err}");
        assert!(
            err.ends_with(": at most 1 seed starts at 18446744073709551615"),
            "{err}"
        );
        let err = shard_seeds(u64::MAX - 1, 3, (1, 1)).unwrap_err();
        assert!(
            err.ends_with(": at most 2 seeds start at 18446744073709551614"),
            "{err}"
        );
        assert!(shard_seeds(0, MAX_SEEDS + 1, (1, 1)).is_err());
        assert_eq!(
            shard_seeds(0, 2 * MAX_SEEDS, (2, 2)).unwrap().len() as u64,
            MAX_SEEDS
        );
    }

    #[test]
    fn the_report_shows_the_worst_recovery_per_property() {
        let with = |seed: u64, after: &[Option<u64>]| {
            let mut r = record("s", seed, &[1], vec![]);
            r.recoveries = ["up", "drained"]
                .iter()
                .zip(after)
                .map(|(n, a)| (n.to_string(), a.map(|ms| ms * 1_000_000)))
                .collect();
            r
        };
        let records = [
            with(0, &[Some(300), Some(10)]),
            with(1, &[Some(1_200), None]),
            // No phase (its faults outlasted the run): not counted.
            record("s", 2, &[1], vec![]),
        ];
        let text = report(&records, "x", "", &[], Judge::Fail);
        assert!(
            text.contains(
                "| scenario | eventually | seeds judged | worst recovery | never held |\n\
                 |---|---|---|---|---|\n\
                 | s | up | 2 | 1.2s | 0 |\n\
                 | s | drained | 2 | 10.0ms | 1 |\n"
            ),
            "{text}"
        );
        let none = report(&records[2..], "x", "", &[], Judge::Fail);
        assert!(!none.contains("eventually"), "{none}");
    }

    #[test]
    fn shards_merge_to_the_coverage_of_one_sweep() {
        use crate::assert::Point;
        let catalogue = vec![Catalogue {
            scenario: "s".into(),
            points: vec![
                Point::reachable("odd", "an odd seed"),
                Point::reachable("seven", "seed 7"),
                Point::sometimes("never", "no seed"),
            ],
        }];
        let reached = |seed: u64| {
            let mut r = record("s", seed, &[], vec![]);
            if seed % 2 == 1 {
                r.points.push("odd".into());
            }
            if seed == 7 {
                r.points.push("seven".into());
            }
            r
        };
        let mut whole = header(&["s"], 10, [1, 1]);
        whole.catalogue = catalogue.clone();
        let single: Vec<SeedRecord> = (0..10).map(reached).collect();
        let one = coverage(&catalogue, &single);
        assert_eq!(
            one[0].points.iter().map(|r| r.seeds).collect::<Vec<_>>(),
            [5, 1, 0]
        );
        let files: Vec<SweepFile> = (1..=3)
            .map(|k| {
                let mut h = header(&["s"], 10, [k, 3]);
                h.catalogue = catalogue.clone();
                let mine: Vec<SeedRecord> = shard_seeds(0, 10, (k, 3))
                    .unwrap()
                    .into_iter()
                    .map(reached)
                    .collect();
                let text = write_sweep(&h, &mine);
                // The file says its own coverage on its last line.
                assert!(
                    text.lines()
                        .last()
                        .unwrap()
                        .starts_with(r#"{"coverage":{"scenario":"s""#)
                );
                read_sweep(&format!("{k}.json"), &text).unwrap()
            })
            .collect();
        // Shard 1 holds seeds 0, 3, 6, 9: never seed 7.
        assert_eq!(
            coverage(&catalogue, &files[0].records)[0].points[1].seeds,
            0
        );
        let (merged, records) = merge(&["s".into()], files.clone()).unwrap();
        assert_eq!(coverage(&merged.catalogue, &records), one);
        assert!(fails(&records, &one, Judge::Fail));
        // A shard declaring other points is refused, naming them.
        let mut other = files;
        other[2].header.catalogue[0].points.pop();
        let err = merge(&["s".into()], other).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not shards of one sweep: s declares other points in 1.json (only there: \
             sometimes \"never\") than in 3.json (only there: none); run every shard from the \
             same code"
        );
    }

    #[test]
    fn merge_orders_by_scenario_then_seed_and_refuses_what_is_not_one_whole_sweep() {
        let order = ["b".to_string(), "a".to_string()];
        let files = || (1..=3).map(|k| shard(&format!("{k}.json"), &["a", "b"], 8, k, 3));
        let (whole, merged) = merge(&order, files().collect()).unwrap();
        assert_eq!(whole.shard, [1, 1]);
        let keys: Vec<(&str, u64)> = merged
            .iter()
            .map(|r| (r.scenario.as_str(), r.seed))
            .collect();
        let want: Vec<(&str, u64)> = ["b", "a"]
            .iter()
            .flat_map(|s| (0..8).map(move |seed| (*s, seed)))
            .collect();
        assert_eq!(keys, want);
        assert_eq!(merge(&order, vec![]), Err(MergeError::Empty));
        // A hole: shard 2 of 3 missing.
        let holed: Vec<SweepFile> = files().filter(|f| f.header.shard[0] != 2).collect();
        assert_eq!(
            merge(&order, holed).unwrap_err().to_string(),
            "a hole in the sweep (--from 0 --seeds 8 of a, b): no file holds shard 2/3"
        );
        // A shard twice.
        let mut twice: Vec<SweepFile> = files().collect();
        twice.push(shard("again.json", &["a", "b"], 8, 1, 3));
        assert_eq!(
            merge(&order, twice).unwrap_err().to_string(),
            "shard 1/3 is given twice (1.json and again.json)"
        );
        // Seeds 0, 2, 4 with 101, 103, 105: two different sweeps.
        let mut far = shard("far.json", &["a", "b"], 6, 2, 2);
        far.header.from = 100;
        let err = merge(&order, vec![shard("near.json", &["a", "b"], 6, 1, 2), far]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not shards of one sweep: near.json ran --from 0 --seeds 6 of a, b, \
             far.json ran --from 100 --seeds 6 of a, b"
        );
        // Different builds.
        let mut other = shard("2.json", &["a", "b"], 8, 2, 3);
        other.header.build.id = "0123".into();
        let mut mixed: Vec<SweepFile> = files().filter(|f| f.header.shard[0] != 2).collect();
        mixed.push(other);
        assert!(matches!(
            merge(&order, mixed),
            Err(MergeError::DifferentBuilds { .. })
        ));
        // The same build id, but the code behaves differently (a change
        // not committed): the probe's trace differs.
        let mut changed = shard("2.json", &["a", "b"], 8, 2, 3);
        changed.header.probes[1].trace_hash = "00000000000000cd".into();
        // (b's probe in the other files is "000000000000000b".)
        let mut mixed: Vec<SweepFile> = files().filter(|f| f.header.shard[0] != 2).collect();
        mixed.push(changed);
        assert_eq!(
            merge(&order, mixed).unwrap_err().to_string(),
            "1.json and 2.json ran different code: b seed 0 traced 000000000000000b in one and \
             00000000000000cd in the other (a change the build id does not see, such as one not \
             committed); run every shard from the same code"
        );
        // A truncated file, and one with a seed it should not hold.
        let mut cut: Vec<SweepFile> = files().collect();
        cut[1].records.pop();
        assert_eq!(
            merge(&order, cut).unwrap_err().to_string(),
            "2.json: 1 record(s) missing, from b seed 7 (a sweep cut short, or a truncated file)"
        );
        let mut stray: Vec<SweepFile> = files().collect();
        stray[0].records[0].seed = 1;
        assert!(
            merge(&order, stray)
                .unwrap_err()
                .to_string()
                .contains("a seed 1 appears twice, or is not in shard 1/3")
        );
        // Sabotages differ: different sweeps.
        let mut bugged = shard("bug.json", &["a", "b"], 8, 2, 3);
        bugged.header.sabotage = Some("bug".into());
        let mut mixed: Vec<SweepFile> = files().filter(|f| f.header.shard[0] != 2).collect();
        mixed.push(bugged);
        assert!(
            merge(&order, mixed)
                .unwrap_err()
                .to_string()
                .contains("under --sabotage bug")
        );
        // A scenario the binary does not know.
        assert_eq!(
            merge(&order, vec![shard("c.json", &["c"], 1, 1, 1)]),
            Err(MergeError::UnknownScenario {
                scenario: "c".into()
            })
        );
    }

    #[test]
    fn a_record_that_is_not_deterministic_fails_without_a_violation() {
        let mut r = record("a", 1, &[], vec![]);
        assert!(!r.failed());
        r.deterministic = false;
        assert!(r.failed());
        let text = report(&[r], "x", "", &[], Judge::Fail);
        assert!(text.contains("FAILED a seed 1:"), "{text}");
        assert!(
            text.contains("replay: x replay a --seed 1 --twice --trace"),
            "one run of it may pass: {text}"
        );
        assert!(
            text.ends_with("FAIL: 1 of 1 seed failing (0 with violations, 1 nondeterministic)\n"),
            "{text}"
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
        let text = report(&records, "my-sim", "", &[], Judge::Fail);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "| a | 4 | 3 | 20.0ms | 30.0ms | 1 |", "{text}");
        assert_eq!(lines[3], "| b | 1 | 0 | n/a | n/a | 0 |", "{text}");
        assert_eq!(
            lines[4],
            "(each seed ran twice, and its trace hashes were compared)"
        );
        // b recorded no latency: the table says where n/a comes from; a
        // report whose scenarios all recorded some says nothing of it.
        assert!(
            lines[5].starts_with("(latency n/a: no request latency was recorded"),
            "{text}"
        );
        let measured = report(&records[..1], "my-sim", "", &[], Judge::Fail);
        assert!(!measured.contains("latency n/a"), "{measured}");
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
            report(&clean, "x", "", &[], Judge::Fail)
                .lines()
                .last()
                .unwrap(),
            "PASS: 1 seed, 0 violations, traces deterministic"
        );
        let mut once = record("a", 1, &[], vec![]);
        once.runs = 1;
        once.plan.sabotage = Some("bug".into());
        let text = report(&[once], "x", "", &[], Judge::Fail);
        assert!(
            text.contains("(seeds run once: their determinism was not checked)"),
            "{text}"
        );
        assert_eq!(
            text.lines().last().unwrap(),
            "PASS: 1 seed under --sabotage bug, 0 violations, determinism not checked"
        );
        let mut failing = record("a", 7, &[], v());
        failing.plan.sabotage = Some("bug".into());
        assert!(
            report(&[failing], "x", "--max-faults 2", &[], Judge::Fail)
                .contains("replay: x replay a --seed 7 --max-faults 2 --sabotage bug --trace")
        );
    }
}
