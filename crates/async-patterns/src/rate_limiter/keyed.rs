//! A keyed rate limiter: an independent GCRA bucket per key, in bounded
//! memory.
//!
//! Keys live in shards, each a hash table under its own mutex and with an
//! equal share of `max_keys`: one shard per 64 keys of `max_keys`, a power
//! of two from 1 to 16 (under 128 keys, one shard: any `max_keys` keys fit;
//! from 1,024, sixteen). A key is hashed once per check; that hash picks
//! the shard and finds the key in it.
//!
//! **The hasher is a choice to make.** [`KeyedRateLimiter::new`] hashes with
//! std's SipHash under fixed keys: no random seed, so a simulation that uses
//! the limiter stays a pure function of its seed. But fixed keys are public
//! keys: when outsiders choose the keys (client addresses, user names), they
//! can pick ones that collide and make every check slow (hash flooding). In
//! production, give it a randomly keyed hasher:
//!
//! ```
//! use std::hash::RandomState;
//! use std::num::NonZeroUsize;
//! use async_patterns::{KeyedRateLimiter, ManualClock, Quota};
//!
//! let limiter: KeyedRateLimiter<String, _, _> = KeyedRateLimiter::with_hasher(
//!     Quota::per_second(10).unwrap(),
//!     ManualClock::new(), // a real clock in production
//!     NonZeroUsize::new(100_000).unwrap(),
//!     RandomState::new(),
//! );
//! assert!(limiter.check_key(&"203.0.113.7".to_string()).is_ok());
//! ```
//!
//! A key whose bucket is full
//! again is *idle*: dropping it changes no decision (an absent key is a full
//! bucket), so idle keys are evicted whenever a shard reaches its share of
//! the capacity, and on [`retain_recent`](KeyedRateLimiter::retain_recent).
//! If a shard is full of busy keys, a new key is refused as "not now" with
//! the instant the first of them goes idle: memory stays bounded, no key is
//! ever granted extra capacity, and nobody is locked out for longer than one
//! burst takes to refill.
//!
//! # Guarantees, and the check that proves each
//!
//! | guarantee | checked by |
//! |---|---|
//! | each key's decisions equal an independent token-bucket model's exactly, while its shard has room | proptest `keyed_limiter_matches_independent_models` (`tests/rate_limiter_model.rs`) |
//! | with shards full of busy keys, no key is ever admitted beyond its own model, and no refusal is for longer than one burst's refill; `n == 0` is always admitted | proptest `tight_keyed_limiter_never_grants_extra_and_never_locks_out`; unit test `a_full_shard_refuses_until_its_first_key_goes_idle_but_admits_zero_cost` |
//! | never more than `max_keys` (rounded up to a multiple of the shard count) keys are held; under 128, any `max_keys` busy keys are held at once | unit tests `keyed_memory_is_bounded_and_idle_keys_are_evicted`, `a_small_limiter_holds_any_max_keys_keys`, `shards_follow_max_keys`, `keys_of_one_shard_fill_only_that_shard` |
//! | evicting a key never grants it extra capacity; a new key refused for lack of room is told when room frees up (when the first busy key goes idle) | unit tests `keyed_memory_is_bounded_and_idle_keys_are_evicted`, `a_full_shard_refuses_until_its_first_key_goes_idle_but_admits_zero_cost` |
//! | concurrent checks on one key are linearizable and other keys are unaffected | loom `loom_keyed_checks_on_one_key_are_linearizable` (a new key), `loom_keyed_checks_on_a_held_key_are_linearizable` (a key already held, burst 2) (`tests/loom_rate_limiter.rs`) |

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
use std::num::NonZeroUsize;

use hashbrown::HashTable;

use super::{CheckError, NotUntil, Quota, gcra};
use crate::sync::{Mutex, lock};
use crate::time::{Clock, Instant};

/// The most shards a limiter is split into (from 1,024 keys).
const MAX_SHARDS: usize = 16;
/// A shard is made only for every this many keys of `max_keys`, so a small
/// limiter is one shard and holds any `max_keys` keys.
const KEYS_PER_SHARD: usize = 64;

/// How many shards `max_keys` keys are split into: the largest power of
/// two at most `max_keys / 64`, from 1 to 16.
fn shard_count(max_keys: usize) -> usize {
    let n = (max_keys / KEYS_PER_SHARD).clamp(1, MAX_SHARDS);
    1 << n.ilog2()
}

type FixedState = BuildHasherDefault<DefaultHasher>;

/// A rate limiter with an independent bucket per key, hashing keys with
/// `S`. See the [module docs](self), on choosing the hasher.
pub struct KeyedRateLimiter<K, C, S = BuildHasherDefault<DefaultHasher>> {
    clock: C,
    quota: Quota,
    per_shard: usize,
    /// The shard count less one (the count is a power of two).
    shard_mask: usize,
    hasher: S,
    shards: Box<[Mutex<HashTable<Held<K>>>]>,
}

/// A key held: its hash (to move it when the table grows) and its bucket's
/// theoretical arrival time (TAT).
struct Held<K> {
    key: K,
    hash: u64,
    tat: u64,
}

/// The shard of a hash: bits from 32 up (32–35 at most), which neither the
/// table's bucket index (low bits) nor its tag (top 7 bits) uses, so keys
/// of one shard still spread over its table.
fn shard_of(hash: u64, shard_mask: usize) -> usize {
    (hash >> 32) as usize & shard_mask
}

impl<K: Hash + Eq + Clone, C: Clock> KeyedRateLimiter<K, C> {
    /// A limiter that holds state for at most `max_keys` keys (rounded up to
    /// a multiple of its shard count), every key starting with a full
    /// bucket. Under 128, it is one shard: any `max_keys` busy keys are
    /// held at once. Above, each of up to 16 shards holds its share, and a
    /// key's hash picks its shard, so size `max_keys` above the keys you
    /// expect at once: a key whose shard is full of busy keys is refused
    /// until the first of them goes idle, even if other shards have room.
    ///
    /// It hashes with fixed keys: deterministic, for tests and simulations. For keys
    /// outsiders choose, use [`with_hasher`](Self::with_hasher) and a
    /// randomly keyed hasher (see the [module docs](self)).
    pub fn new(quota: Quota, clock: C, max_keys: NonZeroUsize) -> Self {
        Self::with_hasher(quota, clock, max_keys, FixedState::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock, S: BuildHasher> KeyedRateLimiter<K, C, S> {
    /// [`new`](KeyedRateLimiter::new) with the hasher given, e.g.
    /// `std::hash::RandomState::new()` in production.
    pub fn with_hasher(quota: Quota, clock: C, max_keys: NonZeroUsize, hasher: S) -> Self {
        let shards = shard_count(max_keys.get());
        KeyedRateLimiter {
            clock,
            quota,
            per_shard: max_keys.get().div_ceil(shards),
            shard_mask: shards - 1,
            hasher,
            shards: (0..shards).map(|_| Mutex::new(HashTable::new())).collect(),
        }
    }

    /// The quota every key gets.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Admits one cell for `key` now, or says when it would be admitted.
    pub fn check_key(&self, key: &K) -> Result<(), NotUntil> {
        super::refused(self.take(key, self.quota.interval))
    }

    /// Admits `n` cells for `key` at once; see
    /// [`RateLimiter::check_n`](super::RateLimiter::check_n).
    pub fn check_key_n(&self, key: &K, n: u32) -> Result<(), CheckError> {
        super::refused(self.take(key, self.quota.cost(n)?)).map_err(CheckError::from)
    }

    /// Drops every idle key (one whose bucket is full again); returns how
    /// many it dropped. No decision changes: an absent key is a full bucket.
    pub fn retain_recent(&self) -> usize {
        let now = self.clock.now().as_nanos();
        self.shards
            .iter()
            .map(|shard| {
                let mut map = lock(shard);
                let before = map.len();
                map.retain(|held| held.tat > now);
                before - map.len()
            })
            .sum()
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self, key: &K, cost: u64) -> Result<(), NotUntil> {
        let now = self.clock.now().as_nanos();
        let tolerance = self.quota.tolerance();
        let hash = self.hasher.hash_one(key);
        let shard = &self.shards[shard_of(hash, self.shard_mask)];
        let mut map = lock(shard);
        if let Some(held) = map.find_mut(hash, |held| held.key == *key) {
            held.tat = gcra(held.tat, now, cost, tolerance)?;
            return Ok(());
        }
        if cost == 0 {
            // Nothing to book, so no state to hold: admitted even when the
            // shard has no room.
            return Ok(());
        }
        if map.len() >= self.per_shard {
            map.retain(|held| held.tat > now);
            if map.len() >= self.per_shard {
                // Full of busy keys: room frees up when the first goes idle.
                let first_idle = map.iter().map(|held| held.tat).min().unwrap_or(now);
                return Err(NotUntil(Instant::from_nanos(first_idle)));
            }
        }
        let tat = gcra(0, now, cost, tolerance)?;
        let held = Held {
            key: key.clone(),
            hash,
            tat,
        };
        map.insert_unique(hash, held, |held| held.hash);
        Ok(())
    }
}

impl<K, C, S> std::fmt::Debug for KeyedRateLimiter<K, C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("quota", &self.quota)
            .field("max_keys", &(self.per_shard * self.shards.len()))
            .finish()
    }
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;
    use crate::time::ManualClock;
    use std::time::Duration;

    /// The shard a key lands in when there are 16.
    fn shard_of_key(key: u64) -> usize {
        shard_of(FixedState::default().hash_one(key), MAX_SHARDS - 1)
    }

    /// A shard with room for 2 keys holds `a` (busy until 1 s) and `b`
    /// (busy until 1.3 s): a third key is refused until the first of them
    /// goes idle, 1 s, not the last; asking it for 0 cells is admitted, as
    /// it needs no room; and at 1 s it gets `a`'s place.
    #[test]
    fn a_full_shard_refuses_until_its_first_key_goes_idle_but_admits_zero_cost() {
        let (a, b, c) = (0u64, 1, 2);
        let clock = ManualClock::new();
        let quota = Quota::per_second(1).unwrap();
        let l = KeyedRateLimiter::new(quota, clock.clone(), NonZeroUsize::new(2).unwrap());
        l.check_key(&a).unwrap();
        clock.advance(Duration::from_millis(300));
        l.check_key(&b).unwrap();
        clock.advance(Duration::from_millis(200));
        let second = Instant::from_duration(Duration::from_secs(1));
        assert_eq!(l.check_key(&c), Err(NotUntil(second)));
        assert_eq!(l.check_key_n(&c, 0), Ok(()), "0 cells need no room");
        clock.advance_to(second);
        assert_eq!(l.check_key(&c), Ok(()));
    }

    #[test]
    fn shards_follow_max_keys() {
        let counts: Vec<usize> = [1, 63, 127, 128, 255, 256, 1_023, 1_024, 4_096, usize::MAX]
            .into_iter()
            .map(shard_count)
            .collect();
        assert_eq!(counts, [1, 1, 1, 2, 2, 4, 8, 16, 16, 16]);
        // Held at most: max_keys rounded up to a multiple of the shards.
        let held_at_most = |max: usize| {
            let clock = ManualClock::new();
            let quota = Quota::per_second(1).unwrap();
            let l: KeyedRateLimiter<u64, _> =
                KeyedRateLimiter::new(quota, clock, NonZeroUsize::new(max).unwrap());
            format!("{l:?}")
        };
        assert!(held_at_most(100).contains("max_keys: 100"));
        assert!(held_at_most(1_025).contains("max_keys: 1040"));
    }

    /// Under 128 keys the limiter is one shard: any `max_keys` busy keys
    /// are held at once, whatever their hashes, and one more is refused.
    #[test]
    fn a_small_limiter_holds_any_max_keys_keys() {
        for max in [1u64, 2, 16, 127] {
            let clock = ManualClock::new();
            let quota = Quota::per_second(1).unwrap();
            let l = KeyedRateLimiter::new(
                quota,
                clock,
                NonZeroUsize::new(usize::try_from(max).unwrap()).unwrap(),
            );
            for key in 0..max {
                assert_eq!(l.check_key(&key), Ok(()), "key {key} of {max}");
            }
            assert!(l.check_key(&max).is_err(), "{max} + 1 busy keys held");
        }
    }

    /// With 16 shards of 64, the 65th busy key of one shard is refused
    /// while a key of another shard is still admitted.
    #[test]
    fn keys_of_one_shard_fill_only_that_shard() {
        let first = shard_of_key(0);
        let same: Vec<u64> = (0u64..10_000)
            .filter(|&k| shard_of_key(k) == first)
            .take(65)
            .collect();
        // Bounded searches, so a broken shard_of fails here, not hangs.
        let other = (0u64..10_000).find(|&k| shard_of_key(k) != first).unwrap();
        let clock = ManualClock::new();
        let quota = Quota::per_second(1).unwrap();
        let l = KeyedRateLimiter::new(quota, clock, NonZeroUsize::new(1_024).unwrap());
        for key in &same[..64] {
            assert_eq!(l.check_key(key), Ok(()));
        }
        assert!(l.check_key(&same[64]).is_err(), "its shard is full");
        assert_eq!(l.check_key(&other), Ok(()), "another shard has room");
        assert_eq!(l.len(), 65);
    }

    /// With a randomly keyed hasher (as in production), keys are still
    /// independent and bounded.
    #[test]
    fn a_random_hasher_keeps_keys_independent() {
        let clock = ManualClock::new();
        let quota = Quota::per_second(1).unwrap();
        let l = KeyedRateLimiter::with_hasher(
            quota,
            clock,
            // 64 per shard: room for every key wherever it lands.
            NonZeroUsize::new(1024).unwrap(),
            std::hash::RandomState::new(),
        );
        for key in 0..64u32 {
            l.check_key(&key).unwrap();
            assert!(l.check_key(&key).is_err(), "{key}");
        }
        assert_eq!(l.len(), 64);
    }

    #[test]
    fn keys_are_independent() {
        let clock = ManualClock::new();
        let quota = Quota::per_second(1).unwrap();
        let l = KeyedRateLimiter::new(quota, clock, NonZeroUsize::new(64).unwrap());
        l.check_key(&"a").unwrap();
        assert!(l.check_key(&"a").is_err());
        l.check_key(&"b").unwrap();
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn keyed_memory_is_bounded_and_idle_keys_are_evicted() {
        let clock = ManualClock::new();
        let quota = Quota::per_second(1).unwrap().with_burst(2).unwrap();
        let max = NonZeroUsize::new(32).unwrap(); // one shard of 32
        let l = KeyedRateLimiter::new(quota, clock.clone(), max);
        let mut refused = Vec::new();
        let mut admitted = Vec::new();
        for key in 0..1_000u32 {
            match l.check_key(&key) {
                Ok(()) => admitted.push(key),
                Err(e) => refused.push(e.earliest()),
            }
            assert!(l.len() <= 32, "{} keys held", l.len());
        }
        assert_eq!(admitted.len(), 32, "1,000 busy keys cannot fit in 32");
        // Each held key spent 1 of 2 cells, so it goes idle after one
        // interval: that is when room frees up.
        assert!(
            refused
                .iter()
                .all(|&at| at == Instant::from_nanos(1_000_000_000))
        );
        // The churn never reset a held key: each has exactly one cell left.
        for key in &admitted {
            l.check_key(key).unwrap();
            assert!(l.check_key(key).is_err());
        }
        clock.advance(Duration::from_secs(1));
        assert_eq!(l.retain_recent(), 0, "bucket still refilling: busy");
        clock.advance(Duration::from_secs(1));
        assert_eq!(l.retain_recent(), 32, "full again: idle, evicted");
        assert!(l.is_empty());
        l.check_key(&1_000).unwrap();
    }
}
