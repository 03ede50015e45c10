#!/usr/bin/env bash
# Runs the loom model checks (crates/*/tests/loom_*.rs) exhaustively.
#
#   scripts/loom.sh            # all models
#   scripts/loom.sh fifo       # models whose name contains "fifo"
#
# The models build with `--cfg async_patterns_loom` in their own target dir
# (target/loom), so switching cfg never rebuilds the normal build. Outside
# that cfg the loom files compile to empty test binaries, so this script
# fails if it ran no test, and prints each model's interleaving count.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
# Appended to (not replacing) any flags the user set.
export RUSTFLAGS="${RUSTFLAGS:-} --cfg async_patterns_loom"

# Each model states its own bound in code; loom's env limits are ignored.

tests=()
for f in crates/async-patterns/tests/loom_*.rs; do
  tests+=(--test "$(basename "$f" .rs)")
done

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
cargo test --release -p async-patterns "${tests[@]}" -- --nocapture --test-threads=1 "$@" 2>&1 | tee "$log"
passed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i == "passed;") s += $(i-1) } END { print s + 0 }' "$log")
echo "loom: ${passed} model checks passed in $(( $(date +%s) - start )) s"
if [ "$passed" -eq 0 ]; then
  echo "loom: no model check ran (was the cfg applied?)" >&2
  exit 1
fi
