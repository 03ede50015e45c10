//! Our catalogue of simulated scenarios, built on the
//! [`async_patterns_sim`] library like any user's: each file holds one
//! scenario's hosts, workload and invariants, and nothing of the harness.
//! The `sim` binary hands [`CATALOGUE`] to the library's command line.

pub mod aggregator;
pub mod bulkhead;
pub mod kv;
pub mod pipeline;
pub mod resilient_client;
pub mod sequential_parallel;
pub mod wire;

use async_patterns_sim::AnyScenario;

/// Every scenario, in the order `list` and `sweep` show them.
pub const CATALOGUE: [&dyn AnyScenario; 6] = [
    &resilient_client::ResilientClient,
    &aggregator::Aggregator,
    &bulkhead::Bulkhead,
    &sequential_parallel::SequentialParallel,
    &pipeline::Pipeline,
    &kv::KvStore,
];

/// A client and its one server: faults hit the link between them, and the
/// server may crash, losing the requests it has in flight.
pub fn client_server(client: &str, server: &str) -> async_patterns_sim::Targets {
    async_patterns_sim::Targets::new()
        .link(client, server)
        .host(server, "nothing: the requests in flight are lost")
}

/// The swarm our scenarios have always drawn: a partition, a hold, a crash
/// and loss, each left out with chance 1/3, on the scenario's own targets
/// (`partition` also takes the loss). Kept, so every seed's plan (and so
/// its trace snapshot) is what it was before the harness became a library.
pub fn classic_swarm(partition: &str, hold: &str, crash: &str) -> async_patterns_sim::Swarm {
    use async_patterns_sim::FaultKind::{Crash, Hold, Loss, Partition};
    async_patterns_sim::Swarm::new(vec![
        (Partition, partition.to_string()),
        (Hold, hold.to_string()),
        (Crash, crash.to_string()),
        (Loss, partition.to_string()),
    ])
}
