//! `sim`: list the scenarios, sweep seeds, replay one.
//!
//! ```text
//! sim list
//! sim sweep [--scenario S] [--seeds N] [--from SEED]
//! sim replay S --seed X [--trace]
//! ```

use std::process::ExitCode;
use std::time::Duration;

use async_patterns_stats::LatencyRecorder;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sim::{FaultPlan, Scenario, scenarios};

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
    },
    /// Re-run one seed exactly.
    Replay {
        /// The scenario.
        scenario: String,
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Print the event trace.
        #[arg(long)]
        trace: bool,
    },
}

fn find(name: &str) -> Result<Scenario, String> {
    scenarios()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no scenario {name:?}; `sim list` shows them"))
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
                println!("{:<18} {}", s.name, s.checks);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            scenario,
            seed,
            trace,
        } => {
            let s = find(&scenario)?;
            let plan = FaultPlan::from_seed(seed);
            let out = (s.run)(seed, &plan);
            if trace {
                for e in &out.trace {
                    println!("{e}");
                }
            }
            println!(
                "{} seed {seed}: plan {plan:?}, trace hash {:016x}",
                s.name, out.trace_hash
            );
            for v in &out.violations {
                println!("VIOLATION: {v}");
            }
            Ok(if out.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Sweep {
            scenario,
            seeds,
            from,
        } => {
            if seeds == 0 {
                return Err("--seeds must be at least 1".into());
            }
            let chosen: Vec<Scenario> = match scenario {
                Some(name) => vec![find(&name)?],
                None => scenarios(),
            };
            let bar = ProgressBar::new(seeds * chosen.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {msg} ({eta} left)")
                    .map_err(|e| e.to_string())?,
            );
            let mut failures = Vec::new();
            let mut rows = Vec::new();
            for s in &chosen {
                bar.set_message(s.name);
                let mut latencies =
                    LatencyRecorder::new(3, Duration::from_secs(60)).map_err(|e| e.to_string())?;
                let (mut bad, mut faults) = (0u64, 0usize);
                for seed in from..from.saturating_add(seeds) {
                    let plan = FaultPlan::from_seed(seed);
                    let first = (s.run)(seed, &plan);
                    let again = (s.run)(seed, &plan);
                    let mut violations = first.violations.clone();
                    if first.trace_hash != again.trace_hash {
                        violations.push(format!(
                            "nondeterministic: trace hashes {:016x} and {:016x}",
                            first.trace_hash, again.trace_hash
                        ));
                    }
                    for l in &first.latencies {
                        latencies.record(*l);
                    }
                    faults += first.faults;
                    if !violations.is_empty() {
                        bad += 1;
                        failures.push((s.name, seed, violations));
                    }
                    bar.inc(1);
                }
                let summary = latencies.summary();
                rows.push((s.name, seeds, bad, summary.p50, summary.p99, faults));
            }
            bar.finish_and_clear();
            println!(
                "| scenario | seeds | failing seeds | latency p50 | latency p99 | faults injected |"
            );
            println!("|---|---|---|---|---|---|");
            for (name, n, bad, p50, p99, faults) in rows {
                println!("| {name} | {n} | {bad} | {p50:.1?} | {p99:.1?} | {faults} |");
            }
            for (name, seed, violations) in &failures {
                println!("\nFAILED {name} seed {seed}:");
                for v in violations {
                    println!("  {v}");
                }
                println!(
                    "  replay: cargo run -p sim --release -- replay {name} --seed {seed} --trace"
                );
            }
            Ok(if failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
