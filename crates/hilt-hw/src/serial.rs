//! Serial ports: the trait the runner talks to, and the real driver over the `serialport`
//! crate (works on USB adapters and on pseudo-terminals alike).

use std::io::{self, Read, Write};
use std::time::Duration;

use hilt_model::bench::Parity;

use crate::{HwError, ResourceKind};

/// Line settings of a UART transport.
#[derive(Debug, Clone)]
pub struct SerialSettings {
    pub port: String,
    pub baud: u32,
    pub bytesize: u32,
    pub parity: Parity,
    pub stopbits: f64,
}

/// A byte stream to a device. `read` returns 0 when nothing arrived within `timeout`.
pub trait SerialPort: Send {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    fn write_all_bytes(&mut self, data: &[u8]) -> io::Result<()>;
    /// A second handle to the same port, so one thread reads while another writes.
    fn try_clone_port(&self) -> io::Result<Box<dyn SerialPort>>;
    /// The file descriptor to wait on, when the port has one: the reader then sleeps in
    /// `poll` and can be woken at once to stop.
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// Opens a real serial port with exclusive access (a second opener gets "busy").
pub fn open(settings: &SerialSettings) -> Result<Box<dyn SerialPort>, HwError> {
    let open_err =
        |reason: String| HwError::open(ResourceKind::Serial, "serial port", &settings.port, reason);
    if !std::path::Path::new(&settings.port).exists() {
        return Err(open_err(
            "no such device (is it plugged in, and is the path right?)".into(),
        ));
    }
    let data_bits = match settings.bytesize {
        5 => serialport::DataBits::Five,
        6 => serialport::DataBits::Six,
        7 => serialport::DataBits::Seven,
        _ => serialport::DataBits::Eight,
    };
    let parity = match settings.parity {
        Parity::N => serialport::Parity::None,
        Parity::E => serialport::Parity::Even,
        Parity::O => serialport::Parity::Odd,
        Parity::M | Parity::S => {
            return Err(open_err(
                "mark/space parity is not supported on this platform".into(),
            ));
        }
    };
    let stop_bits = if settings.stopbits >= 2.0 {
        serialport::StopBits::Two
    } else {
        serialport::StopBits::One
    };
    let port = serialport::new(&settings.port, settings.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(serialport::FlowControl::None)
        .timeout(Duration::from_millis(50))
        .open_native()
        .map_err(|e| {
            let busy = e.description.to_ascii_lowercase().contains("busy")
                || e.description.contains("Resource temporarily unavailable");
            let reason = match e.kind() {
                _ if busy => "port is busy: another program has it open".to_string(),
                // The path exists (checked above); serialport reports EBUSY and a held
                // exclusive flock as NoDevice.
                serialport::ErrorKind::NoDevice => {
                    "port is busy: another program has it open exclusively".to_string()
                }
                serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
                    "permission denied (add the user to the dialout group)".to_string()
                }
                _ => e.description.clone(),
            };
            open_err(reason)
        })?;
    // Bytes the device sent before we opened the port are not part of this run.
    use serialport::SerialPort as _;
    let _ = port.clear(serialport::ClearBuffer::Input);
    Ok(Box::new(RealPort { port }))
}

struct RealPort {
    port: serialport::TTYPort,
}

impl SerialPort for RealPort {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        use serialport::SerialPort as _;
        if self.port.timeout() != timeout {
            self.port.set_timeout(timeout)?;
        }
        match self.port.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all_bytes(&mut self, data: &[u8]) -> io::Result<()> {
        self.port.write_all(data)?;
        self.port.flush()
    }

    fn try_clone_port(&self) -> io::Result<Box<dyn SerialPort>> {
        let port = self.port.try_clone_native().map_err(io::Error::other)?;
        Ok(Box::new(RealPort { port }))
    }

    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.port.as_raw_fd())
    }
}
