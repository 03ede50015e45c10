//! Where `sweep --shard auto` finds its shard: the environment a batch
//! engine gives each job of an array, so one command line serves every job
//! of a CI matrix, a Kubernetes Indexed Job or a Slurm job array.
//!
//! | engine | the shard's index | the shard count |
//! |---|---|---|
//! | ours (a GitHub Actions matrix, or anything else: the recipe sets them) | [`INDEX_VAR`], from 0 | [`COUNT_VAR`] |
//! | Slurm (`sbatch --array=0-N-1`) | `SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN` | `SLURM_ARRAY_TASK_COUNT` (the array must be contiguous: `SLURM_ARRAY_TASK_MAX` - min + 1) |
//! | Kubernetes (an Indexed Job) | `JOB_COMPLETION_INDEX`, from 0 | [`COUNT_VAR`], which the manifest sets to the Job's `completions` (Kubernetes gives no count) |
//!
//! Ours first (set explicitly, it wins), then Slurm, then Kubernetes. A
//! missing, unparsable or inconsistent environment is refused with an
//! [`EnvShardError`] that names the variable; it is never guessed at.
//!
//! | guarantee | check |
//! |---|---|
//! | each engine's variables map to the shard `K/N` (1-based) that `--shard K/N` takes | `engine::tests` |
//! | a missing count, an index past the count, a non-number, a zero count, a Slurm array with a step or holes are refused, naming the variable | `engine::tests` |
//! | N processes given each engine's variables, merged, print exactly the single sweep | `sim/tests/meta.rs` `shards_from_each_engines_environment_merge_to_the_single_sweep` |

use std::fmt;

/// Our variable for the shard's index, from 0 (`K - 1`).
pub const INDEX_VAR: &str = "ASYNC_PATTERNS_SIM_SHARD_INDEX";
/// Our variable for the shard count `N`.
pub const COUNT_VAR: &str = "ASYNC_PATTERNS_SIM_SHARD_COUNT";

/// A shard read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvShard {
    /// `(K, N)`, 1-based, as `--shard K/N` takes it.
    pub shard: (u64, u64),
    /// Where it came from, in words (`"Slurm: SLURM_ARRAY_TASK_ID=3 ..."`).
    pub from: String,
}

/// Why the environment gives no shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvShardError {
    /// No engine's variables at all.
    Nothing,
    /// An engine's variable is there, another it needs is not.
    Missing {
        /// The engine.
        engine: &'static str,
        /// The variable missing.
        variable: &'static str,
        /// What to do about it.
        hint: &'static str,
    },
    /// A variable that is not a whole number.
    NotANumber {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// Values that do not make a shard.
    Inconsistent {
        /// The engine.
        engine: &'static str,
        /// What is wrong, with the values.
        why: String,
    },
}

impl fmt::Display for EnvShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvShardError::Nothing => write!(
                f,
                "--shard auto: no shard in the environment: run it as a Slurm array job, a \
                 Kubernetes Indexed Job (with {COUNT_VAR} set to its completions), or set \
                 {INDEX_VAR} (from 0) and {COUNT_VAR}; or give --shard K/N"
            ),
            EnvShardError::Missing {
                engine,
                variable,
                hint,
            } => write!(f, "--shard auto ({engine}): {variable} is not set: {hint}"),
            EnvShardError::NotANumber { variable, value } => write!(
                f,
                "--shard auto: {variable}={value:?} is not a whole number"
            ),
            EnvShardError::Inconsistent { engine, why } => {
                write!(f, "--shard auto ({engine}): {why}")
            }
        }
    }
}

impl std::error::Error for EnvShardError {}

/// The shard the environment `get` describes (`get(name)`: a variable's
/// value, if set; `|v| std::env::var(v).ok()` for the process's own).
pub fn shard_from_env(get: impl Fn(&str) -> Option<String>) -> Result<EnvShard, EnvShardError> {
    let number = |variable: &'static str| -> Result<Option<u64>, EnvShardError> {
        match get(variable) {
            None => Ok(None),
            Some(value) => value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| EnvShardError::NotANumber { variable, value }),
        }
    };
    let needed = |engine: &'static str, variable: &'static str, hint: &'static str| {
        move |v: Option<u64>| {
            v.ok_or(EnvShardError::Missing {
                engine,
                variable,
                hint,
            })
        }
    };
    let within = |engine: &'static str, index: u64, count: u64, from: String| {
        if count == 0 {
            return Err(EnvShardError::Inconsistent {
                engine,
                why: format!("a shard count of 0 ({from})"),
            });
        }
        if index >= count {
            return Err(EnvShardError::Inconsistent {
                engine,
                why: format!("index {index} is past the last of {count} shards ({from})"),
            });
        }
        Ok(EnvShard {
            shard: (index + 1, count),
            from: format!("{engine}: {from}"),
        })
    };
    if let Some(index) = number(INDEX_VAR)? {
        let count = needed(
            "ours",
            COUNT_VAR,
            "set it to the number of shards (the matrix's size)",
        )(number(COUNT_VAR)?)?;
        return within(
            "ours",
            index,
            count,
            format!("{INDEX_VAR}={index}, {COUNT_VAR}={count}"),
        );
    }
    if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
        const HINT: &str = "Slurm sets it for a job array (sbatch --array=0-N-1)";
        let count =
            needed("Slurm", "SLURM_ARRAY_TASK_COUNT", HINT)(number("SLURM_ARRAY_TASK_COUNT")?)?;
        let min = needed("Slurm", "SLURM_ARRAY_TASK_MIN", HINT)(number("SLURM_ARRAY_TASK_MIN")?)?;
        let max = needed("Slurm", "SLURM_ARRAY_TASK_MAX", HINT)(number("SLURM_ARRAY_TASK_MAX")?)?;
        let from = format!(
            "SLURM_ARRAY_TASK_ID={id} of SLURM_ARRAY_TASK_MIN={min}..SLURM_ARRAY_TASK_MAX={max}, \
             SLURM_ARRAY_TASK_COUNT={count}"
        );
        if id < min || id > max {
            return Err(EnvShardError::Inconsistent {
                engine: "Slurm",
                why: format!("the task is outside its array ({from})"),
            });
        }
        if max.checked_sub(min).and_then(|d| d.checked_add(1)) != Some(count) {
            return Err(EnvShardError::Inconsistent {
                engine: "Slurm",
                why: format!(
                    "the array has a step or holes ({from}): use a contiguous range, \
                     --array={min}-{}",
                    min.saturating_add(count.saturating_sub(1))
                ),
            });
        }
        return within("Slurm", id - min, count, from);
    }
    if let Some(index) = number("JOB_COMPLETION_INDEX")? {
        let count = needed(
            "Kubernetes",
            COUNT_VAR,
            "Kubernetes gives no shard count: set it in the manifest to the Job's completions",
        )(number(COUNT_VAR)?)?;
        return within(
            "Kubernetes",
            index,
            count,
            format!("JOB_COMPLETION_INDEX={index}, {COUNT_VAR}={count}"),
        );
    }
    if get(COUNT_VAR).is_some() {
        return Err(EnvShardError::Missing {
            engine: "ours",
            variable: INDEX_VAR,
            hint: "the shard's index, from 0 (a count alone is no shard)",
        });
    }
    Err(EnvShardError::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<EnvShard, EnvShardError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        shard_from_env(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn slurm(id: &str, min: &str, max: &str, count: &str) -> Result<EnvShard, EnvShardError> {
        env(&[
            ("SLURM_ARRAY_TASK_ID", id),
            ("SLURM_ARRAY_TASK_MIN", min),
            ("SLURM_ARRAY_TASK_MAX", max),
            ("SLURM_ARRAY_TASK_COUNT", count),
        ])
    }

    fn shard(vars: &[(&str, &str)]) -> (u64, u64) {
        env(vars).unwrap().shard
    }

    fn refused(vars: &[(&str, &str)]) -> String {
        env(vars).unwrap_err().to_string()
    }

    #[test]
    fn each_engine_maps_to_the_one_based_shard() {
        assert_eq!(shard(&[(INDEX_VAR, "0"), (COUNT_VAR, "4")]), (1, 4));
        assert_eq!(shard(&[(INDEX_VAR, " 3 "), (COUNT_VAR, "4")]), (4, 4));
        assert_eq!(slurm("0", "0", "3", "4").unwrap().shard, (1, 4));
        assert_eq!(slurm("3", "0", "3", "4").unwrap().shard, (4, 4));
        // An array from 1 (--array=1-4): task 1 is shard 1.
        assert_eq!(slurm("1", "1", "4", "4").unwrap().shard, (1, 4));
        assert_eq!(
            shard(&[("JOB_COMPLETION_INDEX", "2"), (COUNT_VAR, "3")]),
            (3, 3)
        );
        // Ours, set explicitly, wins over an engine's.
        assert_eq!(
            shard(&[
                (INDEX_VAR, "1"),
                (COUNT_VAR, "2"),
                ("JOB_COMPLETION_INDEX", "0")
            ]),
            (2, 2)
        );
        let from = env(&[("JOB_COMPLETION_INDEX", "2"), (COUNT_VAR, "3")])
            .unwrap()
            .from;
        assert_eq!(
            from,
            "Kubernetes: JOB_COMPLETION_INDEX=2, ASYNC_PATTERNS_SIM_SHARD_COUNT=3"
        );
        // Slurm's refusals: a step, holes, a task outside, a missing count.
        let stepped = slurm("2", "0", "6", "4").unwrap_err();
        assert!(
            stepped
                .to_string()
                .contains("the array has a step or holes"),
            "{stepped}"
        );
        assert!(stepped.to_string().contains("--array=0-3"), "{stepped}");
        let outside = slurm("9", "0", "3", "4").unwrap_err();
        // The widest array there is: no overflow, a refusal.
        let max = u64::MAX.to_string();
        assert!(slurm("0", "0", &max, &max).is_err());
        assert!(
            outside.to_string().contains("outside its array"),
            "{outside}"
        );
        assert_eq!(
            refused(&[("SLURM_ARRAY_TASK_ID", "0")]),
            "--shard auto (Slurm): SLURM_ARRAY_TASK_COUNT is not set: Slurm sets it for a job \
             array (sbatch --array=0-N-1)"
        );
    }

    #[test]
    fn a_missing_or_inconsistent_environment_is_refused_by_name() {
        assert_eq!(env(&[]), Err(EnvShardError::Nothing));
        assert!(refused(&[]).contains(INDEX_VAR));
        assert_eq!(
            refused(&[("JOB_COMPLETION_INDEX", "0")]),
            "--shard auto (Kubernetes): ASYNC_PATTERNS_SIM_SHARD_COUNT is not set: Kubernetes \
             gives no shard count: set it in the manifest to the Job's completions"
        );
        assert_eq!(
            refused(&[(INDEX_VAR, "4"), (COUNT_VAR, "4")]),
            "--shard auto (ours): index 4 is past the last of 4 shards \
             (ASYNC_PATTERNS_SIM_SHARD_INDEX=4, ASYNC_PATTERNS_SIM_SHARD_COUNT=4)"
        );
        assert!(refused(&[(INDEX_VAR, "0"), (COUNT_VAR, "0")]).contains("a shard count of 0"));
        assert_eq!(
            refused(&[(INDEX_VAR, "-1"), (COUNT_VAR, "4")]),
            "--shard auto: ASYNC_PATTERNS_SIM_SHARD_INDEX=\"-1\" is not a whole number"
        );
        assert!(
            refused(&[(INDEX_VAR, "18446744073709551616"), (COUNT_VAR, "4")])
                .contains("is not a whole number")
        );
        assert!(refused(&[(INDEX_VAR, "0")]).contains("ASYNC_PATTERNS_SIM_SHARD_COUNT is not set"));
        assert!(refused(&[(COUNT_VAR, "4")]).contains("ASYNC_PATTERNS_SIM_SHARD_INDEX is not set"));
        // The largest count: the last index is fine, the shard is 1-based.
        let max = u64::MAX.to_string();
        let last = (u64::MAX - 1).to_string();
        assert_eq!(
            shard(&[(INDEX_VAR, last.as_str()), (COUNT_VAR, max.as_str())]),
            (u64::MAX, u64::MAX)
        );
    }
}
