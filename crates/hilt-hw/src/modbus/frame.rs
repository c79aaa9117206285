//! Modbus frames, both directions: the PDU of every request hilt sends (and the simulated
//! slave answers), the RTU envelope (slave id, PDU, CRC-16) and the TCP one (MBAP header).
//!
//! Parsers never panic on any input (property-tested below): a short or inconsistent
//! frame is a [`FrameError`], which the caller turns into a failure of the right category.

/// Largest PDU (function code + data) the protocol allows.
pub const MAX_PDU: usize = 253;
/// Most registers one read may ask for (function 3/4).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Most bits one read may ask for (function 1/2).
pub const MAX_READ_BITS: u16 = 2000;
/// Most registers one write may carry (function 16).
pub const MAX_WRITE_REGISTERS: u16 = 123;
/// Most coils one write may carry (function 15).
pub const MAX_WRITE_BITS: u16 = 1968;

/// One request, as the client builds it and the slave decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    ReadCoils { address: u16, count: u16 },
    ReadDiscreteInputs { address: u16, count: u16 },
    ReadHoldingRegisters { address: u16, count: u16 },
    ReadInputRegisters { address: u16, count: u16 },
    WriteSingleCoil { address: u16, value: bool },
    WriteSingleRegister { address: u16, value: u16 },
    WriteMultipleCoils { address: u16, values: Vec<bool> },
    WriteMultipleRegisters { address: u16, values: Vec<u16> },
}

/// What a slave answered when it did not answer with an exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Bits(Vec<bool>),
    Registers(Vec<u16>),
    /// A write was acknowledged (the echo matched the request).
    Written,
}

/// A frame that cannot be the answer to the request (or cannot be a request at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The CRC of an RTU frame does not match its bytes: noise, wrong baud, a collision.
    Crc { expected: u16, received: u16 },
    /// A well-framed reply with the wrong content (function, length, echo, slave id).
    Malformed(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Crc { expected, received } => write!(
                f,
                "CRC mismatch (frame says {received:#06x}, bytes give {expected:#06x})"
            ),
            FrameError::Malformed(m) => f.write_str(m),
        }
    }
}

/// Standard exception codes and their names (Modbus application protocol §7).
pub fn exception_name(code: u8) -> &'static str {
    match code {
        1 => "illegal function",
        2 => "illegal data address",
        3 => "illegal data value",
        4 => "slave device failure",
        5 => "acknowledge",
        6 => "slave device busy",
        8 => "memory parity error",
        10 => "gateway path unavailable",
        11 => "gateway target device failed to respond",
        _ => "unknown exception",
    }
}

impl Request {
    pub fn function(&self) -> u8 {
        match self {
            Request::ReadCoils { .. } => 1,
            Request::ReadDiscreteInputs { .. } => 2,
            Request::ReadHoldingRegisters { .. } => 3,
            Request::ReadInputRegisters { .. } => 4,
            Request::WriteSingleCoil { .. } => 5,
            Request::WriteSingleRegister { .. } => 6,
            Request::WriteMultipleCoils { .. } => 15,
            Request::WriteMultipleRegisters { .. } => 16,
        }
    }

    /// A short name for logs and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::ReadCoils { .. } => "read coils",
            Request::ReadDiscreteInputs { .. } => "read discrete inputs",
            Request::ReadHoldingRegisters { .. } => "read holding registers",
            Request::ReadInputRegisters { .. } => "read input registers",
            Request::WriteSingleCoil { .. } => "write single coil",
            Request::WriteSingleRegister { .. } => "write single register",
            Request::WriteMultipleCoils { .. } => "write multiple coils",
            Request::WriteMultipleRegisters { .. } => "write multiple registers",
        }
    }

    /// The request's PDU (function code first).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.function()];
        let be = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&v.to_be_bytes());
        match self {
            Request::ReadCoils { address, count }
            | Request::ReadDiscreteInputs { address, count }
            | Request::ReadHoldingRegisters { address, count }
            | Request::ReadInputRegisters { address, count } => {
                be(&mut out, *address);
                be(&mut out, *count);
            }
            Request::WriteSingleCoil { address, value } => {
                be(&mut out, *address);
                be(&mut out, if *value { 0xFF00 } else { 0 });
            }
            Request::WriteSingleRegister { address, value } => {
                be(&mut out, *address);
                be(&mut out, *value);
            }
            Request::WriteMultipleCoils { address, values } => {
                be(&mut out, *address);
                be(&mut out, values.len() as u16);
                let bytes = pack_bits(values);
                out.push(bytes.len() as u8);
                out.extend_from_slice(&bytes);
            }
            Request::WriteMultipleRegisters { address, values } => {
                be(&mut out, *address);
                be(&mut out, values.len() as u16);
                out.push((values.len() * 2) as u8);
                for v in values {
                    be(&mut out, *v);
                }
            }
        }
        out
    }

    /// Decodes a request PDU (the slave's side). `Err` is the exception code to answer
    /// with: 1 for an unknown function, 3 for a bad count or length.
    pub fn decode(pdu: &[u8]) -> Result<Request, u8> {
        let (&function, data) = pdu.split_first().ok_or(1u8)?;
        let word = |i: usize| -> Result<u16, u8> {
            data.get(i..i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or(3)
        };
        let read_count = |max: u16| -> Result<(u16, u16), u8> {
            let (address, count) = (word(0)?, word(2)?);
            if count == 0 || count > max || data.len() != 4 {
                return Err(3);
            }
            Ok((address, count))
        };
        Ok(match function {
            1 => {
                let (address, count) = read_count(MAX_READ_BITS)?;
                Request::ReadCoils { address, count }
            }
            2 => {
                let (address, count) = read_count(MAX_READ_BITS)?;
                Request::ReadDiscreteInputs { address, count }
            }
            3 => {
                let (address, count) = read_count(MAX_READ_REGISTERS)?;
                Request::ReadHoldingRegisters { address, count }
            }
            4 => {
                let (address, count) = read_count(MAX_READ_REGISTERS)?;
                Request::ReadInputRegisters { address, count }
            }
            5 => {
                let value = match word(2)? {
                    0xFF00 => true,
                    0 => false,
                    _ => return Err(3),
                };
                Request::WriteSingleCoil {
                    address: word(0)?,
                    value,
                }
            }
            6 => Request::WriteSingleRegister {
                address: word(0)?,
                value: word(2)?,
            },
            15 | 16 => {
                let (address, count) = (word(0)?, word(2)?);
                let n = *data.get(4).ok_or(3u8)? as usize;
                let body = data.get(5..).ok_or(3u8)?;
                if body.len() != n {
                    return Err(3);
                }
                if function == 15 {
                    if count == 0 || count > MAX_WRITE_BITS || n != (count as usize).div_ceil(8) {
                        return Err(3);
                    }
                    Request::WriteMultipleCoils {
                        address,
                        values: unpack_bits(body, count as usize),
                    }
                } else {
                    if count == 0 || count > MAX_WRITE_REGISTERS || n != count as usize * 2 {
                        return Err(3);
                    }
                    Request::WriteMultipleRegisters {
                        address,
                        values: body
                            .chunks_exact(2)
                            .map(|b| u16::from_be_bytes([b[0], b[1]]))
                            .collect(),
                    }
                }
            }
            _ => return Err(1),
        })
    }

    /// The answer PDU for this request (the slave's side). `data` is what was read, or
    /// nothing for a write (the answer echoes the request).
    pub fn encode_response(&self, data: &Response) -> Vec<u8> {
        let mut out = vec![self.function()];
        match (self, data) {
            (_, Response::Bits(bits)) => {
                let bytes = pack_bits(bits);
                out.push(bytes.len() as u8);
                out.extend_from_slice(&bytes);
            }
            (_, Response::Registers(regs)) => {
                out.push((regs.len() * 2) as u8);
                for r in regs {
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
            (Request::WriteMultipleCoils { address, values }, Response::Written) => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&(values.len() as u16).to_be_bytes());
            }
            (Request::WriteMultipleRegisters { address, values }, Response::Written) => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&(values.len() as u16).to_be_bytes());
            }
            (_, Response::Written) => return self.encode(),
        }
        out
    }

    /// Decodes the slave's answer PDU. `Ok(Err(code))` is an exception response.
    pub fn decode_response(&self, pdu: &[u8]) -> Result<Result<Response, u8>, FrameError> {
        let bad = |m: String| Err(FrameError::Malformed(m));
        let Some((&function, data)) = pdu.split_first() else {
            return bad("empty reply".into());
        };
        if function == self.function() | 0x80 {
            return match data {
                [code] => Ok(Err(*code)),
                _ => bad(format!("exception reply of {} bytes", pdu.len())),
            };
        }
        if function != self.function() {
            return bad(format!(
                "reply has function {function} to a request with function {}",
                self.function()
            ));
        }
        match self {
            Request::ReadCoils { count, .. } | Request::ReadDiscreteInputs { count, .. } => {
                let want = (*count as usize).div_ceil(8);
                match data.split_first() {
                    Some((&n, body)) if n as usize == want && body.len() == want => {
                        Ok(Ok(Response::Bits(unpack_bits(body, *count as usize))))
                    }
                    _ => bad(format!(
                        "reply to {} of {count} bits should carry {want} data bytes",
                        self.name()
                    )),
                }
            }
            Request::ReadHoldingRegisters { count, .. }
            | Request::ReadInputRegisters { count, .. } => {
                let want = *count as usize * 2;
                match data.split_first() {
                    Some((&n, body)) if n as usize == want && body.len() == want => {
                        Ok(Ok(Response::Registers(
                            body.chunks_exact(2)
                                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                                .collect(),
                        )))
                    }
                    _ => bad(format!(
                        "reply to {} of {count} registers should carry {want} data bytes",
                        self.name()
                    )),
                }
            }
            Request::WriteSingleCoil { .. } | Request::WriteSingleRegister { .. } => {
                if pdu == self.encode().as_slice() {
                    Ok(Ok(Response::Written))
                } else {
                    bad(format!(
                        "reply to {} does not echo the request",
                        self.name()
                    ))
                }
            }
            Request::WriteMultipleCoils { address, values } => {
                echo_count(self.name(), data, *address, values.len())
            }
            Request::WriteMultipleRegisters { address, values } => {
                echo_count(self.name(), data, *address, values.len())
            }
        }
    }

    /// The length of the slave's reply PDU once its first bytes are known (`None`: more
    /// bytes are needed to tell). Used to frame RTU replies, which carry no length.
    pub fn reply_len(&self, head: &[u8]) -> Option<usize> {
        let &function = head.first()?;
        if function & 0x80 != 0 {
            return Some(2);
        }
        match function {
            1..=4 => head.get(1).map(|&n| 2 + n as usize),
            5 | 6 | 15 | 16 => Some(5),
            // Nothing to wait for: the reply is wrong and reported as such.
            _ => Some(head.len()),
        }
    }
}

fn echo_count(
    name: &str,
    data: &[u8],
    address: u16,
    count: usize,
) -> Result<Result<Response, u8>, FrameError> {
    let mut want = address.to_be_bytes().to_vec();
    want.extend_from_slice(&(count as u16).to_be_bytes());
    if data == want.as_slice() {
        Ok(Ok(Response::Written))
    } else {
        Err(FrameError::Malformed(format!(
            "reply to {name} does not echo its address and count"
        )))
    }
}

/// The length of a request PDU once its first bytes are known (`None`: need more). The
/// slave's way of framing RTU requests; an unknown function takes what has arrived.
pub fn request_len(head: &[u8]) -> Option<usize> {
    match *head.first()? {
        1..=6 => Some(5),
        15 | 16 => head.get(5).map(|&n| 6 + n as usize),
        _ => Some(head.len()),
    }
}

/// An exception answer PDU.
pub fn exception_pdu(function: u8, code: u8) -> Vec<u8> {
    vec![function | 0x80, code]
}

/// Bits packed LSB first, as Modbus sends coils.
pub fn pack_bits(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, b) in bits.iter().enumerate() {
        if *b {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    out
}

pub fn unpack_bits(bytes: &[u8], count: usize) -> Vec<bool> {
    (0..count)
        .map(|i| bytes.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
        .collect()
}

/// CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), sent low byte first.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in data {
        crc ^= b as u16;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// An RTU frame: slave id, PDU, CRC.
pub fn rtu_frame(slave: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pdu.len() + 3);
    out.push(slave);
    out.extend_from_slice(pdu);
    let crc = crc16(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Splits a complete RTU frame into slave id and PDU after checking its CRC.
pub fn rtu_unframe(frame: &[u8]) -> Result<(u8, &[u8]), FrameError> {
    if frame.len() < 4 {
        return Err(FrameError::Malformed(format!(
            "RTU frame of {} bytes is too short",
            frame.len()
        )));
    }
    let (body, crc) = frame.split_at(frame.len() - 2);
    let received = u16::from_le_bytes([crc[0], crc[1]]);
    let expected = crc16(body);
    if received != expected {
        return Err(FrameError::Crc { expected, received });
    }
    Ok((body[0], &body[1..]))
}

/// The MBAP header's size; its last byte is the unit id.
pub const MBAP_LEN: usize = 7;

/// A TCP frame: transaction id, protocol 0, length, unit id, PDU.
pub fn tcp_frame(transaction: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MBAP_LEN + pdu.len());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    out.push(unit);
    out.extend_from_slice(pdu);
    out
}

/// A parsed MBAP header: transaction id, unit id, and the PDU length that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mbap {
    pub transaction: u16,
    pub unit: u8,
    pub pdu_len: usize,
}

pub fn parse_mbap(head: &[u8; MBAP_LEN]) -> Result<Mbap, FrameError> {
    let protocol = u16::from_be_bytes([head[2], head[3]]);
    let len = u16::from_be_bytes([head[4], head[5]]) as usize;
    if protocol != 0 {
        return Err(FrameError::Malformed(format!(
            "MBAP protocol id {protocol} is not Modbus (0)"
        )));
    }
    if !(2..=MAX_PDU + 1).contains(&len) {
        return Err(FrameError::Malformed(format!(
            "MBAP length {len} is out of range (2..={})",
            MAX_PDU + 1
        )));
    }
    Ok(Mbap {
        transaction: u16::from_be_bytes([head[0], head[1]]),
        unit: head[6],
        pdu_len: len - 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc_matches_the_specification_example() {
        // Read 2 holding registers at 0 from slave 1: 01 03 00 00 00 02 C4 0B.
        let f = rtu_frame(
            1,
            &Request::ReadHoldingRegisters {
                address: 0,
                count: 2,
            }
            .encode(),
        );
        assert_eq!(f, [0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xC4, 0x0B]);
        assert_eq!(rtu_unframe(&f).unwrap().0, 1);
    }

    #[test]
    fn a_flipped_bit_is_a_crc_error() {
        let mut f = rtu_frame(7, &[6, 0, 10, 0, 215]);
        f[3] ^= 0x10;
        assert!(matches!(rtu_unframe(&f), Err(FrameError::Crc { .. })));
    }

    #[test]
    fn replies_decode_and_exceptions_are_answers() {
        let r = Request::ReadCoils {
            address: 0,
            count: 10,
        };
        let bits = vec![
            true, false, true, true, false, false, false, false, true, false,
        ];
        let pdu = r.encode_response(&Response::Bits(bits.clone()));
        assert_eq!(r.decode_response(&pdu), Ok(Ok(Response::Bits(bits))));
        assert_eq!(r.decode_response(&[0x81, 2]), Ok(Err(2)));
        assert!(r.decode_response(&[0x83, 2]).is_err());
        let w = Request::WriteSingleRegister {
            address: 10,
            value: 215,
        };
        assert_eq!(
            w.decode_response(&w.encode_response(&Response::Written)),
            Ok(Ok(Response::Written))
        );
        assert!(w.decode_response(&[6, 0, 10, 0, 214]).is_err());
    }

    fn request() -> impl Strategy<Value = Request> {
        let a = any::<u16>();
        prop_oneof![
            (a, 1..=MAX_READ_BITS)
                .prop_map(|(address, count)| Request::ReadCoils { address, count }),
            (a, 1..=MAX_READ_BITS)
                .prop_map(|(address, count)| Request::ReadDiscreteInputs { address, count }),
            (a, 1..=MAX_READ_REGISTERS)
                .prop_map(|(address, count)| Request::ReadHoldingRegisters { address, count }),
            (a, 1..=MAX_READ_REGISTERS)
                .prop_map(|(address, count)| Request::ReadInputRegisters { address, count }),
            (a, any::<bool>())
                .prop_map(|(address, value)| Request::WriteSingleCoil { address, value }),
            (a, any::<u16>())
                .prop_map(|(address, value)| Request::WriteSingleRegister { address, value }),
            (
                a,
                proptest::collection::vec(any::<bool>(), 1..=MAX_WRITE_BITS as usize)
            )
                .prop_map(|(address, values)| Request::WriteMultipleCoils { address, values }),
            (
                a,
                proptest::collection::vec(any::<u16>(), 1..=MAX_WRITE_REGISTERS as usize)
            )
                .prop_map(|(address, values)| Request::WriteMultipleRegisters { address, values }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip_through_both_envelopes(req in request(), slave in 1u8..=247, tid in any::<u16>()) {
            let pdu = req.encode();
            prop_assert!(pdu.len() <= MAX_PDU);
            prop_assert_eq!(request_len(&pdu), Some(pdu.len()));
            let rtu = rtu_frame(slave, &pdu);
            let (s, body) = rtu_unframe(&rtu).unwrap();
            prop_assert_eq!(s, slave);
            prop_assert_eq!(Request::decode(body), Ok(req.clone()));
            let tcp = tcp_frame(tid, slave, &pdu);
            let head: [u8; MBAP_LEN] = tcp[..MBAP_LEN].try_into().unwrap();
            let m = parse_mbap(&head).unwrap();
            prop_assert_eq!((m.transaction, m.unit, m.pdu_len), (tid, slave, pdu.len()));
        }

        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300), req in request()) {
            let _ = Request::decode(&bytes);
            let _ = req.decode_response(&bytes);
            let _ = req.reply_len(&bytes);
            let _ = request_len(&bytes);
            let _ = rtu_unframe(&bytes);
            if bytes.len() >= MBAP_LEN {
                let head: [u8; MBAP_LEN] = bytes[..MBAP_LEN].try_into().unwrap();
                let _ = parse_mbap(&head);
            }
        }

        #[test]
        fn reply_length_frames_every_valid_reply(req in request()) {
            let data = match &req {
                Request::ReadCoils { count, .. } | Request::ReadDiscreteInputs { count, .. } =>
                    Response::Bits(vec![true; *count as usize]),
                Request::ReadHoldingRegisters { count, .. } | Request::ReadInputRegisters { count, .. } =>
                    Response::Registers(vec![7; *count as usize]),
                _ => Response::Written,
            };
            let pdu = req.encode_response(&data);
            prop_assert_eq!(req.reply_len(&pdu[..2]), Some(pdu.len()));
            prop_assert_eq!(req.decode_response(&pdu), Ok(Ok(data)));
        }
    }
}
