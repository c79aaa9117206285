//! The frames between hilt and a `hilt sim bus` (one TCP connection, one request at a
//! time). Both sides use this module: the clients in [`super`] and the server in
//! `hilt-sim`. Property-tested: any bytes decode to a frame, "need more" or an error,
//! never a panic, and every frame survives a round trip.
//!
//! A frame is `[kind u8][length u16 BE][payload]`, the payload at most [`MAX_PAYLOAD`].
//!
//! Requests: `1` probe `[addr]`; `2` write `[addr, data…]`; `3` write-read
//! `[addr, len u16 BE, data…]`; `4` SPI transfer `[cs, mode, bits, speed u32 BE, tx…]`.
//! Replies: `0` data; `1` no acknowledge `[addr]`; `2` bus error `[text]`; `3` no such
//! device `[text]`; `4` bad request `[text]`.

/// Largest payload of a frame (an SPI transfer of 4096 bytes and its header fits).
pub const MAX_PAYLOAD: usize = 4096 + 16;
const HEADER: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Probe {
        addr: u8,
    },
    Write {
        addr: u8,
        data: Vec<u8>,
    },
    WriteRead {
        addr: u8,
        len: u16,
        data: Vec<u8>,
    },
    Spi {
        cs: u8,
        mode: u8,
        bits: u8,
        speed_hz: u32,
        tx: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Data(Vec<u8>),
    Nack { addr: u8 },
    BusError(String),
    NoDevice(String),
    BadRequest(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame kind {0} is unknown")]
    Kind(u8),
    #[error("frame of {0} bytes is over the limit")]
    TooLong(usize),
    #[error("frame kind {kind} has a malformed payload of {len} bytes")]
    Payload { kind: u8, len: usize },
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(&payload[..payload.len().min(MAX_PAYLOAD)]);
    out
}

/// One frame at the front of a buffer: its kind, its payload, and the bytes it took.
type Split<'a> = (u8, &'a [u8], usize);

/// Splits one frame off the front of `buf`: `Ok(None)` until it is complete.
fn split(buf: &[u8]) -> Result<Option<Split<'_>>, WireError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u16::from_be_bytes([buf[1], buf[2]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(WireError::TooLong(len));
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    Ok(Some((buf[0], &buf[HEADER..HEADER + len], HEADER + len)))
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Probe { addr } => frame(1, &[*addr]),
            Request::Write { addr, data } => {
                let mut p = vec![*addr];
                p.extend_from_slice(data);
                frame(2, &p)
            }
            Request::WriteRead { addr, len, data } => {
                let mut p = vec![*addr];
                p.extend_from_slice(&len.to_be_bytes());
                p.extend_from_slice(data);
                frame(3, &p)
            }
            Request::Spi {
                cs,
                mode,
                bits,
                speed_hz,
                tx,
            } => {
                let mut p = vec![*cs, *mode, *bits];
                p.extend_from_slice(&speed_hz.to_be_bytes());
                p.extend_from_slice(tx);
                frame(4, &p)
            }
        }
    }

    /// Decodes the request at the front of `buf` and how many bytes it took.
    pub fn decode(buf: &[u8]) -> Result<Option<(Request, usize)>, WireError> {
        let Some((kind, p, used)) = split(buf)? else {
            return Ok(None);
        };
        let bad = || WireError::Payload { kind, len: p.len() };
        let req = match kind {
            1 if p.len() == 1 => Request::Probe { addr: p[0] },
            2 if !p.is_empty() => Request::Write {
                addr: p[0],
                data: p[1..].to_vec(),
            },
            3 if p.len() >= 3 => Request::WriteRead {
                addr: p[0],
                len: u16::from_be_bytes([p[1], p[2]]),
                data: p[3..].to_vec(),
            },
            4 if p.len() >= 7 => Request::Spi {
                cs: p[0],
                mode: p[1],
                bits: p[2],
                speed_hz: u32::from_be_bytes([p[3], p[4], p[5], p[6]]),
                tx: p[7..].to_vec(),
            },
            1..=4 => return Err(bad()),
            k => return Err(WireError::Kind(k)),
        };
        Ok(Some((req, used)))
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Data(d) => frame(0, d),
            Reply::Nack { addr } => frame(1, &[*addr]),
            Reply::BusError(t) => frame(2, t.as_bytes()),
            Reply::NoDevice(t) => frame(3, t.as_bytes()),
            Reply::BadRequest(t) => frame(4, t.as_bytes()),
        }
    }

    pub fn decode(buf: &[u8]) -> Result<Option<(Reply, usize)>, WireError> {
        let Some((kind, p, used)) = split(buf)? else {
            return Ok(None);
        };
        let text = || String::from_utf8_lossy(p).into_owned();
        let reply = match kind {
            0 => Reply::Data(p.to_vec()),
            1 if p.len() == 1 => Reply::Nack { addr: p[0] },
            1 => {
                return Err(WireError::Payload { kind, len: p.len() });
            }
            2 => Reply::BusError(text()),
            3 => Reply::NoDevice(text()),
            4 => Reply::BadRequest(text()),
            k => return Err(WireError::Kind(k)),
        };
        Ok(Some((reply, used)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request() -> impl Strategy<Value = Request> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
        prop_oneof![
            any::<u8>().prop_map(|addr| Request::Probe { addr }),
            (any::<u8>(), bytes()).prop_map(|(addr, data)| Request::Write { addr, data }),
            (any::<u8>(), any::<u16>(), bytes()).prop_map(|(addr, len, data)| Request::WriteRead {
                addr,
                len,
                data
            }),
            (any::<u8>(), 0u8..4, 4u8..33, any::<u32>(), bytes()).prop_map(
                |(cs, mode, bits, speed_hz, tx)| Request::Spi {
                    cs,
                    mode,
                    bits,
                    speed_hz,
                    tx
                }
            ),
        ]
    }

    fn reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Reply::Data),
            any::<u8>().prop_map(|addr| Reply::Nack { addr }),
            "[a-z ]{0,40}".prop_map(Reply::BusError),
            "[a-z ]{0,40}".prop_map(Reply::NoDevice),
            "[a-z ]{0,40}".prop_map(Reply::BadRequest),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip_even_when_split(r in request(), cut in 0usize..400) {
            let bytes = r.encode();
            let cut = cut.min(bytes.len());
            if cut < bytes.len() {
                prop_assert_eq!(Request::decode(&bytes[..cut]).unwrap(), None);
            }
            let mut two = bytes.clone();
            two.extend_from_slice(&bytes);
            prop_assert_eq!(Request::decode(&two).unwrap(), Some((r, bytes.len())));
        }

        #[test]
        fn replies_round_trip(r in reply()) {
            let bytes = r.encode();
            prop_assert_eq!(Reply::decode(&bytes).unwrap(), Some((r, bytes.len())));
        }

        #[test]
        fn any_bytes_decode_without_panicking(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(Some((_, used))) = Request::decode(&b) {
                prop_assert!(used <= b.len());
            }
            if let Ok(Some((_, used))) = Reply::decode(&b) {
                prop_assert!(used <= b.len());
            }
        }
    }

    #[test]
    fn malformed_frames_are_named() {
        assert_eq!(Request::decode(&[9, 0, 0]), Err(WireError::Kind(9)));
        assert_eq!(
            Request::decode(&[1, 0, 0]),
            Err(WireError::Payload { kind: 1, len: 0 })
        );
        assert_eq!(
            Request::decode(&[4, 0xff, 0xff]),
            Err(WireError::TooLong(0xffff))
        );
        assert_eq!(
            Reply::decode(&[1, 0, 2, 1, 2]),
            Err(WireError::Payload { kind: 1, len: 2 })
        );
    }
}
