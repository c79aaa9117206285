//! `hilt sim slcan`: a simulated slcan (Lawicell) USB-CAN adapter on a pseudo-terminal,
//! with a CAN bus behind it holding one ECU that answers requests and sends a heartbeat.
//! Bus latency, and faults on demand through [`SlcanSim::control`] (one command a line):
//!
//! - `fault bus-off` — frames refused (BELL), status flags `A4`, nothing received;
//! - `fault error-frames` — frames refused, status flags `84`, reception goes on;
//! - `fault drop N` — the next N frames from the bus are lost;
//! - `fault garbage` — unreadable bytes on the line (before the next acknowledgement);
//! - `fault clear`, `latency MS`, `heartbeat MS` (0: off);
//! - `send <slcan frame>` — the ECU sends that frame (`send t1232AABB`);
//! - `frames` — the frames the host put on the bus; `state` — open, bit rate, counters.

mod adapter;
mod ecu;

pub use adapter::{Adapter, Fault};
pub use ecu::{
    ECHO_ID, ECHO_REPLY_ID, EXT_ECHO_ID, EXT_ECHO_REPLY_ID, HEARTBEAT_ID, REQUEST_ID, RESPONSE_ID,
};

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use hilt_hw::can::slcan::{self, Message};

use crate::error::SimError;

#[derive(Debug, Clone)]
pub struct SlcanSimConfig {
    /// One-way bus latency (a reply comes after twice this).
    pub latency_ms: u64,
    /// Heartbeat period of the ECU, 0 for none.
    pub heartbeat_ms: u64,
}

impl Default for SlcanSimConfig {
    fn default() -> Self {
        SlcanSimConfig {
            latency_ms: 1,
            heartbeat_ms: 100,
        }
    }
}

struct Shared {
    adapter: Mutex<Adapter>,
    start: Instant,
    stop: AtomicBool,
}

impl Shared {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Adapter> {
        self.adapter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running simulated adapter; stops when dropped.
pub struct SlcanSim {
    path: PathBuf,
    link: Option<PathBuf>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    _slave: std::os::fd::OwnedFd,
}

fn ms(v: u64) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v))
}

impl SlcanSim {
    pub fn start(link: Option<PathBuf>, cfg: SlcanSimConfig) -> Result<SlcanSim, SimError> {
        let pty = crate::pty::open()?;
        if let Some(l) = &link {
            crate::link::create(l, &pty.path)?;
        }
        let shared = Arc::new(Shared {
            adapter: Mutex::new(Adapter::new(
                Duration::from_millis(cfg.latency_ms),
                ms(cfg.heartbeat_ms),
            )),
            start: Instant::now(),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let master = pty.master;
        let thread = std::thread::Builder::new()
            .name("slcan-sim".into())
            .spawn(move || pump(&s, master))
            .map_err(SimError::Thread)?;
        Ok(SlcanSim {
            path: pty.path,
            link,
            shared,
            thread: Some(thread),
            _slave: pty.slave,
        })
    }

    /// The pty slave: the adapter's "serial port".
    pub fn port_path(&self) -> &Path {
        &self.path
    }

    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// One control command (see the module docs); the answer is one line.
    pub fn control(&self, line: &str) -> String {
        let now = self.shared.now();
        let mut a = self.shared.lock();
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |w: Option<&&str>| w.and_then(|v| v.parse::<u64>().ok());
        match words.as_slice() {
            ["fault", "bus-off"] => {
                a.set_fault(Some(Fault::BusOff));
                "ok bus-off".into()
            }
            ["fault", "error-frames"] => {
                a.set_fault(Some(Fault::ErrorFrames));
                "ok error-frames".into()
            }
            ["fault", "drop", n] => match n.parse::<u32>() {
                Ok(n) => {
                    a.drop_frames(n);
                    format!("ok dropping {n}")
                }
                Err(_) => format!("error: `{n}` is not a count"),
            },
            ["fault", "garbage"] => {
                a.inject_raw(b"\x00#?!zz\xFFt12\r");
                "ok garbage".into()
            }
            ["fault", "clear"] => {
                a.set_fault(None);
                "ok clear".into()
            }
            ["latency", _] => match num(words.get(1)) {
                Some(v) => {
                    a.set_latency(Duration::from_millis(v));
                    format!("ok latency {v}")
                }
                None => "error: latency MS".into(),
            },
            ["heartbeat", _] => match num(words.get(1)) {
                Some(v) => {
                    a.ecu.set_heartbeat(now, ms(v));
                    format!("ok heartbeat {v}")
                }
                None => "error: heartbeat MS".into(),
            },
            ["send", text] => match slcan::parse_line(text.as_bytes()) {
                Message::Frame { frame, .. } => {
                    a.ecu.inject(frame);
                    "ok sent".into()
                }
                _ => format!("error: `{text}` is not an slcan frame"),
            },
            ["frames"] => {
                let list: Vec<String> = a
                    .sent_by_host
                    .iter()
                    .map(|f| {
                        String::from_utf8_lossy(&slcan::encode_frame(f).unwrap_or_default())
                            .trim_end()
                            .to_string()
                    })
                    .collect();
                format!("frames {}", list.join(" "))
            }
            ["state"] => format!(
                "state open={} bitrate={} fault={:?} delivered={} bells={} flags={:02X}",
                a.is_open(),
                a.bitrate().unwrap_or(0),
                a.fault(),
                a.delivered,
                a.bells,
                a.flags()
            ),
            _ => format!("error: unknown command `{line}`"),
        }
    }
}

/// Rounds up so a deadline is never reported early.
fn poll_timeout(wait: Duration) -> PollTimeout {
    let ms = wait.as_micros().div_ceil(1000).min(1000) as u16;
    PollTimeout::from(ms)
}

/// Moves bytes between the pty and the adapter until stopped.
fn pump(shared: &Shared, mut master: File) {
    let mut tx: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !shared.stop.load(Ordering::SeqCst) {
        let wait = {
            let now = shared.now();
            let mut a = shared.lock();
            a.take_output(now, &mut tx);
            a.next_deadline()
                .map(|d| d.saturating_sub(now))
                .unwrap_or(Duration::from_millis(100))
                .min(Duration::from_millis(100))
        };
        if !tx.is_empty() {
            match master.write(&tx) {
                Ok(n) => {
                    tx.drain(..n);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            // Nobody reads: the adapter's buffer overflows rather than growing.
            if tx.len() > adapter::MAX_PENDING_OUTPUT {
                tx.clear();
            }
        }
        let flags = if tx.is_empty() {
            PollFlags::POLLIN
        } else {
            PollFlags::POLLIN | PollFlags::POLLOUT
        };
        let ready = {
            let mut fds = [PollFd::new(master.as_fd(), flags)];
            match poll(&mut fds, poll_timeout(wait)) {
                Ok(n) if n > 0 => fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLIN)),
                _ => false,
            }
        };
        if !ready {
            continue;
        }
        match master.read(&mut buf) {
            Ok(n) if n > 0 => {
                let now = shared.now();
                shared.lock().feed(now, &buf[..n]);
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            // EIO while no client has the port open: wait for one.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

impl Drop for SlcanSim {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(l) = &self.link {
            crate::link::remove(l, &self.path);
        }
    }
}
