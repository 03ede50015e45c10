//! The recorder against the exact statistics of random samples: sorted
//! samples give the exact quantile at hdrhistogram's rank
//! (`max(1, ceil(q × n))`), and every reported percentile must lie between
//! it and its precision bound. Failing cases persist in
//! `stats_model.proptest-regressions`.

use std::time::Duration;

use async_patterns_stats::LatencyRecorder;
use proptest::prelude::*;

const MAX: Duration = Duration::from_secs(60);

fn samples() -> impl Strategy<Value = Vec<u64>> {
    // Latencies in ns across nine orders of magnitude, and clusters.
    let one = prop_oneof![
        1u64..=1_000,
        1_000u64..=10_000_000,
        10_000_000u64..=60_000_000_000
    ];
    prop::collection::vec(one, 1..400)
}

/// The sample at rank `max(1, ⌈n × num / den⌉)`, in integers: the
/// quantile is the exact fraction `num / den`.
fn exact(sorted: &[u64], (num, den): (usize, usize)) -> u64 {
    let rank = (sorted.len() * num).div_ceil(den).max(1);
    sorted[rank - 1]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn percentiles_are_within_precision_of_exact_quantiles(values in samples(), digits in 1u8..=5) {
        let mut r = LatencyRecorder::new(digits, MAX).unwrap();
        for &v in &values {
            r.record(Duration::from_nanos(v));
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let s = r.summary();
        prop_assert_eq!(s.count, values.len() as u64);
        prop_assert_eq!(s.max, Duration::from_nanos(*sorted.last().unwrap()));
        let sum: u128 = values.iter().map(|&v| u128::from(v)).sum();
        prop_assert_eq!(s.mean, Duration::from_nanos((sum / values.len() as u128) as u64));
        let unit = 10u64.pow(u32::from(digits));
        for (q, got) in [((1, 2), s.p50), ((19, 20), s.p95), ((99, 100), s.p99), ((999, 1000), s.p999)] {
            let want = exact(&sorted, q);
            let got = u64::try_from(got.as_nanos()).unwrap();
            prop_assert!(
                want <= got && got <= want + want / unit + 1 && got <= *sorted.last().unwrap(),
                "quantile {}/{} = {} ns, exact {} ns, {} digits", q.0, q.1, got, want, digits
            );
        }
    }

    #[test]
    fn merge_equals_recording_everything_once(values in samples(), split in 0usize..8) {
        let new = || LatencyRecorder::new(3, MAX).unwrap();
        let (mut parts, mut whole) = (vec![new(), new(), new()], new());
        for (i, &v) in values.iter().enumerate() {
            parts[(i + split) % 3].record(Duration::from_nanos(v));
            whole.record(Duration::from_nanos(v));
        }
        let mut merged = new();
        for p in &parts {
            merged.merge(p).unwrap();
        }
        prop_assert_eq!(merged.summary(), whole.summary());
    }
}
