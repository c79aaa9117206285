//! Modbus client side: the frames ([`frame`]), the link a step talks to ([`ModbusLink`])
//! and what can go wrong on it ([`ModbusError`]). The RTU and TCP links are drivers
//! (`drivers/modbus_rtu.rs`, `drivers/modbus_tcp.rs`); the simulated slave in `hilt-sim`
//! answers with the same frame code.
//!
//! Why not `tokio-modbus`: hilt-hw is synchronous (a run is a thread; every wait is a
//! `poll` with a deadline that wakes on cancel), and tokio-modbus would bring a runtime per
//! transport and hide the bytes. Owning the ~400 lines of framing lets a CRC error be told
//! apart from silence (different failure sources), lets the simulated slave corrupt frames
//! on demand, and keeps every parser property-tested. Interoperability is proven against
//! pymodbus in `crates/hilt-cli/tests/modbus.rs`.

pub mod frame;

use std::time::Duration;

pub use frame::{FrameError, Request, Response};

use crate::{CancelToken, HwError};

/// What went wrong on one Modbus transaction. The runner maps each variant to a failure:
/// an exception or a malformed reply is the device's answer, silence is the device's or
/// the wiring's, a CRC error is the line's.
#[derive(Debug)]
pub enum ModbusError {
    /// The slave answered with an exception response.
    Exception {
        function: u8,
        code: u8,
    },
    /// No complete reply within the transport's timeout; `received` bytes of one arrived.
    Timeout {
        waited: Duration,
        received: usize,
    },
    /// A reply arrived but cannot be the answer (CRC, length, echo, slave id).
    Frame(FrameError),
    /// The connection or port failed.
    Io(HwError),
    Cancelled,
}

impl std::fmt::Display for ModbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModbusError::Exception { function, code } => write!(
                f,
                "exception {code:#04x} ({}) to function {function}",
                frame::exception_name(*code)
            ),
            ModbusError::Timeout {
                waited,
                received: 0,
            } => write!(f, "no reply within {} ms", waited.as_millis()),
            ModbusError::Timeout { waited, received } => write!(
                f,
                "incomplete reply: {received} bytes, then nothing for the rest of {} ms",
                waited.as_millis()
            ),
            ModbusError::Frame(e) => write!(f, "bad reply: {e}"),
            ModbusError::Io(e) => e.fmt(f),
            ModbusError::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// An opened Modbus transport (RTU serial line or TCP connection).
pub trait ModbusLink: Send {
    /// One transaction with `slave`: send the request, wait for its answer within the
    /// transport's timeout (waking at once on cancel).
    fn call(
        &mut self,
        slave: u8,
        req: &Request,
        cancel: &CancelToken,
    ) -> Result<Response, ModbusError>;

    /// Where the link goes (`rtu /dev/ttyUSB1 @19200`, `tcp 10.1.2.3:502`), for logs.
    fn describe(&self) -> String;
}

/// The longest single wait between cancel checks.
pub(crate) const CANCEL_SLICE: Duration = Duration::from_millis(50);

/// Turns a decoded reply into the link's result.
pub(crate) fn finish(req: &Request, pdu: &[u8]) -> Result<Response, ModbusError> {
    match req.decode_response(pdu) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(code)) => Err(ModbusError::Exception {
            function: req.function(),
            code,
        }),
        Err(e) => Err(ModbusError::Frame(e)),
    }
}
