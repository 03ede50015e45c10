//! Records and checks the benchmark baseline (`benches/baseline.json`).
//!
//! * `baseline save` runs the Callgrind benches (instruction counts, the
//!   gate) and the criterion benches (wall time, paired with the anchors:
//!   advisory), and writes the figures with where they came from (git
//!   revision, `rustc -vV`, valgrind and gungraun versions).
//! * `baseline compare` runs the Callgrind benches again and exits 1 if any
//!   of ours (`*_ours`) grew by more than the threshold (default 2%); the
//!   anchors' counts are shown beside them but not gated.
//! * `baseline table` prints the README's performance table from the file.
//! * `baseline ratios --runs N [--filter GROUP]` runs the criterion benches
//!   `N` times and prints each ratio's median and spread, writing nothing.
//!
//! Wall time on a shared 2-core machine swings run to run, so every ratio
//! is the median of several runs (`--runs`, default 5), shown with its
//! min–max.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const PACKAGE: &str = "async-patterns-benches";
const CALLGRIND_BENCHES: &[&str] = &[
    "semaphore_callgrind",
    "rate_limiter_callgrind",
    "circuit_breaker_callgrind",
    "composition_callgrind",
    "tower_layers_callgrind",
];
const CRITERION_BENCHES: &[&str] = &[
    "semaphore",
    "rate_limiter",
    "circuit_breaker",
    "composition",
    "tower_layers",
];
const OURS: &str = "async-patterns";

#[derive(Parser)]
#[command(about = "Record and check the benchmark baseline")]
struct Cli {
    /// The baseline file.
    #[arg(long, global = true, default_value = "benches/baseline.json")]
    file: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every benchmark and write the baseline file.
    Save {
        /// Re-measure instruction counts only; keep the wall-time figures
        /// already in the file (skips the slower criterion runs).
        #[arg(long)]
        skip_wall_time: bool,
        /// Criterion runs; each ratio is their median.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
    },
    /// Run the criterion benches `--runs` times and print each ratio's
    /// median and spread; writes nothing.
    Ratios {
        /// Criterion runs; each ratio is their median.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
        /// Only benchmark groups whose name contains this (e.g.
        /// `semaphore/try_acquire_release`); criterion runs only those.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Run the Callgrind benches and fail if one of ours (`*_ours`) grew
    /// by more than the threshold; the anchors' counts are shown, not gated
    /// (they move with the binary's layout, which our changes alter).
    Compare {
        /// Allowed growth in instructions, in percent.
        #[arg(long, default_value_t = 2.0, value_parser = parse_threshold)]
        threshold: f64,
    },
    /// Print the performance table (markdown) from the baseline file.
    Table,
}

fn parse_threshold(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("not a number: {e}"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err("the threshold is a percentage, 0 or more".into())
    }
}

#[derive(Serialize, Deserialize)]
struct Baseline {
    regenerate_with: String,
    git_revision: String,
    rustc: String,
    valgrind: String,
    gungraun: String,
    /// Instructions per benchmark run, by `group::function`.
    instructions: BTreeMap<String, u64>,
    /// criterion medians, ours beside the anchor, per comparison.
    #[serde(default)]
    wall_time: Vec<Pairing>,
    /// The revision the wall-time figures were measured at: older than
    /// `git_revision` after `save --skip-wall-time`.
    #[serde(default)]
    wall_time_git_revision: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct Pairing {
    benchmark: String,
    anchor: String,
    /// Medians over the runs of criterion's per-run medians.
    ours_ns: f64,
    anchor_ns: f64,
    /// ours / anchor, the median of the runs' ratios: below 1 means we
    /// take less time.
    ratio: f64,
    /// Every run's ratio, in run order (absent in a file from one run).
    #[serde(default)]
    runs: Vec<f64>,
}

impl Pairing {
    /// `0.63× (0.60–0.66, 5 runs)`, or just the ratio for one run.
    fn ratio_cell(&self) -> String {
        let (lo, hi) = self
            .runs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                (lo.min(r), hi.max(r))
            });
        if self.runs.len() > 1 {
            format!(
                "**{:.2}×** ({lo:.2}–{hi:.2}, {} runs)",
                self.ratio,
                self.runs.len()
            )
        } else {
            format!("**{:.2}×**", self.ratio)
        }
    }
}

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let file = root.join(&cli.file);
    let result = match cli.command {
        Cmd::Save {
            skip_wall_time,
            runs,
        } => save(&root, &file, skip_wall_time, runs),
        Cmd::Ratios { runs, filter } => {
            run_criterion(&root, runs, filter.as_deref()).map(|pairs| {
                print!("{}", wall_time_table(&pairs));
                true
            })
        }
        Cmd::Compare { threshold } => compare(&root, &file, threshold),
        Cmd::Table => load(&file).map(|b| {
            print!("{}", table(&b));
            true
        }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("baseline: {e}");
            ExitCode::from(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ sits in the workspace root")
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn save(root: &Path, file: &Path, skip_wall_time: bool, runs: u32) -> Result<bool, Error> {
    // Read the figures to keep before measuring anything: a file that cannot
    // be read is an error, not a baseline silently saved without them.
    let kept = if skip_wall_time {
        let old = load(file)?;
        let revision = if old.wall_time_git_revision.is_empty() {
            old.git_revision
        } else {
            old.wall_time_git_revision
        };
        Some((old.wall_time, revision))
    } else {
        None
    };
    let git_revision = output("git", &["rev-parse", "HEAD"], root)?
        + if output("git", &["status", "--porcelain"], root)?.is_empty() {
            ""
        } else {
            " (with uncommitted changes)"
        };
    let instructions = run_callgrind(root)?;
    let (wall_time, wall_time_git_revision) = match kept {
        Some(kept) => kept,
        None => (run_criterion(root, runs, None)?, git_revision.clone()),
    };
    let baseline = Baseline {
        regenerate_with: "cargo run -p async-patterns-benches --release --bin baseline -- save"
            .into(),
        git_revision,
        rustc: output("rustc", &["-vV"], root)?,
        valgrind: output("valgrind", &["--version"], root)?,
        gungraun: gungraun_version(root)?,
        instructions,
        wall_time,
        wall_time_git_revision,
    };
    std::fs::write(file, serde_json::to_string_pretty(&baseline)? + "\n")?;
    println!("wrote {}", file.display());
    print!("{}", table(&baseline));
    Ok(true)
}

fn compare(root: &Path, file: &Path, threshold: f64) -> Result<bool, Error> {
    let baseline = load(file)?;
    if output("rustc", &["-vV"], root)? != baseline.rustc {
        eprintln!(
            "baseline: warning: rustc differs from the baseline's; instruction counts may move"
        );
    }
    let now = run_callgrind(root)?;
    let mut ok = true;
    println!(
        "{:<60} {:>12} {:>12} {:>8}",
        "benchmark", "baseline", "now", "change"
    );
    for (name, &base) in &baseline.instructions {
        let Some(&cur) = now.get(name) else {
            println!("{name:<60} {base:>12} {:>12} {:>8}", "missing", "FAIL");
            ok = false;
            continue;
        };
        let change = (cur as f64 - base as f64) / base.max(1) as f64 * 100.0;
        let gated = name.ends_with("_ours");
        let verdict = if !gated {
            "  (anchor, not gated)"
        } else if change > threshold {
            ok = false;
            "  REGRESSED"
        } else {
            ""
        };
        println!("{name:<60} {base:>12} {cur:>12} {change:>+7.2}%{verdict}");
    }
    for name in now
        .keys()
        .filter(|n| !baseline.instructions.contains_key(*n))
    {
        println!(
            "{name:<60} {:>12} {:>12} (new: run `baseline save`)",
            "-", now[name]
        );
    }
    println!(
        "{} (threshold +{threshold}% instructions)",
        if ok { "no regression" } else { "REGRESSION" }
    );
    Ok(ok)
}

fn load(file: &Path) -> Result<Baseline, Error> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e} (run `baseline save`)", file.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The README's performance table: wall-time ratios (criterion medians), then
/// instruction counts with ours beside the anchor's (`<name>_ours` beside
/// `<name>_<anchor>`).
fn table(b: &Baseline) -> String {
    let mut s = wall_time_table(&b.wall_time);
    s.push_str(
        "\n| benchmark (instructions, Callgrind) | anchor | ours / anchor | ours | anchor |\n|---|---|---|---|---|\n",
    );
    for (name, &ours) in &b.instructions {
        let Some(stem) = name.strip_suffix("_ours") else {
            continue;
        };
        let anchors = b.instructions.iter().filter(|(n, _)| {
            n.strip_prefix(stem)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|anchor| anchor != "ours")
        });
        let mut paired = false;
        for (anchor_name, &anchor) in anchors {
            paired = true;
            let _ = writeln!(
                s,
                "| {stem} | {} | **{:.2}×** | {ours} | {anchor} |",
                &anchor_name[stem.len() + 1..],
                ours as f64 / anchor.max(1) as f64
            );
        }
        if !paired {
            let _ = writeln!(s, "| {stem} | — | — | {ours} | — |");
        }
    }
    s
}

/// The wall-time half of the table: each ratio's median over the runs and
/// its spread.
fn wall_time_table(pairs: &[Pairing]) -> String {
    let mut s = String::from(
        "| benchmark (wall time, median of runs of criterion medians) | anchor | ours / anchor (min–max) | ours | anchor |\n|---|---|---|---|---|\n",
    );
    for p in pairs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} ns | {:.1} ns |",
            p.benchmark,
            p.anchor,
            p.ratio_cell(),
            p.ours_ns,
            p.anchor_ns
        );
    }
    s
}

/// The median of `xs` (the mean of the middle two for an even count).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => xs[n / 2],
        _ => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn output(cmd: &str, args: &[&str], dir: &Path) -> Result<String, Error> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

fn run(cmd: &mut Command) -> Result<(), Error> {
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}").into())
    }
}

fn gungraun_version(root: &Path) -> Result<String, Error> {
    let runner = output("gungraun-runner", &["--version"], root).unwrap_or_default();
    Ok(if runner.is_empty() {
        "gungraun-runner not on PATH".into()
    } else {
        runner
    })
}

/// Runs the Callgrind benches and reads each benchmark's instruction count
/// from gungraun's JSON summaries.
fn run_callgrind(root: &Path) -> Result<BTreeMap<String, u64>, Error> {
    let dir = target_dir(root).join("gungraun").join(PACKAGE);
    let mut counts = BTreeMap::new();
    for bench in CALLGRIND_BENCHES {
        let _ = std::fs::remove_dir_all(dir.join(bench));
        run(Command::new("cargo")
            .args([
                "bench",
                "-p",
                PACKAGE,
                "--bench",
                bench,
                "--",
                "--save-summary=json",
            ])
            .current_dir(root))?;
        for path in find_files(&dir.join(bench), "summary.json")? {
            let summary: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            // e.g. "semaphore_callgrind::semaphore::handoff_ours", plus
            // ".id" for benches with several cases.
            let mut name = summary["module_path"].as_str().unwrap_or("?").to_string();
            if let Some(id) = summary["id"].as_str() {
                name = format!("{name}.{id}");
            }
            let ir = instruction_count(&summary)
                .ok_or_else(|| format!("no instruction count in {}", path.display()))?;
            counts.insert(name, ir);
        }
    }
    if counts.is_empty() {
        return Err("the Callgrind benches produced no summaries".into());
    }
    Ok(counts)
}

/// `Ir` of the whole run, from a gungraun 0.20 (schema 7) summary.
fn instruction_count(summary: &Value) -> Option<u64> {
    summary["profiles"]
        .as_array()?
        .iter()
        .find(|p| p["tool"] == "Callgrind")?
        .pointer("/data/total/metrics/Ir/values/new")?
        .as_u64()
}

/// Runs the criterion benches `runs` times (only the groups containing
/// `filter`, if given) and pairs our median with each anchor's: per pairing,
/// the median over the runs and every run's ratio.
fn run_criterion(root: &Path, runs: u32, filter: Option<&str>) -> Result<Vec<Pairing>, Error> {
    // (benchmark, anchor) -> per run (ours ns, anchor ns)
    let mut seen: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for run_number in 1..=runs {
        eprintln!("criterion run {run_number} of {runs}");
        for (benchmark, anchor, ours, anchor_ns) in criterion_once(root, filter)? {
            seen.entry((benchmark, anchor))
                .or_default()
                .push((ours, anchor_ns));
        }
    }
    if seen.is_empty() {
        return Err(match filter {
            Some(f) => format!("no benchmark group pairs ours with an anchor and contains {f:?}"),
            None => "no benchmark group pairs ours with an anchor".to_string(),
        }
        .into());
    }
    Ok(seen
        .into_iter()
        .map(|((benchmark, anchor), per_run)| {
            let runs: Vec<f64> = per_run.iter().map(|(o, a)| o / a).collect();
            Pairing {
                benchmark,
                anchor,
                ours_ns: median(per_run.iter().map(|p| p.0).collect()),
                anchor_ns: median(per_run.iter().map(|p| p.1).collect()),
                ratio: median(runs.clone()),
                runs,
            }
        })
        .collect())
}

/// One criterion run: (benchmark, anchor, our median ns, the anchor's).
fn criterion_once(
    root: &Path,
    filter: Option<&str>,
) -> Result<Vec<(String, String, f64, f64)>, Error> {
    let dir = target_dir(root).join("criterion");
    // Results of earlier runs stay on disk: clear them, so that a group
    // this run skipped is not read as measured.
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    for bench in CRITERION_BENCHES {
        let mut cmd = Command::new("cargo");
        cmd.args(["bench", "-q", "-p", PACKAGE, "--bench", bench])
            .current_dir(root);
        if let Some(f) = filter {
            cmd.args(["--", f]);
        }
        run(&mut cmd)?;
    }
    // (group, parameter) -> function -> median ns
    let mut groups: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for path in find_files(&dir, "benchmark.json")? {
        if path.parent().and_then(Path::file_name) != Some("new".as_ref()) {
            continue;
        }
        let meta: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let est: Value = serde_json::from_str(&std::fs::read_to_string(
            path.with_file_name("estimates.json"),
        )?)?;
        let median = est["median"]["point_estimate"]
            .as_f64()
            .ok_or("criterion estimates without a median")?;
        let key = (
            meta["group_id"].as_str().unwrap_or("?").to_string(),
            meta["value_str"].as_str().unwrap_or("").to_string(),
        );
        let function = meta["function_id"].as_str().unwrap_or("?").to_string();
        groups.entry(key).or_default().insert(function, median);
    }
    let mut pairs = Vec::new();
    for ((group, param), functions) in groups {
        let Some(&ours) = functions.get(OURS) else {
            continue;
        };
        let benchmark = if param.is_empty() {
            group.clone()
        } else {
            format!("{group}/{param}")
        };
        if filter.is_some_and(|f| !benchmark.contains(f)) {
            continue;
        }
        for (anchor, &anchor_ns) in functions.iter().filter(|(f, _)| *f != OURS) {
            pairs.push((benchmark.clone(), anchor.clone(), ours, anchor_ns));
        }
    }
    Ok(pairs)
}

fn find_files(dir: &Path, name: &str) -> Result<Vec<PathBuf>, Error> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name() == Some(name.as_ref()) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `save --skip-wall-time` writes back the wall-time figures it read:
    /// they must survive the trip to the last digit.
    #[test]
    fn the_committed_baseline_survives_a_read_and_write_unchanged() {
        let text = std::fs::read_to_string(workspace_root().join("benches/baseline.json")).unwrap();
        let baseline = load(&workspace_root().join("benches/baseline.json")).unwrap();
        assert!(!baseline.wall_time.is_empty());
        assert_eq!(
            serde_json::to_string_pretty(&baseline).unwrap() + "\n",
            text
        );
    }

    #[test]
    fn keeping_the_wall_time_of_a_missing_file_is_an_error() {
        let missing = workspace_root().join("benches/no-such-baseline.json");
        let err = save(&workspace_root(), &missing, true, 1).err().unwrap();
        assert!(err.to_string().contains("cannot read"), "{err}");
        assert!(!missing.exists());
    }
}
