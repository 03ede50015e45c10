#!/usr/bin/env bash
# Mutation testing of the core with cargo-mutants: every small change it can
# make to the code (a comparison flipped, a body replaced by a default, `+=`
# turned into `*=`) must make one of the core's tests fail. A mutant that
# survives is a check still owed, or an equivalent change to name.
#
#   scripts/mutants.sh                                   # the whole core (hours here)
#   scripts/mutants.sh crates/async-patterns/src/deadline.rs ...   # some files
#   scripts/mutants.sh --in-diff main                    # only code changed since main
#   scripts/mutants.sh --package async-patterns-sim [--in-diff REV] [FILE...]
#                                                        # another crate, judged by its own tests
#
# Settings (what is left out, and why) are in .cargo/mutants.toml; results
# go to mutants.out/ (git-ignored). Installs cargo-mutants if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo mutants --version >/dev/null 2>&1; then
    echo "installing cargo-mutants (once)..." >&2
    cargo install cargo-mutants --locked
fi
package=async-patterns
dir=crates/async-patterns
if [ "${1:-}" = "--package" ]; then
    package=${2:?usage: scripts/mutants.sh --package NAME ...}
    dir=$(cargo metadata --no-deps --format-version 1 |
        python3 -c "import json,sys,os; d=json.load(sys.stdin); print(next((os.path.relpath(os.path.dirname(p['manifest_path'])) for p in d['packages'] if p['name']==sys.argv[1]), ''))" "$package")
    if [ -z "$dir" ]; then
        echo "scripts/mutants.sh: no package $package in the workspace" >&2
        exit 2
    fi
    shift 2
fi
args=(-p "$package")
if [ "${1:-}" = "--in-diff" ]; then
    base=${2:?usage: scripts/mutants.sh --in-diff REV}
    diff=$(mktemp)
    trap 'rm -f "$diff"' EXIT
    git diff "$base" -- "$dir/src" >"$diff"
    if [ ! -s "$diff" ]; then
        echo "no change to $dir/src since $base: nothing to mutate"
        exit 0
    fi
    args+=(--in-diff "$diff")
    shift 2
fi
for f in "$@"; do
    if [ ! -f "$f" ]; then
        echo "scripts/mutants.sh: no such file: $f" >&2
        exit 2
    fi
    args+=(-f "$f")
done
exec cargo mutants "${args[@]}"
