//! `sim`: list the scenarios, sweep seeds, replay one.
//!
//! ```text
//! sim list
//! sim sweep [--scenario S] [--seeds N] [--from SEED] [--shard K/N]
//! sim replay S --seed X [--plan FILE] [--trace] [--plot out.svg]
//! sim shrink S --seed X [--plan FILE] [--out FILE [--force]]
//! ```
//!
//! `--sabotage NAME` (sweep, replay, shrink) swaps in a deliberately broken
//! pattern, to watch the invariants catch it; `sim list` names them.
//!
//! Bad input (an unknown scenario, a plan that does not parse, a range past
//! the last seed, an output path that cannot be written) exits 2 with a
//! message, before any run; a failing run exits 1. Output paths are checked
//! before the work, and no command replaces an existing file unless told to
//! (`shrink --force`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use async_patterns_stats::LatencyRecorder;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sim::{FaultPlan, Sabotage, Scenario, scenarios};

#[derive(Parser)]
#[command(about = "Deterministic turmoil simulations of async-patterns")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The scenarios and what each checks.
    List,
    /// Run many seeds (each twice, comparing trace hashes) and summarise.
    Sweep {
        /// Only this scenario (default: all).
        #[arg(long)]
        scenario: Option<String>,
        /// How many seeds.
        #[arg(long, default_value_t = 50)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Run only shard K of N (1-based): the seeds whose offset from
        /// `--from` is K-1 modulo N, so N machines split one sweep.
        #[arg(long, value_parser = parse_shard)]
        shard: Option<(u64, u64)>,
        /// Swap in a deliberately broken pattern (implies its scenario).
        #[arg(long, value_enum)]
        sabotage: Option<Sabotage>,
    },
    /// Re-run one seed exactly.
    Replay {
        #[command(flatten)]
        run: OneRun,
        /// Print the event trace.
        #[arg(long)]
        trace: bool,
        /// Draw the run's timeline (faults, states, requests) as an SVG.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Shrink a failing seed's fault plan to a minimal one (the seed stays
    /// fixed) and save it. A plan shrunk under --sabotage is saved only
    /// with --out (it is a demonstration, not a regression) and records its
    /// sabotage.
    Shrink {
        #[command(flatten)]
        run: OneRun,
        /// Where to write the shrunk plan [default without --sabotage:
        /// sim/regressions/SCENARIO-seed-SEED.json; with it: not saved].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the output file if it exists (it may be a committed
        /// regression).
        #[arg(long)]
        force: bool,
    },
}

/// One run: a scenario, a seed, the seed's plan or a given one, and maybe a
/// sabotage.
#[derive(clap::Args)]
struct OneRun {
    /// The scenario.
    scenario: String,
    /// The seed.
    #[arg(long)]
    seed: u64,
    /// A fault plan (JSON) instead of the seed's own.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Swap in a deliberately broken pattern.
    #[arg(long, value_enum)]
    sabotage: Option<Sabotage>,
}

impl OneRun {
    /// The scenario, the plan to run and the sabotage: the one given, or
    /// else the one the plan was saved under (a conflict is an error).
    fn resolve(&self) -> Result<(Scenario, FaultPlan, Option<Sabotage>), String> {
        let plan = load(self.plan.as_deref(), self.seed)?;
        let sabotage = match (self.sabotage, plan.sabotage) {
            (Some(given), Some(saved)) if given != saved => {
                return Err(format!(
                    "--sabotage {} conflicts with the plan's own \"sabotage\": \"{}\"",
                    given.name(),
                    saved.name()
                ));
            }
            (given, saved) => given.or(saved),
        };
        Ok((find_for(&self.scenario, sabotage)?, plan, sabotage))
    }
}

/// Checks, before any work, that `path` can be written: its folder exists,
/// and it is not an existing file unless `replace` allows it.
fn check_output(path: &Path, what: &str, replace: bool) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(format!(
            "{what} {}: the folder {} does not exist",
            path.display(),
            dir.display()
        ));
    }
    if path.is_dir() {
        return Err(format!("{what} {}: is a folder", path.display()));
    }
    if !replace && path.exists() {
        return Err(format!(
            "{what} {} exists (it may be a committed regression); \
             --force replaces it, --out FILE writes elsewhere",
            path.display()
        ));
    }
    Ok(())
}

fn find(name: &str) -> Result<Scenario, String> {
    scenarios()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no scenario {name:?}; `sim list` shows them"))
}

/// `name`, if `sabotage` (when given) breaks it.
fn find_for(name: &str, sabotage: Option<Sabotage>) -> Result<Scenario, String> {
    match sabotage {
        Some(b) if b.scenario() != name => Err(format!(
            "--sabotage {} breaks {}, not {name}",
            b.name(),
            b.scenario()
        )),
        _ => find(name),
    }
}

/// `K/N` with 1 <= K <= N.
fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (k, n) = text.split_once('/').ok_or("expected K/N, e.g. 2/4")?;
    let (k, n): (u64, u64) = (
        k.trim()
            .parse()
            .map_err(|_| format!("{k:?} is not a number"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("{n:?} is not a number"))?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(format!("shard {k}/{n}: need 1 <= K <= N"));
    }
    Ok((k, n))
}

/// The plan in `path`, or the seed's own.
fn load(path: Option<&Path>, seed: u64) -> Result<FaultPlan, String> {
    match path {
        None => Ok(FaultPlan::from_seed(seed)),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a fault plan: {e}", p.display()))
        }
    }
}

/// The command that replays one run exactly.
fn replay_line(
    scenario: &str,
    seed: u64,
    sabotage: Option<Sabotage>,
    plan: Option<&Path>,
) -> String {
    let mut line = format!("cargo run -p sim --release -- replay {scenario} --seed {seed}");
    if let Some(s) = sabotage {
        line += &format!(" --sabotage {}", s.name());
    }
    if let Some(p) = plan {
        line += &format!(" --plan {}", p.display());
    }
    line + " --trace"
}

/// The wall clock, read only to report a sweep's speed (never inside a
/// simulation, which runs on turmoil's virtual time).
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}

fn to_json(plan: &FaultPlan) -> Result<String, String> {
    serde_json::to_string(plan).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::List => {
            for s in scenarios() {
                println!("{:<20} {}", s.name, s.checks);
            }
            println!(
                "\nDeliberately broken patterns (--sabotage), to watch the invariants catch them:"
            );
            for s in <Sabotage as clap::ValueEnum>::value_variants() {
                println!("{:<26} breaks {}", s.name(), s.scenario());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Shrink { run, out, force } => {
            let (s, plan, sabotage) = run.resolve()?;
            let seed = run.seed;
            // Where it goes, checked before the work: a sabotaged plan is
            // saved only where --out says (never among the regressions).
            let out = match (out, sabotage) {
                (Some(out), _) => Some(out),
                (None, Some(_)) => None,
                (None, None) => Some(PathBuf::from(format!(
                    "sim/regressions/{}-seed-{seed}.json",
                    s.name
                ))),
            };
            if let Some(out) = &out {
                check_output(out, "--out", force)?;
            }
            let Some((mut small, violations)) = sim::shrink(&s, seed, &plan, sabotage) else {
                println!(
                    "{} seed {seed} breaks no invariant under {}: nothing to shrink",
                    s.name,
                    to_json(&plan)?
                );
                println!("PASS: {} seed {seed}, nothing to shrink", s.name);
                return Ok(ExitCode::SUCCESS);
            };
            small.sabotage = sabotage;
            println!(
                "shrunk {} faults to {}: {}",
                plan.faults.len(),
                small.faults.len(),
                to_json(&small)?
            );
            for v in &violations {
                println!("  {v}");
            }
            match &out {
                Some(out) => {
                    std::fs::write(out, to_json(&small)? + "\n")
                        .map_err(|e| format!("{}: {e}", out.display()))?;
                    println!(
                        "saved {}; replay: {}",
                        out.display(),
                        replay_line(s.name, seed, sabotage, Some(out))
                    );
                }
                None => println!(
                    "not saved: a plan shrunk under --sabotage is no regression \
                     (sim/regressions/ must replay clean); --out FILE saves it"
                ),
            }
            println!(
                "FAIL: {} seed {seed}, {} violation(s) under {} fault(s)",
                s.name,
                violations.len(),
                small.faults.len()
            );
            Ok(ExitCode::FAILURE)
        }
        Command::Replay { run, trace, plot } => {
            let (s, plan, sabotage) = run.resolve()?;
            let seed = run.seed;
            if let Some(path) = &plot {
                check_output(path, "--plot", true)?;
            }
            let out = sim::run_guarded(&s, seed, &plan, sabotage);
            if trace {
                for e in &out.trace {
                    println!("{e}");
                }
            }
            println!(
                "{} seed {seed}: plan {}, trace hash {:016x}",
                s.name,
                to_json(&plan)?,
                out.trace_hash
            );
            for v in &out.violations {
                println!("VIOLATION: {v}");
            }
            if let Some(path) = plot {
                let title = format!("{} seed {seed}: {}", s.name, to_json(&plan)?);
                std::fs::write(&path, out.timeline.svg(&title))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                println!("timeline: {}", path.display());
            }
            let under =
                sabotage.map_or(String::new(), |b| format!(" under --sabotage {}", b.name()));
            Ok(if out.violations.is_empty() {
                println!("PASS: {} seed {seed}{under}, no violations", s.name);
                ExitCode::SUCCESS
            } else {
                println!(
                    "FAIL: {} seed {seed}{under}, {} violation(s)",
                    s.name,
                    out.violations.len()
                );
                ExitCode::FAILURE
            })
        }
        Command::Sweep {
            scenario,
            seeds,
            from,
            shard,
            sabotage,
        } => sweep(scenario, seeds, from, shard, sabotage),
    }
}

/// The most seeds one sweep runs (their list is held in memory).
const MAX_SEEDS: u64 = 100_000_000;

/// One seed's result in a sweep.
struct SeedResult {
    violations: Vec<String>,
    /// Whether it broke an invariant.
    violated: bool,
    /// Whether its two runs gave the same trace hash.
    deterministic: bool,
    latencies: Vec<Duration>,
    faults: usize,
}

/// Runs `seed` twice and compares the trace hashes.
fn check_seed(s: &Scenario, seed: u64, sabotage: Option<Sabotage>) -> SeedResult {
    let plan = FaultPlan::from_seed(seed);
    let first = sim::run_guarded(s, seed, &plan, sabotage);
    let again = sim::run_guarded(s, seed, &plan, sabotage);
    let mut violations = first.violations;
    let violated = !violations.is_empty();
    let deterministic = first.trace_hash == again.trace_hash;
    if !deterministic {
        violations.push(format!(
            "nondeterministic: trace hashes {:016x} and {:016x}",
            first.trace_hash, again.trace_hash
        ));
    }
    SeedResult {
        violations,
        violated,
        deterministic,
        latencies: first.latencies,
        faults: first.faults,
    }
}

/// Runs `seeds` on every core (each simulation is single-threaded and
/// independent), returning the results in seed order.
fn run_seeds(
    s: &Scenario,
    seeds: &[u64],
    sabotage: Option<Sabotage>,
    bar: &ProgressBar,
) -> Vec<SeedResult> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<SeedResult>>> = Mutex::new(seeds.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(seeds.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    let result = check_seed(s, seed, sabotage);
                    results.lock().expect("results lock")[i] = Some(result);
                    bar.inc(1);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every seed ran"))
        .collect()
}

fn sweep(
    scenario: Option<String>,
    seeds: u64,
    from: u64,
    shard: Option<(u64, u64)>,
    sabotage: Option<Sabotage>,
) -> Result<ExitCode, String> {
    if seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    if seeds > MAX_SEEDS {
        return Err(format!(
            "--seeds {seeds} is more than one sweep holds ({MAX_SEEDS}); split it with --from or --shard"
        ));
    }
    let Some(last) = from.checked_add(seeds - 1) else {
        return Err(format!(
            "--from {from} --seeds {seeds} runs past the last seed ({}): at most {} seeds start at {from}",
            u64::MAX,
            (u64::MAX - from).saturating_add(1)
        ));
    };
    let (k, n) = shard.unwrap_or((1, 1));
    let mine: Vec<u64> = (from..=last)
        .filter(|seed| (seed - from) % n == k - 1)
        .collect();
    if mine.is_empty() {
        return Err(format!(
            "shard {k}/{n} of {seeds} seeds from {from} selects none; use more seeds or fewer shards"
        ));
    }
    let seeds = mine.len() as u64;
    let chosen: Vec<Scenario> = match (scenario, sabotage) {
        (Some(name), _) => vec![find_for(&name, sabotage)?],
        (None, Some(b)) => vec![find(b.scenario())?],
        (None, None) => scenarios(),
    };
    let bar = ProgressBar::new(seeds * chosen.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {msg} ({eta} left)")
            .map_err(|e| e.to_string())?,
    );
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    // Seeds with a violation of an invariant, and seeds whose two runs
    // differed (a seed may be both).
    let (mut violating, mut nondeterministic) = (0u64, 0u64);
    for s in &chosen {
        bar.set_message(s.name);
        let started = wall_clock();
        let results = run_seeds(s, &mine, sabotage, &bar);
        let per_sec = seeds as f64 / started.elapsed().as_secs_f64();
        let mut latencies =
            LatencyRecorder::new(3, Duration::from_secs(60)).map_err(|e| e.to_string())?;
        let (mut bad, mut faults) = (0u64, 0usize);
        for (&seed, result) in mine.iter().zip(results) {
            for l in &result.latencies {
                latencies.record(*l);
            }
            faults += result.faults;
            nondeterministic += u64::from(!result.deterministic);
            violating += u64::from(result.violated);
            if !result.violations.is_empty() {
                bad += 1;
                failures.push((s.name, seed, result.violations));
            }
        }
        let summary = latencies.summary();
        rows.push((
            s.name,
            seeds,
            bad,
            per_sec,
            summary.p50,
            summary.p99,
            faults,
        ));
    }
    bar.finish_and_clear();
    println!(
        "| scenario | seeds | failing seeds | seeds/s | latency p50 | latency p99 | faults injected |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, n, bad, per_sec, p50, p99, faults) in rows {
        println!("| {name} | {n} | {bad} | {per_sec:.0} | {p50:.1?} | {p99:.1?} | {faults} |");
    }
    println!("(each seed runs twice, to compare trace hashes; seeds/s counts it once)");
    for (name, seed, violations) in &failures {
        println!("\nFAILED {name} seed {seed}:");
        for v in violations {
            println!("  {v}");
        }
        println!("  replay: {}", replay_line(name, *seed, sabotage, None));
    }
    let total = seeds * chosen.len() as u64;
    let under = sabotage.map_or(String::new(), |b| format!(" under --sabotage {}", b.name()));
    Ok(if failures.is_empty() {
        println!("\nPASS: {total} seeds{under}, 0 violations, traces deterministic");
        ExitCode::SUCCESS
    } else {
        println!(
            "\nFAIL: {} of {total} seeds{under} failing ({violating} with violations, {nondeterministic} nondeterministic)",
            failures.len()
        );
        ExitCode::FAILURE
    })
}
