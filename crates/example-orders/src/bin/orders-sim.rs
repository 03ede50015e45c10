//! `orders-sim`: the orders scenario's command line (`list`, `sweep`,
//! `replay`, `shrink`, `merge`), from async-patterns-sim.

use std::process::ExitCode;

use example_orders::sim::Orders;

fn main() -> ExitCode {
    async_patterns_sim::cli::App::new(&[&Orders])
        .replay_command("cargo run -p example-orders --release --bin orders-sim --")
        .regressions("crates/example-orders/regressions")
        .main()
}
