//! The semaphore's engine: the state word, the FIFO wait list, and the
//! grant, release and shrink rules every public operation goes through (as
//! tokio splits `batch_semaphore.rs` from its `Semaphore` API).

use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::{AcquireError, Semaphore, TryAcquireError};
use crate::sync::{Ordering, lock};

// `state` packs the available permits with two flags.
pub(super) const CLOSED: usize = 0b01;
// Set exactly while the wait queue is non-empty; changed only under the lock.
// While it is set, no permit is available: returned permits go to the head
// waiter instead (this is what makes the semaphore fair).
pub(super) const QUEUED: usize = 0b10;
pub(super) const SHIFT: usize = 2;

pub(super) struct Waitlist {
    /// Permits in existence: available + held + handed to waiters (in part
    /// to the head, in full to granted waiters not yet polled).
    pub(super) total: usize,
    /// Waiters, queued ones linked head to tail through `prev`/`next`.
    pub(super) nodes: Slab<Node>,
    pub(super) head: Option<usize>,
    pub(super) tail: Option<usize>,
}

pub(super) struct Node {
    pub(super) needed: usize,
    /// Permits already handed to this waiter; only the head has any.
    pub(super) assigned: usize,
    pub(super) status: Status,
    pub(super) waker: Option<Waker>,
    pub(super) prev: Option<usize>,
    pub(super) next: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Queued,
    Granted,
    Failed(AcquireError),
}

impl Waitlist {
    pub(super) fn push_back(&mut self, node: Node) -> usize {
        let key = self.nodes.insert(node);
        self.nodes[key].prev = self.tail;
        match self.tail {
            Some(tail) => self.nodes[tail].next = Some(key),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        key
    }

    pub(super) fn unlink(&mut self, key: usize) {
        let (prev, next) = {
            let node = &mut self.nodes[key];
            (node.prev.take(), node.next.take())
        };
        match prev {
            Some(p) => self.nodes[p].next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => self.nodes[n].prev = prev,
            None => self.tail = prev,
        }
    }
}

/// Wakers collected under the lock and woken after it is released.
#[derive(Default)]
pub(super) struct WakeList {
    pub(super) first: Option<Waker>,
    pub(super) rest: Vec<Waker>,
}

impl WakeList {
    pub(super) fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.rest.push(waker);
        }
    }

    pub(super) fn wake_all(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.rest {
            w.wake();
        }
    }
}

impl Semaphore {
    /// Takes `n` permits without waiting, or says why not.
    #[inline]
    pub(super) fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & CLOSED != 0 {
                return Err(AcquireError::Closed.into());
            }
            if cur >> SHIFT < n {
                let total = self.total.load(Ordering::Acquire);
                return Err(if n > total {
                    AcquireError::Exceeds {
                        requested: n,
                        total,
                    }
                    .into()
                } else {
                    TryAcquireError::NoPermits
                });
            }
            match self.state.compare_exchange_weak(
                cur,
                cur - (n << SHIFT),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Gives `n` permits back: to the queued waiters in order, the rest to
    /// the free pool.
    #[inline]
    pub(super) fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut cur = self.state.load(Ordering::Relaxed);
        while cur & QUEUED == 0 {
            match self.state.compare_exchange_weak(
                cur,
                cur + (n << SHIFT),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
        self.release_queued(n);
    }

    /// [`release`](Self::release) while someone is queued: under the lock.
    /// Out of line, so the uncontended path above saves no registers for it.
    #[inline(never)]
    fn release_queued(&self, n: usize) {
        let mut wakes = WakeList::default();
        {
            let mut list = lock(&self.waiters);
            self.release_locked(&mut list, n, &mut wakes);
        }
        wakes.wake_all();
    }

    /// Hands `n` permits to the waiters head first; once the queue is empty,
    /// clears `QUEUED` and frees what is left. Called with the lock held, also
    /// with `n == 0` after a waiter left, to keep `QUEUED` exact.
    pub(super) fn release_locked(&self, list: &mut Waitlist, mut n: usize, wakes: &mut WakeList) {
        while n > 0 {
            let Some(head) = list.head else { break };
            let node = &mut list.nodes[head];
            let give = n.min(node.needed - node.assigned);
            node.assigned += give;
            n -= give;
            if node.assigned == node.needed {
                node.status = Status::Granted;
                wakes.push(node.waker.take());
                list.unlink(head);
            }
        }
        if list.head.is_none() {
            self.clear_queued(n);
        }
    }

    /// Clears `QUEUED` and frees `n` permits, in one step.
    pub(super) fn clear_queued(&self, n: usize) {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let new = (cur & !QUEUED) + (n << SHIFT);
            match self
                .state
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    pub(super) fn set_total(&self, list: &mut Waitlist, total: usize) {
        list.total = total;
        self.total.store(total, Ordering::Release);
    }

    /// Lowers the total by `n` permits that have just left circulation, and
    /// fails every waiter that now asks for more than the total.
    pub(super) fn shrink_locked(&self, list: &mut Waitlist, n: usize, wakes: &mut WakeList) {
        if n == 0 {
            return;
        }
        let total = list.total - n;
        self.set_total(list, total);
        let mut returned = 0;
        let mut cursor = list.head;
        while let Some(key) = cursor {
            let node = &mut list.nodes[key];
            cursor = node.next;
            if node.needed > total {
                returned += std::mem::take(&mut node.assigned);
                node.status = Status::Failed(AcquireError::Exceeds {
                    requested: node.needed,
                    total,
                });
                wakes.push(node.waker.take());
                list.unlink(key);
            }
        }
        self.release_locked(list, returned, wakes);
    }

    /// Permits leave circulation for good (a forgotten permit).
    pub(super) fn forget_held(&self, n: usize) {
        let mut wakes = WakeList::default();
        {
            let mut list = lock(&self.waiters);
            self.shrink_locked(&mut list, n, &mut wakes);
        }
        wakes.wake_all();
    }
}

/// The progress of one acquire, shared by [`Acquire`] and [`AcquireOwned`].
#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) needed: usize,
    /// Our node in the wait list, while we have one.
    pub(super) key: Option<usize>,
    /// Returned `Ready` already.
    pub(super) done: bool,
}

impl Waiter {
    pub(super) fn new(needed: usize) -> Self {
        Waiter {
            needed,
            key: None,
            done: false,
        }
    }

    pub(super) fn poll_acquire(
        &mut self,
        sem: &Semaphore,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        assert!(!self.done, "semaphore acquire polled after completion");
        let poll = self.poll_inner(sem, cx);
        self.done = poll.is_ready();
        poll
    }

    pub(super) fn poll_inner(
        &mut self,
        sem: &Semaphore,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        match self.key {
            None => self.first_poll(sem, cx),
            Some(key) => {
                let mut list = lock(&sem.waiters);
                let node = &mut list.nodes[key];
                let outcome = match node.status {
                    Status::Granted => Ok(()),
                    Status::Failed(e) => Err(e),
                    Status::Queued => {
                        match &mut node.waker {
                            Some(w) if w.will_wake(cx.waker()) => {}
                            slot => *slot = Some(cx.waker().clone()),
                        }
                        return Poll::Pending;
                    }
                };
                list.nodes.remove(key);
                self.key = None;
                Poll::Ready(outcome)
            }
        }
    }

    pub(super) fn first_poll(
        &mut self,
        sem: &Semaphore,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        let n = self.needed;
        match sem.try_take(n) {
            Ok(()) => return Poll::Ready(Ok(())),
            Err(TryAcquireError::Failed(e)) => return Poll::Ready(Err(e)),
            Err(TryAcquireError::NoPermits) => {}
        }
        // Cloning a waker runs foreign code that may panic: do it before any
        // state changes, so a panic leaves the semaphore consistent.
        let waker = cx.waker().clone();
        let mut list = lock(&sem.waiters);
        // Re-check under the lock: `total` and `CLOSED` change only under it,
        // and `QUEUED` is set only here, so nothing can slip between this
        // check and joining the queue.
        if n > list.total {
            return Poll::Ready(Err(AcquireError::Exceeds {
                requested: n,
                total: list.total,
            }));
        }
        let mut cur = sem.state.load(Ordering::Acquire);
        let assigned = loop {
            if cur & CLOSED != 0 {
                return Poll::Ready(Err(AcquireError::Closed));
            }
            let available = cur >> SHIFT;
            let (new, done) = if available >= n {
                (cur - (n << SHIFT), true)
            } else {
                // Join the queue, taking every free permit with us: we are
                // the head (if anyone were queued, none would be free).
                (QUEUED, false)
            };
            match sem
                .state
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if done => return Poll::Ready(Ok(())),
                Ok(_) => break available,
                Err(actual) => cur = actual,
            }
        };
        self.key = Some(list.push_back(Node {
            needed: n,
            assigned,
            status: Status::Queued,
            waker: Some(waker),
            prev: None,
            next: None,
        }));
        Poll::Pending
    }

    /// Leaves the queue, returning whatever was handed to us.
    pub(super) fn cancel(&mut self, sem: &Semaphore) {
        let Some(key) = self.key.take() else { return };
        let mut wakes = WakeList::default();
        {
            let mut list = lock(&sem.waiters);
            if list.nodes[key].status == Status::Queued {
                list.unlink(key);
            }
            let node = list.nodes.remove(key);
            let returned = match node.status {
                Status::Granted => node.needed,
                // Only the head holds assigned permits; they pass to the next.
                Status::Queued => node.assigned,
                // Already returned when it failed.
                Status::Failed(_) => 0,
            };
            if returned > 0 {
                async_patterns_assert::reachable!(crate::points::PERMIT_RETURNED_ON_CANCEL);
            }
            // Also with 0: keeps QUEUED exact if we were the last waiter.
            sem.release_locked(&mut list, returned, &mut wakes);
        }
        wakes.wake_all();
    }
}
