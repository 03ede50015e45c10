//! The orders service: `POST /orders` as an axum [`Router`]
//! ([`OrdersServer::router`]), idempotent by the `Idempotency-Key` header.
//! Production serves the router with `axum::serve`; the simulation serves
//! the same router with `async_patterns_sim::net::http::serve_local`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /orders`, a new key, a JSON [`NewOrder`] | `201 Created`, `{"id": N}`: stored |
//! | the same key and body again | `200 OK`, the first answer's `{"id": N}`: nothing stored |
//! | the same key, another body | `422`: a key names one order |
//! | no key, or a body that is not an order | `400` |
//! | a seeded share, when configured flaky | `503` before anything is stored: safe to retry |
//!
//! The store is a trait ([`OrderStore`]) with an in-memory implementation
//! behind a shared handle ([`MemoryStore`]): the server holds a clone, so
//! whoever created the store (a test, the simulation) keeps it when the
//! server goes away. That is how the simulation gives the server a
//! "database" that survives its crash.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_patterns::rng::SplitMix64;
use axum::Router;
use axum::routing::any;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

/// The header that makes a `POST /orders` idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The largest request body the server reads.
pub const MAX_BODY: usize = 16 * 1024;

/// An order as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// What is ordered.
    pub item: String,
    /// How many.
    pub quantity: u32,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Its id, given by the store (from 1, in the order of storing).
    pub id: u64,
    /// The idempotency key it was stored under.
    pub key: String,
    /// What was ordered.
    pub order: NewOrder,
}

/// What [`OrderStore::insert_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The key was new: the order was stored with this id.
    Created(u64),
    /// The key was stored before, with the same order: nothing was stored.
    Existing(u64),
    /// The key was stored before with a different order: nothing was
    /// stored.
    Conflict(u64),
}

/// Where orders are kept. `insert_once` must be atomic: two requests with
/// one key store one order, however they interleave.
pub trait OrderStore: Send + Sync + 'static {
    /// Stores `order` under `key`, unless `key` is already stored.
    fn insert_once(&self, key: &str, order: &NewOrder) -> Stored;
}

/// An in-memory [`OrderStore`]. Cheap to clone: clones share the orders,
/// so the creator of a store keeps it when a server holding a clone stops
/// (or crashes, in the simulation).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Orders>>,
}

#[derive(Debug, Default)]
struct Orders {
    by_key: BTreeMap<String, Order>,
    last_id: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Every stored order, by id.
    pub fn orders(&self) -> Vec<Order> {
        let mut orders: Vec<Order> = self.lock().by_key.values().cloned().collect();
        orders.sort_by_key(|o| o.id);
        orders
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Orders> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl OrderStore for MemoryStore {
    fn insert_once(&self, key: &str, order: &NewOrder) -> Stored {
        let mut orders = self.lock();
        if let Some(existing) = orders.by_key.get(key) {
            return if existing.order == *order {
                Stored::Existing(existing.id)
            } else {
                Stored::Conflict(existing.id)
            };
        }
        orders.last_id += 1;
        let id = orders.last_id;
        orders.by_key.insert(
            key.to_string(),
            Order {
                id,
                key: key.to_string(),
                order: order.clone(),
            },
        );
        Stored::Created(id)
    }
}

/// How the server behaves: its work time per request and how flaky it is.
/// Every draw comes from `seed` and the request's arrival number, so a
/// simulation replays them exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// The share of requests, in thousandths, answered `503` (before
    /// anything is stored).
    pub fail_per_mille: u32,
    /// Each request works for a time drawn from `min..=max` before it is
    /// answered (and before its order is stored).
    pub work: (Duration, Duration),
    /// Seeds the draws.
    pub seed: u64,
}

impl ServerConfig {
    /// A server that never fails and answers at once.
    pub fn reliable() -> Self {
        ServerConfig {
            fail_per_mille: 0,
            work: (Duration::ZERO, Duration::ZERO),
            seed: 0,
        }
    }
}

/// What the server did with a request, for its observer (logs, metrics, a
/// simulation's trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent<'a> {
    /// A new order was stored.
    Stored {
        /// Its idempotency key.
        key: &'a str,
        /// Its id.
        id: u64,
        /// The order.
        order: &'a NewOrder,
    },
    /// A repeated key: the first answer was given again.
    Replayed {
        /// The key.
        key: &'a str,
        /// The order it names.
        id: u64,
    },
    /// A request was answered with an error status, nothing stored.
    Rejected {
        /// The key, if it had one.
        key: Option<&'a str>,
        /// The status.
        status: u16,
        /// Why.
        why: &'a str,
    },
}

impl fmt::Display for ServerEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerEvent::Stored { key, id, order } => write!(
                f,
                "stored order {id} for key {key} ({} x{})",
                order.item, order.quantity
            ),
            ServerEvent::Replayed { key, id } => {
                write!(f, "key {key} seen before: answered order {id} again")
            }
            ServerEvent::Rejected { key, status, why } => {
                write!(f, "{status} for key {}: {why}", key.unwrap_or("(none)"))
            }
        }
    }
}

type ServerObserver = Box<dyn Fn(&ServerEvent<'_>) + Send + Sync>;

/// The orders service over a store.
pub struct OrdersServer<S> {
    store: S,
    config: ServerConfig,
    requests: AtomicU64,
    observer: Option<ServerObserver>,
}

impl<S: OrderStore> OrdersServer<S> {
    /// A server over `store`.
    pub fn new(store: S, config: ServerConfig) -> Self {
        OrdersServer {
            store,
            config,
            requests: AtomicU64::new(0),
            observer: None,
        }
    }

    /// Calls `observer` with every request's outcome.
    #[must_use]
    pub fn with_observer(
        mut self,
        observer: impl Fn(&ServerEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The service as an axum [`Router`]: `/orders`, every method (a
    /// method other than `POST` is answered `405` by [`handle`](Self::handle),
    /// which tells the observer), and every other path `404` the same way.
    /// Serve it as any router is served.
    pub fn router(self) -> Router {
        let server = Arc::new(self);
        let answer = move |request: axum::extract::Request| {
            let server = server.clone();
            async move { server.handle(request).await }
        };
        Router::new()
            .route("/orders", any(answer.clone()))
            .fallback(answer)
    }

    /// Answers one request (see the [module docs](self) for the table).
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if request.uri().path() != "/orders" {
            return self.reject(None, StatusCode::NOT_FOUND, "no such resource");
        }
        if request.method() != Method::POST {
            return self.reject(None, StatusCode::METHOD_NOT_ALLOWED, "POST only");
        }
        let key = match request.headers().get(IDEMPOTENCY_KEY).map(|k| k.to_str()) {
            Some(Ok(key)) if !key.is_empty() => key.to_string(),
            _ => {
                return self.reject(
                    None,
                    StatusCode::BAD_REQUEST,
                    "an Idempotency-Key header is required",
                );
            }
        };
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => {
                let why = format!("reading the body: {e}");
                return self.reject(Some(&key), StatusCode::BAD_REQUEST, &why);
            }
        };
        let order: NewOrder = match serde_json::from_slice(&body) {
            Ok(order) => order,
            Err(e) => {
                let why = format!("not an order: {e}");
                return self.reject(Some(&key), StatusCode::BAD_REQUEST, &why);
            }
        };
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut draws = SplitMix64::derive(self.config.seed, n);
        let (min, max) = self.config.work;
        let work = draws.between(
            u64::try_from(min.as_nanos()).unwrap_or(u64::MAX),
            u64::try_from(max.max(min).as_nanos()).unwrap_or(u64::MAX),
        );
        if work > 0 {
            tokio::time::sleep(Duration::from_nanos(work)).await;
        }
        if draws.between(0, 999) < u64::from(self.config.fail_per_mille) {
            return self.reject(Some(&key), StatusCode::SERVICE_UNAVAILABLE, "overloaded");
        }
        match self.store.insert_once(&key, &order) {
            Stored::Created(id) => {
                self.notify(&ServerEvent::Stored {
                    key: &key,
                    id,
                    order: &order,
                });
                json(StatusCode::CREATED, &Placed { id })
            }
            Stored::Existing(id) => {
                self.notify(&ServerEvent::Replayed { key: &key, id });
                json(StatusCode::OK, &Placed { id })
            }
            Stored::Conflict(id) => {
                let why = format!("the key names order {id}, which differs");
                self.reject(Some(&key), StatusCode::UNPROCESSABLE_ENTITY, &why)
            }
        }
    }

    fn reject(&self, key: Option<&str>, status: StatusCode, why: &str) -> Response<Full<Bytes>> {
        self.notify(&ServerEvent::Rejected {
            key,
            status: status.as_u16(),
            why,
        });
        json(status, &Problem { error: why })
    }

    fn notify(&self, event: &ServerEvent<'_>) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }
}

impl<S> fmt::Debug for OrdersServer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrdersServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The body of a `201` or `200`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placed {
    /// The order's id.
    pub id: u64,
}

#[derive(Serialize)]
struct Problem<'a> {
    error: &'a str,
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(key: Option<&str>, body: &str) -> Request<Full<Bytes>> {
        let mut request = Request::post("/orders");
        if let Some(key) = key {
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        request
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    }

    async fn answer(server: &OrdersServer<MemoryStore>, r: Request<Full<Bytes>>) -> (u16, String) {
        let response = server.handle(r).await;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeated_key_gets_the_first_answer_and_stores_nothing() {
        let store = MemoryStore::new();
        let server = OrdersServer::new(store.clone(), ServerConfig::reliable());
        let book = r#"{"item":"book","quantity":2}"#;
        assert_eq!(
            answer(&server, post(Some("k1"), book)).await,
            (201, r#"{"id":1}"#.into())
        );
        assert_eq!(
            answer(&server, post(Some("k1"), book)).await,
            (200, r#"{"id":1}"#.into())
        );
        assert_eq!(answer(&server, post(Some("k2"), book)).await.0, 201);
        let other = r#"{"item":"pen","quantity":1}"#;
        assert_eq!(answer(&server, post(Some("k1"), other)).await.0, 422);
        assert_eq!(answer(&server, post(None, book)).await.0, 400);
        assert_eq!(answer(&server, post(Some("k3"), "{")).await.0, 400);
        let ids: Vec<(u64, String)> = store.orders().into_iter().map(|o| (o.id, o.key)).collect();
        assert_eq!(ids, [(1, "k1".to_string()), (2, "k2".to_string())]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flaky_server_fails_its_seeded_share_before_storing() {
        let store = MemoryStore::new();
        let config = ServerConfig {
            fail_per_mille: 500,
            work: (Duration::from_millis(1), Duration::from_millis(5)),
            seed: 9,
        };
        let server = OrdersServer::new(store.clone(), config);
        let mut unavailable = 0;
        for i in 0..40 {
            let body = format!(r#"{{"item":"b{i}","quantity":1}}"#);
            let (status, _) = answer(&server, post(Some(&format!("k{i}")), &body)).await;
            assert!(status == 201 || status == 503, "{status}");
            unavailable += u32::from(status == 503);
        }
        assert!((5..=35).contains(&unavailable), "{unavailable} of 40");
        assert_eq!(store.orders().len(), 40 - unavailable as usize);
    }
}
