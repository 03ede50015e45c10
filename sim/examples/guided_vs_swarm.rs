//! Runs until the first catch of each sabotage, swarm against guided, over
//! 10 exploration seeds (the table in docs/guided.md):
//!
//! ```text
//! cargo run -p sim --release --example guided_vs_swarm [-- SCENARIO[/SABOTAGE] ...] [--budget N] [--guided-only]
//! ```
//!
//! `--explorations N` searches from exploration seeds 0 to N-1 (default
//! 10). `--guided-only` skips the swarm columns (they do not depend on the
//! guided search: to try a change to it).
//!
//! Both draw from the same fault space (the scenario's swarm, fault sites
//! and disk included) and the same fresh seeds: the swarm run `k` of
//! exploration seed `e` is the guided search's fresh seed for the same
//! slot. A search that reaches its budget without a catch counts as the
//! budget (and is marked `>`).

use async_patterns_sim::AnyScenario;
use async_patterns_sim::explore::{Guided, explore};

fn main() {
    let mut budget = 4_000;
    let mut guided_only = false;
    let mut explorations = 10u64;
    let mut wanted: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--budget" {
            budget = args
                .next()
                .and_then(|n| n.parse().ok())
                .expect("--budget N");
        } else if a == "--explorations" {
            explorations = args
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|n| *n >= 2)
                .expect("--explorations N (at least 2)");
        } else if a == "--guided-only" {
            guided_only = true;
        } else {
            wanted.push(a);
        }
    }
    let scenarios: Vec<&dyn AnyScenario> = vec![
        &sim::resilient_client::ResilientClient,
        &sim::aggregator::Aggregator,
        &sim::bulkhead::Bulkhead,
        &sim::sequential_parallel::SequentialParallel,
        &sim::pipeline::Pipeline,
        &sim::kv::KvStore,
    ];
    println!(
        "| scenario | sabotage | swarm median | swarm max | guided median | guided max | guided / swarm |"
    );
    println!("|---|---|---|---|---|---|---|");
    for s in scenarios {
        let info = s.info();
        for sabotage in &info.sabotages {
            let key = format!("{}/{}", info.name, sabotage.name);
            if !wanted.is_empty() && !wanted.iter().any(|w| *w == info.name || *w == key) {
                continue;
            }
            let mut row = Vec::new();
            for blind in [true, false] {
                if blind && guided_only {
                    row.push((f64::NAN, "-".to_string(), true));
                    continue;
                }
                let mut runs: Vec<(usize, bool)> = (0..explorations)
                    .map(|e| {
                        let mut how = Guided::new(budget).sabotage(Some(sabotage.name));
                        if blind {
                            how = how.blind();
                        }
                        let x = explore(s, e, &how).expect("valid plans");
                        match x.failures.first() {
                            Some(f) => (f.run, true),
                            None => (x.runs, false),
                        }
                    })
                    .collect();
                runs.sort_unstable();
                let n = runs.len();
                let median = if n.is_multiple_of(2) {
                    (runs[n / 2 - 1].0 + runs[n / 2].0) as f64 / 2.0
                } else {
                    runs[n / 2].0 as f64
                };
                let max = runs[n - 1];
                let mark = |(n, caught): (usize, bool)| {
                    if caught {
                        format!("{n}")
                    } else {
                        format!(">{n}")
                    }
                };
                row.push((median, mark(max), runs.iter().all(|r| r.1)));
            }
            let ratio = row[1].0 / row[0].0;
            println!(
                "| {} | {} | {}{} | {} | {}{} | {} | {:.2} |",
                info.name,
                sabotage.name,
                row[0].0,
                if row[0].2 { "" } else { " (not all caught)" },
                row[0].1,
                row[1].0,
                if row[1].2 { "" } else { " (not all caught)" },
                row[1].1,
                ratio
            );
            eprintln!("{key}: done");
        }
    }
}
