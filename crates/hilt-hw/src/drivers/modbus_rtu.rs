//! `modbus_rtu`: Modbus RTU over a serial port (RS-485 adapter, or a pty in tests), 8N1
//! at the transport's `baud` (BenchCI has no parity/stop-bit fields for RTU).
//!
//! A transaction writes the frame, then reads until the reply's length is known from its
//! first bytes (RTU frames carry no length), checks the CRC and the slave id, and gives
//! the PDU to the frame decoder. Bytes left over from an earlier, timed-out transaction
//! are dropped before each request.

use std::time::{Duration, Instant};

use hilt_model::bench::{Parity, Transport};

use super::{OpenedTransport, Problem, TransportDriver};
use crate::modbus::frame::{self, FrameError};
use crate::modbus::{CANCEL_SLICE, ModbusError, ModbusLink, Request, Response, finish};
use crate::serial::{SerialPort, SerialSettings};
use crate::{CancelToken, HwError, ResourceKind};

pub struct ModbusRtu;

impl TransportDriver for ModbusRtu {
    fn tag(&self) -> &'static str {
        "modbus_rtu"
    }

    fn check(&self, t: &Transport) -> Vec<Problem> {
        let Transport::ModbusRtu {
            port,
            baud,
            timeout_ms,
            ..
        } = t
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if port.trim().is_empty() {
            out.push(Problem::new("port", "must name a serial port"));
        }
        if *baud == 0 {
            out.push(Problem::new("baud", "must be greater than 0"));
        }
        if *timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        out
    }

    fn open(&self, _node: &str, _name: &str, t: &Transport) -> Result<OpenedTransport, HwError> {
        let Transport::ModbusRtu {
            port,
            baud,
            timeout_ms,
            ..
        } = t
        else {
            return Err(HwError::unsupported(
                ResourceKind::Modbus,
                format!(
                    "driver `modbus_rtu` cannot use `{}` parameters",
                    t.backend()
                ),
            ));
        };
        let settings = SerialSettings {
            port: port.clone(),
            baud: *baud,
            bytesize: 8,
            parity: Parity::N,
            stopbits: 1.0,
        };
        let serial = crate::serial::open(&settings).map_err(|e| match e {
            HwError::Open {
                what, path, reason, ..
            } => HwError::Open {
                kind: ResourceKind::Modbus,
                what,
                path,
                reason,
            },
            other => other,
        })?;
        Ok(OpenedTransport::Modbus(Box::new(RtuLink {
            port: serial,
            path: port.clone(),
            baud: *baud,
            timeout: Duration::from_millis(*timeout_ms),
        })))
    }
}

struct RtuLink {
    port: Box<dyn SerialPort>,
    path: String,
    baud: u32,
    timeout: Duration,
}

impl RtuLink {
    fn io(&self, e: std::io::Error) -> ModbusError {
        ModbusError::Io(HwError::io(ResourceKind::Modbus, "Modbus RTU port", e))
    }

    /// Drops whatever is waiting on the line (a late reply to a timed-out request).
    fn drain(&mut self) -> Result<(), ModbusError> {
        crate::serial::drain(&mut *self.port).map_err(|e| self.io(e))
    }
}

impl ModbusLink for RtuLink {
    fn call(
        &mut self,
        slave: u8,
        req: &Request,
        cancel: &CancelToken,
    ) -> Result<Response, ModbusError> {
        self.drain()?;
        let out = frame::rtu_frame(slave, &req.encode());
        self.port.write_all_bytes(&out).map_err(|e| self.io(e))?;
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut got: Vec<u8> = Vec::with_capacity(256);
        let mut buf = [0u8; 256];
        loop {
            // Slave id + PDU + CRC once the PDU's length is known.
            let want = if got.len() > 1 {
                req.reply_len(&got[1..]).map(|n| n + 3)
            } else {
                None
            };
            if let Some(want) = want
                && got.len() >= want
            {
                let (from, pdu) = frame::rtu_unframe(&got[..want]).map_err(ModbusError::Frame)?;
                if from != slave {
                    return Err(ModbusError::Frame(FrameError::Malformed(format!(
                        "reply from slave {from} to a request for slave {slave}"
                    ))));
                }
                return finish(req, pdu);
            }
            if cancel.is_cancelled() {
                return Err(ModbusError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ModbusError::Timeout {
                    waited: self.timeout,
                    received: got.len(),
                });
            }
            let n = self
                .port
                .read_timeout(&mut buf, left.min(CANCEL_SLICE))
                .map_err(|e| self.io(e))?;
            got.extend_from_slice(&buf[..n]);
            if got.len() > frame::MAX_PDU + 3 {
                return Err(ModbusError::Frame(FrameError::Malformed(format!(
                    "{} bytes arrived, more than any RTU frame",
                    got.len()
                ))));
            }
        }
    }

    fn describe(&self) -> String {
        format!("rtu {} @{}", self.path, self.baud)
    }
}
