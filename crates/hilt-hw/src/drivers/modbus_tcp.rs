//! `modbus_tcp`: Modbus TCP (MBAP framing) to `host:port`.
//!
//! The connection is made when the run opens the transport (a refused or unreachable
//! endpoint is a transport that cannot be opened) and again on the next request after it
//! broke. Replies are matched by transaction id, so a late answer to a timed-out request
//! is skipped rather than taken for the next one.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use hilt_model::bench::Transport;

use super::{OpenedTransport, Problem, TransportDriver};
use crate::modbus::frame::{self, FrameError, MBAP_LEN};
use crate::modbus::{CANCEL_SLICE, ModbusError, ModbusLink, Request, Response, finish};
use crate::{CancelToken, HwError, ResourceKind};

pub struct ModbusTcp;

impl TransportDriver for ModbusTcp {
    fn tag(&self) -> &'static str {
        "modbus_tcp"
    }

    fn check(&self, t: &Transport) -> Vec<Problem> {
        let Transport::ModbusTcp {
            host, timeout_ms, ..
        } = t
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if host.trim().is_empty() || host.contains('/') || host.contains(' ') {
            out.push(
                Problem::new("host", format!("`{host}` is not a host name or address")).with_help(
                    "write the host alone, e.g. `10.1.2.3` or `plc.local`; the port goes in `port`",
                ),
            );
        }
        if *timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        out
    }

    fn open(&self, _node: &str, _name: &str, t: &Transport) -> Result<OpenedTransport, HwError> {
        let Transport::ModbusTcp {
            host,
            port,
            timeout_ms,
            ..
        } = t
        else {
            return Err(HwError::unsupported(
                ResourceKind::Modbus,
                format!(
                    "driver `modbus_tcp` cannot use `{}` parameters",
                    t.backend()
                ),
            ));
        };
        let mut link = TcpLink {
            endpoint: format!("{host}:{port}"),
            timeout: Duration::from_millis(*timeout_ms),
            stream: None,
            transaction: 0,
        };
        link.connect()?;
        Ok(OpenedTransport::Modbus(Box::new(link)))
    }
}

struct TcpLink {
    endpoint: String,
    timeout: Duration,
    stream: Option<TcpStream>,
    transaction: u16,
}

impl TcpLink {
    fn connect(&mut self) -> Result<(), HwError> {
        let open_err = |reason: String| {
            HwError::open(
                ResourceKind::Modbus,
                "Modbus TCP endpoint",
                &self.endpoint,
                reason,
            )
        };
        let addrs: Vec<SocketAddr> = self
            .endpoint
            .to_socket_addrs()
            .map_err(|e| open_err(format!("cannot resolve: {e}")))?
            .collect();
        let mut last = String::from("no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    self.stream = Some(s);
                    return Ok(());
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(open_err(last))
    }

    fn io(&mut self, e: std::io::Error) -> ModbusError {
        self.stream = None;
        ModbusError::Io(HwError::io(
            ResourceKind::Modbus,
            "Modbus TCP connection",
            format!("{}: {e}", self.endpoint),
        ))
    }

    /// Reads exactly `buf.len()` bytes before `deadline`; `Ok(n < len)` on timeout.
    fn read_exact_by(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<usize, ModbusError> {
        let mut n = 0;
        while n < buf.len() {
            if cancel.is_cancelled() {
                return Err(ModbusError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(n);
            }
            let Some(s) = self.stream.as_mut() else {
                return Ok(n);
            };
            let _ = s.set_read_timeout(Some(left.min(CANCEL_SLICE)));
            match s.read(&mut buf[n..]) {
                Ok(0) => {
                    return Err(self.io(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the slave closed the connection",
                    )));
                }
                Ok(k) => n += k,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(n)
    }
}

impl ModbusLink for TcpLink {
    fn call(
        &mut self,
        slave: u8,
        req: &Request,
        cancel: &CancelToken,
    ) -> Result<Response, ModbusError> {
        if self.stream.is_none() {
            self.connect().map_err(ModbusError::Io)?;
        }
        self.transaction = self.transaction.wrapping_add(1);
        let tid = self.transaction;
        let out = frame::tcp_frame(tid, slave, &req.encode());
        let wrote = match self.stream.as_mut() {
            Some(s) => s.write_all(&out),
            None => Ok(()),
        };
        wrote.map_err(|e| self.io(e))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let mut head = [0u8; MBAP_LEN];
            let n = self.read_exact_by(&mut head, deadline, cancel)?;
            if n < MBAP_LEN {
                return Err(ModbusError::Timeout {
                    waited: self.timeout,
                    received: n,
                });
            }
            let mbap = match frame::parse_mbap(&head) {
                Ok(m) => m,
                Err(e) => {
                    // The stream is out of step; start afresh on the next request.
                    self.stream = None;
                    return Err(ModbusError::Frame(e));
                }
            };
            let mut pdu = vec![0u8; mbap.pdu_len];
            let n = self.read_exact_by(&mut pdu, deadline, cancel)?;
            if n < pdu.len() {
                self.stream = None;
                return Err(ModbusError::Timeout {
                    waited: self.timeout,
                    received: MBAP_LEN + n,
                });
            }
            if mbap.transaction != tid {
                // A late answer to an earlier request that timed out.
                continue;
            }
            if mbap.unit != slave {
                return Err(ModbusError::Frame(FrameError::Malformed(format!(
                    "reply from unit {} to a request for unit {slave}",
                    mbap.unit
                ))));
            }
            return finish(req, &pdu);
        }
    }

    fn describe(&self) -> String {
        format!("tcp {}", self.endpoint)
    }
}
