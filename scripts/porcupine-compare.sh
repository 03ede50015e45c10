#!/usr/bin/env bash
# Our linearizability checker beside Porcupine's, on Porcupine's own
# histories, on this machine: both in process, parsing excluded, each time
# the median of 5 runs, both on one thread (GOMAXPROCS=1: ours uses one).
# The two alternate ROUNDS times (default 3) so a change in the machine's
# load falls on both; the table shows the median of the rounds' medians and
# our time over Porcupine's.
#
#   scripts/porcupine-compare.sh [PORCUPINE_DIR]     (default ../shared/anchors/porcupine)
#
# Needs Go (apt-get install golang-go) for Porcupine's side. Writes nothing
# in the repository. Exit status 1 if a verdict of either differs from the
# one Porcupine's tests expect.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-../shared/anchors/porcupine}
rounds=${ROUNDS:-3}
out=$(mktemp -d "${TMPDIR:-/tmp}/porcupine-compare.XXXXXX")
trap 'rm -rf "$out"' EXIT
cd "$root"
cargo build -q -p async-patterns-linearize --release --example porcupine
ours="$root/target/release/examples/porcupine"
status=0
for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  GOMAXPROCS=1 "$root/scripts/porcupine-bench.sh" "$dir" >"$out/go.$r" || status=1
  "$ours" "$dir" >"$out/rust.$r" || status=1
done
# set NAME ... median_ms=X, per file: the median over the rounds.
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "| set | Porcupine (ms) | ours (ms) | ours / Porcupine |"
echo "|---|---|---|---|"
for set in $(grep -h '^set ' "$out"/go.* | awk '{print $2}' | awk '!seen[$0]++'); do
  go_ms=$(grep -h "^set $set " "$out"/go.* | sed 's/.*median_ms=//' | median)
  rust_ms=$(grep -h "^set $set " "$out"/rust.* | sed 's/.*median_ms=//' | median)
  if [ -z "$rust_ms" ]; then
    echo "| $set | $go_ms | missing | |"
    status=1
    continue
  fi
  ratio=$(awk -v a="$rust_ms" -v b="$go_ms" 'BEGIN { printf (b > 0) ? "%.2f" : "n/a", a / b }')
  echo "| $set | $go_ms | $rust_ms | $ratio |"
done
for f in "$out"/go.* "$out"/rust.*; do
  if grep '^set ' "$f" | grep -qv 'agree=1 \|agree=102 '; then
    echo "a verdict differs from Porcupine's expected one in $(basename "$f"):" >&2
    grep '^set ' "$f" | grep -v 'agree=1 \|agree=102 ' >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "every verdict of both agrees with the one Porcupine's tests expect (102 etcd histories, 6 key-value)"
echo "(this machine: $(nproc) cores, $(uname -m); rounds: $rounds; $(go version | awk '{print $3}'))"
exit $status
