//! The semaphore against a trivial sequential reference model.
//!
//! proptest drives random sequences of acquire / poll / cancel / release /
//! forget / try_acquire / add_permits / forget_permits / close across several
//! tasks. After every step it checks:
//!
//! * conservation: the semaphore's total and available permits equal the
//!   model's, and the model's free + held + granted-but-unpolled = total;
//! * FIFO: a waiter completes exactly when the model (a plain FIFO queue)
//!   serves it, with the same result;
//! * no lost wake-up: every waiter the model has served or failed has been
//!   woken since its last poll.
//!
//! Failing cases are persisted in `semaphore_model.proptest-regressions`
//! beside this file and replay first on every `cargo test`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use async_patterns::semaphore::{
    AcquireError, AcquireOwned, OwnedSemaphorePermit, Semaphore, TryAcquireError,
};
use proptest::prelude::*;

const TASKS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    /// Start an acquire of `n` permits in `task` (if idle) and poll it once.
    Acquire {
        task: usize,
        n: usize,
    },
    /// Poll the task's pending acquire.
    Poll {
        task: usize,
    },
    /// Drop the task's pending acquire (cancel it).
    Cancel {
        task: usize,
    },
    /// Drop the task's permit.
    Release {
        task: usize,
    },
    /// Forget the task's permit.
    Forget {
        task: usize,
    },
    /// `try_acquire_many(n)` into the task (if idle).
    TryAcquire {
        task: usize,
        n: usize,
    },
    AddPermits(usize),
    ForgetPermits(usize),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    let task = 0..TASKS;
    prop_oneof![
        6 => (task.clone(), 0..=4usize).prop_map(|(task, n)| Op::Acquire { task, n }),
        6 => task.clone().prop_map(|task| Op::Poll { task }),
        2 => task.clone().prop_map(|task| Op::Cancel { task }),
        6 => task.clone().prop_map(|task| Op::Release { task }),
        1 => task.clone().prop_map(|task| Op::Forget { task }),
        2 => (task, 0..=3usize).prop_map(|(task, n)| Op::TryAcquire { task, n }),
        2 => (0..=3usize).prop_map(Op::AddPermits),
        1 => (0..=2usize).prop_map(Op::ForgetPermits),
        1 => Just(Op::Close),
    ]
}

/// Records whether it was woken since the flag was last cleared.
#[derive(Default)]
struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

enum Slot {
    Idle,
    Waiting {
        fut: AcquireOwned,
        n: usize,
        woken: Arc<Flag>,
    },
    Holding(OwnedSemaphorePermit),
}

/// What the model says about a task's acquire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Queued,
    Granted,
    Failed(AcquireError),
}

/// The reference: a counter and a plain FIFO queue, no partial assignment.
#[derive(Debug)]
struct Model {
    total: usize,
    free: usize,
    closed: bool,
    queue: VecDeque<(usize, usize)>,
    verdict: [Option<Verdict>; TASKS],
    held: [usize; TASKS],
}

impl Model {
    fn available(&self) -> usize {
        if self.queue.is_empty() { self.free } else { 0 }
    }

    /// Serve the queue head first while it fits.
    fn serve(&mut self) {
        while let Some(&(task, n)) = self.queue.front() {
            if self.free < n {
                break;
            }
            self.free -= n;
            self.queue.pop_front();
            self.verdict[task] = Some(Verdict::Granted);
        }
    }

    fn shrink(&mut self, by: usize) {
        self.total -= by;
        let total = self.total;
        let verdict = &mut self.verdict;
        self.queue.retain(|&(task, n)| {
            let fits = n <= total;
            if !fits {
                verdict[task] = Some(Verdict::Failed(AcquireError::Exceeds {
                    requested: n,
                    total,
                }));
            }
            fits
        });
        self.serve();
    }

    /// What an immediate attempt (try_acquire, or an acquire's first poll)
    /// does: `Ok` takes the permits, `Err(None)` means "not now".
    fn attempt(&mut self, n: usize) -> Result<(), Option<AcquireError>> {
        if self.closed {
            Err(Some(AcquireError::Closed))
        } else if self.available() >= n {
            self.free -= n;
            Ok(())
        } else if n > self.total {
            Err(Some(AcquireError::Exceeds {
                requested: n,
                total: self.total,
            }))
        } else {
            Err(None)
        }
    }

    fn granted_unpolled(&self, slots: &[Slot]) -> usize {
        slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Waiting { n, .. } if self.verdict[i] == Some(Verdict::Granted) => Some(*n),
                _ => None,
            })
            .sum()
    }
}

fn poll_slot(
    fut: &mut AcquireOwned,
    woken: &Arc<Flag>,
) -> Poll<Result<OwnedSemaphorePermit, AcquireError>> {
    woken.0.store(false, Ordering::SeqCst);
    let waker = Waker::from(woken.clone());
    Pin::new(fut).poll(&mut Context::from_waker(&waker))
}

/// Polls the task's acquire and checks the outcome against the model.
fn poll_and_check(slots: &mut [Slot], model: &mut Model, task: usize) -> Result<(), TestCaseError> {
    let Slot::Waiting { fut, n, woken } = &mut slots[task] else {
        return Ok(());
    };
    let n = *n;
    let expect = model.verdict[task].expect("a waiting task has a verdict");
    match (poll_slot(fut, woken), expect) {
        (Poll::Pending, Verdict::Queued) => {}
        (Poll::Ready(Ok(permit)), Verdict::Granted) => {
            prop_assert_eq!(permit.num_permits(), n);
            model.held[task] = n;
            model.verdict[task] = None;
            slots[task] = Slot::Holding(permit);
        }
        (Poll::Ready(Err(e)), Verdict::Failed(want)) => {
            prop_assert_eq!(e, want);
            model.verdict[task] = None;
            slots[task] = Slot::Idle;
        }
        (got, want) => {
            let got = got.map(|r| r.map(|p| p.num_permits()));
            prop_assert!(
                false,
                "task {task}: semaphore gave {got:?}, model says {want:?}"
            );
        }
    }
    Ok(())
}

fn run(initial: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let sem = Arc::new(Semaphore::new(initial).unwrap());
    let mut model = Model {
        total: initial,
        free: initial,
        closed: false,
        queue: VecDeque::new(),
        verdict: [None; TASKS],
        held: [0; TASKS],
    };
    let mut slots: Vec<Slot> = (0..TASKS).map(|_| Slot::Idle).collect();

    for op in ops {
        match op {
            Op::Acquire { task, n } => {
                if !matches!(slots[task], Slot::Idle) {
                    continue;
                }
                let verdict = match model.attempt(n) {
                    Ok(()) => Verdict::Granted,
                    Err(Some(e)) => Verdict::Failed(e),
                    Err(None) => {
                        model.queue.push_back((task, n));
                        Verdict::Queued
                    }
                };
                // An immediate grant takes the permits now in the model; the
                // poll below moves them to `held`.
                model.verdict[task] = Some(verdict);
                slots[task] = Slot::Waiting {
                    fut: sem.clone().acquire_many_owned(n),
                    n,
                    woken: Arc::new(Flag::default()),
                };
                poll_and_check(&mut slots, &mut model, task)?;
            }
            Op::Poll { task } => poll_and_check(&mut slots, &mut model, task)?,
            Op::Cancel { task } => {
                if let Slot::Waiting { n, .. } = slots[task] {
                    match model.verdict[task].take() {
                        Some(Verdict::Granted) => model.free += n,
                        Some(Verdict::Queued) => model.queue.retain(|&(t, _)| t != task),
                        _ => {}
                    }
                    slots[task] = Slot::Idle; // drops the future
                    model.serve();
                }
            }
            Op::Release { task } => {
                if matches!(slots[task], Slot::Holding(_)) {
                    slots[task] = Slot::Idle;
                    model.free += std::mem::take(&mut model.held[task]);
                    model.serve();
                }
            }
            Op::Forget { task } => {
                if let Slot::Holding(_) = slots[task] {
                    let Slot::Holding(p) = std::mem::replace(&mut slots[task], Slot::Idle) else {
                        unreachable!()
                    };
                    p.forget();
                    let n = std::mem::take(&mut model.held[task]);
                    model.shrink(n);
                }
            }
            Op::TryAcquire { task, n } => {
                if !matches!(slots[task], Slot::Idle) {
                    continue;
                }
                let got = sem.clone().try_acquire_many_owned(n);
                match (got, model.attempt(n)) {
                    (Ok(p), Ok(())) => {
                        model.held[task] = n;
                        slots[task] = Slot::Holding(p);
                    }
                    (Err(TryAcquireError::NoPermits), Err(None)) => {}
                    (Err(TryAcquireError::Failed(e)), Err(Some(want))) => prop_assert_eq!(e, want),
                    (got, want) => prop_assert!(
                        false,
                        "try_acquire_many({n}): semaphore {:?}, model {want:?}",
                        got.map(|p| p.num_permits())
                    ),
                }
            }
            Op::AddPermits(n) => {
                sem.add_permits(n).unwrap();
                model.total += n;
                model.free += n;
                model.serve();
            }
            Op::ForgetPermits(k) => {
                let want = k.min(model.available());
                prop_assert_eq!(sem.forget_permits(k), want);
                model.free -= want;
                model.shrink(want);
            }
            Op::Close => {
                sem.close();
                model.closed = true;
                for (task, _) in model.queue.drain(..) {
                    model.verdict[task] = Some(Verdict::Failed(AcquireError::Closed));
                }
            }
        }

        // Conservation, in the semaphore and in the model.
        prop_assert_eq!(sem.total_permits(), model.total);
        prop_assert_eq!(sem.available_permits(), model.available());
        let held: usize = model.held.iter().sum();
        prop_assert_eq!(
            model.free + held + model.granted_unpolled(&slots),
            model.total,
            "model conservation"
        );
        // No lost wake-up: whoever the model has decided must have been woken.
        for (task, slot) in slots.iter().enumerate() {
            if let Slot::Waiting { woken, .. } = slot
                && model.verdict[task] != Some(Verdict::Queued)
            {
                prop_assert!(
                    woken.0.load(Ordering::SeqCst),
                    "task {task} was decided ({:?}) but never woken",
                    model.verdict[task]
                );
            }
        }
    }

    // Everything given back: every permit returns to the pool.
    drop(slots);
    prop_assert_eq!(sem.available_permits(), sem.total_permits());
    prop_assert_eq!(sem.total_permits(), model.total);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn semaphore_matches_reference_model(
        initial in 0..=4usize,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(initial, ops)?;
    }
}
