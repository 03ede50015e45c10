//! The checker's speed on generated key-value histories, and where it
//! starts answering *unknown*:
//!
//! ```text
//! cargo run -p async-patterns-linearize --release --example throughput [-- --quick]
//! ```
//!
//! A history is made by a plain simulation of `clients` clients, each
//! calling one operation after another on `keys` keys (puts of unique
//! values, gets and compare-and-sets, a third each), each taking effect at
//! a random instant inside its call (so the history is linearizable by
//! construction). A share of the operations lose their answer: their
//! outcome is unknown (each took effect or not, at random). Printed per
//! history: operations, events (a call and a return each) per second of
//! checking, the verdict within the budget (20,000,000 steps), and the
//! check's time (the median of 3 runs, one thread). Every verdict must be
//! linearizable or unknown; a "not linearizable" is a bug and exits 1.

use std::collections::BTreeMap;
use std::process::ExitCode;

use async_patterns_linearize::models::{KeyValue, KvOp, KvOut};
use async_patterns_linearize::{Op, Verdict, check};

/// SplitMix64, for the generator (seeded: every run makes the same
/// histories).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A linearizable history of `ops` operations.
fn generate(
    ops: usize,
    clients: u64,
    keys: u64,
    unknown_permille: u64,
    seed: u64,
) -> Vec<Op<KvOp, KvOut>> {
    let mut rng = Rng(seed);
    // Per operation: (client, input, call, return, effect instant, answered, applied)
    let mut planned = Vec::with_capacity(ops);
    let mut free_at = vec![0u64; clients as usize];
    for n in 0..ops {
        let c = rng.below(clients);
        let call = free_at[c as usize] + rng.below(5);
        let ret = call + 1 + rng.below(20);
        free_at[c as usize] = ret + 1;
        let effect = call + rng.below(ret - call + 1);
        let key = format!("k{}", rng.below(keys));
        let input = match rng.below(3) {
            0 => KvOp::Put(key, format!("{c}.{n}")),
            1 => KvOp::Get(key),
            _ => {
                let expected = (rng.below(2) == 0)
                    .then(|| format!("{}.{}", rng.below(clients), rng.below(n as u64 + 1)));
                KvOp::Cas(key, expected, format!("{c}.{n}"))
            }
        };
        let answered = rng.below(1000) >= unknown_permille;
        // An operation that lost its answer took effect, or not, at random.
        let applied = answered || rng.below(2) == 0;
        planned.push((c, input, call, ret, effect, answered, applied));
    }
    // Apply the effects in the order of their instants to find each output.
    let mut order: Vec<usize> = (0..ops).collect();
    order.sort_by_key(|&i| (planned[i].4, i));
    let mut store: BTreeMap<String, String> = BTreeMap::new();
    let mut outputs = vec![KvOut::Done; ops];
    for i in order {
        let (_, input, _, _, _, _, applied) = &planned[i];
        if !applied {
            continue;
        }
        outputs[i] = match input {
            KvOp::Get(k) => KvOut::Value(store.get(k).cloned()),
            KvOp::Put(k, v) | KvOp::Append(k, v) => {
                store.insert(k.clone(), v.clone());
                KvOut::Done
            }
            KvOp::Cas(k, expected, new) => {
                let swaps = store.get(k) == expected.as_ref();
                if swaps {
                    store.insert(k.clone(), new.clone());
                }
                KvOut::Swapped(swaps)
            }
        };
    }
    planned
        .into_iter()
        .zip(outputs)
        .map(|((c, input, call, ret, _, answered, _), out)| {
            if answered {
                Op::returned(c, input, call, ret, out)
            } else {
                Op::unknown(c, input, call)
            }
        })
        .collect()
}

/// Checks `h` (the median of 3 runs; one, if it ran out of budget), and
/// prints its row.
fn row(h: &[Op<KvOp, KvOut>], clients: u64, keys: u64, unknown: u64) -> bool {
    const BUDGET: u64 = 20_000_000;
    let mut times = Vec::new();
    let mut verdict = Verdict::Linearizable;
    for _ in 0..3 {
        #[allow(clippy::disallowed_methods)] // a benchmark's own wall clock
        let start = std::time::Instant::now();
        verdict = check(&KeyValue, h, BUDGET);
        times.push(start.elapsed().as_secs_f64());
        if matches!(verdict, Verdict::Unknown { .. }) {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    let secs = times[times.len() / 2];
    let (said, ok) = match &verdict {
        Verdict::Linearizable => ("linearizable".to_string(), true),
        Verdict::Unknown { steps } => (format!("**unknown** ({steps} steps)"), true),
        Verdict::NotLinearizable(_) => ("NOT LINEARIZABLE (a bug)".to_string(), false),
        Verdict::Malformed { op } => (format!("MALFORMED at operation {op} (a bug)"), false),
    };
    println!(
        "| {} | {clients} | {keys} | {:.0}% | {said} | {:.2} | {:.2e} |",
        h.len(),
        unknown as f64 / 10.0,
        secs * 1e3,
        (2 * h.len()) as f64 / secs
    );
    ok
}

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[100, 1_000, 10_000]
    } else {
        &[100, 1_000, 10_000, 100_000]
    };
    let mut ok = true;
    println!("By length (8 clients on 10 keys):\n");
    println!(
        "| operations | clients | keys | unknown outcomes | verdict | check time (ms) | events / s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &unknown in &[0u64, 10, 100] {
        for &ops in sizes {
            ok &= row(&generate(ops, 8, 10, unknown, 7), 8, 10, unknown);
        }
    }
    println!("\nBy concurrency on one key (1,000 operations): where it starts saying unknown\n");
    println!(
        "| operations | clients | keys | unknown outcomes | verdict | check time (ms) | events / s |"
    );
    println!("|---|---|---|---|---|---|---|");
    let clients: &[u64] = if quick {
        &[2, 4, 8]
    } else {
        &[2, 4, 6, 8, 12, 16]
    };
    for &unknown in &[0u64, 100] {
        for &c in clients {
            ok &= row(&generate(1_000, c, 1, unknown, 7), c, 1, unknown);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
