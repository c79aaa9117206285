//! Copying the child's combined output into the output file without ever blocking it.

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::File;
use std::io::{ErrorKind, PipeReader, Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the reader looks at the stop flag while the pipe is quiet.
const STOP_CHECK_MS: u16 = 50;
const CHUNK: usize = 64 * 1024;

/// What the reader wrote.
pub(crate) struct Captured {
    pub bytes: u64,
    pub truncated: bool,
}

/// A reader thread draining the pipe into the output file.
pub(crate) struct Capture {
    eof_rx: Receiver<()>,
    eof: bool,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Captured>,
}

impl Capture {
    pub fn start(reader: PipeReader, out: File, cap: u64) -> Capture {
        let (eof_tx, eof_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("hilt-output".into())
            .spawn(move || pump(reader, out, cap, &flag, eof_tx))
            .expect("spawn output reader thread");
        Capture {
            eof_rx,
            eof: false,
            stop,
            handle,
        }
    }

    /// Waits up to `dur` for every writer of the pipe to be gone. `true` once they are.
    pub fn wait_eof(&mut self, dur: Duration) -> bool {
        if !self.eof {
            self.eof = match self.eof_rx.recv_timeout(dur) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                Err(RecvTimeoutError::Timeout) => false,
            };
        }
        self.eof
    }

    /// Ends the reader (at once if the pipe is quiet, else after the current chunk) and
    /// returns what it wrote.
    pub fn stop(self) -> Captured {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(Captured {
            bytes: 0,
            truncated: true,
        })
    }
}

fn pump(
    reader: PipeReader,
    mut out: File,
    cap: u64,
    stop: &AtomicBool,
    eof_tx: Sender<()>,
) -> Captured {
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    let mut truncated = false;
    let mut failed = false;
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(STOP_CHECK_MS)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let n = match (&reader).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        // Past the cap (or after a write error) keep reading and discard, so the child
        // never blocks on a full pipe.
        let take = usize::try_from(cap.saturating_sub(written)).map_or(n, |room| room.min(n));
        if take < n {
            truncated = true;
        }
        if take > 0 && !failed {
            if out.write_all(&buf[..take]).is_ok() {
                written += take as u64;
            } else {
                failed = true;
                truncated = true;
            }
        }
    }
    if truncated && !failed {
        let marker =
            format!("\n[hilt: output truncated after {cap} bytes; the rest was discarded]\n");
        let _ = out.write_all(marker.as_bytes());
    }
    let _ = out.flush();
    let _ = eof_tx.send(());
    Captured {
        bytes: written,
        truncated,
    }
}
