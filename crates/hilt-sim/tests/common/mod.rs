//! Helpers shared by the integration tests: a serial-port client on the pty and scratch
//! directories.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

pub const BANNER_END: &str = "ready\r\n";

/// The bench side of the DUT's UART, like a serial driver would open it.
pub struct Port {
    file: File,
    buf: Vec<u8>,
}

impl Port {
    pub fn open(path: &Path) -> Port {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NOCTTY.bits())
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        Port {
            file,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, line: &str) {
        self.file.write_all(line.as_bytes()).unwrap();
    }

    /// Reads until `needle` has been received; returns everything up to and including it.
    pub fn read_until(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = find(&self.buf, needle.as_bytes()) {
                let rest = self.buf.split_off(pos + needle.len());
                let got = std::mem::replace(&mut self.buf, rest);
                return String::from_utf8_lossy(&got).into_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {needle:?}; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.fill(left);
        }
    }

    /// Reads one `\r\n`-terminated line.
    pub fn line(&mut self, timeout: Duration) -> String {
        let mut l = self.read_until("\r\n", timeout);
        l.truncate(l.len() - 2);
        l
    }

    /// Sends a command and returns its one-line reply.
    pub fn ask(&mut self, command: &str) -> String {
        self.send(&format!("{command}\n"));
        self.line(Duration::from_secs(5))
    }

    /// Asserts nothing arrives for `dur`.
    pub fn expect_silence(&mut self, dur: Duration) {
        let deadline = Instant::now() + dur;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.fill(left);
        }
        assert!(
            self.buf.is_empty(),
            "expected silence, got {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Waits up to `wait` for bytes and appends what is there.
    fn fill(&mut self, wait: Duration) {
        let ms = wait.as_millis().clamp(1, 60_000) as u16;
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(ms)).unwrap();
        if n > 0 {
            let mut chunk = [0u8; 65536];
            let got = self.file.read(&mut chunk).unwrap();
            self.buf.extend_from_slice(&chunk[..got]);
        }
    }

    /// Reads exactly `n` bytes (for throughput tests).
    pub fn read_bytes(&mut self, n: usize, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        while self.buf.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {} of {n} bytes",
                self.buf.len()
            );
            self.fill(left);
        }
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A fresh, short scratch directory (socket paths have a small length limit).
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hsim-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `cond` until true or `timeout`; returns the time it took.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "condition not met within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    start.elapsed()
}
