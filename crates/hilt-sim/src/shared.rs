//! State shared between the sim's threads and its in-process control handle.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::firmware::Firmware;

/// Wakes a thread blocked in `poll` (a self-pipe made of a socket pair).
#[derive(Debug)]
pub(crate) struct Wakeup {
    tx: UnixStream,
    rx: UnixStream,
}

impl Wakeup {
    pub fn new() -> io::Result<Self> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Wakeup { tx, rx })
    }

    /// Makes the receiving side readable. A full buffer already means "wake up".
    pub fn notify(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    /// Consumes pending notifications.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.rx).read(&mut buf) {
            if n < buf.len() {
                break;
            }
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }
}

/// The firmware, its clock, and the stop flag.
#[derive(Debug)]
pub(crate) struct Shared {
    fw: Mutex<Firmware>,
    epoch: Instant,
    /// Wakes the pty thread when the firmware changed behind its back.
    pub io_wake: Wakeup,
    pub stop: AtomicBool,
}

impl Shared {
    pub fn new(fw: Firmware, epoch: Instant) -> io::Result<Self> {
        Ok(Shared {
            fw: Mutex::new(fw),
            epoch,
            io_wake: Wakeup::new()?,
            stop: AtomicBool::new(false),
        })
    }

    /// Time since the simulation started: the firmware's clock.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn lock(&self) -> MutexGuard<'_, Firmware> {
        self.fw.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the firmware at the current time, then wakes the pty thread so it
    /// re-reads deadlines and output.
    pub fn update<R>(&self, f: impl FnOnce(&mut Firmware, Duration) -> R) -> R {
        let result = {
            let mut fw = self.lock();
            let now = self.now();
            f(&mut fw, now)
        };
        self.io_wake.notify();
        result
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.io_wake.notify();
    }
}
