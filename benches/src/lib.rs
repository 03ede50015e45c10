//! Benchmarks of async-patterns against the crates people use today, and the
//! `baseline` tool that records and gates them (see `src/bin/baseline.rs`).
