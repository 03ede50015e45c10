//! `lab`: the Performance Lab.
//!
//! ```text
//! lab run [--engines sequential,threaded,reqwest,async,async-resilient] [--requests N]
//!         [--concurrency 5,50,500] [--latency 50ms] [--shape fixed|uniform|long-tail]
//!         [--errors 0.01] [--capacity N] [--keep-alive true|false] [--max-idle N]
//!         [--seed S] [--runs N] [--target URL[,URL...]] [--json FILE] [--plot FILE.svg]
//! lab serve [--latency 50ms] [--shape ...] [--errors 0.01] [--capacity N] [--seed S]
//!           [--port 0] [--for DURATION]
//! lab versus-wrk [--concurrency 50,500] [--runs 3] [--duration 5s] [--wrk-threads 2]
//!                [--engine async] [--latency 50ms] [--errors 0.01] ...
//! lab plot REPORT.json --out FILE.svg
//! ```
//!
//! Each run happens in a child process (`lab engine`, not for people), so
//! its peak RSS and CPU time are its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use async_patterns_lab::engines::{self, Engine, EngineReport, Pool, Workload};
use async_patterns_lab::lab::{self, LabConfig};
use async_patterns_lab::measure;
use async_patterns_lab::server::{Latency, Server, ServerConfig, Shape};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(about = "The Performance Lab: sequential, threaded and async engines over loopback HTTP")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The embedded upstream's behaviour.
#[derive(clap::Args)]
struct UpstreamArgs {
    /// The upstream's mean latency per request (e.g. 50ms, 1s).
    #[arg(long, default_value = "50ms", value_parser = latency)]
    latency: Duration,
    /// The shape of the latency distribution around the mean.
    #[arg(long, value_enum, default_value = "fixed")]
    shape: Shape,
    /// The share of requests the upstream fails with a 500, in [0, 1].
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true, value_parser = rate)]
    errors: f64,
    /// Let the upstream serve at most this many requests at once (the
    /// rest queue).
    #[arg(long, allow_negative_numbers = true, value_parser = positive)]
    capacity: Option<usize>,
    /// Seeds the upstream's latency and error draws (and `lab run`'s retry
    /// jitter).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = count::<u64>)]
    seed: u64,
}

impl UpstreamArgs {
    fn config(&self) -> ServerConfig {
        ServerConfig {
            latency: Latency {
                shape: self.shape,
                mean: self.latency,
            },
            error_rate: self.errors,
            capacity: self.capacity,
            seed: self.seed,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Start the upstream, run every engine at every concurrency level, and
    /// report (the defaults finish in well under a minute).
    ///
    /// Every request has a timeout of 50 mean latencies, at least 10 s. The
    /// async engines abort a request at it; the blocking ones (sequential,
    /// threaded) cannot, so they wait for the answer and count it as a
    /// timeout error; a resilient request whose attempts add up to more is
    /// one too. Errors are counted by cause: 5xx, 4xx, timeout, connect,
    /// reset, circuit-open (the resilient engine's breaker), other.
    Run {
        /// Engines to run, comma-separated.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "sequential,threaded,reqwest,async,async-resilient"
        )]
        engines: Vec<Engine>,
        /// Requests per run [default: 50 per unit of concurrency, so each
        /// run lasts about 50 latencies].
        #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..))]
        requests: Option<u64>,
        /// Concurrency levels, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "5,50,500", allow_negative_numbers = true, value_parser = positive)]
        concurrency: Vec<usize>,
        #[command(flatten)]
        upstream: UpstreamArgs,
        /// Run against these endpoints (http://HOST:PORT/PATH, comma-separated;
        /// requests go round-robin) instead of the embedded upstream. `C / L`
        /// then uses the median latency of a short calibration at C = 1.
        /// The upstream's options (--latency, --shape, --errors, --capacity)
        /// describe the embedded upstream only, so they are an error with it.
        #[arg(long, value_name = "URL", value_delimiter = ',', value_parser = target,
              conflicts_with_all = ["latency", "shape", "errors", "capacity"])]
        target: Vec<String>,
        /// Run the whole plan this many times: the table shows each, the
        /// goals give min / median / max and are judged on the median (the
        /// throughput goals need 3 or more).
        #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = positive)]
        runs: usize,
        /// Before each run of the async engines and reqwest, open the
        /// connections with one uncounted request per unit of concurrency
        /// (on the clock), so the latencies, like wrk's, leave out
        /// connecting.
        #[arg(long)]
        warm_up: bool,
        /// Reuse client connections (HTTP keep-alive).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        keep_alive: bool,
        /// Idle connections each client keeps (0: none, so every request
        /// opens a connection) [default: its concurrency].
        #[arg(long, allow_negative_numbers = true, value_parser = count::<usize>)]
        max_idle: Option<usize>,
        /// Also write the report as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also draw throughput and p99 against concurrency as an SVG.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Start the embedded upstream on its own, for outside tools (wrk, oha,
    /// curl): it prints `listening on http://127.0.0.1:PORT/` and serves
    /// until Ctrl-C or the end of --for.
    Serve {
        #[command(flatten)]
        upstream: UpstreamArgs,
        /// The port on 127.0.0.1 (0: one the OS picks).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Stop after this long (e.g. 30s, 5m) [default: until Ctrl-C].
        #[arg(long = "for", value_parser = positive_duration)]
        for_: Option<Duration>,
    },
    /// One of our engines (async by default) beside wrk against the same
    /// embedded upstream: at each level, --runs pairs of runs (wrk, then
    /// ours), each pair's ratios ours / wrk, and the issue's goals (ours at
    /// least 0.99x wrk's completed requests/s and at most 1.1x its p99, on
    /// the median ratios). Without wrk installed it says so and exits 0.
    VersusWrk {
        #[command(flatten)]
        upstream: UpstreamArgs,
        /// Concurrency levels, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "50,500", allow_negative_numbers = true, value_parser = positive)]
        concurrency: Vec<usize>,
        /// Pairs of runs at each level.
        #[arg(long, default_value_t = 3, allow_negative_numbers = true, value_parser = positive)]
        runs: usize,
        /// How long each run lasts: wrk's -d (whole seconds); ours makes
        /// C x duration / latency requests.
        #[arg(long, default_value = "5s", value_parser = positive_duration)]
        duration: Duration,
        /// wrk's threads (-t).
        #[arg(long, default_value_t = 2, allow_negative_numbers = true, value_parser = positive)]
        wrk_threads: usize,
        /// Our engine to compare.
        #[arg(long, value_enum, default_value = "async")]
        engine: Engine,
    },
    /// Redraw the plot of a report saved with `lab run --json`.
    Plot {
        /// The JSON report.
        report: PathBuf,
        /// Where to write the SVG.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run one engine on one workload and print its report as JSON (what
    /// `lab run` starts in a child process).
    #[command(hide = true)]
    Engine {
        /// The engine.
        #[arg(long, value_enum)]
        engine: Engine,
        /// The workload, as JSON.
        #[arg(long)]
        workload: String,
    },
}

/// `print!` to stdout, except that a reader gone away (`lab run | head`)
/// is no reason to panic or to stop: the files are still written.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// [`say!`] with a newline.
macro_rules! sayln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn positive(text: &str) -> Result<usize, String> {
    at_least(text, 1, "is not a positive number")
}

fn count<T: TryFrom<i128>>(text: &str) -> Result<T, String> {
    at_least(text, 0, "is negative")
}

/// A number of at least `min`; one below it is `{n} {below}`. (Parsed
/// wide, so a negative number or one too large gets a message of its own.)
fn at_least<T: TryFrom<i128>>(text: &str, min: i128, below: &str) -> Result<T, String> {
    match text.trim().parse::<i128>() {
        Ok(n) if n >= min => T::try_from(n).map_err(|_| format!("{n} is too large")),
        Ok(n) => Err(format!("{n} {below}")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

fn latency(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 50ms or 1s: {e}"))?;
    if d.is_zero() {
        return Err("the latency must be above zero (C / L needs it)".into());
    }
    Ok(d)
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 30s or 5m: {e}"))?;
    if d.is_zero() {
        return Err("the duration must be above zero".into());
    }
    Ok(d)
}

fn target(text: &str) -> Result<String, String> {
    lab::target(text).map_err(|e| e.to_string())
}

fn rate(text: &str) -> Result<f64, String> {
    let r: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!("{r} is outside [0, 1]"))
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs `engine` on `workload` in a child process of this binary, and
/// kills it if it outlives a generous deadline (an upstream that stops
/// answering must not hang the lab; the blocking engines cannot abort a
/// request at its timeout, since ureq's own timeouts triple their CPU time
/// at C = 500).
fn in_child(engine: Engine, workload: &Workload) -> Result<EngineReport, String> {
    use std::io::Read;
    use std::process::Stdio;
    let exe = std::env::current_exe().map_err(|e| format!("finding the lab binary: {e}"))?;
    let json = serde_json::to_string(workload).map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .args(["engine", "--engine", engine.name(), "--workload", &json])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the {} engine: {e}", engine.name()))?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let rounds = workload
        .requests
        .div_ceil(workload.concurrency.max(1) as u64);
    let deadline = Duration::from_secs(60)
        + workload
            .timeout
            .saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX));
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if started.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the {} engine at C = {} did not finish within {deadline:?}; killed",
                    engine.name(),
                    workload.concurrency
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    if !status.success() {
        return Err(format!(
            "the {} engine at C = {} failed ({status}): {}",
            engine.name(),
            workload.concurrency,
            String::from_utf8_lossy(&stderr).trim()
        ));
    }
    serde_json::from_slice(&stdout)
        .map_err(|e| format!("the {} engine's report: {e}", engine.name()))
}

/// Checks, before any work, that `flag`'s output file can be written: its
/// directory exists, it is no directory, and it opens for writing (a file
/// this check creates, it removes again; one that exists, it leaves as it
/// is).
fn writable(flag: &str, path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let bad = |why: String| format!("{flag} {}: {why}", path.display());
    if !dir.is_dir() {
        return Err(bad(format!(
            "the directory {} does not exist",
            dir.display()
        )));
    }
    if path.is_dir() {
        return Err(bad("is a directory".into()));
    }
    // Appending nothing changes no file, and still fails on a read-only
    // one or a device that refuses writes (/dev/full).
    use std::io::Write as _;
    let existed = path.exists();
    let probe = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write(&[]).map(drop));
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    probe.map_err(|e| bad(format!("cannot be written: {e}")))
}

fn write_plot(report: &lab::LabReport, path: &Path) -> Result<(), String> {
    std::fs::write(path, async_patterns_lab::plot::svg(report)?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    sayln!("plot: {}", path.display());
    Ok(())
}

fn write_json(report: &lab::LabReport, path: &Path) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    sayln!("json: {}", path.display());
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Plot { report, out } => {
            if matches!(
                (std::fs::canonicalize(&report), std::fs::canonicalize(&out)),
                (Ok(a), Ok(b)) if a == b
            ) {
                return Err(format!(
                    "--out {} is the report it plots: write the plot elsewhere",
                    out.display()
                ));
            }
            writable("--out", &out)?;
            let text = std::fs::read_to_string(&report)
                .map_err(|e| format!("{}: {e}", report.display()))?;
            let report: lab::LabReport = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a lab report: {e}", report.display()))?;
            write_plot(&report, &out)
        }
        Command::Engine { engine, workload } => {
            let workload: Workload =
                serde_json::from_str(&workload).map_err(|e| format!("--workload: {e}"))?;
            let mut report = engines::run(engine, &workload).map_err(|e| e.to_string())?;
            (report.peak_rss_kib, report.cpu_s) = measure::own_usage()?;
            println!(
                "{}",
                serde_json::to_string(&report).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Command::Serve {
            upstream,
            port,
            for_,
        } => serve(upstream.config(), port, for_),
        Command::VersusWrk {
            upstream,
            concurrency,
            runs,
            duration,
            wrk_threads,
            engine,
        } => versus_wrk(
            upstream.config(),
            &concurrency,
            runs,
            duration,
            wrk_threads,
            engine,
        ),
        Command::Run {
            engines,
            requests,
            concurrency,
            upstream,
            target,
            runs,
            warm_up,
            keep_alive,
            max_idle,
            json,
            plot,
        } => {
            // A bad output path must fail now, not after the whole run.
            if json.is_some() && json == plot {
                return Err("--json and --plot name the same file".into());
            }
            for (flag, path) in [("--json", &json), ("--plot", &plot)] {
                if let Some(path) = path {
                    writable(flag, path)?;
                }
            }
            let mut concurrency = concurrency;
            concurrency.sort_unstable();
            concurrency.dedup();
            let highest = concurrency.last().copied().unwrap_or(1);
            measure::ensure_open_files(measure::files_needed(highest))
                .map_err(|e| format!("--concurrency {highest}: {e}"))?;
            let config = LabConfig {
                engines,
                requests,
                concurrency,
                server: upstream.config(),
                pool: Pool {
                    keep_alive,
                    max_idle,
                },
                targets: target,
                repeats: runs,
                warm_up,
            };
            let calibration = u64::from(!config.targets.is_empty());
            let bar = ProgressBar::new(config.plan().len() as u64 * runs as u64 + calibration);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} runs: {msg} ({elapsed})")
                    .map_err(|e| e.to_string())?,
            );
            let mut started = false;
            let report = lab::run(&config, in_child, |engine, c| {
                if started {
                    bar.inc(1);
                }
                started = true;
                bar.set_message(if calibration == 1 && !started_plan(&bar) {
                    "calibrating L at C = 1".to_string()
                } else {
                    format!("{} at C = {c}", engine.name())
                });
            })?;
            bar.finish_and_clear();
            say!("{}", report.table());
            // One output failing (the disk filled up) does not lose the other.
            let mut failed = Vec::new();
            if let Some(path) = &json {
                failed.extend(write_json(&report, path).err());
            }
            if let Some(path) = &plot {
                failed.extend(write_plot(&report, path).err());
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("; "))
            }
        }
    }
}

/// Whether the bar is past the calibration (its first step).
fn started_plan(bar: &ProgressBar) -> bool {
    bar.position() > 0
}

/// `lab serve`: the upstream until Ctrl-C or `for_`, then what it saw.
fn serve(config: ServerConfig, port: u16, for_: Option<Duration>) -> Result<(), String> {
    use std::io::Write;
    // As many clients as the limits allow (wrk -c10000 must not be
    // turned away at 1024); a limit that cannot be raised is no reason
    // not to serve.
    if let Err(e) = measure::raise_open_files(1 << 20) {
        eprintln!("lab: serving with the open-files limit as it is: {e}");
    }
    let server = Server::start_on(config, 2, port).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => format!("--port {port}: the port is in use"),
        _ => format!("--port {port}: cannot listen on 127.0.0.1:{port}: {e}"),
    })?;
    sayln!("listening on {}", server.url());
    let _ = std::io::stdout().flush();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("a tokio runtime: {e}"))?;
    let why = runtime.block_on(async {
        let until = async {
            match for_ {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            signal = tokio::signal::ctrl_c() => match signal {
                Ok(()) => Ok("Ctrl-C"),
                Err(e) => Err(format!("listening for Ctrl-C: {e}")),
            },
            () = until => Ok("--for"),
        }
    })?;
    let seen = server.stats();
    drop(server);
    eprintln!(
        "stopped ({why}): {} requests ({} injected errors) on {} connections",
        seen.requests, seen.errors_injected, seen.connections
    );
    Ok(())
}

/// `lab versus-wrk`: see its help.
fn versus_wrk(
    config: ServerConfig,
    levels: &[usize],
    runs: usize,
    duration: Duration,
    wrk_threads: usize,
    engine: Engine,
) -> Result<(), String> {
    use async_patterns_lab::versus::{self, Level, Measured};
    match std::process::Command::new("wrk").arg("--version").output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            sayln!(
                "wrk is not installed, so there is nothing to compare with \
                 (Debian: apt-get install wrk)"
            );
            return Ok(());
        }
        Err(e) => return Err(format!("running wrk: {e}")),
        Ok(_) => {}
    }
    let highest = levels.iter().copied().max().unwrap_or(1);
    measure::ensure_open_files(measure::files_needed(2 * highest))
        .map_err(|e| format!("--concurrency {highest}: {e}"))?;
    let server = Server::start(config, 2).map_err(|e| format!("starting the upstream: {e}"))?;
    let url = server.url();
    let latency = config.latency.mean;
    let timeout = engines::request_timeout(latency);
    let duration = Duration::from_secs(duration.as_secs().max(1));
    let mut table: Vec<Level> = (levels.iter())
        .map(|&concurrency| Level {
            concurrency,
            ..Level::default()
        })
        .collect();
    for run in 1..=runs {
        for level in &mut table {
            let c = level.concurrency;
            server.reset();
            let args = versus::wrk_args(&url, c, wrk_threads, duration, timeout);
            let out = std::process::Command::new("wrk")
                .args(&args)
                .output()
                .map_err(|e| format!("running wrk: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let wrk = versus::parse_wrk(&text).ok_or_else(|| {
                format!(
                    "wrk {}: no report ({}): {text}{}",
                    args.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
            server.reset();
            let requests = (c as f64 * duration.as_secs_f64() / latency.as_secs_f64())
                .ceil()
                .max(1.0) as u64;
            let workload = Workload {
                urls: vec![url.clone()],
                requests,
                concurrency: c,
                pool: Pool {
                    keep_alive: true,
                    max_idle: None,
                },
                mean_latency: latency,
                seed: config.seed,
                timeout,
                // wrk's latency starts once connected: so does ours.
                warm_up: true,
            };
            let report = in_child(engine, &workload)?;
            let ours = Measured {
                // Every answer counts, as in wrk's rate: the warm-up's too.
                completed_per_s: (report.successes + report.errors + report.warm_up_answers) as f64
                    / report.elapsed_s.max(f64::MIN_POSITIVE),
                p99_ms: report.latency.map_or(f64::NAN, |p| p.p99_ms),
            };
            eprintln!(
                "run {run}/{runs}, C = {c}: wrk {:.0} req/s, p99 {:.1} ms{}; {} {:.0} req/s, \
                 p99 {:.1} ms ({} errors of {})",
                wrk.completed_per_s,
                wrk.p99_ms,
                versus::wrk_socket_errors(&text).map_or(String::new(), |e| format!(" ({e})")),
                engine.name(),
                ours.completed_per_s,
                ours.p99_ms,
                report.errors,
                report.requests,
            );
            level.wrk.push(wrk);
            level.ours.push(ours);
        }
    }
    sayln!(
        "{} vs wrk -t{wrk_threads}, {}s runs, upstream {} {}, {:.0}% errors:\n",
        engine.name(),
        duration.as_secs(),
        async_patterns_lab::plot::cli_name(&config.latency.shape),
        humantime::format_duration(latency),
        100.0 * config.error_rate
    );
    say!("{}", versus::HEADER);
    for level in &table {
        say!("{}", level.rows(engine.name()));
    }
    Ok(())
}
