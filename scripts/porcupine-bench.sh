#!/usr/bin/env bash
# Times Porcupine (the Go linearizability checker) on its own test
# histories, in process, for a side-by-side comparison with our checker
# (cargo run -p async-patterns-linearize --release --example porcupine).
#
#   scripts/porcupine-bench.sh [PORCUPINE_DIR] [-- porcupine-bench flags]
#
# PORCUPINE_DIR defaults to ../shared/anchors/porcupine (from the repository
# root). Builds crates/async-patterns-linearize/porcupine-bench/main.go in a
# throwaway directory whose go.mod replaces Porcupine's module with that
# checkout, fully offline (Porcupine needs only the standard library), runs
# it with GOMAXPROCS=${GOMAXPROCS:-1} (one thread, like our checker), and
# removes the directory. Flags after `--` go to the program (-runs N,
# -events, -timedout-read end|line, -per-history). Writes nothing in the
# repository.
# Exit status: the program's (0 all verdicts agree, 1 one differs, 2 bad
# input); 2 when Go or the Porcupine checkout is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/crates/async-patterns-linearize/porcupine-bench/main.go"

dir_arg="../shared/anchors/porcupine"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  dir_arg=$1
  shift
fi
[ "${1:-}" = "--" ] && shift

if ! command -v go >/dev/null 2>&1; then
  echo "porcupine-bench: \`go\` not found; install Go (apt-get install golang-go)" >&2
  exit 2
fi
# A relative directory is taken from the repository root.
case $dir_arg in
  /*) dir_path=$dir_arg ;;
  *) dir_path="$root/$dir_arg" ;;
esac
if [ ! -f "$dir_path/go.mod" ] || [ ! -f "$dir_path/porcupine_test.go" ]; then
  echo "porcupine-bench: no Porcupine checkout at $dir_path (want its go.mod and porcupine_test.go)" >&2
  exit 2
fi
dir=$(cd "$dir_path" && pwd -P)
module=$(sed -n 's/^module[[:space:]]*//p' "$dir/go.mod" | head -n1)
[ -n "$module" ] || { echo "porcupine-bench: no module line in $dir/go.mod" >&2; exit 2; }
[ -f "$src" ] || { echo "porcupine-bench: missing $src" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/porcupine-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$src" "$work/main.go"
cat >"$work/go.mod" <<EOF
module porcupinebench

go 1.16

require $module v0.0.0

replace $module => $dir
EOF

export GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local
# Keep the build cache out of the way when HOME is not writable.
if [ -z "${GOCACHE:-}" ] && ! go env GOCACHE >/dev/null 2>&1; then
  export GOCACHE="$work/cache"
fi
(cd "$work" && go build -o "$work/porcupine-bench" .) || {
  echo "porcupine-bench: go build failed" >&2
  exit 2
}

status=0
GOMAXPROCS=${GOMAXPROCS:-1} "$work/porcupine-bench" "$@" "$dir" || status=$?
exit "$status"
