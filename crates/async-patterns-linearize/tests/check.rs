//! The checker against hand-made histories and against a brute-force
//! reference (every order of the operations that respects real time).

use async_patterns_linearize::models::{KeyValue, KvOp, KvOut, Register, RegisterOp};
use async_patterns_linearize::{Minimal, Model, Op, Verdict, check, minimal};
use proptest::prelude::*;

const BUDGET: u64 = 1_000_000;

fn w(client: u64, v: u64, call: u64, ret: u64) -> Op<RegisterOp, Option<u64>> {
    Op::returned(client, RegisterOp::Write(v), call, ret, None)
}

fn r(client: u64, seen: u64, call: u64, ret: u64) -> Op<RegisterOp, Option<u64>> {
    Op::returned(client, RegisterOp::Read, call, ret, Some(seen))
}

fn verdict(history: &[Op<RegisterOp, Option<u64>>]) -> Verdict {
    check(&Register, history, BUDGET)
}

#[test]
fn a_sequential_history_that_follows_the_model_is_linearizable() {
    let h = [w(1, 1, 0, 1), r(2, 1, 2, 3), w(1, 2, 4, 5), r(2, 2, 6, 7)];
    assert_eq!(verdict(&h), Verdict::Linearizable);
    assert_eq!(verdict(&[]), Verdict::Linearizable);
}

#[test]
fn a_read_of_an_overwritten_value_after_the_write_returned_is_not() {
    let h = [w(1, 1, 0, 1), w(1, 2, 2, 3), r(2, 1, 4, 5)];
    let Verdict::NotLinearizable(wit) = verdict(&h) else {
        panic!("{:?}", verdict(&h));
    };
    assert_eq!(wit.longest_prefix, [0, 1]);
    assert_eq!(wit.stuck, Some(2));
    // Overlapping the second write, it may have come first.
    let h = [w(1, 1, 0, 1), w(1, 2, 2, 6), r(2, 1, 4, 5)];
    assert_eq!(verdict(&h), Verdict::Linearizable);
}

#[test]
fn the_witness_is_the_first_longest_order_found() {
    // Both writes overlap, then a read of a value neither wrote: the search
    // reaches the read after [w1, w2] first, and later after [w2, w1], as
    // long: it reports the first.
    let h = [w(1, 1, 0, 5), w(2, 2, 0, 5), r(3, 3, 6, 7)];
    let Verdict::NotLinearizable(wit) = verdict(&h) else {
        panic!("{:?}", verdict(&h));
    };
    assert_eq!(wit.longest_prefix, [0, 1]);
    assert_eq!(wit.stuck, Some(2));
}

#[test]
fn an_operation_that_returns_as_another_is_called_overlaps_it() {
    // The read is called at the instant the write returns: either order.
    let h = [w(1, 1, 0, 5), r(2, 0, 5, 6)];
    assert_eq!(verdict(&h), Verdict::Linearizable);
    let h = [w(1, 1, 0, 5), r(2, 0, 6, 7)];
    assert!(matches!(verdict(&h), Verdict::NotLinearizable(_)));
}

#[test]
fn an_unknown_outcome_may_have_taken_effect_or_not_at_any_time_after_its_call() {
    let timed_out = Op::unknown(1, RegisterOp::Write(7), 10);
    // Read before its call: it cannot have happened yet.
    let before = [timed_out.clone(), r(2, 7, 0, 5)];
    assert!(matches!(verdict(&before), Verdict::NotLinearizable(_)));
    // Long after: 7 (it happened) or 0 (it did not), both fine...
    for seen in [0, 7] {
        let h = [timed_out.clone(), r(2, seen, 100, 101)];
        assert_eq!(verdict(&h), Verdict::Linearizable, "read {seen}");
    }
    // ...but not 7 and then 0: it cannot be undone.
    let h = [timed_out.clone(), r(2, 7, 100, 101), r(2, 0, 102, 103)];
    assert!(matches!(verdict(&h), Verdict::NotLinearizable(_)));
}

#[test]
fn an_append_applied_twice_is_caught_where_a_write_would_not_be() {
    let put = |c, k: &str, v: &str, a, b| {
        Op::returned(c, KvOp::Append(k.into(), v.into()), a, b, KvOut::Done)
    };
    let get = |c, k: &str, v: Option<&str>, a, b| {
        Op::returned(
            c,
            KvOp::Get(k.into()),
            a,
            b,
            KvOut::Value(v.map(str::to_string)),
        )
    };
    let once = [put(1, "x", "a", 0, 10), get(2, "x", Some("a"), 11, 12)];
    assert_eq!(check(&KeyValue, &once, BUDGET), Verdict::Linearizable);
    // A retried append whose first attempt took effect: "aa".
    let twice = [put(1, "x", "a", 0, 10), get(2, "x", Some("aa"), 11, 12)];
    let Verdict::NotLinearizable(wit) = check(&KeyValue, &twice, BUDGET) else {
        panic!();
    };
    assert_eq!(wit.stuck, Some(1));
    // Keys are checked apart: a bad key is named by its part.
    let mixed = [
        put(1, "y", "b", 0, 10),
        put(1, "x", "a", 0, 10),
        get(2, "y", Some("b"), 11, 12),
        get(2, "x", Some("aa"), 11, 12),
    ];
    let Verdict::NotLinearizable(wit) = check(&KeyValue, &mixed, BUDGET) else {
        panic!();
    };
    assert_eq!(wit.part, [1, 3]);
}

#[test]
fn compare_and_set_swaps_only_from_what_it_expects() {
    let cas = |c, exp: Option<&str>, new: &str, a, b, ok| {
        Op::returned(
            c,
            KvOp::Cas("k".into(), exp.map(str::to_string), new.into()),
            a,
            b,
            KvOut::Swapped(ok),
        )
    };
    // Two clients race to claim the key: exactly one wins.
    let fine = [
        cas(1, None, "a", 0, 10, true),
        cas(2, None, "b", 0, 10, false),
    ];
    assert_eq!(check(&KeyValue, &fine, BUDGET), Verdict::Linearizable);
    let both = [
        cas(1, None, "a", 0, 10, true),
        cas(2, None, "b", 0, 10, true),
    ];
    assert!(matches!(
        check(&KeyValue, &both, BUDGET),
        Verdict::NotLinearizable(_)
    ));
}

#[test]
fn a_search_out_of_budget_is_unknown_never_a_pass() {
    // Many overlapping writes and a read no order explains: the search
    // must try many orders before it can say so.
    let mut h: Vec<_> = (0..12).map(|i| w(i, i + 1, 0, 100)).collect();
    h.push(r(99, 1_000, 0, 100));
    assert!(matches!(check(&Register, &h, 10), Verdict::Unknown { .. }));
    assert!(matches!(
        check(&Register, &h, BUDGET),
        Verdict::NotLinearizable(_)
    ));
}

/// A register that forgets writes: the checker's verdicts follow the
/// model, so a history the true register allows fails here (the check
/// can fail).
struct Forgetful;

impl Model for Forgetful {
    type State = u64;
    type Input = RegisterOp;
    type Output = Option<u64>;
    fn init(&self) -> u64 {
        0
    }
    fn step(&self, s: &u64, input: &RegisterOp, out: Option<&Option<u64>>) -> Option<u64> {
        match (input, out) {
            (RegisterOp::Read, Some(seen)) => (*seen == Some(*s)).then_some(*s),
            _ => Some(*s),
        }
    }
}

#[test]
fn the_verdict_follows_the_model() {
    let h = [w(1, 1, 0, 1), r(2, 1, 2, 3)];
    assert_eq!(check(&Register, &h, BUDGET), Verdict::Linearizable);
    assert!(matches!(
        check(&Forgetful, &h, BUDGET),
        Verdict::NotLinearizable(_)
    ));
}

/// The reference: tries every order of the operations that respects real
/// time (an operation that returned before another's call comes first),
/// replaying the model; plainer and slower than the search, sharing none
/// of its code.
fn brute_force(h: &[Op<RegisterOp, Option<u64>>]) -> bool {
    fn go(h: &[Op<RegisterOp, Option<u64>>], done: &mut Vec<bool>, state: u64) -> bool {
        if done.iter().all(|d| *d) {
            return true;
        }
        for i in 0..h.len() {
            if done[i] {
                continue;
            }
            // i may go next only if no pending operation returned before
            // i was called.
            let blocked = (0..h.len()).any(|j| {
                !done[j] && j != i && h[j].ret.as_ref().is_some_and(|(t, _)| *t < h[i].call)
            });
            if blocked {
                continue;
            }
            let next = match (&h[i].input, h[i].ret.as_ref().map(|(_, o)| o)) {
                (RegisterOp::Write(v), _) => Some(*v),
                (RegisterOp::Read, Some(Some(seen))) => (*seen == state).then_some(state),
                (RegisterOp::Read, _) => Some(state),
            };
            if let Some(next) = next {
                done[i] = true;
                if go(h, done, next) {
                    return true;
                }
                done[i] = false;
            }
        }
        false
    }
    go(h, &mut vec![false; h.len()], 0)
}

fn history() -> impl Strategy<Value = Vec<Op<RegisterOp, Option<u64>>>> {
    let op = (0u64..3, 0u64..20, 1u64..8, 0u64..3, 0u8..5).prop_map(
        |(client, call, len, value, kind)| match kind {
            0 | 1 => Op::returned(client, RegisterOp::Write(value), call, call + len, None),
            2 => Op::unknown(client, RegisterOp::Write(value), call),
            _ => Op::returned(client, RegisterOp::Read, call, call + len, Some(value)),
        },
    );
    proptest::collection::vec(op, 0..7)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_search_agrees_with_brute_force(h in history()) {
        let searched = check(&Register, &h, BUDGET);
        let unknown = matches!(searched, Verdict::Unknown { .. });
        prop_assert!(!unknown, "out of budget on {:?}", h);
        prop_assert_eq!(searched == Verdict::Linearizable, brute_force(&h), "{:?}", h);
    }

    /// A minimal sub-history fails by the reference's judgement, alone and
    /// with each operation it left out back with its outcome unknown, and no
    /// operation more can be left out, nor return forgotten, with it still
    /// failing there.
    #[test]
    fn a_minimal_sub_history_fails_and_nothing_in_it_can_go(h in history()) {
        let Verdict::NotLinearizable(wit) = check(&Register, &h, BUDGET) else {
            return Ok(());
        };
        let m = minimal(&Register, &h, &wit, BUDGET);
        prop_assert!(m.stuck.is_some_and(|s| m.ops.contains(&s)));
        prop_assert!(m.forgotten.iter().all(|i| m.ops.contains(i)));
        prop_assert!(!brute_force(&sub(&h, &m.ops, &m.forgotten, &[])), "{:?} of {:?}", m, h);
        prop_assert!(m.complete);
        for i in wit.part.iter().copied().filter(|i| !m.ops.contains(i)) {
            prop_assert!(!brute_force(&sub(&h, &m.ops, &m.forgotten, &[i])), "{} freed: {:?} of {:?}", i, m, h);
        }
        let fails_at_stuck_with = |keep: &[usize], forgotten: &[usize], freed: &[usize]| {
            let s = sub(&h, keep, forgotten, freed);
            match check(&Register, &s, BUDGET) {
                Verdict::NotLinearizable(w) => {
                    w.stuck.is_some_and(|k| k < keep.len() && Some(keep[k]) == m.stuck)
                }
                _ => false,
            }
        };
        let fails_at_stuck = |keep: &[usize], forgotten: &[usize]| {
            fails_at_stuck_with(keep, forgotten, &[])
        };
        for (k, &i) in m.ops.iter().enumerate() {
            if Some(i) == m.stuck {
                continue;
            }
            let mut fewer = m.ops.clone();
            fewer.remove(k);
            let forgotten: Vec<usize> = m.forgotten.iter().copied().filter(|f| *f != i).collect();
            prop_assert!(
                !(fails_at_stuck(&fewer, &forgotten) && fails_at_stuck_with(&fewer, &forgotten, &[i])),
                "{} can go from {:?} of {:?}", i, m, h
            );
            if h[i].ret.is_some() && !m.forgotten.contains(&i) {
                let mut more = m.forgotten.clone();
                more.push(i);
                prop_assert!(!fails_at_stuck(&m.ops, &more), "{}'s return can go from {:?}", i, m);
            }
        }
    }
}

/// The sub-history `keep` of `h`, with the returns of `forgotten` dropped
/// and the outcomes of `freed` unknown.
fn sub(
    h: &[Op<RegisterOp, Option<u64>>],
    keep: &[usize],
    forgotten: &[usize],
    freed: &[usize],
) -> Vec<Op<RegisterOp, Option<u64>>> {
    let mut s: Vec<_> = keep
        .iter()
        .map(|&i| {
            let mut op = h[i].clone();
            if forgotten.contains(&i) {
                op.ret = None;
            }
            op
        })
        .collect();
    s.extend(
        freed
            .iter()
            .map(|&i| Op::unknown(h[i].client, h[i].input, h[i].call)),
    );
    s
}

#[test]
fn a_minimal_sub_history_keeps_what_explains_the_failure() {
    // A stale read: client 2 reads 1 after client 1 wrote 2, among
    // unrelated operations of client 3.
    let h = [
        w(1, 1, 0, 1),
        w(3, 5, 0, 1),
        w(1, 2, 2, 3),
        r(3, 2, 2, 3),
        w(3, 6, 10, 11),
        r(2, 6, 12, 13),
        r(2, 1, 14, 15),
    ];
    let Verdict::NotLinearizable(wit) = verdict(&h) else {
        panic!("{:?}", verdict(&h));
    };
    assert_eq!(wit.stuck, Some(6));
    let m = minimal(&Register, &h, &wit, BUDGET);
    // Reading 1 after the writes of 1 and then 6 returned: the writes of 5
    // and 2 and the reads of 2 and 6 play no part (free to fall anywhere,
    // they do not explain it). Cutting the write of 1 too would leave a
    // read of a value nobody wrote: it stays.
    assert_eq!(
        m,
        Minimal {
            ops: vec![0, 4, 6],
            forgotten: vec![],
            stuck: Some(6),
            complete: true,
        }
    );
}

#[test]
fn a_part_that_fails_quickly_is_found_before_one_that_takes_long() {
    let kv = |c, op: KvOp, a, b, out: KvOut| Op::returned(c, op, a, b, out);
    // Key "a": 12 overlapping puts and a get of a value none of them put:
    // refuting it means trying their orders. Key "b": a stale read.
    let mut h: Vec<_> = (0..12)
        .map(|i| kv(i, KvOp::Put("a".into(), i.to_string()), 0, 100, KvOut::Done))
        .collect();
    h.push(kv(
        50,
        KvOp::Get("a".into()),
        0,
        100,
        KvOut::Value(Some("x".into())),
    ));
    h.push(kv(60, KvOp::Put("b".into(), "1".into()), 0, 1, KvOut::Done));
    h.push(kv(61, KvOp::Get("b".into()), 2, 3, KvOut::Value(None)));
    let Verdict::NotLinearizable(w) = check(&KeyValue, &h, 20_000) else {
        panic!("{:?}", check(&KeyValue, &h, 20_000));
    };
    assert_eq!(w.part, [13, 14]);
    // Key "a" alone takes more than that budget to refute.
    assert!(matches!(
        check(&KeyValue, &h[..13], 20_000),
        Verdict::Unknown { .. }
    ));
}

#[test]
fn the_pattern_models_follow_their_rules() {
    use async_patterns_linearize::models::{Limiter, LimiterCheck, Semaphore, SemaphoreOp};
    // A register write answers nothing; a read of unknown outcome is left
    // out of the search (it fits anywhere).
    assert_eq!(
        Register.step(&0, &RegisterOp::Write(5), Some(&Some(5))),
        None
    );
    assert!(Register.read_only(&RegisterOp::Read) && !Register.read_only(&RegisterOp::Write(1)));
    let unknown_reads: Vec<_> = (0..64)
        .map(|c| Op::unknown(c, RegisterOp::Read, 0))
        .chain([Op::returned(99, RegisterOp::Write(1), 0, 1, None)])
        .collect();
    assert_eq!(check(&Register, &unknown_reads, 200), Verdict::Linearizable);
    let s = Semaphore { permits: 2 };
    assert_eq!(s.init(), 2);
    assert_eq!(
        s.step(&2, &SemaphoreOp::TryAcquire(2), Some(&true)),
        Some(0)
    );
    assert_eq!(s.step(&1, &SemaphoreOp::TryAcquire(2), Some(&true)), None);
    assert_eq!(
        s.step(&1, &SemaphoreOp::TryAcquire(2), Some(&false)),
        Some(1)
    );
    assert_eq!(s.step(&2, &SemaphoreOp::TryAcquire(1), Some(&false)), None);
    assert_eq!(s.step(&1, &SemaphoreOp::Release(1), Some(&true)), Some(2));
    // More back than the total was never taken.
    assert_eq!(s.step(&2, &SemaphoreOp::Release(1), None), None);
    // 100 ns a cell, burst 2: full at first, one cell back per 100 ns.
    let l = Limiter {
        interval_ns: 100,
        burst: 2,
    };
    let at = |at_ns, cells| LimiterCheck { at_ns, cells };
    let full = l.init();
    assert_eq!(full, (200, 0));
    assert_eq!(l.step(&full, &at(0, 2), Some(&true)), Some((0, 0)));
    assert_eq!(l.step(&(0, 0), &at(99, 1), Some(&false)), Some((99, 99)));
    assert_eq!(l.step(&(0, 0), &at(100, 1), Some(&true)), Some((0, 100)));
    // Credit is capped at the burst, and a reading that goes back counts
    // as the last one.
    assert_eq!(
        l.step(&(0, 0), &at(10_000, 3), Some(&false)),
        Some((200, 10_000))
    );
    assert_eq!(
        l.step(&(50, 500), &at(400, 1), Some(&false)),
        Some((50, 500))
    );
}

#[test]
fn the_keyed_limiter_model_bounds_busy_keys_and_checks_keys_apart() {
    use async_patterns_linearize::models::{KeyedCheck, KeyedLimiter, Limiter};
    // 100 ns a cell, burst 1, room for one busy key.
    let tight = KeyedLimiter {
        bucket: Limiter {
            interval_ns: 100,
            burst: 1,
        },
        room: Some(1),
    };
    let at = |key, at_ns, cells| KeyedCheck { key, at_ns, cells };
    let s = tight.init();
    let a_busy = tight.step(&s, &at(1, 0, 1), Some(&true)).unwrap();
    // Key 2 finds no room while key 1 is busy, but costs nothing at 0
    // cells; at 100 ns key 1 is full again and key 2 gets its place.
    assert_eq!(tight.step(&a_busy, &at(2, 50, 1), Some(&true)), None);
    assert!(tight.step(&a_busy, &at(2, 50, 1), Some(&false)).is_some());
    assert!(tight.step(&a_busy, &at(2, 50, 0), Some(&true)).is_some());
    assert_eq!(tight.step(&a_busy, &at(2, 99, 1), Some(&true)), None);
    assert!(tight.step(&a_busy, &at(2, 100, 1), Some(&true)).is_some());
    // More cells than the burst never pass.
    assert_eq!(tight.step(&s, &at(3, 0, 2), Some(&true)), None);
    // Without a bound, a history splits by key.
    let free = KeyedLimiter {
        room: None,
        ..tight
    };
    let checks = [at(1, 0, 1), at(2, 0, 1), at(1, 0, 1)];
    let inputs: Vec<_> = checks.iter().collect();
    assert_eq!(free.partition(&inputs), vec![vec![0, 2], vec![1]]);
    assert_eq!(tight.partition(&inputs), vec![vec![0, 1, 2]]);
    let h: Vec<_> = checks
        .iter()
        .zip([true, true, false])
        .enumerate()
        .map(|(i, (c, out))| Op::returned(0, *c, 2 * i as u64, 2 * i as u64 + 1, out))
        .collect();
    assert_eq!(check(&free, &h, 1_000), Verdict::Linearizable);
    assert!(matches!(
        check(&tight, &h, 1_000),
        Verdict::NotLinearizable(_)
    ));
}

/// A breaker that opens on one failure for 100 ns and lets one probe
/// close it.
fn one_failure_breaker() -> async_patterns_linearize::models::Breaker {
    async_patterns_linearize::models::Breaker {
        consecutive_failures: Some(1),
        window: None,
        open_ns: 100,
        probes: 1,
        close_after: 1,
    }
}

#[test]
fn the_breaker_model_ignores_stale_permits_and_probes_one_at_a_time() {
    use async_patterns_linearize::models::{BreakerOp, BreakerOut};
    let b = one_failure_breaker();
    let acquire = |permit, at_ns| BreakerOp::Acquire { permit, at_ns };
    let run = |ops: &[(BreakerOp, BreakerOut)]| {
        let h: Vec<_> = ops
            .iter()
            .enumerate()
            .map(|(i, (input, out))| Op::returned(0, *input, 2 * i as u64, 2 * i as u64 + 1, *out))
            .collect();
        check(&b, &h, 1_000)
    };
    let admitted = BreakerOut::Admitted;
    let done = BreakerOut::Done;
    // Two calls in; one fails at 10: open until 110. The other's success
    // is stale. At 110 one probe goes in, a second is refused, the probe's
    // success closes it.
    let ops = [
        (acquire(1, 0), admitted),
        (acquire(2, 0), admitted),
        (
            BreakerOp::Failure {
                permit: 1,
                at_ns: 10,
            },
            done,
        ),
        (
            BreakerOp::Success {
                permit: 2,
                at_ns: 20,
            },
            done,
        ),
        (acquire(3, 109), BreakerOut::Open { until_ns: 110 }),
        (acquire(4, 110), admitted),
        (acquire(5, 110), BreakerOut::ProbesBusy),
        (
            BreakerOp::Success {
                permit: 4,
                at_ns: 120,
            },
            done,
        ),
        (acquire(6, 120), admitted),
    ];
    assert_eq!(run(&ops), Verdict::Linearizable);
    // Any other answer fails somewhere.
    for (i, other) in [(4, admitted), (6, admitted), (8, BreakerOut::ProbesBusy)] {
        let mut bad = ops;
        bad[i].1 = other;
        assert!(matches!(run(&bad), Verdict::NotLinearizable(_)), "{i}");
    }
    // A dropped probe frees its slot without closing.
    let dropped = [
        (acquire(1, 0), admitted),
        (
            BreakerOp::Failure {
                permit: 1,
                at_ns: 0,
            },
            done,
        ),
        (acquire(2, 100), admitted),
        (BreakerOp::Drop { permit: 2 }, done),
        (acquire(3, 100), admitted),
        (acquire(4, 100), BreakerOut::ProbesBusy),
    ];
    assert_eq!(run(&dropped), Verdict::Linearizable);
}

#[test]
fn the_adaptive_model_moves_its_limit_by_how_calls_end() {
    use async_patterns_linearize::models::{Adaptive, AdaptiveOp, Ending};
    let a = Adaptive {
        min: 1,
        initial: 2,
        max: 3,
        increase: 1,
        backoff_num: 1,
        backoff_den: std::num::NonZeroU32::new(2).unwrap(),
        latency_target_ns: Some(10),
    };
    let finish = |ending, took| AdaptiveOp::Finish {
        ending,
        started_ns: 0,
        at_ns: took,
    };
    assert_eq!(a.init(), (2, 0));
    assert_eq!(
        a.step(&(2, 1), &AdaptiveOp::Acquire, Some(&true)),
        Some((2, 2))
    );
    assert_eq!(a.step(&(2, 2), &AdaptiveOp::Acquire, Some(&true)), None);
    assert_eq!(
        a.step(&(2, 2), &AdaptiveOp::Acquire, Some(&false)),
        Some((2, 2))
    );
    // Busy (1 of 2 is half) and quick: up one; at exactly the target still
    // quick; past it, halved; never above max nor below min.
    assert_eq!(
        a.step(&(2, 1), &finish(Ending::Success, 10), None),
        Some((3, 0))
    );
    assert_eq!(
        a.step(&(3, 1), &finish(Ending::Success, 1), None),
        Some((3, 0))
    );
    assert_eq!(
        a.step(&(3, 2), &finish(Ending::Success, 1), None),
        Some((3, 1))
    );
    assert_eq!(
        a.step(&(2, 1), &finish(Ending::Success, 11), None),
        Some((1, 0))
    );
    assert_eq!(
        a.step(&(1, 1), &finish(Ending::Failure, 0), None),
        Some((1, 0))
    );
    assert_eq!(
        a.step(&(2, 2), &finish(Ending::Dropped, 99), None),
        Some((2, 1))
    );
    // Nothing in flight: nothing can finish.
    assert_eq!(a.step(&(2, 0), &finish(Ending::Dropped, 0), None), None);
}

#[test]
fn an_operation_that_returns_before_its_call_makes_the_history_malformed() {
    let h = vec![w(1, 1, 0, 10), r(2, 1, 20, 15)];
    assert_eq!(verdict(&h), Verdict::Malformed { op: 1 });
    // At its call exactly is fine.
    assert_eq!(verdict(&[w(1, 1, 0, 0)]), Verdict::Linearizable);
}

#[test]
fn the_breaker_model_refuses_a_permit_that_is_not_out() {
    use async_patterns_linearize::models::{BreakerOp, BreakerOut};
    let b = one_failure_breaker();
    let s = b.init();
    let success = |permit| BreakerOp::Success { permit, at_ns: 0 };
    let acquire = BreakerOp::Acquire {
        permit: 1,
        at_ns: 0,
    };
    // Never admitted: no outcome, no drop.
    assert_eq!(b.step(&s, &success(1), None), None);
    assert_eq!(b.step(&s, &BreakerOp::Drop { permit: 1 }, None), None);
    let out = b.step(&s, &acquire, Some(&BreakerOut::Admitted)).unwrap();
    // A second permit under the same name, while the first is out.
    assert_eq!(b.step(&out, &acquire, None), None);
    // Ended once, not twice.
    let ended = b.step(&out, &success(1), None).unwrap();
    assert_eq!(b.step(&ended, &success(1), None), None);
    // A stale permit (admitted before a trip) still ends once, counting
    // for nothing; its name is free again after.
    let two = b
        .step(
            &out,
            &BreakerOp::Acquire {
                permit: 2,
                at_ns: 0,
            },
            None,
        )
        .unwrap();
    let tripped = b
        .step(
            &two,
            &BreakerOp::Failure {
                permit: 2,
                at_ns: 0,
            },
            None,
        )
        .unwrap();
    let stale_ended = b.step(&tripped, &success(1), None).unwrap();
    assert_eq!(b.step(&stale_ended, &success(1), None), None);
    // The stale success moved nothing: still open until 100.
    let refused = BreakerOut::Open { until_ns: 100 };
    let later = BreakerOp::Acquire {
        permit: 3,
        at_ns: 50,
    };
    assert!(b.step(&stale_ended, &later, Some(&refused)).is_some());
}
