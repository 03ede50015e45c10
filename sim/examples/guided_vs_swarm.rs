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
//! budget (its max is marked `>`, and a median it is part of `>=`: the
//! ratio against such a swarm median is then a ceiling, `<=`).

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
                    row.push(None);
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
                let middle = if n.is_multiple_of(2) {
                    &runs[n / 2 - 1..=n / 2]
                } else {
                    &runs[n / 2..=n / 2]
                };
                let median = middle.iter().map(|r| r.0).sum::<usize>() as f64 / middle.len() as f64;
                // A search that reached its budget counts as the budget: a
                // median made of one is a floor (the true one is higher).
                let floor = middle.iter().any(|r| !r.1);
                let max = runs[n - 1];
                let mark = |(n, caught): (usize, bool)| {
                    if caught {
                        format!("{n}")
                    } else {
                        format!(">{n}")
                    }
                };
                row.push(Some((median, mark(max), floor)));
            }
            let cell = |c: &Option<(f64, String, bool)>| match c {
                Some((median, max, floor)) => {
                    let at_least = if *floor { ">=" } else { "" };
                    (format!("{at_least}{median}"), max.clone())
                }
                None => ("-".to_string(), "-".to_string()),
            };
            // Against a floor of swarm's median, the ratio is a ceiling.
            let ratio = match (&row[0], &row[1]) {
                (Some((swarm, _, swarm_floor)), Some((guided, _, guided_floor))) => {
                    let r = guided / swarm;
                    match (swarm_floor, guided_floor) {
                        (false, false) => format!("{r:.2}"),
                        (true, false) => format!("<={r:.2}"),
                        _ => "?".to_string(),
                    }
                }
                _ => "-".to_string(),
            };
            let ((sm, sx), (gm, gx)) = (cell(&row[0]), cell(&row[1]));
            println!(
                "| {} | {} | {sm} | {sx} | {gm} | {gx} | {ratio} |",
                info.name, sabotage.name,
            );
            eprintln!("{key}: done");
        }
    }
}
