//! The Linux i2c-dev bus (`/dev/i2c-<bus>`), through the `i2cdev` crate: transfers are
//! one `I2C_RDWR` ioctl (write, or write + read with a repeated start), probes an SMBus
//! quick write after `I2C_SLAVE`, as `i2cdetect` does. Only kernel calls are here; what
//! the kernel's error numbers mean is [`error_of`], unit-tested, and everything above the
//! transfers is in [`super`].
//!
//! The kernel's adapter timeout applies to each transfer (i2c-dev's default, usually one
//! second); the transport's `timeout_ms` bounds the simulated bus only.

use std::path::Path;

use i2cdev::core::{I2CDevice, I2CMessage, I2CTransfer};
use i2cdev::linux::{LinuxI2CBus, LinuxI2CDevice, LinuxI2CError, LinuxI2CMessage};

use super::{I2cBus, I2cError};

/// The device node of bus `n`.
pub fn device_path(bus: u32) -> String {
    format!("/dev/i2c-{bus}")
}

pub struct LinuxI2c {
    path: String,
    bus: LinuxI2CBus,
    /// Opened on the first probe: `I2C_SLAVE` + SMBus quick write per address.
    prober: Option<LinuxI2CDevice>,
}

impl LinuxI2c {
    /// Opens the device node; a missing node names the module to load.
    pub fn open(path: &str) -> Result<LinuxI2c, I2cError> {
        if !Path::new(path).exists() {
            return Err(I2cError::Io(format!(
                "no I2C bus at {path}: the adapter is missing or i2c-dev is not loaded \
                 (`modprobe i2c-dev`; on a Raspberry Pi enable I2C with raspi-config)"
            )));
        }
        let bus = LinuxI2CBus::new(path)
            .map_err(|e| I2cError::Io(format!("cannot open {path}: {}", describe(&e))))?;
        Ok(LinuxI2c {
            path: path.to_string(),
            bus,
            prober: None,
        })
    }
}

fn errno(e: &LinuxI2CError) -> Option<i32> {
    match e {
        LinuxI2CError::Errno(n) => Some(*n),
        LinuxI2CError::Io(io) => io.raw_os_error(),
    }
}

fn describe(e: &LinuxI2CError) -> String {
    match errno(e) {
        Some(n) => std::io::Error::from_raw_os_error(n).to_string(),
        None => e.to_string(),
    }
}

/// What an error number from an i2c-dev transfer means (the kernel's
/// Documentation/i2c/fault-codes.rst).
pub fn error_of(errno: Option<i32>, addr: u8, path: &str, text: &str) -> I2cError {
    const ENXIO: i32 = 6;
    const EIO: i32 = 5;
    const EAGAIN: i32 = 11;
    const ENODEV: i32 = 19;
    const EINVAL: i32 = 22;
    const EPROTO: i32 = 71;
    const EBADMSG: i32 = 74;
    const EOPNOTSUPP: i32 = 95;
    const ETIMEDOUT: i32 = 110;
    const EREMOTEIO: i32 = 121;
    match errno {
        Some(ENXIO) | Some(EREMOTEIO) => I2cError::Nack { addr },
        // The adapter's own timeout (its length is the adapter's, not the transport's).
        Some(ETIMEDOUT) => I2cError::Bus {
            addr,
            reason: "timed out in the adapter: a device holds the clock low or the bus hangs"
                .into(),
        },
        Some(EAGAIN) => I2cError::Bus {
            addr,
            reason: "arbitration lost".into(),
        },
        Some(EIO) | Some(EPROTO) | Some(EBADMSG) => I2cError::Bus {
            addr,
            reason: text.to_string(),
        },
        Some(EOPNOTSUPP) | Some(EINVAL) => I2cError::Unsupported(format!(
            "the adapter of {path} cannot make this transfer: {text}"
        )),
        Some(ENODEV) => I2cError::Io(format!("{path}: the adapter is gone ({text})")),
        _ => I2cError::Io(format!("{path}: {text}")),
    }
}

impl LinuxI2c {
    fn fail(&self, e: &LinuxI2CError, addr: u8) -> I2cError {
        error_of(errno(e), addr, &self.path, &describe(e))
    }
}

impl I2cBus for LinuxI2c {
    fn describe(&self) -> String {
        self.path.clone()
    }

    fn probe(&mut self, addr: u8) -> Result<bool, I2cError> {
        const EBUSY: i32 = 16;
        // A kernel driver owning the address is a device there (`UU` in i2cdetect).
        let selected = match self.prober.as_mut() {
            Some(dev) => dev.set_slave_address(u16::from(addr)),
            None => LinuxI2CDevice::new(&self.path, u16::from(addr)).map(|dev| {
                self.prober = Some(dev);
            }),
        };
        match selected {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EBUSY) => return Ok(true),
            Err(e) => return Err(error_of(errno(&e), addr, &self.path, &describe(&e))),
        }
        let Some(dev) = self.prober.as_mut() else {
            return Ok(false);
        };
        match dev.smbus_write_quick(false) {
            Ok(()) => Ok(true),
            Err(e) => match error_of(errno(&e), addr, &self.path, &describe(&e)) {
                // As i2cdetect: a transfer error at one address means nothing answered
                // there; only a failing adapter ends the scan.
                I2cError::Nack { .. } | I2cError::Timeout { .. } | I2cError::Bus { .. } => {
                    Ok(false)
                }
                other => Err(other),
            },
        }
    }

    fn write(&mut self, addr: u8, data: &[u8]) -> Result<(), I2cError> {
        let mut msgs = [LinuxI2CMessage::write(data).with_address(u16::from(addr))];
        self.bus
            .transfer(&mut msgs)
            .map(drop)
            .map_err(|e| self.fail(&e, addr))
    }

    fn write_read(&mut self, addr: u8, data: &[u8], len: usize) -> Result<Vec<u8>, I2cError> {
        let mut buf = vec![0u8; len];
        let result = {
            let mut msgs = [
                LinuxI2CMessage::write(data).with_address(u16::from(addr)),
                LinuxI2CMessage::read(&mut buf).with_address(u16::from(addr)),
            ];
            self.bus.transfer(&mut msgs)
        };
        result.map_err(|e| self.fail(&e, addr))?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_numbers_map_to_who_must_act() {
        let of = |n| error_of(Some(n), 0x48, "/dev/i2c-1", "text");
        assert_eq!(of(6), I2cError::Nack { addr: 0x48 });
        assert_eq!(of(121), I2cError::Nack { addr: 0x48 });
        assert!(
            matches!(of(110), I2cError::Bus { addr: 0x48, reason } if reason.contains("clock low"))
        );
        assert!(matches!(of(11), I2cError::Bus { reason, .. } if reason == "arbitration lost"));
        assert!(matches!(of(5), I2cError::Bus { .. }));
        assert!(matches!(of(95), I2cError::Unsupported(m) if m.contains("/dev/i2c-1")));
        assert!(matches!(of(19), I2cError::Io(m) if m.contains("gone")));
        assert!(matches!(
            error_of(None, 1, "/dev/i2c-1", "x"),
            I2cError::Io(_)
        ));
    }

    #[test]
    fn a_missing_bus_names_the_fix() {
        let Err(I2cError::Io(m)) = LinuxI2c::open("/dev/i2c-250") else {
            panic!("a missing node must fail to open");
        };
        assert!(
            m.contains("/dev/i2c-250") && m.contains("modprobe i2c-dev"),
            "{m}"
        );
        assert_eq!(device_path(3), "/dev/i2c-3");
    }
}
