//! A simulated serial relay board (the common LCUS-style USB relay) on a pty, for the
//! `usb_relay_serial` driver's command maps. Frames are four bytes, `A0 <ch> <op> <sum>`
//! with `sum = A0 + ch + op` (mod 256): op 0 switches channel `ch` off, 1 on, 2 asks for
//! its state, answered `A0 <ch> <0|1> <sum>`. A frame with a bad checksum or an unknown op
//! is ignored, as such boards do.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::error::SimError;

#[derive(Default)]
struct Board {
    channels: BTreeMap<u8, bool>,
    frames: Vec<[u8; 4]>,
}

/// A running simulated relay board; stops when dropped.
pub struct SerialRelaySim {
    path: PathBuf,
    link: Option<PathBuf>,
    board: Arc<Mutex<Board>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _slave: std::os::fd::OwnedFd,
}

/// The frame for `op` on `ch`, checksum included.
pub fn relay_frame(ch: u8, op: u8) -> [u8; 4] {
    [0xA0, ch, op, 0xA0u8.wrapping_add(ch).wrapping_add(op)]
}

impl SerialRelaySim {
    pub fn start(link: Option<PathBuf>) -> Result<SerialRelaySim, SimError> {
        let pty = crate::pty::open()?;
        if let Some(l) = &link {
            crate::link::create(l, &pty.path)?;
        }
        let board = Arc::new(Mutex::new(Board::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (board.clone(), stop.clone());
        let mut master = pty.master;
        let thread = std::thread::Builder::new()
            .name("serial-relay-sim".into())
            .spawn(move || {
                let mut pending: Vec<u8> = Vec::new();
                let mut buf = [0u8; 256];
                while !s.load(Ordering::SeqCst) {
                    let ready = {
                        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
                        matches!(poll(&mut fds, PollTimeout::from(50u16)), Ok(n) if n > 0)
                    };
                    if !ready {
                        continue;
                    }
                    match master.read(&mut buf) {
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::WouldBlock | ErrorKind::Interrupted
                            ) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                    // Resynchronise on the A0 start byte.
                    while let Some(start) = pending.iter().position(|x| *x == 0xA0) {
                        pending.drain(..start);
                        if pending.len() < 4 {
                            break;
                        }
                        let f: [u8; 4] = [pending[0], pending[1], pending[2], pending[3]];
                        pending.drain(..4);
                        if relay_frame(f[1], f[2]) != f {
                            continue;
                        }
                        let reply = {
                            let mut board = b.lock().unwrap_or_else(|e| e.into_inner());
                            board.frames.push(f);
                            match f[2] {
                                0 | 1 => {
                                    board.channels.insert(f[1], f[2] == 1);
                                    None
                                }
                                2 => Some(relay_frame(
                                    f[1],
                                    u8::from(board.channels.get(&f[1]).copied().unwrap_or(false)),
                                )),
                                _ => None,
                            }
                        };
                        if let Some(r) = reply {
                            let _ = master.write_all(&r);
                        }
                    }
                    if !pending.contains(&0xA0) {
                        pending.clear();
                    }
                }
            })
            .map_err(SimError::Thread)?;
        Ok(SerialRelaySim {
            path: pty.path,
            link,
            board,
            stop,
            thread: Some(thread),
            _slave: pty.slave,
        })
    }

    /// The pty slave: the board's "serial port".
    pub fn port_path(&self) -> &Path {
        &self.path
    }

    /// A channel's relay state (off until switched).
    pub fn channel(&self, ch: u8) -> bool {
        let b = self.board.lock().unwrap_or_else(|e| e.into_inner());
        b.channels.get(&ch).copied().unwrap_or(false)
    }

    /// Every valid frame received, in order.
    pub fn frames(&self) -> Vec<[u8; 4]> {
        self.board
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frames
            .clone()
    }
}

impl Drop for SerialRelaySim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(l) = &self.link {
            crate::link::remove(l, &self.path);
        }
    }
}
