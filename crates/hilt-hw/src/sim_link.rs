//! Client of the simulated-bench wiring protocol.
//!
//! The simulated DUT (crate `hilt-sim`) stands for a whole bench: a device on a
//! pseudo-terminal plus the wires a real bench would have around it. Those wires are
//! reached through a *control socket* (a Unix stream socket whose path is chosen when the
//! sim is started). This module owns the protocol's constants and documentation, and
//! [`SimLink`], the client that simulated GPIO and power drivers use.
//!
//! # Wiring
//!
//! GPIO channels are the `channel` numbers of `mock_gpio` lines in a bench file:
//!
//! | channel | name | direction (bench view) | meaning |
//! |---|---|---|---|
//! | 0 | [`CHANNEL_RESET`] | output → DUT | `true` holds the DUT in reset (logical active); releasing it boots the DUT with reset cause `reset-pin` |
//! | 1 | [`CHANNEL_READY`] | input ← DUT | `true` once the DUT is powered, out of reset and booted |
//! | 2 | [`CHANNEL_LED`] | input ← DUT | follows the firmware's `led on` / `led off` |
//! | 3 | [`CHANNEL_BUTTON`] | output → DUT | a push button the firmware reads with `btn?` |
//!
//! Power is the single outlet of the simulated power switch: off means the DUT is dead
//! (silent, READY low); switching it on boots the DUT with reset cause `power-on`.
//!
//! # Control protocol
//!
//! Plain text over the stream socket. Each request is one line ending in `\n`, each reply
//! is one line ending in `\n`. Several clients may be connected at once; requests from one
//! client are answered in order.
//!
//! | request | reply |
//! |---|---|
//! | `ping` | `pong` |
//! | `power on`, `power off` | `ok` |
//! | `power?` | `on` or `off` |
//! | `gpio set <channel> <0\|1>` | `ok` (only channels the bench drives: RESET, BUTTON) |
//! | `gpio get <channel>` | `0` or `1` |
//! | `fault hang` | `ok`: the firmware stops answering until reset or power cycle |
//! | `fault silent` | `ok`: every byte the DUT sends is dropped |
//! | `fault noise <p>` | `ok`: each output line gets a garbage byte with probability `p` (0..1) |
//! | `fault clear` | `ok`: undo all faults (noise back to its configured level) |
//! | `state?` | one-line JSON: `powered`, `booted`, `hung`, `led`, `ready`, `boots`, ... |
//! | `help` | one line listing the requests |
//!
//! Anything the sim cannot do is answered with `error: <reason>`; it never closes the
//! connection because of a bad request.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bench output → DUT reset input. `true` holds the DUT in reset.
pub const CHANNEL_RESET: u32 = 0;
/// DUT output → bench input. `true` once the DUT has booted and is powered.
pub const CHANNEL_READY: u32 = 1;
/// DUT output: the firmware's LED.
pub const CHANNEL_LED: u32 = 2;
/// Bench output → DUT input: a push button.
pub const CHANNEL_BUTTON: u32 = 3;

/// Deadline for one request/reply exchange on the control socket.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest reply line accepted from the sim (the `state?` JSON is far shorter).
const MAX_REPLY: usize = 64 * 1024;

/// Name of a wiring channel, for messages.
pub fn channel_name(channel: u32) -> Option<&'static str> {
    match channel {
        CHANNEL_RESET => Some("RESET"),
        CHANNEL_READY => Some("READY"),
        CHANNEL_LED => Some("LED"),
        CHANNEL_BUTTON => Some("BUTTON"),
        _ => None,
    }
}

/// Whether the bench drives this channel (as opposed to reading a DUT output).
pub fn channel_is_bench_output(channel: u32) -> bool {
    matches!(channel, CHANNEL_RESET | CHANNEL_BUTTON)
}

#[derive(Debug, thiserror::Error)]
pub enum SimLinkError {
    #[error(
        "cannot connect to the sim DUT control socket {}: {source}; the sim DUT is not running \
         (start it, or check the control socket path in the bench file)",
        path.display()
    )]
    Connect { path: PathBuf, source: io::Error },
    #[error(
        "sim DUT control socket {} did not answer '{request}' within {}s; the sim may be stuck, restart it",
        path.display(),
        REQUEST_TIMEOUT.as_secs()
    )]
    Timeout { path: PathBuf, request: String },
    #[error(
        "lost the connection to the sim DUT control socket {} during '{request}': {source}; \
         check that the sim DUT is still running",
        path.display()
    )]
    Io {
        path: PathBuf,
        request: String,
        source: io::Error,
    },
    #[error("sim DUT refused '{request}': {reason}")]
    Rejected { request: String, reason: String },
    #[error(
        "sim DUT answered '{request}' with unexpected '{reply}'; is this a hilt sim DUT socket?"
    )]
    Unexpected { request: String, reply: String },
    #[error("invalid sim request '{0}': requests are a single line")]
    InvalidRequest(String),
}

/// A connection to a simulated bench's control socket.
///
/// Methods take `&self` and serialise on an internal lock, so one link can be shared by
/// the GPIO and power drivers of a node. After an I/O error or timeout the connection is
/// dropped and the next call reconnects.
#[derive(Debug)]
pub struct SimLink {
    path: PathBuf,
    conn: Mutex<Option<Conn>>,
}

#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl SimLink {
    /// Connects to the control socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<SimLink, SimLinkError> {
        let path = path.as_ref().to_path_buf();
        let conn = open(&path)?;
        Ok(SimLink {
            path,
            conn: Mutex::new(Some(conn)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Switches the simulated power outlet.
    pub fn power_set(&self, on: bool) -> Result<(), SimLinkError> {
        self.expect_ok(if on { "power on" } else { "power off" })
    }

    pub fn power_get(&self) -> Result<bool, SimLinkError> {
        let reply = self.request("power?")?;
        match reply.as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(unexpected("power?", reply)),
        }
    }

    /// Drives a bench output channel (RESET or BUTTON).
    pub fn gpio_set(&self, channel: u32, value: bool) -> Result<(), SimLinkError> {
        self.expect_ok(&format!("gpio set {channel} {}", u8::from(value)))
    }

    /// Reads any channel.
    pub fn gpio_get(&self, channel: u32) -> Result<bool, SimLinkError> {
        let request = format!("gpio get {channel}");
        let reply = self.request(&request)?;
        match reply.as_str() {
            "1" => Ok(true),
            "0" => Ok(false),
            _ => Err(unexpected(&request, reply)),
        }
    }

    /// Injects a fault: `hang`, `silent`, `noise <p>` or `clear`.
    pub fn fault(&self, spec: &str) -> Result<(), SimLinkError> {
        self.expect_ok(&format!("fault {}", spec.trim()))
    }

    /// The sim's state as JSON (`powered`, `booted`, `hung`, `led`, `ready`, `boots`, ...).
    pub fn state(&self) -> Result<serde_json::Value, SimLinkError> {
        let reply = self.request("state?")?;
        serde_json::from_str(&reply).map_err(|_| unexpected("state?", reply))
    }

    /// Round trip without side effects; checks that the sim is alive.
    pub fn ping(&self) -> Result<(), SimLinkError> {
        let reply = self.request("ping")?;
        if reply == "pong" {
            Ok(())
        } else {
            Err(unexpected("ping", reply))
        }
    }

    fn expect_ok(&self, request: &str) -> Result<(), SimLinkError> {
        let reply = self.request(request)?;
        if reply == "ok" {
            Ok(())
        } else {
            Err(unexpected(request, reply))
        }
    }

    /// Sends one request line and returns the reply line (without its newline).
    /// `error: ...` replies become [`SimLinkError::Rejected`].
    pub fn request(&self, request: &str) -> Result<String, SimLinkError> {
        if request.contains(['\n', '\r']) {
            return Err(SimLinkError::InvalidRequest(request.to_string()));
        }
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let conn = match guard.as_mut() {
            Some(conn) => conn,
            None => guard.insert(open(&self.path)?),
        };
        let result = conn.exchange(request);
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                *guard = None;
                return Err(match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => SimLinkError::Timeout {
                        path: self.path.clone(),
                        request: request.to_string(),
                    },
                    _ => SimLinkError::Io {
                        path: self.path.clone(),
                        request: request.to_string(),
                        source: e,
                    },
                });
            }
        };
        match reply.strip_prefix("error:") {
            Some(reason) => Err(SimLinkError::Rejected {
                request: request.to_string(),
                reason: reason.trim().to_string(),
            }),
            None => Ok(reply),
        }
    }
}

fn unexpected(request: &str, reply: String) -> SimLinkError {
    SimLinkError::Unexpected {
        request: request.to_string(),
        reply,
    }
}

fn open(path: &Path) -> Result<Conn, SimLinkError> {
    let stream = UnixStream::connect(path).map_err(|source| SimLinkError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Conn {
        stream,
        buf: Vec::new(),
    })
}

impl Conn {
    /// Writes `request\n` and reads one reply line, all within [`REQUEST_TIMEOUT`].
    fn exchange(&mut self, request: &str) -> io::Result<String> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut line = Vec::with_capacity(request.len() + 1);
        line.extend_from_slice(request.as_bytes());
        line.push(b'\n');
        self.stream.set_write_timeout(Some(remaining(deadline)?))?;
        self.stream.write_all(&line)?;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(pos + 1);
                let mut reply = std::mem::replace(&mut self.buf, rest);
                reply.truncate(pos);
                if reply.last() == Some(&b'\r') {
                    reply.pop();
                }
                return String::from_utf8(reply)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "reply is not UTF-8"));
            }
            if self.buf.len() > MAX_REPLY {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply line too long",
                ));
            }
            self.stream.set_read_timeout(Some(remaining(deadline)?))?;
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the sim closed the connection",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
    } else {
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    fn temp_socket(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hilt-simlink-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let _ = std::fs::remove_file(&path);
        path
    }

    /// A fake sim that answers each request from a fixed table.
    fn fake_server(path: &Path, answers: &'static [(&'static str, &'static str)]) {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = io::BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let req = line.trim_end();
                let reply = answers
                    .iter()
                    .find(|(q, _)| *q == req)
                    .map(|(_, a)| *a)
                    .unwrap_or("error: unknown request");
                if reply == "<silence>" {
                    std::thread::sleep(Duration::from_secs(3));
                    return;
                }
                writer.write_all(format!("{reply}\n").as_bytes()).unwrap();
                line.clear();
            }
        });
    }

    #[test]
    fn missing_socket_names_path() {
        let path = temp_socket("missing");
        let err = SimLink::connect(&path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ctl.sock"), "{msg}");
        assert!(msg.contains("not running"), "{msg}");
    }

    #[test]
    fn requests_and_replies() {
        let path = temp_socket("ok");
        fake_server(
            &path,
            &[
                ("power on", "ok"),
                ("power?", "on"),
                ("gpio get 1", "1"),
                ("gpio set 0 1", "ok"),
                ("gpio set 1 1", "error: channel 1 (READY) is a DUT output"),
                ("fault noise 0.5", "ok"),
                ("state?", "{\"powered\":true}"),
                ("ping", "pong"),
            ],
        );
        let link = SimLink::connect(&path).unwrap();
        link.power_set(true).unwrap();
        assert!(link.power_get().unwrap());
        assert!(link.gpio_get(CHANNEL_READY).unwrap());
        link.gpio_set(CHANNEL_RESET, true).unwrap();
        let err = link.gpio_set(CHANNEL_READY, true).unwrap_err();
        assert!(matches!(err, SimLinkError::Rejected { .. }), "{err}");
        assert!(err.to_string().contains("DUT output"));
        link.fault("noise 0.5").unwrap();
        assert_eq!(link.state().unwrap()["powered"], true);
        link.ping().unwrap();
        assert!(matches!(
            link.request("a\nb"),
            Err(SimLinkError::InvalidRequest(_))
        ));
    }

    #[test]
    fn silent_server_times_out() {
        let path = temp_socket("silent");
        fake_server(&path, &[("power?", "<silence>")]);
        let link = SimLink::connect(&path).unwrap();
        let start = Instant::now();
        let err = link.power_get().unwrap_err();
        assert!(matches!(err, SimLinkError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn channel_names() {
        assert_eq!(channel_name(CHANNEL_RESET), Some("RESET"));
        assert_eq!(channel_name(9), None);
        assert!(channel_is_bench_output(CHANNEL_BUTTON));
        assert!(!channel_is_bench_output(CHANNEL_LED));
    }
}
