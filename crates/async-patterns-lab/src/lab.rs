//! A lab run: the plan of runs, running each (in a child process, or in
//! this one for tests), the physical limit and each run's share of it, the
//! goals, and the report as a table and as JSON.
//!
//! The runs go to the embedded upstream, or, with targets, to a user's own
//! endpoints: then the latency `L` in `C / L` is measured first (the median
//! of a short run at C = 1, a [`Calibration`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engines::{Engine, EngineReport, ErrorCause, Percentiles, Pool, Workload};
use crate::server::{Server, ServerConfig, ServerStats};

/// Requests per unit of concurrency when `--requests` is not given: enough
/// rounds that opening the connections (the first round's cost) is a few
/// percent of the run, few enough that the defaults finish in about 30 s.
pub const ROUNDS: u64 = 50;

/// The fewest requests per unit of concurrency (rounds of the latency) a
/// run needs for a goal to be judged on it: shorter, and opening the
/// connections weighs too much in it.
pub const MIN_ROUNDS: u64 = 20;

/// The fewest repeats of the plan a goal that depends on the machine's load
/// (throughput) needs to be judged: it is judged on their median.
pub const MIN_REPEATS: usize = 3;

/// Requests of the calibration at C = 1 against targets.
pub const CALIBRATION_REQUESTS: u64 = 20;

/// How long the probe of each target, and each calibration request, may
/// take before the target counts as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The user's endpoints (`--target`), validated; empty: the embedded
    /// upstream (and then `server` describes it; with targets it is unused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Times the whole plan runs (`--runs`); load-dependent goals are
    /// judged on the median of at least [`MIN_REPEATS`].
    #[serde(default = "one")]
    pub repeats: usize,
    /// Open the connections before the counted requests (`--warm-up`;
    /// the async engines and reqwest), see [`Workload::warm_up`].
    #[serde(default)]
    pub warm_up: bool,
}

fn one() -> usize {
    1
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

    /// The workload of one run against `urls`, whose latency is `latency`
    /// (the upstream's mean, or a target's calibrated median).
    pub fn workload(&self, urls: &[String], concurrency: usize, latency: Duration) -> Workload {
        Workload {
            urls: urls.to_vec(),
            requests: self.requests.unwrap_or(ROUNDS * concurrency as u64),
            concurrency,
            pool: self.pool,
            mean_latency: latency,
            seed: self.server.seed,
            timeout: crate::engines::request_timeout(latency),
            warm_up: self.warm_up,
        }
    }
}

/// One run: what the engine measured, what the server saw, and the
/// physical limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The engine's own report (peak RSS and CPU from its process).
    pub client: EngineReport,
    /// What the upstream saw during the run (`None` against targets: the
    /// lab cannot see inside them).
    pub server: Option<ServerStats>,
    /// Which repeat of the plan this run belongs to (0 for the first).
    #[serde(default)]
    pub repeat: usize,
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
    /// Against targets: how `L` was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// The latency `L` of targets, measured: the median of a short run of the
/// async engine at C = 1, before the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The calibration run (its requests, successes, errors by cause).
    pub client: EngineReport,
    /// The median latency of its successes: `L`.
    pub latency: Duration,
}

impl LabReport {
    /// The `L` of `C / L`: the targets' calibrated median, or the
    /// embedded upstream's mean.
    pub fn latency(&self) -> Duration {
        self.calibration
            .as_ref()
            .map_or(self.config.server.latency.mean, |c| c.latency)
    }
}

/// An error that stops a lab run against targets before the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetError {
    /// The target is not a URL this lab can call.
    Invalid {
        /// The target as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// Nothing answered at the target within the probe's timeout.
    Unreachable {
        /// The target.
        url: String,
        /// Why (connection refused, timeout, ...).
        why: String,
    },
    /// No request of the calibration succeeded, so there is no `L`.
    NoCalibration {
        /// The targets.
        urls: Vec<String>,
        /// The calibration's errors, by cause.
        errors: String,
    },
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetError::Invalid { url, why } => write!(f, "--target {url:?}: {why}"),
            TargetError::Unreachable { url, why } => {
                write!(f, "--target {url}: unreachable: {why}")
            }
            TargetError::NoCalibration { urls, errors } => write!(
                f,
                "--target {}: no request of the calibration at C = 1 succeeded ({errors}), \
                 so there is no latency L to compute C / L from",
                urls.join(",")
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// Checks that `text` is a URL the lab can call: `http://`, a host, a
/// port (80 if none is written) and nothing else it cannot send (no user
/// name). Returns it as given.
pub fn target(text: &str) -> Result<String, TargetError> {
    let invalid = |why: &str| TargetError::Invalid {
        url: text.to_string(),
        why: why.to_string(),
    };
    let uri: hyper::Uri = text
        .parse()
        .map_err(|e| invalid(&format!("not a URL ({e})")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(invalid(&format!(
                "only http:// is supported (no TLS), not {other}://"
            )));
        }
        None => return Err(invalid("no scheme: write it as http://HOST:PORT/PATH")),
    }
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.host().is_empty() {
        return Err(invalid("no host"));
    }
    if authority.as_str().contains('@') {
        return Err(invalid("user names and passwords are not supported"));
    }
    if authority.as_str().ends_with(':') || uri.port_u16() == Some(0) {
        return Err(invalid("no port (or port 0)"));
    }
    Ok(text.to_string())
}

/// Probes every target with one request, then measures their latency with
/// [`CALIBRATION_REQUESTS`] at C = 1 (through `each`, like every run).
fn calibrate(
    config: &LabConfig,
    each: &mut impl FnMut(Engine, &Workload) -> Result<EngineReport, String>,
) -> Result<Calibration, String> {
    let short = |urls: &[String], requests: u64| Workload {
        urls: urls.to_vec(),
        requests,
        concurrency: 1,
        pool: config.pool,
        mean_latency: PROBE_TIMEOUT,
        seed: config.server.seed,
        timeout: PROBE_TIMEOUT,
        warm_up: false,
    };
    for url in &config.targets {
        let probe = each(Engine::Async, &short(std::slice::from_ref(url), 1))?;
        // Any answer will do (a 404 is an answer); no connection or no
        // answer in time is not.
        if let Some(cause) = [ErrorCause::Connect, ErrorCause::Timeout]
            .into_iter()
            .find(|c| probe.errors_by_cause.contains_key(c))
        {
            let why = match cause {
                ErrorCause::Connect => "cannot connect (refused, or no route)".to_string(),
                _ => format!("no answer within {PROBE_TIMEOUT:?}"),
            };
            return Err(TargetError::Unreachable {
                url: url.clone(),
                why,
            }
            .to_string());
        }
    }
    let requests = CALIBRATION_REQUESTS.max(config.targets.len() as u64);
    let client = each(Engine::Async, &short(&config.targets, requests))?;
    match client.latency {
        Some(p) if client.successes > 0 => Ok(Calibration {
            latency: Duration::from_secs_f64(p.p50_ms / 1e3).max(Duration::from_micros(1)),
            client,
        }),
        _ => Err(TargetError::NoCalibration {
            urls: config.targets.clone(),
            errors: errors(&client),
        }
        .to_string()),
    }
}

/// Runs the plan of `config` against a fresh upstream. `each` runs one
/// workload (in a child process for `lab run`, in-process in tests), and
/// `progress` hears about each run as it starts.
pub fn run(
    config: &LabConfig,
    mut each: impl FnMut(Engine, &Workload) -> Result<EngineReport, String>,
    mut progress: impl FnMut(Engine, usize),
) -> Result<LabReport, String> {
    // The embedded upstream, or the targets and their measured latency.
    let (server, urls, latency, calibration, capacity) = if config.targets.is_empty() {
        let server =
            Server::start(config.server, 2).map_err(|e| format!("starting the upstream: {e}"))?;
        let urls = vec![server.url()];
        let (latency, capacity) = (config.server.latency.mean, config.server.capacity);
        (Some(server), urls, latency, None, capacity)
    } else {
        progress(Engine::Async, 1);
        let calibration = calibrate(config, &mut each)?;
        let latency = calibration.latency;
        (
            None,
            config.targets.clone(),
            latency,
            Some(calibration),
            None,
        )
    };
    let mut runs = Vec::new();
    for repeat in 0..config.repeats.max(1) {
        for (engine, c) in config.plan() {
            progress(engine, c);
            if let Some(server) = &server {
                server.reset();
            }
            let workload = config.workload(&urls, c, latency);
            let client = each(engine, &workload)?;
            // What bounds the rate: the requests in flight, which neither the
            // upstream's capacity nor the number of requests may lower.
            let bound = (c as u64)
                .min(capacity.map_or(u64::MAX, |n| n as u64))
                .min(workload.requests);
            let limit_per_s = limit(bound as usize, latency);
            // Every answer, a 500 included, takes the latency: the share counts
            // all completed requests against the limit.
            let answered = client.successes + client.errors + client.warm_up_answers;
            let completed_per_s = answered as f64 / client.elapsed_s.max(f64::MIN_POSITIVE);
            runs.push(Run {
                share_of_limit: completed_per_s / limit_per_s,
                client,
                server: server.as_ref().map(Server::stats),
                repeat,
                limit_per_s,
            });
        }
    }
    let mut report = LabReport {
        config: config.clone(),
        runs,
        goals: Vec::new(),
        calibration,
    };
    report.goals = goals(&report.runs, report.latency(), report.calibration.is_some());
    Ok(report)
}

/// `C / L` in requests per second (infinite for a zero latency).
pub fn limit(concurrency: usize, latency: Duration) -> f64 {
    concurrency as f64 / latency.as_secs_f64()
}

fn find(runs: &[Run], repeat: usize, engine: Engine, c: usize) -> Option<&Run> {
    runs.iter()
        .find(|r| r.repeat == repeat && r.client.engine == engine && r.client.concurrency == c)
}

/// The goals, measured at 50 ms latency: threaded at least 2×
/// sequential (at the lowest level), async at least 90% of C / L and async
/// peak memory at most 1/10 of threaded (both at the highest level).
///
/// Throughput counts successes only (an error is not work done), and a
/// goal whose runs include one without a single success is missed,
/// whatever it measured: failing fast is not meeting a goal. A goal whose
/// runs include one shorter than [`MIN_ROUNDS`] rounds is not judged. Over
/// repeats (`--runs`), a goal gives the min / median / max of its measure
/// and is judged on the median; the two throughput goals, which depend on
/// the machine's load, are judged only over [`MIN_REPEATS`] repeats or
/// more. `calibrated`: `latency` was measured against targets.
pub fn goals(runs: &[Run], latency: Duration, calibrated: bool) -> Vec<Goal> {
    let repeats = runs.iter().map(|r| r.repeat + 1).max().unwrap_or(0);
    let levels: Vec<usize> = runs
        .iter()
        .filter(|r| r.client.engine != Engine::Sequential)
        .map(|r| r.client.concurrency)
        .collect();
    let (low, high) = (levels.iter().min().copied(), levels.iter().max().copied());
    let at = if calibrated {
        format!(" (L = {latency:.1?}, measured at C = 1)")
    } else if latency == Duration::from_millis(50) {
        String::new()
    } else {
        format!(" (the goals are set at 50 ms; this run used {latency:?})")
    };
    // The runs of `engines` at `c` in every repeat, if every repeat has them.
    let each_repeat = |engines: &[(Engine, Option<usize>)]| -> Option<Vec<Vec<&Run>>> {
        (0..repeats)
            .map(|k| {
                (engines.iter())
                    .map(|&(e, c)| find(runs, k, e, c?))
                    .collect::<Option<Vec<&Run>>>()
            })
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty())
    };
    let mut goals = Vec::new();
    goals.push(
        match each_repeat(&[(Engine::Sequential, Some(1)), (Engine::Threaded, low)]) {
            Some(sets) => judged(
                format!("threaded >= 2x sequential (C = {})", low.unwrap_or(1)),
                &sets,
                true,
                |r| r[1].client.requests_per_s / r[0].client.requests_per_s,
                |x| format!("{x:.1}x"),
                |x| x >= 2.0,
                &format!(" in successes/s{at}"),
            ),
            None => unmeasured("threaded >= 2x sequential", "needs both engines"),
        },
    );
    goals.push(match each_repeat(&[(Engine::Async, high)]) {
        Some(sets) => judged(
            format!("async >= 90% of C/L (C = {})", high.unwrap_or(1)),
            &sets,
            true,
            |r| r[0].client.requests_per_s / r[0].limit_per_s,
            |share| format!("{:.1}%", 100.0 * share),
            |share| share >= 0.9,
            &format!(" in successes/s{at}"),
        ),
        None => unmeasured("async >= 90% of C/L", "needs the async engine"),
    });
    goals.push(
        match each_repeat(&[(Engine::Async, high), (Engine::Threaded, high)]) {
            Some(sets) => {
                let mib = |kib: u64| kib as f64 / 1024.0;
                let first = &sets[0];
                let detail = format!(
                    " (first run: {:.1} MiB vs {:.1} MiB){at}",
                    mib(first[0].client.peak_rss_kib),
                    mib(first[1].client.peak_rss_kib)
                );
                judged(
                    format!(
                        "async peak memory <= 1/10 of threaded (C = {})",
                        high.unwrap_or(1)
                    ),
                    &sets,
                    false,
                    |r| r[0].client.peak_rss_kib as f64 / r[1].client.peak_rss_kib.max(1) as f64,
                    |x| format!("1/{:.1}", 1.0 / x),
                    |x| x <= 0.1,
                    &detail,
                )
            }
            None => unmeasured(
                "async peak memory <= 1/10 of threaded",
                "needs both engines",
            ),
        },
    );
    goals
}

/// A goal over `sets` (the runs it needs, in each repeat): missed if one of
/// them made no successful request, not judged if one is too short, else
/// `value` of each repeat, shown with `show` as one value or min / median /
/// max, and `pass` on the median. A `load_dependent` goal with fewer than
/// [`MIN_REPEATS`] repeats is shown, not judged.
fn judged(
    goal: String,
    sets: &[Vec<&Run>],
    load_dependent: bool,
    value: impl Fn(&[&Run]) -> f64,
    show: impl Fn(f64) -> String,
    pass: impl Fn(f64) -> bool,
    detail: &str,
) -> Goal {
    let name = |r: &Run| format!("{} at C = {}", r.client.engine.name(), r.client.concurrency);
    let all = || sets.iter().flatten().copied();
    let failed: Vec<String> = all()
        .filter(|r| r.client.successes == 0)
        .map(name)
        .collect();
    if !failed.is_empty() {
        return Goal {
            goal,
            measured: format!("no successes ({})", failed.join(", ")),
            met: Some(false),
        };
    }
    let short: Vec<String> = all()
        .filter(|r| r.client.requests < MIN_ROUNDS * r.client.concurrency as u64)
        .map(|r| format!("{}: {} requests", name(r), r.client.requests))
        .collect();
    if !short.is_empty() {
        return Goal {
            goal,
            measured: format!(
                "too short to judge ({}; a goal needs {MIN_ROUNDS} requests per unit of \
                 concurrency)",
                short.join(", ")
            ),
            met: None,
        };
    }
    let mut values: Vec<f64> = sets.iter().map(|set| value(set)).collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    let measured = if n == 1 {
        show(median)
    } else {
        format!(
            "min {} / median {} / max {} over {n} runs",
            show(values[0]),
            show(median),
            show(values[n - 1])
        )
    };
    let (measured, met) = if load_dependent && n < MIN_REPEATS {
        (
            format!(
                "{measured}{detail}; not judged: it depends on the machine's load, so it \
                 needs --runs {MIN_REPEATS} or more"
            ),
            None,
        )
    } else {
        (format!("{measured}{detail}"), Some(pass(median)))
    };
    Goal {
        goal,
        measured,
        met,
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
    /// The report as a Markdown table (one per repeat), then the goals.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Some(c) = &self.calibration {
            out += &format!(
                "targets: {}\nL = {:.1?}: the median latency of {} requests at C = 1 (async \
                 engine; {} ok, errors {}); C / L below uses it. The server columns are n/a: \
                 the lab cannot see inside a target.\n\n",
                self.config.targets.join(", "),
                c.latency,
                c.client.requests,
                c.client.successes,
                errors(&c.client),
            );
        }
        let repeats = self.runs.iter().map(|r| r.repeat + 1).max().unwrap_or(1);
        for repeat in 0..repeats {
            if repeats > 1 {
                out += &format!("run {} of {repeats}:\n\n", repeat + 1);
            }
            out += "| engine | C | requests | ok | errors | retries | req/s | C/L | share | p50 ms | p95 ms | p99 ms | max ms | peak RSS MiB | CPU s | server max in flight | server connections |\n\
                    |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
            for r in self.runs.iter().filter(|r| r.repeat == repeat) {
                out += &row(r);
            }
            if repeat + 1 < repeats {
                out += "\n";
            }
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

/// One run's row of the table.
fn row(r: &Run) -> String {
    let c = &r.client;
    // No success, no latency: n/a rather than a made-up 0.0.
    let ms = |pick: fn(&Percentiles) -> f64| {
        c.latency
            .as_ref()
            .map_or_else(|| "n/a".to_string(), |p| format!("{:.1}", pick(p)))
    };
    let (in_flight, connections) = r.server.map_or_else(
        || ("n/a".to_string(), "n/a".to_string()),
        |s| (s.max_in_flight.to_string(), s.connections.to_string()),
    );
    format!(
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
        in_flight,
        connections,
    )
}
