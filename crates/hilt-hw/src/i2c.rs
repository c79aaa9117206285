//! I2C: the [`I2cBus`] trait (probe, write, write-then-read with a repeated start), its
//! errors, and the register-level operations the `i2c_*` steps and `i2c_power_monitor`
//! make on any bus.
//!
//! Two buses implement it: [`linux::LinuxI2c`] (the kernel's i2c-dev, `/dev/i2c-<bus>`)
//! and [`crate::simbus::SimI2c`] (a `hilt sim bus` over TCP). The operations here are the
//! logic; the buses only move bytes, so the logic is tested against a fake bus and the
//! simulator, and the kernel driver is only its calls (the kernels hilt is built and
//! tested on have no I2C adapter and no i2c-stub module).

pub mod linux;

/// The lowest and highest 7-bit addresses a step may use (0x00–0x02 and 0x78–0x7F are
/// reserved by the I2C specification).
pub const FIRST_ADDRESS: u8 = 0x03;
pub const LAST_ADDRESS: u8 = 0x77;
/// The most bytes one step reads or writes (i2c-dev allows 8192 per message; no register
/// access needs more).
pub const MAX_TRANSFER: usize = 256;

/// How an I2C transfer failed. The classification follows who has to act: a device that
/// does not acknowledge its address answers for itself (firmware, or the wrong device on
/// the bench); a bus that cannot complete a transfer, or a device node that is gone, is
/// the bench's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum I2cError {
    /// No device acknowledged the address (the kernel's ENXIO / EREMOTEIO).
    #[error("no acknowledge from address 0x{addr:02x}")]
    Nack { addr: u8 },
    /// The transfer did not finish in time: a device holding the clock low, or a hung bus.
    #[error("address 0x{addr:02x} did not finish the transfer within {ms} ms")]
    Timeout { addr: u8, ms: u64 },
    /// The bus itself failed during the transfer (arbitration lost, a bus error).
    #[error("bus error talking to address 0x{addr:02x}: {reason}")]
    Bus { addr: u8, reason: String },
    /// The adapter or the link to it failed (device node gone, connection lost).
    #[error("{0}")]
    Io(String),
    /// The request cannot be made on this bus (adapter without plain I2C, bad length).
    #[error("{0}")]
    Unsupported(String),
}

/// One I2C bus. Addresses are 7-bit.
pub trait I2cBus: Send {
    /// `/dev/i2c-1`, `sim 127.0.0.1:4000`: for logs and messages.
    fn describe(&self) -> String;
    /// Probes one address with an SMBus quick write (as `i2cdetect` and BenchCI do):
    /// `Ok(true)` when a device acknowledged (or a kernel driver holds the address),
    /// `Ok(false)` when none did.
    fn probe(&mut self, addr: u8) -> Result<bool, I2cError>;
    /// One write message.
    fn write(&mut self, addr: u8, data: &[u8]) -> Result<(), I2cError>;
    /// A write message then a read message of `len` bytes, with a repeated start.
    fn write_read(&mut self, addr: u8, data: &[u8], len: usize) -> Result<Vec<u8>, I2cError>;
}

/// The bytes that select `register`: one byte up to 0xFF (BenchCI's SMBus register
/// command), two bytes big-endian above it (16-bit register maps such as 24C32 EEPROMs).
pub fn register_bytes(register: u16) -> Vec<u8> {
    if register <= 0xFF {
        vec![register as u8]
    } else {
        register.to_be_bytes().to_vec()
    }
}

fn check_address(addr: u32) -> Result<u8, I2cError> {
    match u8::try_from(addr) {
        Ok(a) if (FIRST_ADDRESS..=LAST_ADDRESS).contains(&a) => Ok(a),
        _ => Err(I2cError::Unsupported(format!(
            "address 0x{addr:02x} is outside 0x{FIRST_ADDRESS:02x}..0x{LAST_ADDRESS:02x}"
        ))),
    }
}

fn check_register(register: u32) -> Result<u16, I2cError> {
    u16::try_from(register)
        .map_err(|_| I2cError::Unsupported(format!("register 0x{register:x} is above 0xffff")))
}

/// Probes every address in `start..=end` and returns those that answered.
pub fn scan(bus: &mut dyn I2cBus, start: u32, end: u32) -> Result<Vec<u8>, I2cError> {
    let (start, end) = (check_address(start)?, check_address(end)?);
    if start > end {
        return Err(I2cError::Unsupported(format!(
            "scan range 0x{start:02x}..0x{end:02x} is empty"
        )));
    }
    let mut found = Vec::new();
    for addr in start..=end {
        if bus.probe(addr)? {
            found.push(addr);
        }
    }
    Ok(found)
}

/// Writes `values` (bytes) to `register` of the device at `addr`, in one message.
pub fn write_register(
    bus: &mut dyn I2cBus,
    addr: u32,
    register: u32,
    values: &[u32],
) -> Result<(), I2cError> {
    let addr = check_address(addr)?;
    let mut msg = register_bytes(check_register(register)?);
    if values.is_empty() || values.len() > MAX_TRANSFER {
        return Err(I2cError::Unsupported(format!(
            "a register write takes 1..{MAX_TRANSFER} bytes, not {}",
            values.len()
        )));
    }
    for v in values {
        msg.push(
            u8::try_from(*v)
                .map_err(|_| I2cError::Unsupported(format!("value {v} is not a byte (0..255)")))?,
        );
    }
    bus.write(addr, &msg)
}

/// Reads `len` bytes from `register` of the device at `addr` (register select, repeated
/// start, read). A device that returns fewer bytes is reported as a bus error.
pub fn read_register(
    bus: &mut dyn I2cBus,
    addr: u32,
    register: u32,
    len: u32,
) -> Result<Vec<u8>, I2cError> {
    let addr = check_address(addr)?;
    let reg = register_bytes(check_register(register)?);
    let len = len as usize;
    if len == 0 || len > MAX_TRANSFER {
        return Err(I2cError::Unsupported(format!(
            "a register read takes 1..{MAX_TRANSFER} bytes, not {len}"
        )));
    }
    let got = bus.write_read(addr, &reg, len)?;
    if got.len() != len {
        return Err(I2cError::Bus {
            addr,
            reason: format!("asked for {len} bytes, the transfer returned {}", got.len()),
        });
    }
    Ok(got)
}

#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::collections::BTreeMap;

    /// A bus of register files: each device answers with its bytes from the selected
    /// register on; `fail` makes every transfer to an address fail with that error.
    #[derive(Default)]
    pub struct FakeBus {
        pub devices: BTreeMap<u8, Vec<u8>>,
        pub fail: BTreeMap<u8, I2cError>,
        pub writes: Vec<(u8, Vec<u8>)>,
        pub probes: Vec<u8>,
    }

    impl I2cBus for FakeBus {
        fn describe(&self) -> String {
            "fake".into()
        }
        fn probe(&mut self, addr: u8) -> Result<bool, I2cError> {
            self.probes.push(addr);
            if let Some(e) = self.fail.get(&addr) {
                return Err(e.clone());
            }
            Ok(self.devices.contains_key(&addr))
        }
        fn write(&mut self, addr: u8, data: &[u8]) -> Result<(), I2cError> {
            if let Some(e) = self.fail.get(&addr) {
                return Err(e.clone());
            }
            let Some(dev) = self.devices.get_mut(&addr) else {
                return Err(I2cError::Nack { addr });
            };
            let start = data[0] as usize;
            for (i, b) in data[1..].iter().enumerate() {
                if let Some(slot) = dev.get_mut(start + i) {
                    *slot = *b;
                }
            }
            self.writes.push((addr, data.to_vec()));
            Ok(())
        }
        fn write_read(&mut self, addr: u8, data: &[u8], len: usize) -> Result<Vec<u8>, I2cError> {
            if let Some(e) = self.fail.get(&addr) {
                return Err(e.clone());
            }
            let Some(dev) = self.devices.get(&addr) else {
                return Err(I2cError::Nack { addr });
            };
            let start = data[0] as usize;
            Ok(dev.iter().skip(start).take(len).copied().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeBus;
    use super::*;

    fn bus() -> FakeBus {
        let mut b = FakeBus::default();
        b.devices.insert(0x48, vec![0x19, 0x00, 0x60, 0xa0]);
        b.devices.insert(0x50, vec![0; 8]);
        b
    }

    #[test]
    fn register_selection_is_one_or_two_bytes() {
        assert_eq!(register_bytes(0x00), [0x00]);
        assert_eq!(register_bytes(0xff), [0xff]);
        assert_eq!(register_bytes(0x100), [0x01, 0x00]);
        assert_eq!(register_bytes(0xabcd), [0xab, 0xcd]);
    }

    #[test]
    fn scan_probes_the_range_and_lists_answers() {
        let mut b = bus();
        assert_eq!(scan(&mut b, 0x03, 0x77).unwrap(), [0x48, 0x50]);
        assert_eq!(b.probes.len(), 0x77 - 0x03 + 1);
        assert_eq!(scan(&mut b, 0x49, 0x4f).unwrap(), Vec::<u8>::new());
        assert!(
            matches!(scan(&mut b, 0x02, 0x10), Err(I2cError::Unsupported(m)) if m.contains("0x02"))
        );
        assert!(matches!(
            scan(&mut b, 0x10, 0x78),
            Err(I2cError::Unsupported(_))
        ));
        assert!(
            matches!(scan(&mut b, 0x20, 0x10), Err(I2cError::Unsupported(m)) if m.contains("empty"))
        );
    }

    #[test]
    fn a_bus_error_during_a_scan_ends_it() {
        let mut b = bus();
        b.fail.insert(0x30, I2cError::Io("gone".into()));
        assert_eq!(scan(&mut b, 0x03, 0x77), Err(I2cError::Io("gone".into())));
    }

    #[test]
    fn reads_and_writes_go_through_the_register_pointer() {
        let mut b = bus();
        assert_eq!(read_register(&mut b, 0x48, 0, 2).unwrap(), [0x19, 0x00]);
        write_register(&mut b, 0x50, 2, &[0xaa, 0xbb]).unwrap();
        assert_eq!(b.writes, [(0x50, vec![2, 0xaa, 0xbb])]);
        assert_eq!(read_register(&mut b, 0x50, 1, 3).unwrap(), [0, 0xaa, 0xbb]);
    }

    #[test]
    fn bad_requests_are_refused_before_the_bus() {
        let mut b = bus();
        let refused = |r: Result<_, I2cError>| matches!(r, Err(I2cError::Unsupported(_)));
        assert!(refused(read_register(&mut b, 0x80, 0, 1)));
        assert!(refused(read_register(&mut b, 0x48, 0x1_0000, 1)));
        assert!(refused(read_register(&mut b, 0x48, 0, 0)));
        assert!(refused(read_register(&mut b, 0x48, 0, 257)));
        assert!(refused(
            write_register(&mut b, 0x50, 0, &[]).map(|_| Vec::new())
        ));
        assert!(refused(
            write_register(&mut b, 0x50, 0, &[256]).map(|_| Vec::new())
        ));
        assert!(b.writes.is_empty());
    }

    #[test]
    fn absent_devices_nack_and_short_reads_are_bus_errors() {
        let mut b = bus();
        assert_eq!(
            read_register(&mut b, 0x49, 0, 1),
            Err(I2cError::Nack { addr: 0x49 })
        );
        assert!(matches!(
            read_register(&mut b, 0x48, 2, 4),
            Err(I2cError::Bus { addr: 0x48, reason }) if reason.contains("returned 2")
        ));
    }
}
