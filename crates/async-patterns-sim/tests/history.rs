//! Histories recorded in virtual time, and their check as an invariant.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use async_patterns_sim::History;
use async_patterns_sim::Linearizable;
use async_patterns_sim::history::Op;
use async_patterns_sim::history::models::{Register, RegisterOp};
use async_patterns_sim::plot::{GREEN, GREY, RED};

type H = History<RegisterOp, Option<u64>>;

/// Runs `client` in a turmoil simulation and returns what it recorded.
fn recorded<F, Fut>(client: F) -> H
where
    F: FnOnce(Rc<RefCell<H>>) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let h = Rc::new(RefCell::new(History::new()));
    let mut sim = turmoil::Builder::new().build();
    let fut = client(h.clone());
    sim.client("client", async move {
        fut.await;
        Ok(())
    });
    sim.run().unwrap();
    Rc::try_unwrap(h).ok().unwrap().into_inner()
}

async fn ms(n: u64) {
    tokio::time::sleep(Duration::from_millis(n)).await;
}

#[test]
fn a_stale_read_is_blamed_on_its_return_with_what_it_needs() {
    let h = recorded(|h| async move {
        let w = h.borrow_mut().call(1, RegisterOp::Write(1));
        ms(10).await;
        h.borrow_mut().ok(w, None);
        ms(5).await;
        let r = h.borrow_mut().call(2, RegisterOp::Read);
        ms(10).await;
        h.borrow_mut().ok(r, Some(0));
    });
    let ops = h.ops();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0].call, 0);
    assert_eq!(ops[0].ret.as_ref().unwrap().0, 10_000_000);
    assert_eq!(ops[1].call, 15_000_000);
    assert_eq!(h.end(), 25_000_000);
    let v = Linearizable::new(Register).check(&h);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].invariant, "linearizable");
    assert_eq!(v[0].at, Some(Duration::from_millis(25)));
    assert_eq!(
        v[0].detail,
        "no order explains client 2: Read -> Some(0) 0.015-0.025 s (the longest order found \
         explains 1 of its part's 2 operations); it needs only: [client 1: Write(1) -> None \
         0.000-0.010 s] [client 2: Read -> Some(0) 0.015-0.025 s]"
    );
    let v = Linearizable::new(Register).named("register").check(&h);
    assert_eq!(v[0].invariant, "register");
    // Its drawing: a lane per client, what the violation needs in red.
    let lanes = Linearizable::new(Register).lanes(&h);
    assert_eq!(lanes.len(), 2);
    assert_eq!(lanes[0].name, "client 1 operations");
    assert_eq!(
        lanes[0].spans,
        [(
            Duration::ZERO,
            Duration::from_millis(10),
            RED,
            "Write(1) -> None".to_string()
        )]
    );
    assert_eq!(lanes[1].spans[0].2, RED);
}

#[test]
fn a_failed_operation_leaves_the_history_and_an_unknown_one_may_land_late() {
    let h = recorded(|h| async move {
        let refused = h.borrow_mut().call(1, RegisterOp::Write(5));
        h.borrow_mut().failed(refused);
        // A second end of an operation is ignored.
        h.borrow_mut().ok(refused, None);
        let timed_out = h.borrow_mut().call(1, RegisterOp::Write(7));
        ms(10).await;
        let r = h.borrow_mut().call(2, RegisterOp::Read);
        ms(1).await;
        h.borrow_mut().ok(r, Some(0));
        let again = h.borrow_mut().call(2, RegisterOp::Read);
        ms(1).await;
        h.borrow_mut().ok(again, Some(7));
        h.borrow_mut().failed(again); // ignored: it ended
        let _ = timed_out;
    });
    assert_eq!(h.len(), 4);
    let ops = h.ops();
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert_eq!(ops[0].input, RegisterOp::Write(7));
    assert_eq!(ops[0].ret, None);
    assert_eq!(ops[2].ret, Some((12_000_000, Some(7))));
    // 0, then 7: the unknown write landed between the reads.
    assert!(Linearizable::new(Register).check(&h).is_empty());
    let lanes = Linearizable::new(Register).lanes(&h);
    assert_eq!(lanes[0].spans[0].2, GREY);
    assert_eq!(lanes[0].spans[0].1, Duration::from_millis(12));
    assert_eq!(lanes[1].spans[0].2, GREEN);
}

#[test]
fn out_of_budget_is_unchecked_unless_the_scenario_says_it_passes() {
    let mut h: H = History::new();
    for v in 0..6 {
        let c = h.call(v, RegisterOp::Write(v));
        h.ok(c, None);
    }
    h.push(Op::returned(9, RegisterOp::Read, 1, 2, Some(42)));
    let v = Linearizable::new(Register).budget(3).check(&h);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].invariant, "history unchecked");
    assert!(
        v[0].detail
            .starts_with("the 7-operation history (0 of unknown outcome, each open to the end) was not decided within ")
    );
    assert!(
        Linearizable::new(Register)
            .budget(3)
            .unknown_passes()
            .check(&h)
            .is_empty()
    );
    // Within budget, it is decided: nobody wrote 42.
    assert_eq!(
        Linearizable::new(Register).check(&h)[0].invariant,
        "linearizable"
    );
    assert_eq!(h.end(), 2);
    assert!(!h.is_empty());
    assert!(History::<RegisterOp, Option<u64>>::new().is_empty());
}

#[test]
fn an_operation_whose_answer_does_not_matter_says_so() {
    // Reading 2 (returned at 3 ms) pins the write of 2 before 3 ms; a read
    // called at 4 ms then sees 0. The write must be there; its return
    // (5 ms) does not matter.
    let ms = |n: u64| n * 1_000_000;
    let mut h: H = History::new();
    h.push(Op::returned(2, RegisterOp::Read, 0, ms(3), Some(2)));
    h.push(Op::returned(0, RegisterOp::Write(2), ms(2), ms(5), None));
    h.push(Op::returned(1, RegisterOp::Read, ms(4), ms(6), Some(0)));
    let v = Linearizable::new(Register).check(&h);
    assert_eq!(
        v[0].detail,
        "no order explains client 1: Read -> Some(0) 0.004-0.006 s (the longest order found \
         explains 2 of its part's 3 operations); it needs only: [client 2: Read -> Some(2) \
         0.000-0.003 s] [client 0: Write(2) called at 0.002 s (its answer does not matter)] \
         [client 1: Read -> Some(0) 0.004-0.006 s]"
    );
}

/// An operation pushed by hand that returns before its call: the history
/// is not checked, and that is a violation of its own, never a pass.
#[test]
fn a_history_that_returns_before_it_calls_is_malformed() {
    let mut h: H = History::new();
    h.push(Op::returned(
        0,
        RegisterOp::Read,
        2_000_000,
        1_000_000,
        Some(0),
    ));
    let v = Linearizable::new(Register).check(&h);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].invariant, "history malformed");
    assert!(
        v[0].detail.contains(
            "operation 0 returned before it was called (client 0: Read -> Some(0) 0.002-0.001 s)"
        ),
        "{}",
        v[0].detail
    );
}
