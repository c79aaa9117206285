#!/usr/bin/env bash
# Installs the peers hilt's tests talk to, idempotently. Sourced by scripts/test.
#   - PostgreSQL binaries (Debian postgresql) for hilt-server's storage scenarios
#   - QEMU (qemu-system-arm) and the Arm cross compiler (gcc-arm-none-eabi) for the
#     emulated-board scenarios (firmware/ is built by the tests)
#   - Python peers in a venv (BenchCI 2.0.1 as the compatibility reference, pexpect):
#     $HILT_PY_VENV (default: $HOME/.cache/hilt-venv)
# Safe to run again: every step checks before it installs.
set -euo pipefail

HILT_PY_VENV="${HILT_PY_VENV:-$HOME/.cache/hilt-venv}"
export HILT_PY_VENV

need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# PostgreSQL for the server's storage scenarios (the tests start a throwaway cluster).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# The emulated Cortex-M board and its firmware's compiler. Installing Debian's
# qemu-system-arm replaces a preinstalled qemu-utils backport; nothing here needs qemu-img.
command -v qemu-system-arm >/dev/null 2>&1 || need_apt+=(qemu-system-arm)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need_apt+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "peers: installing ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null; }
  else
    echo "peers: missing ${need_apt[*]}; install them (as root) and re-run" >&2
    exit 1
  fi
fi

if [ ! -x "$HILT_PY_VENV/bin/python" ]; then
  echo "peers: creating Python venv at $HILT_PY_VENV"
  python3 -m venv "$HILT_PY_VENV"
fi
if ! "$HILT_PY_VENV/bin/python" -c 'import pexpect, benchci' >/dev/null 2>&1; then
  echo "peers: installing benchci==2.0.1 and pexpect into the venv"
  "$HILT_PY_VENV/bin/pip" install --quiet --disable-pip-version-check "benchci==2.0.1" "pexpect==4.9.0"
fi
