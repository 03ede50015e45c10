//! The `http` feature's adapters under faults: a real axum `Router` served
//! with `serve_local`, a real hyper-util pooled `Client` over `Connector`,
//! partitions, holds, loss and crashes of the server, every seed run twice
//! in a parallel sweep (`check_seeds`): the traces must match, and the
//! invariants hold.

use std::time::Duration;

use async_patterns_sim::net::http::{client, serve_local};
use async_patterns_sim::testing::check_seeds;
use async_patterns_sim::{Ctx, FaultPlan, RunInfo, Scenario, Targets, Violation, now, run};
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// A client asks an axum server for `/ping`, four calls at once every
/// 100 ms for 6 s (each call under a 300 ms timeout), then, after the
/// faults, until one answers.
/// The server's `/hits` counter lives outside the host (it survives a
/// crash).
struct PingHttp;

#[derive(Default)]
struct Record {
    /// Each call: when it ended and its answer (or why not).
    calls: Vec<(Duration, Result<String, String>)>,
    /// The last call, after the faults: did one answer?
    recovered: bool,
}

const PORT: u16 = 8080;

impl Scenario for PingHttp {
    type Record = Record;
    fn name(&self) -> &str {
        "ping-http"
    }
    fn about(&self) -> &str {
        "an axum Router and a hyper-util Client on turmoil under faults"
    }
    fn targets(&self) -> Targets {
        Targets::new()
            .link("client", "server")
            .host("server", "its hit counter")
    }
    fn build(&self, ctx: &Ctx<Record>, sim: &mut turmoil::Sim<'_>) {
        let c = ctx.clone();
        sim.host("server", move || {
            let ctx = c.clone();
            async move {
                let router = Router::new()
                    .route("/ping", get(|| async { "pong" }))
                    .route(
                        "/hits",
                        post(|State(ctx): State<Ctx<Record>>| async move {
                            ctx.log("server: hit");
                            "hit"
                        }),
                    )
                    .with_state(ctx);
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
                serve_local(listener, router).await?;
                Ok(())
            }
        });
        let ctx = ctx.clone();
        sim.client("client", async move {
            let client = client::<Full<Bytes>>();
            let ping = || async {
                let call = async {
                    let uri: http::Uri = format!("http://server:{PORT}/ping").parse().unwrap();
                    let response = client.get(uri).await.map_err(|e| format!("{e:?}"))?;
                    let status = response.status();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    let body = String::from_utf8_lossy(&body).into_owned();
                    if status.is_success() {
                        Ok(body)
                    } else {
                        Err(format!("{status}: {body}"))
                    }
                };
                match tokio::time::timeout(Duration::from_millis(300), call).await {
                    Ok(answer) => answer,
                    Err(_) => Err("timed out".to_string()),
                }
            };
            while now() < Duration::from_secs(6) {
                // Four calls at once: four pooled connections open when a
                // crash drops the server's tasks.
                let answers = futures::future::join_all((0..4).map(|_| ping())).await;
                for answer in answers {
                    ctx.log(format!("client: {answer:?}"));
                    ctx.record().calls.push((now(), answer));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // After every fault (they end by 5 s): the pool must not keep
            // handing out connections to a crashed server's old self.
            for _ in 0..20 {
                if ping().await.is_ok() {
                    ctx.record().recovered = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        });
    }
    fn check(&self, run: &RunInfo, r: &Record) -> Vec<Violation> {
        let mut v = Vec::new();
        for (at, answer) in &r.calls {
            if let Ok(body) = answer
                && body != "pong"
            {
                v.push(Violation::new("answers are pongs", body.clone()).at(*at));
            }
        }
        // Calls made well clear of every fault answer (the pool recovers).
        let quiet = |t: Duration| {
            !run.plan.touches(
                |_| true,
                t.saturating_sub(Duration::from_millis(400)),
                t,
                Duration::from_millis(400),
            )
        };
        for (at, answer) in &r.calls {
            if answer.is_err() && quiet(*at) {
                v.push(Violation::new("answered away from faults", format!("{answer:?}")).at(*at));
            }
        }
        if !r.recovered {
            v.push(Violation::new(
                "recovers",
                "no call answered after the faults",
            ));
        }
        v
    }
}

#[test]
fn an_axum_router_and_a_hyper_util_client_keep_determinism_under_crashes() {
    // 48 seeds, each run twice, on every core: the run-twice check sees any
    // order that depends on the process (tokio::spawn, hash order).
    check_seeds(&PingHttp, 0..48);
    // The sweep had crashes in it, and calls that failed under them.
    let plans: Vec<FaultPlan> = (0..48).map(|seed| PingHttp.swarm().plan(seed)).collect();
    assert!(
        plans
            .iter()
            .filter(|p| p.of(async_patterns_sim::FaultKind::Crash).count() > 0)
            .count()
            > 20
    );
    let failed = (0..8u64)
        .map(|seed| run(&PingHttp, seed, &plans[seed as usize]).unwrap())
        .filter(|out| out.trace.iter().any(|l| l.contains("client: Err(")))
        .count();
    assert!(failed > 0, "no call failed: the faults did not reach HTTP");
}

/// A refused connection names the host.
#[test]
fn a_connect_error_names_the_host() {
    struct Nobody;
    impl Scenario for Nobody {
        type Record = Vec<String>;
        fn name(&self) -> &str {
            "nobody"
        }
        fn about(&self) -> &str {
            ""
        }
        fn build(&self, ctx: &Ctx<Vec<String>>, sim: &mut turmoil::Sim<'_>) {
            sim.host("server", || async {
                std::future::pending::<()>().await;
                Ok(())
            });
            let ctx = ctx.clone();
            sim.client("client", async move {
                let client = client::<Full<Bytes>>();
                let err = client
                    .get("http://server:8080/".parse().unwrap())
                    .await
                    .unwrap_err();
                let mut chain = String::new();
                let mut e: Option<&dyn std::error::Error> = Some(&err);
                while let Some(cause) = e {
                    chain += &format!("{cause}; ");
                    e = cause.source();
                }
                ctx.record().push(chain);
                Ok(())
            });
        }
        fn check(&self, _: &RunInfo, r: &Vec<String>) -> Vec<Violation> {
            r.iter()
                .filter(|e| !e.contains("connecting to server:8080"))
                .map(|e| Violation::new("names the host", e.clone()))
                .collect()
        }
    }
    let out = run(&Nobody, 0, &FaultPlan::default()).unwrap();
    assert!(out.violations.is_empty(), "{:?}", out.violations);
}

/// `Connector`'s stream as hyper drives it: what the client writes arrives,
/// its shutdown reaches the server as the end of the stream (a server that
/// reads to the end answers only then), and the answer comes back.
#[test]
fn a_connected_stream_carries_bytes_both_ways_and_its_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower::Service;
    struct Echo;
    impl Scenario for Echo {
        type Record = Vec<String>;
        fn name(&self) -> &str {
            "echo-to-end"
        }
        fn about(&self) -> &str {
            ""
        }
        fn build(&self, ctx: &Ctx<Vec<String>>, sim: &mut turmoil::Sim<'_>) {
            sim.host("server", || async {
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 7)).await?;
                let (mut s, _) = listener.accept().await?;
                let mut got = Vec::new();
                s.read_to_end(&mut got).await?;
                s.write_all(&got).await?;
                Ok(())
            });
            let ctx = ctx.clone();
            sim.client("client", async move {
                let stream = async_patterns_sim::net::http::Connector
                    .call("http://server:7/".parse().unwrap())
                    .await?;
                let mut io = hyper_util::rt::TokioIo::new(stream);
                io.write_all(b"ping").await?;
                io.flush().await?;
                io.shutdown().await?;
                let mut back = Vec::new();
                io.read_to_end(&mut back).await?;
                ctx.record()
                    .push(String::from_utf8_lossy(&back).into_owned());
                Ok(())
            });
        }
        fn check(&self, _: &RunInfo, r: &Vec<String>) -> Vec<Violation> {
            if *r == ["ping"] {
                Vec::new()
            } else {
                vec![Violation::new("echoed", format!("{r:?}"))]
            }
        }
    }
    let out = run(&Echo, 0, &FaultPlan::default()).unwrap();
    assert!(out.violations.is_empty(), "{:?}", out.violations);
}
