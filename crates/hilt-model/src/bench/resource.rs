//! Bench-level resources: power switching and measurement instruments.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Resource {
    /// `power_controller`, `relay_controller`, `power_supply`, `measurement`, …
    pub kind: String,
    pub driver: ResourceDriver,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResourceDriver {
    MockPower {
        #[serde(default = "default_outlets")]
        outlets: BTreeMap<String, bool>,
        #[serde(default)]
        on_settle_ms: u64,
        #[serde(default)]
        off_settle_ms: u64,
        /// hilt extension: control socket of a `hilt sim dut` whose power this switches.
        #[serde(default)]
        sim_control: Option<String>,
    },
    GpioPower {
        chip: String,
        outlets: BTreeMap<String, u32>,
        #[serde(default = "defaults::t")]
        active_high: bool,
        #[serde(default)]
        initial_state: Option<bool>,
        #[serde(default = "defaults::u64_::<1000>")]
        on_settle_ms: u64,
        #[serde(default = "defaults::u64_::<250>")]
        off_settle_ms: u64,
    },
    HttpRelay {
        outlets: BTreeMap<String, String>,
        on_url: String,
        off_url: String,
        #[serde(default)]
        get_url: Option<String>,
        #[serde(default = "default_get")]
        method: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default = "defaults::u64_::<2000>")]
        timeout_ms: u64,
        #[serde(default = "default_on_values")]
        on_values: Vec<String>,
        #[serde(default = "default_off_values")]
        off_values: Vec<String>,
        #[serde(default = "defaults::u64_::<1000>")]
        on_settle_ms: u64,
        #[serde(default = "defaults::u64_::<250>")]
        off_settle_ms: u64,
    },
    UsbRelaySerial {
        #[serde(default = "default_vendor")]
        vendor: String,
        #[serde(default = "default_model")]
        model: String,
        port: String,
        #[serde(default = "defaults::u32_::<9600>")]
        baud: u32,
        #[serde(default = "defaults::u64_::<500>")]
        timeout_ms: u64,
        outlets: BTreeMap<String, u32>,
        on_commands: BTreeMap<String, String>,
        off_commands: BTreeMap<String, String>,
        #[serde(default)]
        get_commands: BTreeMap<String, String>,
        #[serde(default = "default_on_resp")]
        on_response_values: Vec<String>,
        #[serde(default = "default_off_resp")]
        off_response_values: Vec<String>,
        #[serde(default = "defaults::u64_::<1000>")]
        on_settle_ms: u64,
        #[serde(default = "defaults::u64_::<250>")]
        off_settle_ms: u64,
    },
    /// hilt extension: an emulated microcontroller board (QEMU). Its one outlet is the
    /// emulator itself (power off = stop, on = start with the last flashed firmware); a
    /// node reaches its UART as `port: "qemu:<resource>"`, flashes it with
    /// `flash: {backend: qemu, board: <resource>}` and resets it with `reset: {method: qemu}`.
    Qemu {
        /// The QEMU machine (`-machine`); hilt's firmware targets `lm3s6965evb`.
        #[serde(default = "default_qemu_machine")]
        machine: String,
        /// The emulator executable, looked up on PATH.
        #[serde(default = "default_qemu_binary")]
        binary: String,
        /// Firmware (ELF) the board boots when the run starts; without it the board
        /// stays off until a `flash` step (or power on after one). Relative paths are
        /// resolved from the working directory.
        #[serde(default)]
        firmware: Option<String>,
        /// The outlet name `power_*` steps use.
        #[serde(default = "default_qemu_outlet")]
        outlet: String,
        /// More emulator arguments, appended as given (no shell).
        #[serde(default)]
        extra_args: Vec<String>,
        /// How long the emulator may take to connect its UART and monitor after starting.
        #[serde(default = "defaults::u64_::<10000>")]
        start_timeout_ms: u64,
        #[serde(default)]
        on_settle_ms: u64,
        #[serde(default)]
        off_settle_ms: u64,
    },
    /// Legacy placeholder; not a usable power controller.
    Gpio {
        #[serde(default)]
        chip: Option<String>,
    },
    /// Generic placeholder; not usable by steps.
    Scpi {
        #[serde(default)]
        address: Option<String>,
        #[serde(default = "defaults::u64_::<1000>")]
        timeout_ms: u64,
    },

    MockMeasurement {
        value: f64,
        #[serde(default = "defaults::s_generic")]
        quantity: String,
        #[serde(default)]
        unit: Option<String>,
        /// hilt extension: uniform noise amplitude added to each reading (± `noise`).
        #[serde(default)]
        noise: Option<f64>,
    },
    HttpMeasurement {
        url: String,
        #[serde(default = "defaults::s_generic")]
        quantity: String,
        #[serde(default)]
        unit: Option<String>,
        #[serde(default = "default_value_field")]
        value_field: String,
        #[serde(default = "default_unit_field")]
        unit_field: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default = "defaults::u64_::<2000>")]
        timeout_ms: u64,
    },
    ScpiMeasurement {
        address: String,
        query: String,
        #[serde(default = "defaults::s_generic")]
        quantity: String,
        #[serde(default)]
        unit: Option<String>,
        #[serde(default = "defaults::u64_::<1000>")]
        timeout_ms: u64,
        #[serde(default = "defaults::u32_::<9600>")]
        baudrate: u32,
        #[serde(default = "defaults::u32_::<8>")]
        bytesize: u32,
        #[serde(default = "defaults::s_n")]
        parity: String,
        #[serde(default = "defaults::f64_one")]
        stopbits: f64,
        #[serde(default = "defaults::s_newline")]
        write_termination: String,
        #[serde(default = "defaults::s_newline")]
        read_termination: String,
    },
    ScpiPowerSupplyMeasurement {
        address: String,
        #[serde(default = "default_preset")]
        preset: ScpiPreset,
        quantity: String,
        #[serde(default)]
        unit: Option<String>,
        #[serde(default)]
        channel: Option<u32>,
        /// hilt extension: output voltage (V) set when a run opens the supply (`VOLT`,
        /// with the channel selected first when `channel` is set); the error queue is
        /// checked after. Never applied by the self-test.
        #[serde(default)]
        set_voltage: Option<f64>,
        /// hilt extension: current limit (A) set when a run opens the supply (`CURR`).
        #[serde(default)]
        set_current: Option<f64>,
        #[serde(default = "defaults::u64_::<1000>")]
        timeout_ms: u64,
        #[serde(default = "defaults::u32_::<9600>")]
        baudrate: u32,
        #[serde(default = "defaults::u32_::<8>")]
        bytesize: u32,
        #[serde(default = "defaults::s_n")]
        parity: String,
        #[serde(default = "defaults::f64_one")]
        stopbits: f64,
        #[serde(default = "defaults::s_newline")]
        write_termination: String,
        #[serde(default = "defaults::s_newline")]
        read_termination: String,
    },
    I2cPowerMonitor {
        chip: String,
        bus: u32,
        address: u32,
        quantity: String,
        #[serde(default)]
        unit: Option<String>,
        #[serde(default = "defaults::u64_::<1000>")]
        timeout_ms: u64,
        #[serde(default)]
        current_lsb_a: Option<f64>,
        #[serde(default)]
        power_lsb_w: Option<f64>,
        /// hilt extension: `host:port` of a `hilt sim bus` whose simulated I2C bus holds
        /// the monitor, instead of `/dev/i2c-<bus>`.
        #[serde(default)]
        sim: Option<String>,
    },
    ScriptMeasurement {
        command: String,
        #[serde(default = "defaults::s_generic")]
        quantity: String,
        #[serde(default)]
        unit: Option<String>,
        #[serde(default = "default_value_field")]
        value_json_path: String,
        #[serde(default = "default_unit_field")]
        unit_json_path: String,
        #[serde(default = "defaults::u64_::<2000>")]
        timeout_ms: u64,
        #[serde(default)]
        cwd: Option<String>,
    },
    SerialMeasurement {
        port: String,
        #[serde(default = "defaults::u32_::<115200>")]
        baud: u32,
        #[serde(default)]
        command: Option<String>,
        #[serde(default)]
        response_regex: Option<String>,
        #[serde(default = "defaults::s_generic")]
        quantity: String,
        #[serde(default)]
        unit: Option<String>,
        #[serde(default = "defaults::u64_::<1000>")]
        timeout_ms: u64,
        #[serde(default = "defaults::u32_::<8>")]
        bytesize: u32,
        #[serde(default = "defaults::s_n")]
        parity: String,
        #[serde(default = "defaults::f64_one")]
        stopbits: f64,
        #[serde(default = "defaults::u32_::<4096>")]
        read_size: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScpiPreset {
    Generic,
    OwonSp,
    RigolDpBasic,
    KeysightBasic,
    KeysightE36300Basic,
}

impl ResourceDriver {
    pub fn type_name(&self) -> &'static str {
        match self {
            ResourceDriver::MockPower { .. } => "mock_power",
            ResourceDriver::GpioPower { .. } => "gpio_power",
            ResourceDriver::HttpRelay { .. } => "http_relay",
            ResourceDriver::UsbRelaySerial { .. } => "usb_relay_serial",
            ResourceDriver::Qemu { .. } => "qemu",
            ResourceDriver::Gpio { .. } => "gpio",
            ResourceDriver::Scpi { .. } => "scpi",
            ResourceDriver::MockMeasurement { .. } => "mock_measurement",
            ResourceDriver::HttpMeasurement { .. } => "http_measurement",
            ResourceDriver::ScpiMeasurement { .. } => "scpi_measurement",
            ResourceDriver::ScpiPowerSupplyMeasurement { .. } => "scpi_power_supply_measurement",
            ResourceDriver::I2cPowerMonitor { .. } => "i2c_power_monitor",
            ResourceDriver::ScriptMeasurement { .. } => "script_measurement",
            ResourceDriver::SerialMeasurement { .. } => "serial_measurement",
        }
    }

    /// A power-switching driver (by type, as BenchCI's capability summary counts it).
    pub fn is_power(&self) -> bool {
        POWER_TYPES.contains(&self.type_name())
    }

    /// A measurement driver.
    pub fn is_measurement(&self) -> bool {
        MEASUREMENT_TYPES.contains(&self.type_name())
    }

    /// Outlet names of a power driver (empty for everything else).
    pub fn outlet_names(&self) -> Vec<String> {
        match self {
            ResourceDriver::MockPower { outlets, .. } => outlets.keys().cloned().collect(),
            ResourceDriver::GpioPower { outlets, .. } => outlets.keys().cloned().collect(),
            ResourceDriver::HttpRelay { outlets, .. } => outlets.keys().cloned().collect(),
            ResourceDriver::UsbRelaySerial { outlets, .. } => outlets.keys().cloned().collect(),
            ResourceDriver::Qemu { outlet, .. } => vec![outlet.clone()],
            _ => Vec::new(),
        }
    }
}

/// Every power driver `type`, for error messages and capability summaries.
pub const POWER_TYPES: &[&str] = &[
    "mock_power",
    "gpio_power",
    "http_relay",
    "usb_relay_serial",
    "qemu",
    "gpio",
    "scpi",
];
/// Every measurement driver `type`.
pub const MEASUREMENT_TYPES: &[&str] = &[
    "mock_measurement",
    "http_measurement",
    "scpi_measurement",
    "scpi_power_supply_measurement",
    "i2c_power_monitor",
    "script_measurement",
    "serial_measurement",
];

fn default_outlets() -> BTreeMap<String, bool> {
    BTreeMap::from([("main".to_string(), false)])
}
fn default_qemu_machine() -> String {
    "lm3s6965evb".to_string()
}
fn default_qemu_binary() -> String {
    "qemu-system-arm".to_string()
}
fn default_qemu_outlet() -> String {
    "dut".to_string()
}
fn default_get() -> String {
    "GET".to_string()
}
fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
fn default_on_values() -> Vec<String> {
    strings(&["1", "true", "on", "closed", "enabled"])
}
fn default_off_values() -> Vec<String> {
    strings(&["0", "false", "off", "open", "disabled"])
}
fn default_on_resp() -> Vec<String> {
    strings(&["1", "01", "on", "true"])
}
fn default_off_resp() -> Vec<String> {
    strings(&["0", "00", "off", "false"])
}
fn default_vendor() -> String {
    "generic".to_string()
}
fn default_model() -> String {
    "command_map".to_string()
}
fn default_value_field() -> String {
    "value".to_string()
}
fn default_unit_field() -> String {
    "unit".to_string()
}
fn default_preset() -> ScpiPreset {
    ScpiPreset::Generic
}
