//! The one random number generator in the core: SplitMix64, seeded by the
//! caller, never by the system.
//!
//! Jitter must be reproducible: a simulation replays a seed, a snapshot pins
//! a retry schedule. So the generator's output is part of this crate's
//! behaviour, and it is written here (a dozen lines, with the reference
//! implementation's published outputs as a test) rather than taken from a
//! crate whose stream may change in a minor release.

/// SplitMix64 (Steele, Lea and Flood, 2014; the reference implementation is
/// Vigna's `splitmix64.c`). Equal seeds give equal streams.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl SplitMix64 {
    /// A generator whose stream is a function of `seed` alone.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// An independent stream for one of many users of one seed (a retrier
    /// id, a client number): the seed and the id are mixed, so neighbouring
    /// ids do not get overlapping streams.
    pub fn derive(seed: u64, id: u64) -> Self {
        let mut outer = SplitMix64::new(seed ^ mix(id.wrapping_add(GOLDEN_GAMMA)));
        SplitMix64::new(outer.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A value in `lo..=hi` (`lo` if `hi < lo`). The multiply-shift mapping
    /// is deterministic; its bias is below 2^-32 for spans under 2^32.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = u128::from(hi - lo) + 1;
        lo + ((u128::from(self.next_u64()) * span) >> 64) as u64
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(all(test, not(async_patterns_loom)))]
mod tests {
    use super::*;

    /// The first outputs of the reference `splitmix64.c` seeded with 0.
    #[test]
    fn matches_the_reference_implementation() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn between_stays_in_bounds_and_reaches_both_ends() {
        let mut rng = SplitMix64::new(7);
        let draws: Vec<u64> = (0..2_000).map(|_| rng.between(3, 6)).collect();
        assert!(draws.iter().all(|d| (3..=6).contains(d)));
        assert!(draws.contains(&3) && draws.contains(&6));
        assert_eq!(rng.between(5, 5), 5);
        assert_eq!(rng.between(9, 2), 9);
        let top = rng.between(0, u64::MAX); // the full range does not overflow
        let _ = top;
    }

    #[test]
    fn derived_streams_differ_by_id_and_repeat_by_seed() {
        let first = |seed, id| SplitMix64::derive(seed, id).next_u64();
        assert_eq!(first(1, 2), first(1, 2));
        assert_ne!(first(1, 2), first(1, 3));
        assert_ne!(first(1, 2), first(2, 2));
    }
}
