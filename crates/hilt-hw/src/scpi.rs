//! SCPI instruments over a raw TCP socket (`tcp://host:port`, port 5025 by default) or a
//! serial port (`serial:///dev/ttyUSB0`): one line out, one line back. The measurement
//! drivers (`drivers/scpi_measurement.rs`, `drivers/scpi_power_supply.rs`) sit on this.
//!
//! Every wait has the instrument's `timeout_ms`; an answer must end with the read
//! termination within [`MAX_ANSWER`] bytes. Numbers are parsed by [`parse_number`],
//! which accepts what instruments send (`+1.23400E+00`, `1.234 V`, `9.9E37`) and refuses
//! anything else without panicking (property-tested).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use hilt_model::bench::Parity;

use crate::serial::{SerialPort, SerialSettings};
use crate::{HwError, ResourceKind};

/// Longest answer accepted (a screenshot query would be a binary block; not supported).
pub const MAX_ANSWER: usize = 64 * 1024;
/// Port of a raw SCPI socket when the address names none (IANA "scpi-raw").
pub const DEFAULT_PORT: u16 = 5025;

/// Where an instrument is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScpiAddress {
    Tcp { host: String, port: u16 },
    Serial { port: String },
}

impl std::fmt::Display for ScpiAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScpiAddress::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            ScpiAddress::Serial { port } => write!(f, "serial://{port}"),
        }
    }
}

/// Parses `tcp://host[:port]` or `serial://<path>`. VISA resource strings (`USB0::…`,
/// `TCPIP0::…`) need a VISA library, which this build does not have.
pub fn parse_address(s: &str) -> Result<ScpiAddress, String> {
    if let Some(rest) = s.strip_prefix("tcp://") {
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("`{p}` is not a TCP port (1..=65535)"))?;
                (h.trim_matches(['[', ']']).to_string(), port)
            }
            _ => (rest.to_string(), DEFAULT_PORT),
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!("`{s}` has no host"));
        }
        return Ok(ScpiAddress::Tcp { host, port });
    }
    if let Some(path) = s.strip_prefix("serial://") {
        if path.is_empty() {
            return Err(format!("`{s}` names no serial port"));
        }
        return Ok(ScpiAddress::Serial {
            port: path.to_string(),
        });
    }
    if s.contains("::") {
        return Err(format!(
            "`{s}` is a VISA resource string; this build talks to instruments over `tcp://host:port` (raw socket) or `serial://<port>` only"
        ));
    }
    Err(format!("`{s}` is not an instrument address"))
}

/// The first number in an answer, wherever it starts, as BenchCI reads them:
/// `+1.23400E+00`, `1.234 V`, `-5e-3A`, `VOLT 1.25`. Lists (`1.0,2.0`) give their first
/// element. `None` when there is no number.
pub fn parse_number(answer: &str) -> Option<f64> {
    let t = answer.trim();
    let starts = t
        .char_indices()
        .filter(|(_, c)| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
        .map(|(i, _)| i);
    for start in starts {
        let rest = &t[start..];
        let end = rest
            .char_indices()
            .take_while(|(_, c)| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
            .map(|(i, c)| i + c.len_utf8())
            .last()
            .unwrap_or(0);
        // The first number found is the answer; an overflow (`1e999`) is no number.
        if let Some(v) = (1..=end).rev().find_map(|i| rest[..i].parse::<f64>().ok()) {
            return Some(v).filter(|v| v.is_finite());
        }
    }
    None
}

/// How to reach an instrument and frame its lines.
#[derive(Debug, Clone)]
pub struct ScpiSettings {
    pub address: ScpiAddress,
    pub timeout: Duration,
    pub write_termination: String,
    pub read_termination: String,
    pub baud: u32,
    pub bytesize: u32,
    pub parity: Parity,
    pub stopbits: f64,
}

/// `N`/`E`/`O`/`M`/`S` as the bench writes parity.
pub fn parse_parity(s: &str) -> Option<Parity> {
    match s.to_ascii_uppercase().as_str() {
        "N" => Some(Parity::N),
        "E" => Some(Parity::E),
        "O" => Some(Parity::O),
        "M" => Some(Parity::M),
        "S" => Some(Parity::S),
        _ => None,
    }
}

enum Io {
    Tcp(TcpStream),
    Serial(Box<dyn SerialPort>),
}

/// An open instrument.
pub struct ScpiLink {
    io: Io,
    settings: ScpiSettings,
    /// Bytes read past the last answer's terminator.
    pending: Vec<u8>,
    kind: ResourceKind,
}

impl ScpiLink {
    /// Connects (TCP) or opens the port (serial). Errors carry `kind` (the resource's).
    pub fn open(settings: &ScpiSettings, kind: ResourceKind) -> Result<ScpiLink, HwError> {
        let addr = settings.address.to_string();
        let io = match &settings.address {
            ScpiAddress::Tcp { host, port } => {
                let fail = |r: String| HwError::open(kind, "SCPI instrument", &addr, r);
                let addrs: Vec<SocketAddr> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| fail(format!("cannot resolve: {e}")))?
                    .collect();
                let mut last = "no address".to_string();
                let mut stream = None;
                for a in addrs {
                    match TcpStream::connect_timeout(&a, settings.timeout) {
                        Ok(s) => {
                            stream = Some(s);
                            break;
                        }
                        Err(e) => last = e.to_string(),
                    }
                }
                let s = stream.ok_or_else(|| fail(last))?;
                let _ = s.set_nodelay(true);
                Io::Tcp(s)
            }
            ScpiAddress::Serial { port } => {
                let s = SerialSettings {
                    port: port.clone(),
                    baud: settings.baud,
                    bytesize: settings.bytesize,
                    parity: settings.parity,
                    stopbits: settings.stopbits,
                };
                Io::Serial(crate::serial::open_as(&s, kind, "SCPI instrument")?)
            }
        };
        Ok(ScpiLink {
            io,
            settings: settings.clone(),
            pending: Vec::new(),
            kind,
        })
    }

    fn io_err(&self, e: impl std::fmt::Display) -> HwError {
        HwError::io(
            self.kind,
            "SCPI instrument",
            format!("{}: {e}", self.settings.address),
        )
    }

    /// Sends one command (the write termination is appended).
    pub fn write(&mut self, cmd: &str) -> Result<(), HwError> {
        let mut line = cmd.as_bytes().to_vec();
        line.extend_from_slice(self.settings.write_termination.as_bytes());
        let r = match &mut self.io {
            Io::Tcp(s) => s.write_all(&line),
            Io::Serial(p) => p.write_all_bytes(&line),
        };
        r.map_err(|e| self.io_err(format!("cannot send `{cmd}`: {e}")))
    }

    /// Sends a query and returns its answer without the read termination.
    pub fn query(&mut self, cmd: &str) -> Result<String, HwError> {
        self.pending.clear();
        self.write(cmd)?;
        let term = self.settings.read_termination.as_bytes().to_vec();
        let deadline = Instant::now() + self.settings.timeout;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(i) = find(&self.pending, &term) {
                let answer = String::from_utf8_lossy(&self.pending[..i]).into_owned();
                self.pending.drain(..i + term.len());
                return Ok(answer.trim_end_matches('\r').to_string());
            }
            if self.pending.len() > MAX_ANSWER {
                return Err(self.io_err(format!(
                    "the answer to `{cmd}` ran past {MAX_ANSWER} bytes without its terminator"
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let got = if self.pending.is_empty() {
                    "no answer".to_string()
                } else {
                    format!(
                        "an unterminated answer ({:?})",
                        String::from_utf8_lossy(&self.pending[..self.pending.len().min(80)])
                    )
                };
                return Err(self.io_err(format!(
                    "{got} to `{cmd}` within {} ms",
                    self.settings.timeout.as_millis()
                )));
            }
            let n = match &mut self.io {
                Io::Tcp(s) => {
                    let _ = s.set_read_timeout(Some(left));
                    match s.read(&mut buf) {
                        Ok(0) => {
                            return Err(self.io_err(format!(
                                "the instrument closed the connection before answering `{cmd}`"
                            )));
                        }
                        Ok(n) => n,
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::WouldBlock
                                    | ErrorKind::TimedOut
                                    | ErrorKind::Interrupted
                            ) =>
                        {
                            0
                        }
                        Err(e) => return Err(self.io_err(e)),
                    }
                }
                Io::Serial(p) => p.read_timeout(&mut buf, left).map_err(|e| self.io_err(e))?,
            };
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// Queries and parses a number; garbage is an error naming the answer.
    pub fn query_number(&mut self, cmd: &str) -> Result<(f64, String), HwError> {
        let answer = self.query(cmd)?;
        match parse_number(&answer) {
            Some(v) => Ok((v, answer)),
            None => Err(self.io_err(format!(
                "answered {:?} to `{cmd}`, which is not a number",
                &answer[..answer.len().min(120)]
            ))),
        }
    }

    /// Reads the error queue until `0,"No error"` (at most 32 entries). Each entry is the
    /// instrument's text, such as `-222,"Data out of range"`.
    pub fn errors(&mut self) -> Result<Vec<String>, HwError> {
        let mut out = Vec::new();
        for _ in 0..32 {
            let e = self.query("SYST:ERR?")?;
            if e.trim_start_matches('+').starts_with('0') {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    pub fn address(&self) -> String {
        self.settings.address.to_string()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("tcp://10.0.0.5:5025"),
            Ok(ScpiAddress::Tcp {
                host: "10.0.0.5".into(),
                port: 5025
            })
        );
        assert_eq!(
            parse_address("tcp://psu.local"),
            Ok(ScpiAddress::Tcp {
                host: "psu.local".into(),
                port: DEFAULT_PORT
            })
        );
        assert_eq!(
            parse_address("serial:///dev/ttyUSB0"),
            Ok(ScpiAddress::Serial {
                port: "/dev/ttyUSB0".into()
            })
        );
        assert!(
            parse_address("USB0::0x1AB1::0x0E11::DP8C1::INSTR")
                .unwrap_err()
                .contains("VISA")
        );
        assert!(parse_address("tcp://h:0").is_err());
        assert!(parse_address("http://x").is_err());
    }

    #[test]
    fn numbers_as_instruments_write_them() {
        assert_eq!(parse_number("+1.23400E+00\n"), Some(1.234));
        assert_eq!(parse_number("1.5 V"), Some(1.5));
        assert_eq!(parse_number("-5e-3A"), Some(-0.005));
        assert_eq!(parse_number("3.3,0.1"), Some(3.3));
        assert_eq!(parse_number("42"), Some(42.0));
        assert_eq!(parse_number("1e"), Some(1.0));
        assert_eq!(parse_number("ERR"), None);
        assert_eq!(parse_number("VOLT 1.25"), Some(1.25));
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("1e999"), None);
    }

    proptest! {
        #[test]
        fn any_answer_parses_without_panicking(s in "\\PC{0,64}") {
            let _ = parse_number(&s);
            let _ = parse_address(&s);
        }

        #[test]
        fn formatted_floats_read_back(v in -1e12f64..1e12) {
            let got = parse_number(&format!("{v:+.6E}")).unwrap();
            prop_assert!((got - v).abs() <= v.abs() * 1e-6 + 1e-300);
        }
    }
}
