//! The simulated slcan adapter and the bus behind it, as a pure state machine on a
//! virtual clock (`Duration` since start): bytes from the host go in with [`Adapter::feed`],
//! bytes for the host come out of [`Adapter::take_output`] when they are due.
//!
//! The adapter answers like a CANable-style slcan adapter: `S`/`Y` set the bit rates
//! (only while the channel is closed), `O`/`L` open it (a bit rate must be set), `C`
//! closes it, `V`/`v`/`N` identify it, `F` reports status flags, `Z0`/`Z1` switch
//! timestamps, frames are acknowledged with `z`/`Z`; anything refused is a BELL.
//!
//! The bus holds one ECU ([`crate::slcan::Ecu`]): it answers requests after the bus
//! latency and sends a heartbeat. Faults on demand: bus-off (frames refused, nothing
//! received), error frames (frames refused with the bus-error flags set, reception goes
//! on), dropped frames, garbage on the line.

use std::collections::VecDeque;
use std::time::Duration;

use hilt_hw::can::Frame;
use hilt_hw::can::slcan::{self, Decoder, Message};

use super::ecu::Ecu;

pub const VERSION: &str = "V1013";
pub const FIRMWARE: &str = "v0107";
pub const SERIAL: &str = "NSIM1";
/// Status flags (Lawicell `F`).
pub const FLAG_ERROR_WARNING: u8 = 0x04;
pub const FLAG_OVERRUN: u8 = 0x08;
pub const FLAG_ERROR_PASSIVE: u8 = 0x20;
pub const FLAG_BUS_ERROR: u8 = 0x80;
/// Bytes waiting for the host beyond this are dropped (the adapter's buffer overflows).
pub const MAX_PENDING_OUTPUT: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    BusOff,
    ErrorFrames,
}

pub struct Adapter {
    decoder: Decoder,
    incoming: VecDeque<Message>,
    bitrate: Option<u64>,
    data_bitrate: Option<u64>,
    open: bool,
    listen_only: bool,
    timestamps: bool,
    overrun: bool,
    fault: Option<Fault>,
    /// Frames the bus drops before they reach the adapter.
    drop_next: u32,
    /// Unreadable bytes to put on the line before the next acknowledgement.
    garbage_next: Option<Vec<u8>>,
    latency: Duration,
    /// Bytes due at a time, in time order.
    out: VecDeque<(Duration, Vec<u8>)>,
    pending_bytes: usize,
    pub ecu: Ecu,
    /// Every frame the host put on the bus (for tests and `frames`).
    pub sent_by_host: Vec<Frame>,
    pub bells: u64,
    pub delivered: u64,
}

impl Adapter {
    pub fn new(latency: Duration, heartbeat: Option<Duration>) -> Adapter {
        Adapter {
            decoder: Decoder::new(),
            incoming: VecDeque::new(),
            bitrate: None,
            data_bitrate: None,
            open: false,
            listen_only: false,
            timestamps: false,
            overrun: false,
            fault: None,
            drop_next: 0,
            garbage_next: None,
            latency,
            out: VecDeque::new(),
            pending_bytes: 0,
            ecu: Ecu::new(heartbeat),
            sent_by_host: Vec::new(),
            bells: 0,
            delivered: 0,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn bitrate(&self) -> Option<u64> {
        self.bitrate
    }

    pub fn set_latency(&mut self, d: Duration) {
        self.latency = d;
    }

    pub fn set_fault(&mut self, f: Option<Fault>) {
        self.fault = f;
    }

    pub fn fault(&self) -> Option<Fault> {
        self.fault
    }

    pub fn drop_frames(&mut self, n: u32) {
        self.drop_next = self.drop_next.saturating_add(n);
    }

    pub fn flags(&self) -> u8 {
        let mut f = 0;
        match self.fault {
            Some(Fault::BusOff) => f |= FLAG_BUS_ERROR | FLAG_ERROR_PASSIVE | FLAG_ERROR_WARNING,
            Some(Fault::ErrorFrames) => f |= FLAG_BUS_ERROR | FLAG_ERROR_WARNING,
            None => {}
        }
        if self.overrun {
            f |= FLAG_OVERRUN;
        }
        f
    }

    fn emit(&mut self, at: Duration, bytes: Vec<u8>) {
        if self.pending_bytes + bytes.len() > MAX_PENDING_OUTPUT {
            self.overrun = true;
            return;
        }
        self.pending_bytes += bytes.len();
        // Keep time order: most emits are due now or later than the last one.
        let pos = self
            .out
            .iter()
            .rposition(|(t, _)| *t <= at)
            .map(|i| i + 1)
            .unwrap_or(0);
        self.out.insert(pos, (at, bytes));
    }

    fn ok(&mut self, now: Duration) {
        self.emit(now, vec![slcan::OK]);
    }

    fn bell(&mut self, now: Duration) {
        self.bells += 1;
        self.emit(now, vec![slcan::BELL]);
    }

    /// Raw bytes on the line (the `garbage` fault), when the host next sends a frame.
    pub fn inject_raw(&mut self, bytes: &[u8]) {
        self.garbage_next = Some(bytes.to_vec());
    }

    /// A frame from the bus reaches the adapter at `at`: delivered to the host when the
    /// channel is open and the bus is not off.
    pub fn from_bus(&mut self, at: Duration, frame: &Frame) {
        if !self.open || self.fault == Some(Fault::BusOff) {
            return;
        }
        if self.drop_next > 0 {
            self.drop_next -= 1;
            return;
        }
        let ts = self.timestamps.then_some((at.as_millis() % 60_000) as u16);
        if let Ok(bytes) = slcan::encode_frame_at(frame, ts) {
            self.delivered += 1;
            self.emit(at, bytes);
        }
    }

    /// Bytes from the host at `now`.
    pub fn feed(&mut self, now: Duration, bytes: &[u8]) {
        self.decoder.push(bytes, &mut self.incoming);
        while let Some(m) = self.incoming.pop_front() {
            self.handle(now, m);
        }
    }

    fn handle(&mut self, now: Duration, m: Message) {
        match m {
            // A bare CR from the host: nothing to do (some hosts send one to sync).
            Message::Ack => {}
            Message::Bell | Message::Garbage { .. } => self.bell(now),
            Message::Frame { frame, .. } => {
                if !self.open || self.listen_only || self.fault.is_some() || frame.esi {
                    self.bell(now);
                    return;
                }
                if let Some(g) = self.garbage_next.take() {
                    self.emit(now, g);
                }
                let ack = if frame.extended { b'Z' } else { b'z' };
                self.emit(now, vec![ack, slcan::OK]);
                let at = now + self.latency;
                for reply in self.ecu.receive(&frame) {
                    let reply_at = at + self.latency;
                    self.from_bus(reply_at, &reply);
                }
                self.sent_by_host.push(frame);
            }
            Message::Command(c) => self.command(now, &c),
        }
    }

    fn command(&mut self, now: Duration, c: &str) {
        match c {
            "O" | "L" => {
                if self.open || self.bitrate.is_none() {
                    self.bell(now);
                } else {
                    self.open = true;
                    self.listen_only = c == "L";
                    self.ok(now);
                }
            }
            "C" => {
                if self.open {
                    self.open = false;
                    self.ok(now);
                } else {
                    self.bell(now);
                }
            }
            "V" => self.emit(now, format!("{VERSION}\r").into_bytes()),
            "v" => self.emit(now, format!("{FIRMWARE}\r").into_bytes()),
            "N" => self.emit(now, format!("{SERIAL}\r").into_bytes()),
            "F" => {
                let f = self.flags();
                self.overrun = false;
                self.emit(now, format!("F{f:02X}\r").into_bytes());
            }
            "Z0" | "Z1" => {
                self.timestamps = c == "Z1";
                self.ok(now);
            }
            s if s.starts_with('S') || s.starts_with('Y') => match slcan::bitrate_of(s) {
                Some(b) if !self.open => {
                    if s.starts_with('S') {
                        self.bitrate = Some(b);
                    } else {
                        self.data_bitrate = Some(b);
                    }
                    self.ok(now);
                }
                _ => self.bell(now),
            },
            _ => self.bell(now),
        }
    }

    /// The ECU's own traffic (heartbeat) up to `now`.
    fn run_ecu(&mut self, now: Duration) {
        for (at, f) in self.ecu.due(now) {
            self.from_bus(at, &f);
        }
    }

    /// Appends every byte due by `now` to `out`.
    pub fn take_output(&mut self, now: Duration, out: &mut Vec<u8>) {
        self.run_ecu(now);
        while let Some((t, _)) = self.out.front() {
            if *t > now {
                break;
            }
            if let Some((_, b)) = self.out.pop_front() {
                self.pending_bytes -= b.len();
                out.extend_from_slice(&b);
            }
        }
    }

    /// When something is next due (output or the ECU's next heartbeat).
    pub fn next_deadline(&self) -> Option<Duration> {
        let out = self.out.front().map(|(t, _)| *t);
        let ecu = if self.open { self.ecu.next_due() } else { None };
        match (out, ecu) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: &mut Adapter, now_ms: u64, input: &[u8]) -> Vec<u8> {
        let now = Duration::from_millis(now_ms);
        a.feed(now, input);
        let mut out = Vec::new();
        a.take_output(now, &mut out);
        out
    }

    #[test]
    fn opens_only_with_a_bit_rate_and_answers_identity() {
        let mut a = Adapter::new(Duration::ZERO, None);
        assert_eq!(run(&mut a, 0, b"O\r"), b"\x07");
        assert_eq!(run(&mut a, 0, b"C\r"), b"\x07");
        assert_eq!(run(&mut a, 0, b"S6\rO\r"), b"\r\r");
        assert_eq!(a.bitrate(), Some(500_000));
        assert_eq!(
            run(&mut a, 0, b"S4\r"),
            b"\x07",
            "no bit rate change while open"
        );
        assert_eq!(
            run(&mut a, 0, b"V\rv\rN\rF\r"),
            b"V1013\rv0107\rNSIM1\rF00\r"
        );
        assert_eq!(run(&mut a, 0, b"Q\r#\r"), b"\x07\x07");
    }

    #[test]
    fn requests_are_answered_after_the_bus_latency() {
        let mut a = Adapter::new(Duration::from_millis(5), None);
        run(&mut a, 0, b"S6\rO\r");
        assert_eq!(run(&mut a, 0, b"t7E0322F190\r"), b"z\r");
        assert_eq!(run(&mut a, 9, b""), b"");
        assert_eq!(run(&mut a, 10, b""), b"t7E8362F190\r");
        assert_eq!(a.sent_by_host.len(), 1);
    }

    #[test]
    fn faults_refuse_and_silence() {
        let mut a = Adapter::new(Duration::ZERO, Some(Duration::from_millis(10)));
        run(&mut a, 0, b"S6\rO\r");
        assert!(run(&mut a, 10, b"").starts_with(b"t701"));
        a.set_fault(Some(Fault::ErrorFrames));
        assert_eq!(run(&mut a, 11, b"t1230\rF\r"), b"\x07F84\r");
        assert!(
            run(&mut a, 20, b"").starts_with(b"t701"),
            "reception goes on"
        );
        a.set_fault(Some(Fault::BusOff));
        assert_eq!(run(&mut a, 30, b"t1230\r"), b"\x07");
        assert_eq!(run(&mut a, 40, b""), b"", "nothing received while bus-off");
        a.set_fault(None);
        a.drop_frames(1);
        assert_eq!(run(&mut a, 50, b""), b"", "one heartbeat dropped");
        assert!(run(&mut a, 60, b"").starts_with(b"t701"));
    }
}
