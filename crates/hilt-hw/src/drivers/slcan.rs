//! `slcan` (hilt extension): a CAN bus through a serial-line adapter speaking the slcan
//! (Lawicell) ASCII protocol — CANable, USBtin, CANtact and most USB-CAN dongles.
//!
//! Opening the transport opens the serial port, closes the CAN channel in case an earlier
//! program left it open (`C`, a refusal is fine), sets the bit rates (`S<n>`, `Y<n>` for
//! CAN FD) and opens the channel (`O`); each command must be acknowledged within the
//! transport's timeout. A frame sent waits for the adapter's acknowledgement (`\r`, or
//! Lawicell's `z`/`Z`); a BELL instead is a refusal, and the adapter's status flags (`F`)
//! then say whether the bus is in an error state. Received frames pass the transport's
//! `filters` in software. Unreadable lines are logged (see [`CanLink::take_notes`]) and
//! skipped, so line noise never passes for a frame. The self-test opens the port, asks
//! the version (`V`, then `v`), and closes it; it never opens the CAN channel.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hilt_model::bench::{CanFilter, Parity, Transport};

use super::{OpenedTransport, Probe, Problem, SelfCheck, TransportDriver};
use crate::can::slcan::{self, Decoder, Message};
use crate::can::{CANCEL_SLICE, CanError, CanLink, Filter, Frame, passes};
use crate::serial::{SerialPort, SerialSettings};
use crate::{CancelToken, HwError, ResourceKind};

pub struct Slcan;

/// Status flag bits (Lawicell `F`): error warning, data overrun, error passive, bus error.
const ERROR_FLAGS: [(u8, &str); 4] = [
    (0x04, "error warning"),
    (0x08, "data overrun"),
    (0x20, "error passive"),
    (0x80, "bus error"),
];

/// Keep at most this many received frames waiting to be read.
const MAX_QUEUED: usize = 4096;

struct Params<'a> {
    port: &'a str,
    baud: u32,
    bitrate: u64,
    timeout_ms: u64,
    fd: bool,
    data_bitrate: Option<u64>,
    filters: &'a [CanFilter],
}

fn params(t: &Transport) -> Option<Params<'_>> {
    match t {
        Transport::Slcan {
            port,
            baud,
            bitrate,
            timeout_ms,
            fd,
            data_bitrate,
            filters,
        } => Some(Params {
            port,
            baud: *baud,
            bitrate: *bitrate,
            timeout_ms: *timeout_ms,
            fd: *fd,
            data_bitrate: *data_bitrate,
            filters,
        }),
        _ => None,
    }
}

fn wrong(t: &Transport) -> HwError {
    HwError::unsupported(
        ResourceKind::Can,
        format!("driver `slcan` cannot use `{}` parameters", t.backend()),
    )
}

impl TransportDriver for Slcan {
    fn tag(&self) -> &'static str {
        "slcan"
    }

    fn check(&self, t: &Transport) -> Vec<Problem> {
        let Some(p) = params(t) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if p.port.trim().is_empty() {
            out.push(Problem::new("port", "must name the adapter's serial port"));
        }
        if p.baud == 0 {
            out.push(Problem::new("baud", "must be greater than 0"));
        }
        if p.timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        if p.bitrate > 0 && slcan::bitrate_command(p.bitrate).is_none() {
            let list: Vec<String> = slcan::BITRATES.iter().map(|(b, _)| b.to_string()).collect();
            out.push(
                Problem::new(
                    "bitrate",
                    format!("{} is not a bit rate slcan adapters can select", p.bitrate),
                )
                .with_help(format!("use one of {}", list.join(", "))),
            );
        }
        if let Some(db) = p.data_bitrate
            && db > 0
            && slcan::data_bitrate_command(db).is_none()
        {
            out.push(
                Problem::new(
                    "data_bitrate",
                    format!("{db} is not a data bit rate slcan adapters can select"),
                )
                .with_help("use 2000000 or 5000000"),
            );
        }
        out
    }

    fn open(&self, _node: &str, _name: &str, t: &Transport) -> Result<OpenedTransport, HwError> {
        let p = params(t).ok_or_else(|| wrong(t))?;
        let mut link = SlcanLink::connect(&p)?;
        link.start(&p).map_err(|e| match e {
            CanError::Io(e) => e,
            other => HwError::open(
                ResourceKind::Can,
                "slcan adapter",
                p.port,
                format!("{other} while opening the CAN channel"),
            ),
        })?;
        Ok(OpenedTransport::Can(Box::new(link)))
    }

    fn self_test(&self, _node: &str, _name: &str, t: &Transport) -> Vec<SelfCheck> {
        let check = |id: &str, title: String, outcome| SelfCheck {
            id: id.into(),
            title,
            outcome,
        };
        let Some(p) = params(t) else {
            return vec![check(
                "start",
                "open slcan adapter".into(),
                Probe::Failed(wrong(t)),
            )];
        };
        let mut link = match SlcanLink::connect(&p) {
            Ok(l) => l,
            Err(e) => return vec![check("start", format!("open {}", p.port), Probe::Failed(e))],
        };
        let mut out = vec![check(
            "start",
            format!("open {}", p.port),
            Probe::Pass(format!("opened {}", p.port)),
        )];
        let cancel = CancelToken::new();
        let version = match link.query('V', &cancel) {
            Ok(v) => {
                let sw = link.query('v', &cancel).ok();
                Probe::Pass(match sw {
                    Some(sw) => format!("adapter version {v}, firmware {sw}"),
                    None => format!("adapter version {v}"),
                })
            }
            Err(e) => Probe::Failed(HwError::open(
                ResourceKind::Can,
                "slcan adapter",
                p.port,
                format!(
                    "no answer to the version query: {e} (is it an slcan adapter, at baud {}?)",
                    p.baud
                ),
            )),
        };
        out.push(check("version", format!("{} version", p.port), version));
        out
    }
}

struct SlcanLink {
    port: Box<dyn SerialPort>,
    path: String,
    bitrate: u64,
    fd: bool,
    timeout: Duration,
    filters: Vec<Filter>,
    decoder: Decoder,
    /// Messages read but not yet handled.
    incoming: VecDeque<Message>,
    frames: VecDeque<Frame>,
    /// `frames[..old]` were received before the last mark.
    old: usize,
    notes: Vec<String>,
}

impl SlcanLink {
    fn connect(p: &Params<'_>) -> Result<SlcanLink, HwError> {
        let settings = SerialSettings {
            port: p.port.to_string(),
            baud: p.baud,
            bytesize: 8,
            parity: Parity::N,
            stopbits: 1.0,
        };
        let port = crate::serial::open_as(&settings, ResourceKind::Can, "slcan adapter")?;
        Ok(SlcanLink {
            port,
            path: p.port.to_string(),
            bitrate: p.bitrate,
            fd: p.fd,
            timeout: Duration::from_millis(p.timeout_ms.max(1)),
            filters: p
                .filters
                .iter()
                .map(|f| Filter {
                    id: f.id,
                    mask: f.mask,
                    extended: f.extended,
                })
                .collect(),
            decoder: Decoder::new(),
            incoming: VecDeque::new(),
            frames: VecDeque::new(),
            old: 0,
            notes: Vec::new(),
        })
    }

    fn io(&self, e: std::io::Error) -> CanError {
        CanError::Io(HwError::io(
            ResourceKind::Can,
            "slcan adapter",
            format!("{}: {e}", self.path),
        ))
    }

    fn start(&mut self, p: &Params<'_>) -> Result<(), CanError> {
        let cancel = CancelToken::new();
        // A channel left open by an earlier program refuses `S`: close it (a closed one
        // refuses `C`, which is fine).
        let _ = self.command("C", &cancel);
        let s = slcan::bitrate_command(p.bitrate).ok_or_else(|| CanError::Refused {
            what: format!("bit rate {}", p.bitrate),
        })?;
        self.command(s, &cancel)?;
        if p.fd
            && let Some(db) = p.data_bitrate
        {
            let y = slcan::data_bitrate_command(db).ok_or_else(|| CanError::Refused {
                what: format!("data bit rate {db}"),
            })?;
            self.command(y, &cancel)?;
        }
        self.command("O", &cancel)
    }

    /// Reads what arrived within `wait` (at most one slice) into `incoming`.
    fn fill(&mut self, wait: Duration) -> Result<usize, CanError> {
        let mut buf = [0u8; 4096];
        let n = self
            .port
            .read_timeout(&mut buf, wait.min(CANCEL_SLICE))
            .map_err(|e| self.io(e))?;
        self.decoder.push(&buf[..n], &mut self.incoming);
        Ok(n)
    }

    /// Takes frames and notes out of `incoming`; returns the first other message.
    fn sort(&mut self) -> Option<Message> {
        while let Some(m) = self.incoming.pop_front() {
            match m {
                Message::Frame { frame, .. } => {
                    if passes(&self.filters, &frame) {
                        if self.frames.len() >= MAX_QUEUED {
                            self.frames.pop_front();
                            self.old = self.old.saturating_sub(1);
                            self.note("receive queue full: the oldest frame was dropped".into());
                        }
                        self.frames.push_back(frame);
                    }
                }
                Message::Garbage { line, why } => self.note(format!("GARBAGE {why}: '{line}'")),
                other => return Some(other),
            }
        }
        None
    }

    fn note(&mut self, s: String) {
        if self.notes.len() < 100 {
            self.notes.push(s);
        }
    }

    /// Sends `text` + CR and waits for the acknowledgement or a refusal; answers with a
    /// payload (`V1013`) are returned.
    fn exchange(
        &mut self,
        text: &[u8],
        what: &str,
        cancel: &CancelToken,
        want_reply: Option<char>,
    ) -> Result<Option<String>, CanError> {
        // An answer left over from an earlier, timed-out command is not this one's.
        while let Some(m) = self.sort() {
            self.note(format!("UNEXPECTED {m:?}"));
        }
        self.port.write_all_bytes(text).map_err(|e| self.io(e))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            while let Some(m) = self.sort() {
                match (m, want_reply) {
                    (Message::Ack, None) => return Ok(None),
                    (Message::Bell, _) => {
                        return Err(CanError::Refused {
                            what: what.to_string(),
                        });
                    }
                    (Message::Command(c), Some(k)) if c.starts_with(k) => {
                        return Ok(Some(c[1..].to_string()));
                    }
                    (m, _) => self.note(format!("UNEXPECTED {m:?} while waiting for {what}")),
                }
            }
            if cancel.is_cancelled() {
                return Err(CanError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CanError::NoAnswer {
                    what: what.to_string(),
                    waited: self.timeout,
                });
            }
            self.fill(left)?;
        }
    }

    fn command(&mut self, cmd: &str, cancel: &CancelToken) -> Result<(), CanError> {
        self.exchange(
            format!("{cmd}\r").as_bytes(),
            &format!("`{cmd}`"),
            cancel,
            None,
        )
        .map(|_| ())
    }

    /// A query answered with a payload (`V` → `V1013`).
    fn query(&mut self, cmd: char, cancel: &CancelToken) -> Result<String, CanError> {
        self.exchange(
            format!("{cmd}\r").as_bytes(),
            &format!("`{cmd}`"),
            cancel,
            Some(cmd),
        )?
        .ok_or_else(|| CanError::Garbled {
            what: format!("empty answer to `{cmd}`"),
        })
    }

    /// The error state in the adapter's status flags, if any.
    fn error_state(&mut self, cancel: &CancelToken) -> Result<Option<String>, CanError> {
        let flags = match self.exchange(b"F\r", "`F`", cancel, Some('F')) {
            Ok(Some(hex)) => u8::from_str_radix(&hex, 16).map_err(|_| CanError::Garbled {
                what: format!("status flags `{hex}`"),
            })?,
            Ok(None) => return Ok(None),
            // An adapter without `F` cannot say.
            Err(CanError::Refused { .. } | CanError::NoAnswer { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let states: Vec<&str> = ERROR_FLAGS
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, s)| *s)
            .collect();
        Ok((!states.is_empty())
            .then(|| format!("{} (status flags {flags:#04X})", states.join(", "))))
    }
}

impl CanLink for SlcanLink {
    fn send(&mut self, frame: &Frame, cancel: &CancelToken) -> Result<(), CanError> {
        if frame.fd && !self.fd {
            return Err(CanError::Refused {
                what: "a CAN FD frame on a transport without `fd: true`".into(),
            });
        }
        let bytes = slcan::encode_frame(frame).map_err(|e| CanError::Refused {
            what: format!("the frame ({e})"),
        })?;
        let what = format!("frame id=0x{:X}", frame.id);
        match self.exchange(&bytes, &what, cancel, None) {
            Err(CanError::Refused { what }) => match self.error_state(cancel)? {
                Some(state) => Err(CanError::Bus { state }),
                None => Err(CanError::Refused { what }),
            },
            other => other.map(|_| ()),
        }
    }

    fn recv(&mut self, deadline: Instant, cancel: &CancelToken) -> Result<Option<Frame>, CanError> {
        loop {
            while let Some(m) = self.sort() {
                self.note(format!("UNEXPECTED {m:?}"));
            }
            if let Some(f) = self.frames.pop_front() {
                self.old = self.old.saturating_sub(1);
                return Ok(Some(f));
            }
            if cancel.is_cancelled() {
                return Err(CanError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.fill(left)?;
        }
    }

    fn mark(&mut self) -> Result<usize, CanError> {
        let dropped = self.old.min(self.frames.len());
        self.frames.drain(..dropped);
        while self.fill(Duration::ZERO)? > 0 {}
        while let Some(m) = self.sort() {
            self.note(format!("UNEXPECTED {m:?}"));
        }
        self.old = self.frames.len();
        Ok(dropped)
    }

    fn bus_state(&mut self, cancel: &CancelToken) -> Result<Option<String>, CanError> {
        self.error_state(cancel)
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn describe(&self) -> String {
        format!("slcan {} @{}", self.path, self.bitrate)
    }
}

impl Drop for SlcanLink {
    fn drop(&mut self) {
        // Leave the adapter off the bus; nothing waits for the acknowledgement.
        let _ = self.port.write_all_bytes(b"C\r");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slcan(bitrate: u64, data_bitrate: Option<u64>) -> Transport {
        Transport::Slcan {
            port: "/dev/ttyACM0".into(),
            baud: 115200,
            bitrate,
            timeout_ms: 500,
            fd: data_bitrate.is_some(),
            data_bitrate,
            filters: vec![],
        }
    }

    #[test]
    fn bit_rates_must_be_selectable() {
        assert!(Slcan.check(&slcan(500_000, Some(2_000_000))).is_empty());
        let p = Slcan.check(&slcan(333_000, Some(4_000_000)));
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].field, "bitrate");
        assert!(p[0].help.as_deref().unwrap_or("").contains("500000"));
        assert_eq!(p[1].field, "data_bitrate");
    }

    #[test]
    fn a_missing_port_is_an_open_error_of_the_can_kind() {
        let t = Transport::Slcan {
            port: "/dev/hilt-no-such-adapter".into(),
            baud: 115200,
            bitrate: 500_000,
            timeout_ms: 100,
            fd: false,
            data_bitrate: None,
            filters: vec![],
        };
        match Slcan.open("n", "t", &t) {
            Err(HwError::Open { kind, .. }) => assert_eq!(kind, ResourceKind::Can),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened a missing port"),
        }
        let checks = Slcan.self_test("n", "t", &t);
        assert!(matches!(checks[0].outcome, Probe::Failed(_)));
    }
}
