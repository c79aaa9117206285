#!/usr/bin/env python3
"""A tiny device on a pseudo-terminal, written in Python like many bench-side fakes.

It answers like a board's console: `PING` -> `PONG`, `VERSION` -> `fw=1.0.0`, anything
else -> `ERR unknown`. Lines end at CR or LF; replies end with CRLF. The slave side of the
pty is published as a symlink (`--link`), so a bench file can name a stable port. The
device keeps its own handle on the slave, so clients may open and close the port as often
as they like (as with a USB-serial adapter that stays plugged in).

Usage: py_device.py --link /tmp/dev.tty   (runs until SIGTERM/SIGINT)
"""

import argparse
import os
import select
import signal
import sys
import tty


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--link", required=True, help="symlink to create for the pty slave")
    args = ap.parse_args()

    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line editing: bytes pass as a UART would carry them
    name = os.ttyname(slave)
    try:
        os.unlink(args.link)
    except FileNotFoundError:
        pass
    os.symlink(name, args.link)

    stop = False

    def on_signal(_sig, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    replies = {b"PING": b"PONG", b"VERSION": b"fw=1.0.0"}
    line = b""
    try:
        while not stop:
            try:
                ready, _, _ = select.select([master], [], [], 0.5)
            except InterruptedError:
                continue
            if not ready:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:
                continue
            for b in data:
                if b in (10, 13):
                    cmd = line.strip().upper()
                    line = b""
                    if cmd:
                        os.write(master, replies.get(cmd, b"ERR unknown") + b"\r\n")
                else:
                    line += bytes([b])
                    if len(line) > 256:
                        line = b""
    finally:
        try:
            os.unlink(args.link)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
