//! The pseudo-terminal the DUT's UART appears on, and the thread that pumps bytes between
//! its master side and the firmware.
//!
//! The loop blocks only in `poll` (master fd + a wake-up fd), with a timeout equal to the
//! firmware's next deadline, so a reply with zero latency is written in the same wake-up
//! that read the command.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

use crate::error::SimError;
use crate::shared::Shared;

/// Compact the transmit buffer once this much of it has been written.
const COMPACT_AFTER: usize = 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Pty {
    pub master: File,
    /// Held open by the sim so the pty never hangs up when a client closes the port.
    pub slave: OwnedFd,
    pub path: PathBuf,
}

fn pty_err(what: &'static str) -> impl FnOnce(nix::Error) -> SimError {
    move |source| SimError::Pty { what, source }
}

/// Opens a pty pair with a raw (no echo, no line editing) slave and a non-blocking master.
pub(crate) fn open() -> Result<Pty, SimError> {
    let pair = nix::pty::openpty(None, None).map_err(pty_err("openpty"))?;
    let mut termios = tcgetattr(&pair.slave).map_err(pty_err("tcgetattr"))?;
    cfmakeraw(&mut termios);
    tcsetattr(&pair.slave, SetArg::TCSANOW, &termios).map_err(pty_err("tcsetattr"))?;
    let flags = fcntl(&pair.master, FcntlArg::F_GETFL).map_err(pty_err("fcntl"))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(&pair.master, FcntlArg::F_SETFL(flags)).map_err(pty_err("fcntl"))?;
    let path = nix::unistd::ttyname(&pair.slave).map_err(pty_err("ttyname"))?;
    Ok(Pty {
        master: File::from(pair.master),
        slave: pair.slave,
        path,
    })
}

/// Rounds up so a deadline is never reported early.
fn poll_timeout(wait: Option<Duration>) -> PollTimeout {
    match wait {
        None => PollTimeout::NONE,
        Some(d) => {
            let ms = d.as_micros().div_ceil(1000).min(i32::MAX as u128) as u64;
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// Pumps bytes until the sim is stopped. Owns the master side.
pub(crate) fn run(shared: Arc<Shared>, mut master: File) {
    let mut tx: Vec<u8> = Vec::new();
    let mut sent = 0usize;
    let mut rx = vec![0u8; READ_CHUNK];
    while !shared.stopping() {
        let deadline = {
            let mut fw = shared.lock();
            fw.take_output(shared.now(), &mut tx);
            fw.next_deadline()
        };
        if let Err(e) = flush(&mut master, &tx, &mut sent)
            && e.kind() != io::ErrorKind::WouldBlock
        {
            // The pty is gone; nothing more can be delivered.
            break;
        }
        if sent == tx.len() {
            tx.clear();
            sent = 0;
        } else if sent >= COMPACT_AFTER {
            tx.drain(..sent);
            sent = 0;
        }

        let wait = deadline.map(|d| d.saturating_sub(shared.now()));
        let mut events = PollFlags::POLLIN;
        if sent < tx.len() {
            events |= PollFlags::POLLOUT;
        }
        let (master_ready, woken) = {
            let mut fds = [
                PollFd::new(master.as_fd(), events),
                PollFd::new(shared.io_wake.fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, poll_timeout(wait)) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(_) => break,
            }
            (
                fds[0].revents().unwrap_or(PollFlags::empty()),
                fds[1].revents().unwrap_or(PollFlags::empty()),
            )
        };
        if !woken.is_empty() {
            shared.io_wake.drain();
        }
        if master_ready.contains(PollFlags::POLLIN) {
            match master.read(&mut rx) {
                Ok(n) if n > 0 => shared.lock().feed(shared.now(), &rx[..n]),
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(_) => break,
            }
        } else if master_ready.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            // Cannot happen while the sim holds the slave open; avoid spinning if it does.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Writes as much of `tx[sent..]` as the pty accepts now.
fn flush(master: &mut File, tx: &[u8], sent: &mut usize) -> io::Result<()> {
    while *sent < tx.len() {
        match master.write(&tx[*sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_rounds_up() {
        assert_eq!(poll_timeout(None), PollTimeout::NONE);
        assert_eq!(i32::from(poll_timeout(Some(Duration::ZERO))), 0);
        assert_eq!(i32::from(poll_timeout(Some(Duration::from_micros(1)))), 1);
        assert_eq!(
            i32::from(poll_timeout(Some(Duration::from_micros(1001)))),
            2
        );
        assert_eq!(
            i32::from(poll_timeout(Some(Duration::from_secs(u64::MAX)))),
            i32::MAX
        );
    }

    #[test]
    fn open_gives_a_raw_tty() {
        let pty = open().unwrap();
        assert!(pty.path.exists());
        let t = tcgetattr(&pty.slave).unwrap();
        assert!(!t.local_flags.contains(nix::sys::termios::LocalFlags::ECHO));
        assert!(
            !t.local_flags
                .contains(nix::sys::termios::LocalFlags::ICANON)
        );
    }
}
