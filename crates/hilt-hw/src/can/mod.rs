//! CAN and CAN FD: the frame ([`Frame`]), the link a step talks to ([`CanLink`]), what can
//! go wrong on it ([`CanError`]), receive filters, and the slcan (Lawicell) codec
//! ([`slcan`]) shared by the `slcan` driver and the simulated adapter in `hilt-sim`. The
//! links are drivers: `drivers/slcan.rs` (a serial-line adapter) and
//! `drivers/socketcan.rs` (a Linux SocketCAN interface).

pub mod slcan;

use std::time::{Duration, Instant};

use crate::{CancelToken, HwError};

/// Largest standard (11-bit) and extended (29-bit) identifiers.
pub const STANDARD_MAX_ID: u32 = 0x7FF;
pub const EXTENDED_MAX_ID: u32 = 0x1FFF_FFFF;
/// Payload limits of classic CAN and CAN FD.
pub const CLASSIC_MAX_DATA: usize = 8;
pub const FD_MAX_DATA: usize = 64;
/// CAN FD payload lengths by DLC code 0..=15.
pub const FD_LENGTHS: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64];

/// How long one wait may last before the cancel token is looked at again.
pub const CANCEL_SLICE: Duration = Duration::from_millis(50);

/// One CAN or CAN FD frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub id: u32,
    pub extended: bool,
    pub fd: bool,
    /// Bit rate switch (FD only).
    pub brs: bool,
    /// Error state indicator (FD only).
    pub esi: bool,
    /// A remote (RTR) frame asks for `remote_len` bytes and carries no data.
    pub remote: bool,
    pub remote_len: u8,
    pub data: Vec<u8>,
}

impl Frame {
    /// A classic data frame.
    pub fn classic(id: u32, extended: bool, data: &[u8]) -> Frame {
        Frame {
            id,
            extended,
            data: data.to_vec(),
            ..Frame::default()
        }
    }

    /// Checks the identifier, the payload length and the FD-only flags.
    pub fn check(&self) -> Result<(), String> {
        let max = if self.extended {
            EXTENDED_MAX_ID
        } else {
            STANDARD_MAX_ID
        };
        if self.id > max {
            return Err(format!(
                "id {:#X} exceeds the {} limit {max:#X}",
                self.id,
                if self.extended {
                    "extended"
                } else {
                    "standard"
                }
            ));
        }
        let limit = if self.fd {
            FD_MAX_DATA
        } else {
            CLASSIC_MAX_DATA
        };
        if self.data.len() > limit {
            return Err(format!(
                "{} bytes of data, more than the {limit} a {} frame carries",
                self.data.len(),
                if self.fd { "CAN FD" } else { "classic CAN" }
            ));
        }
        if !self.fd && (self.brs || self.esi) {
            return Err("bitrate_switch and error_state_indicator need a CAN FD frame".into());
        }
        if self.remote && (self.fd || !self.data.is_empty() || self.remote_len > 8) {
            return Err(
                "a remote frame is classic, carries no data and asks for at most 8 bytes".into(),
            );
        }
        Ok(())
    }

    /// The data as `AA BB 01`.
    pub fn data_hex(&self) -> String {
        hex_bytes(&self.data)
    }
}

/// `AA BB 01` (upper-case, space-separated).
pub fn hex_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{x:02X}"));
    }
    s
}

/// BenchCI's rendering of a received frame:
/// `id=0x123 extended=False fd=False brs=False esi=False dlc=2 data=AA BB`.
impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = |v: bool| if v { "True" } else { "False" };
        write!(
            f,
            "id=0x{:X} extended={} fd={} brs={} esi={} ",
            self.id,
            b(self.extended),
            b(self.fd),
            b(self.brs),
            b(self.esi)
        )?;
        if self.remote {
            write!(f, "remote dlc={}", self.remote_len)
        } else {
            write!(f, "dlc={} data={}", self.data.len(), self.data_hex())
        }
    }
}

/// The smallest CAN FD length that holds `len` bytes, and its DLC code.
pub fn fd_dlc(len: usize) -> Option<(u8, usize)> {
    FD_LENGTHS
        .iter()
        .position(|l| *l >= len)
        .map(|i| (i as u8, FD_LENGTHS[i]))
}

/// A receive filter (`filters` of a CAN transport): a frame passes when
/// `frame.id & mask == id & mask` and its id kind matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    pub id: u32,
    pub mask: u32,
    pub extended: bool,
}

/// Whether `frame` passes `filters` (no filters: every frame).
pub fn passes(filters: &[Filter], frame: &Frame) -> bool {
    filters.is_empty()
        || filters
            .iter()
            .any(|f| f.extended == frame.extended && frame.id & f.mask == f.id & f.mask)
}

/// What went wrong on a CAN transport. The runner maps each variant to a failure source:
/// the adapter or interface refusing or failing is the bench's; a bus that reports errors
/// or went bus-off is the wiring's or a node's (bench infrastructure, as BenchCI's
/// `CAN_FAILED`).
#[derive(Debug)]
pub enum CanError {
    /// The adapter refused a command or a frame (slcan: a BELL instead of the
    /// acknowledgement) — not open, transmit buffer full, or bus-off.
    Refused {
        what: String,
    },
    /// The bus reports an error state (error frames, error-passive, bus-off).
    Bus {
        state: String,
    },
    /// The adapter did not acknowledge a command within the transport's timeout.
    NoAnswer {
        what: String,
        waited: Duration,
    },
    /// Bytes arrived that are no slcan message.
    Garbled {
        what: String,
    },
    /// The port or socket failed.
    Io(HwError),
    Cancelled,
}

impl std::fmt::Display for CanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CanError::Refused { what } => write!(f, "the adapter refused {what}"),
            CanError::Bus { state } => write!(f, "the CAN bus reports {state}"),
            CanError::NoAnswer { what, waited } => write!(
                f,
                "the adapter did not acknowledge {what} within {} ms",
                waited.as_millis()
            ),
            CanError::Garbled { what } => write!(f, "unreadable bytes from the adapter: {what}"),
            CanError::Io(e) => e.fmt(f),
            CanError::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// An opened CAN transport.
pub trait CanLink: Send {
    /// Queues one frame for transmission (waits for the adapter's acknowledgement where
    /// the protocol has one).
    fn send(&mut self, frame: &Frame, cancel: &CancelToken) -> Result<(), CanError>;

    /// The next received frame that passes the transport's filters, or `None` when none
    /// arrived before `deadline`. Wakes at once on cancel.
    fn recv(&mut self, deadline: Instant, cancel: &CancelToken) -> Result<Option<Frame>, CanError>;

    /// Called as each step starts: drops the frames received before the previous mark and
    /// not yet read (returns how many); frames received since stay readable. So a step
    /// sees what arrived since the step before it began (the answer to a request sent by
    /// the previous step), never older traffic.
    fn mark(&mut self) -> Result<usize, CanError>;

    /// The bus's error state when it is in one (`bus error, error passive (status flags
    /// 0xA0)`), `None` when it is fine or the adapter cannot say.
    fn bus_state(&mut self, cancel: &CancelToken) -> Result<Option<String>, CanError>;

    /// What the link noticed since the last call (unreadable lines, unexpected answers,
    /// a full receive queue), for the transport log.
    fn take_notes(&mut self) -> Vec<String>;

    /// Where the link goes (`slcan /dev/ttyACM0 @500000`, `socketcan can0`), for logs.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_lengths_round_up() {
        assert_eq!(fd_dlc(0), Some((0, 0)));
        assert_eq!(fd_dlc(8), Some((8, 8)));
        assert_eq!(fd_dlc(9), Some((9, 12)));
        assert_eq!(fd_dlc(33), Some((14, 48)));
        assert_eq!(fd_dlc(64), Some((15, 64)));
        assert_eq!(fd_dlc(65), None);
    }

    #[test]
    fn frames_are_checked() {
        assert!(Frame::classic(0x7FF, false, &[1]).check().is_ok());
        assert!(Frame::classic(0x800, false, &[]).check().is_err());
        assert!(Frame::classic(0x800, true, &[]).check().is_ok());
        assert!(Frame::classic(1, false, &[0; 9]).check().is_err());
        let mut f = Frame::classic(1, false, &[]);
        f.brs = true;
        assert!(f.check().is_err());
        f.fd = true;
        f.data = vec![0; 64];
        assert!(f.check().is_ok());
    }

    #[test]
    fn filters_match_masked_ids_of_their_kind() {
        let f = [Filter {
            id: 0x100,
            mask: 0x7F0,
            extended: false,
        }];
        assert!(passes(&f, &Frame::classic(0x10A, false, &[])));
        assert!(!passes(&f, &Frame::classic(0x11A, false, &[])));
        assert!(!passes(&f, &Frame::classic(0x10A, true, &[])));
        assert!(passes(&[], &Frame::classic(0x11A, true, &[])));
    }

    #[test]
    fn frames_render_like_benchci() {
        let f = Frame::classic(0x123, false, &[0xAA, 0x0B]);
        assert_eq!(
            f.to_string(),
            "id=0x123 extended=False fd=False brs=False esi=False dlc=2 data=AA 0B"
        );
    }
}
