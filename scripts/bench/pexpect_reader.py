"""Baseline reader of the uart-throughput benchmark (run by hilt-bench; embedded in it).

Opens the pty slave like a serial port (raw mode, pending input cleared, as hilt does),
wraps it in pexpect.fdpexpect.fdspawn and waits for the end marker, then prints the
wall-clock time of the match.

    python pexpect_reader.py PORT contains|regex PATTERN [SEARCHWINDOWSIZE]

pexpect is given its fastest settings for a fair comparison: reads of 64 KiB
(maxread; the default is 2000 bytes) and, for regexes, a search window of 200 000
bytes like hilt's (without one pexpect rescans its whole, ever-growing buffer on every
read, which is quadratic). Exact strings need no window: pexpect only rescans the
pattern's length of old data.
"""
import os
import re
import sys
import termios
import time
import tty

import pexpect
import pexpect.fdpexpect


def main():
    port, mode, pattern = sys.argv[1], sys.argv[2], sys.argv[3]
    window = int(sys.argv[4]) if len(sys.argv) > 4 and int(sys.argv[4]) > 0 else None
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIFLUSH)
    child = pexpect.fdpexpect.fdspawn(fd, timeout=600, maxread=65536, searchwindowsize=window)
    if mode == "contains":
        child.expect_exact(pattern.encode())
    else:
        child.expect(re.compile(pattern.encode()))
    matched_at = time.time()
    print(f"match_unix={matched_at:.6f}")
    print(f"matched={child.after.decode(errors='replace')}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
