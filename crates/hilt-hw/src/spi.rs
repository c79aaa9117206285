//! SPI: the [`SpiDevice`] trait (one full-duplex transfer with chip select held), its
//! settings and errors, and the checks every transfer gets before it reaches a device.
//!
//! Two devices implement it: [`linux::LinuxSpi`] (the kernel's spidev,
//! `/dev/spidev<bus>.<device>`, one `SPI_IOC_MESSAGE`) and [`crate::simbus::SimSpi`] (a
//! chip select of a `hilt sim bus`). SPI has no acknowledge: a device that is absent reads
//! back as whatever the MISO line floats to, so only a missing device node or a broken
//! link is an error here; what the bytes mean is the step's business.

pub mod linux;

/// The most bytes one transfer moves (spidev's default buffer size).
pub const MAX_TRANSFER: usize = 4096;

/// How the bus is clocked, from the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiConfig {
    /// 0..3 (CPOL, CPHA).
    pub mode: u8,
    /// 4..32.
    pub bits_per_word: u8,
    pub max_speed_hz: u32,
}

impl SpiConfig {
    /// Bytes per word: a 9..16-bit word travels as two bytes, 17..32 as four (spidev's
    /// layout).
    pub fn word_bytes(&self) -> usize {
        match self.bits_per_word {
            0..=8 => 1,
            9..=16 => 2,
            _ => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiError {
    /// The device node (or simulated chip select) does not exist.
    #[error("{0}")]
    NoDevice(String),
    /// The transfer did not complete in time.
    #[error("the SPI transfer did not complete within {ms} ms")]
    Timeout { ms: u64 },
    /// The device node or the link to it failed.
    #[error("{0}")]
    Io(String),
    /// The transfer cannot be made with these settings (length, word size, mode).
    #[error("{0}")]
    Unsupported(String),
}

/// One SPI device (a chip select on a bus).
pub trait SpiDevice: Send {
    /// `/dev/spidev0.0`, `sim 127.0.0.1:4000 cs 0`: for logs and messages.
    fn describe(&self) -> String;
    /// Clocks `tx` out and returns the bytes clocked in, as many as were sent.
    fn transfer(&mut self, tx: &[u8]) -> Result<Vec<u8>, SpiError>;
}

/// Checks a transfer against the settings: 1..4096 bytes, a whole number of words.
pub fn check_transfer(cfg: &SpiConfig, tx: &[u8]) -> Result<(), SpiError> {
    if tx.is_empty() || tx.len() > MAX_TRANSFER {
        return Err(SpiError::Unsupported(format!(
            "an SPI transfer moves 1..{MAX_TRANSFER} bytes, not {}",
            tx.len()
        )));
    }
    let w = cfg.word_bytes();
    if !tx.len().is_multiple_of(w) {
        return Err(SpiError::Unsupported(format!(
            "{} bytes are not a whole number of {}-bit words ({w} bytes each)",
            tx.len(),
            cfg.bits_per_word
        )));
    }
    Ok(())
}

/// One checked transfer; a device answering with another length is an I/O error.
pub fn transfer(dev: &mut dyn SpiDevice, cfg: &SpiConfig, tx: &[u8]) -> Result<Vec<u8>, SpiError> {
    check_transfer(cfg, tx)?;
    let rx = dev.transfer(tx)?;
    if rx.len() != tx.len() {
        return Err(SpiError::Io(format!(
            "{}: sent {} bytes, received {}",
            dev.describe(),
            tx.len(),
            rx.len()
        )));
    }
    Ok(rx)
}

/// Space-separated upper-case hex, as BenchCI logs SPI bytes (`9F 00 00`).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(usize);
    impl SpiDevice for Echo {
        fn describe(&self) -> String {
            "echo".into()
        }
        fn transfer(&mut self, tx: &[u8]) -> Result<Vec<u8>, SpiError> {
            Ok(tx.iter().take(self.0).map(|b| !b).collect())
        }
    }

    const CFG8: SpiConfig = SpiConfig {
        mode: 0,
        bits_per_word: 8,
        max_speed_hz: 1_000_000,
    };

    #[test]
    fn word_sizes_and_lengths() {
        let cfg16 = SpiConfig {
            bits_per_word: 16,
            ..CFG8
        };
        let cfg24 = SpiConfig {
            bits_per_word: 24,
            ..CFG8
        };
        assert_eq!(
            (CFG8.word_bytes(), cfg16.word_bytes(), cfg24.word_bytes()),
            (1, 2, 4)
        );
        assert!(check_transfer(&CFG8, &[1, 2, 3]).is_ok());
        assert!(
            matches!(check_transfer(&cfg16, &[1, 2, 3]), Err(SpiError::Unsupported(m)) if m.contains("16-bit"))
        );
        assert!(check_transfer(&cfg24, &[0; 8]).is_ok());
        assert!(matches!(
            check_transfer(&CFG8, &[]),
            Err(SpiError::Unsupported(_))
        ));
        assert!(matches!(
            check_transfer(&CFG8, &[0; 4097]),
            Err(SpiError::Unsupported(_))
        ));
    }

    #[test]
    fn a_short_answer_is_an_io_error() {
        assert_eq!(
            transfer(&mut Echo(9), &CFG8, &[0x9f, 0]).unwrap(),
            [0x60, 0xff]
        );
        assert!(
            matches!(transfer(&mut Echo(1), &CFG8, &[0x9f, 0]), Err(SpiError::Io(m)) if m.contains("received 1"))
        );
    }

    #[test]
    fn hex_is_benchci_shaped() {
        assert_eq!(hex(&[0x9f, 0, 0xa]), "9F 00 0A");
        assert_eq!(hex(&[]), "");
    }
}
