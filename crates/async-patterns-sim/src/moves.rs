//! Moves on a fault plan, defined once: the steps a shrink takes (drop an
//! element, place a fault, shorten a site entry, turn a disk fault off) and
//! the changes a guided search makes (the same, and add, retarget or split
//! a fault, turn a site on, put a site entry at the one reach where another
//! fired, draw a disk profile, cross two plans).

use async_patterns::rng::SplitMix64;

use crate::disk::DiskProfile;
use crate::fault::{Fault, FaultKind, FaultPlan, Swarm};
use crate::site::{SiteAction, SiteFault};

/// One change to a plan. Applying a move that names an element the plan
/// does not have leaves the plan as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// Remove element `i`: a fault, or past them a site entry, or past
    /// them the disk profile ([`FaultPlan::without`]).
    Drop(usize),
    /// Fault `i` starts at `at_ms` and lasts `for_ms`.
    Place(usize, u64, u64),
    /// Fault `i` becomes `kind` on `target` (its instants kept).
    Retarget(usize, FaultKind, String),
    /// Fault `i` splits in two around a gap of `gap_ms` in its middle.
    Split(usize, u64),
    /// A new fault.
    Add(Fault),
    /// A new site entry.
    AddSite(SiteFault),
    /// Site entry `j`'s length (its delay, or the fault it starts).
    SiteLength(usize, u64),
    /// Site entry `j` fires only before `until_ms`.
    SiteUntil(usize, u64),
    /// The disk profile becomes this one (`None`: no disk faults).
    Disk(Option<DiskProfile>),
    /// The disk profile's fault `k` (in [`disk`](crate::disk)'s table
    /// order) off; no profile at all if none is left.
    DiskOff(usize),
}

impl Move {
    /// The plan with the move made.
    pub fn apply(&self, plan: &FaultPlan) -> FaultPlan {
        let mut p = plan.clone();
        match self {
            Move::Drop(i) => return plan.without(*i),
            Move::Place(i, at_ms, for_ms) => {
                if let Some(f) = p.faults.get_mut(*i) {
                    (f.at_ms, f.for_ms) = (*at_ms, *for_ms);
                }
            }
            Move::Retarget(i, kind, target) => {
                if let Some(f) = p.faults.get_mut(*i) {
                    *f = Fault::new(*kind, target.clone(), f.at_ms, f.for_ms);
                }
            }
            Move::Split(i, gap_ms) => {
                if let Some(f) = p.faults.get(*i).cloned() {
                    let first = f.for_ms / 2;
                    let rest = f.for_ms - first;
                    let mut a = f.clone();
                    a.for_ms = first;
                    let mut b = f;
                    b.at_ms = b.at_ms.saturating_add(first).saturating_add(*gap_ms);
                    b.for_ms = rest;
                    p.faults[*i] = a;
                    p.faults.insert(*i + 1, b);
                }
            }
            Move::Add(f) => p.faults.push(f.clone()),
            Move::AddSite(e) => p.sites.push(e.clone()),
            Move::SiteLength(j, ms) => {
                if let Some(e) = p.sites.get_mut(*j) {
                    *e = e.clone().lasting(*ms);
                }
            }
            Move::SiteUntil(j, ms) => {
                if let Some(e) = p.sites.get_mut(*j) {
                    e.until_ms = Some(*ms);
                }
            }
            Move::Disk(d) => p.disk = d.clone().filter(|d| !d.is_none()),
            Move::DiskOff(k) => {
                if let Some(less) = p.disk.as_ref().and_then(|d| d.without(*k)) {
                    p.disk = (!less.is_none()).then_some(less);
                }
            }
        }
        p
    }

    /// A random move on `plan` within `swarm`'s fault space (its menu, its
    /// windows, its sites and disk), drawn from `rng`.
    pub fn random(rng: &mut SplitMix64, plan: &FaultPlan, swarm: &Swarm) -> Move {
        let (start, length) = (swarm.start_ms(), swarm.length_ms());
        let menu = swarm.menu();
        let options = swarm.site_options();
        let disk = swarm.disk().is_some();
        // Pick a kind of move among those that apply, uniformly.
        let mut kinds: Vec<u8> = Vec::new();
        if !plan.faults.is_empty() {
            kinds.extend([0, 1, 2, 3, 4]);
        }
        if !menu.is_empty() {
            kinds.push(6);
        }
        if !options.is_empty() {
            kinds.push(7);
        }
        if !plan.sites.is_empty() {
            kinds.push(8);
        }
        if disk {
            kinds.push(10);
        }
        if plan.elements() > 0 {
            kinds.push(11);
        }
        if kinds.is_empty() {
            return Move::Disk(None);
        }
        let pick = |rng: &mut SplitMix64, n: usize| rng.between(0, n as u64 - 1) as usize;
        let nf = plan.faults.len();
        match kinds[pick(rng, kinds.len())] {
            // Move a fault: a new start in the window.
            0 => {
                let i = pick(rng, nf);
                let at = rng.between(start.0, start.1);
                Move::Place(i, at, plan.faults[i].for_ms)
            }
            // Shift it a little, either way.
            1 => {
                let i = pick(rng, nf);
                let f = &plan.faults[i];
                let shift = rng.between(1, 200);
                let at = if rng.between(0, 1) == 0 {
                    f.at_ms.saturating_sub(shift)
                } else {
                    f.at_ms.saturating_add(shift)
                };
                Move::Place(i, at, f.for_ms)
            }
            // Shorten (halve) or lengthen (double, within twice the window).
            2 => {
                let i = pick(rng, nf);
                let f = &plan.faults[i];
                let len = if rng.between(0, 1) == 0 {
                    (f.for_ms / 2).max(1)
                } else {
                    f.for_ms.saturating_mul(2).min(length.1.saturating_mul(2))
                };
                Move::Place(i, f.at_ms, len)
            }
            // Retarget: another entry of the menu.
            3 if !menu.is_empty() => {
                let i = pick(rng, nf);
                let (kind, target) = menu[pick(rng, menu.len())].clone();
                Move::Retarget(i, kind, target)
            }
            4 => {
                let i = pick(rng, nf);
                Move::Split(i, rng.between(1, 300))
            }
            11 => Move::Drop(pick(rng, plan.elements())),
            6 => {
                let (kind, target) = menu[pick(rng, menu.len())].clone();
                let at = rng.between(start.0, start.1);
                let len = rng.between(length.0, length.1);
                Move::Add(Fault::new(kind, target, at, len))
            }
            7 => {
                let e = options[pick(rng, options.len())].clone();
                Move::site_on(rng, swarm, e)
            }
            8 => {
                let j = pick(rng, plan.sites.len());
                let len = plan.sites[j].length_ms();
                let ms = if rng.between(0, 1) == 0 {
                    (len / 2).max(1)
                } else {
                    len.saturating_mul(2).min(length.1.saturating_mul(2))
                };
                if plan.sites[j].action == SiteAction::Fail {
                    Move::Drop(nf + j)
                } else {
                    Move::SiteLength(j, ms)
                }
            }
            10 => Move::Disk(crate::disk::draw_any(rng, swarm.disk())),
            _ => Move::Drop(pick(rng, plan.elements().max(1))),
        }
    }

    /// `entry` at the one reach of its site at `at_ms` (on from that ms
    /// for 1 ms, at 100%): on the same seed, it coincides with what fired
    /// there.
    pub fn coincide(entry: SiteFault, at_ms: u64) -> Move {
        Move::AddSite(
            entry
                .from(at_ms)
                .until(at_ms.saturating_add(1))
                .percent(100),
        )
    }

    /// `option` turned on for a window a swarm could draw (a length from
    /// its lengths, on until a start from its starts plus a length).
    pub fn site_on(rng: &mut SplitMix64, swarm: &Swarm, option: SiteFault) -> Move {
        let (start, length) = (swarm.start_ms(), swarm.length_ms());
        let len = rng.between(length.0, length.1);
        let until = rng.between(start.0, start.1) + rng.between(length.0, length.1);
        Move::AddSite(option.lasting(len).until(until))
    }

    /// A move aimed at an instant where a run fired `site` (at `at_ms`):
    /// a second fault where the first one happened. Three times in four
    /// another entry for the same site (any it can do, on from that
    /// instant: half the time at that very reach only, at 100%, else at
    /// the default chance until a fault's length after it; an entry on
    /// from the start would fire earlier and change the run before the
    /// moment comes), else a fault of the menu starting
    /// shortly after it (0-127 ms: a scale of 1 to 128 ms drawn first,
    /// then the offset within it, so a few ms is as likely as a hundred).
    /// `None` if the swarm offers neither.
    pub fn aimed(rng: &mut SplitMix64, swarm: &Swarm, site: &str, at_ms: u64) -> Option<Move> {
        let length = swarm.length_ms();
        let options: Vec<SiteFault> = swarm
            .site_options()
            .into_iter()
            .filter(|o| o.site == site)
            .collect();
        let menu = swarm.menu();
        let entry = !options.is_empty() && (menu.is_empty() || rng.between(0, 3) != 0);
        if entry {
            let e = options[rng.between(0, options.len() as u64 - 1) as usize].clone();
            let e = e.lasting(rng.between(length.0, length.1));
            if rng.between(0, 1) == 0 {
                return Some(Move::coincide(e, at_ms));
            }
            // From then on, at the default chance.
            let until = at_ms.saturating_add(rng.between(length.0, length.1));
            return Some(Move::AddSite(e.from(at_ms).until(until)));
        }
        if menu.is_empty() {
            return None;
        }
        let (kind, target) = menu[rng.between(0, menu.len() as u64 - 1) as usize].clone();
        let scale = rng.between(0, 7);
        let after = rng.between(0, (1 << scale) - 1);
        let len = rng.between(length.0, length.1);
        Some(Move::Add(Fault::new(
            kind,
            target,
            at_ms.saturating_add(after),
            len,
        )))
    }
}

/// A child of two plans: `a`'s faults that start before an instant drawn
/// from the start window and `b`'s from it on, each site entry of either
/// with chance 1/2, and the disk profile of one of them.
pub fn cross(rng: &mut SplitMix64, a: &FaultPlan, b: &FaultPlan, swarm: &Swarm) -> FaultPlan {
    let (lo, hi) = swarm.start_ms();
    let cut = rng.between(lo, hi);
    let mut faults: Vec<Fault> = a.faults.iter().filter(|f| f.at_ms < cut).cloned().collect();
    faults.extend(b.faults.iter().filter(|f| f.at_ms >= cut).cloned());
    let mut sites = Vec::new();
    for e in a.sites.iter().chain(&b.sites) {
        if rng.between(0, 1) == 1 && !sites.contains(e) {
            sites.push(e.clone());
        }
    }
    let disk = if rng.between(0, 1) == 0 {
        a.disk.clone()
    } else {
        b.disk.clone()
    };
    FaultPlan {
        faults,
        sites,
        disk,
        sabotage: a.sabotage.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Targets;
    use crate::site::{SiteAction, SiteFault};

    /// 2,000 aimed moves at site `s` firing at 1,000 ms: entries of that
    /// site only, on past that moment; faults of the menu starting 0-127
    /// ms after it, as short offsets as long ones at each scale.
    #[test]
    fn an_aimed_move_lands_where_the_first_fault_was() {
        use crate::site::Site;
        let targets = Targets::new()
            .link("a", "b")
            .host("b", "x")
            .site(Site::new("s", "a site").fails().delays())
            .site(Site::new("t", "another").fails());
        let swarm = Swarm::over(&targets);
        let (length, menu) = (swarm.length_ms(), swarm.menu().to_vec());
        let mut rng = SplitMix64::new(3);
        let (mut entries, mut faults, mut within_8, mut past_64) = (0, 0, 0, 0);
        let mut at_once = 0usize;
        for _ in 0..2_000 {
            match Move::aimed(&mut rng, &swarm, "s", 1_000) {
                Some(Move::AddSite(e)) => {
                    assert_eq!(e.site, "s");
                    assert_eq!(e.from_ms, Some(1_000));
                    let until = e.until_ms.unwrap();
                    if until == 1_001 {
                        assert_eq!(e.percent, Some(100));
                        at_once += 1;
                    } else {
                        assert!((1_000 + length.0..=1_000 + length.1).contains(&until));
                        assert_eq!(e.percent, None);
                    }
                    entries += 1;
                }
                Some(Move::Add(f)) => {
                    assert!((1_000..1_128).contains(&f.at_ms), "{f:?}");
                    assert!((length.0..=length.1).contains(&f.for_ms));
                    assert!(menu.contains(&(f.kind, f.target.clone())));
                    within_8 += usize::from(f.at_ms < 1_008);
                    past_64 += usize::from(f.at_ms >= 1_064);
                    faults += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        // Three in four are entries; of the faults, about half start
        // within 8 ms (scales 0-3 of 0-7), and 1 in 16 past 64 ms (half
        // of scale 7).
        assert!((1_400..1_600).contains(&entries), "{entries}");
        // Half of them at that very reach.
        assert!(at_once.abs_diff(entries / 2) < 80, "{at_once} of {entries}");
        assert!(
            faults > 400 && within_8 * 10 > faults * 4,
            "{within_8} of {faults}"
        );
        assert!(
            past_64 * 25 > faults && past_64 * 10 < faults,
            "{past_64} of {faults}"
        );
        // No site entry to add and no menu: nothing to aim.
        let bare = Swarm::new(Vec::new());
        assert_eq!(Move::aimed(&mut rng, &bare, "s", 1_000), None);
    }

    #[test]
    fn moves_change_what_they_say_and_nothing_else() {
        let f = |at, len| Fault::new(FaultKind::Partition, "a<->b", at, len);
        let plan = FaultPlan {
            faults: vec![f(100, 400), f(900, 10)],
            ..FaultPlan::default()
        };
        assert_eq!(Move::Drop(0).apply(&plan).faults, vec![f(900, 10)]);
        assert_eq!(
            Move::Place(1, 5, 6).apply(&plan).faults,
            vec![f(100, 400), f(5, 6)]
        );
        assert_eq!(
            Move::Split(0, 50).apply(&plan).faults,
            vec![f(100, 200), f(350, 200), f(900, 10)]
        );
        let crash = Move::Retarget(1, FaultKind::Crash, "b".into()).apply(&plan);
        assert_eq!(crash.faults[1], Fault::new(FaultKind::Crash, "b", 900, 10));
        // A move on an element the plan does not have changes nothing.
        assert_eq!(Move::Place(7, 1, 1).apply(&plan), plan);
        assert_eq!(Move::Drop(7).apply(&plan), plan);
        let disk = DiskProfile {
            io_error_permille: 5,
            torn_writes: true,
            ..DiskProfile::default()
        };
        let with = Move::Disk(Some(disk)).apply(&plan);
        let less = Move::DiskOff(0).apply(&with);
        assert_eq!(
            less.disk,
            Some(DiskProfile {
                torn_writes: true,
                ..DiskProfile::default()
            })
        );
        assert_eq!(Move::DiskOff(3).apply(&less).disk, None);
        assert_eq!(
            Move::Disk(Some(DiskProfile::default())).apply(&plan).disk,
            None
        );
    }

    /// 10,000 moves drawn from one plan: each kind about as often as the
    /// others, and each doing what it says.
    #[test]
    fn each_random_move_does_what_it_says_about_as_often_as_the_others() {
        use crate::disk::Disk;
        use crate::site::Site;
        let targets = Targets::new()
            .link("a", "b")
            .host("b", "x")
            .site(Site::new("s", "a site").fails().delays())
            .disk(Disk::new("d").io_errors());
        let swarm = Swarm::over(&targets);
        let (start, length) = (swarm.start_ms(), swarm.length_ms());
        let plan = FaultPlan {
            faults: vec![
                Fault::new(FaultKind::Partition, "a<->b", 1_000, 400),
                Fault::new(FaultKind::Crash, "b", 2_000, 301),
            ],
            sites: vec![
                SiteFault::new("s", SiteAction::Delay)
                    .lasting(600)
                    .until(3_000),
            ],
            ..FaultPlan::default()
        };
        let mut rng = SplitMix64::new(9);
        let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
        let (mut moved, mut shifted, mut resized) = (0usize, 0usize, 0usize);
        let (mut halved, mut site_halved) = (0usize, 0usize);
        for _ in 0..10_000 {
            let m = Move::random(&mut rng, &plan, &swarm);
            let name = match &m {
                Move::Place(i, at, len) => {
                    let f = &plan.faults[*i];
                    if *len == f.for_ms {
                        assert_ne!(*at, f.at_ms, "{m:?}");
                        if (1..=200).contains(&at.abs_diff(f.at_ms)) {
                            shifted += 1;
                        } else {
                            assert!((start.0..=start.1).contains(at), "{m:?}");
                            moved += 1;
                        }
                    } else {
                        assert_eq!(*at, f.at_ms, "{m:?}");
                        if *len == f.for_ms / 2 {
                            halved += 1;
                        } else {
                            assert_eq!(*len, f.for_ms * 2, "{m:?}");
                        }
                        resized += 1;
                    }
                    "place"
                }
                Move::Retarget(i, kind, target) => {
                    assert!(*i < 2 && swarm.menu().contains(&(*kind, target.clone())));
                    "retarget"
                }
                Move::Split(i, gap) => {
                    assert!(*i < 2 && (1..=300).contains(gap), "{m:?}");
                    "split"
                }
                Move::Add(f) => {
                    assert!((start.0..=start.1).contains(&f.at_ms), "{m:?}");
                    assert!((length.0..=length.1).contains(&f.for_ms), "{m:?}");
                    "add"
                }
                Move::AddSite(e) => {
                    assert!(
                        (length.0..=length.1).contains(&e.length_ms())
                            || e.action == SiteAction::Fail
                    );
                    let until = e.until_ms.expect("an end");
                    assert!(
                        (start.0 + length.0..=start.1 + length.1).contains(&until),
                        "{m:?}"
                    );
                    "add site"
                }
                Move::SiteLength(0, ms) => {
                    assert!(*ms == 300 || *ms == 1_200, "{m:?}");
                    site_halved += usize::from(*ms == 300);
                    "site length"
                }
                Move::Disk(d) => {
                    assert!(d.as_ref().is_none_or(|d| d.io_error_permille > 0), "{m:?}");
                    "disk"
                }
                Move::Drop(i) => {
                    assert!(*i < plan.elements(), "{m:?}");
                    "drop"
                }
                other => panic!("{other:?}"),
            };
            *seen.entry(name).or_default() += 1;
        }
        // 10 kinds of move apply to this plan, each with chance 1/10:
        // three of them place a fault (a new start, a shift, a new length).
        let expect = [
            ("place", 3_000),
            ("retarget", 1_000),
            ("split", 1_000),
            ("add", 1_000),
            ("add site", 1_000),
            ("site length", 1_000),
            ("disk", 1_000),
            ("drop", 1_000),
        ];
        for (name, n) in expect {
            let got = seen.get(name).copied().unwrap_or(0);
            assert!(
                got.abs_diff(n) < n / 6,
                "{name}: {got} of 10,000 ({seen:?})"
            );
        }
        for n in [moved, shifted, resized] {
            assert!(n.abs_diff(1_000) < 170, "{moved} {shifted} {resized}");
        }
        // Halved or doubled, half the time each.
        assert!(halved.abs_diff(resized / 2) < 100, "{halved} of {resized}");
        let site = seen["site length"];
        assert!(
            site_halved.abs_diff(site / 2) < 100,
            "{site_halved} of {site}"
        );
        // A `fail` entry has no length: its move drops it instead.
        let failing = FaultPlan {
            sites: vec![SiteFault::new("s", SiteAction::Fail)],
            ..plan.clone()
        };
        for _ in 0..2_000 {
            let m = Move::random(&mut rng, &failing, &swarm);
            assert!(!matches!(m, Move::SiteLength(..)), "{m:?}");
        }
        // A menu with nothing in it: faults are never retargeted or added.
        let empty = Swarm::new(Vec::new());
        for _ in 0..2_000 {
            let m = Move::random(&mut rng, &plan, &empty);
            assert!(!matches!(m, Move::Retarget(..) | Move::Add(..)), "{m:?}");
        }
        // No fault, no site, no disk: nothing applies but dropping nothing.
        let bare = Swarm::new(Vec::new());
        assert_eq!(
            Move::random(&mut rng, &FaultPlan::default(), &bare),
            Move::Disk(None)
        );
    }

    #[test]
    fn a_fault_at_the_cut_comes_from_the_second_plan_only() {
        let targets = Targets::new().link("a", "b");
        let swarm = Swarm::over(&targets).starts_within(1_500, 1_502);
        let f = Fault::new(FaultKind::Hold, "a<->b", 1_501, 10);
        let a = FaultPlan {
            faults: vec![f.clone()],
            ..FaultPlan::default()
        };
        let mut rng = SplitMix64::new(5);
        let mut counts = [0; 2];
        for _ in 0..300 {
            let n = cross(&mut rng, &a, &a, &swarm).faults.len();
            assert_eq!(n, 1, "a fault at the cut taken from both plans");
            counts[0] += 1;
        }
        // And a drop of a `fail` entry names the entry, past the faults.
        let failing = FaultPlan {
            faults: vec![f.clone(), f],
            sites: vec![SiteFault::new("s", SiteAction::Fail)],
            ..FaultPlan::default()
        };
        let sited = Swarm::over(&targets.site(crate::site::Site::new("s", "x").fails()));
        for _ in 0..3_000 {
            if let Move::Drop(i) = Move::random(&mut rng, &failing, &sited) {
                counts[1] += usize::from(i == 2);
            }
        }
        // 1 kind of move in 9 drops the entry, and 1 in 27 drops it at random.
        assert!(counts[1] > 300, "{counts:?}");
    }

    #[test]
    fn a_cross_takes_the_first_plans_early_faults_and_the_seconds_late_ones() {
        let targets = Targets::new().link("a", "b");
        let swarm = Swarm::over(&targets).starts_within(1_000, 2_000);
        let f = |at| Fault::new(FaultKind::Hold, "a<->b", at, 10);
        let site = |ms| SiteFault::new("s", SiteAction::Delay).lasting(ms);
        let a = FaultPlan {
            faults: vec![f(500), f(1_500), f(2_500)],
            sites: vec![site(1)],
            sabotage: Some("x".into()),
            ..FaultPlan::default()
        };
        let b = FaultPlan {
            faults: vec![f(600), f(1_600), f(2_600)],
            sites: vec![site(1), site(2)],
            disk: Some(crate::disk::DiskProfile {
                torn_writes: true,
                ..Default::default()
            }),
            ..FaultPlan::default()
        };
        let mut rng = SplitMix64::new(4);
        let (mut both, mut disks) = (0, 0);
        for _ in 0..200 {
            let c = cross(&mut rng, &a, &b, &swarm);
            let ats: Vec<u64> = c.faults.iter().map(|f| f.at_ms).collect();
            // a's before the cut (500 always, 1,500 if the cut is later),
            // b's from it (2,600 always, 1,600 if the cut is earlier).
            assert!(
                ats == [500, 1_500, 1_600, 2_600]
                    || ats == [500, 2_600]
                    || ats == [500, 1_500, 2_600]
                    || ats == [500, 1_600, 2_600],
                "{ats:?}"
            );
            both += usize::from(ats.len() == 4 || ats.len() == 3);
            assert_eq!(c.sabotage.as_deref(), Some("x"));
            // Site entries: some of both, none twice.
            assert!(c.sites.iter().all(|e| e.length_ms() <= 2));
            let mut lens: Vec<u64> = c.sites.iter().map(SiteFault::length_ms).collect();
            lens.dedup();
            assert_eq!(lens.len(), c.sites.len());
            disks += usize::from(c.disk.is_some());
        }
        assert!(both > 0);
        assert!((60..=140).contains(&disks), "{disks}");
    }

    #[test]
    fn random_moves_stay_in_the_swarms_fault_space() {
        let targets = Targets::new().link("a", "b").host("b", "x");
        let swarm = Swarm::over(&targets);
        let mut rng = SplitMix64::new(3);
        let mut plan = swarm.plan(1);
        for _ in 0..2_000 {
            plan = Move::random(&mut rng, &plan, &swarm).apply(&plan);
            plan.validate(&targets, &[]).unwrap();
            if plan.faults.len() > 30 {
                plan.faults.truncate(5);
            }
        }
        let child = cross(&mut rng, &swarm.plan(2), &swarm.plan(3), &swarm);
        child.validate(&targets, &[]).unwrap();
    }
}
