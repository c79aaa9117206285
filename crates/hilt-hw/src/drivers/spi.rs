//! `spi`: one chip select of a node's SPI bus — `/dev/spidev<bus>.<device>` through
//! spidev, or with the hilt extension `sim: host:port` chip select `device` of a `hilt sim
//! bus`. Mode, word size and clock are applied when the transport opens.

use hilt_model::bench::Transport;

use super::{OpenedTransport, Problem, TransportDriver};
use crate::simbus::{SimSpi, sim_address};
use crate::spi::linux::{LinuxSpi, device_path};
use crate::spi::{SpiConfig, SpiDevice, SpiError};
use crate::{HwError, ResourceKind};

pub struct Spi;

/// The settings of an `spi` transport (validation keeps them in range).
pub fn config(t: &Transport) -> Option<SpiConfig> {
    match t {
        Transport::Spi {
            max_speed_hz,
            mode,
            bits_per_word,
            ..
        } => Some(SpiConfig {
            mode: u8::try_from(*mode).unwrap_or(u8::MAX),
            bits_per_word: u8::try_from(*bits_per_word).unwrap_or(u8::MAX),
            max_speed_hz: *max_speed_hz,
        }),
        _ => None,
    }
}

impl TransportDriver for Spi {
    fn tag(&self) -> &'static str {
        "spi"
    }

    fn check(&self, t: &Transport) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Transport::Spi {
            sim, max_speed_hz, ..
        } = t
        {
            if *max_speed_hz == 0 {
                out.push(Problem::new("max_speed_hz", "must be greater than 0"));
            }
            if let Some(Err(m)) = sim.as_deref().map(sim_address) {
                out.push(Problem::new("sim", m).with_help(
                    "start one with `hilt sim bus --listen 127.0.0.1:0` and copy the address it prints",
                ));
            }
        }
        out
    }

    fn open(&self, _node: &str, _name: &str, t: &Transport) -> Result<OpenedTransport, HwError> {
        let (
            Transport::Spi {
                bus, device, sim, ..
            },
            Some(cfg),
        ) = (t, config(t))
        else {
            return Err(HwError::unsupported(
                ResourceKind::Spi,
                format!("driver `spi` cannot use `{}` parameters", t.backend()),
            ));
        };
        let (what, path) = match sim {
            Some(addr) => ("simulated SPI device", format!("{addr} cs {device}")),
            None => ("SPI device", device_path(*bus, *device)),
        };
        // BenchCI has no SPI timeout; the simulator's requests wait one second at most.
        let opened: Result<Box<dyn SpiDevice>, SpiError> = match sim {
            Some(addr) => {
                SimSpi::open(addr, *device, cfg, 1000).map(|d| Box::new(d) as Box<dyn SpiDevice>)
            }
            None => LinuxSpi::open(&path, &cfg).map(|d| Box::new(d) as Box<dyn SpiDevice>),
        };
        opened
            .map(|dev| OpenedTransport::Spi(dev, cfg))
            .map_err(|e| HwError::open(ResourceKind::Spi, what, &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sim: Option<&str>, speed: u32) -> Transport {
        Transport::Spi {
            bus: 250,
            device: 0,
            max_speed_hz: speed,
            mode: 3,
            bits_per_word: 16,
            sim: sim.map(str::to_string),
        }
    }

    #[test]
    fn checks_and_settings() {
        assert!(Spi.check(&t(None, 1)).is_empty());
        let fields: Vec<String> = Spi
            .check(&t(Some("x"), 0))
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["max_speed_hz", "sim"]);
        let c = config(&t(None, 500)).unwrap();
        assert_eq!((c.mode, c.bits_per_word, c.max_speed_hz), (3, 16, 500));
    }

    #[test]
    fn a_missing_device_cannot_be_opened() {
        let Err(e) = Spi.open("dut", "flash", &t(None, 1)) else {
            panic!("no /dev/spidev250.0 here");
        };
        assert!(matches!(
            e,
            HwError::Open {
                kind: ResourceKind::Spi,
                ..
            }
        ));
        assert!(e.to_string().contains("/dev/spidev250.0"), "{e}");
    }
}
