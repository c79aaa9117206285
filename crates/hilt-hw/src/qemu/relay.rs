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
/// emulator's UART socket. Both data descriptors are non-blocking, so a stop request is
/// always seen: output the pty cannot take yet waits in `pending` (and the emulator's
/// socket is not read meanwhile: back-pressure, no loss); input for an emulator that
/// does not read it (a full socket) is dropped, like bytes sent to a hung device.
fn pump(master: File, mut wake: UnixStream, rx: Receiver<Msg>) {
    if set_nonblocking(&master).is_err() {
        return;
    }
    let mut master = master;
    let mut uart: Option<UnixStream> = None;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (master_in, wake_ready, uart_ready) = {
            let mut master_flags = PollFlags::POLLIN;
            if !pending.is_empty() {
                master_flags |= PollFlags::POLLOUT;
            }
            let mut fds = vec![
                PollFd::new(master.as_fd(), master_flags),
                PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(u) = uart.as_ref().filter(|_| pending.is_empty()) {
                fds.push(PollFd::new(u.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
            let has = |f: &PollFd, flag: PollFlags| f.revents().is_some_and(|r| r.intersects(flag));
            let any = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
            (
                has(&fds[0], PollFlags::POLLIN),
                has(&fds[1], any),
                fds.get(2).is_some_and(|f| has(f, any)),
            )
        };
        if wake_ready {
            let mut drain = [0u8; 64];
            let _ = wake.read(&mut drain);
            loop {
                match rx.try_recv() {
                    Ok(Msg::Connect(u)) => {
                        uart = u.set_nonblocking(true).is_ok().then_some(u);
                    }
                    Ok(Msg::Disconnect) => uart = None,
                    Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => break,
                }
            }
        }
        if master_in {
            match master.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if let Some(u) = &mut uart {
                        match u.write(&buf[..n]) {
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(_) => uart = None,
                        }
                    }
                }
                Err(e) if retry(&e) => {}
                Err(_) => return,
            }
        }
        if uart_ready && let Some(u) = &mut uart {
            match u.read(&mut buf) {
                Ok(0) => uart = None,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) if retry(&e) => {}
                Err(_) => uart = None,
            }
        }
        if !pending.is_empty() {
            match master.write(&pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if retry(&e) => {}
                Err(_) => return,
            }
        }
    }
}

fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

fn set_nonblocking(f: &File) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(f, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(f, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn read_some(port: &mut File, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < want && Instant::now() < deadline {
            let mut fds = [PollFd::new(port.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) > 0 {
                let n = port.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
        }
        got
    }

    #[test]
    fn bytes_flow_both_ways_and_survive_a_reconnect() {
        let mut relay = Relay::start("t").unwrap();
        let mut port = File::options()
            .read(true)
            .write(true)
            .open(relay.path())
            .unwrap();
        for round in 0..2 {
            let (ours, theirs) = UnixStream::pair().unwrap();
            relay.connect(theirs);
            let mut ours = ours;
            ours.write_all(format!("banner {round}\r\n").as_bytes())
                .unwrap();
            assert_eq!(
                read_some(&mut port, 10),
                format!("banner {round}\r\n").as_bytes()
            );
            port.write_all(b"ping\n").unwrap();
            let mut got = [0u8; 5];
            ours.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            ours.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping\n");
            relay.disconnect();
        }
    }

    #[test]
    fn stopping_never_waits_on_a_full_pty() {
        let mut relay = Relay::start("full").unwrap();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        relay.connect(theirs);
        // Nobody reads the pty: its buffer fills and the relay holds the rest back.
        ours.set_nonblocking(true).unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            if ours.write(&chunk).is_err() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        drop(relay);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
