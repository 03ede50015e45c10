#!/usr/bin/env bash
# Installs gungraun-runner at exactly the version benches/Cargo.toml pins for
# the gungraun library (the two must match), unless it is already there.
# valgrind itself is on every machine of this project's kind; on another
# machine: apt-get install valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^gungraun = "=\([0-9.]*\)".*/\1/p' benches/Cargo.toml)
[ -n "$version" ] || { echo "install-gungraun: no pinned gungraun version in benches/Cargo.toml" >&2; exit 1; }
if ! command -v valgrind >/dev/null; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq valgrind
  else
    echo "install-gungraun: valgrind is missing; install it" >&2; exit 1
  fi
fi
if [ "$(gungraun-runner --version 2>/dev/null | awk '{print $2}')" = "$version" ]; then
  exit 0
fi
cargo install gungraun-runner --version "$version" --locked
