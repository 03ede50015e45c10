//! A time window kept as a ring of buckets, on an injected clock: shared by
//! the circuit breaker's time-based rate window and the retry budget.

use crate::time::Instant;

/// `N` buckets of `bucket_ns` each; the window is the current bucket and the
/// `N - 1` before it.
///
/// Each bucket is stamped with its number since the clock's epoch, and the
/// newest bucket number never goes back, so a clock stepping backwards
/// cannot resurrect buckets that have slid out.
///
/// The newest bucket's index and end are cached: an instant before that
/// end is in the newest bucket (or earlier: a clock stepping back), so most
/// calls to [`current`](Self::current) divide nothing.
#[derive(Debug, Clone)]
pub(crate) struct TimeBuckets<T> {
    bucket_ns: u64,
    buckets: Vec<(u64, T)>,
    last: u64,
    /// `buckets[index]` is bucket number `last`, and it ends at `end`
    /// nanoseconds (saturated); `end == 0` forces the full computation.
    index: usize,
    end: u64,
}

impl<T: Default + Clone> TimeBuckets<T> {
    /// `n` buckets of `bucket_ns` nanoseconds (both at least 1).
    pub(crate) fn new(n: usize, bucket_ns: u64) -> Self {
        TimeBuckets {
            bucket_ns: bucket_ns.max(1),
            buckets: vec![(0, T::default()); n.max(1)],
            last: 0,
            index: 0,
            end: 0,
        }
    }

    /// The bucket `now` falls in (or the newest, if the clock went back),
    /// emptied first if it last held an older slot's data.
    #[inline]
    pub(crate) fn current(&mut self, now: Instant) -> &mut T {
        if now.as_nanos() < self.end {
            return &mut self.buckets[self.index].1;
        }
        self.advance(now)
    }

    /// [`current`](Self::current) past the cached bucket's end.
    fn advance(&mut self, now: Instant) -> &mut T {
        let epoch = (now.as_nanos() / self.bucket_ns).max(self.last);
        self.last = epoch;
        let n = self.buckets.len() as u64;
        self.index = (epoch % n) as usize;
        self.end = epoch.saturating_add(1).saturating_mul(self.bucket_ns);
        let (stamp, value) = &mut self.buckets[self.index];
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
        // The cached bucket lost its stamp: recompute on the next call.
        self.end = 0;
    }
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain definition: divide on every call, no cache.
    struct Plain {
        bucket_ns: u64,
        buckets: Vec<(u64, u64)>,
        last: u64,
    }

    impl Plain {
        fn current(&mut self, now: u64) -> &mut u64 {
            let epoch = (now / self.bucket_ns).max(self.last);
            self.last = epoch;
            let len = self.buckets.len() as u64;
            let (stamp, value) = &mut self.buckets[(epoch % len) as usize];
            if *stamp != epoch {
                *stamp = epoch;
                *value = 0;
            }
            value
        }

        fn live(&self) -> Vec<u64> {
            let len = self.buckets.len() as u64;
            let mut live: Vec<u64> = self
                .buckets
                .iter()
                .filter(|(stamp, _)| stamp + len > self.last)
                .map(|&(_, v)| v)
                .collect();
            live.sort_unstable();
            live
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Move the clock by this many nanoseconds (back if negative).
        Step(i64),
        Add,
        Clear,
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                6 => (-40i64..120).prop_map(Op::Step),
                6 => Just(Op::Add),
                1 => Just(Op::Clear),
            ],
            0..200,
        )
    }

    proptest! {
        /// The cached bucket changes nothing: every count and the live
        /// window equal the plain computation's, clock steps back included.
        #[test]
        fn cache_agrees_with_the_plain_definition(
            n in 1usize..5,
            bucket_ns in 1u64..30,
            ops in ops(),
        ) {
            let mut ours = TimeBuckets::<u64>::new(n, bucket_ns);
            let mut plain = Plain { bucket_ns, buckets: vec![(0, 0); n], last: 0 };
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Step(d) => now = now.saturating_add_signed(d),
                    Op::Add => {
                        *ours.current(Instant::from_nanos(now)) += 1;
                        *plain.current(now) += 1;
                    }
                    Op::Clear => {
                        ours.clear();
                        plain.buckets.fill((0, 0));
                    }
                }
                prop_assert_eq!(
                    *ours.current(Instant::from_nanos(now)),
                    *plain.current(now)
                );
                let mut live: Vec<u64> = ours.live().copied().collect();
                live.sort_unstable();
                prop_assert_eq!(live, plain.live());
            }
        }
    }
}
