//! A lab run: the plan of runs, running each (in a child process, or in
//! this one for tests), the physical limit and each run's share of it, the
//! goals, and the report as a table and as JSON.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engines::{Engine, EngineReport, ErrorCause, Percentiles, Pool, Workload};
use crate::server::{Server, ServerConfig, ServerStats};

/// Requests per unit of concurrency when `--requests` is not given: enough
/// rounds that opening the connections (the first round's cost) is a few
/// percent of the run, few enough that the defaults finish in about 30 s.
pub const ROUNDS: u64 = 50;

/// Everything `lab run` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabConfig {
    /// The engines, run in this order at each level.
    pub engines: Vec<Engine>,
    /// Requests per run; `None`: [`ROUNDS`] per unit of concurrency, so
    /// every run lasts about that many latencies.
    pub requests: Option<u64>,
    /// Concurrency levels (`sequential` runs once, at 1).
    pub concurrency: Vec<usize>,
    /// The upstream.
    pub server: ServerConfig,
    /// Client connection pooling.
    pub pool: Pool,
}

impl LabConfig {
    /// The runs, in order: `sequential` once (its concurrency is always
    /// 1), then every other engine at every level.
    pub fn plan(&self) -> Vec<(Engine, usize)> {
        let mut runs = Vec::new();
        if self.engines.contains(&Engine::Sequential) {
            runs.push((Engine::Sequential, 1));
        }
        for &c in &self.concurrency {
            for &e in self.engines.iter().filter(|e| **e != Engine::Sequential) {
                runs.push((e, c));
            }
        }
        runs
    }

    /// The workload of one run against `url`.
    pub fn workload(&self, url: &str, concurrency: usize) -> Workload {
        Workload {
            url: url.to_string(),
            requests: self.requests.unwrap_or(ROUNDS * concurrency as u64),
            concurrency,
            pool: self.pool,
            mean_latency: self.server.latency.mean,
            seed: self.server.seed,
            timeout: crate::engines::request_timeout(self.server.latency.mean),
        }
    }
}

/// One run: what the engine measured, what the server saw, and the
/// physical limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The engine's own report (peak RSS and CPU from its process).
    pub client: EngineReport,
    /// What the upstream saw during the run.
    pub server: ServerStats,
    /// `C / L`: the most requests per second any client could complete
    /// with `C` in flight and mean latency `L` (C lowered to the upstream's
    /// capacity, or to the number of requests, where those are smaller).
    pub limit_per_s: f64,
    /// Completed requests (successes and errors) per second, over
    /// `limit_per_s` (the goals count successes only).
    pub share_of_limit: f64,
}

/// A goal from the issue, and whether this run met it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// What is asked.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Met, missed, or not measured by this run's plan.
    pub met: Option<bool>,
}

/// A whole lab run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabReport {
    /// What was asked.
    pub config: LabConfig,
    /// Every run, in the order made.
    pub runs: Vec<Run>,
    /// The goals.
    pub goals: Vec<Goal>,
}

/// Runs the plan of `config` against a fresh upstream. `each` runs one
/// workload (in a child process for `lab run`, in-process in tests), and
/// `progress` hears about each run as it starts.
pub fn run(
    config: &LabConfig,
    mut each: impl FnMut(Engine, &Workload) -> Result<EngineReport, String>,
    mut progress: impl FnMut(Engine, usize),
) -> Result<LabReport, String> {
    let server =
        Server::start(config.server, 2).map_err(|e| format!("starting the upstream: {e}"))?;
    let url = server.url();
    let mut runs = Vec::new();
    for (engine, c) in config.plan() {
        progress(engine, c);
        server.reset();
        let workload = config.workload(&url, c);
        let client = each(engine, &workload)?;
        // What bounds the rate: the requests in flight, which neither the
        // upstream's capacity nor the number of requests may lower.
        let bound = (c as u64)
            .min(config.server.capacity.map_or(u64::MAX, |n| n as u64))
            .min(workload.requests);
        let limit_per_s = limit(bound as usize, config.server.latency.mean);
        // Every answer, a 500 included, takes the latency: the share counts
        // all completed requests against the limit.
        let completed_per_s =
            (client.successes + client.errors) as f64 / client.elapsed_s.max(f64::MIN_POSITIVE);
        runs.push(Run {
            share_of_limit: completed_per_s / limit_per_s,
            client,
            server: server.stats(),
            limit_per_s,
        });
    }
    let goals = goals(&runs, config.server.latency.mean);
    Ok(LabReport {
        config: config.clone(),
        runs,
        goals,
    })
}

/// `C / L` in requests per second (infinite for a zero latency).
pub fn limit(concurrency: usize, latency: Duration) -> f64 {
    concurrency as f64 / latency.as_secs_f64()
}

fn find(runs: &[Run], engine: Engine, c: usize) -> Option<&Run> {
    runs.iter()
        .find(|r| r.client.engine == engine && r.client.concurrency == c)
}

/// The goals, measured at 50 ms latency: threaded at least 2×
/// sequential (at the lowest level), async at least 90% of C / L and async
/// peak memory at most 1/10 of threaded (both at the highest level).
///
/// Throughput counts successes only (an error is not work done), and a
/// goal whose runs include one without a single success is missed,
/// whatever it measured: failing fast is not meeting a goal.
pub fn goals(runs: &[Run], latency: Duration) -> Vec<Goal> {
    let levels: Vec<usize> = runs
        .iter()
        .filter(|r| r.client.engine != Engine::Sequential)
        .map(|r| r.client.concurrency)
        .collect();
    let (low, high) = (levels.iter().min().copied(), levels.iter().max().copied());
    let at = if latency == Duration::from_millis(50) {
        String::new()
    } else {
        format!(" (the goals are set at 50 ms; this run used {latency:?})")
    };
    let sequential = find(runs, Engine::Sequential, 1);
    let mut goals = Vec::new();
    let threaded = low.and_then(|c| find(runs, Engine::Threaded, c));
    goals.push(match (sequential, threaded) {
        (Some(s), Some(t)) => judged(
            format!("threaded >= 2x sequential (C = {})", t.client.concurrency),
            &[s, t],
            || {
                let x = t.client.requests_per_s / s.client.requests_per_s;
                (format!("{x:.1}x in successes/s{at}"), x >= 2.0)
            },
        ),
        _ => unmeasured("threaded >= 2x sequential", "needs both engines"),
    });
    let async_high = high.and_then(|c| find(runs, Engine::Async, c));
    goals.push(match async_high {
        Some(a) => judged(
            format!("async >= 90% of C/L (C = {})", a.client.concurrency),
            &[a],
            || {
                let share = a.client.requests_per_s / a.limit_per_s;
                (
                    format!("{:.1}% in successes/s{at}", 100.0 * share),
                    share >= 0.9,
                )
            },
        ),
        None => unmeasured("async >= 90% of C/L", "needs the async engine"),
    });
    let threaded_high = high.and_then(|c| find(runs, Engine::Threaded, c));
    goals.push(match (async_high, threaded_high) {
        (Some(a), Some(t)) => judged(
            format!(
                "async peak memory <= 1/10 of threaded (C = {})",
                a.client.concurrency
            ),
            &[a, t],
            || {
                let x = a.client.peak_rss_kib as f64 / t.client.peak_rss_kib.max(1) as f64;
                let measured = format!(
                    "{:.1} MiB vs {:.1} MiB = 1/{:.1}{at}",
                    a.client.peak_rss_kib as f64 / 1024.0,
                    t.client.peak_rss_kib as f64 / 1024.0,
                    1.0 / x
                );
                (measured, x <= 0.1)
            },
        ),
        _ => unmeasured(
            "async peak memory <= 1/10 of threaded",
            "needs both engines",
        ),
    });
    goals
}

/// A goal over `runs`, measured and judged by `judge`, unless one of the
/// runs made no successful request: then it is missed, saying which.
fn judged(goal: String, runs: &[&Run], judge: impl FnOnce() -> (String, bool)) -> Goal {
    let failed: Vec<String> = (runs.iter())
        .filter(|r| r.client.successes == 0)
        .map(|r| format!("{} at C = {}", r.client.engine.name(), r.client.concurrency))
        .collect();
    let (measured, met) = if failed.is_empty() {
        judge()
    } else {
        (format!("no successes ({})", failed.join(", ")), false)
    };
    Goal {
        goal,
        measured,
        met: Some(met),
    }
}

fn unmeasured(goal: &str, why: &str) -> Goal {
    Goal {
        goal: goal.into(),
        measured: format!("not measured: {why}"),
        met: None,
    }
}

/// A run's errors, with their causes: `12 (5xx 10, timeout 2)`.
fn errors(c: &EngineReport) -> String {
    let causes: Vec<String> = (ErrorCause::ALL.iter())
        .filter_map(|cause| {
            let n = c.errors_by_cause.get(cause)?;
            Some(format!("{} {n}", cause.name()))
        })
        .collect();
    if causes.is_empty() {
        c.errors.to_string()
    } else {
        format!("{} ({})", c.errors, causes.join(", "))
    }
}

impl LabReport {
    /// The report as a Markdown table, then the goals.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| engine | C | requests | ok | errors | retries | req/s | C/L | share | p50 ms | p95 ms | p99 ms | max ms | peak RSS MiB | CPU s | server max in flight | server connections |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.runs {
            let c = &r.client;
            // No success, no latency: n/a rather than a made-up 0.0.
            let ms = |pick: fn(&Percentiles) -> f64| {
                c.latency
                    .as_ref()
                    .map_or_else(|| "n/a".to_string(), |p| format!("{:.1}", pick(p)))
            };
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0}% | {} | {} | {} | {} | {:.1} | {:.2} | {} | {} |\n",
                c.engine.name(),
                c.concurrency,
                c.requests,
                c.successes,
                errors(c),
                c.retries,
                c.requests_per_s,
                r.limit_per_s,
                100.0 * r.share_of_limit,
                ms(|p| p.p50_ms),
                ms(|p| p.p95_ms),
                ms(|p| p.p99_ms),
                ms(|p| p.max_ms),
                c.peak_rss_kib as f64 / 1024.0,
                c.cpu_s,
                r.server.max_in_flight,
                r.server.connections,
            );
        }
        out += "\n";
        for g in &self.goals {
            let verdict = match g.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "-",
            };
            out += &format!("goal: {} -> {}: {}\n", g.goal, g.measured, verdict);
        }
        out
    }
}
