//! The adaptive (AIMD) limit against a sequential reference model over
//! random admissions, outcomes with latencies, drops and clock moves: every
//! admission decision and every limit must equal the model's, and the
//! bulkhead bound is checked directly. Failing cases persist in
//! `adaptive_model.proptest-regressions`.

use std::time::Duration;

use async_patterns::adaptive::{AdaptiveConfig, AdaptiveLimit, AdaptivePermit};
use async_patterns::time::{Instant, ManualClock};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Op {
    Acquire,
    Succeed(usize),
    Fail(usize),
    Drop(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        3 => (0usize..32).prop_map(Op::Succeed),
        1 => (0usize..32).prop_map(Op::Fail),
        1 => (0usize..32).prop_map(Op::Drop),
        2 => (0u64..=40).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone)]
struct Params {
    min: u32,
    initial: u32,
    max: u32,
    increase: u32,
    /// The backoff ratio as an exact fraction (numerator, denominator):
    /// the model shrinks the limit in integers; the code is handed the
    /// ratio as an `f64`.
    backoff: (u32, u32),
    target_ms: Option<u64>,
}

fn params() -> impl Strategy<Value = Params> {
    // Small limits, where the minimum and the maximum bind often, and large
    // ones, where a ratio like 99/100 lands on a whole number (100 → 99).
    let scale = prop_oneof![
        (1u32..=4, 0u32..=8, 0u32..=12, 1u32..=3),
        (1u32..=4, 0u32..=400, 0u32..=400, 1u32..=60),
    ];
    (
        scale,
        prop_oneof![
            Just((1, 2)),
            Just((3, 4)),
            Just((9, 10)),
            Just((99, 100)),
            Just((7, 10))
        ],
        prop::option::of(1u64..=30),
    )
        .prop_map(|((min, a, b, increase), backoff, target_ms)| Params {
            min,
            initial: min + a.min(b),
            max: min + a.max(b),
            increase,
            backoff,
            target_ms,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn adaptive_limit_matches_reference_model(p in params(), ops in prop::collection::vec(op(), 1..120)) {
        let mut b = AdaptiveConfig::builder()
            .limits(p.min, p.initial, p.max)
            .increase(p.increase)
            .backoff(f64::from(p.backoff.0) / f64::from(p.backoff.1));
        if let Some(ms) = p.target_ms {
            b = b.latency_target(Duration::from_millis(ms));
        }
        let clock = ManualClock::new();
        let limit = AdaptiveLimit::new(b.build().unwrap(), clock.clone());
        let mut held: Vec<AdaptivePermit<'_, ManualClock>> = Vec::new();
        // The model: the limit, and each held call's start in ms.
        let (mut m_limit, mut m_held, mut now) = (p.initial, Vec::<u64>::new(), 0u64);
        let decrease = |l: u32| (l * p.backoff.0 / p.backoff.1).max(p.min);
        for op in ops {
            match op {
                Op::Acquire => {
                    let admit = (m_held.len() as u32) < m_limit;
                    let got = limit.try_acquire();
                    prop_assert_eq!(got.is_ok(), admit, "admission at limit {}", m_limit);
                    if let Ok(permit) = got {
                        held.push(permit);
                        m_held.push(now);
                        prop_assert!(m_held.len() as u32 <= m_limit && m_limit <= p.max);
                    }
                }
                Op::Succeed(i) | Op::Fail(i) | Op::Drop(i) if !held.is_empty() => {
                    let i = i % held.len();
                    let permit = held.remove(i);
                    let started = m_held.remove(i);
                    let busy = (m_held.len() as u32 + 1) * 2 >= m_limit;
                    let slow = p.target_ms.is_some_and(|t| now - started > t);
                    match op {
                        Op::Succeed(_) => {
                            permit.success();
                            if slow {
                                m_limit = decrease(m_limit);
                            } else if busy {
                                m_limit = (m_limit + p.increase).min(p.max);
                            }
                        }
                        Op::Fail(_) => {
                            permit.failure();
                            m_limit = decrease(m_limit);
                        }
                        _ => drop(permit),
                    }
                }
                Op::Advance(ms) => {
                    now += ms;
                    clock.advance_to(Instant::from_nanos(now * 1_000_000));
                }
                _ => {}
            }
            prop_assert_eq!(limit.limit(), m_limit);
            prop_assert_eq!(limit.in_flight(), m_held.len() as u32);
            prop_assert!(p.min <= m_limit && m_limit <= p.max);
        }
    }
}
