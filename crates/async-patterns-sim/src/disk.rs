//! Disk faults: a run's simulated disk (turmoil's `unstable-fs`, pinned to
//! turmoil 0.7.2) and the profile of faults it has.
//!
//! A host that keeps state on disk uses turmoil's file system shim
//! (`turmoil::fs::shim::tokio::fs` or `::std::fs`) instead of the real one:
//! each host has its own disk; a write is durable only once synced
//! (`sync_all`), and a crash drops what was not. The scenario declares the
//! disk among its [`Targets`](crate::Targets) with the faults its code
//! must survive ([`Targets::disk`](crate::Targets::disk)), and a plan's
//! `disk` profile says which of them a run has:
//!
//! | field | what it does | turmoil's setting |
//! |---|---|---|
//! | `io_error_permille` | each read and each write fails (EIO) with this chance, in thousandths | `io_error_probability` |
//! | `corrupt_read_permille` | each read returns silently flipped bytes with this chance | `corruption_probability` |
//! | `early_sync_percent` | each write becomes durable at once with this chance, without a sync (so a crash keeps some unsynced writes) | `sync_probability` |
//! | `torn_writes` | a crash keeps a random prefix (in 16-byte blocks) of each unsynced write | `block_size(16)` |
//!
//! The profile is fixed when the simulation is built and the same for
//! every host, for the whole run (turmoil has no time windows for it):
//! where a fault must hit one host, or one moment, put a fault
//! [site](crate::site) around the file operation instead (a `fail` at
//! "store sync", a crash right after a write). A swarm draws a profile for
//! half the seeds of a scenario with a disk; a shrink drops it, then each
//! of its faults.
//!
//! ```
//! use async_patterns_sim::{Disk, DiskProfile, FaultPlan, Targets};
//!
//! let targets = Targets::new()
//!     .host("store", "its log on disk")
//!     .disk(Disk::new("the store's log").io_errors().torn_writes());
//! let plan: FaultPlan = serde_json::from_str(
//!     r#"{"faults": [], "disk": {"io_error_permille": 5, "torn_writes": true}}"#,
//! )
//! .unwrap();
//! assert!(plan.validate(&targets, &[]).is_ok());
//!
//! let bad: FaultPlan =
//!     serde_json::from_str(r#"{"faults": [], "disk": {"corrupt_read_permille": 1}}"#).unwrap();
//! assert_eq!(
//!     bad.validate(&targets, &[]).unwrap_err().to_string(),
//!     "disk: corrupt reads are not among the faults the scenario's disk declares (io errors, torn writes)"
//! );
//! ```

use std::fmt;

use async_patterns::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// The block a torn write is cut in, in bytes.
pub const TORN_BLOCK_BYTES: u64 = 16;

/// A scenario's simulated disk: what it holds, and which faults its code
/// must survive (none until told).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disk {
    about: String,
    io_errors: bool,
    corrupt_reads: bool,
    early_syncs: bool,
    torn_writes: bool,
}

impl Disk {
    /// A disk holding what `about` says.
    pub fn new(about: impl Into<String>) -> Self {
        Disk {
            about: about.into(),
            ..Disk::default()
        }
    }

    /// Reads and writes may fail.
    #[must_use]
    pub fn io_errors(mut self) -> Self {
        self.io_errors = true;
        self
    }

    /// Reads may return corrupt bytes (a code with no second copy of its
    /// data cannot survive this: leave it out).
    #[must_use]
    pub fn corrupt_reads(mut self) -> Self {
        self.corrupt_reads = true;
        self
    }

    /// Writes may become durable before they are synced.
    #[must_use]
    pub fn early_syncs(mut self) -> Self {
        self.early_syncs = true;
        self
    }

    /// A crash may keep part of an unsynced write.
    #[must_use]
    pub fn torn_writes(mut self) -> Self {
        self.torn_writes = true;
        self
    }

    /// What it holds.
    pub fn about(&self) -> &str {
        &self.about
    }

    /// The faults it allows, by name, for `list` and errors.
    pub fn allows(&self) -> Vec<&'static str> {
        [
            (self.io_errors, "io errors"),
            (self.corrupt_reads, "corrupt reads"),
            (self.early_syncs, "early syncs"),
            (self.torn_writes, "torn writes"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name)
        .collect()
    }
}

/// A run's disk faults (see the [module docs](self)). Every field is
/// optional in a plan; an empty profile is no fault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskProfile {
    /// Each read and write fails with this chance, in thousandths (0-1000).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub io_error_permille: u32,
    /// Each read returns corrupt bytes with this chance, in thousandths.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub corrupt_read_permille: u32,
    /// Each write is durable at once with this chance, in percent (0-100).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub early_sync_percent: u32,
    /// A crash keeps a random prefix of each unsynced write.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub torn_writes: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl DiskProfile {
    /// Whether it has no fault at all.
    pub fn is_none(&self) -> bool {
        *self == DiskProfile::default()
    }

    /// The profile with fault `i` (in the table's order) off, if it was
    /// on: the shrinker's steps.
    pub(crate) fn without(&self, i: usize) -> Option<DiskProfile> {
        let mut p = self.clone();
        let was_on = match i {
            0 => std::mem::take(&mut p.io_error_permille) > 0,
            1 => std::mem::take(&mut p.corrupt_read_permille) > 0,
            2 => std::mem::take(&mut p.early_sync_percent) > 0,
            3 => std::mem::take(&mut p.torn_writes),
            _ => false,
        };
        was_on.then_some(p)
    }

    /// Checks it against the declared disk.
    pub(crate) fn check(&self, disk: Option<&Disk>) -> Result<(), DiskError> {
        if self.is_none() {
            return Ok(());
        }
        let Some(disk) = disk else {
            return Err(DiskError::NoDisk);
        };
        for (value, max, name) in [
            (self.io_error_permille, 1_000, "io_error_permille"),
            (self.corrupt_read_permille, 1_000, "corrupt_read_permille"),
            (self.early_sync_percent, 100, "early_sync_percent"),
        ] {
            if value > max {
                return Err(DiskError::Range { name, value, max });
            }
        }
        for (used, allowed, fault) in [
            (self.io_error_permille > 0, disk.io_errors, "io errors"),
            (
                self.corrupt_read_permille > 0,
                disk.corrupt_reads,
                "corrupt reads",
            ),
            (self.early_sync_percent > 0, disk.early_syncs, "early syncs"),
            (self.torn_writes, disk.torn_writes, "torn writes"),
        ] {
            if used && !allowed {
                return Err(DiskError::NotDeclared {
                    fault,
                    declared: disk.allows(),
                });
            }
        }
        Ok(())
    }

    /// Sets turmoil's file system to it.
    pub(crate) fn configure(&self, builder: &mut turmoil::Builder) {
        let fs = builder.fs();
        fs.io_error_probability(f64::from(self.io_error_permille) / 1_000.0)
            .corruption_probability(f64::from(self.corrupt_read_permille) / 1_000.0)
            .sync_probability(f64::from(self.early_sync_percent) / 100.0);
        if self.torn_writes {
            fs.block_size(TORN_BLOCK_BYTES);
        }
    }
}

impl fmt::Display for DiskProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.io_error_permille > 0 {
            parts.push(format!("io errors {}‰", self.io_error_permille));
        }
        if self.corrupt_read_permille > 0 {
            parts.push(format!("corrupt reads {}‰", self.corrupt_read_permille));
        }
        if self.early_sync_percent > 0 {
            parts.push(format!("early syncs {}%", self.early_sync_percent));
        }
        if self.torn_writes {
            parts.push("torn writes".to_string());
        }
        if parts.is_empty() {
            f.write_str("no disk faults")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// What is wrong with a plan's disk profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskError {
    /// The scenario declares no disk.
    NoDisk,
    /// A fault the declared disk does not allow.
    NotDeclared {
        /// The fault.
        fault: &'static str,
        /// Those it allows.
        declared: Vec<&'static str>,
    },
    /// A chance out of range.
    Range {
        /// The field.
        name: &'static str,
        /// The value given.
        value: u32,
        /// The largest allowed.
        max: u32,
    },
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::NoDisk => f.write_str("the scenario declares no disk"),
            DiskError::NotDeclared { fault, declared } if declared.is_empty() => write!(
                f,
                "{fault} are not among the faults the scenario's disk declares (none)"
            ),
            DiskError::NotDeclared { fault, declared } => write!(
                f,
                "{fault} are not among the faults the scenario's disk declares ({})",
                declared.join(", ")
            ),
            DiskError::Range { name, value, max } => {
                write!(f, "{name} {value} is above {max}")
            }
        }
    }
}

/// The profile a swarm draws for `seed` from a stream of its own: none for
/// half the seeds; else [`draw_any`]'s.
pub(crate) fn draw(seed: u64, disk: Option<&Disk>) -> Option<DiskProfile> {
    disk?;
    let mut rng = SplitMix64::derive(seed, 0xfa1a);
    if rng.between(0, 1) == 0 {
        return None;
    }
    draw_any(&mut rng, disk)
}

/// A profile for `disk` drawn from `rng`: each fault the disk allows is on
/// with chance 1/2, at a level drawn from a few (1, 5 or 20 thousandths
/// for errors and corruption, 10 or 50% for early syncs); `None` if none
/// is on.
pub(crate) fn draw_any(rng: &mut SplitMix64, disk: Option<&Disk>) -> Option<DiskProfile> {
    let disk = disk?;
    let mut pick = |allowed: bool, levels: &[u32]| -> u32 {
        let on = rng.between(0, 1) == 1;
        let level = levels[rng.between(0, levels.len() as u64 - 1) as usize];
        if allowed && on { level } else { 0 }
    };
    let profile = DiskProfile {
        io_error_permille: pick(disk.io_errors, &ERROR_LEVELS),
        corrupt_read_permille: pick(disk.corrupt_reads, &ERROR_LEVELS),
        early_sync_percent: pick(disk.early_syncs, &SYNC_LEVELS),
        torn_writes: pick(disk.torn_writes, &[1]) == 1,
    };
    (!profile.is_none()).then_some(profile)
}

/// The levels a swarm draws for I/O errors and corrupt reads (thousandths).
const ERROR_LEVELS: [u32; 3] = [1, 5, 20];
/// The levels a swarm draws for early syncs (percent).
const SYNC_LEVELS: [u32; 2] = [10, 50];

/// Each fault `disk` allows, alone, at the highest level a swarm draws
/// (in the table's order): the disk conditions a guided search tries a
/// new coincidence under.
pub(crate) fn each_alone(disk: Option<&Disk>) -> Vec<DiskProfile> {
    let Some(disk) = disk else {
        return Vec::new();
    };
    let top = |levels: &[u32]| levels.iter().copied().max().unwrap_or(0);
    [
        (
            disk.io_errors,
            DiskProfile {
                io_error_permille: top(&ERROR_LEVELS),
                ..DiskProfile::default()
            },
        ),
        (
            disk.corrupt_reads,
            DiskProfile {
                corrupt_read_permille: top(&ERROR_LEVELS),
                ..DiskProfile::default()
            },
        ),
        (
            disk.early_syncs,
            DiskProfile {
                early_sync_percent: top(&SYNC_LEVELS),
                ..DiskProfile::default()
            },
        ),
        (
            disk.torn_writes,
            DiskProfile {
                torn_writes: true,
                ..DiskProfile::default()
            },
        ),
    ]
    .into_iter()
    .filter(|(allowed, _)| *allowed)
    .map(|(_, p)| p)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each fault the disk allows, alone, at the top level a swarm draws;
    /// nothing it does not allow, nothing without a disk.
    #[test]
    fn each_fault_alone_at_its_top_level() {
        let all = Disk::new("d")
            .io_errors()
            .corrupt_reads()
            .early_syncs()
            .torn_writes();
        assert_eq!(
            each_alone(Some(&all)),
            [
                DiskProfile {
                    io_error_permille: 20,
                    ..DiskProfile::default()
                },
                DiskProfile {
                    corrupt_read_permille: 20,
                    ..DiskProfile::default()
                },
                DiskProfile {
                    early_sync_percent: 50,
                    ..DiskProfile::default()
                },
                DiskProfile {
                    torn_writes: true,
                    ..DiskProfile::default()
                },
            ]
        );
        let torn = Disk::new("d").torn_writes();
        assert_eq!(each_alone(Some(&torn)).len(), 1);
        assert!(each_alone(None).is_empty());
    }
}
