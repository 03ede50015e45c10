//! The harness catches bugs: each deliberately broken pattern (`--sabotage`,
//! which only this test and the README's demonstration use) makes a sweep
//! of the `sim` binary report a violation, exit non-zero, and print a replay
//! line; running that line reproduces the violation. The same sweep without
//! the sabotage passes, so the violations are the sabotage's doing.

use std::path::PathBuf;
use std::process::{Command, Output};

use clap::ValueEnum;
use sim::Sabotage;

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

/// A fresh scratch folder of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-meta-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_sabotage_is_caught_and_replays() {
    for sabotage in Sabotage::value_variants() {
        let (name, scenario) = (sabotage.name(), sabotage.scenario());
        let clean = sim(&["sweep", "--scenario", scenario, "--seeds", "4"]);
        assert!(
            clean.status.success(),
            "{scenario} fails without a sabotage:\n{}",
            stdout(&clean)
        );

        let broken = sim(&["sweep", "--seeds", "4", "--sabotage", &name]);
        let text = stdout(&broken);
        assert_eq!(
            broken.status.code(),
            Some(1),
            "{name} was not caught:\n{text}"
        );
        assert!(text.contains(&format!("FAILED {scenario} seed")), "{text}");
        let replay = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("replay: cargo run -p sim --release -- ")
            })
            .unwrap_or_else(|| panic!("no replay line:\n{text}"));
        assert!(replay.contains(&format!("--sabotage {name}")), "{replay}");

        let again = sim(&replay.split_whitespace().collect::<Vec<_>>());
        let text = stdout(&again);
        assert_eq!(again.status.code(), Some(1), "the replay passed:\n{text}");
        assert!(text.contains("VIOLATION: "), "{text}");
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
            &["sweep", "--seeds", "1000000000"],
            "more than one sweep holds",
        ),
    ] {
        let out = sim(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// A plan with a field the harness does not know (a typo, or a field of a
/// newer version) is refused, naming the field, not silently run without it.
#[test]
fn a_plan_with_an_unknown_field_is_refused() {
    let dir = scratch("unknown-field");
    for (name, plan) in [
        (
            "in-fault.json",
            r#"{"faults":[{"kind":"partition","at_ms":100,"for_ms":50,"host":"server"}]}"#,
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
