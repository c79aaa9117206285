#!/usr/bin/env bash
# Builds hilt and hilt-bench (release), sets up the baseline venv (pexpect, BenchCI 2.0.1)
# idempotently, and runs every benchmark. Extra arguments go to `hilt-bench`, e.g.
#   scripts/bench/run-all.sh --quick        # smoke variant, seconds
#   scripts/bench/run-all.sh                # full run, a few minutes
# The tables go to stdout and to $HILT_BENCH_OUT (default: target dir/bench-results.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hilt-target-bench}"

cargo build --release -p hilt-cli -p hilt-bench >&2
export HILT_BENCH_VENV
HILT_BENCH_VENV="$(scripts/bench/venv.sh)"
OUT="${HILT_BENCH_OUT:-$CARGO_TARGET_DIR/bench-results.md}"
"$CARGO_TARGET_DIR/release/hilt-bench" "$@" all | tee "$OUT"
echo "tables saved to $OUT" >&2
