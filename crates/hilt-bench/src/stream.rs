//! The write side of the UART throughput benchmark: a pty whose master is fed a large log
//! as fast as the reader drains it, the pattern appearing only at the very end.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

/// The text both readers wait for, and the regex variant of it.
pub const END_TEXT: &str = "END-OF-STREAM 424242";
pub const END_REGEX: &str = r"END-OF-STREAM \d+";

/// A pty whose slave (`path`) is closed until the reader under test opens it.
pub struct StreamPty {
    master: OwnedFd,
    pub path: PathBuf,
}

/// When the reader opened the port, and how much was written.
pub struct Written {
    pub opened_at: SystemTime,
    pub opened: Instant,
    pub bytes: u64,
}

impl StreamPty {
    pub fn open() -> anyhow::Result<StreamPty> {
        let pair = nix::pty::openpty(None, None).context("openpty")?;
        let mut t = tcgetattr(&pair.slave).context("tcgetattr")?;
        cfmakeraw(&mut t);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &t).context("tcsetattr")?;
        let path = nix::unistd::ttyname(&pair.slave).context("ttyname")?;
        let flags = OFlag::from_bits_truncate(fcntl(&pair.master, FcntlArg::F_GETFL)?);
        fcntl(&pair.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // Closing our slave makes the master report POLLHUP until someone opens it.
        drop(pair.slave);
        Ok(StreamPty {
            master: pair.master,
            path,
        })
    }

    fn revents(&self, events: PollFlags, timeout_ms: u16) -> PollFlags {
        let mut fds = [PollFd::new(self.master.as_fd(), events)];
        match poll(&mut fds, PollTimeout::from(timeout_ms)) {
            Ok(_) => fds[0].revents().unwrap_or(PollFlags::empty()),
            Err(_) => PollFlags::empty(),
        }
    }

    /// Waits until the slave is opened (the master stops reporting a hang-up).
    fn wait_opened(&self, stop: &AtomicBool) -> bool {
        while !stop.load(Ordering::Relaxed) {
            if !self
                .revents(PollFlags::empty(), 0)
                .contains(PollFlags::POLLHUP)
            {
                return true;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        false
    }

    fn write_all(&self, mut data: &[u8], stop: &AtomicBool) -> bool {
        while !data.is_empty() {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            match nix::unistd::write(&self.master, data) {
                Ok(n) => data = &data[n..],
                Err(nix::Error::EAGAIN) => {
                    let r = self.revents(PollFlags::POLLOUT, 50);
                    if r.contains(PollFlags::POLLHUP) && !r.contains(PollFlags::POLLOUT) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                Err(nix::Error::EINTR) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Once the reader has opened the port, writes at least `total` bytes of log lines and
    /// then the end marker. Returns `None` when stopped first (the reader died).
    pub fn feed(&self, total: u64, stop: &AtomicBool) -> Option<Written> {
        let block = log_block();
        if !self.wait_opened(stop) {
            return None;
        }
        let opened = Instant::now();
        let opened_at = SystemTime::now();
        let mut bytes = 0u64;
        while bytes < total {
            // Whole blocks only, so the marker starts a line of its own.
            if !self.write_all(&block, stop) {
                return None;
            }
            bytes += block.len() as u64;
        }
        let end = format!("{END_TEXT}\r\n");
        if !self.write_all(end.as_bytes(), stop) {
            return None;
        }
        Some(Written {
            opened_at,
            opened,
            bytes: bytes + end.len() as u64,
        })
    }
}

/// About 1 MiB of device-log lines, repeated by the writer.
pub fn log_block() -> Vec<u8> {
    let mut b = Vec::with_capacity(1 << 20);
    let mut i = 0u64;
    while b.len() < (1 << 20) - 64 {
        b.extend_from_slice(format!("log line {i} lorem ipsum dolor sit amet\r\n").as_bytes());
        i += 1;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_never_contains_the_marker() {
        let b = log_block();
        assert!(b.len() > 1_000_000);
        let text = String::from_utf8(b).unwrap();
        assert!(!text.contains("END-OF-STREAM"));
    }

    #[test]
    fn a_reader_sees_the_marker_after_the_stream() {
        let pty = StreamPty::open().unwrap();
        let stop = AtomicBool::new(false);
        let path = pty.path.clone();
        let reader = std::thread::spawn(move || crate::uart_throughput::raw_read(&path, END_TEXT));
        let w = pty
            .feed(3_000_000, &stop)
            .expect("the reader opened the port");
        assert!(w.bytes >= 3_000_000);
        reader.join().unwrap().unwrap();
    }
}
