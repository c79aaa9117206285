//! The one error type hardware drivers return. Every error names the kind of resource it
//! came from, so the runner classifies it with an exhaustive match on typed values (an
//! open failure is always bench infrastructure).

/// The kind of thing a driver drives; decides the failure category of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// A serial transport (UART).
    Serial,
    /// GPIO lines of a node.
    Gpio,
    /// A power switch (relay, controllable supply).
    Power,
    /// A measurement instrument.
    Measurement,
    /// A Modbus transport (RTU serial line or TCP connection).
    Modbus,
    /// An I2C transport (a bus: `/dev/i2c-<n>` or a simulated one).
    I2c,
    /// An SPI transport (a chip select: `/dev/spidev<b>.<d>` or a simulated one).
    Spi,
    /// A CAN transport (slcan adapter or SocketCAN interface).
    Can,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Serial => "serial",
            ResourceKind::Gpio => "gpio",
            ResourceKind::Power => "power",
            ResourceKind::Measurement => "measurement",
            ResourceKind::Modbus => "modbus",
            ResourceKind::I2c => "i2c",
            ResourceKind::Spi => "spi",
            ResourceKind::Can => "can",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// The resource could not be opened or started (port missing, busy, no permission).
    #[error("cannot open {what} {path}: {reason}")]
    Open {
        kind: ResourceKind,
        what: &'static str,
        path: String,
        reason: String,
    },
    /// An opened resource failed while in use.
    #[error("{what} failed: {reason}")]
    Io {
        kind: ResourceKind,
        what: &'static str,
        reason: String,
    },
    /// The resource cannot do what was asked (e.g. no such outlet).
    #[error("{reason}")]
    Unsupported { kind: ResourceKind, reason: String },
    /// The resource cannot report its state (a relay without readback).
    #[error("{reason}")]
    NoReadback { kind: ResourceKind, reason: String },
    #[error("cancelled")]
    Cancelled,
}

impl HwError {
    pub fn open(
        kind: ResourceKind,
        what: &'static str,
        path: impl Into<String>,
        reason: impl std::fmt::Display,
    ) -> HwError {
        HwError::Open {
            kind,
            what,
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    pub fn io(kind: ResourceKind, what: &'static str, e: impl std::fmt::Display) -> HwError {
        HwError::Io {
            kind,
            what,
            reason: e.to_string(),
        }
    }

    pub fn unsupported(kind: ResourceKind, reason: impl Into<String>) -> HwError {
        HwError::Unsupported {
            kind,
            reason: reason.into(),
        }
    }

    /// The kind of resource the error came from (`None` for a cancellation).
    pub fn kind(&self) -> Option<ResourceKind> {
        match self {
            HwError::Open { kind, .. }
            | HwError::Io { kind, .. }
            | HwError::Unsupported { kind, .. }
            | HwError::NoReadback { kind, .. } => Some(*kind),
            HwError::Cancelled => None,
        }
    }
}
