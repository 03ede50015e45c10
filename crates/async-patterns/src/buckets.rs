//! A time window kept as a ring of buckets, on an injected clock: shared by
//! the circuit breaker's time-based rate window and the retry budget.

use crate::time::Instant;

/// `N` buckets of `bucket_ns` each; the window is the current bucket and the
/// `N - 1` before it.
///
/// Each bucket is stamped with its number since the clock's epoch, and the
/// newest bucket number never goes back, so a clock stepping backwards
/// cannot resurrect buckets that have slid out.
#[derive(Debug, Clone)]
pub(crate) struct TimeBuckets<T> {
    bucket_ns: u64,
    buckets: Vec<(u64, T)>,
    last: u64,
}

impl<T: Default + Clone> TimeBuckets<T> {
    /// `n` buckets of `bucket_ns` nanoseconds (both at least 1).
    pub(crate) fn new(n: usize, bucket_ns: u64) -> Self {
        TimeBuckets {
            bucket_ns: bucket_ns.max(1),
            buckets: vec![(0, T::default()); n.max(1)],
            last: 0,
        }
    }

    /// The bucket `now` falls in (or the newest, if the clock went back),
    /// emptied first if it last held an older slot's data.
    pub(crate) fn current(&mut self, now: Instant) -> &mut T {
        let epoch = (now.as_nanos() / self.bucket_ns).max(self.last);
        self.last = epoch;
        let n = self.buckets.len() as u64;
        let (stamp, value) = &mut self.buckets[(epoch % n) as usize];
        if *stamp != epoch {
            *stamp = epoch;
            *value = T::default();
        }
        value
    }

    /// The buckets still inside the window that ends at the newest bucket
    /// (call [`current`](Self::current) first to move the window to now).
    pub(crate) fn live(&self) -> impl Iterator<Item = &T> {
        let n = self.buckets.len() as u64;
        let last = self.last;
        self.buckets
            .iter()
            .filter(move |(stamp, _)| stamp + n > last)
            .map(|(_, value)| value)
    }

    /// Empties every bucket.
    pub(crate) fn clear(&mut self) {
        self.buckets.fill((0, T::default()));
    }
}
