//! Transports attached to a node (`nodes.<n>.transports.<t>`), discriminated by `backend`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum Transport {
    Uart {
        port: String,
        #[serde(default = "defaults::u32_::<115200>")]
        baud: u32,
        #[serde(default = "defaults::u32_::<8>")]
        bytesize: u32,
        #[serde(default)]
        parity: Parity,
        #[serde(default = "defaults::f64_one")]
        stopbits: f64,
        #[serde(default = "defaults::u64_::<100>")]
        timeout_ms: u64,
    },
    ModbusRtu {
        port: String,
        #[serde(default = "defaults::u32_::<9600>")]
        baud: u32,
        #[serde(default = "defaults::u64_::<500>")]
        timeout_ms: u64,
        #[serde(default = "defaults::u32_::<1>")]
        default_slave: u32,
    },
    ModbusTcp {
        host: String,
        #[serde(default = "defaults::u32_::<502>")]
        port: u32,
        #[serde(default = "defaults::u64_::<1000>")]
        timeout_ms: u64,
        #[serde(default = "defaults::u32_::<1>")]
        default_slave: u32,
    },
    Can {
        interface: String,
        bitrate: u64,
        #[serde(default = "defaults::u64_::<500>")]
        timeout_ms: u64,
        #[serde(default)]
        fd: bool,
        #[serde(default)]
        data_bitrate: Option<u64>,
        #[serde(default)]
        filters: Vec<CanFilter>,
    },
    /// hilt extension: a CAN bus reached through a serial-line CAN adapter speaking the
    /// slcan (Lawicell) ASCII protocol: CANable, USBtin, CANtact and most USB-CAN dongles.
    Slcan {
        /// The adapter's serial port, e.g. `/dev/ttyACM0`.
        port: String,
        /// Serial line speed (ignored by USB CDC adapters).
        #[serde(default = "defaults::u32_::<115200>")]
        baud: u32,
        /// CAN bit rate: 10000, 20000, 50000, 100000, 125000, 250000, 500000, 750000,
        /// 1000000 or 83300 (`S0`..`S9`).
        bitrate: u64,
        #[serde(default = "defaults::u64_::<500>")]
        timeout_ms: u64,
        /// CAN FD (adapters with the FD extension: `d`/`D`/`b`/`B` frames).
        #[serde(default)]
        fd: bool,
        /// CAN FD data-phase bit rate: 2000000 or 5000000 (`Y2`, `Y5`); only with `fd`.
        #[serde(default)]
        data_bitrate: Option<u64>,
        /// Receive filters, applied to frames the adapter delivers.
        #[serde(default)]
        filters: Vec<CanFilter>,
    },
    I2c {
        bus: u32,
        #[serde(default = "defaults::u64_::<1000>")]
        timeout_ms: u64,
        /// hilt extension: `host:port` of a `hilt sim bus` to use instead of
        /// `/dev/i2c-<bus>` (a simulated I2C bus with its devices).
        #[serde(default)]
        sim: Option<String>,
    },
    Spi {
        bus: u32,
        device: u32,
        #[serde(default = "defaults::u32_::<1000000>")]
        max_speed_hz: u32,
        #[serde(default)]
        mode: u32,
        #[serde(default = "defaults::u32_::<8>")]
        bits_per_word: u32,
        /// hilt extension: `host:port` of a `hilt sim bus` to use instead of
        /// `/dev/spidev<bus>.<device>` (`device` selects the simulated chip select).
        #[serde(default)]
        sim: Option<String>,
    },
}

/// hilt extension: a UART `port` of the form `qemu:<resource>` is the UART of an emulated
/// board (a `qemu` resource), reached through the pseudo-terminal the board provides.
pub const QEMU_PORT_PREFIX: &str = "qemu:";

impl Transport {
    /// The `qemu` resource whose UART this is (`port: "qemu:<resource>"`).
    pub fn qemu_board(&self) -> Option<&str> {
        match self {
            Transport::Uart { port, .. } => port.strip_prefix(QEMU_PORT_PREFIX),
            _ => None,
        }
    }

    /// The `backend` discriminator as written in YAML.
    pub fn backend(&self) -> &'static str {
        match self {
            Transport::Uart { .. } => "uart",
            Transport::ModbusRtu { .. } => "modbus_rtu",
            Transport::ModbusTcp { .. } => "modbus_tcp",
            Transport::Can { .. } => "can",
            Transport::Slcan { .. } => "slcan",
            Transport::I2c { .. } => "i2c",
            Transport::Spi { .. } => "spi",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Parity {
    #[default]
    N,
    E,
    O,
    M,
    S,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CanFilter {
    pub id: u32,
    pub mask: u32,
    #[serde(default)]
    pub extended: bool,
}
