//! `sim`: our catalogue on the library's command line (`list`, `sweep`,
//! `replay`, `shrink`, `merge`; `--help` says more).

use std::process::ExitCode;

fn main() -> ExitCode {
    async_patterns_sim::cli::App::new(&sim::CATALOGUE)
        .replay_command("cargo run -p sim --release --")
        .regressions("sim/regressions")
        .main()
}
