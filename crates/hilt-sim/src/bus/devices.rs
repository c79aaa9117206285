//! The devices on a simulated bus, each behaving like its datasheet: register pointers,
//! read-only registers, page wrap, an EEPROM's write cycle (it does not acknowledge
//! while it writes), SPI flash write-enable rules, and wrong bits in the wrong SPI mode.

use std::time::{Duration, Instant};

/// One I2C device. `Err(())` from a transfer is a not-acknowledged byte.
pub trait I2cDevice: Send {
    /// `tmp102`, `24c02`: for `status`.
    fn name(&self) -> &'static str;
    /// Whether the device acknowledges its address now (an EEPROM mid-write does not).
    fn acks(&self, _now: Instant) -> bool {
        true
    }
    fn write(&mut self, now: Instant, data: &[u8]) -> Result<(), ()>;
    fn read(&mut self, now: Instant, len: usize) -> Vec<u8>;
    /// Sets a physical quantity (`temp`, `volts`, `amps`); `false` when it has none.
    fn set(&mut self, _key: &str, _value: f64) -> bool {
        false
    }
}

/// A TMP102 temperature sensor: pointer register; temperature (read-only, 12 bits of
/// 0.0625 °C, left-justified), configuration, T_LOW and T_HIGH, two bytes each.
pub struct Tmp102 {
    pointer: u8,
    regs: [u16; 4],
    temp_c: f64,
}

impl Tmp102 {
    pub fn new(temp_c: f64) -> Tmp102 {
        Tmp102 {
            pointer: 0,
            regs: [0, 0x60a0, 0x4b00, 0x5000],
            temp_c,
        }
    }

    fn temp_raw(&self) -> u16 {
        let counts = (self.temp_c / 0.0625).round().clamp(-2048.0, 2047.0) as i16;
        (counts << 4) as u16
    }
}

impl I2cDevice for Tmp102 {
    fn name(&self) -> &'static str {
        "tmp102"
    }
    fn write(&mut self, _now: Instant, data: &[u8]) -> Result<(), ()> {
        let Some((&p, rest)) = data.split_first() else {
            return Ok(());
        };
        if p > 3 {
            // The pointer has two bits; the chip NACKs a pointer byte it cannot hold.
            return Err(());
        }
        self.pointer = p;
        if rest.len() >= 2 && p != 0 {
            self.regs[p as usize] = u16::from_be_bytes([rest[0], rest[1]]);
        }
        Ok(())
    }
    fn read(&mut self, _now: Instant, len: usize) -> Vec<u8> {
        let v = if self.pointer == 0 {
            self.temp_raw()
        } else {
            self.regs[self.pointer as usize]
        };
        v.to_be_bytes().iter().copied().cycle().take(len).collect()
    }
    fn set(&mut self, key: &str, value: f64) -> bool {
        (key == "temp").then(|| self.temp_c = value).is_some()
    }
}

/// A 24Cxx EEPROM: 1- or 2-byte word address, page writes that wrap within the page,
/// sequential reads that wrap at the end, and a write cycle during which it does not
/// acknowledge (software polls for the acknowledge, as on the real part).
pub struct Eeprom {
    name: &'static str,
    mem: Vec<u8>,
    address_bytes: usize,
    page: usize,
    pointer: usize,
    write_cycle: Duration,
    busy_until: Option<Instant>,
}

impl Eeprom {
    /// A 24C02: 256 bytes, 8-byte pages, one address byte.
    pub fn c02(write_cycle: Duration) -> Eeprom {
        Eeprom {
            name: "24c02",
            mem: vec![0xff; 256],
            address_bytes: 1,
            page: 8,
            pointer: 0,
            write_cycle,
            busy_until: None,
        }
    }

    /// A 24C32: 4 KiB, 32-byte pages, two address bytes.
    pub fn c32(write_cycle: Duration) -> Eeprom {
        Eeprom {
            name: "24c32",
            mem: vec![0xff; 4096],
            address_bytes: 2,
            page: 32,
            ..Eeprom::c02(write_cycle)
        }
    }
}

impl I2cDevice for Eeprom {
    fn name(&self) -> &'static str {
        self.name
    }
    fn acks(&self, now: Instant) -> bool {
        self.busy_until.is_none_or(|t| now >= t)
    }
    fn write(&mut self, now: Instant, data: &[u8]) -> Result<(), ()> {
        if data.len() < self.address_bytes {
            // A lone first address byte of a 2-byte part: accepted, nothing set.
            return Ok(());
        }
        let (addr, payload) = data.split_at(self.address_bytes);
        let a = addr.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize) % self.mem.len();
        self.pointer = a;
        if payload.is_empty() {
            return Ok(());
        }
        let page_start = a - a % self.page;
        for (i, b) in payload.iter().enumerate() {
            let at = page_start + (a - page_start + i) % self.page;
            self.mem[at] = *b;
        }
        self.busy_until = Some(now + self.write_cycle);
        Ok(())
    }
    fn read(&mut self, _now: Instant, len: usize) -> Vec<u8> {
        let out = (0..len)
            .map(|i| self.mem[(self.pointer + i) % self.mem.len()])
            .collect();
        self.pointer = (self.pointer + len) % self.mem.len();
        out
    }
}

/// An INA226 or INA260 power monitor watching a supply of `volts` and `amps`.
/// INA226: shunt 10 mΩ, calibration 5120 at power-up as the board's firmware would set it
/// (current LSB 100 µA, power LSB 2.5 mW); writing calibration rescales current and power
/// (0 reads them as 0, as on the chip). INA260: fixed 1.25 mA / 1.25 mV / 10 mW.
pub struct Ina {
    chip: &'static str,
    pointer: u8,
    config: u16,
    calibration: u16,
    volts: f64,
    amps: f64,
}

const SHUNT_OHMS: f64 = 0.01;

impl Ina {
    pub fn ina226(volts: f64, amps: f64) -> Ina {
        Ina {
            chip: "ina226",
            pointer: 0,
            config: 0x4127,
            calibration: 5120,
            volts,
            amps,
        }
    }

    pub fn ina260(volts: f64, amps: f64) -> Ina {
        Ina {
            chip: "ina260",
            config: 0x6127,
            calibration: 0,
            ..Ina::ina226(volts, amps)
        }
    }

    fn register(&self, r: u8) -> u16 {
        let signed = |v: f64| v.round().clamp(-32768.0, 32767.0) as i16 as u16;
        let unsigned = |v: f64| v.round().clamp(0.0, 65535.0) as u16;
        if self.chip == "ina260" {
            return match r {
                0x00 => self.config,
                0x01 => signed(self.amps / 0.00125),
                0x02 => unsigned(self.volts / 0.00125),
                0x03 => unsigned(self.volts * self.amps.abs() / 0.01),
                0xfe => 0x5449,
                0xff => 0x2270,
                _ => 0,
            };
        }
        let lsb =
            (self.calibration > 0).then(|| 0.00512 / (f64::from(self.calibration) * SHUNT_OHMS));
        match r {
            0x00 => self.config,
            0x01 => signed(self.amps * SHUNT_OHMS / 2.5e-6),
            0x02 => unsigned(self.volts / 0.00125),
            0x03 => lsb.map_or(0, |l| unsigned(self.volts * self.amps.abs() / (25.0 * l))),
            0x04 => lsb.map_or(0, |l| signed(self.amps / l)),
            0x05 => self.calibration,
            0xfe => 0x5449,
            0xff => 0x2260,
            _ => 0,
        }
    }
}

impl I2cDevice for Ina {
    fn name(&self) -> &'static str {
        self.chip
    }
    fn write(&mut self, _now: Instant, data: &[u8]) -> Result<(), ()> {
        let Some((&p, rest)) = data.split_first() else {
            return Ok(());
        };
        self.pointer = p;
        if rest.len() >= 2 {
            let v = u16::from_be_bytes([rest[0], rest[1]]);
            match (self.chip, p) {
                (_, 0x00) => self.config = v,
                ("ina226", 0x05) => self.calibration = v & 0x7fff,
                _ => {}
            }
        }
        Ok(())
    }
    fn read(&mut self, _now: Instant, len: usize) -> Vec<u8> {
        let v = self.register(self.pointer);
        v.to_be_bytes().iter().copied().cycle().take(len).collect()
    }
    fn set(&mut self, key: &str, value: f64) -> bool {
        match key {
            "volts" => self.volts = value,
            "amps" => self.amps = value,
            _ => return false,
        }
        true
    }
}

/// One SPI device: bytes in, bytes out, chip select held for the whole transfer.
pub trait SpiPeer: Send {
    fn name(&self) -> &'static str;
    fn transfer(&mut self, tx: &[u8]) -> Vec<u8>;
}

/// A W25Q-style SPI NOR flash (64 KiB here): JEDEC ID `EF 40 18`, status register with
/// WEL, write enable/disable, read, page program (only 1→0, within a 256-byte page, needs
/// WEL) and 4 KiB sector erase (needs WEL). MISO is high (0xFF) while a command is
/// clocked in.
pub struct NorFlash {
    mem: Vec<u8>,
    wel: bool,
}

impl NorFlash {
    pub fn new() -> NorFlash {
        NorFlash {
            mem: vec![0xff; 64 * 1024],
            wel: false,
        }
    }

    fn addr(&self, tx: &[u8]) -> Option<usize> {
        (tx.len() >= 4).then(|| {
            ((tx[1] as usize) << 16 | (tx[2] as usize) << 8 | tx[3] as usize) % self.mem.len()
        })
    }
}

impl Default for NorFlash {
    fn default() -> Self {
        NorFlash::new()
    }
}

impl SpiPeer for NorFlash {
    fn name(&self) -> &'static str {
        "w25q-nor-flash"
    }
    fn transfer(&mut self, tx: &[u8]) -> Vec<u8> {
        let mut rx = vec![0xff; tx.len()];
        let fill = |rx: &mut Vec<u8>, from: usize, data: &mut dyn Iterator<Item = u8>| {
            for (slot, b) in rx.iter_mut().skip(from).zip(data) {
                *slot = b;
            }
        };
        match tx.first() {
            Some(0x9f) => fill(&mut rx, 1, &mut [0xef, 0x40, 0x18].into_iter()),
            Some(0x05) => fill(&mut rx, 1, &mut std::iter::repeat(u8::from(self.wel) << 1)),
            Some(0x06) => self.wel = true,
            Some(0x04) => self.wel = false,
            Some(0x03) => {
                if let Some(a) = self.addr(tx) {
                    let len = self.mem.len();
                    let mem = &self.mem;
                    fill(&mut rx, 4, &mut (0..).map(|i| mem[(a + i) % len]));
                }
            }
            Some(0x02) => {
                if let Some(a) = self.addr(tx).filter(|_| self.wel) {
                    let page = a - a % 256;
                    for (i, b) in tx[4..].iter().enumerate() {
                        let at = page + (a - page + i) % 256;
                        self.mem[at] &= *b;
                    }
                    self.wel = false;
                }
            }
            Some(0x20) => {
                if let Some(a) = self.addr(tx).filter(|_| self.wel) {
                    let start = a - a % 4096;
                    self.mem[start..start + 4096].fill(0xff);
                    self.wel = false;
                }
            }
            _ => {}
        }
        rx
    }
}

/// An ADXL345-style register sensor: first byte `R/W̄ | MB | address(6)`, then data;
/// DEVID (0x00) is 0xE5, registers 0x1D..0x39 writable, the rest read-only.
pub struct RegisterSensor {
    regs: [u8; 64],
}

impl RegisterSensor {
    pub fn new() -> RegisterSensor {
        let mut regs = [0u8; 64];
        regs[0x00] = 0xe5;
        regs[0x2c] = 0x0a;
        regs[0x32] = 0x10; // DATAX0: a little acceleration on X
        RegisterSensor { regs }
    }
}

impl Default for RegisterSensor {
    fn default() -> Self {
        RegisterSensor::new()
    }
}

impl SpiPeer for RegisterSensor {
    fn name(&self) -> &'static str {
        "adxl345-registers"
    }
    fn transfer(&mut self, tx: &[u8]) -> Vec<u8> {
        let mut rx = vec![0u8; tx.len()];
        let Some(&cmd) = tx.first() else {
            return rx;
        };
        let (read, multi, start) = (cmd & 0x80 != 0, cmd & 0x40 != 0, (cmd & 0x3f) as usize);
        for i in 1..tx.len() {
            let r = if multi { (start + i - 1) % 64 } else { start };
            if read {
                rx[i] = self.regs[r];
            } else if (0x1d..=0x39).contains(&r) {
                self.regs[r] = tx[i];
            }
        }
        rx
    }
}

/// What a device in SPI mode 0/3 returns to a master sampling in mode 1/2: every bit one
/// clock edge late.
pub fn wrong_edge(rx: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rx.len());
    let mut carry = 1u8; // MISO idles high
    for b in rx {
        out.push((b >> 1) | (carry << 7));
        carry = b & 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp102_temperature_and_pointer() {
        let now = Instant::now();
        let mut t = Tmp102::new(25.0);
        assert_eq!(t.read(now, 2), [0x19, 0x00]);
        t.set("temp", -10.0);
        assert_eq!(t.read(now, 2), [0xf6, 0x00]);
        t.write(now, &[1]).unwrap();
        assert_eq!(t.read(now, 2), [0x60, 0xa0]);
        t.write(now, &[2, 0x12, 0x34]).unwrap();
        t.write(now, &[2]).unwrap();
        assert_eq!(t.read(now, 2), [0x12, 0x34]);
        assert!(t.write(now, &[9]).is_err());
    }

    #[test]
    fn eeprom_pages_wrap_and_it_is_busy_while_writing() {
        let now = Instant::now();
        let mut e = Eeprom::c02(Duration::from_millis(5));
        e.write(now, &[0x06, 1, 2, 3]).unwrap();
        assert!(!e.acks(now));
        assert!(e.acks(now + Duration::from_millis(5)));
        e.write(now, &[0x00]).unwrap();
        // 0x06, 0x07 then wraps to 0x00 of the same page.
        assert_eq!(e.read(now, 8), [3, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2]);
        let mut big = Eeprom::c32(Duration::ZERO);
        big.write(now, &[0x01, 0x00, 0xaa]).unwrap();
        big.write(now, &[0x01, 0x00]).unwrap();
        assert_eq!(big.read(now, 2), [0xaa, 0xff]);
    }

    #[test]
    fn ina226_scales_with_its_calibration() {
        let now = Instant::now();
        let mut ina = Ina::ina226(5.0, 0.5);
        ina.write(now, &[0x02]).unwrap();
        assert_eq!(
            u16::from_be_bytes(ina.read(now, 2).try_into().unwrap()),
            4000
        );
        ina.write(now, &[0x04]).unwrap();
        assert_eq!(
            u16::from_be_bytes(ina.read(now, 2).try_into().unwrap()),
            5000
        );
        ina.write(now, &[0x05, 0, 0]).unwrap();
        ina.write(now, &[0x04]).unwrap();
        assert_eq!(ina.read(now, 2), [0, 0]);
        let mut ina260 = Ina::ina260(12.0, -0.25);
        ina260.write(now, &[0x01]).unwrap();
        assert_eq!(
            i16::from_be_bytes(ina260.read(now, 2).try_into().unwrap()),
            -200
        );
    }

    #[test]
    fn nor_flash_needs_write_enable() {
        let mut f = NorFlash::new();
        assert_eq!(f.transfer(&[0x9f, 0, 0, 0]), [0xff, 0xef, 0x40, 0x18]);
        f.transfer(&[0x02, 0, 0, 0x10, 0x55]);
        assert_eq!(f.transfer(&[0x03, 0, 0, 0x10, 0]), [0xff; 5]);
        f.transfer(&[0x06]);
        assert_eq!(f.transfer(&[0x05, 0]), [0xff, 0x02]);
        f.transfer(&[0x02, 0, 0, 0x10, 0x55, 0x0f]);
        assert_eq!(f.transfer(&[0x05, 0]), [0xff, 0x00]);
        assert_eq!(
            f.transfer(&[0x03, 0, 0, 0x10, 0, 0]),
            [0xff, 0xff, 0xff, 0xff, 0x55, 0x0f]
        );
    }

    #[test]
    fn register_sensor_and_wrong_mode() {
        let mut s = RegisterSensor::new();
        assert_eq!(s.transfer(&[0x80, 0]), [0, 0xe5]);
        s.transfer(&[0x2d, 0x08]);
        assert_eq!(s.transfer(&[0xc0 | 0x2c, 0, 0]), [0, 0x0a, 0x08]);
        assert_eq!(wrong_edge(&[0x00, 0xe5]), [0x80, 0x72]);
    }
}
