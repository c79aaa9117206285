//! The board's UART as a pseudo-terminal: hilt opens the pty's slave exactly like a
//! serial port, and one relay thread copies bytes between the pty's master and the
//! emulator's UART socket. The pty outlives emulator restarts (flash, power cycle), so the
//! runner's UART reader never reopens anything; while no emulator runs, bytes written to
//! the UART are dropped, as a powered-off device would.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

enum Msg {
    Connect(UnixStream),
    Disconnect,
    Stop,
}

pub struct Relay {
    path: PathBuf,
    /// Held open so the pty never hangs up when the runner closes its side.
    _slave: OwnedFd,
    tx: Sender<Msg>,
    wake: UnixStream,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Opens a raw pty pair and starts the relay thread (nothing connected yet).
    pub fn start(name: &str) -> io::Result<Relay> {
        let pair = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        let mut termios = tcgetattr(&pair.slave).map_err(io::Error::from)?;
        cfmakeraw(&mut termios);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &termios).map_err(io::Error::from)?;
        let path = nix::unistd::ttyname(&pair.slave).map_err(io::Error::from)?;
        let (tx, rx) = channel();
        let (wake, wake_rx) = UnixStream::pair()?;
        let master = File::from(pair.master);
        let thread = std::thread::Builder::new()
            .name(format!("qemu-uart-{name}"))
            .spawn(move || pump(master, wake_rx, rx))?;
        Ok(Relay {
            path,
            _slave: pair.slave,
            tx,
            wake,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connects the UART to a (new) emulator's socket.
    pub fn connect(&mut self, uart: UnixStream) {
        self.send(Msg::Connect(uart));
    }

    /// Disconnects the stopped emulator.
    pub fn disconnect(&mut self) {
        self.send(Msg::Disconnect);
    }

    fn send(&mut self, msg: Msg) {
        let _ = self.tx.send(msg);
        let _ = self.wake.write_all(&[1]);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The relay loop: sleeps in `poll` on the pty master, the wake-up socket and the
/// emulator's UART socket.
fn pump(mut master: File, mut wake: UnixStream, rx: Receiver<Msg>) {
    let mut uart: Option<UnixStream> = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (master_ready, wake_ready, uart_ready) = {
            let mut fds = vec![
                PollFd::new(master.as_fd(), PollFlags::POLLIN),
                PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(u) = &uart {
                fds.push(PollFd::new(u.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (
                ready(&fds[0]),
                ready(&fds[1]),
                fds.get(2).is_some_and(ready),
            )
        };
        if wake_ready {
            let mut drain = [0u8; 64];
            let _ = wake.read(&mut drain);
            loop {
                match rx.try_recv() {
                    Ok(Msg::Connect(u)) => uart = Some(u),
                    Ok(Msg::Disconnect) => uart = None,
                    Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => break,
                }
            }
        }
        if master_ready {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Some(u) = &mut uart
                        && u.write_all(&buf[..n]).is_err()
                    {
                        uart = None;
                    }
                }
            }
        }
        if uart_ready && let Some(u) = &mut uart {
            match u.read(&mut buf) {
                Ok(0) | Err(_) => uart = None,
                Ok(n) => {
                    if master.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }
}
