//! Poll-by-poll behaviour tests of the semaphore: each drives futures one
//! poll at a time (tokio-test's `task::spawn`) so FIFO order, wake-ups and
//! cancellation are checked at exact points, not by timing.

use async_patterns::semaphore::{
    Acquire, AcquireError, CapacityError, MAX_PERMITS, Semaphore, TryAcquireError,
};
use tokio_test::task::{self, Spawn};
use tokio_test::{assert_pending, assert_ready, assert_ready_err, assert_ready_ok};

fn sem(n: usize) -> Semaphore {
    Semaphore::new(n).expect("valid capacity")
}

/// Starts one acquire per size, in this order, and checks that each queues.
fn queue<const N: usize>(s: &Semaphore, sizes: [usize; N]) -> [Spawn<Acquire<'_>>; N] {
    sizes.map(|n| {
        let mut waiter = task::spawn(s.acquire_many(n));
        assert_pending!(waiter.poll());
        waiter
    })
}

#[test]
fn acquire_more_than_total_is_an_error_at_once() {
    let s = sem(3);
    let mut fut = task::spawn(s.acquire_many(4));
    let err = assert_ready_err!(fut.poll());
    assert_eq!(
        err,
        AcquireError::Exceeds {
            requested: 4,
            total: 3
        }
    );
    assert_eq!(
        s.try_acquire_many(usize::MAX).unwrap_err(),
        TryAcquireError::Failed(AcquireError::Exceeds {
            requested: usize::MAX,
            total: 3
        })
    );
    // Even while every permit is held, asking for the total is "not now".
    let _all = s.try_acquire_many(3).unwrap();
    assert_eq!(
        s.try_acquire_many(3).unwrap_err(),
        TryAcquireError::NoPermits
    );
}

#[test]
fn capacity_beyond_max_is_a_typed_error() {
    assert!(matches!(
        Semaphore::new(MAX_PERMITS + 1),
        Err(CapacityError::Overflow { .. })
    ));
    let s = sem(MAX_PERMITS);
    assert!(matches!(
        s.add_permits(1),
        Err(CapacityError::Overflow { .. })
    ));
    assert_eq!(
        s.total_permits(),
        MAX_PERMITS,
        "a failed add changes nothing"
    );
    assert_eq!(s.available_permits(), MAX_PERMITS);
}

#[test]
fn release_wakes_the_waiter() {
    let s = sem(1);
    let held = s.try_acquire().unwrap();
    let mut waiter = task::spawn(s.acquire());
    assert_pending!(waiter.poll());
    assert!(!waiter.is_woken());
    drop(held);
    assert!(waiter.is_woken(), "release must wake the head waiter");
    let permit = assert_ready_ok!(waiter.poll());
    assert_eq!(permit.num_permits(), 1);
    assert_eq!(s.available_permits(), 0);
    drop(permit);
    assert_eq!(s.available_permits(), 1);
}

/// A waiter polled again from another task (another waker) wakes that
/// task on release, not the one that polled it first.
#[test]
fn a_waiter_moved_to_another_task_wakes_the_new_one() {
    use std::future::Future;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (first, second) = (
        Arc::new(Count(AtomicUsize::new(0))),
        Arc::new(Count(AtomicUsize::new(0))),
    );
    let s = sem(1);
    let held = s.try_acquire().unwrap();
    let mut waiter = Box::pin(s.acquire());
    for count in [&first, &second] {
        let waker = Waker::from(count.clone());
        assert!(
            waiter
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }
    drop(held);
    assert_eq!(
        second.0.load(Ordering::SeqCst),
        1,
        "the task polling last is woken"
    );
    assert_eq!(first.0.load(Ordering::SeqCst), 0);
}

#[test]
fn waiters_are_served_in_fifo_order() {
    let s = sem(1);
    let held = s.try_acquire().unwrap();
    let [mut a, mut b, mut c] = queue(&s, [1, 1, 1]);
    drop(held);
    assert!(a.is_woken() && !b.is_woken() && !c.is_woken());
    // Polling later waiters first does not let them jump the queue.
    assert_pending!(c.poll());
    assert_pending!(b.poll());
    let pa = assert_ready_ok!(a.poll());
    drop(pa);
    assert!(b.is_woken() && !c.is_woken());
    let pb = assert_ready_ok!(b.poll());
    drop(pb);
    drop(assert_ready_ok!(c.poll()));
}

#[test]
fn large_request_at_head_blocks_later_small_ones() {
    let s = sem(4);
    let held = s.try_acquire_many(3).unwrap();
    let mut big = task::spawn(s.acquire_many(4));
    let mut small = task::spawn(s.acquire());
    assert_pending!(big.poll());
    // One permit is free, but it belongs to the big waiter at the head.
    assert_pending!(small.poll());
    assert_eq!(s.available_permits(), 0);
    drop(held);
    assert!(big.is_woken());
    assert!(
        !small.is_woken(),
        "the small one must wait behind the big one"
    );
    let p = assert_ready_ok!(big.poll());
    assert_eq!(p.num_permits(), 4);
    drop(p);
    drop(assert_ready_ok!(small.poll()));
}

#[test]
fn try_acquire_does_not_barge_past_waiters() {
    let s = sem(2);
    let held = s.try_acquire_many(2).unwrap();
    let mut waiter = task::spawn(s.acquire_many(2));
    assert_pending!(waiter.poll());
    drop(held);
    // Permits came back, but they went to the queued waiter.
    assert_eq!(s.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(assert_ready_ok!(waiter.poll()));
}

#[test]
fn dropping_granted_but_unpolled_acquire_returns_permits() {
    let s = sem(2);
    let held = s.try_acquire_many(2).unwrap();
    let [first, mut second] = queue(&s, [2, 2]);
    drop(held); // both permits are now assigned to `first`
    assert!(first.is_woken());
    drop(first); // ...which is cancelled before it polls again
    assert!(
        second.is_woken(),
        "the permits must pass to the next waiter"
    );
    let p = assert_ready_ok!(second.poll());
    drop(p);
    assert_eq!(s.available_permits(), 2);
}

#[test]
fn dropping_queued_head_passes_partial_permits_on() {
    let s = sem(3);
    let held = s.try_acquire_many(3).unwrap();
    let [big, mut small] = queue(&s, [3, 1]);
    drop(held);
    drop(big); // had collected all three
    let p = assert_ready_ok!(small.poll());
    assert_eq!(s.available_permits(), 2);
    drop(p);
    assert_eq!(s.available_permits(), 3);
}

#[test]
fn dropping_a_queued_waiter_in_the_middle_keeps_the_queue_intact() {
    let s = sem(1);
    let held = s.try_acquire().unwrap();
    let [mut a, b, mut c] = queue(&s, [1, 1, 1]);
    drop(b);
    drop(held);
    drop(assert_ready_ok!(a.poll()));
    assert!(c.is_woken());
    drop(assert_ready_ok!(c.poll()));
    assert_eq!(s.available_permits(), 1);
}

#[test]
fn close_fails_pending_and_new_acquires() {
    let s = sem(1);
    let held = s.try_acquire().unwrap();
    let mut waiter = task::spawn(s.acquire());
    assert_pending!(waiter.poll());
    s.close();
    assert!(s.is_closed());
    assert!(waiter.is_woken());
    assert_eq!(assert_ready_err!(waiter.poll()), AcquireError::Closed);
    let mut later = task::spawn(s.acquire());
    assert_eq!(assert_ready_err!(later.poll()), AcquireError::Closed);
    assert_eq!(
        s.try_acquire().unwrap_err(),
        TryAcquireError::Failed(AcquireError::Closed)
    );
    // Held permits stay valid and still come back.
    drop(held);
    assert_eq!(s.available_permits(), 1);
}

#[test]
fn close_returns_permits_collected_by_a_waiter() {
    let s = sem(3);
    let held = s.try_acquire_many(2).unwrap();
    let mut waiter = task::spawn(s.acquire_many(3)); // collects the free one
    assert_pending!(waiter.poll());
    assert_eq!(s.available_permits(), 0);
    s.close();
    assert_eq!(s.available_permits(), 1, "the collected permit is returned");
    drop(held);
    assert_eq!(s.available_permits(), 3);
    assert_ready_err!(waiter.poll());
}

#[test]
fn add_permits_serves_waiters_in_order() {
    let s = sem(2);
    let held = s.try_acquire_many(2).unwrap();
    let [mut a, mut b] = queue(&s, [2, 1]);
    s.add_permits(1).unwrap();
    assert!(
        !a.is_woken() && !b.is_woken(),
        "the head collects, still short"
    );
    s.add_permits(2).unwrap();
    assert!(a.is_woken() && b.is_woken());
    let pa = assert_ready_ok!(a.poll());
    let pb = assert_ready_ok!(b.poll());
    assert_eq!(pa.num_permits() + pb.num_permits(), 3);
    assert_eq!(s.total_permits(), 5);
    drop((held, pa, pb));
    assert_eq!(s.available_permits(), 5);
}

#[test]
fn forgotten_permit_lowers_the_total() {
    let s = sem(3);
    let p = s.try_acquire_many(2).unwrap();
    p.forget();
    assert_eq!(s.total_permits(), 1);
    assert_eq!(s.available_permits(), 1);
    assert_eq!(s.forget_permits(5), 1, "only free permits can be forgotten");
    assert_eq!(s.total_permits(), 0);
}

#[test]
fn forget_permits_never_takes_permits_in_use() {
    let s = sem(4);
    let running = s.try_acquire_many(3).unwrap();
    assert_eq!(s.forget_permits(4), 1);
    // In-flight work keeps its permits; the limit is now 3.
    assert_eq!(s.total_permits(), 3);
    drop(running);
    assert_eq!(s.available_permits(), 3);
}

#[test]
fn forgetting_permits_fails_waiters_that_can_never_be_served() {
    let s = sem(3);
    let held = s.try_acquire_many(2).unwrap();
    let [mut big, mut small] = queue(&s, [3, 1]);
    held.forget(); // total drops to 1: `big` can never be served
    assert!(big.is_woken());
    assert_eq!(
        assert_ready_err!(big.poll()),
        AcquireError::Exceeds {
            requested: 3,
            total: 1
        }
    );
    // The permit `big` had collected passes on to `small`.
    drop(assert_ready_ok!(small.poll()));
}

#[test]
fn acquire_zero_permits_succeeds_at_once() {
    let s = sem(0);
    let mut fut = task::spawn(s.acquire_many(0));
    let p = assert_ready_ok!(fut.poll());
    assert_eq!(p.num_permits(), 0);
}

#[test]
fn a_request_is_judged_against_the_total_when_it_is_made() {
    // An empty semaphore cannot serve anyone: waiting would hang forever
    // unless someone happened to add permits, so it is an error at once.
    let s = sem(0);
    let mut early = task::spawn(s.acquire());
    assert_eq!(
        assert_ready_err!(early.poll()),
        AcquireError::Exceeds {
            requested: 1,
            total: 0
        }
    );
    s.add_permits(1).unwrap();
    let mut later = task::spawn(s.acquire());
    drop(assert_ready_ok!(later.poll()));
}

#[test]
fn owned_permit_moves_to_another_thread() {
    let s = std::sync::Arc::new(sem(1));
    let permit = s.clone().try_acquire_owned().unwrap();
    let mut waiter = task::spawn(s.clone().acquire_owned());
    assert_pending!(waiter.poll());
    std::thread::spawn(move || drop(permit)).join().unwrap();
    assert!(waiter.is_woken());
    let p = assert_ready!(waiter.poll()).unwrap();
    assert!(std::sync::Arc::ptr_eq(p.semaphore(), &s));
}

/// A scripted run whose grant order is kept as a snapshot: any change in
/// who is served when shows up as a diff in review.
#[test]
fn scripted_grant_order_snapshot() {
    let s = sem(4);
    let mut log = Vec::new();
    let held = s.try_acquire_many(4).unwrap();
    let sizes = [3usize, 1, 2, 4, 1];
    let mut waiters: Vec<_> = sizes
        .iter()
        .map(|&n| task::spawn(s.acquire_many(n)))
        .collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        assert_pending!(w.poll());
        log.push(format!("w{i} queued for {}", sizes[i]));
    }
    drop(held);
    log.push("4 permits released".into());
    let mut permits = Vec::new();
    for round in 0..6 {
        for (i, w) in waiters.iter_mut().enumerate() {
            if w.is_woken()
                && let std::task::Poll::Ready(r) = w.poll()
            {
                let p = r.unwrap();
                log.push(format!("round {round}: w{i} granted {}", p.num_permits()));
                permits.push(p);
            }
        }
        if let Some(p) = (!permits.is_empty()).then(|| permits.remove(0)) {
            log.push(format!("round {round}: released {}", p.num_permits()));
        }
        log.push(format!(
            "round {round}: available {}",
            s.available_permits()
        ));
    }
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots")}, {
        insta::assert_snapshot!(log.join("\n"));
    });
}

#[test]
#[should_panic(expected = "polled after completion")]
fn polling_a_finished_acquire_panics_instead_of_acquiring_again() {
    let s = sem(1);
    let held = s.try_acquire().unwrap();
    let mut fut = task::spawn(s.acquire_many(2));
    assert_ready_err!(fut.poll());
    drop(held);
    let _ = fut.poll();
}

/// A waiter handed all its permits before `close()` keeps them: the grant
/// stands (tokio's waiter would fail; see the differences table in the
/// module docs), and the permits come back when it drops them.
#[test]
fn a_waiter_granted_in_full_before_close_gets_its_permit() {
    let s = sem(1);
    let held = s.try_acquire().unwrap();
    let mut waiter = task::spawn(s.acquire());
    assert_pending!(waiter.poll());
    drop(held); // the permit goes to the waiter, which is not yet polled
    assert!(waiter.is_woken());
    s.close();
    let permit = assert_ready_ok!(waiter.poll());
    assert_eq!(permit.num_permits(), 1);
    drop(permit);
    assert_eq!(s.available_permits(), 1);
    // Later acquires fail: the semaphore is closed.
    assert_eq!(
        s.try_acquire().unwrap_err(),
        TryAcquireError::Failed(AcquireError::Closed)
    );
}

/// `const_new` builds a working semaphore at compile time, and the
/// associated `MAX_PERMITS` is the module's.
#[test]
fn a_const_semaphore_works_like_a_new_one() {
    static S: Semaphore = Semaphore::const_new(2);
    assert_eq!(
        Semaphore::MAX_PERMITS,
        async_patterns::semaphore::MAX_PERMITS
    );
    assert_eq!(S.total_permits(), 2);
    let a = S.try_acquire().unwrap();
    let b = S.try_acquire().unwrap();
    assert_eq!(S.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop((a, b));
    assert_eq!(S.available_permits(), 2);
    assert!(Semaphore::new(Semaphore::MAX_PERMITS).is_ok());
    assert!(Semaphore::new(Semaphore::MAX_PERMITS + 1).is_err());
}

#[test]
#[should_panic(expected = "at most Semaphore::MAX_PERMITS permits")]
fn const_new_past_the_maximum_panics() {
    let _ = Semaphore::const_new(Semaphore::MAX_PERMITS + 1);
}
