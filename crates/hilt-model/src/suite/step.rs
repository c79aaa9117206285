//! The step catalogue: control, UART, GPIO, power, measurement, external.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bench::Edge;
use crate::defaults;

use super::remote::*;
use super::steps_extra::*;

/// One step: a one-key map whose key is the step type.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
// The rare, large step types are boxed so a step stays small (144 bytes, not 616): a
// 20,000-step suite holds 20,000 of them.
pub enum Step {
    SleepMs(u64),
    Reset(NodeRef),
    Flash(FlashStep),
    SendUart(SendUart),
    ExpectUart(ExpectUart),
    GpioSet(GpioSet),
    GpioGet(GpioGet),
    GpioExpect(GpioExpect),
    GpioWaitEdge(GpioWaitEdge),
    PowerSet(PowerSet),
    PowerCycle(PowerCycle),
    PowerExpect(PowerSet),
    Measure(Box<Measure>),
    AssertMetric(AssertMetric),
    RunExternal(Box<RunExternal>),
    ModbusReadHoldingRegisters(ModbusRead),
    ModbusWriteSingleRegister(ModbusWriteRegister),
    ModbusReadCoils(ModbusReadCoils),
    ModbusWriteSingleCoil(ModbusWriteCoil),
    I2cScan(I2cScan),
    I2cWriteRegister(I2cWrite),
    I2cReadRegister(I2cRead),
    I2cExpect(I2cRead),
    SpiTransfer(SpiTransfer),
    SpiExpect(SpiTransfer),
    SendCan(SendCan),
    ExpectCan(ExpectCan),
    FuzzUart(Box<FuzzUart>),
    FuzzCan(Box<FuzzCan>),
    FuzzModbus(Box<FuzzModbus>),
    FaultInjectPowerGlitch(Box<FaultPowerGlitch>),
    FaultInjectGpioGlitch(Box<FaultGpioGlitch>),
    FaultInjectUartNoise(Box<FaultUartNoise>),
    // hilt extensions (BenchCI 2.0.1 has only the four Modbus steps above).
    /// Function 4; passes iff the values equal `expect`.
    ModbusReadInputRegisters(ModbusRead),
    /// Function 2; passes iff the states equal `expect`.
    ModbusReadDiscreteInputs(ModbusReadCoils),
    ModbusWriteMultipleRegisters(ModbusWriteRegisters),
    ModbusWriteMultipleCoils(ModbusWriteCoils),
    SshExec(Box<SshExec>),
    Upload(Box<Upload>),
    Download(Box<Download>),
}

/// Every step key, in catalogue order.
pub const STEP_TYPES: &[&str] = &[
    "sleep_ms",
    "reset",
    "flash",
    "send_uart",
    "expect_uart",
    "gpio_set",
    "gpio_get",
    "gpio_expect",
    "gpio_wait_edge",
    "power_set",
    "power_cycle",
    "power_expect",
    "measure",
    "assert_metric",
    "run_external",
    "modbus_read_holding_registers",
    "modbus_write_single_register",
    "modbus_read_coils",
    "modbus_write_single_coil",
    "i2c_scan",
    "i2c_write_register",
    "i2c_read_register",
    "i2c_expect",
    "spi_transfer",
    "spi_expect",
    "send_can",
    "expect_can",
    "fuzz_uart",
    "fuzz_can",
    "fuzz_modbus",
    "fault_inject_power_glitch",
    "fault_inject_gpio_glitch",
    "fault_inject_uart_noise",
    "modbus_read_input_registers",
    "modbus_read_discrete_inputs",
    "modbus_write_multiple_registers",
    "modbus_write_multiple_coils",
    "ssh_exec",
    "upload",
    "download",
];

/// Step types this build can execute; the others parse but are refused before a run.
pub const SUPPORTED_STEP_TYPES: &[&str] = &[
    "sleep_ms",
    "reset",
    "flash",
    "send_uart",
    "expect_uart",
    "gpio_set",
    "gpio_get",
    "gpio_expect",
    "gpio_wait_edge",
    "power_set",
    "power_cycle",
    "power_expect",
    "measure",
    "assert_metric",
    "run_external",
    "modbus_read_holding_registers",
    "modbus_write_single_register",
    "modbus_read_coils",
    "modbus_write_single_coil",
    "modbus_read_input_registers",
    "modbus_read_discrete_inputs",
    "modbus_write_multiple_registers",
    "modbus_write_multiple_coils",
    "fuzz_uart",
    "fuzz_modbus",
    "fault_inject_power_glitch",
    "fault_inject_gpio_glitch",
    "fault_inject_uart_noise",
    "send_can",
    "expect_can",
    "fuzz_can",
    "ssh_exec",
    "upload",
    "download",
    "i2c_scan",
    "i2c_write_register",
    "i2c_read_register",
    "i2c_expect",
    "spi_transfer",
    "spi_expect",
];

/// Why a parsed step this build cannot run is refused (the help of its diagnostic).
pub const UNSUPPORTED_HELP: &str =
    "its driver has not been built yet; remove the step or run it with a build that has it";

impl Step {
    /// The step key as written in YAML.
    pub fn type_name(&self) -> &'static str {
        let i = match self {
            Step::SleepMs(_) => 0,
            Step::Reset(_) => 1,
            Step::Flash(_) => 2,
            Step::SendUart(_) => 3,
            Step::ExpectUart(_) => 4,
            Step::GpioSet(_) => 5,
            Step::GpioGet(_) => 6,
            Step::GpioExpect(_) => 7,
            Step::GpioWaitEdge(_) => 8,
            Step::PowerSet(_) => 9,
            Step::PowerCycle(_) => 10,
            Step::PowerExpect(_) => 11,
            Step::Measure(_) => 12,
            Step::AssertMetric(_) => 13,
            Step::RunExternal(_) => 14,
            Step::ModbusReadHoldingRegisters(_) => 15,
            Step::ModbusWriteSingleRegister(_) => 16,
            Step::ModbusReadCoils(_) => 17,
            Step::ModbusWriteSingleCoil(_) => 18,
            Step::I2cScan(_) => 19,
            Step::I2cWriteRegister(_) => 20,
            Step::I2cReadRegister(_) => 21,
            Step::I2cExpect(_) => 22,
            Step::SpiTransfer(_) => 23,
            Step::SpiExpect(_) => 24,
            Step::SendCan(_) => 25,
            Step::ExpectCan(_) => 26,
            Step::FuzzUart(_) => 27,
            Step::FuzzCan(_) => 28,
            Step::FuzzModbus(_) => 29,
            Step::FaultInjectPowerGlitch(_) => 30,
            Step::FaultInjectGpioGlitch(_) => 31,
            Step::FaultInjectUartNoise(_) => 32,
            Step::ModbusReadInputRegisters(_) => 33,
            Step::ModbusReadDiscreteInputs(_) => 34,
            Step::ModbusWriteMultipleRegisters(_) => 35,
            Step::ModbusWriteMultipleCoils(_) => 36,
            Step::SshExec(_) => 37,
            Step::Upload(_) => 38,
            Step::Download(_) => 39,
        };
        STEP_TYPES[i]
    }

    pub fn is_supported(&self) -> bool {
        SUPPORTED_STEP_TYPES.contains(&self.type_name())
    }

    /// The node the step acts on, when it names one.
    pub fn node(&self) -> Option<&str> {
        Some(match self {
            Step::Reset(s) => &s.node,
            Step::Flash(s) => &s.node,
            Step::SendUart(s) => &s.node,
            Step::ExpectUart(s) => &s.node,
            Step::GpioSet(s) => &s.node,
            Step::GpioGet(s) => &s.node,
            Step::GpioExpect(s) => &s.node,
            Step::GpioWaitEdge(s) => &s.node,
            Step::ModbusReadHoldingRegisters(s) => &s.node,
            Step::ModbusWriteSingleRegister(s) => &s.node,
            Step::ModbusReadCoils(s) => &s.node,
            Step::ModbusWriteSingleCoil(s) => &s.node,
            Step::ModbusReadInputRegisters(s) => &s.node,
            Step::ModbusReadDiscreteInputs(s) => &s.node,
            Step::ModbusWriteMultipleRegisters(s) => &s.node,
            Step::ModbusWriteMultipleCoils(s) => &s.node,
            Step::I2cScan(s) => &s.node,
            Step::I2cWriteRegister(s) => &s.node,
            Step::I2cReadRegister(s) | Step::I2cExpect(s) => &s.node,
            Step::SpiTransfer(s) | Step::SpiExpect(s) => &s.node,
            Step::SendCan(s) => &s.node,
            Step::ExpectCan(s) => &s.node,
            Step::FuzzUart(s) => &s.node,
            Step::FuzzCan(s) => &s.node,
            Step::FuzzModbus(s) => &s.node,
            Step::FaultInjectGpioGlitch(s) => &s.node,
            Step::FaultInjectUartNoise(s) => &s.node,
            _ => return None,
        })
    }

    /// The remote host the step acts on (hilt extension), when it names one.
    pub fn host(&self) -> Option<&str> {
        Some(match self {
            Step::SshExec(s) => &s.host,
            Step::Upload(s) => &s.host,
            Step::Download(s) => &s.host,
            _ => return None,
        })
    }

    /// The transport the step uses, when it names one.
    pub fn transport(&self) -> Option<&str> {
        Some(match self {
            Step::SendUart(s) => &s.transport,
            Step::ExpectUart(s) => &s.transport,
            Step::ModbusReadHoldingRegisters(s) => &s.transport,
            Step::ModbusWriteSingleRegister(s) => &s.transport,
            Step::ModbusReadCoils(s) => &s.transport,
            Step::ModbusWriteSingleCoil(s) => &s.transport,
            Step::ModbusReadInputRegisters(s) => &s.transport,
            Step::ModbusReadDiscreteInputs(s) => &s.transport,
            Step::ModbusWriteMultipleRegisters(s) => &s.transport,
            Step::ModbusWriteMultipleCoils(s) => &s.transport,
            Step::I2cScan(s) => &s.transport,
            Step::I2cWriteRegister(s) => &s.transport,
            Step::I2cReadRegister(s) | Step::I2cExpect(s) => &s.transport,
            Step::SpiTransfer(s) | Step::SpiExpect(s) => &s.transport,
            Step::SendCan(s) => &s.transport,
            Step::ExpectCan(s) => &s.transport,
            Step::FuzzUart(s) => &s.transport,
            Step::FuzzCan(s) => &s.transport,
            Step::FuzzModbus(s) => &s.transport,
            Step::FaultInjectUartNoise(s) => &s.transport,
            _ => return None,
        })
    }

    /// The transport backends this step accepts (bench-format §2.2).
    pub fn allowed_backends(&self) -> &'static [&'static str] {
        match self.type_name() {
            t if t.starts_with("modbus_") || t == "fuzz_modbus" => &["modbus_rtu", "modbus_tcp"],
            "send_can" | "expect_can" | "fuzz_can" => &["can", "slcan"],
            t if t.starts_with("i2c_") => &["i2c"],
            t if t.starts_with("spi_") => &["spi"],
            _ => &["uart"],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NodeRef {
    pub node: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FlashStep {
    pub node: String,
    /// Overrides `--artifact` and the node's `flash.artifact`.
    #[serde(default)]
    pub artifact: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SendUart {
    pub node: String,
    pub transport: String,
    /// Sent exactly as written; no newline is appended.
    pub data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ExpectUart {
    pub node: String,
    pub transport: String,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub within_ms: Option<u64>,
    /// hilt extension: `buffer` (default, BenchCI's rolling buffer since the port opened)
    /// or `since_mark` (only text received after the previous `send_uart`/`expect_uart`
    /// match on this transport).
    #[serde(default)]
    pub scope: Option<ExpectScope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpectScope {
    Buffer,
    SinceMark,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GpioSet {
    pub node: String,
    pub line: String,
    pub value: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GpioGet {
    pub node: String,
    pub line: String,
    #[serde(default)]
    pub expect: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GpioExpect {
    pub node: String,
    pub line: String,
    pub value: bool,
    #[serde(default)]
    pub within_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GpioWaitEdge {
    pub node: String,
    pub line: String,
    pub edge: Edge,
    #[serde(default)]
    pub within_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PowerSet {
    pub resource: String,
    pub outlet: String,
    pub state: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PowerCycle {
    pub resource: String,
    pub outlet: String,
    #[serde(default = "defaults::u64_::<1000>")]
    pub off_ms: u64,
    #[serde(default = "defaults::u64_::<1000>")]
    pub on_settle_ms: u64,
}

/// Threshold fields shared by `measure` and `assert_metric`; range fields combine with AND.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Assertion {
    #[serde(default)]
    pub expect_less_than: Option<f64>,
    #[serde(default)]
    pub expect_less_than_or_equal: Option<f64>,
    #[serde(default)]
    pub expect_greater_than: Option<f64>,
    #[serde(default)]
    pub expect_greater_than_or_equal: Option<f64>,
    #[serde(default)]
    pub expect_equal: Option<f64>,
    #[serde(default)]
    pub tolerance: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Measure {
    pub resource: String,
    #[serde(default)]
    pub record_as: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(flatten)]
    pub assertion: Assertion,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AssertMetric {
    pub name: String,
    #[serde(flatten)]
    pub assertion: Assertion,
}
