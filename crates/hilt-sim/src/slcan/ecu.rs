//! The simulated ECU on the CAN bus behind the slcan adapter:
//!
//! - a UDS-style request/response: a frame to `0x7E0` is answered on `0x7E8` with the
//!   first byte + 0x40 (a positive response) and the rest echoed;
//! - an echo: a frame to `0x321` comes back on `0x322` unchanged (CAN FD too, flags kept),
//!   and an extended frame to `0x18DA00F1` comes back on `0x18DAF100`;
//! - a heartbeat on `0x701` every period: one byte counting up, then `0x05`
//!   (operational, CANopen style).

use std::time::Duration;

use hilt_hw::can::Frame;

pub const REQUEST_ID: u32 = 0x7E0;
pub const RESPONSE_ID: u32 = 0x7E8;
pub const ECHO_ID: u32 = 0x321;
pub const ECHO_REPLY_ID: u32 = 0x322;
pub const EXT_ECHO_ID: u32 = 0x18DA_00F1;
pub const EXT_ECHO_REPLY_ID: u32 = 0x18DA_F100;
pub const HEARTBEAT_ID: u32 = 0x701;

pub struct Ecu {
    heartbeat: Option<Duration>,
    next_heartbeat: Duration,
    counter: u8,
    /// Frames the ECU sends on its own, queued by `inject`.
    injected: Vec<Frame>,
}

impl Ecu {
    pub fn new(heartbeat: Option<Duration>) -> Ecu {
        Ecu {
            heartbeat: heartbeat.filter(|d| !d.is_zero()),
            next_heartbeat: heartbeat.unwrap_or_default(),
            counter: 0,
            injected: Vec::new(),
        }
    }

    pub fn set_heartbeat(&mut self, now: Duration, period: Option<Duration>) {
        self.heartbeat = period.filter(|d| !d.is_zero());
        self.next_heartbeat = now + period.unwrap_or_default();
    }

    /// A frame the ECU sends as soon as possible.
    pub fn inject(&mut self, f: Frame) {
        self.injected.push(f);
    }

    /// The ECU's replies to a frame it received.
    pub fn receive(&mut self, f: &Frame) -> Vec<Frame> {
        if f.remote {
            return Vec::new();
        }
        match (f.id, f.extended) {
            (REQUEST_ID, false) if !f.data.is_empty() => {
                let mut r = f.clone();
                r.id = RESPONSE_ID;
                r.data[0] = r.data[0].wrapping_add(0x40);
                vec![r]
            }
            (ECHO_ID, false) => {
                let mut r = f.clone();
                r.id = ECHO_REPLY_ID;
                vec![r]
            }
            (EXT_ECHO_ID, true) => {
                let mut r = f.clone();
                r.id = EXT_ECHO_REPLY_ID;
                vec![r]
            }
            _ => Vec::new(),
        }
    }

    /// Frames the ECU sends on its own by `now`, each with the time it is on the bus.
    pub fn due(&mut self, now: Duration) -> Vec<(Duration, Frame)> {
        let mut out: Vec<(Duration, Frame)> = self.injected.drain(..).map(|f| (now, f)).collect();
        if let Some(p) = self.heartbeat {
            // After a long pause (the channel was closed) only the latest beat is sent.
            if now >= self.next_heartbeat + p * 4 {
                self.next_heartbeat = now;
            }
            while self.next_heartbeat <= now {
                out.push((
                    self.next_heartbeat,
                    Frame::classic(HEARTBEAT_ID, false, &[self.counter, 0x05]),
                ));
                self.counter = self.counter.wrapping_add(1);
                self.next_heartbeat += p;
            }
        }
        out
    }

    pub fn next_due(&self) -> Option<Duration> {
        if !self.injected.is_empty() {
            return Some(Duration::ZERO);
        }
        self.heartbeat.map(|_| self.next_heartbeat)
    }
}
