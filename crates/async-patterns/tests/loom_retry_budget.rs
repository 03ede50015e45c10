//! loom model checks of the retry budget shared by concurrent retriers.
//! Run with `scripts/loom.sh`.
#![cfg(async_patterns_loom)]

#[path = "support/loom_model.rs"]
mod loom_model;

use std::sync::Arc;
use std::time::Duration;

use async_patterns::retry::RetryBudget;
use async_patterns::time::Instant;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// Three retriers race for a floor of two retries: exactly two get one
/// (never three, and an available retry is never refused).
#[test]
fn loom_budget_withdrawals_never_exceed_the_allowance() {
    loom_model::check("budget_withdrawals_never_exceed_the_allowance", || {
        let budget = Arc::new(RetryBudget::new(0.0, 1, Duration::from_secs(2)).unwrap());
        let granted = Arc::new(AtomicUsize::new(0));
        let spawn = || {
            let (budget, granted) = (budget.clone(), granted.clone());
            thread::spawn(move || {
                if budget.try_withdraw(Instant::ZERO) {
                    granted.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let (a, b) = (spawn(), spawn());
        spawn().join().unwrap();
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(granted.load(Ordering::SeqCst), 2);
        assert_eq!(budget.available(Instant::ZERO), 0);
    });
}

/// A call's deposit races a retry's withdrawal at one retry per call: the
/// retry is granted only if the deposit came first, and never more retries
/// than calls.
#[test]
fn loom_budget_deposit_races_withdrawal() {
    loom_model::check("budget_deposit_races_withdrawal", || {
        let budget = Arc::new(RetryBudget::new(1.0, 0, Duration::from_secs(1)).unwrap());
        let depositor = {
            let budget = budget.clone();
            thread::spawn(move || budget.deposit(Instant::ZERO))
        };
        let granted = budget.try_withdraw(Instant::ZERO);
        depositor.join().unwrap();
        let left = budget.available(Instant::ZERO);
        assert_eq!(
            left + u64::from(granted),
            1,
            "retries + left must equal calls"
        );
    });
}
