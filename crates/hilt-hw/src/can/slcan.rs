//! The slcan (Lawicell) ASCII protocol, both directions: what a host sends an adapter and
//! what the adapter answers. Every message ends with a carriage return; a refusal is a
//! BELL (0x07) instead.
//!
//! Host → adapter: `S0`..`S9` (bit rate), `Y2`/`Y5` (CAN FD data bit rate), `O` (open),
//! `L` (open listen-only), `C` (close), `V`/`v` (version), `N` (serial number), `F`
//! (status flags), `Z0`/`Z1` (timestamps off/on), and frames. Adapter → host: `\r`
//! (acknowledged), `z\r`/`Z\r` (frame queued, Lawicell style), BELL, received frames
//! (optionally followed by a 4-digit hex millisecond timestamp), `V1234`, `N…`, `Fxx`.
//!
//! Frames: `tiiil<data>` (standard), `Tiiiiiiiil<data>` (extended), `riiil` / `Riiiiiiiil`
//! (remote), and the CAN FD extension `d`/`D` (no bit rate switch) and `b`/`B` (bit rate
//! switch) with a hex DLC code 0..F (0..64 bytes). Classic DLCs are 0..8. The protocol has
//! no way to carry the error state indicator.

use std::collections::VecDeque;

use super::{FD_LENGTHS, Frame, fd_dlc};

pub const OK: u8 = b'\r';
pub const BELL: u8 = 0x07;
/// Longest valid message: `B` + 8 id digits + DLC + 128 data digits + 4 timestamp digits.
pub const MAX_LINE: usize = 1 + 8 + 1 + 128 + 4;

/// Nominal bit rates and their `S` commands (the table of CANable-style adapters and
/// python-can).
pub const BITRATES: [(u64, &str); 10] = [
    (10_000, "S0"),
    (20_000, "S1"),
    (50_000, "S2"),
    (100_000, "S3"),
    (125_000, "S4"),
    (250_000, "S5"),
    (500_000, "S6"),
    (750_000, "S7"),
    (1_000_000, "S8"),
    (83_300, "S9"),
];

/// CAN FD data-phase bit rates and their `Y` commands.
pub const DATA_BITRATES: [(u64, &str); 2] = [(2_000_000, "Y2"), (5_000_000, "Y5")];

pub fn bitrate_command(bitrate: u64) -> Option<&'static str> {
    BITRATES
        .iter()
        .find(|(b, _)| *b == bitrate)
        .map(|(_, c)| *c)
}

pub fn data_bitrate_command(bitrate: u64) -> Option<&'static str> {
    DATA_BITRATES
        .iter()
        .find(|(b, _)| *b == bitrate)
        .map(|(_, c)| *c)
}

/// The bit rate an `S`/`Y` command selects.
pub fn bitrate_of(command: &str) -> Option<u64> {
    BITRATES
        .iter()
        .chain(DATA_BITRATES.iter())
        .find(|(_, c)| *c == command)
        .map(|(b, _)| *b)
}

/// One message read from the line (either direction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A bare carriage return, or `z`/`Z` (Lawicell's "frame queued").
    Ack,
    /// BELL: the other side refused the last command.
    Bell,
    Frame {
        frame: Frame,
        /// Milliseconds (0..60000) when the adapter has timestamps on.
        timestamp: Option<u16>,
    },
    /// Any other command or answer (`O`, `S6`, `V1013`, `F00`, …), without its CR.
    Command(String),
    /// A line that is none of the above (bad hex, wrong length, unknown, too long).
    Garbage { line: String, why: String },
}

/// Splits a byte stream into messages; keeps at most [`MAX_LINE`] bytes of an unfinished
/// one (longer runs without a terminator are reported as garbage and dropped).
///
/// Timestamps make a frame's length ambiguous (7 data bytes read with a DLC of 5 look like
/// 5 bytes and a timestamp), so a decoder accepts them only when built to
/// ([`Decoder::with_timestamps`], for a host that sent `Z1`); otherwise four extra digits
/// are a wrong length.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    timestamps: bool,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn with_timestamps() -> Decoder {
        Decoder {
            buf: Vec::new(),
            timestamps: true,
        }
    }

    /// Bytes of an unfinished message waiting for their terminator.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, bytes: &[u8], out: &mut VecDeque<Message>) {
        for &b in bytes {
            match b {
                OK => {
                    let line = std::mem::take(&mut self.buf);
                    out.push_back(parse(&line, self.timestamps));
                }
                BELL => {
                    if !self.buf.is_empty() {
                        let line = std::mem::take(&mut self.buf);
                        out.push_back(garbage(&line, "cut short by a BELL"));
                    }
                    out.push_back(Message::Bell);
                }
                // Line feeds after the CR (some adapters send CRLF) carry nothing.
                b'\n' if self.buf.is_empty() => {}
                _ => {
                    if self.buf.len() >= MAX_LINE {
                        let line = std::mem::take(&mut self.buf);
                        out.push_back(garbage(
                            &line,
                            &format!("more than {MAX_LINE} bytes without a carriage return"),
                        ));
                    }
                    self.buf.push(b);
                }
            }
        }
    }
}

fn garbage(line: &[u8], why: &str) -> Message {
    Message::Garbage {
        line: printable(line),
        why: why.to_string(),
    }
}

/// The bytes as text, non-printable ones as `\xNN`, at most 80 of them.
pub fn printable(b: &[u8]) -> String {
    let mut s = String::new();
    for &x in b.iter().take(80) {
        if (0x20..0x7F).contains(&x) {
            s.push(x as char);
        } else {
            s.push_str(&format!("\\x{x:02X}"));
        }
    }
    if b.len() > 80 {
        s.push('…');
    }
    s
}

/// One message without its terminator (no timestamps).
pub fn parse_line(line: &[u8]) -> Message {
    parse(line, false)
}

fn parse(line: &[u8], timestamps: bool) -> Message {
    match line.first() {
        None => Message::Ack,
        Some(b'z' | b'Z') if line.len() == 1 => Message::Ack,
        Some(b't' | b'T' | b'r' | b'R' | b'd' | b'D' | b'b' | b'B') => {
            match parse_frame(line, timestamps) {
                Ok((frame, timestamp)) => Message::Frame { frame, timestamp },
                Err(why) => garbage(line, &why),
            }
        }
        Some(c) if c.is_ascii_alphabetic() && line.iter().all(|b| b.is_ascii_alphanumeric()) => {
            Message::Command(String::from_utf8_lossy(line).into_owned())
        }
        Some(_) => garbage(line, "not an slcan message"),
    }
}

fn hex_value(digits: &[u8]) -> Result<u32, String> {
    let s = std::str::from_utf8(digits).map_err(|_| "not text".to_string())?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{s}` is not hexadecimal"));
    }
    u32::from_str_radix(s, 16).map_err(|e| e.to_string())
}

/// A frame message (`t12320102`, `D1234567890…`; with `timestamps`, optionally followed by
/// a 4-digit timestamp).
pub fn parse_frame(line: &[u8], timestamps: bool) -> Result<(Frame, Option<u16>), String> {
    let kind = line[0];
    let extended = kind.is_ascii_uppercase();
    let remote = matches!(kind, b'r' | b'R');
    let fd = matches!(kind, b'd' | b'D' | b'b' | b'B');
    let brs = matches!(kind, b'b' | b'B');
    let id_len = if extended { 8 } else { 3 };
    if line.len() < 1 + id_len + 1 {
        return Err(format!(
            "{} bytes, too short for a frame (id and DLC missing)",
            line.len()
        ));
    }
    let id = hex_value(&line[1..1 + id_len]).map_err(|e| format!("id: {e}"))?;
    let max_id = if extended {
        super::EXTENDED_MAX_ID
    } else {
        super::STANDARD_MAX_ID
    };
    if id > max_id {
        return Err(format!("id {id:#X} above {max_id:#X}"));
    }
    let dlc = hex_value(&line[1 + id_len..2 + id_len]).map_err(|e| format!("DLC: {e}"))? as usize;
    let len = if fd {
        FD_LENGTHS[dlc]
    } else if dlc > 8 {
        return Err(format!("DLC {dlc} above 8 for a classic frame"));
    } else {
        dlc
    };
    let body = &line[2 + id_len..];
    let data_digits = if remote { 0 } else { len * 2 };
    let timestamp = match body.len() {
        n if n == data_digits => None,
        n if timestamps && n == data_digits + 4 => {
            Some(hex_value(&body[data_digits..]).map_err(|e| format!("timestamp: {e}"))? as u16)
        }
        n => {
            return Err(format!(
                "DLC {dlc} announces {len} bytes ({data_digits} hex digits) but {n} digits follow"
            ));
        }
    };
    let mut data = Vec::with_capacity(len);
    if !remote {
        for pair in body[..data_digits].chunks(2) {
            data.push(hex_value(pair).map_err(|e| format!("data: {e}"))? as u8);
        }
    }
    let frame = Frame {
        id,
        extended,
        fd,
        brs,
        esi: false,
        remote,
        remote_len: if remote { dlc as u8 } else { 0 },
        data,
    };
    Ok((frame, timestamp))
}

/// The message that transmits `frame`, CR included. A CAN FD payload whose length has no
/// DLC code of its own is padded with zeros to the next one (as the Linux kernel does).
pub fn encode_frame(frame: &Frame) -> Result<Vec<u8>, String> {
    encode_frame_at(frame, None)
}

/// [`encode_frame`] with a timestamp appended (what an adapter with `Z1` sends).
pub fn encode_frame_at(frame: &Frame, timestamp: Option<u16>) -> Result<Vec<u8>, String> {
    frame.check()?;
    if frame.esi {
        return Err("the slcan protocol cannot carry the error state indicator".into());
    }
    let kind = match (frame.remote, frame.fd, frame.brs, frame.extended) {
        (true, _, _, false) => 'r',
        (true, _, _, true) => 'R',
        (false, false, _, false) => 't',
        (false, false, _, true) => 'T',
        (false, true, false, false) => 'd',
        (false, true, false, true) => 'D',
        (false, true, true, false) => 'b',
        (false, true, true, true) => 'B',
    };
    let mut s = String::with_capacity(16 + frame.data.len() * 2);
    s.push(kind);
    if frame.extended {
        s.push_str(&format!("{:08X}", frame.id));
    } else {
        s.push_str(&format!("{:03X}", frame.id));
    }
    let mut data = frame.data.clone();
    if frame.remote {
        s.push_str(&format!("{:X}", frame.remote_len));
    } else if frame.fd {
        let (code, len) = fd_dlc(data.len()).ok_or("more than 64 bytes")?;
        data.resize(len, 0);
        s.push_str(&format!("{code:X}"));
    } else {
        s.push_str(&format!("{}", data.len()));
    }
    for b in &data {
        s.push_str(&format!("{b:02X}"));
    }
    if let Some(t) = timestamp {
        s.push_str(&format!("{:04X}", t));
    }
    s.push('\r');
    Ok(s.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(bytes: &[u8]) -> Vec<Message> {
        decode_with(Decoder::new(), bytes)
    }

    fn decode_with(mut d: Decoder, bytes: &[u8]) -> Vec<Message> {
        let mut out = VecDeque::new();
        d.push(bytes, &mut out);
        out.into_iter().collect()
    }

    #[test]
    fn known_messages() {
        let f = |id, ext, data: &[u8]| Frame::classic(id, ext, data);
        assert_eq!(
            encode_frame(&f(0x123, false, &[0x11, 0x22])).unwrap(),
            b"t12321122\r"
        );
        assert_eq!(
            encode_frame(&f(0x1ABCDEF, true, &[])).unwrap(),
            b"T01ABCDEF0\r"
        );
        let mut fd = f(0x10, false, &[1; 9]);
        fd.fd = true;
        fd.brs = true;
        let enc = encode_frame(&fd).unwrap();
        assert!(enc.starts_with(b"b0109010101010101010101000000"));
        assert_eq!(
            decode(b"t1232AABB\rz\r\x07V1013\rt1230\r"),
            vec![
                Message::Frame {
                    frame: f(0x123, false, &[0xAA, 0xBB]),
                    timestamp: None
                },
                Message::Ack,
                Message::Bell,
                Message::Command("V1013".into()),
                Message::Frame {
                    frame: f(0x123, false, &[]),
                    timestamp: None
                },
            ]
        );
        assert!(matches!(
            decode(b"t1231AA1F40\r")[0],
            Message::Garbage { .. }
        ));
        assert_eq!(
            decode_with(Decoder::with_timestamps(), b"t1231AA1F40\r"),
            vec![Message::Frame {
                frame: f(0x123, false, &[0xAA]),
                timestamp: Some(0x1F40)
            }]
        );
        let r = decode(b"r1233\r");
        let Message::Frame { frame, .. } = &r[0] else {
            panic!("{r:?}")
        };
        assert!(frame.remote);
        assert_eq!(frame.remote_len, 3);
    }

    #[test]
    fn bad_lines_are_garbage_with_a_reason() {
        for (line, why) in [
            (&b"t12"[..], "too short"),
            (b"t12G1AA", "id"),
            (b"t1239", "above 8"),
            (b"t1232AA", "announces 2 bytes"),
            (b"t1232AAZZ", "data"),
            (b"T2000000000", "above"),
            (b"#!", "not an slcan message"),
        ] {
            match parse_line(line) {
                Message::Garbage { why: w, .. } => assert!(w.contains(why), "{w} for {line:?}"),
                m => panic!("{m:?} for {line:?}"),
            }
        }
        assert!(
            encode_frame(&Frame {
                esi: true,
                fd: true,
                ..Frame::default()
            })
            .is_err()
        );
    }

    #[test]
    fn an_endless_line_is_bounded() {
        let mut d = Decoder::new();
        let mut out = VecDeque::new();
        d.push(&[b'a'; 10_000], &mut out);
        assert!(d.pending() <= MAX_LINE);
        assert!(out.iter().all(|m| matches!(m, Message::Garbage { .. })));
        assert!(!out.is_empty());
    }

    fn frame() -> impl Strategy<Value = Frame> {
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..=64),
        )
            .prop_map(|(extended, fd, brs, id, mut data)| {
                let id = if extended {
                    id & 0x1FFF_FFFF
                } else {
                    id & 0x7FF
                };
                if fd {
                    let (_, len) = fd_dlc(data.len()).unwrap_or((15, 64));
                    data.resize(len, 0);
                } else {
                    data.truncate(8);
                }
                Frame {
                    id,
                    extended,
                    fd,
                    brs: fd && brs,
                    data,
                    ..Frame::default()
                }
            })
    }

    proptest! {
        #[test]
        fn frames_round_trip(f in frame(), ts in prop::option::of(0u16..60000)) {
            let bytes = encode_frame_at(&f, ts).unwrap();
            let msgs = decode_with(Decoder::with_timestamps(), &bytes);
            prop_assert_eq!(msgs, vec![Message::Frame { frame: f, timestamp: ts }]);
        }

        #[test]
        fn truncated_frames_never_decode_as_frames(f in frame(), cut in 1usize..140) {
            let bytes = encode_frame(&f).unwrap();
            let body = &bytes[..bytes.len() - 1];
            let keep = body.len().saturating_sub(cut);
            let mut line = body[..keep].to_vec();
            line.push(b'\r');
            for m in decode(&line) {
                prop_assert!(!matches!(m, Message::Frame { .. }), "truncated frame decoded: {:?}", m);
            }
        }

        #[test]
        fn garbage_never_panics_and_stays_bounded(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            let mut d = Decoder::new();
            let mut out = VecDeque::new();
            d.push(&bytes, &mut out);
            prop_assert!(d.pending() <= MAX_LINE);
            for m in out {
                if let Message::Frame { frame, .. } = m {
                    prop_assert!(frame.check().is_ok());
                }
            }
        }

        #[test]
        fn a_wrong_dlc_is_refused(f in frame(), delta in 1u8..3) {
            prop_assume!(!f.fd && !f.remote);
            let mut bytes = encode_frame(&f).unwrap();
            let at = if f.extended { 9 } else { 4 };
            let dlc = bytes[at] - b'0';
            let wrong = if dlc + delta <= 8 { dlc + delta } else { dlc - delta.min(dlc) };
            prop_assume!(wrong != dlc);
            bytes[at] = b'0' + wrong;
            for m in decode(&bytes) {
                prop_assert!(matches!(m, Message::Garbage { .. }), "{:?}", m);
            }
        }
    }
}
