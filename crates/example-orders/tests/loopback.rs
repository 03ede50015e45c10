//! The same server and client on real TCP (tokio, 127.0.0.1): the
//! production path, compiled and run by the same `cargo test` as the
//! simulation. No timed assertions and no sleeps; a hang fails within
//! seconds.

use std::time::Duration;

use example_orders::client::{ClientConfig, OrdersClient};
use example_orders::server::{MemoryStore, NewOrder, OrdersServer, ServerConfig};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Fails the test, rather than hanging it, if the exchange never ends.
const HANG_GUARD: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_placed_once_over_loopback() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let store = MemoryStore::new();
    let router = OrdersServer::new(store.clone(), ServerConfig::reliable()).router();
    // The production path: axum::serve and hyper-util's HttpConnector.
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    // Production seeds its jitter from entropy; a generous deadline, since
    // a busy machine's loopback is no simulation.
    let mut config = ClientConfig::new(async_patterns_tokio::entropy_seed());
    config.deadline = Duration::from_secs(10);
    config.attempt_timeout = Duration::from_secs(5);
    let http = Client::builder(TokioExecutor::new()).build_http();
    let client = OrdersClient::new(http, &format!("http://{addr}"), config).unwrap();
    let work = async {
        let mut ids = Vec::new();
        for i in 0..5u32 {
            let order = NewOrder {
                item: format!("book-{i}"),
                quantity: i + 1,
            };
            let placed = client.place(&format!("order-{i}"), &order).await.unwrap();
            assert!(placed.created, "{placed:?}");
            ids.push(placed.id);
        }
        // The same key again (a caller retrying a call it lost the answer
        // to): the first answer, nothing stored.
        let again = NewOrder {
            item: "book-0".into(),
            quantity: 1,
        };
        let replayed = client.place("order-0", &again).await.unwrap();
        assert_eq!((replayed.id, replayed.created), (ids[0], false));
        ids
    };
    let ids = tokio::time::timeout(HANG_GUARD, work)
        .await
        .expect("the orders were placed before the hang guard");
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    let stored: Vec<(u64, String)> = store.orders().into_iter().map(|o| (o.id, o.key)).collect();
    assert_eq!(
        stored,
        (1..=5)
            .map(|id| (id, format!("order-{}", id - 1)))
            .collect::<Vec<_>>()
    );
    server.abort();
}
