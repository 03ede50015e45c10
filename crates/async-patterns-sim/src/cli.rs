//! The command line a user's binary gets from [`main`]:
//!
//! ```text
//! list
//! sweep [--scenario S] [--seeds N] [--from SEED] [--shard K/N|auto] [--sabotage NAME] [--json FILE] [--once] [--coverage fail|warn] [DENSITY]
//! sweep --guided [--scenario S] [--seeds BUDGET] [--from EXPLORATION-SEED] [--shard K/N|auto] [--sabotage NAME] [--json FILE] [--coverage fail|warn] [DENSITY]
//! replay S --seed X [--plan FILE | DENSITY] [--sabotage NAME | --no-sabotage] [--twice] [--trace] [--plot out.svg]
//! shrink S --seed X [--plan FILE | DENSITY] [--sabotage NAME | --no-sabotage] [--invariant NAME] [--out FILE [--force]]
//! merge FILE...
//!
//! DENSITY: how a seed's plan is drawn, over the scenario's swarm
//!   [--keep CHANCE] [--max-faults N] [--weight KIND=N]... [--kind-subsets]
//! ```
//!
//! The density flags change every seed's plan, so the replay lines a sweep
//! prints repeat them (see [`Swarm`] for what each does).
//!
//! `--json` writes a sweep's record (a header line, then one line per seed)
//! or, with `--guided`, a guided search's (one line per scenario: which
//! search, its runs, corpus, signals, guides and failures); `merge` takes
//! either kind, one kind at a time.
//!
//! Bad input (an unknown scenario or sabotage, a plan that does not parse or
//! names an undeclared target, a range past the last seed, an output path
//! that cannot be written) exits 2 with a message, before any run; a
//! failing run exits 1. No command replaces an existing file unless told to
//! (`shrink --force`; `replay --plot` and `sweep --json` write files named
//! for that).
//!
//! A whole simulation binary:
//!
//! ```no_run
//! # use async_patterns_sim::{Ctx, RunInfo, Scenario, Violation};
//! # struct Orders;
//! # impl Scenario for Orders {
//! #     type Record = ();
//! #     fn name(&self) -> &str { "orders" }
//! #     fn about(&self) -> &str { "" }
//! #     fn build(&self, _: &Ctx<()>, _: &mut turmoil::Sim<'_>) {}
//! #     fn check(&self, _: &RunInfo, _: &()) -> Vec<Violation> { vec![] }
//! # }
//! use std::process::ExitCode;
//!
//! fn main() -> ExitCode {
//!     async_patterns_sim::cli::App::new(&[&Orders])
//!         .replay_command("cargo run --release --bin orders-sim --")
//!         .regressions("tests/regressions")
//!         .main()
//! }
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::assert::check_catalogue;
use crate::coverage::{Catalogue, Judge, coverage};
use crate::engine;
use crate::explore::{
    GUIDED_FORMAT_VERSION, Guided, SearchHeader, Searched, explore_with, merge_searches,
};
use crate::fault::{Chance, FaultKind, FaultPlan, Swarm};

/// Prints a line to stdout; a closed pipe (`sim replay … --trace | head`)
/// ends the command quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            return Err(PIPE.to_string());
        }
    }};
}

/// The error that means stdout was closed under us: not reported.
const PIPE: &str = "\0stdout closed";
use crate::plot;
use crate::run::run_checked;
use crate::scenario::{AnyScenario, Info};
use crate::shrink::{Keep, ShrinkError, regression_file, shrink_keeping};
use crate::sweep::{
    Build, FORMAT_VERSION, Probe, SeedRecord, SweepHeader, fails, merge, read_sweep, replay_line,
    report, shard_seeds, sweep, write_sweep,
};

/// Runs the command line over `scenarios`, with the defaults of [`App`].
pub fn main(scenarios: &[&dyn AnyScenario]) -> ExitCode {
    App::new(scenarios).main()
}

/// A simulation binary: its scenarios, and how its output names it.
pub struct App<'a> {
    scenarios: &'a [&'a dyn AnyScenario],
    replay: Option<String>,
    regressions: PathBuf,
}

impl<'a> App<'a> {
    /// A binary over `scenarios`. Replay lines name the binary as it was
    /// run; shrunk plans go to `regressions/`.
    pub fn new(scenarios: &'a [&'a dyn AnyScenario]) -> Self {
        App {
            scenarios,
            replay: None,
            regressions: PathBuf::from("regressions"),
        }
    }

    /// The command prefix printed in replay lines (e.g. `cargo run -p sim
    /// --release --`), instead of the binary's own path.
    #[must_use]
    pub fn replay_command(mut self, prefix: impl Into<String>) -> Self {
        self.replay = Some(prefix.into());
        self
    }

    /// Where `shrink` saves a regression by default (the folder your
    /// `cargo test` replays with
    /// [`replay_regressions`](crate::testing::replay_regressions)). A
    /// relative path is taken from where the binary runs: give
    /// `concat!(env!("CARGO_MANIFEST_DIR"), "/regressions")` to make it
    /// your crate's folder wherever it runs.
    #[must_use]
    pub fn regressions(mut self, dir: impl Into<PathBuf>) -> Self {
        self.regressions = dir.into();
        self
    }

    /// Parses the process's arguments and runs the command; the exit code
    /// is 0 (pass), 1 (a run failed) or 2 (bad input).
    pub fn main(self) -> ExitCode {
        self.main_from(std::env::args_os())
    }

    /// As [`App::main`], with the arguments given (the first is the
    /// binary's name).
    pub fn main_from(self, args: impl IntoIterator<Item = OsString>) -> ExitCode {
        let mut args: Vec<OsString> = args.into_iter().collect();
        if args.is_empty() {
            args.push("sim".into());
        }
        let prefix = self
            .replay
            .clone()
            .unwrap_or_else(|| args[0].to_string_lossy().into_owned());
        let cli = match Cli::try_parse_from(&args) {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
            }
        };
        let infos: Vec<Info> = self.scenarios.iter().map(|s| s.info()).collect();
        let width = infos.iter().map(|s| s.name.len()).max().unwrap_or(0) + 2;
        let ctx = Run {
            app: &self,
            infos,
            prefix,
            width,
        };
        if let Err(e) = check_names(&ctx.infos) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        crate::run::quiet_panics_in_runs();
        match ctx.command(cli.command) {
            Ok(code) => code,
            Err(e) if e == PIPE => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        }
    }
}

#[derive(Parser)]
#[command(about = "Deterministic simulations under network faults: sweep seeds, replay, shrink")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The scenarios, their fault targets and their sabotages.
    List,
    /// Run many seeds (each twice, comparing trace hashes) and summarise.
    Sweep {
        /// Only this scenario (default: all).
        #[arg(long)]
        scenario: Option<String>,
        /// How many seeds.
        #[arg(long, default_value_t = 50)]
        seeds: u64,
        /// The first seed (with --guided: the exploration seed).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Run only shard K of N (1-based): the seeds whose offset from
        /// `--from` is K-1 modulo N, so N machines split one sweep (write
        /// each with --json, then `merge` them). `auto`: the shard of this
        /// job of a Slurm array, a Kubernetes Indexed Job or a matrix that
        /// sets ASYNC_PATTERNS_SIM_SHARD_INDEX / _COUNT (see the `engine`
        /// module).
        #[arg(long, value_name = "K/N|auto", value_parser = parse_shard)]
        shard: Option<ShardArg>,
        /// Swap in a deliberately broken version the scenario declares
        /// (implies its scenario).
        #[arg(long)]
        sabotage: Option<String>,
        /// Also write the sweep's record to FILE, for `merge`: a header line
        /// (version, build, seed range, shard, probes), then one JSON line
        /// per seed (plan, trace hash, violations, latency histogram). With
        /// --guided, the search's record: one JSON line per scenario (which
        /// search, its runs, corpus, signals, guides and failures).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Run each seed once, skipping the determinism check (faster).
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        density: Density,
        /// A declared point that no seed reached: `fail` the sweep, or
        /// `warn` and pass. A shard (--shard K/N, N > 1) only reports it:
        /// `merge` judges the whole sweep.
        #[arg(long, value_enum, default_value_t = OnUnreached::Fail)]
        coverage: OnUnreached,
        /// A guided search instead of a swarm sweep: plans bred from the
        /// runs that reached a new point, fired a new site or raised a
        /// guide. --seeds is its budget of runs (each run once), --from
        /// its exploration seed (one number replays the whole search);
        /// --shard K/N searches from a seed derived from both, with 1/N of
        /// the budget, and --json writes its record for `merge`. Stops at
        /// the first failure.
        #[arg(long, conflicts_with = "once")]
        guided: bool,
    },
    /// Re-run one seed exactly.
    Replay {
        #[command(flatten)]
        run: OneRun,
        /// Print the event trace.
        #[arg(long)]
        trace: bool,
        /// Draw the run's timeline (faults, and the scenario's lanes) as an
        /// SVG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Run the seed twice, as a sweep does, and show the first event
        /// where the two runs differ, if they do.
        #[arg(long)]
        twice: bool,
    },
    /// Shrink a failing seed's fault plan to a 1-minimal one that breaks
    /// the same invariants (the seed stays fixed) and save it. A plan
    /// shrunk under --sabotage is saved only with --out (it is a
    /// demonstration, not a regression) and records its sabotage.
    Shrink {
        #[command(flatten)]
        run: OneRun,
        /// Keep only this invariant failing (default: every invariant the
        /// seed breaks).
        #[arg(long, value_name = "NAME")]
        invariant: Option<String>,
        /// Where to write the shrunk plan [default without --sabotage:
        /// REGRESSIONS/SCENARIO-seed-SEED.json; with it: not saved].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the output file if it exists (it may be a committed
        /// regression).
        #[arg(long)]
        force: bool,
    },
    /// Merge the --json records of sharded sweeps: the same table, verdict,
    /// exit code and replay lines as one sweep of all the seeds.
    Merge {
        /// The files `sweep --json` wrote.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A declared point that no seed of the whole sweep reached: `fail`
        /// or `warn`.
        #[arg(long, value_enum, default_value_t = OnUnreached::Fail)]
        coverage: OnUnreached,
    },
}

/// What a declared point never reached does to a sweep.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum OnUnreached {
    /// The sweep fails.
    Fail,
    /// The sweep reports it, and may pass.
    Warn,
}

impl OnUnreached {
    fn judge(self, shard: (u64, u64)) -> Judge {
        match self {
            _ if shard.1 > 1 => Judge::Shard,
            OnUnreached::Fail => Judge::Fail,
            OnUnreached::Warn => Judge::Warn,
        }
    }
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
    /// Swap in a deliberately broken version the scenario declares.
    #[arg(long, conflicts_with = "no_sabotage")]
    sabotage: Option<String>,
    /// Run without the sabotage a plan file was saved under (to see the
    /// same faults against the code as it is).
    #[arg(long)]
    no_sabotage: bool,
    #[command(flatten)]
    density: Density,
}

/// How a seed's plan is drawn, over the scenario's own swarm: the flags
/// change every seed's plan, so replay lines repeat them.
#[derive(clap::Args, Clone, Default)]
struct Density {
    /// Each fault of the scenario's swarm menu is in a seed's plan with
    /// this chance: N/M or P% [default: the scenario's; 2/3 unless it says]
    #[arg(long, value_name = "CHANCE")]
    keep: Option<Chance>,
    /// At most N faults in a seed's plan (chosen at random when more are
    /// drawn)
    #[arg(long, value_name = "N")]
    max_faults: Option<usize>,
    /// A fault kind's relative weight, KIND=N (0 leaves the kind out; the
    /// heaviest kind keeps the keep chance); repeatable. Kinds: partition,
    /// partition_oneway, hold, loss, latency, crash
    #[arg(long, value_name = "KIND=N", value_parser = parse_weight)]
    weight: Vec<(FaultKind, u32)>,
    /// Each seed enables a random subset of the fault kinds (swarm
    /// testing: each kind with chance 1/2, at least one)
    #[arg(long)]
    kind_subsets: bool,
}

impl Density {
    /// `swarm` with these settings.
    fn apply(&self, mut swarm: Swarm) -> Swarm {
        if let Some(keep) = self.keep {
            swarm = swarm.keep(keep);
        }
        if let Some(max) = self.max_faults {
            swarm = swarm.max_faults(max);
        }
        for (kind, w) in &self.weight {
            swarm = swarm.weight(*kind, *w);
        }
        if self.kind_subsets {
            swarm = swarm.kind_subsets(true);
        }
        swarm
    }

    /// The flags again, as a replay line repeats them (empty: none given).
    fn flags(&self) -> String {
        let mut f = Vec::new();
        if let Some(keep) = self.keep {
            f.push(format!("--keep {keep}"));
        }
        if let Some(max) = self.max_faults {
            f.push(format!("--max-faults {max}"));
        }
        for (kind, w) in &self.weight {
            f.push(format!("--weight {}={w}", kind.name()));
        }
        if self.kind_subsets {
            f.push("--kind-subsets".into());
        }
        f.join(" ")
    }
}

/// `KIND=N`.
fn parse_weight(text: &str) -> Result<(FaultKind, u32), String> {
    let (kind, w) = text
        .split_once('=')
        .ok_or("expected KIND=N, e.g. loss=0 or crash=2")?;
    let kind: FaultKind = kind.trim().parse()?;
    let w = w
        .trim()
        .parse()
        .map_err(|_| format!("{w:?} is not a weight (a whole number, 0 or more)"))?;
    Ok((kind, w))
}

/// Scenario names are command-line words: non-empty, without spaces, and
/// each used once (a second `echo` could never be replayed); and each
/// scenario's declared points make a catalogue (each name once, none
/// empty): refused before any command runs.
fn check_names(infos: &[Info]) -> Result<(), String> {
    for (i, s) in infos.iter().enumerate() {
        if s.name.is_empty() || s.name.chars().any(char::is_whitespace) {
            return Err(format!(
                "scenario name {:?}: a name is one word on the command line (use kebab-case)",
                s.name
            ));
        }
        if infos[..i].iter().any(|t| t.name == s.name) {
            return Err(format!(
                "two scenarios are called {:?}: names must be unique",
                s.name
            ));
        }
        // A catalogue that cannot be counted against: the same for every
        // seed and every command, so said once, before anything runs.
        check_catalogue(&s.points).map_err(|e| format!("{}: {e} (nothing was run)", s.name))?;
    }
    Ok(())
}

/// `K/N` with 1 <= K <= N.
fn parse_shard(text: &str) -> Result<ShardArg, String> {
    if text.trim() == "auto" {
        return Ok(ShardArg::Auto);
    }
    let (k, n) = text
        .split_once('/')
        .ok_or("expected K/N, e.g. 2/4, or auto")?;
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
    Ok(ShardArg::Given(k, n))
}

/// `--shard K/N`, or `--shard auto` (from the environment).
#[derive(Clone, Copy)]
enum ShardArg {
    Given(u64, u64),
    Auto,
}

impl ShardArg {
    /// The shard: given, or read from the environment (said on stderr,
    /// so stdout stays the sweep's report).
    fn resolve(self) -> Result<(u64, u64), String> {
        match self {
            ShardArg::Given(k, n) => Ok((k, n)),
            ShardArg::Auto => {
                let found =
                    engine::shard_from_env(|v| std::env::var(v).ok()).map_err(|e| e.to_string())?;
                eprintln!(
                    "--shard auto: shard {}/{} ({})",
                    found.shard.0, found.shard.1, found.from
                );
                Ok(found.shard)
            }
        }
    }
}

struct Run<'a> {
    app: &'a App<'a>,
    infos: Vec<Info>,
    prefix: String,
    /// The widest scenario name, plus two: `list`'s first column.
    width: usize,
}

impl Run<'_> {
    fn find(&self, name: &str) -> Result<usize, String> {
        self.infos
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| format!("no scenario {name:?}; `list` shows them"))
    }

    /// The scenario `name` (or, with no name, the one that declares
    /// `sabotage`), checking that it declares `sabotage`.
    fn find_for(&self, name: Option<&str>, sabotage: Option<&str>) -> Result<usize, String> {
        self.find_for_as(name, sabotage, "--sabotage")
    }

    /// As [`Run::find_for`], naming where the sabotage came from.
    fn find_for_as(
        &self,
        name: Option<&str>,
        sabotage: Option<&str>,
        given_by: &str,
    ) -> Result<usize, String> {
        let Some(b) = sabotage else {
            return self.find(name.unwrap_or_default());
        };
        let owners: Vec<usize> = (0..self.infos.len())
            .filter(|i| self.infos[*i].sabotage(b).is_some())
            .collect();
        match (name, owners.as_slice()) {
            (_, []) if given_by == "--sabotage" => {
                Err(format!("no sabotage {b:?}; `list` names them"))
            }
            (_, []) => Err(format!(
                "{given_by} names {b:?}, which no scenario declares; `list` names the \
                 sabotages, and --no-sabotage runs the plan without one"
            )),
            (None, [one]) => Ok(*one),
            (None, _) => Err(format!(
                "--sabotage {b} is declared by several scenarios; choose one with --scenario"
            )),
            (Some(name), owners) => {
                let i = self.find(name)?;
                if owners.contains(&i) {
                    Ok(i)
                } else {
                    let names: Vec<&str> = owners
                        .iter()
                        .map(|o| self.infos[*o].name.as_str())
                        .collect();
                    Err(format!(
                        "{given_by} {b} breaks {}, not {name}",
                        names.join(", ")
                    ))
                }
            }
        }
    }

    /// The scenario, the plan to run (checked against its declarations)
    /// and its sabotage: the one given, or else the one the plan was saved
    /// under (a conflict is an error).
    fn resolve(&self, run: &OneRun) -> Result<(usize, FaultPlan), String> {
        let i = self.find(&run.scenario)?;
        let flags = run.density.flags();
        let mut plan = match &run.plan {
            None => run
                .density
                .apply(self.infos[i].swarm.clone())
                .plan(run.seed),
            Some(p) if !flags.is_empty() => {
                return Err(format!(
                    "{flags} draws a plan, and --plan {} gives one: use one or the other",
                    p.display()
                ));
            }
            Some(p) => load(p)?,
        };
        plan.sabotage = match (run.sabotage.clone(), plan.sabotage.take()) {
            (Some(given), Some(saved)) if given != saved => {
                return Err(format!(
                    "--sabotage {given} conflicts with the plan's own \"sabotage\": \"{saved}\""
                ));
            }
            (given, saved) => given.or(saved),
        };
        if run.no_sabotage {
            plan.sabotage = None;
        }
        let given_by = match (&run.sabotage, &run.plan) {
            (None, Some(p)) => format!("{}: its \"sabotage\"", p.display()),
            _ => "--sabotage".to_string(),
        };
        let i = self.find_for_as(Some(&run.scenario), plan.sabotage.as_deref(), &given_by)?;
        let info = &self.infos[i];
        plan.validate(&info.targets, &info.sabotages)
            .map_err(|e| match &run.plan {
                Some(p) => format!("{}: {e}", p.display()),
                None => e.to_string(),
            })?;
        Ok((i, plan))
    }

    fn command(&self, command: Command) -> Result<ExitCode, String> {
        match command {
            Command::List => {
                self.list()?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Replay {
                run,
                trace,
                plot,
                twice,
            } => self.replay(&run, trace, plot, twice),
            Command::Shrink {
                run,
                invariant,
                out,
                force,
            } => self.shrink(&run, invariant, out, force),
            Command::Sweep {
                scenario,
                seeds,
                from,
                shard,
                sabotage,
                json,
                once,
                density,
                coverage,
                guided,
            } => {
                let chosen = match (scenario.as_deref(), sabotage.as_deref()) {
                    (None, None) => (0..self.infos.len()).collect(),
                    (name, sabotage) => vec![self.find_for(name, sabotage)?],
                };
                let shard = match shard {
                    Some(s) => s.resolve()?,
                    None => (1, 1),
                };
                if guided {
                    // --from is one exploration seed (any value), --seeds a
                    // budget: no range of seeds to check.
                    shard_seeds(0, seeds, shard)?;
                    if let Some(path) = &json {
                        check_output(path, "--json", true)?;
                    }
                    let search = Search {
                        from,
                        budget: seeds,
                        shard,
                        sabotage: sabotage.as_deref(),
                        json: json.as_deref(),
                    };
                    return self.guided(&chosen, &search, &density, coverage.judge(shard));
                }
                let picked = shard_seeds(from, seeds, shard)?;
                if let Some(path) = &json {
                    check_output(path, "--json", true)?;
                }
                let header = SweepHeader {
                    version: FORMAT_VERSION,
                    build: Build::current(),
                    scenarios: chosen.iter().map(|i| self.infos[*i].name.clone()).collect(),
                    from,
                    seeds,
                    shard: [shard.0, shard.1],
                    sabotage: sabotage.clone(),
                    runs: if once { 1 } else { 2 },
                    swarm: density.flags(),
                    probes: Vec::new(),
                    catalogue: chosen.iter().map(|i| self.catalogue(*i)).collect(),
                };
                let judge = coverage.judge(shard);
                self.sweep(&chosen, &picked, &header, &density, json.as_deref(), judge)
            }
            Command::Merge { files, coverage } => {
                if let Some(searches) = read_searches(&files)? {
                    return self.merge_searches(searches, coverage.judge((1, 1)));
                }
                let mut read = Vec::new();
                for file in &files {
                    let text = std::fs::read_to_string(file)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    read.push(
                        read_sweep(&file.display().to_string(), &text)
                            .map_err(|e| e.to_string())?,
                    );
                }
                let order: Vec<String> = self.infos.iter().map(|s| s.name.clone()).collect();
                let (whole, records) = merge(&order, read).map_err(|e| e.to_string())?;
                self.verdict(&records, &whole, coverage.judge((1, 1)))
            }
        }
    }

    fn list(&self) -> Result<(), String> {
        let w = self.width;
        for s in &self.infos {
            out!("{:<w$}{}", s.name, s.about);
            let links: Vec<String> = s
                .targets
                .links()
                .map(|(a, b)| format!("{a}<->{b}"))
                .collect();
            if !links.is_empty() {
                out!("{:<w$}links: {}", "", links.join(", "));
            }
            for (host, survives) in s.targets.hosts() {
                out!("{:<w$}crashable host {host}: {survives}", "");
            }
            for site in s.targets.sites() {
                let handles = site.handles();
                let handles = if handles.is_empty() {
                    String::new()
                } else {
                    format!(" (its code handles: {})", handles.join(", "))
                };
                out!(
                    "{:<w$}fault site {:?}: {}{handles}",
                    "",
                    site.name(),
                    site.about()
                );
            }
            if let Some(disk) = s.targets.declared_disk() {
                let allows = disk.allows();
                let allows = if allows.is_empty() {
                    "none".to_string()
                } else {
                    allows.join(", ")
                };
                out!("{:<w$}disk: {} (its faults: {allows})", "", disk.about());
            }
            for p in &s.points {
                out!("{:<w$}point: {p}", "");
            }
            for (name, within) in &s.eventually {
                out!(
                    "{:<w$}eventually: {name:?}, within {within:?} of the last fault's end",
                    ""
                );
            }
        }
        let sabotages: Vec<(&str, &str, &str)> = self
            .infos
            .iter()
            .flat_map(|s| {
                s.sabotages
                    .iter()
                    .map(|b| (b.name, s.name.as_str(), b.about))
            })
            .collect();
        if !sabotages.is_empty() {
            out!(
                "\nDeliberately broken versions (--sabotage), to watch the invariants catch them:"
            );
            let width = sabotages.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0) + 2;
            for (name, scenario, about) in sabotages {
                out!("{name:<width$}breaks {scenario}: {about}");
            }
        }
        Ok(())
    }

    /// Scenario `i`'s declared points, for a sweep file's header.
    fn catalogue(&self, i: usize) -> Catalogue {
        Catalogue {
            scenario: self.infos[i].name.clone(),
            points: self.infos[i].points.clone(),
        }
    }

    /// A declared target that scenario `i`'s build never makes is the
    /// scenario's bug: said once, before any run (exit 2), not as a
    /// violation of every seed.
    fn check_targets(&self, i: usize, seed: u64) -> Result<(), String> {
        let missing = self.app.scenarios[i].missing_targets(seed);
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{}: declares {} as target(s), but its build() makes no such host; \
             declare only the hosts it builds (no seed was run)",
            self.infos[i].name,
            missing.join(", ")
        ))
    }

    fn replay(
        &self,
        run: &OneRun,
        trace: bool,
        plot: Option<PathBuf>,
        twice: bool,
    ) -> Result<ExitCode, String> {
        let (i, plan) = self.resolve(run)?;
        let name = &self.infos[i].name;
        let seed = run.seed;
        self.check_targets(i, seed)?;
        if let Some(path) = &plot {
            not_the_input(path, "--plot", run.plan.as_deref())?;
            check_output(path, "--plot", true)?;
        }
        let checked =
            run_checked(self.app.scenarios[i], seed, &plan, twice).map_err(|e| e.to_string())?;
        let out = checked.outcome;
        // The plot first: a reader that closes stdout early (`--trace |
        // head`) must not cost the file.
        if let Some(path) = &plot {
            std::fs::write(
                path,
                plot::replay_svg(name, seed, &plan, &out.timeline, &out.violations),
            )
            .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if trace {
            for e in &out.trace {
                out!("{e}");
            }
        }
        out!(
            "{name} seed {seed}: plan {}, trace hash {:016x}",
            to_json(&plan)?,
            out.trace_hash
        );
        if let Some(again) = checked.again
            && checked.divergence.is_none()
        {
            out!("ran twice: both runs gave trace hash {again:016x}");
        }
        for v in &out.violations {
            out!("VIOLATION: {v}");
        }
        let unstarted = out.unstarted(&plan);
        if unstarted > 0 {
            out!(
                "note: {unstarted} of the plan's {} faults start after the run ended ({:.3} s): \
                 they never happened (a swarm's start window past the workload draws such faults: \
                 Swarm::starts_within)",
                plan.faults.len(),
                out.ended.as_secs_f64()
            );
        }
        let unopened = out.unopened(&plan);
        if unopened > 0 {
            out!(
                "note: {unopened} of the plan's {} site entries open (from_ms) after the run \
                 ended ({:.3} s): they never fired",
                plan.sites.len(),
                out.ended.as_secs_f64()
            );
        }
        if let Some(path) = plot {
            out!("timeline: {}", path.display());
        }
        let under = under(plan.sabotage.as_deref());
        Ok(if out.violations.is_empty() {
            out!("PASS: {name} seed {seed}{under}, no violations");
            ExitCode::SUCCESS
        } else {
            out!(
                "FAIL: {name} seed {seed}{under}, {} violation(s)",
                out.violations.len()
            );
            ExitCode::FAILURE
        })
    }

    fn shrink(
        &self,
        run: &OneRun,
        invariant: Option<String>,
        out: Option<PathBuf>,
        force: bool,
    ) -> Result<ExitCode, String> {
        let (i, plan) = self.resolve(run)?;
        let name = &self.infos[i].name;
        let seed = run.seed;
        self.check_targets(i, seed)?;
        // Where it goes, checked before the work: a sabotaged plan is saved
        // only where --out says (never among the regressions).
        let run_out_given = out.is_some();
        let out = match (out, &plan.sabotage) {
            (Some(out), _) => Some(out),
            (None, Some(_)) => None,
            (None, None) => Some(regression_file(&self.app.regressions, name, seed)),
        };
        if let Some(out) = &out {
            let what = if run_out_given {
                "--out"
            } else {
                "the regression file"
            };
            check_output(out, what, force).map_err(|e| {
                if run_out_given {
                    e
                } else {
                    format!("{e} (shrink saves regressions under {}, relative to where it runs: run it from there, or give --out FILE)", self.app.regressions.display())
                }
            })?;
        }
        if out.is_none() {
            // Said before the work, not after it.
            out!(
                "note: a plan shrunk under --sabotage is printed, not saved (it is no \
                 regression); --out FILE saves it"
            );
        }
        let keep = invariant.map_or(Keep::Original, Keep::Invariant);
        let small = match shrink_keeping(self.app.scenarios[i], seed, &plan, &keep) {
            Ok(small) => small,
            Err(ShrinkError::Passes) => {
                // One run passes; two may still differ, which is a failure
                // shrinking cannot work on (each step is one run).
                let twice = run_checked(self.app.scenarios[i], seed, &plan, true)
                    .map_err(|e| e.to_string())?;
                if let Some(d) = &twice.divergence {
                    out!(
                        "{name} seed {seed} breaks no invariant in one run, but two runs differ: {d}"
                    );
                    out!(
                        "FAIL: {name} seed {seed} is nondeterministic: nothing to shrink \
                         (shrinking compares single runs); `replay {name} --seed {seed} --twice` shows it"
                    );
                    return Ok(ExitCode::FAILURE);
                }
                out!(
                    "{name} seed {seed} breaks no invariant under {}: nothing to shrink",
                    to_json(&plan)?
                );
                if run.plan.is_none() {
                    out!(
                        "note: this is the seed's own swarm plan; a run a guided search found \
                         (or any other plan) needs its --plan FILE, as its replay line gives it"
                    );
                }
                out!("PASS: {name} seed {seed}, nothing to shrink");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(format!("{name} seed {seed}: {e}")),
        };
        out!(
            "shrunk {} {} ({} ms faulted) to {} ({} ms) in {} runs, still breaking {}: {}",
            plan.elements(),
            plan.elements_named(),
            plan.faulted_ms(),
            small.plan.elements(),
            small.plan.faulted_ms(),
            small.runs,
            small.kept.join(", "),
            to_json(&small.plan)?
        );
        for v in &small.violations {
            out!("  {v}");
        }
        let (small, violations) = (small.plan, small.violations);
        match &out {
            Some(out) => {
                std::fs::write(out, to_json(&small)? + "\n")
                    .map_err(|e| format!("{}: {e}", out.display()))?;
                out!(
                    "saved {}; replay: {}",
                    out.display(),
                    replay_line(
                        &self.prefix,
                        name,
                        seed,
                        small.sabotage.as_deref(),
                        Some(out),
                        ""
                    )
                );
            }
            None => out!(
                "not saved: a plan shrunk under --sabotage is no regression \
                 (the regressions must replay clean); --out FILE saves it, or copy the plan above"
            ),
        }
        out!(
            "FAIL: {name} seed {seed}, {} violation(s) under {} fault(s){}",
            violations.len(),
            small.faults.len(),
            if small.sites.is_empty() {
                String::new()
            } else {
                let n = small.sites.len();
                format!(" and {n} {}", plural(n, "site entry", "site entries"))
            }
        );
        Ok(ExitCode::FAILURE)
    }

    /// `sweep --guided`: a guided search of each chosen scenario.
    fn guided(
        &self,
        chosen: &[usize],
        search: &Search<'_>,
        density: &Density,
        judge: Judge,
    ) -> Result<ExitCode, String> {
        let (k, n) = search.shard;
        // A shard searches from its own seed, derived from both, with its
        // share of the budget.
        let seed = if n > 1 {
            async_patterns::rng::SplitMix64::derive(search.from, (n << 32) | k).next_u64()
        } else {
            search.from
        };
        // Its share of the budget (`--from` is a seed here, not the start
        // of a range: any value will do).
        let budget = shard_seeds(0, search.budget, search.shard)?.len();
        for &i in chosen {
            self.check_targets(i, 0)?;
        }
        let bar = ProgressBar::new(budget as u64 * chosen.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs {msg} ({eta} left)")
                .map_err(|e| e.to_string())?,
        );
        let mut records = Vec::new();
        for &i in chosen {
            let info = &self.infos[i];
            bar.set_message(info.name.clone());
            let before = bar.position();
            let how = Guided::new(budget)
                .sabotage(search.sabotage)
                .swarm(density.apply(info.swarm.clone()));
            let exploration = explore_with(self.app.scenarios[i], seed, &how, &|runs| {
                bar.set_position(before + runs as u64);
            })
            .map_err(|e| e.to_string())?;
            bar.set_position(before + budget as u64);
            records.push(Searched {
                guided: SearchHeader {
                    version: GUIDED_FORMAT_VERSION,
                    build: Build::current(),
                    scenario: info.name.clone(),
                    from: search.from,
                    seed,
                    shard: [k, n],
                    budget: search.budget,
                    sabotage: search.sabotage.map(str::to_string),
                    swarm: density.flags(),
                },
                exploration,
            });
        }
        bar.finish_and_clear();
        if let Some(path) = search.json {
            let mut text = String::new();
            for r in &records {
                text += &serde_json::to_string(r).map_err(|e| e.to_string())?;
                text.push('\n');
            }
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        self.search_report(&records, false, judge)
    }

    /// `merge` of guided searches' records: each scenario's shards as one.
    fn merge_searches(&self, read: Vec<Searched>, judge: Judge) -> Result<ExitCode, String> {
        if let Some(s) = read
            .iter()
            .find(|s| !self.infos.iter().any(|i| i.name == s.guided.scenario))
        {
            return Err(format!(
                "no scenario {:?} in this binary",
                s.guided.scenario
            ));
        }
        let mut merged = Vec::new();
        for info in &self.infos {
            let mine: Vec<Searched> = read
                .iter()
                .filter(|s| s.guided.scenario == info.name)
                .cloned()
                .collect();
            if !mine.is_empty() {
                merged.push(merge_searches(mine)?);
            }
        }
        self.search_report(&merged, true, judge)
    }

    /// A guided search's report: each scenario's runs, corpus and
    /// failures (each with its plan saved and its replay line), its
    /// signals and guides, the declared points it never reached, and a
    /// verdict.
    fn search_report(
        &self,
        records: &[Searched],
        merged: bool,
        judge: Judge,
    ) -> Result<ExitCode, String> {
        let mut failed = false;
        let mut unreached = Vec::new();
        for r in records {
            let (h, x) = (&r.guided, &r.exploration);
            let what = match (h.shard, merged) {
                ([k, n], false) if n > 1 => format!(
                    "guided search from exploration seed {} (shard {k}/{n}, its own seed {})",
                    h.from, h.seed
                ),
                ([_, n], true) if n > 1 => format!(
                    "{n} guided searches from exploration seed {} (its shards, merged)",
                    h.from
                ),
                _ => format!("guided search from exploration seed {}", h.seed),
            };
            out!(
                "{}: {what}: {} {}, corpus of {} {}, {} failing",
                h.scenario,
                x.runs,
                plural(x.runs, "run", "runs"),
                x.corpus.len(),
                plural(x.corpus.len(), "plan", "plans"),
                x.failures.len()
            );
            for f in &x.failures {
                failed = true;
                let file = crate::shrink::save_temporary(&h.scenario, f.seed, &f.plan)?;
                out!("\nFAILED {} run {} (seed {}):", h.scenario, f.run, f.seed);
                for v in &f.violations {
                    out!("  {v}");
                }
                out!(
                    "  replay: {}",
                    replay_line(&self.prefix, &h.scenario, f.seed, None, Some(&file), "")
                );
                out!(
                    "  shrink: {} shrink {} --seed {} --plan {} --out SMALL.json",
                    self.prefix,
                    h.scenario,
                    f.seed,
                    file.display()
                );
            }
            out!("\n| scenario | signal | runs reaching it |\n|---|---|---|");
            for (signal, n) in &x.signals {
                out!("| {} | {signal} | {n} of {} |", h.scenario, x.runs);
            }
            if !x.guides.is_empty() {
                out!("\n| scenario | guide | best value |\n|---|---|---|");
            }
            for (guide, best) in &x.guides {
                out!("| {} | {guide} | {best} |", h.scenario);
            }
            if let Some(info) = self.infos.iter().find(|i| i.name == h.scenario) {
                for p in x.unreached(&info.points) {
                    unreached.push(format!("{}: {p}", h.scenario));
                }
            }
        }
        if !unreached.is_empty() {
            out!(
                "\nnever reached ({}): {}",
                match judge {
                    Judge::Fail => "fails the search; --coverage warn to pass",
                    _ => "reported only",
                },
                unreached.join(", ")
            );
        }
        let runs: usize = records.iter().map(|r| r.exploration.runs).sum();
        let uncovered = judge == Judge::Fail && !unreached.is_empty();
        if failed || uncovered {
            out!(
                "FAIL: guided search, {runs} {}",
                plural(runs, "run", "runs")
            );
            Ok(ExitCode::FAILURE)
        } else {
            out!(
                "PASS: guided search, {runs} {}, 0 failing",
                plural(runs, "run", "runs")
            );
            Ok(ExitCode::SUCCESS)
        }
    }

    fn sweep(
        &self,
        chosen: &[usize],
        seeds: &[u64],
        header: &SweepHeader,
        density: &Density,
        json: Option<&Path>,
        judge: Judge,
    ) -> Result<ExitCode, String> {
        let mut header = header.clone();
        let bar = ProgressBar::new(seeds.len() as u64 * chosen.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {msg} ({eta} left)")
                .map_err(|e| e.to_string())?,
        );
        for &i in chosen {
            self.check_targets(i, seeds.first().copied().unwrap_or(0))?;
        }
        let twice = header.runs >= 2;
        let mut records: Vec<SeedRecord> = Vec::new();
        let mut speeds = Vec::new();
        for &i in chosen {
            let name = &self.infos[i].name;
            bar.set_message(name.clone());
            let started = wall_clock();
            let swarm = density.apply(self.infos[i].swarm.clone());
            let mine = sweep(
                self.app.scenarios[i],
                seeds,
                Some(&swarm),
                header.sabotage.as_deref(),
                twice,
                &|| bar.inc(1),
            )
            .map_err(|e| e.to_string())?;
            let secs = started.elapsed().as_secs_f64();
            speeds.push(format!("{name} {:.0}", seeds.len() as f64 / secs.max(1e-9)));
            if json.is_some() {
                // The probe: the sweep's first seed, which every shard
                // traces the same way if it runs the same code.
                let trace_hash = match mine.iter().find(|r| r.seed == header.from) {
                    Some(r) => r.trace_hash.clone(),
                    None => {
                        let mut plan = swarm.plan(header.from);
                        plan.sabotage = header.sabotage.clone();
                        let out = run_checked(self.app.scenarios[i], header.from, &plan, false)
                            .map_err(|e| e.to_string())?;
                        format!("{:016x}", out.outcome.trace_hash)
                    }
                };
                header.probes.push(Probe {
                    scenario: name.clone(),
                    seed: header.from,
                    trace_hash,
                });
            }
            records.extend(mine);
        }
        bar.finish_and_clear();
        if let Some(path) = json {
            std::fs::write(path, write_sweep(&header, &records))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        // Speed goes to stderr: stdout is the same for one sweep and for a
        // merge of its shards.
        eprintln!(
            "seeds/s on this machine ({}): {}",
            if twice {
                "each seed run twice, counted once"
            } else {
                "each seed run once"
            },
            speeds.join(", ")
        );
        self.verdict(&records, &header, judge)
    }

    /// Prints the report and returns its exit code.
    fn verdict(
        &self,
        records: &[SeedRecord],
        header: &SweepHeader,
        judge: Judge,
    ) -> Result<ExitCode, String> {
        let reached = coverage(&header.catalogue, records);
        let text = report(records, &self.prefix, &header.swarm, &reached, judge);
        out!("{}", text.trim_end());
        Ok(if fails(records, &reached, judge) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

fn under(sabotage: Option<&str>) -> String {
    sabotage.map_or(String::new(), |b| format!(" under --sabotage {b}"))
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
    // Open it for writing without changing it (appending nothing): a
    // read-only file, a folder without write permission, or a device that
    // refuses writes (/dev/full) fails here, not after the run.
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
    probe.map_err(|e| format!("{what} {}: cannot be written: {e}", path.display()))
}

/// Refuses an output that is the same file as the input `input` (a plot
/// written over the plan it draws).
fn not_the_input(output: &Path, what: &str, input: Option<&Path>) -> Result<(), String> {
    let same = |a: &Path, b: &Path| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b);
    match input {
        Some(input) if same(output, input) => Err(format!(
            "{what} {} is the --plan file it reads: write the output elsewhere",
            output.display()
        )),
        _ => Ok(()),
    }
}

/// The plan in `path`.
fn load(path: &Path) -> Result<FaultPlan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a fault plan: {e}", path.display()))
}

/// `one` or `many`, by `n`.
fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// A guided search's settings on the command line.
struct Search<'a> {
    from: u64,
    budget: u64,
    shard: (u64, u64),
    sabotage: Option<&'a str>,
    json: Option<&'a Path>,
}

/// The records of guided searches in `files`, if they are such records
/// (the first file's first line says so); `None` for sweep records.
fn read_searches(files: &[PathBuf]) -> Result<Option<Vec<Searched>>, String> {
    let mut out = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let guided = text.trim_start().starts_with("{\"guided\"");
        if n == 0 && !guided {
            return Ok(None);
        }
        if !guided {
            return Err(format!(
                "{}: a sweep's record, where the first file is a guided search's: merge one kind at a time",
                file.display()
            ));
        }
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let s: Searched = serde_json::from_str(line)
                .map_err(|e| format!("{}: line {}: {e}", file.display(), i + 1))?;
            if s.guided.version != GUIDED_FORMAT_VERSION {
                return Err(format!(
                    "{}: line {}: format version {}, this binary reads {GUIDED_FORMAT_VERSION}",
                    file.display(),
                    i + 1,
                    s.guided.version
                ));
            }
            out.push(s);
        }
    }
    Ok(Some(out))
}

fn to_json(plan: &FaultPlan) -> Result<String, String> {
    serde_json::to_string(plan).map_err(|e| e.to_string())
}

/// The wall clock, read only to report a sweep's speed (never inside a
/// simulation, which runs on turmoil's virtual time).
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}
