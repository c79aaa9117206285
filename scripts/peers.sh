#!/usr/bin/env bash
# Installs the peers hilt's tests talk to, idempotently. Sourced by scripts/test.
#   - PostgreSQL binaries (Debian postgresql) for hilt-server's storage scenarios and the
#     replica tests
#   - iproute2 (`ip netns`) for the agent partition test (a network namespace; needs root)
#   - nginx as the TLS-terminating reverse proxy of the HTTPS tests (tests/tls.rs)
#   - QEMU (qemu-system-arm) and the Arm cross compiler (gcc-arm-none-eabi) for the
#     emulated-board scenarios (firmware/ is built by the tests)
#   - Python peers in a venv (BenchCI 2.0.1 as the compatibility reference, pexpect,
#     moto in server mode as the S3-protocol peer; pymodbus + pyserial as the independent
#     Modbus peer for crates/hilt-cli/tests/modbus.rs; python-can as the independent slcan
#     peer for crates/hilt-cli/tests/can.rs):
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
# iproute2: the partition test puts an agent in a network namespace and cuts its link.
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# Headless Chromium renders evidence.html in the report test.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# OpenSSH for the remote-host tests (tests/ssh_hosts.rs start their own sshd on loopback).
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
# nginx terminates TLS in front of the agent, server and relay board in tests/tls.rs.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
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

# The login user of the ssh tests. useradd leaves the account locked ('!'), which sshd
# without PAM refuses even for key logins: '*' means "no password, not locked".
if [ "$(id -u)" = 0 ] && [ -x /usr/sbin/sshd ]; then
  id hilt-test >/dev/null 2>&1 || useradd -m -s /bin/sh hilt-test
  [ "$(getent shadow hilt-test | cut -d: -f2)" = '*' ] || usermod -p '*' hilt-test
  mkdir -p /run/sshd
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
if ! "$HILT_PY_VENV/bin/python" -c 'import pymodbus, serial' >/dev/null 2>&1; then
  echo "peers: installing pymodbus==3.16.1 and pyserial into the venv"
  "$HILT_PY_VENV/bin/pip" install --quiet --disable-pip-version-check "pymodbus==3.16.1" "pyserial==3.5"
fi
if ! "$HILT_PY_VENV/bin/python" -c 'import can, sys; sys.exit(can.__version__ != "4.6.1")' >/dev/null 2>&1; then
  echo "peers: installing python-can==4.6.1 into the venv"
  "$HILT_PY_VENV/bin/pip" install --quiet --disable-pip-version-check "python-can==4.6.1" "pyserial==3.5"
fi
