//! `i2c_power_monitor`: a board-mounted power monitor on an I2C bus (`chip`, `bus`,
//! `address`, `quantity`), read register by register like BenchCI: big-endian words,
//! INA226 bus voltage 1.25 mV/bit, current and power scaled by `current_lsb_a` /
//! `power_lsb_w` (power defaults to 25 × the current LSB), INA260 with its fixed scales
//! (1.25 mA, 1.25 mV, 10 mW). hilt also decodes the INA228 (24-bit registers: 195.3125 µV
//! per bit, current × `current_lsb_a`, power × 3.2 × `current_lsb_a`), which BenchCI
//! accepts but does not read. `generic_i2c_power_monitor` has no known register map and is
//! refused when the bench is checked.
//!
//! The bus is `/dev/i2c-<bus>`, or with the hilt extension `sim: host:port` the simulated
//! bus of a `hilt sim bus`. Nothing is written to the monitor: its calibration is the
//! board's (firmware or boot script), as in BenchCI.

use hilt_model::bench::ResourceDriver as Params;

use super::{Opened, Problem, ResourceDriver, resource_lock, wrong_params};
use crate::i2c::{I2cBus, I2cError, read_register};
use crate::locks::LockSpec;
use crate::measurement::{Instrument, Reading};
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Measurement;

pub struct I2cPowerMonitor;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Quantity {
    Voltage,
    Current,
    Power,
}

/// How to read one quantity: register, width in bytes, and the value of a raw count.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plan {
    register: u8,
    bytes: u8,
    signed: bool,
    /// Bits to drop on the right (INA228's 24-bit registers hold 20 bits).
    shift: u8,
    scale: f64,
}

fn quantity(q: &str) -> Option<Quantity> {
    match q {
        "voltage" => Some(Quantity::Voltage),
        "current" => Some(Quantity::Current),
        "power" => Some(Quantity::Power),
        _ => None,
    }
}

/// The register plan for a chip and quantity, or why it cannot be read.
fn plan(
    chip: &str,
    q: Quantity,
    current_lsb: Option<f64>,
    power_lsb: Option<f64>,
) -> Result<Plan, Problem> {
    let word = |register, signed, scale| Plan {
        register,
        bytes: 2,
        signed,
        shift: 0,
        scale,
    };
    let need_current = |what: &str| {
        Problem::new(
            "current_lsb_a",
            format!(
                "{chip} {what} needs `current_lsb_a`: its scaling depends on the shunt and the calibration the board programs"
            ),
        )
    };
    match (chip, q) {
        ("ina226", Quantity::Voltage) => Ok(word(0x02, false, 0.00125)),
        ("ina226", Quantity::Current) => Ok(word(
            0x04,
            true,
            current_lsb.ok_or_else(|| need_current("current"))?,
        )),
        ("ina226", Quantity::Power) => {
            let lsb = power_lsb.or(current_lsb.map(|c| 25.0 * c)).ok_or_else(|| {
                Problem::new(
                    "power_lsb_w",
                    "ina226 power needs `power_lsb_w` or `current_lsb_a`",
                )
            })?;
            Ok(word(0x03, false, lsb))
        }
        ("ina260", Quantity::Current) => Ok(word(0x01, true, 0.00125)),
        ("ina260", Quantity::Voltage) => Ok(word(0x02, false, 0.00125)),
        ("ina260", Quantity::Power) => Ok(word(0x03, false, 0.01)),
        ("ina228", q) => {
            let (register, signed, scale) = match q {
                Quantity::Voltage => (0x05, false, 195.3125e-6),
                Quantity::Current => (
                    0x07,
                    true,
                    current_lsb.ok_or_else(|| need_current("current"))?,
                ),
                Quantity::Power => (
                    0x08,
                    false,
                    power_lsb
                        .or(current_lsb.map(|c| 3.2 * c))
                        .ok_or_else(|| need_current("power"))?,
                ),
            };
            // VBUS and CURRENT hold 20 bits in bits 23..4; POWER uses all 24.
            let shift = if q == Quantity::Power { 0 } else { 4 };
            Ok(Plan {
                register,
                bytes: 3,
                signed,
                shift,
                scale,
            })
        }
        ("generic_i2c_power_monitor", _) => Err(Problem::new(
            "chip",
            "`generic_i2c_power_monitor` has no known register map, so it cannot be read",
        )
        .with_help(
            "use `ina226`, `ina228` or `ina260`, or a script_measurement that reads the chip",
        )),
        (other, _) => Err(Problem::new("chip", format!("unknown chip `{other}`"))
            .with_help("chips: ina226, ina228, ina260, generic_i2c_power_monitor")),
    }
}

/// The value of raw register bytes under a plan.
fn decode(p: &Plan, raw: &[u8]) -> f64 {
    let bits = u32::from(p.bytes) * 8;
    let mut v: u32 = raw.iter().fold(0, |acc, b| (acc << 8) | u32::from(*b));
    let mut width = bits;
    if p.shift > 0 {
        v >>= p.shift;
        width -= u32::from(p.shift);
    }
    let count = if p.signed && v & (1 << (width - 1)) != 0 {
        i64::from(v) - (1i64 << width)
    } else {
        i64::from(v)
    };
    count as f64 * p.scale
}

struct Monitor {
    bus: Box<dyn I2cBus>,
    address: u32,
    plan: Plan,
    quantity: String,
    unit: String,
    chip: String,
}

impl Instrument for Monitor {
    fn read(&mut self) -> Result<Reading, HwError> {
        let raw = read_register(
            self.bus.as_mut(),
            self.address,
            u32::from(self.plan.register),
            u32::from(self.plan.bytes),
        )
        .map_err(|e: I2cError| {
            HwError::io(
                KIND,
                "I2C power monitor",
                format!(
                    "{} at address 0x{:02x} on {}, register 0x{:02x}: {e}",
                    self.chip,
                    self.address,
                    self.bus.describe(),
                    self.plan.register
                ),
            )
        })?;
        Ok(Reading {
            value: decode(&self.plan, &raw),
            unit: Some(self.unit.clone()),
            quantity: self.quantity.clone(),
            backend: "i2c_power_monitor".into(),
            address: Some(format!("0x{:02x}", self.address)),
            query: Some(format!("register 0x{:02x}", self.plan.register)),
            raw_response: Some(hex::encode(&raw)),
        })
    }
}

fn default_unit(q: Quantity) -> &'static str {
    match q {
        Quantity::Voltage => "V",
        Quantity::Current => "A",
        Quantity::Power => "W",
    }
}

impl ResourceDriver for I2cPowerMonitor {
    fn tag(&self) -> &'static str {
        "i2c_power_monitor"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, p: &Params) -> Vec<Problem> {
        let Params::I2cPowerMonitor {
            chip,
            quantity: q,
            current_lsb_a,
            power_lsb_w,
            timeout_ms,
            sim,
            ..
        } = p
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // hilt-model reports a bad quantity; the chip's needs only matter for a good one.
        if let Some(q) = quantity(q)
            && let Err(problem) = plan(chip, q, *current_lsb_a, *power_lsb_w)
        {
            out.push(problem);
        }
        for (field, v) in [
            ("current_lsb_a", current_lsb_a),
            ("power_lsb_w", power_lsb_w),
        ] {
            if v.is_some_and(|v| !v.is_finite() || v <= 0.0) {
                out.push(Problem::new(field, "must be a positive number"));
            }
        }
        if *timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        if let Some(Err(m)) = sim.as_deref().map(crate::simbus::sim_address) {
            out.push(Problem::new("sim", m));
        }
        out
    }

    fn lock_specs(&self, resource: &str, p: &Params) -> Vec<LockSpec> {
        let Params::I2cPowerMonitor { bus, address, .. } = p else {
            return Vec::new();
        };
        vec![resource_lock(
            resource,
            p,
            format!("i2c:{bus}:{address}"),
            format!("I2C bus {bus} address {address}"),
            "measurement_i2c",
        )]
    }

    fn open(&self, _resource: &str, p: &Params) -> Result<Opened, HwError> {
        let Params::I2cPowerMonitor {
            chip,
            bus,
            address,
            quantity: q,
            unit,
            timeout_ms,
            current_lsb_a,
            power_lsb_w,
            sim,
        } = p
        else {
            return Err(wrong_params(KIND, self.tag(), p));
        };
        let qty = quantity(q).ok_or_else(|| {
            HwError::unsupported(
                KIND,
                format!("quantity `{q}` is not voltage, current or power"),
            )
        })?;
        let plan = plan(chip, qty, *current_lsb_a, *power_lsb_w)
            .map_err(|problem| HwError::unsupported(KIND, problem.message))?;
        let i2c = super::i2c::open_bus(*bus, sim.as_deref(), *timeout_ms, KIND)?;
        Ok(Opened::Instrument(Box::new(Monitor {
            bus: i2c,
            address: *address,
            plan,
            quantity: q.clone(),
            unit: unit
                .clone()
                .unwrap_or_else(|| default_unit(qty).to_string()),
            chip: chip.clone(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i2c::fake::FakeBus;

    fn monitor(chip: &str, q: Quantity, lsb: Option<f64>, regs: Vec<u8>) -> Monitor {
        let mut bus = FakeBus::default();
        bus.devices.insert(0x40, regs);
        Monitor {
            bus: Box::new(bus),
            address: 0x40,
            plan: plan(chip, q, lsb, None).unwrap(),
            quantity: "x".into(),
            unit: "u".into(),
            chip: chip.into(),
        }
    }

    #[test]
    fn ina226_words_are_scaled_like_benchci() {
        // The fake bus is byte-addressed: each register's word sits at its number.
        let v = monitor("ina226", Quantity::Voltage, None, vec![0, 0, 0x0f, 0xa0])
            .read()
            .unwrap();
        assert!((v.value - 5.0).abs() < 1e-9, "{v:?}");
        assert_eq!(v.raw_response.as_deref(), Some("0fa0"));
        assert_eq!(v.query.as_deref(), Some("register 0x02"));
        let i = monitor(
            "ina226",
            Quantity::Current,
            Some(0.001),
            vec![0, 0, 0, 0, 0xfe, 0x0c],
        );
        let i = {
            let mut i = i;
            i.read().unwrap()
        };
        assert!((i.value - -0.5).abs() < 1e-9, "{i:?}");
        let p = monitor(
            "ina226",
            Quantity::Power,
            Some(0.001),
            vec![0, 0, 0, 0, 0x14],
        );
        let p = {
            let mut p = p;
            p.read().unwrap()
        };
        assert!((p.value - 0.5).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn ina260_and_ina228_scales() {
        let p = plan("ina260", Quantity::Current, None, None).unwrap();
        assert!((decode(&p, &[0xff, 0xfe]) - -0.0025).abs() < 1e-12);
        let v = plan("ina228", Quantity::Voltage, None, None).unwrap();
        // 5 V = 25600 counts of 195.3125 µV, in bits 23..4.
        let raw = (25600u32 << 4).to_be_bytes();
        assert!((decode(&v, &raw[1..]) - 5.0).abs() < 1e-9);
        let c = plan("ina228", Quantity::Current, Some(0.0001), None).unwrap();
        let neg = ((1u32 << 20) - 1000) << 4;
        assert!((decode(&c, &neg.to_be_bytes()[1..]) - -0.1).abs() < 1e-9);
        let pw = plan("ina228", Quantity::Power, Some(0.0001), None).unwrap();
        assert!((decode(&pw, &[0, 0x03, 0xe8]) - 0.32).abs() < 1e-9);
    }

    #[test]
    fn what_cannot_be_read_is_a_located_problem() {
        assert_eq!(
            plan("ina226", Quantity::Current, None, None)
                .unwrap_err()
                .field,
            "current_lsb_a"
        );
        assert_eq!(
            plan("ina226", Quantity::Power, None, None)
                .unwrap_err()
                .field,
            "power_lsb_w"
        );
        assert_eq!(
            plan("generic_i2c_power_monitor", Quantity::Voltage, None, None)
                .unwrap_err()
                .field,
            "chip"
        );
        assert_eq!(
            plan("ina999", Quantity::Voltage, None, None)
                .unwrap_err()
                .field,
            "chip"
        );
    }

    #[test]
    fn a_silent_monitor_is_a_measurement_error_naming_it() {
        let mut m = monitor("ina260", Quantity::Voltage, None, vec![]);
        m.address = 0x45;
        let e = m.read().unwrap_err();
        assert!(matches!(
            e,
            HwError::Io {
                kind: ResourceKind::Measurement,
                ..
            }
        ));
        assert!(
            e.to_string().contains("0x45") && e.to_string().contains("acknowledge"),
            "{e}"
        );
    }
}
