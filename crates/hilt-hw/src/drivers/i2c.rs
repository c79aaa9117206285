//! `i2c`: an I2C bus of a node — `/dev/i2c-<bus>` through i2c-dev, or with the hilt
//! extension `sim: host:port` the simulated bus of a `hilt sim bus`.
//!
//! Opening checks the device node exists and opens it (or connects to the simulator);
//! nothing is sent to any device until a step runs.

use hilt_model::bench::Transport;

use super::{OpenedTransport, Problem, TransportDriver};
use crate::i2c::linux::{LinuxI2c, device_path};
use crate::i2c::{I2cBus, I2cError};
use crate::simbus::{SimI2c, sim_address};
use crate::{HwError, ResourceKind};

pub struct I2c;

/// Opens bus `bus` (or the simulated one at `sim`) with `timeout_ms` per transfer; shared
/// with `i2c_power_monitor`.
pub(crate) fn open_bus(
    bus: u32,
    sim: Option<&str>,
    timeout_ms: u64,
    kind: ResourceKind,
) -> Result<Box<dyn I2cBus>, HwError> {
    let (what, path) = match sim {
        Some(addr) => ("simulated I2C bus", addr.to_string()),
        None => ("I2C bus", device_path(bus)),
    };
    let opened: Result<Box<dyn I2cBus>, I2cError> = match sim {
        Some(addr) => SimI2c::open(addr, timeout_ms).map(|b| Box::new(b) as Box<dyn I2cBus>),
        None => LinuxI2c::open(&path).map(|b| Box::new(b) as Box<dyn I2cBus>),
    };
    opened.map_err(|e| HwError::open(kind, what, &path, e))
}

impl TransportDriver for I2c {
    fn tag(&self) -> &'static str {
        "i2c"
    }

    fn check(&self, t: &Transport) -> Vec<Problem> {
        let Transport::I2c { sim: Some(sim), .. } = t else {
            return Vec::new();
        };
        match sim_address(sim) {
            Ok(_) => Vec::new(),
            Err(m) => vec![Problem::new("sim", m).with_help(
                "start one with `hilt sim bus --listen 127.0.0.1:0` and copy the address it prints",
            )],
        }
    }

    fn open(&self, _node: &str, _name: &str, t: &Transport) -> Result<OpenedTransport, HwError> {
        let Transport::I2c {
            bus,
            timeout_ms,
            sim,
        } = t
        else {
            return Err(HwError::unsupported(
                ResourceKind::I2c,
                format!("driver `i2c` cannot use `{}` parameters", t.backend()),
            ));
        };
        open_bus(*bus, sim.as_deref(), *timeout_ms, ResourceKind::I2c).map(OpenedTransport::I2c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sim: Option<&str>) -> Transport {
        Transport::I2c {
            bus: 250,
            timeout_ms: 100,
            sim: sim.map(str::to_string),
        }
    }

    #[test]
    fn checks_the_sim_address() {
        assert!(I2c.check(&t(None)).is_empty());
        assert!(I2c.check(&t(Some("127.0.0.1:4100"))).is_empty());
        let p = I2c.check(&t(Some("nowhere")));
        assert_eq!(p[0].field, "sim");
    }

    #[test]
    fn a_missing_bus_cannot_be_opened() {
        let Err(e) = I2c.open("dut", "sensors", &t(None)) else {
            panic!("no /dev/i2c-250 here");
        };
        assert!(matches!(
            e,
            HwError::Open {
                kind: ResourceKind::I2c,
                ..
            }
        ));
        assert!(e.to_string().contains("/dev/i2c-250"), "{e}");
    }
}
