#!/usr/bin/env bash
# Installs the peers hilt's tests talk to, idempotently. Sourced by scripts/test.
#   - PostgreSQL binaries (Debian postgresql) for hilt-server's storage scenarios
#   - Python peers in a venv (BenchCI 2.0.1 as the compatibility reference, pexpect,
#     moto in server mode as the S3-protocol peer):
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
# Headless Chromium renders evidence.html in the report test.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "peers: installing ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null
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
# moto in server mode: a real S3-protocol server on loopback for the server's artifact
# store scenario (`hilt server --artifacts s3://…`), test-peers §10.
if [ ! -x "$HILT_PY_VENV/bin/moto_server" ]; then
  echo "peers: installing moto[server] into the venv"
  "$HILT_PY_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5"
fi
