//! The crate root re-exports every pattern's main types, and no two
//! modules' globs collide: a name imported by two globs would be ambiguous
//! (error E0659) the moment it is used, so this file uses every name through
//! the globs, and checks the root's names are the modules' own types.

use std::any::type_name;

use async_patterns::{
    adaptive::*, circuit_breaker::*, deadline::*, fan_out::*, pipeline::*, rate_limiter::*,
    retry::*, rng::*, semaphore::*, time::*,
};

/// `T`'s path, through the glob; `Root` must be the same type.
fn same<T: ?Sized, Root: ?Sized>() -> &'static str {
    assert_eq!(type_name::<T>(), type_name::<Root>());
    type_name::<T>()
}

#[test]
fn every_module_glob_imports_together_and_the_root_names_the_same_types() {
    type Clk = ManualClock;
    let paths = [
        same::<AdaptiveConfig, async_patterns::AdaptiveConfig>(),
        same::<AdaptiveConfigBuilder, async_patterns::AdaptiveConfigBuilder>(),
        same::<AdaptiveConfigError, async_patterns::AdaptiveConfigError>(),
        same::<AdaptiveLimit<Clk>, async_patterns::AdaptiveLimit<Clk>>(),
        same::<AdaptivePermit<'static, Clk>, async_patterns::AdaptivePermit<'static, Clk>>(),
        same::<OwnedAdaptivePermit<Clk>, async_patterns::OwnedAdaptivePermit<Clk>>(),
        same::<Overloaded, async_patterns::Overloaded>(),
        same::<BreakerConfig, async_patterns::BreakerConfig>(),
        same::<BreakerConfigBuilder, async_patterns::BreakerConfigBuilder>(),
        same::<BreakerConfigError, async_patterns::BreakerConfigError>(),
        same::<BreakerSetting, async_patterns::BreakerSetting>(),
        same::<BreakerState, async_patterns::BreakerState>(),
        same::<BreakerPermit<'static, Clk>, async_patterns::BreakerPermit<'static, Clk>>(),
        same::<OwnedBreakerPermit<Clk>, async_patterns::OwnedBreakerPermit<Clk>>(),
        same::<CircuitBreaker<Clk>, async_patterns::CircuitBreaker<Clk>>(),
        same::<CallError<()>, async_patterns::CallError<()>>(),
        same::<Refused, async_patterns::Refused>(),
        same::<Transition, async_patterns::Transition>(),
        same::<Deadline, async_patterns::Deadline>(),
        same::<Elapsed, async_patterns::Elapsed>(),
        same::<Order, async_patterns::Order>(),
        same::<OnError<()>, async_patterns::OnError<()>>(),
        same::<Report, async_patterns::Report>(),
        same::<Shutdown, async_patterns::Shutdown>(),
        same::<Quota, async_patterns::Quota>(),
        same::<QuotaError, async_patterns::QuotaError>(),
        same::<NotUntil, async_patterns::NotUntil>(),
        same::<CheckError, async_patterns::CheckError>(),
        same::<RateLimiter<Clk>, async_patterns::RateLimiter<Clk>>(),
        same::<KeyedRateLimiter<u64, Clk>, async_patterns::KeyedRateLimiter<u64, Clk>>(),
        same::<RetryPolicy, async_patterns::RetryPolicy>(),
        same::<RetryPolicyBuilder, async_patterns::RetryPolicyBuilder>(),
        same::<RetryConfigError, async_patterns::RetryConfigError>(),
        same::<Retrier<Clk>, async_patterns::Retrier<Clk>>(),
        same::<RetryBudget, async_patterns::RetryBudget>(),
        same::<BudgetError, async_patterns::BudgetError>(),
        same::<Jitter, async_patterns::Jitter>(),
        same::<Decision, async_patterns::Decision>(),
        same::<GaveUp, async_patterns::GaveUp>(),
        same::<RetryError<()>, async_patterns::RetryError<()>>(),
        same::<RetryEvent, async_patterns::RetryEvent>(),
        same::<Attempt, async_patterns::Attempt>(),
        same::<Schedule, async_patterns::Schedule>(),
        same::<SplitMix64, async_patterns::SplitMix64>(),
        same::<Semaphore, async_patterns::Semaphore>(),
        same::<SemaphorePermit<'static>, async_patterns::SemaphorePermit<'static>>(),
        same::<OwnedSemaphorePermit, async_patterns::OwnedSemaphorePermit>(),
        same::<AcquireError, async_patterns::AcquireError>(),
        same::<TryAcquireError, async_patterns::TryAcquireError>(),
        same::<CapacityError, async_patterns::CapacityError>(),
        same::<Instant, async_patterns::Instant>(),
        same::<ManualClock, async_patterns::ManualClock>(),
    ];
    // Every name says which pattern it is from: no two share a last segment.
    let mut last: Vec<&str> = paths
        .iter()
        .map(|p| p.split('<').next().unwrap().rsplit("::").next().unwrap())
        .collect();
    last.sort_unstable();
    let before = last.len();
    last.dedup();
    assert_eq!(last.len(), before);
    // The functions too, through the globs.
    let _ = (
        gather::<Vec<std::future::Ready<()>>>,
        timeout::<Clk, std::future::Ready<()>>,
    );
}
