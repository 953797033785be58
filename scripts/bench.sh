#!/usr/bin/env bash
# The benchmark run that BENCHMARKS.md records: installs the test tools (moto, Terraform 1.0.3
# and 1.15.5) into .tools/ if missing, builds `statelock` and `statelock-bench` in release
# mode, and runs every scenario against the release `statelock serve` binary, rewriting
# BENCHMARKS.md and its charts in benchmarks/.
# Extra arguments go to statelock-bench (see `statelock-bench --help`), e.g. --no-moto, or
# --only s3-front for one scenario (then pass --output elsewhere, or BENCHMARKS.md holds only it).
# Takes about 15 minutes, most of it the polling clients' sleeps.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-test-tools.sh
export STATELOCK_TOOLS="${STATELOCK_TOOLS:-$PWD/.tools}"
cargo build --release --locked -p statelock -p statelock-bench
target="${CARGO_TARGET_DIR:-target}/release"
export STATELOCK_BENCH_COMMAND="bash scripts/bench.sh${*:+ $*}"
# The SVG charts go to benchmarks/ next to BENCHMARKS.md.
exec "$target/statelock-bench" --statelock "$target/statelock" --output BENCHMARKS.md "$@"
