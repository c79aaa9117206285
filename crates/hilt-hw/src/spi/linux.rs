//! The Linux spidev device (`/dev/spidev<bus>.<device>`), through the `spidev` crate:
//! mode, word size and clock set once at open, each transfer one `SPI_IOC_MESSAGE` with
//! chip select held. Only kernel calls are here; the checks around a transfer are in
//! [`super`] (the kernels hilt is built and tested on have no spidev device).

use std::path::Path;

use spidev::{SpiModeFlags, Spidev, SpidevOptions, SpidevTransfer};

use super::{SpiConfig, SpiDevice, SpiError};

/// The device node of chip select `device` on bus `bus`.
pub fn device_path(bus: u32, device: u32) -> String {
    format!("/dev/spidev{bus}.{device}")
}

pub struct LinuxSpi {
    path: String,
    dev: Spidev,
}

/// The spidev mode flags of SPI mode 0..3.
pub fn mode_flags(mode: u8) -> Result<SpiModeFlags, SpiError> {
    Ok(match mode {
        0 => SpiModeFlags::SPI_MODE_0,
        1 => SpiModeFlags::SPI_MODE_1,
        2 => SpiModeFlags::SPI_MODE_2,
        3 => SpiModeFlags::SPI_MODE_3,
        m => return Err(SpiError::Unsupported(format!("SPI mode {m} is not 0..3"))),
    })
}

impl LinuxSpi {
    /// Opens and configures the device; a missing node names the fix.
    pub fn open(path: &str, cfg: &SpiConfig) -> Result<LinuxSpi, SpiError> {
        if !Path::new(path).exists() {
            return Err(SpiError::NoDevice(format!(
                "no SPI device at {path}: the controller is disabled or no spidev is bound to \
                 that chip select (enable SPI in the device tree, e.g. `dtparam=spi=on`)"
            )));
        }
        let mode = mode_flags(cfg.mode)?;
        let mut dev =
            Spidev::open(path).map_err(|e| SpiError::Io(format!("cannot open {path}: {e}")))?;
        dev.configure(
            &SpidevOptions::new()
                .bits_per_word(cfg.bits_per_word)
                .max_speed_hz(cfg.max_speed_hz)
                .mode(mode)
                .build(),
        )
        .map_err(|e| {
            SpiError::Unsupported(format!(
                "{path} refused mode {} / {} bits per word / {} Hz: {e}",
                cfg.mode, cfg.bits_per_word, cfg.max_speed_hz
            ))
        })?;
        Ok(LinuxSpi {
            path: path.to_string(),
            dev,
        })
    }
}

impl SpiDevice for LinuxSpi {
    fn describe(&self) -> String {
        self.path.clone()
    }

    fn transfer(&mut self, tx: &[u8]) -> Result<Vec<u8>, SpiError> {
        let mut rx = vec![0u8; tx.len()];
        let mut t = SpidevTransfer::read_write(tx, &mut rx);
        self.dev
            .transfer(&mut t)
            .map_err(|e| SpiError::Io(format!("{}: {e}", self.path)))?;
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_paths() {
        assert_eq!(mode_flags(3).unwrap(), SpiModeFlags::SPI_MODE_3);
        assert!(mode_flags(4).is_err());
        assert_eq!(device_path(0, 1), "/dev/spidev0.1");
    }

    #[test]
    fn a_missing_device_names_the_fix() {
        let cfg = SpiConfig {
            mode: 0,
            bits_per_word: 8,
            max_speed_hz: 1_000_000,
        };
        let Err(SpiError::NoDevice(m)) = LinuxSpi::open("/dev/spidev250.0", &cfg) else {
            panic!("a missing node must fail to open");
        };
        assert!(m.contains("/dev/spidev250.0") && m.contains("spi"), "{m}");
    }
}
