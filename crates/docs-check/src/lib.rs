//! The Rust examples of the project's documents, compiled (and run, unless
//! marked `no_run` or `ignore`) by `cargo test --workspace` as doctests:
//! a snippet that stops compiling fails the tests, so the README cannot
//! show code that does not work. Code blocks in other languages (`sh`,
//! `console`, `text`, `toml`) are not Rust and are skipped.

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct Readme;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/simulation.md")]
pub struct Simulation;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/tower.md")]
pub struct Tower;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/patterns.md")]
pub struct Patterns;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/checks.md")]
pub struct Checks;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/benchmarks.md")]
pub struct Benchmarks;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/lab.md")]
pub struct Lab;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/contributing.md")]
pub struct Contributing;

#[cfg(doctest)]
#[doc = include_str!("../../example-orders/README.md")]
pub struct ExampleOrders;
