//! `lab versus-wrk`: one of our engines and wrk, side by side, against the
//! same embedded upstream at the same concurrency for about the same time.
//!
//! wrk (a C load generator with an event loop per thread) is the reference
//! for what a client on this machine can get out of the upstream: if our
//! async engine completes fewer requests per second, or has a longer tail,
//! the difference is ours. Each run pairs one wrk run with one of ours
//! (interleaved, so a change of the machine's load hits both), and the
//! comparison is the ratio ours / wrk of each pair, as min / median / max.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one tool measured in one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Completed requests (any status) per second.
    pub completed_per_s: f64,
    /// 99th-percentile latency, in milliseconds.
    pub p99_ms: f64,
}

/// Reads wrk's `--latency` report: `Requests/sec:` and the `99%` line of
/// its latency distribution. `None` if either is missing.
pub fn parse_wrk(text: &str) -> Option<Measured> {
    let mut completed_per_s = None;
    let mut p99_ms = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(n)) => completed_per_s = n.parse().ok(),
            (Some("99%"), Some(t)) => p99_ms = wrk_ms(t),
            _ => {}
        }
    }
    Some(Measured {
        completed_per_s: completed_per_s?,
        p99_ms: p99_ms?,
    })
}

/// A wrk duration (`812.00us`, `59.90ms`, `1.02s`, `2.00m`) in
/// milliseconds.
fn wrk_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    let factor = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(n * factor)
}

/// wrk's socket errors line (`Socket errors: connect 0, read 3, ...`), if
/// it printed one, as it printed it.
pub fn wrk_socket_errors(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("Socket errors:") || l.starts_with("Non-2xx"))
}

/// Min, median and max of `values` (the median of an even count is the
/// mean of the middle two); `None` for none.
pub fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = match n {
        0 => return None,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    };
    Some((v[0], median, v[n - 1]))
}

/// The goals for one level: ours at least 0.99× wrk's completed
/// requests per second and at most 1.1× its p99 (median ratios).
pub const THROUGHPUT_RATIO: f64 = 0.99;
/// See [`THROUGHPUT_RATIO`].
pub const P99_RATIO: f64 = 1.1;

/// Both tools' runs at one concurrency level.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// The concurrency.
    pub concurrency: usize,
    /// wrk's runs.
    pub wrk: Vec<Measured>,
    /// Ours, paired with wrk's by index.
    pub ours: Vec<Measured>,
}

impl Level {
    /// The comparison as Markdown rows: each tool's requests/s and p99 as
    /// min / median / max, then the ratios ours / wrk of each pair and the
    /// goals on their medians.
    pub fn rows(&self, engine: &str) -> String {
        let fmt = |v: &[f64], digits: usize| match spread(v) {
            Some((lo, mid, hi)) => format!("{lo:.digits$} / {mid:.digits$} / {hi:.digits$}"),
            None => "n/a".into(),
        };
        let rate = |m: &[Measured]| m.iter().map(|m| m.completed_per_s).collect::<Vec<_>>();
        let p99 = |m: &[Measured]| m.iter().map(|m| m.p99_ms).collect::<Vec<_>>();
        let pairs = self.wrk.iter().zip(&self.ours);
        let rate_ratio: Vec<f64> = (pairs.clone())
            .map(|(w, o)| o.completed_per_s / w.completed_per_s)
            .collect();
        let p99_ratio: Vec<f64> = pairs.map(|(w, o)| o.p99_ms / w.p99_ms).collect();
        let verdict = |v: &[f64], ok: fn(f64) -> bool| match spread(v) {
            Some((_, mid, _)) if ok(mid) => "met",
            Some(_) => "MISSED",
            None => "-",
        };
        let c = self.concurrency;
        format!(
            "| {c} | wrk | {} | {} | {} |\n\
             | {c} | {engine} | {} | {} | {} |\n\
             | {c} | {engine} / wrk | {} | {} (>= {THROUGHPUT_RATIO}: {}) | {} (<= {P99_RATIO}: {}) |\n",
            self.wrk.len(),
            fmt(&rate(&self.wrk), 0),
            fmt(&p99(&self.wrk), 1),
            self.ours.len(),
            fmt(&rate(&self.ours), 0),
            fmt(&p99(&self.ours), 1),
            rate_ratio.len(),
            fmt(&rate_ratio, 3),
            verdict(&rate_ratio, |x| x >= THROUGHPUT_RATIO),
            fmt(&p99_ratio, 2),
            verdict(&p99_ratio, |x| x <= P99_RATIO),
        )
    }
}

/// The table's header.
pub const HEADER: &str = "| C | client | runs | completed req/s (min / median / max) | p99 ms (min / median / max) |\n\
                          |---|---|---|---|---|\n";

/// wrk's arguments for `concurrency` connections on `threads` threads for
/// `duration` (whole seconds, at least 1) with a request timeout.
pub fn wrk_args(
    url: &str,
    concurrency: usize,
    threads: usize,
    duration: Duration,
    timeout: Duration,
) -> Vec<String> {
    vec![
        format!("-t{}", threads.clamp(1, concurrency)),
        format!("-c{concurrency}"),
        format!("-d{}s", duration.as_secs().max(1)),
        format!("--timeout={}s", timeout.as_secs().max(1)),
        "--latency".into(),
        url.into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// wrk 4.1's report, as it prints it.
    const WRK: &str = "Running 5s test @ http://127.0.0.1:40000/
  2 threads and 500 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    51.94ms    3.12ms  120.05ms   97.10%
    Req/Sec     4.79k   245.51     5.06k    86.00%
  Latency Distribution
     50%   51.29ms
     75%   51.77ms
     90%   52.62ms
     99%   59.90ms
  47312 requests in 5.01s, 3.60MB read
  Non-2xx or 3xx responses: 473
Requests/sec:   9443.61
Transfer/sec:    735.29KB
";

    #[test]
    fn wrk_reports_are_read() {
        let m = parse_wrk(WRK).unwrap();
        assert_eq!(m.completed_per_s, 9443.61);
        assert!((m.p99_ms - 59.9).abs() < 1e-9, "{m:?}");
        assert_eq!(parse_wrk("Running 5s test"), None);
        assert_eq!(wrk_ms("812.00us"), Some(0.812));
        assert_eq!(wrk_ms("1.50s"), Some(1500.0));
        assert_eq!(wrk_ms("fast"), None);
        assert_eq!(
            wrk_socket_errors(WRK),
            Some("Non-2xx or 3xx responses: 473")
        );
    }

    #[test]
    fn spreads_are_min_median_max() {
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((1.0, 2.0, 3.0)));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), Some((1.0, 2.5, 4.0)));
    }

    #[test]
    fn ratios_are_judged_on_their_medians() {
        let m = |r, p| Measured {
            completed_per_s: r,
            p99_ms: p,
        };
        let level = Level {
            concurrency: 500,
            wrk: vec![m(100.0, 50.0), m(100.0, 50.0), m(100.0, 50.0)],
            ours: vec![m(90.0, 80.0), m(99.5, 54.0), m(100.0, 50.0)],
        };
        let rows = level.rows("async");
        assert!(
            rows.contains("| 500 | async / wrk | 3 | 0.900 / 0.995 / 1.000 (>= 0.99: met) | 1.00 / 1.08 / 1.60 (<= 1.1: met) |"),
            "{rows}"
        );
    }
}
