//! What the breaker's and the adaptive limit's permits share: a handle to
//! their owner (a reference, or an `Arc` for the owned form), the ticket
//! the owner issued, and the rule that a permit reports exactly once —
//! `success`, `failure`, or, if dropped unreported, abandoned.

use std::ops::Deref;

use crate::Ending;

/// An owner of permits: told how each admitted call ended.
pub(crate) trait Settle {
    /// What the owner needs back with the outcome (generation, start).
    type Ticket: Copy + std::fmt::Debug;

    /// The call ended so (exactly once per ticket).
    fn settle(&self, ticket: Self::Ticket, ending: Ending);
}

/// A permit's state: its owner, its ticket, whether it has reported.
pub(crate) struct Held<B: Deref<Target: Settle>> {
    owner: B,
    ticket: <B::Target as Settle>::Ticket,
    done: bool,
}

impl<B: Deref<Target: Settle>> Held<B> {
    pub(crate) fn new(owner: B, ticket: <B::Target as Settle>::Ticket) -> Self {
        Held {
            owner,
            ticket,
            done: false,
        }
    }

    #[inline]
    pub(crate) fn report(&mut self, ending: Ending) {
        self.done = true;
        self.owner.settle(self.ticket, ending);
    }
}

impl<B: Deref<Target: Settle>> Drop for Held<B> {
    fn drop(&mut self) {
        if !self.done {
            self.owner.settle(self.ticket, Ending::Abandoned);
        }
    }
}

impl<B: Deref<Target: Settle>> std::fmt::Debug for Held<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("ticket", &self.ticket)
            .finish()
    }
}

/// The public face of a permit type wrapping a [`Held`]: `success`,
/// `failure` and `Debug` (the release on drop is `Held`'s).
macro_rules! permit_api {
    ($permit:ty, $success:literal, $failure:literal) => {
        impl<C: Clock> $permit {
            #[doc = $success]
            #[inline]
            pub fn success(mut self) {
                self.0.report($crate::Ending::Succeeded);
            }

            #[doc = $failure]
            pub fn failure(mut self) {
                self.0.report($crate::Ending::Failed);
            }
        }

        impl<C: Clock> std::fmt::Debug for $permit {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

pub(crate) use permit_api;
