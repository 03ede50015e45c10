#!/usr/bin/env python3
"""Breaks the patterns on purpose, once per known bug class, and reports
which checks catch each break. A check that catches nothing proves nothing.

    python3 scripts/mutations.py            # every mutation
    python3 scripts/mutations.py skip-wakeup limiter-ignore-burst
    python3 scripts/mutations.py --no-loom breaker-slow-at-threshold   # tests only, minutes faster

Each mutation is applied to the working tree, the unit, model and
runtime-agnostic tests and the loom models are run against it (each with a
time limit: a hang counts as caught, and is reported as such), and the file is
restored. Exit status 1 if any mutation survives every check.
"""
import os
import pathlib
import re
import signal
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEM = "crates/async-patterns/src/semaphore.rs"
SEM_WAITLIST = "crates/async-patterns/src/semaphore/waitlist.rs"
LIMITER = "crates/async-patterns/src/rate_limiter.rs"
KEYED = "crates/async-patterns/src/rate_limiter/keyed.rs"
BREAKER = "crates/async-patterns/src/circuit_breaker/breaker.rs"
BREAKER_POLICY = "crates/async-patterns/src/circuit_breaker/policy.rs"
BREAKER_CONFIG = "crates/async-patterns/src/circuit_breaker/config.rs"
BREAKER_WINDOW = "crates/async-patterns/src/circuit_breaker/window.rs"
BUCKETS = "crates/async-patterns/src/buckets.rs"
RETRY = "crates/async-patterns/src/retry.rs"
RETRY_POLICY = "crates/async-patterns/src/retry/policy.rs"
BUDGET = "crates/async-patterns/src/retry/budget.rs"
DEADLINE = "crates/async-patterns/src/deadline.rs"
FAN_OUT = "crates/async-patterns/src/fan_out.rs"
ADAPTIVE = "crates/async-patterns/src/adaptive.rs"
PIPELINE = "crates/async-patterns/src/pipeline.rs"
TIME = "crates/async-patterns/src/time.rs"

# (name, what it breaks, file, text to replace, replacement)
MUTATIONS = [
    ("skip-wakeup", "a waiter served by a release is never woken", SEM_WAITLIST,
     "node.status = Status::Granted;\n                wakes.push(node.waker.take());",
     "node.status = Status::Granted;\n                drop(node.waker.take());"),
    ("leak-on-cancel", "a granted-but-unpolled acquire that is dropped keeps its permits", SEM_WAITLIST,
     "Status::Granted => node.needed,", "Status::Granted => 0,"),
    ("serve-out-of-order", "returned permits go to the newest waiter, not the oldest", SEM_WAITLIST,
     "let Some(head) = list.head else { break };", "let Some(head) = list.tail else { break };"),
    ("double-release", "a forgotten permit is also released on drop", SEM,
     "    pub fn forget(mut self) {\n        self.sem.forget_held(std::mem::take(&mut self.permits));\n    }\n}\n\nimpl Drop for OwnedSemaphorePermit",
     "    pub fn forget(mut self) {\n        self.sem.forget_held(self.permits);\n        let _ = &mut self;\n    }\n}\n\nimpl Drop for OwnedSemaphorePermit"),
    ("release-bypasses-queue", "a release puts permits in the free pool even while waiters queue", SEM_WAITLIST,
     "while cur & QUEUED == 0 {", "loop {"),
    ("close-forgets-waiters", "close() leaves queued waiters waiting", SEM,
     "node.status = Status::Failed(AcquireError::Closed);", "let _ = AcquireError::Closed;"),
    ("no-capacity-check", "a request above the total waits instead of failing", SEM_WAITLIST,
     "if n > list.total {", "if n > list.total && false {"),
    ("limiter-ignore-burst", "the bucket holds one cell more than the burst", LIMITER,
     "self.interval * u64::from(self.burst)\n", "self.interval * (u64::from(self.burst) + 1)\n"),
    ("limiter-refill-on-backward-step", "a clock that steps far back resets the bucket to full", LIMITER,
     "\n    let base = tat.max(now);\n",
     "\n    let base = if now.saturating_add(tolerance) < tat { now.saturating_sub(tolerance) } else { tat.max(now) };\n"),
    ("limiter-late-not-until", "a refusal names an instant 1 ns later than the earliest", LIMITER,
     "        Err(NotUntil(Instant::from_nanos(allowed_at)))\n",
     "        Err(NotUntil(Instant::from_nanos(allowed_at + 1)))\n"),
    ("limiter-lost-update", "a check that loses the compare-and-swap race stores its TAT anyway", LIMITER,
     "                Ok(_) => return Ok(()),\n                Err(actual) => tat = actual,",
     "                Ok(_) => return Ok(()),\n                Err(_) => { self.tat.store(new_tat, Ordering::Release); return Ok(()); }"),
    ("limiter-wait-keeps-cancelled-cells", "a dropped wait does not give its booked cells back", LIMITER,
     "        if !self.redeemed {\n", "        if false && !self.redeemed {\n"),
    ("limiter-wait-returns-twice", "a dropped wait gives its cells back twice", LIMITER,
     "            self.limiter.tat.fetch_sub(self.cost, Ordering::AcqRel);\n",
     "            self.limiter.tat.fetch_sub(self.cost, Ordering::AcqRel);\n            self.limiter.tat.fetch_sub(self.cost, Ordering::AcqRel);\n"),
    ("keyed-evicts-busy-keys", "a full shard drops busy keys too, resetting their buckets", KEYED,
     "        if map.len() >= self.per_shard {\n            map.retain(|held| held.tat > now);\n",
     "        if map.len() >= self.per_shard {\n            map.clear();\n"),
    ("keyed-shared-bucket", "every key shares one bucket", KEYED,
     "        if let Some(held) = map.find_mut(hash, |held| held.key == *key) {",
     "        if let Some(held) = map.iter_mut().next() {"),
    ("breaker-forgets-generation", "outcomes of calls from an earlier state move the new state", BREAKER_POLICY,
     "        if generation != self.generation {\n            return None;\n        }\n", ""),
    ("breaker-extra-probe", "half-open admits P + 1 probes", BREAKER_POLICY,
     "if *in_flight >= self.config.half_open_probes {", "if *in_flight > self.config.half_open_probes {"),
    ("breaker-open-admits", "an open breaker lets calls through", BREAKER_POLICY,
     "            if now < until {\n                return Err(Refused::Open(until));",
     "            if false && now < until {\n                return Err(Refused::Open(until));"),
    ("breaker-drop-keeps-slot", "a dropped probe keeps its slot", BREAKER_POLICY,
     "        if let BreakerState::HalfOpen { in_flight, .. } = &mut self.state {\n            *in_flight = in_flight.saturating_sub(1);",
     "        if let BreakerState::HalfOpen { in_flight, .. } = &mut self.state {\n            let _ = in_flight;"),
    ("breaker-ignores-min-calls", "the rate trips before the minimum number of calls", BREAKER_WINDOW,
     "        if counts.calls < self.min_calls {", "        if counts.calls < self.min_calls && false {"),
    ("breaker-time-window-never-forgets", "a time window keeps counting buckets that have slid out", BUCKETS,
     ".filter(move |(stamp, _)| stamp + n > last)", ".filter(move |(stamp, _)| stamp + n > last || true)"),
    ("breaker-stale-fast-word", "the lock-free closed-state word is not told about a trip", BREAKER,
     "        self.fast.store(word, Ordering::Release);\n",
     "        if word != NOT_CLOSED {\n            self.fast.store(word, Ordering::Release);\n        }\n"),
    ("breaker-fold-loses-successes", "folding the lock-free successes reads and resets the count in two steps", BREAKER,
     "let left = self.fast.swap(generation << QUIET_BITS, Ordering::AcqRel) & QUIET_MAX;",
     "let left = self.fast.load(Ordering::Acquire) & QUIET_MAX;\n            self.fast.store(generation << QUIET_BITS, Ordering::Release);"),
    ("breaker-quiet-success-any-generation", "a lock-free success from an earlier closed state counts in the current one", BREAKER,
     "while word >> QUIET_BITS == generation && word & QUIET_MAX > 0 {",
     "while word & NOT_CLOSED == 0 && word & QUIET_MAX > 0 {"),
    ("breaker-quiet-past-minimum", "the success that completes the minimum number of calls is counted lock-free, its trip deferred", BREAKER_POLICY,
     "        if w.trips(at_minimum) {", "        if w.trips(at_minimum) && false {"),
    ("breaker-backoff-never-resets", "the open duration keeps growing after a close", BREAKER_POLICY,
     "        self.open_next = self.config.open_for;\n        self.move_to(BreakerState::Closed, now, TransitionCause::ProbesSucceeded)",
     "        self.move_to(BreakerState::Closed, now, TransitionCause::ProbesSucceeded)"),
    ("retry-extra-attempt", "one attempt more than max_attempts", RETRY,
     "} else if number >= self.policy.max_attempts {", "} else if number > self.policy.max_attempts {"),
    ("retry-sleeps-past-deadline", "a retry whose sleep ends past max_elapsed is still made", RETRY,
     "} else if deadline.is_some_and(|d| wake >= d.instant()) {", "} else if deadline.is_some_and(|d| now >= d.instant()) {"),
    ("retry-ignores-budget", "retries are made when the budget is spent", RETRY,
     ".is_some_and(|budget| !budget.try_withdraw(now))", ".is_some_and(|budget| !budget.try_withdraw(now) && false)"),
    ("retry-retries-fatal", "a non-retryable error is retried", RETRY,
     "let gave_up = if decision == Decision::Stop {", "let gave_up = if false && decision == Decision::Stop {"),
    ("retry-one-stream-for-all", "every retrier draws the same jitter stream (tower's shared RNG)", RETRY_POLICY,
     "rng: SplitMix64::derive(self.seed, id),", "rng: SplitMix64::new(self.seed ^ (id & 0)),"),
    ("retry-full-jitter-overshoots", "full jitter can exceed its ceiling by 1 ns", RETRY_POLICY,
     "Jitter::Full => self.rng.between(0, ceiling),", "Jitter::Full => self.rng.between(0, ceiling + 1),"),
    ("budget-whole-percent", "the budget ratio is truncated to whole percent (tower#857)", BUDGET,
     "let ppm = millionths::of(ratio);", "let ppm = (ratio * 100.0) as u64 * 10_000;"),
    ("timeout-deadline-first", "the deadline beats a future that is ready at the same instant", DEADLINE,
     "        if let Poll::Ready(out) = this.fut.poll(cx) {\n            return Poll::Ready(Ok(out));\n        }\n        if this.sleep.is_none() {",
     "        if this.timer.now() >= this.deadline.instant() {\n            return Poll::Ready(Err(Elapsed { deadline: *this.deadline }));\n        }\n        if let Poll::Ready(out) = this.fut.poll(cx) {\n            return Poll::Ready(Ok(out));\n        }\n        if this.sleep.is_none() {"),
    ("timeout-late", "a timeout elapses 1 ns after its deadline", DEADLINE,
     "            let sleep = this.timer.sleep_until(this.deadline.instant());",
     "            let sleep = this.timer.sleep_until(this.deadline.instant() + Duration::from_nanos(1));"),
    ("fan-out-limit-plus-one", "fan-out runs L + 1 at once", FAN_OUT,
     "while this.running.len() < *this.limit {", "while this.running.len() <= *this.limit {"),
    ("gather-completion-order", "gather returns outcomes in completion order", FAN_OUT,
     "    slots[index] = Some(out);", "    let free = slots.iter().position(Option::is_none).unwrap_or(index);\n    slots[free] = Some(out);"),
    ("try-gather-leaks-the-rest", "try_gather returns at the first error and leaves the others alive", FAN_OUT,
     "    match drive::<_, NoTimer, _>(&mut stream, None, |i, o| o.map(|v| place(&mut out, i, v))).await {\n        Ended::Stopped(e) => Err(e),",
     "    match drive::<_, NoTimer, _>(&mut stream, None, |i, o| o.map(|v| place(&mut out, i, v))).await {\n        Ended::Stopped(e) => { std::mem::forget(stream); Err(e) }"),
    ("gather-until-keeps-late-running", "futures still running at the deadline are not dropped", FAN_OUT,
     "    drop(running);", "    std::mem::forget(running);"),
    ("adaptive-admits-one-more", "the bulkhead admits limit + 1 calls", ADAPTIVE,
     "if state.in_flight >= state.limit {", "if state.in_flight > state.limit {"),
    ("adaptive-drop-is-failure", "a dropped call shrinks the limit like a failure", ADAPTIVE,
     "                _ => before,\n", "                Ending::Abandoned => self.decreased(before),\n                _ => before,\n"),
    ("adaptive-grows-when-idle", "the limit grows on successes even while mostly unused", ADAPTIVE,
     "let busy = state.in_flight.saturating_mul(2) >= state.limit;", "let busy = true;"),
    ("pipeline-stage-overruns", "a stage runs one item more than its concurrency", PIPELINE,
     "Order::Ordered => Either::Left(calls.buffered(concurrency.get())),", "Order::Ordered => Either::Left(calls.buffered(concurrency.get() + 1)),"),
    ("pipeline-ordered-is-unordered", "ordered mode delivers items as they finish", PIPELINE,
     "        let stream = match self.order {", "        let stream = match Order::Unordered {"),
    ("pipeline-dead-letters-lost", "errors meant for the dead-letter sink are dropped", PIPELINE,
     "                    sink(e);\n", "                    let _ = (sink, e);\n"),
    ("pipeline-shutdown-ignored", "a shut-down source keeps yielding", PIPELINE,
     "            if state.down {\n                *this.slot = None;", "            if state.down && false {\n                *this.slot = None;"),
    ("pipeline-shutdown-no-wake", "shutdown does not wake a source waiting for an item", PIPELINE,
     "        for (_, waker) in wakers {\n            waker.wake();", "        for (_, waker) in wakers {\n            drop(waker);"),
    ("breaker-rate-in-float", "a rate threshold compared as rate x calls in f64 (0.55 x 100 = 55.00000000000001)", BREAKER_WINDOW,
     "        u64::from(count) * PARTS >= self.0 * u64::from(calls)", "        f64::from(count) >= self.0 as f64 / PARTS as f64 * f64::from(calls)"),
    ("breaker-slow-at-threshold", "a call of exactly the slow-call threshold counts as slow", BREAKER,
     "now.saturating_duration_since(started) > t,", "now.saturating_duration_since(started) >= t,"),
    ("breaker-half-open-ms-early", "the open deadline compared at millisecond grain: a probe up to 1 ms early", BREAKER_POLICY,
     "            if now < until {", "            if now.as_nanos() / 1_000_000 < until.as_nanos() / 1_000_000 {"),
    ("retry-ignores-retry-after", "a refusal's instant is ignored: the retry comes after the policy's delay alone", RETRY,
     "                wake = wake.max(at);", "                let _ = at;"),
    ("retry-fresh-deadline", "each retry is handed a fresh max_elapsed instead of what is left of it", RETRY,
     "            let error = match op(Attempt { number, deadline }).await {",
     "            let deadline = if number > 1 { self.policy.max_elapsed.map(|d| Deadline::at(self.timer.now() + d)) } else { deadline };\n            let error = match op(Attempt { number, deadline }).await {"),
    ("deadline-always-expired", "Deadline::is_expired always says yes", DEADLINE,
     "        clock.now() >= self.0\n", "        let _ = clock;\n        true\n"),
    ("guard-drops-read-at-signal", "an item read as the shutdown signal arrives is dropped", PIPELINE,
     "        let item = this.source.poll_next(cx);\n", "        let item = this.source.poll_next(cx);\n        if lock(&this.shutdown.inner).down {\n            return Poll::Ready(None);\n        }\n"),
    ("pipeline-report-miscounts", "the report multiplies instead of adding (cargo-mutants' += to *=)", PIPELINE,
     "                    report.delivered += 1;", "                    report.delivered *= 1;"),
    ("gather-until-creates-the-rest", "at the deadline, every input never started is created to be counted", FAN_OUT,
     "        (lo, Some(hi)) if lo == hi => lo,", "        (lo, Some(hi)) if lo == hi && false => lo,"),
    ("limiter-wait-ignores-burst", "a wait is booked at TAT - cost, not TAT - burst: it sleeps although the bucket has credit", LIMITER,
     "at: Instant::from_nanos(new_tat.saturating_sub(tolerance).max(now)),",
     "at: Instant::from_nanos(new_tat.saturating_sub(cost).max(now)),"),
    ("keyed-zero-cost-needs-room", "check_key_n(key, 0) for a new key is refused while its shard is full of busy keys", KEYED,
     "        if cost == 0 {\n            // Nothing to book, so no state to hold: admitted even when the\n            // shard has no room.\n            return Ok(());\n        }\n",
     ""),
    ("keyed-refusal-names-last-idle", "a new key refused for lack of room is told when the last busy key goes idle, not the first", KEYED,
     "let first_idle = map.iter().map(|held| held.tat).min().unwrap_or(now);",
     "let first_idle = map.iter().map(|held| held.tat).max().unwrap_or(now);"),
    ("keyed-check-outside-lock", "an existing key's TAT is read under the shard lock and written back under a second one (lost update)", KEYED,
     "        if let Some(held) = map.find_mut(hash, |held| held.key == *key) {\n            held.tat = gcra(held.tat, now, cost, tolerance)?;\n            return Ok(());\n        }\n",
     "        if let Some(tat) = map.find(hash, |held| held.key == *key).map(|held| held.tat) {\n            drop(map);\n            let new_tat = gcra(tat, now, cost, tolerance)?;\n            let mut map = lock(shard);\n            if let Some(held) = map.find_mut(hash, |held| held.key == *key) {\n                held.tat = new_tat;\n            }\n            return Ok(());\n        }\n"),
    ("retry-reports-after-sleep", "a retry is reported to the observer after its sleep, not before", RETRY,
     "            if let Some(observer) = &self.observer {\n                observer(&RetryEvent {\n                    id: self.id,\n                    failed_attempt: number,\n                    at: now,\n                    delay: wake.saturating_duration_since(now),\n                });\n            }\n            if wake > now {\n                self.timer.sleep_until(wake).await;\n            }\n",
     "            if wake > now {\n                self.timer.sleep_until(wake).await;\n            }\n            if let Some(observer) = &self.observer {\n                observer(&RetryEvent {\n                    id: self.id,\n                    failed_attempt: number,\n                    at: now,\n                    delay: wake.saturating_duration_since(now),\n                });\n            }\n"),
    ("breaker-publish-after-unlock", "the lock-free word is published after the lock is released", BREAKER,
     "        self.fast.store(word, Ordering::Release);\n        out\n",
     "        drop(guard);\n        self.fast.store(word, Ordering::Release);\n        out\n"),
    ("time-stale-now-lost-wakeup", "a sleep compares its deadline with a `now` read before taking the lock", TIME,
     "        let mut s = lock(&this.clock.inner.sleepers);\n        if s.now >= this.deadline.0 {",
     "        let now = this.clock.inner.now.load(Ordering::Acquire);\n        let mut s = lock(&this.clock.inner.sleepers);\n        if now >= this.deadline.0 {"),
    ("time-due-at-now-not-woken", "advance wakes only sleeps due strictly before the new time", TIME,
     "Some(next) => s.waiting.split_off(&(next, 0)),",
     "Some(next) => s.waiting.split_off(&(next - 1, 0)),"),
    ("time-advance-to-goes-back", "advance_to moves the clock back when given an earlier instant", TIME,
     "self.set_inner(|now| now.max(to.as_nanos()));",
     "self.set_inner(|_| to.as_nanos());"),
    ("pipeline-cancel-leaks-stream", "dropping run leaves the stages' in-flight items alive (the stream is detached)", PIPELINE,
     "        let mut stream = std::pin::pin!(self.stream);",
     "        let mut stream = Box::leak(Box::pin(self.stream));"),
    ("pipeline-waker-slot-per-poll", "every poll of a guarded source takes a new waker slot and abandons its old one", PIPELINE,
     "                Some(waker) => waker.clone_from(cx.waker()),",
     "                Some(_) => *this.slot = Some(state.wakers.insert(cx.waker().clone())),"),
    ("limiter-wait-books-from-now", "a wait books its cells from now, not after the bookings already made", LIMITER,
     "            let base = tat.max(now);",
     "            let base = now;"),
    ("limiter-insufficient-off-by-one", "check_n(burst + 1) is 'not yet' forever instead of Insufficient", LIMITER,
     "        if n > self.burst {",
     "        if n > self.burst.saturating_add(1) {"),
    ("limiter-zero-cells-divides", "Quota::new(0, period) divides by zero instead of returning ZeroCells", LIMITER,
     "        if cells == 0 {\n            return Err(QuotaError::ZeroCells);\n        }\n",
     ""),
    ("keyed-shard-holds-one-more", "a shard evicts only once it holds more than its share: one key too many per shard", KEYED,
     "        if map.len() >= self.per_shard {\n            map.retain",
     "        if map.len() > self.per_shard {\n            map.retain"),
    ("breaker-backoff-overflows", "a grown open duration past u64::MAX ns wraps instead of saturating", BREAKER_POLICY,
     "Duration::from_nanos(u64::try_from(grown.min(cap)).unwrap_or(u64::MAX))",
     "Duration::from_nanos(grown.min(cap) as u64)"),
    ("breaker-min-calls-equal-window-refused", "a minimum number of calls equal to the window size is refused", BREAKER_CONFIG,
     "                if min_calls > size {",
     "                if min_calls >= size {"),
    ("retry-unseeded-jitter-seeds-zero", "a jittered policy without a seed is built with seed 0 (a fleet in lockstep)", RETRY_POLICY,
     "            (None, _) => return Err(RetryConfigError::NoSeed),",
     "            (None, _) => 0,"),
    ("retry-accepts-infinite-factor", "an infinite or huge backoff factor is accepted", RETRY_POLICY,
     "if !(1.0..=millionths::MAX_FACTOR).contains(&self.factor) {",
     "if !(self.factor >= 1.0) {"),
    ("deadline-within-ignores-parent", "within gives a fresh timeout instead of the sooner of it and the parent", DEADLINE,
     "        self.min(Deadline::after(clock, d))",
     "        Deadline::after(clock, d)"),
    ("adaptive-accepts-backoff-one", "a backoff ratio of 1 (no decrease at all) is accepted", ADAPTIVE,
     "if !(self.backoff < 1.0 && millionths::of(self.backoff) > 0) {",
     "if !(self.backoff <= 1.0 && millionths::of(self.backoff) > 0) {"),
    ("sem-shrink-judges-old-total", "after permits are forgotten, waiters are judged against the old total", SEM_WAITLIST,
     "            if node.needed > total {",
     "            if node.needed > total + n {"),
    ("breaker-close-after-extra-success", "half-open needs S + 1 successes to close", BREAKER_POLICY,
     "if successes >= self.config.close_after {",
     "if successes > self.config.close_after {"),
    ("limiter-gcra-overflows", "the GCRA step adds without checking, overflowing near Instant::MAX", LIMITER,
     "    let Some(new_tat) = base.checked_add(cost) else {\n        // Only",
     "    let Some(new_tat) = Some(base + cost) else {\n        // Only"),
    ("adaptive-decrease-below-min", "a decrease is not clamped at min", ADAPTIVE,
     "(shrunk as u32).max(self.config.min)",
     "shrunk as u32"),
    ("adaptive-decrease-in-f64", "the decrease is an f64 product (100 x 0.99 gives 98)", ADAPTIVE,
     "let shrunk = millionths::scale(u128::from(limit), self.config.backoff_millionths);",
     "let shrunk = (f64::from(limit) * self.config.backoff) as u128;"),
    ("retry-ceiling-rounds-up", "a grown retry ceiling is rounded up, not down", RETRY_POLICY,
     "let grown = millionths::scale(u128::from(ceiling), self.factor);",
     "let grown = millionths::scale(u128::from(ceiling), self.factor)\n            + u128::from(millionths::scale(u128::from(ceiling), self.factor) * 1_000_000 != u128::from(ceiling) * u128::from(self.factor));"),
    ("budget-one-extra-retry", "the budget allows one retry more than its allowance", BUDGET,
     "        if used >= allowed {",
     "        if used > allowed {"),
]

TEST_TARGETS = [["--lib"]] + [["--test", t] for t in
                                ["semaphore", "semaphore_model", "runtime_agnostic", "rate_limiter_model",
                                 "rate_limiter", "circuit_breaker_model", "circuit_breaker_edges", "retry_model", "retry",
                                 "deadline_model", "fan_out_model", "adaptive_model", "pipeline_model", "pipeline"]]


def run(cmd, timeout, env=None):
    # A session of its own, so a hung test binary is killed with cargo on a
    # timeout instead of spinning on, orphaned, after the script moves on.
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env=env, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return None, out or ""


def failures(output):
    names = set(re.findall(r"^---- (\S+) stdout ----", output, re.M))
    names |= set(re.findall(r"^test (\S+) \.\.\. FAILED", output, re.M))
    # The summary block cargo prints at the end: "failures:" then indented names.
    for block in re.findall(r"^failures:\n((?:    \S+\n)+)", output, re.M):
        names |= set(block.split())
    # Panics name their test's thread (loom runs a model's threads on it too).
    names |= {n for n in re.findall(r"^thread '([^']+)' (?:\(\d+\) )?panicked", output, re.M)
              if n != "main"}
    return sorted(names)


def main():
    args = sys.argv[1:]
    loom = "--no-loom" not in args
    wanted = {a for a in args if a != "--no-loom"}
    unknown = wanted - {m[0] for m in MUTATIONS}
    if unknown:
        sys.exit(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    survived = []
    # Build once so the first mutation's timing is not all compile time.
    run(["cargo", "test", "-p", "async-patterns", "--no-run", "-q"], 900)
    for name, what, path, old, new in MUTATIONS:
        if wanted and name not in wanted:
            continue
        target = ROOT / path
        original = target.read_text()
        if original.count(old) != 1:
            print(f"{name}: pattern not found exactly once; update the mutation", flush=True)
            survived.append(name)
            continue
        pending = set((ROOT / "snapshots").glob("*.snap.new"))
        target.write_text(original.replace(old, new))
        caught = []
        try:
            for args in TEST_TARGETS:
                binary = args[-1].lstrip("-")
                code, out = run(["cargo", "test", "-q", "-p", "async-patterns", *args,
                                 "--no-fail-fast"], 120)
                if code is None:
                    caught.append(f"{binary}: hung (timed out)")
                elif code != 0:
                    fails = failures(out) or ["(build or unknown failure)"]
                    caught += [f"{binary}::{f}" for f in fails]
            code, out = run(["bash", "scripts/loom.sh"], 900) if loom else (0, "")
            if code is None:
                caught.append("loom: timed out")
            elif code != 0:
                caught += [f"loom::{f}" for f in failures(out)] or ["loom: failed"]
        finally:
            target.write_text(original)
            # A failing snapshot test leaves its new version beside the
            # committed one: it belongs to the break, not to the tree.
            for stale in set((ROOT / "snapshots").glob("*.snap.new")) - pending:
                stale.unlink()
        print(f"{name} ({what}):", flush=True)
        for c in caught or ["SURVIVED: no check caught it"]:
            print(f"    {c}", flush=True)
        if not caught:
            survived.append(name)
    sys.exit(1 if survived else 0)


if __name__ == "__main__":
    main()
