#!/usr/bin/env bash
# Runs the shuttle searches (crates/async-patterns/tests/shuttle_*.rs): the
# core under --cfg async_patterns_shuttle, many threads, random and PCT
# schedules, every execution's history checked for linearizability.
#
#   scripts/shuttle.sh                         # 10,000 executions per search
#   SHUTTLE_ITERATIONS=100000 scripts/shuttle.sh   # more
#
# Builds in its own target dir (target/shuttle), as scripts/loom.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/shuttle"
export RUSTFLAGS="${RUSTFLAGS:-} --cfg async_patterns_shuttle"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
cargo test --release -p async-patterns --test shuttle_patterns -- --nocapture --test-threads=1 "$@" 2>&1 | tee "$log"
passed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i == "passed;") s += $(i-1) } END { print s + 0 }' "$log")
[ "$passed" -gt 0 ] || { echo "shuttle: no test ran" >&2; exit 1; }
echo "shuttle: ${passed} searches passed in $(( $(date +%s) - start )) s (${SHUTTLE_ITERATIONS:-10000} executions each)"
