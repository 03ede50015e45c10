//! The harness catches bugs: each deliberately broken pattern (`--sabotage`,
//! which only this test and the README's demonstration use) makes a sweep
//! of the `sim` binary report a violation, exit non-zero, and print a replay
//! line; running that line reproduces the violation. The same sweep without
//! the sabotage passes, so the violations are the sabotage's doing.

use std::path::PathBuf;
use std::process::{Command, Output};

use sim::CATALOGUE;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("the sim binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The last line a command printed.
fn verdict(out: &Output) -> String {
    stdout(out).lines().last().unwrap_or_default().to_string()
}

/// A fresh scratch folder of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-meta-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The already minimal plan that `ack-before-store` fails on seed 0 (so a
/// shrink of it is quick).
const SABOTAGED_PLAN: &str =
    r#"{"faults":[{"kind":"crash","target":"consumer","at_ms":59,"for_ms":1}]}"#;

#[test]
fn every_sabotage_is_caught_and_replays() {
    let sabotages: Vec<(String, String, bool)> = CATALOGUE
        .iter()
        .map(|s| s.info())
        .flat_map(|i| {
            i.sabotages
                .iter()
                .map(move |b| {
                    // Deep (faults must coincide) or rare (one event a
                    // plan cannot make likelier): a swarm catches either
                    // in fewer than 1 seed in 100.
                    let deep = b.about.starts_with("deep:") || b.about.starts_with("rare:");
                    (b.name.to_string(), i.name.clone(), deep)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(sabotages.len(), 10, "{sabotages:?}");
    for (name, scenario, deep) in &sabotages {
        // Coverage is judged elsewhere: 4 seeds need not reach every point.
        let clean = sim(&[
            "sweep",
            "--scenario",
            scenario,
            "--seeds",
            "4",
            "--coverage",
            "warn",
        ]);
        assert!(
            clean.status.success(),
            "{scenario} fails without a sabotage:\n{}",
            stdout(&clean)
        );

        // A deep sabotage (two conditions must coincide: swarm catches it
        // in fewer than 1 seed in 100) is caught by a guided search.
        let broken = if *deep {
            sim(&["sweep", "--guided", "--seeds", "400", "--sabotage", name])
        } else {
            sim(&["sweep", "--seeds", "4", "--sabotage", name])
        };
        let text = stdout(&broken);
        assert_eq!(
            broken.status.code(),
            Some(1),
            "{name} was not caught:\n{text}"
        );
        let failed = if *deep { "run" } else { "seed" };
        assert!(
            text.contains(&format!("FAILED {scenario} {failed}")),
            "{text}"
        );
        assert!(verdict(&broken).starts_with("FAIL: "), "{text}");
        let replay = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("replay: cargo run -p sim --release -- ")
            })
            .unwrap_or_else(|| panic!("no replay line:\n{text}"));
        if *deep {
            // The plan file names its sabotage.
            let plan = replay
                .split_whitespace()
                .skip_while(|w| *w != "--plan")
                .nth(1);
            let plan = std::fs::read_to_string(plan.expect("a --plan")).unwrap();
            assert!(plan.contains(&format!("\"sabotage\":\"{name}\"")), "{plan}");
        } else {
            assert!(replay.contains(&format!("--sabotage {name}")), "{replay}");
        }

        let again = sim(&replay.split_whitespace().collect::<Vec<_>>());
        let text = stdout(&again);
        assert_eq!(again.status.code(), Some(1), "the replay passed:\n{text}");
        assert!(text.contains("VIOLATION: "), "{text}");
        assert!(verdict(&again).starts_with("FAIL: "), "{text}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    for (args, says) in [
        (&["sweep", "--seeds", "0"][..], "--seeds must be at least 1"),
        (&["sweep", "--shard", "3/2"], "need 1 <= K <= N"),
        (&["replay", "nope", "--seed", "1"], "no scenario \"nope\""),
        (
            &[
                "replay",
                "pipeline",
                "--seed",
                "1",
                "--plan",
                "/nonexistent.json",
            ],
            "/nonexistent.json",
        ),
        (
            &[
                "sweep",
                "--scenario",
                "pipeline",
                "--sabotage",
                "breaker-never-opens",
            ],
            "breaks resilient-client, not pipeline",
        ),
        (
            &[
                "replay",
                "pipeline",
                "--seed",
                "1",
                "--sabotage",
                "breaker-never-opens",
            ],
            "breaks resilient-client, not pipeline",
        ),
        (&["sweep", "--seeds", "2", "--shard", "3/4"], "selects none"),
        (
            &["sweep", "--from", "18446744073709551610", "--seeds", "50"],
            "past the last seed",
        ),
        (
            &["sweep", "--from", "18446744073709551615", "--seeds", "2"],
            "past the last seed",
        ),
        (
            &["sweep", "--seeds", "1000000000"],
            "1000000000 seeds in one process is more than it holds (1000000)",
        ),
        (
            &["sweep", "--seeds", "2000001", "--shard", "1/2"],
            "1000001 seeds in one process",
        ),
    ] {
        let out = sim(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// The last seed there is can be swept: a range that ends exactly at
/// `u64::MAX` runs all its seeds (no shard was asked for, none is blamed).
#[test]
fn a_sweep_may_end_at_the_last_seed() {
    let out = sim(&[
        "sweep",
        "--scenario",
        "pipeline",
        "--from",
        "18446744073709551614",
        "--seeds",
        "2",
    ]);
    let text = stdout(&out);
    assert!(text.contains("| pipeline | 2 |"), "{text}{}", stderr(&out));
}

/// A plan with a field the harness does not know (a typo, or a field of a
/// newer version) is refused, naming the field, not silently run without it.
#[test]
fn a_plan_with_an_unknown_field_is_refused() {
    let dir = scratch("unknown-field");
    for (name, plan) in [
        (
            "in-fault.json",
            r#"{"faults":[{"kind":"partition","target":"producer<->consumer","at_ms":100,"for_ms":50,"host":"server"}]}"#,
        ),
        ("in-plan.json", r#"{"faults":[],"host":"server"}"#),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, plan).unwrap();
        let out = sim(&[
            "replay",
            "pipeline",
            "--seed",
            "1",
            "--plan",
            file.to_str().unwrap(),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{plan}: {err}{}", stdout(&out));
        assert!(err.contains("unknown field `host`"), "{plan}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The README's shrink of a sabotaged run, run where the committed
/// regressions are, leaves them as they are (it saves nothing without
/// `--out`: a sabotaged plan is no regression).
#[test]
fn a_sabotaged_shrink_leaves_the_regressions_alone() {
    let dir = scratch("regressions");
    let regressions = dir.join("sim/regressions");
    std::fs::create_dir_all(&regressions).unwrap();
    let committed = regressions.join("pipeline-seed-0.json");
    let text = r#"{"faults":[{"kind":"crash","target":"consumer","at_ms":0,"for_ms":0}]}"#
        .to_string()
        + "\n";
    std::fs::write(&committed, &text).unwrap();
    let plan = dir.join("plan.json");
    std::fs::write(&plan, SABOTAGED_PLAN).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sim"))
        .current_dir(&dir)
        .args(["shrink", "pipeline", "--seed", "0", "--sabotage"])
        .args(["ack-before-store", "--plan", plan.to_str().unwrap()])
        .output()
        .unwrap();
    let after = std::fs::read_to_string(&committed).unwrap();
    let listed = std::fs::read_dir(&regressions).unwrap().count();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(after, text, "the committed regression was overwritten");
    assert_eq!(
        listed, 1,
        "a sabotaged plan was saved among the regressions"
    );
    assert!(stdout(&out).contains("not saved"), "{}", stdout(&out));
}

/// `shrink --out` never replaces a file unless told to (`--force`), and
/// says so before any work; the plan it saves records its sabotage, so a
/// replay of the file alone fails again.
#[test]
fn shrink_refuses_to_overwrite_and_records_the_sabotage() {
    let dir = scratch("overwrite");
    let (plan, file) = (dir.join("plan.json"), dir.join("shrunk.json"));
    std::fs::write(&plan, SABOTAGED_PLAN).unwrap();
    std::fs::write(&file, "keep\n").unwrap();
    let (plan, file_arg) = (plan.to_str().unwrap(), file.to_str().unwrap());
    let args = [
        "shrink",
        "pipeline",
        "--seed",
        "0",
        "--sabotage",
        "ack-before-store",
        "--plan",
        plan,
        "--out",
        file_arg,
    ];
    let refused = sim(&args);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{err}{}", stdout(&refused));
    assert!(err.contains(file_arg) && err.contains("--force"), "{err}");
    assert_eq!(stdout(&refused), "", "it worked before refusing");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep\n");

    let forced = sim(&[&args[..], &["--force"]].concat());
    assert_eq!(forced.status.code(), Some(1), "{}", stderr(&forced));
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(
        saved.contains(r#""sabotage":"ack-before-store""#),
        "{saved}"
    );

    let replay = sim(&["replay", "pipeline", "--seed", "0", "--plan", file_arg]);
    // The same faults against the code as it is: the sabotage was the bug.
    let fixed = sim(&[
        "replay",
        "pipeline",
        "--seed",
        "0",
        "--plan",
        file_arg,
        "--no-sabotage",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(fixed.status.code(), Some(0), "{}", stdout(&fixed));
    assert_eq!(replay.status.code(), Some(1), "{}", stdout(&replay));
    assert!(
        stdout(&replay).contains("VIOLATION: "),
        "{}",
        stdout(&replay)
    );
}

/// Output paths are checked before the run: a missing folder fails at
/// once, with its name, and nothing is run or printed.
#[test]
fn output_paths_are_checked_before_the_run() {
    for args in [
        &[
            "replay",
            "pipeline",
            "--seed",
            "1",
            "--plot",
            "/nonexistent-dir/t.svg",
        ][..],
        &[
            "shrink",
            "pipeline",
            "--seed",
            "1",
            "--out",
            "/nonexistent-dir/p.json",
        ],
    ] {
        let out = sim(args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {err}{}",
            stdout(&out)
        );
        assert!(err.contains("/nonexistent-dir"), "{args:?}: {err}");
        assert_eq!(stdout(&out), "", "{args:?} ran before failing");
    }
}

/// Outputs that cannot be written (a read-only file, /dev/full), or that
/// are the plan being read, are refused before any run; a plan whose
/// "sabotage" names none is refused naming the file and its field.
#[test]
fn unwritable_outputs_and_outputs_over_inputs_are_refused_first() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("careless");
    let plan = dir.join("p.json");
    std::fs::write(&plan, SABOTAGED_PLAN).unwrap();
    let plan = plan.to_str().unwrap();
    let locked = dir.join("locked.json");
    std::fs::write(&locked, "keep me").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o444)).unwrap();
    // As root a read-only file is still writable: then only /dev/full
    // shows the check.
    let read_only_refused = std::fs::OpenOptions::new()
        .append(true)
        .open(&locked)
        .is_err();
    let locked = locked.to_str().unwrap();
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "replay", "pipeline", "--seed", "0", "--plan", plan, "--plot", plan,
            ],
            "is the --plan file it reads",
        ),
        (
            vec![
                "sweep",
                "--scenario",
                "pipeline",
                "--seeds",
                "1",
                "--json",
                "/dev/full",
            ],
            "--json /dev/full: cannot be written",
        ),
        (
            vec!["replay", "pipeline", "--seed", "0", "--plot", "/dev/full"],
            "--plot /dev/full: cannot be written",
        ),
    ];
    if read_only_refused {
        cases.push((
            vec![
                "sweep",
                "--scenario",
                "pipeline",
                "--seeds",
                "1",
                "--json",
                locked,
            ],
            "cannot be written",
        ));
    }
    for (args, says) in cases {
        let out = sim(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?} ran before failing");
    }
    assert_eq!(std::fs::read_to_string(plan).unwrap(), SABOTAGED_PLAN);
    assert_eq!(std::fs::read_to_string(locked).unwrap(), "keep me");
    // A plot beside the plan, not over it, is drawn (the check refuses the
    // plan file only).
    let beside = dir.join("beside.svg");
    let out = sim(&[
        "replay",
        "pipeline",
        "--seed",
        "0",
        "--plan",
        plan,
        "--plot",
        beside.to_str().unwrap(),
    ]);
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&beside)
            .unwrap()
            .starts_with("<svg")
    );
    // A plan file's own "sabotage" that names nothing: the file and the
    // field are named, not a --sabotage the user never typed.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"faults":[],"sabotage":"nosuch"}"#).unwrap();
    let out = sim(&[
        "replay",
        "pipeline",
        "--seed",
        "0",
        "--plan",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{}: its \"sabotage\" names \"nosuch\", which no scenario declares",
            bad.display()
        )),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(
        dir.join("locked.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A sweep and a replay end with a one-line verdict.
#[test]
fn sweep_and_replay_end_with_a_verdict() {
    let sweep = sim(&["sweep", "--scenario", "pipeline", "--seeds", "2"]);
    assert_eq!(
        verdict(&sweep),
        "PASS: 2 seeds, 0 violations, traces deterministic",
        "{}",
        stdout(&sweep)
    );
    let replay = sim(&["replay", "pipeline", "--seed", "1"]);
    assert!(
        verdict(&replay).starts_with("PASS: pipeline seed 1"),
        "{}",
        stdout(&replay)
    );
}

/// A plan is checked against the scenario's declared targets before any
/// run: an undeclared host or link, or a sabotage the scenario does not
/// declare, is an error that names it.
#[test]
fn a_plan_naming_an_undeclared_target_is_refused_by_name() {
    let dir = scratch("targets");
    for (plan, says) in [
        (
            r#"{"faults":[{"kind":"crash","target":"db","at_ms":1,"for_ms":1}]}"#,
            r#"fault 1 (crash): no host "db"; the scenario declares: consumer"#,
        ),
        (
            r#"{"faults":[{"kind":"hold","target":"producer<->db","at_ms":1,"for_ms":1}]}"#,
            r#"no link "producer<->db"; the scenario declares: producer<->consumer"#,
        ),
        (
            r#"{"faults":[{"kind":"loss","target":"producer<->consumer","at_ms":1,"for_ms":1,"percent":0}]}"#,
            "percent 0 is outside 1-100",
        ),
        (
            r#"{"faults":[],"sabotage":"breaker-never-opens"}"#,
            "plan.json: its \"sabotage\" breaker-never-opens breaks resilient-client, not pipeline",
        ),
    ] {
        let file = dir.join("plan.json");
        std::fs::write(&file, plan).unwrap();
        let out = sim(&[
            "replay",
            "pipeline",
            "--seed",
            "1",
            "--plan",
            file.to_str().unwrap(),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{plan}: {err}{}", stdout(&out));
        assert!(err.contains(says), "{plan}: {err}");
        assert_eq!(stdout(&out), "", "{plan} ran before failing");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let out = sim(&["sweep", "--sabotage", "no-such-bug"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(r#"no sabotage "no-such-bug""#),
        "{}",
        stderr(&out)
    );
}

/// Four shards, each its own process writing `--json`, merge to exactly
/// what one sweep of all the seeds prints (table, failures with their
/// replay lines, verdict) and its exit code: with and without failures.
#[test]
fn four_shards_merge_to_the_single_sweep() {
    let dir = scratch("shards");
    for (label, extra) in [
        ("clean", &["--scenario", "pipeline"][..]),
        ("failing", &["--sabotage", "ack-before-store"][..]),
    ] {
        let whole = sim(&[&["sweep", "--seeds", "12"][..], extra].concat());
        let mut files = Vec::new();
        let shards: Vec<_> = (1..=4)
            .map(|k| {
                let file = dir.join(format!("{label}-{k}.json"));
                let shard = format!("{k}/4");
                let child = Command::new(env!("CARGO_BIN_EXE_sim"))
                    .args(["sweep", "--seeds", "12", "--shard", &shard, "--json"])
                    .arg(&file)
                    .args(extra)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                files.push(file);
                child
            })
            .collect();
        for mut child in shards {
            child.wait().unwrap();
        }
        let paths: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
        let merged = sim(&[&["merge"][..], &paths].concat());
        assert_eq!(
            stdout(&merged),
            stdout(&whole),
            "{label}: {}",
            stderr(&merged)
        );
        assert_eq!(merged.status.code(), whole.status.code(), "{label}");
        assert!(!stdout(&whole).is_empty());
        if label == "failing" {
            assert!(
                stdout(&merged).contains("replay: cargo run -p sim --release -- replay pipeline")
            );
            // A shard given twice is refused, naming the seed.
            let twice = sim(&["merge", paths[0], paths[0]]);
            assert_eq!(twice.status.code(), Some(2));
            assert!(
                stderr(&twice).contains("shard 1/4 is given twice"),
                "{}",
                stderr(&twice)
            );
            // Three of the four: a hole, named.
            let holed = sim(&["merge", paths[0], paths[1], paths[3]]);
            assert_eq!(holed.status.code(), Some(2));
            assert!(
                stderr(&holed).contains("no file holds shard 3/4"),
                "{}",
                stderr(&holed)
            );
        }
    }
    // Each record says what a person needs: the plan, the hash, the
    // violations, the latencies.
    let text = std::fs::read_to_string(dir.join("failing-1.json")).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let header = &header["sweep"];
    assert_eq!(header["version"], 2);
    // The catalogue: what coverage is counted against.
    assert_eq!(
        header["catalogue"][0]["points"][0]["name"],
        "duplicate dropped"
    );
    assert_eq!(header["shard"], serde_json::json!([1, 4]));
    assert_eq!(header["seeds"], 12);
    assert!(
        header["build"]["about"]
            .as_str()
            .unwrap()
            .starts_with("commit ")
    );
    let line: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    let first = &line["seed"];
    for key in [
        "scenario",
        "seed",
        "plan",
        "trace_hash",
        "runs",
        "deterministic",
        "violations",
        "latencies_ns",
        "points",
    ] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    // After the records, each scenario's coverage.
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(last["coverage"]["points"][0]["seeds"].is_u64(), "{last}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Shards run under different sabotages are not one sweep: merge refuses
/// them, naming both.
#[test]
fn merge_refuses_shards_of_different_sabotages() {
    let dir = scratch("mixed");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    sim(&[
        "sweep",
        "--seeds",
        "2",
        "--sabotage",
        "ack-before-store",
        "--json",
        a,
    ]);
    sim(&[
        "sweep",
        "--scenario",
        "pipeline",
        "--seeds",
        "2",
        "--from",
        "2",
        "--json",
        b,
    ]);
    let merged = sim(&["merge", a, b]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(merged.status.code(), Some(2), "{}", stdout(&merged));
    assert!(
        stderr(&merged).contains("not shards of one sweep: ")
            && stderr(&merged).contains(
                "a.json ran --from 0 --seeds 2 of pipeline under --sabotage ack-before-store, "
            )
            && stderr(&merged).contains("b.json ran --from 2 --seeds 2 of pipeline"),
        "{}",
        stderr(&merged)
    );
}

/// Seeds 0, 2, 4 and 101, 103, 105 are not one sweep (merge once printed
/// PASS: 6 seeds); a file from before the header is refused by name.
#[test]
fn merge_refuses_different_seed_ranges_and_unversioned_files() {
    let dir = scratch("ranges");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let sweep = |from: &str, file: &str| {
        sim(&[
            "sweep",
            "--scenario",
            "pipeline",
            "--seeds",
            "6",
            "--from",
            from,
            "--shard",
            "1/2",
            "--json",
            file,
        ])
    };
    sweep("0", a);
    sweep("100", b);
    let merged = sim(&["merge", a, b]);
    assert_eq!(merged.status.code(), Some(2), "{}", stdout(&merged));
    assert!(
        stderr(&merged).contains("ran --from 0 --seeds 6 of pipeline")
            && stderr(&merged).contains("ran --from 100 --seeds 6 of pipeline"),
        "{}",
        stderr(&merged)
    );
    // The records without their header line: the old format.
    let text = std::fs::read_to_string(a).unwrap();
    let records: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(a, records).unwrap();
    let old = sim(&["merge", a]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(old.status.code(), Some(2));
    assert!(
        stderr(&old).contains("a.json: no sweep header"),
        "{}",
        stderr(&old)
    );
}

/// The density flags thin every seed's plan, and the replay lines a sweep
/// prints repeat them (a replay without them would run another plan).
#[test]
fn density_flags_reach_the_plans_and_the_replay_lines() {
    let out = sim(&[
        "sweep",
        "--sabotage",
        "ack-before-store",
        "--seeds",
        "16",
        "--max-faults",
        "1",
        "--weight",
        "hold=0",
        "--keep",
        "3/4",
        "--once",
    ]);
    let text = stdout(&out);
    assert!(
        text.contains("replay: cargo run -p sim --release -- replay pipeline --seed ")
            && text.contains(
                " --keep 3/4 --max-faults 1 --weight hold=0 --sabotage ack-before-store --trace"
            ),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("replay: "))
        .unwrap();
    let seed = line
        .split(" --seed ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let replay = sim(&[
        "replay",
        "pipeline",
        "--seed",
        seed,
        "--sabotage",
        "ack-before-store",
        "--keep",
        "3/4",
        "--max-faults",
        "1",
        "--weight",
        "hold=0",
    ]);
    assert_eq!(replay.status.code(), Some(1), "{}", stdout(&replay));
    let plan_line = stdout(&replay)
        .lines()
        .find(|l| l.contains(": plan {"))
        .unwrap()
        .to_string();
    assert_eq!(plan_line.matches("\"kind\"").count(), 1, "{plan_line}");
    assert!(!plan_line.contains("\"hold\""), "{plan_line}");
    // Careless input: an unknown kind, a chance above one, flags with a plan file.
    for (args, says) in [
        (
            &["sweep", "--weight", "flood=2"][..],
            "no fault kind \"flood\"; the kinds: partition, hold, crash",
        ),
        (&["sweep", "--weight", "loss"][..], "expected KIND=N"),
        (&["sweep", "--keep", "3/2"][..], "3/2 is not a chance"),
        (
            &["sweep", "--keep", "0.5"][..],
            "write N/M (2/3) or a percent (25%)",
        ),
        (
            &[
                "replay",
                "pipeline",
                "--seed",
                "1",
                "--plan",
                "sim/regressions/pipeline-seed-0.json",
                "--max-faults",
                "1",
            ][..],
            "--max-faults 1 draws a plan, and --plan sim/regressions/pipeline-seed-0.json gives one",
        ),
    ] {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

/// A trace piped into `head` ends the command quietly: no panic on the
/// closed pipe.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["replay", "resilient-client", "--seed", "4", "--trace"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the pipe closes under the writer.
    let out = child.wait_with_output().unwrap();
    assert!(first.contains(" ms  "), "{first}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// A declared point that no seed reached fails a whole sweep (seeds 1 and 3
/// of sequential-parallel never cut a call off at a gather's deadline; 0
/// and 2 do), is only reported with --coverage warn or in a shard, and a
/// merge of shards that together reach it passes.
#[test]
fn a_point_never_reached_fails_the_sweep() {
    let never = [
        "sweep",
        "--scenario",
        "sequential-parallel",
        "--from",
        "1",
        "--seeds",
        "1",
    ];
    let out = sim(&never);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "NOT REACHED: sequential-parallel: no seed reached the reachable point \
             \"async-patterns: partial fan-out answer\" (a gather cut a call off at its \
             deadline): the sweep proves nothing about it"
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("FAIL: 1 seed, 0 violations, traces deterministic, but 1 declared point(s) never reached"),
        "{}",
        stdout(&out)
    );
    let warned = sim(&[&never[..], &["--coverage", "warn"]].concat());
    assert_eq!(warned.status.code(), Some(0), "{}", stdout(&warned));
    assert!(stdout(&warned).contains("NOT REACHED"));
    // Shard 2/2 of seeds 1..=4 holds 2 and 4: reached; shard 1/2 holds 1
    // and 3: not reached, but a shard does not fail for it.
    let dir = scratch("coverage");
    let files: Vec<String> = (1..=2)
        .map(|k| dir.join(format!("{k}.json")).to_str().unwrap().to_string())
        .collect();
    for (k, file) in files.iter().enumerate() {
        let shard = format!("{}/2", k + 1);
        let out = sim(&[
            "sweep",
            "--scenario",
            "sequential-parallel",
            "--from",
            "1",
            "--seeds",
            "4",
            "--shard",
            &shard,
            "--json",
            file,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    }
    let merged = sim(&["merge", &files[0], &files[1]]);
    assert_eq!(merged.status.code(), Some(0), "{}", stdout(&merged));
    assert!(
        stdout(&merged).contains(
            "| sequential-parallel | async-patterns: partial fan-out answer | reachable | 1 of 4 |"
        ),
        "{}",
        stdout(&merged)
    );
    let alone = sim(&["merge", &files[0]]);
    assert_eq!(
        alone.status.code(),
        Some(2),
        "a merge of one of two shards is refused"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--shard auto` in each engine's environment: three jobs of a matrix
/// (our variables), of a Slurm array (from 1, as `--array=1-3`) and of a
/// Kubernetes Indexed Job, each merged, print exactly the single sweep; a
/// missing count is refused by name before any run.
#[test]
fn shards_from_each_engines_environment_merge_to_the_single_sweep() {
    let sweep = ["sweep", "--scenario", "pipeline", "--seeds", "6"];
    let whole = sim(&sweep);
    let dir = scratch("engines");
    // An engine's variables for the job of index i (from 0).
    type Vars = fn(u64) -> Vec<(&'static str, String)>;
    let engines: [(&str, Vars); 3] = [
        ("ours", |i| {
            vec![
                ("ASYNC_PATTERNS_SIM_SHARD_INDEX", i.to_string()),
                ("ASYNC_PATTERNS_SIM_SHARD_COUNT", "3".into()),
            ]
        }),
        ("slurm", |i| {
            vec![
                ("SLURM_ARRAY_TASK_ID", (i + 1).to_string()),
                ("SLURM_ARRAY_TASK_MIN", "1".into()),
                ("SLURM_ARRAY_TASK_MAX", "3".into()),
                ("SLURM_ARRAY_TASK_COUNT", "3".into()),
            ]
        }),
        ("kubernetes", |i| {
            vec![
                ("JOB_COMPLETION_INDEX", i.to_string()),
                ("ASYNC_PATTERNS_SIM_SHARD_COUNT", "3".into()),
            ]
        }),
    ];
    for (engine, vars) in engines {
        let mut files = Vec::new();
        for i in 0..3 {
            let file = dir.join(format!("{engine}-{i}.json"));
            let out = Command::new(env!("CARGO_BIN_EXE_sim"))
                .args(sweep)
                .args(["--shard", "auto", "--json"])
                .arg(&file)
                .env_clear()
                .envs(vars(i))
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                whole.status.code(),
                "{engine} {i}: {}",
                stderr(&out)
            );
            assert!(
                stderr(&out).contains(&format!("--shard auto: shard {}/3", i + 1)),
                "{engine} {i}: {}",
                stderr(&out)
            );
            files.push(file.to_str().unwrap().to_string());
        }
        let paths: Vec<&str> = files.iter().map(String::as_str).collect();
        let merged = sim(&[&["merge"][..], &paths].concat());
        assert_eq!(stdout(&merged), stdout(&whole), "{engine}");
        assert_eq!(merged.status.code(), whole.status.code(), "{engine}");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(sweep)
        .args(["--shard", "auto"])
        .env_clear()
        .env("JOB_COMPLETION_INDEX", "0")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("ASYNC_PATTERNS_SIM_SHARD_COUNT is not set"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(stdout(&refused), "");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `list` shows each scenario's declared points and recovery properties.
#[test]
fn list_shows_points_and_recovery_properties() {
    let out = sim(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for line in [
        "point: reachable \"async-patterns: breaker opened\" (the breaker opened)",
        "point: sometimes \"duplicate dropped\"",
        "eventually: \"drains\", within 3.08s of the last fault's end",
        "eventually: \"whole again\", within 800ms of the last fault's end",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

/// A guided search split in two shards, each writing its record, merges
/// into one report: the runs summed, a shard missing or a sweep's record
/// mixed in refused by name.
#[test]
fn guided_shards_merge_into_one_search() {
    let dir = scratch("guided");
    let file = |k: u64| dir.join(format!("g{k}.json"));
    for k in 1..=2u64 {
        let out = sim(&[
            "sweep",
            "--guided",
            "--scenario",
            "pipeline",
            "--seeds",
            "32",
            "--shard",
            &format!("{k}/2"),
            "--json",
            file(k).to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        assert!(
            stdout(&out).contains(&format!("(shard {k}/2, its own seed ")),
            "{}",
            stdout(&out)
        );
    }
    let merged = sim(&[
        "merge",
        file(1).to_str().unwrap(),
        file(2).to_str().unwrap(),
    ]);
    let text = stdout(&merged);
    assert_eq!(merged.status.code(), Some(0), "{text}\n{}", stderr(&merged));
    assert!(
        text.contains(
            "pipeline: 2 guided searches from exploration seed 0 (its shards, merged): 32 runs"
        ),
        "{text}"
    );
    let twice = sim(&[
        "merge",
        file(1).to_str().unwrap(),
        file(1).to_str().unwrap(),
    ]);
    assert!(
        stderr(&twice).contains("pipeline: shard 1/2 given twice"),
        "{}",
        stderr(&twice)
    );
    assert_eq!(verdict(&merged), "PASS: guided search, 32 runs, 0 failing");
    let one = sim(&["merge", file(1).to_str().unwrap()]);
    assert_eq!(one.status.code(), Some(2));
    assert!(
        stderr(&one).contains("pipeline: shard 2/2 missing (a search in 2 shards merges all 2)"),
        "{}",
        stderr(&one)
    );
    let plain = dir.join("plain.json");
    let sweep = sim(&[
        "sweep",
        "--scenario",
        "pipeline",
        "--seeds",
        "2",
        "--json",
        plain.to_str().unwrap(),
    ]);
    assert!(sweep.status.success());
    let mixed = sim(&["merge", file(1).to_str().unwrap(), plain.to_str().unwrap()]);
    assert_eq!(mixed.status.code(), Some(2));
    assert!(
        stderr(&mixed).contains("merge one kind at a time"),
        "{}",
        stderr(&mixed)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `replay` notes the plan's faults that start after the run ended (they
/// never happened), and only those.
#[test]
fn replay_notes_faults_that_start_after_the_run_ended() {
    let dir = scratch("late-faults");
    let plan = dir.join("late.json");
    let path = plan.to_str().unwrap();
    let replay = |json: &str| {
        std::fs::write(&plan, json).unwrap();
        sim(&["replay", "pipeline", "--seed", "3", "--plan", path])
    };
    let faults = |faults: &str| format!(r#"{{"faults": [{faults}]}}"#);
    let early = r#"{"kind": "crash", "target": "consumer", "at_ms": 500, "for_ms": 100}"#;
    let late = r#"{"kind": "crash", "target": "consumer", "at_ms": 100000, "for_ms": 10}"#;
    let out = replay(&faults(&format!("{early}, {late}")));
    let text = stdout(&out);
    assert!(
        text.contains("note: 1 of the plan's 2 faults start after the run ended"),
        "{text}"
    );
    assert!(verdict(&out).starts_with("PASS"), "{text}");
    // A plan whose faults all happen: no note.
    let out = replay(&faults(early));
    assert!(!stdout(&out).contains("note:"), "{}", stdout(&out));
    // A site entry that opens after the end: never fired.
    let out = replay(
        r#"{"faults": [], "sites": [{"site": "store sync", "action": "fail", "from_ms": 100000}]}"#,
    );
    let text = stdout(&out);
    assert!(
        text.contains("note: 1 of the plan's 1 site entries open (from_ms) after the run ended"),
        "{text}"
    );
    // A shrink of a seed that passes under its own plan says that a plan
    // found elsewhere needs its file; with the file, it does not.
    let small = dir.join("small.json");
    let shrink = |with_plan: &[&str]| {
        let mut args = vec!["shrink", "pipeline", "--seed", "3", "--out"];
        args.push(small.to_str().unwrap());
        args.extend_from_slice(with_plan);
        stdout(&sim(&args))
    };
    let text = shrink(&[]);
    assert!(
        text.contains("PASS: pipeline seed 3, nothing to shrink"),
        "{text}"
    );
    assert!(text.contains("needs its --plan FILE"), "{text}");
    let text = shrink(&["--plan", path]);
    assert!(!text.contains("needs its --plan"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A guided search's `--from` is one exploration seed, any value: the
/// largest is no range running past the last seed.
#[test]
fn a_guided_search_starts_from_any_exploration_seed() {
    let out = sim(&[
        "sweep",
        "--guided",
        "--scenario",
        "pipeline",
        "--seeds",
        "4",
        "--from",
        "18446744073709551615",
        "--coverage",
        "warn",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("guided search from exploration seed 18446744073709551615: 4 runs"),
        "{text}"
    );
}
