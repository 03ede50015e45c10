//! Guided search: fault plans bred from the runs that reached something
//! new, instead of drawn blind.
//!
//! A swarm sweep draws every seed's plan independently; a bug that needs
//! two things to coincide (a failed sync, then a crash before the next
//! one) is found by luck. A guided search keeps a **corpus** of the runs
//! that reached something no run had reached before:
//!
//! * a declared [point](crate::assert) reached for the first time;
//! * a fault-site entry that fired (`site: action`) for the first time;
//! * a new *combination* of those;
//! * a new best value of a numeric [`guide!`](async_patterns_assert::guide)
//!   (the most I/O errors a store survived, the longest a sync waited);
//! * two site entries firing at one reach (`site: fail + crash at one
//!   reach`).
//!
//! Each generation (4 runs: the corpus feeds back sooner than with more)
//! first makes the children the search **owes** (a fuzzer's deterministic
//! stage: a small neighbourhood tried whole, once, where a random child
//! would find it by luck): each site option whose action no run has fired
//! yet, turned on; at the first moment of each kind in the corpus (a site,
//! and what fired there), each other option of that site *coinciding* with
//! it ([`Move::coincide`]: at that one reach, at 100%, on that run's seed,
//! so a failed sync gets a crash at that very sync); at the first run of
//! each coincidence, each disk fault alone at its highest level. Its other
//! runs derive new plans from a snapshot of the corpus: a parent chosen
//! with a weight that favours the rarest signals it reached (the newest
//! half the time). Half the time, if sites fired in the parent's run, the
//! child is *aimed*: a second fault where the first happened
//! ([`Move::aimed`]: another entry for a site at a moment it fired, or a
//! fault starting just after), on the parent's seed so that the moment
//! comes again: a bug that needs two things to coincide needs the second
//! where the first one is. Else it is changed by one or two
//! [moves](crate::moves) (the same ones the shrinker takes, and more), or
//! crossed with a second parent. One run in 8 is a fresh swarm seed, so the
//! search never stops exploring. A child keeps its parent's simulation seed
//! half the time (the same network draws, so a move changes what it says).
//!
//! **Size.** What a search owes grows with the scenario's fault space: up
//! to every option of a site times every kind of moment at it, and the
//! disk's faults times the coincidences; they come first, in corpus
//! order, one run each. Our pipeline (one site with four options, a disk
//! with three faults) owes at most 29 (4 options, 10 coincidences, 5 pairs
//! under 3 disk faults); a scenario of many sites and targets
//! owes more before it breeds at random, so give it a budget to match.
//!
//! **Replay.** Every choice comes from the exploration seed: slot `k` of
//! generation `g` draws from a stream of `(exploration seed, g, k)` and
//! the corpus only grows between generations, folded in slot order. So
//! one exploration seed gives the same runs, corpus and first failure on
//! one thread or on every core, and every failing run replays on its own
//! from its seed and plan.
//!
//! **Cost.** Each run is one run (not twice); a failing run is then run
//! twice more, comparing traces, so a failure that would not replay says
//! so (a `deterministic` violation).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_patterns::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::disk::DiskProfile;
use crate::fault::{FaultPlan, PlanError, Swarm};
use crate::moves::{Move, cross};
use crate::run::run_checked;
use crate::scenario::AnyScenario;
use crate::site::{Moment, SiteAction, SiteFault};
use crate::sweep::Build;
use crate::trace::Violation;

/// How a guided search runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Guided {
    /// The runs it may make in all.
    pub budget: usize,
    /// Runs per generation (made from one snapshot of the corpus).
    pub generation: usize,
    /// Worker threads (1: all on this one); the result does not depend on it.
    pub threads: usize,
    /// The sabotage every run is under, if any.
    pub sabotage: Option<String>,
    /// Stop at the first failing run (the rest of its generation is still
    /// folded in, in slot order, so the result does not depend on threads).
    pub stop_at_first_failure: bool,
    /// Breed from the corpus (`true`), or draw every run from the swarm:
    /// the same seeds and fault space, blind (the baseline).
    pub guided: bool,
    /// The swarm the fresh plans come from, and whose fault space the
    /// moves stay in (`None`: the scenario's).
    pub swarm: Option<Swarm>,
}

impl Guided {
    /// `budget` runs, 4 a generation, on every core, stopping at the
    /// first failure.
    pub fn new(budget: usize) -> Self {
        Guided {
            budget,
            generation: 4,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            sabotage: None,
            stop_at_first_failure: true,
            guided: true,
            swarm: None,
        }
    }

    /// Every run under `sabotage`.
    #[must_use]
    pub fn sabotage(mut self, sabotage: Option<&str>) -> Self {
        self.sabotage = sabotage.map(str::to_string);
        self
    }

    /// On `threads` threads (at least 1).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// `runs` a generation (at least 1).
    #[must_use]
    pub fn generation(mut self, runs: usize) -> Self {
        self.generation = runs.max(1);
        self
    }

    /// Whether to go on after a failure, to the whole budget.
    #[must_use]
    pub fn stop_at_first_failure(mut self, stop: bool) -> Self {
        self.stop_at_first_failure = stop;
        self
    }

    /// Plans drawn from `swarm` (its density settings) instead of the
    /// scenario's own.
    #[must_use]
    pub fn swarm(mut self, swarm: Swarm) -> Self {
        self.swarm = Some(swarm);
        self
    }

    /// Blind: every run a swarm seed (the baseline a guided search is
    /// measured against).
    #[must_use]
    pub fn blind(mut self) -> Self {
        self.guided = false;
        self
    }
}

/// A run that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Found {
    /// Its number in the search, from 1.
    pub run: usize,
    /// The simulation seed.
    pub seed: u64,
    /// The plan.
    pub plan: FaultPlan,
    /// What it broke.
    pub violations: Vec<Violation>,
}

/// A plan kept in the corpus, and what it reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kept {
    /// The simulation seed.
    pub seed: u64,
    /// The plan.
    pub plan: FaultPlan,
    /// The signals its run reached (points, `site: action`, `guide NAME`).
    pub signals: Vec<String>,
    /// When its run's sites fired: where its children aim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moments: Vec<Moment>,
}

/// What a search did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exploration {
    /// The runs made.
    pub runs: usize,
    /// The failing runs, in run order.
    pub failures: Vec<Found>,
    /// The corpus at the end, in the order it grew.
    pub corpus: Vec<Kept>,
    /// Each signal, and how many runs reached it.
    pub signals: BTreeMap<String, usize>,
    /// Each guide's best value.
    pub guides: BTreeMap<String, u64>,
}

/// One run's result, as the search folds it in.
struct Ran {
    seed: u64,
    plan: FaultPlan,
    violations: Vec<Violation>,
    signals: Vec<String>,
    guides: BTreeMap<String, u64>,
    moments: Vec<Moment>,
    pairs: BTreeSet<Pair>,
}

/// Searches `scenario` from `exploration_seed` (see the
/// [module docs](self)): a pure function of its arguments, whatever
/// `how.threads` is.
pub fn explore(
    scenario: &dyn AnyScenario,
    exploration_seed: u64,
    how: &Guided,
) -> Result<Exploration, PlanError> {
    explore_with(scenario, exploration_seed, how, &|_| {})
}

/// As [`explore`], calling `done` with the runs made after each
/// generation (a progress bar).
pub fn explore_with(
    scenario: &dyn AnyScenario,
    exploration_seed: u64,
    how: &Guided,
    done: &dyn Fn(usize),
) -> Result<Exploration, PlanError> {
    let swarm = match &how.swarm {
        Some(s) => s.clone(),
        None => scenario.info().swarm,
    };
    let mut out = Exploration {
        runs: 0,
        failures: Vec::new(),
        corpus: Vec::new(),
        signals: BTreeMap::new(),
        guides: BTreeMap::new(),
    };
    let mut combinations: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut owing = Owing::new(&swarm);
    let mut generation = 0u64;
    while out.runs < how.budget {
        let n = how.generation.min(how.budget - out.runs);
        let snapshot = &out.corpus;
        let signals = &out.signals;
        let mut owed = owing.owed(snapshot.len(), signals).into_iter();
        let mut made = Vec::new();
        let candidates: Vec<(u64, FaultPlan)> = (0..n)
            .map(|slot| {
                let mut rng = SplitMix64::derive(
                    exploration_seed,
                    generation.wrapping_mul(1 << 20).wrapping_add(slot as u64),
                );
                let fresh = !how.guided || snapshot.is_empty() || rng.between(0, 7) == 0;
                let (seed, mut plan) = if fresh {
                    // A fresh swarm seed: run r's own, the same in a blind
                    // search and a guided one (and disjoint from a sweep's
                    // 0, 1, 2, ...).
                    let seed = fresh_seed(exploration_seed, out.runs + slot);
                    (seed, swarm.plan(seed))
                } else if let Some(o) = owed.next() {
                    made.push(o.key);
                    let parent = &snapshot[o.parent];
                    let m = o.change.make(&mut rng, &swarm);
                    (parent.seed, m.apply(&parent.plan))
                } else {
                    breed(&mut rng, snapshot, signals, &swarm)
                };
                plan.sabotage.clone_from(&how.sabotage);
                (seed, plan)
            })
            .collect();
        owing.made(made);
        let results = par_map(&candidates, how.threads, |(seed, plan)| {
            run_checked(scenario, *seed, plan, false).map(|c| {
                let o = c.outcome;
                let mut signals = o.points.clone();
                signals.extend(o.fired.iter().cloned());
                signals.extend(o.guides.keys().map(|g| format!("guide {g}")));
                let pairs = coincidences(&o.moments);
                signals.extend(
                    pairs
                        .iter()
                        .map(|(s, a, b)| format!("{s}: {} + {} at one reach", a.name(), b.name())),
                );
                Ran {
                    seed: *seed,
                    plan: plan.clone(),
                    violations: o.violations,
                    signals,
                    guides: o.guides,
                    moments: o.moments,
                    pairs,
                }
            })
        });
        generation += 1;
        let mut stop = false;
        for ran in results {
            let ran = ran?;
            out.runs += 1;
            let mut new = combinations.insert(ran.signals.clone());
            for s in &ran.signals {
                let count = out.signals.entry(s.clone()).or_default();
                new |= *count == 0;
                *count += 1;
            }
            for (g, v) in &ran.guides {
                let best = out.guides.entry(g.clone()).or_insert(0);
                if *v > *best {
                    *best = *v;
                    new = true;
                }
            }
            if !ran.violations.is_empty() {
                // Does it replay? Twice, comparing traces.
                let again = run_checked(scenario, ran.seed, &ran.plan, true)?;
                out.failures.push(Found {
                    run: out.runs,
                    seed: ran.seed,
                    plan: ran.plan.clone(),
                    violations: again.outcome.violations,
                });
                stop |= how.stop_at_first_failure;
            }
            if new && how.guided {
                owing.joined(out.corpus.len(), &ran.moments, &ran.pairs);
                out.corpus.push(Kept {
                    seed: ran.seed,
                    plan: ran.plan,
                    signals: ran.signals,
                    moments: ran.moments,
                });
            }
        }
        done(out.runs);
        if stop {
            break;
        }
    }
    Ok(out)
}

impl Exploration {
    /// The points of `points` a sweep must see reached (all but
    /// `unreachable`) that no run of the search reached, by name.
    pub fn unreached<'a>(&self, points: &'a [crate::Point]) -> Vec<&'a str> {
        points
            .iter()
            .filter(|p| p.must_reach() && !self.signals.contains_key(&p.name))
            .map(|p| p.name.as_str())
            .collect()
    }
}

/// The version of a guided search's record ([`Searched`]): 2 since a
/// corpus entry's moments say what fired (a record of 1 is refused).
pub const GUIDED_FORMAT_VERSION: u32 = 2;

/// What a guided search of one scenario writes (`sweep --guided --json`,
/// one JSON line per scenario) and `merge` combines across shards: which
/// search it was, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Searched {
    /// Which search.
    pub guided: SearchHeader,
    /// What it found.
    pub exploration: Exploration,
}

/// Which search a [`Searched`] record is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchHeader {
    /// [`GUIDED_FORMAT_VERSION`].
    pub version: u32,
    /// The binary that searched.
    pub build: Build,
    /// The scenario.
    pub scenario: String,
    /// The exploration seed given (`--from`).
    pub from: u64,
    /// The seed this shard searched from (`from` itself when unsharded).
    pub seed: u64,
    /// This shard, `[K, N]` (`[0, N]`: the merge of all N).
    pub shard: [u64; 2],
    /// The whole search's budget (`--seeds`).
    pub budget: u64,
    /// The sabotage, if any.
    pub sabotage: Option<String>,
    /// The swarm's density flags (`--keep`, `--max-faults`...), as the
    /// command line spells them.
    pub swarm: String,
}

/// The shards of one guided search (one [`Searched`] per shard, any
/// order) as one: runs and signal counts summed, guides' bests taken, the
/// corpora joined in shard order (a plan kept twice, once), every failure
/// kept (its `run` is its number within its shard). Refused, saying why:
/// records of other builds, scenarios, exploration seeds, budgets or
/// sabotages, a shard twice or one missing.
pub fn merge_searches(mut shards: Vec<Searched>) -> Result<Searched, String> {
    let Some(first) = shards.first() else {
        return Err("no guided search to merge".to_string());
    };
    let h = first.guided.clone();
    for s in &shards {
        let g = &s.guided;
        let differs = [
            (g.version != h.version, "format version"),
            (g.build != h.build, "build"),
            (g.scenario != h.scenario, "scenario"),
            (g.from != h.from, "exploration seed (--from)"),
            (g.budget != h.budget, "budget (--seeds)"),
            (g.sabotage != h.sabotage, "sabotage"),
            (g.swarm != h.swarm, "density (swarm flags)"),
            (g.shard[1] != h.shard[1], "shard count"),
        ];
        if let Some((_, what)) = differs.iter().find(|(d, _)| *d) {
            if g.shard == h.shard {
                return Err(format!(
                    "{}: two records of shard {}/{} differ in their {what}: they are two \
                     searches, not shards of one",
                    g.scenario, g.shard[0], g.shard[1]
                ));
            }
            return Err(format!(
                "{}: shard {}/{} is of another {what} than shard {}/{}",
                g.scenario, g.shard[0], g.shard[1], h.shard[0], h.shard[1]
            ));
        }
    }
    shards.sort_by_key(|s| s.guided.shard[0]);
    let have: Vec<u64> = shards.iter().map(|s| s.guided.shard[0]).collect();
    let n = h.shard[1];
    if let Some(k) = have.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]) {
        return Err(format!("{}: shard {k}/{n} given twice", h.scenario));
    }
    let missing: Vec<String> = (1..=n)
        .filter(|k| !have.contains(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{}: shard {} missing (a search in {n} shards merges all {n})",
            h.scenario,
            missing.join(", ")
        ));
    }
    let mut whole = Exploration {
        runs: 0,
        failures: Vec::new(),
        corpus: Vec::new(),
        signals: BTreeMap::new(),
        guides: BTreeMap::new(),
    };
    for s in shards {
        let x = s.exploration;
        whole.runs += x.runs;
        whole.failures.extend(x.failures);
        for k in x.corpus {
            if !whole
                .corpus
                .iter()
                .any(|c| c.seed == k.seed && c.plan == k.plan)
            {
                whole.corpus.push(k);
            }
        }
        for (signal, n) in x.signals {
            *whole.signals.entry(signal).or_default() += n;
        }
        for (guide, v) in x.guides {
            let best = whole.guides.entry(guide).or_default();
            *best = (*best).max(v);
        }
    }
    Ok(Searched {
        guided: SearchHeader {
            seed: h.from,
            shard: [0, n],
            ..h
        },
        exploration: whole,
    })
}

/// A child a search owes before it breeds at random.
#[derive(Clone)]
struct Owed {
    /// What it is, once made never owed again.
    key: String,
    /// The corpus entry it is a child of (on its seed).
    parent: usize,
    /// The change.
    change: Change,
}

/// What an owed child changes in its parent's plan.
#[derive(Clone)]
enum Change {
    /// A site entry on, for a window a swarm could draw ([`Move::site_on`]).
    On(SiteFault),
    /// A site entry at one reach ([`Move::coincide`]).
    Coincide(SiteFault, u64),
    /// The disk profile.
    Disk(DiskProfile),
}

impl Change {
    fn make(self, rng: &mut SplitMix64, swarm: &Swarm) -> Move {
        match self {
            Change::On(e) => Move::site_on(rng, swarm, e),
            Change::Coincide(e, at_ms) => Move::coincide(e, at_ms),
            Change::Disk(d) => Move::Disk(Some(d)),
        }
    }
}

/// Two actions that fired at one reach of a site: `(site, first, second)`,
/// the two in order.
type Pair = (String, SiteAction, SiteAction);

/// Each pair of actions that fired at one reach of a site (in the same ms)
/// in a run's moments.
fn coincidences(moments: &[Moment]) -> BTreeSet<Pair> {
    let mut out = BTreeSet::new();
    for (i, a) in moments.iter().enumerate() {
        for b in &moments[i + 1..] {
            if a.site == b.site && a.at_ms == b.at_ms && a.action != b.action {
                out.insert((
                    a.site.clone(),
                    a.action.min(b.action),
                    a.action.max(b.action),
                ));
            }
        }
    }
    out
}

/// The children a search owes, in order, before it breeds at random (a
/// small neighbourhood tried whole, as a fuzzer's deterministic stage
/// does, where a random child would find it by luck):
///
/// 1. each site option whose action no run has fired yet, turned on in a
///    child of the newest corpus entry;
/// 2. at the first moment of each kind (a site, and what fired there) in
///    the corpus, each other option of that site coinciding with it, on
///    the seed of the run it fired in: a bug that needs two things at one
///    instant (a failed sync, and a crash before the next one) is then a
///    step away from the first run that did one of them. Left out: a
///    `fail` or `delay` at a moment where one fired (the code takes the
///    first), and the action that fired itself;
/// 3. at the first run of each coincidence, each disk fault alone.
///
/// Each corpus entry is looked at once, when it joins ([`Owing::joined`]):
/// the corpus only grows, so what it adds to 2 and 3 is settled then.
struct Owing {
    options: Vec<SiteFault>,
    disks: Vec<DiskProfile>,
    /// The moments' kinds and the coincidences seen so far.
    kinds: BTreeSet<(String, SiteAction)>,
    pairs: BTreeSet<Pair>,
    /// What 2 and 3 owe, in corpus order.
    coinciding: Vec<Owed>,
    under_disks: Vec<Owed>,
    /// The owed children already made (their keys).
    tried: BTreeSet<String>,
}

impl Owing {
    fn new(swarm: &Swarm) -> Self {
        Owing {
            options: swarm.site_options(),
            disks: crate::disk::each_alone(swarm.disk()),
            kinds: BTreeSet::new(),
            pairs: BTreeSet::new(),
            coinciding: Vec::new(),
            under_disks: Vec::new(),
            tried: BTreeSet::new(),
        }
    }

    /// Corpus entry `i` joined, with its run's moments and coincidences.
    fn joined(&mut self, i: usize, moments: &[Moment], pairs: &BTreeSet<Pair>) {
        let answers = |a: SiteAction| matches!(a, SiteAction::Fail | SiteAction::Delay);
        for m in moments {
            if !self.kinds.insert((m.site.clone(), m.action)) {
                continue;
            }
            for o in self.options.iter().filter(|o| o.site == m.site) {
                if o.action == m.action || (answers(o.action) && answers(m.action)) {
                    continue;
                }
                self.coinciding.push(Owed {
                    key: format!("{} at {}: {}", option_name(o), m.site, m.action.name()),
                    parent: i,
                    change: Change::Coincide(o.clone(), m.at_ms),
                });
            }
        }
        for (site, a, b) in pairs {
            if !self.pairs.insert((site.clone(), *a, *b)) {
                continue;
            }
            for d in &self.disks {
                self.under_disks.push(Owed {
                    key: format!("disk {d} at {site}: {} + {}", a.name(), b.name()),
                    parent: i,
                    change: Change::Disk(d.clone()),
                });
            }
        }
    }

    /// What is owed now, for a corpus of `len` entries whose runs reached
    /// `signals`: 1, 2 and 3 above, less what was made.
    fn owed(&self, len: usize, signals: &BTreeMap<String, usize>) -> Vec<Owed> {
        let Some(newest) = len.checked_sub(1) else {
            return Vec::new();
        };
        let on = self
            .options
            .iter()
            .filter(|o| !signals.contains_key(&format!("{}: {}", o.site, o.action.name())))
            .map(|o| Owed {
                key: format!("on {}", option_name(o)),
                parent: newest,
                change: Change::On(o.clone()),
            });
        on.chain(self.coinciding.iter().cloned())
            .chain(self.under_disks.iter().cloned())
            .filter(|o| !self.tried.contains(&o.key))
            .collect()
    }

    /// The owed children with these keys were made.
    fn made(&mut self, keys: Vec<String>) {
        self.tried.extend(keys);
    }
}

/// A site option as an owed child's key names it: `site: action target`.
fn option_name(e: &SiteFault) -> String {
    let target = e
        .target
        .as_deref()
        .map(|t| format!(" {t}"))
        .unwrap_or_default();
    format!("{}: {}{target}", e.site, e.action.name())
}

/// The fresh swarm seed of run `r` (from 0) of an exploration.
fn fresh_seed(exploration_seed: u64, r: usize) -> u64 {
    SplitMix64::derive(exploration_seed ^ 0x5eed, r as u64).next_u64() >> 1
}

/// A child of the corpus: a parent weighted toward its rarest signals,
/// changed by one to three moves, or crossed with a second parent (1 in
/// 4); its parent's seed half the time, else a new one.
fn breed(
    rng: &mut SplitMix64,
    corpus: &[Kept],
    signals: &BTreeMap<String, usize>,
    swarm: &Swarm,
) -> (u64, FaultPlan) {
    // Weight: the sum over its signals of 1,000,000 / runs reaching it
    // (at least 1, so a run that reached nothing can still be chosen).
    let weights: Vec<u64> = corpus
        .iter()
        .map(|k| {
            let w: u64 = k
                .signals
                .iter()
                .map(|s| {
                    let n = signals.get(s).copied().unwrap_or(1).max(1) as u64;
                    1_000_000_000 / (n * n)
                })
                .sum();
            w.max(1)
        })
        .collect();
    let pick = |rng: &mut SplitMix64| {
        let total: u64 = weights.iter().sum();
        let mut at = rng.between(0, total - 1);
        for (i, w) in weights.iter().enumerate() {
            if at < *w {
                return i;
            }
            at -= w;
        }
        weights.len() - 1
    };
    // The newest entry half the time (what it reached was new a moment
    // ago: its neighbourhood is the least explored), else by rarity.
    let parent = if rng.between(0, 1) == 0 {
        &corpus[corpus.len() - 1]
    } else {
        &corpus[pick(rng)]
    };
    // Half the time, aim: a second fault at a moment a site fired in the
    // parent's run, on the parent's seed (so that moment comes again).
    if !parent.moments.is_empty() && rng.between(0, 1) == 0 {
        let moment = &parent.moments[rng.between(0, parent.moments.len() as u64 - 1) as usize];
        if let Some(m) = Move::aimed(rng, swarm, &moment.site, moment.at_ms) {
            return (parent.seed, m.apply(&parent.plan));
        }
    }
    let mut plan = if rng.between(0, 3) == 0 {
        let other = &corpus[pick(rng)];
        cross(rng, &parent.plan, &other.plan, swarm)
    } else {
        parent.plan.clone()
    };
    for _ in 0..rng.between(1, 2) {
        plan = Move::random(rng, &plan, swarm).apply(&plan);
    }
    let seed = if rng.between(0, 1) == 0 {
        parent.seed
    } else {
        rng.next_u64() >> 1
    };
    (seed, plan)
}

/// `f` of each item, on `threads` threads, in the items' order.
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{Fault, FaultKind, Targets};
    use crate::site::Site;

    /// What a search owes: each option no run has fired, on in a child of
    /// the newest entry; at the first moment of each kind, each option that
    /// can coincide with it (not a second answer where one was given, not
    /// the same action); at the first coincidence, each disk fault alone.
    /// Each once.
    #[test]
    fn a_search_owes_each_unfired_option_each_coincidence_and_each_disk_once() {
        use crate::disk::Disk;
        use crate::site::Site;
        let targets = Targets::new()
            .link("a", "b")
            .host("b", "x")
            .site(Site::new("s", "a site").fails().delays())
            .disk(Disk::new("d").io_errors().torn_writes());
        let swarm = Swarm::over(&targets);
        let at = |action, at_ms| Moment {
            site: "s".to_string(),
            action,
            at_ms,
        };
        let kept = |seed, moments| Kept {
            seed,
            plan: FaultPlan::default(),
            signals: Vec::new(),
            moments,
        };
        let corpus = [
            kept(
                7,
                vec![at(SiteAction::Fail, 100), at(SiteAction::Fail, 300)],
            ),
            // Two actions, but 5 ms apart: no coincidence.
            kept(8, vec![at(SiteAction::Fail, 40), at(SiteAction::Crash, 45)]),
            kept(
                9,
                vec![at(SiteAction::Delay, 50), at(SiteAction::Crash, 50)],
            ),
        ];
        let signals: BTreeMap<String, usize> = ["s: fail", "s: delay", "s: crash"]
            .into_iter()
            .map(|s| (s.to_string(), 1))
            .collect();
        let mut owing = Owing::new(&swarm);
        // An empty corpus owes nothing.
        assert!(owing.owed(0, &signals).is_empty());
        for (i, k) in corpus.iter().enumerate() {
            owing.joined(i, &k.moments, &coincidences(&k.moments));
        }
        let first = owing.owed(corpus.len(), &signals);
        let got: Vec<(&str, usize, Option<u64>)> = first
            .iter()
            .map(|o| {
                let at = match &o.change {
                    Change::Coincide(e, at) => {
                        assert_eq!((e.percent, e.from_ms), (None, None), "{}", o.key);
                        Some(*at)
                    }
                    _ => None,
                };
                (o.key.as_str(), o.parent, at)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("on s: partition a<->b", 2, None),
                ("s: crash b at s: fail", 0, Some(100)),
                ("s: partition a<->b at s: fail", 0, Some(100)),
                ("s: fail at s: crash", 1, Some(45)),
                ("s: delay at s: crash", 1, Some(45)),
                ("s: partition a<->b at s: crash", 1, Some(45)),
                ("s: crash b at s: delay", 2, Some(50)),
                ("s: partition a<->b at s: delay", 2, Some(50)),
                ("disk io errors 20‰ at s: delay + crash", 2, None),
                ("disk torn writes at s: delay + crash", 2, None),
            ]
        );
        // A coincidence is made at that one reach, at 100%; a disk child
        // has that fault alone.
        let mut rng = SplitMix64::new(1);
        let keys: BTreeSet<String> = got.iter().map(|(k, _, _)| k.to_string()).collect();
        let mut made = first.into_iter().map(|o| o.change.make(&mut rng, &swarm));
        let on = made.next().unwrap().apply(&FaultPlan::default());
        assert_eq!(on.sites[0].from_ms, None);
        assert!(on.sites[0].until_ms.is_some());
        let crash = made.next().unwrap().apply(&FaultPlan::default());
        let e = &crash.sites[0];
        assert_eq!(
            (e.action, e.from_ms, e.until_ms, e.percent),
            (SiteAction::Crash, Some(100), Some(101), Some(100))
        );
        let torn = made.last().unwrap().apply(&FaultPlan::default());
        assert_eq!(
            torn.disk,
            Some(DiskProfile {
                torn_writes: true,
                ..DiskProfile::default()
            })
        );
        // Once made, never owed again.
        owing.made(keys.into_iter().collect());
        assert!(owing.owed(corpus.len(), &signals).is_empty());
    }

    /// The points a search must reach and did not: not an unreachable
    /// one, not one it reached.
    #[test]
    fn a_search_names_the_points_it_never_reached() {
        use crate::Point;
        let x = Exploration {
            runs: 1,
            failures: Vec::new(),
            corpus: Vec::new(),
            signals: BTreeMap::from([("a".to_string(), 1)]),
            guides: BTreeMap::new(),
        };
        let points = [
            Point::sometimes("a", ""),
            Point::reachable("b", ""),
            Point::unreachable("c", ""),
            Point::always("d", ""),
        ];
        assert_eq!(x.unreached(&points), ["b", "d"]);
        assert!(x.unreached(&points[..1]).is_empty());
    }

    /// Two records that are each a whole search (shard 1/1) of other
    /// budgets: said as two searches, not as one shard unlike itself.
    #[test]
    fn two_whole_searches_are_not_merged_as_shards() {
        let record = |budget| Searched {
            guided: SearchHeader {
                version: GUIDED_FORMAT_VERSION,
                build: Build::current(),
                scenario: "s".into(),
                from: 0,
                seed: 0,
                shard: [1, 1],
                budget,
                sabotage: None,
                swarm: String::new(),
            },
            exploration: Exploration {
                runs: 0,
                failures: Vec::new(),
                corpus: Vec::new(),
                signals: BTreeMap::new(),
                guides: BTreeMap::new(),
            },
        };
        assert_eq!(
            merge_searches(vec![record(50), record(100)]).unwrap_err(),
            "s: two records of shard 1/1 differ in their budget (--seeds): they are two \
             searches, not shards of one"
        );
        let mut two = record(50);
        two.guided.shard = [2, 2];
        let mut one = record(100);
        one.guided.shard = [1, 2];
        assert_eq!(
            merge_searches(vec![one, two]).unwrap_err(),
            "s: shard 2/2 is of another budget (--seeds) than shard 1/2"
        );
    }

    /// Children of a one-plan corpus: half of them aimed when its run has
    /// a moment (on its seed, one element more, at that moment), none when
    /// it has none.
    #[test]
    fn half_the_children_of_a_run_with_moments_aim_at_them() {
        let targets = Targets::new()
            .link("a", "b")
            .host("b", "x")
            .site(Site::new("s", "a site").fails());
        let swarm = Swarm::over(&targets);
        let plan = FaultPlan {
            faults: vec![Fault::new(FaultKind::Partition, "a<->b", 100, 50)],
            ..FaultPlan::default()
        };
        let kept = |moments: Vec<Moment>| Kept {
            seed: 7,
            plan: plan.clone(),
            signals: vec!["s: fail".to_string()],
            moments,
        };
        let signals = BTreeMap::from([("s: fail".to_string(), 1)]);
        let aimed_children = |corpus: &[Kept]| {
            let mut rng = SplitMix64::new(1);
            (0..1_000)
                .filter(|_| {
                    let (seed, child) = breed(&mut rng, corpus, &signals, &swarm);
                    let at = |ms: u64| (5_000..5_128).contains(&ms);
                    let new_site = child.sites.len() == 1
                        && child.sites[0].from_ms == Some(5_000)
                        && child.faults == plan.faults;
                    let new_fault = child.sites.is_empty()
                        && child.faults.len() == 2
                        && child.faults[0] == plan.faults[0]
                        && at(child.faults[1].at_ms);
                    seed == 7 && (new_site || new_fault)
                })
                .count()
        };
        let moment = Moment {
            site: "s".to_string(),
            action: SiteAction::Partition,
            at_ms: 5_000,
        };
        let with = aimed_children(&[kept(vec![moment])]);
        assert!((450..600).contains(&with), "{with}");
        // Without moments, a child looks like that only by a random move's
        // chance.
        let without = aimed_children(&[kept(Vec::new())]);
        assert!(without < 100, "{without}");
    }
}
