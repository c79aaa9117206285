#!/usr/bin/env bash
# Creates (idempotently) the Python venv holding the benchmark baselines:
# pexpect (UART expect baseline) and BenchCI 2.0.1 (end-to-end baseline).
# Usage: scripts/bench/venv.sh   -> prints the venv directory on stdout.
# Override the location with HILT_BENCH_VENV.
set -euo pipefail
VENV="${HILT_BENCH_VENV:-$HOME/.cache/hilt-bench-venv}"
PEXPECT_VERSION="${PEXPECT_VERSION:-4.9.0}"
BENCHCI_VERSION="${BENCHCI_VERSION:-2.0.1}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
have() { "$VENV/bin/python" -m pip show "$1" 2>/dev/null | grep -qx "Version: $2"; }
if ! have pexpect "$PEXPECT_VERSION" || ! have benchci "$BENCHCI_VERSION"; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    "pexpect==$PEXPECT_VERSION" "benchci==$BENCHCI_VERSION" >&2
fi
echo "$VENV"
