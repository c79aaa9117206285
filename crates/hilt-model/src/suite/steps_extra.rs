//! Step bodies for run_external and for the drivers that later builds add
//! (Modbus, I2C, SPI, CAN, fuzzing, fault injection). They parse and validate today so
//! that existing suites load; steps whose driver is missing are refused before a run.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunExternal {
    pub target: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default = "defaults::u64_::<300000>")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub framework: Option<String>,
    #[serde(default)]
    pub junit: Option<String>,
    #[serde(default)]
    pub ctrf: Option<String>,
    #[serde(default)]
    pub logs: Vec<String>,
    #[serde(default)]
    pub artifacts: Vec<String>,
    #[serde(default)]
    pub artifact_urls: Vec<String>,
    #[serde(default)]
    pub http: Option<ExternalHttp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ExternalHttp {
    #[serde(default = "post")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Header name → environment variable holding its value (kept out of the files).
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    #[serde(default = "accepted")]
    pub expected_status: Vec<u16>,
    #[serde(default = "job_id")]
    pub job_id_json_path: String,
    #[serde(default)]
    pub poll: Option<ExternalPoll>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ExternalPoll {
    #[serde(default = "get")]
    pub method: String,
    pub url: String,
    #[serde(default = "defaults::u64_::<5000>")]
    pub interval_ms: u64,
    #[serde(default = "ok200")]
    pub expected_status: Vec<u16>,
    #[serde(default = "status")]
    pub status_json_path: String,
    #[serde(default = "success_values")]
    pub success_values: Vec<String>,
    #[serde(default = "failure_values")]
    pub failure_values: Vec<String>,
}

fn post() -> String {
    "POST".into()
}
fn get() -> String {
    "GET".into()
}
fn accepted() -> Vec<u16> {
    vec![200, 201, 202]
}
fn ok200() -> Vec<u16> {
    vec![200]
}
fn job_id() -> String {
    "job_id".into()
}
fn status() -> String {
    "status".into()
}
fn success_values() -> Vec<String> {
    ["passed", "pass", "done", "success"]
        .map(String::from)
        .to_vec()
}
fn failure_values() -> Vec<String> {
    [
        "failed",
        "fail",
        "error",
        "errored",
        "timeout",
        "timed_out",
        "timedout",
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModbusRead {
    pub node: String,
    pub transport: String,
    #[serde(default)]
    pub slave: Option<u32>,
    pub address: u32,
    pub count: u32,
    pub expect: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModbusWriteRegister {
    pub node: String,
    pub transport: String,
    #[serde(default)]
    pub slave: Option<u32>,
    pub address: u32,
    pub value: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModbusReadCoils {
    pub node: String,
    pub transport: String,
    #[serde(default)]
    pub slave: Option<u32>,
    pub address: u32,
    pub count: u32,
    pub expect: Vec<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModbusWriteCoil {
    pub node: String,
    pub transport: String,
    #[serde(default)]
    pub slave: Option<u32>,
    pub address: u32,
    pub value: bool,
}

/// hilt extension: `modbus_write_multiple_registers` (function 16).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModbusWriteRegisters {
    pub node: String,
    pub transport: String,
    #[serde(default)]
    pub slave: Option<u32>,
    pub address: u32,
    /// Register values, 0..=65535 each (1..=123 of them).
    pub values: Vec<i64>,
}

/// hilt extension: `modbus_write_multiple_coils` (function 15).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ModbusWriteCoils {
    pub node: String,
    pub transport: String,
    #[serde(default)]
    pub slave: Option<u32>,
    pub address: u32,
    /// Coil states (1..=1968 of them).
    pub values: Vec<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct I2cScan {
    pub node: String,
    pub transport: String,
    #[serde(default)]
    pub expect_addresses: Option<Vec<u32>>,
    #[serde(default = "defaults::u32_::<0x03>")]
    pub start_address: u32,
    #[serde(default = "defaults::u32_::<0x77>")]
    pub end_address: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ByteOrBytes {
    One(u32),
    Many(Vec<u32>),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct I2cWrite {
    pub node: String,
    pub transport: String,
    pub address: u32,
    pub register: u32,
    pub value: ByteOrBytes,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct I2cRead {
    pub node: String,
    pub transport: String,
    pub address: u32,
    pub register: u32,
    #[serde(default = "defaults::u32_::<1>")]
    pub length: u32,
    #[serde(default)]
    pub expect: Option<Vec<u32>>,
    #[serde(default)]
    pub within_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SpiTransfer {
    pub node: String,
    pub transport: String,
    /// Hex bytes, e.g. `"9F 00 00"`.
    pub data: String,
    #[serde(default)]
    pub expect: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CanFrame {
    pub id: u32,
    #[serde(default)]
    pub extended: bool,
    #[serde(default)]
    pub fd: bool,
    #[serde(default)]
    pub data: String,
    #[serde(default)]
    pub bitrate_switch: bool,
    #[serde(default)]
    pub error_state_indicator: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CanFrameRule {
    pub id: u32,
    #[serde(default)]
    pub extended: bool,
    #[serde(default)]
    pub fd: bool,
    #[serde(default)]
    pub data: String,
    #[serde(default)]
    pub id_mask: Option<u32>,
    #[serde(default)]
    pub data_mask: Option<String>,
    #[serde(default)]
    pub allow_extra_data: bool,
    #[serde(default)]
    pub bitrate_switch: Option<bool>,
    #[serde(default)]
    pub error_state_indicator: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SendCan {
    pub node: String,
    pub transport: String,
    pub frame: CanFrame,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ExpectCan {
    pub node: String,
    pub transport: String,
    #[serde(default)]
    pub within_ms: Option<u64>,
    pub frame: CanFrameRule,
}

/// Fields every fuzz campaign shares.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FuzzCommon {
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default = "defaults::u64_::<100>")]
    pub iterations: u64,
    #[serde(default = "defaults::u64_::<60000>")]
    pub max_duration_ms: u64,
    #[serde(default = "defaults::t")]
    pub stop_on_failure: bool,
    #[serde(default)]
    pub inter_case_delay_ms: u64,
    /// hilt extension: a failure artifact of an earlier campaign
    /// (`logs/fuzz/<test>-step<N>-<protocol>-failure.json`, relative to the suite file) whose
    /// failing case is sent again, once, under this step's oracles instead of generated cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FuzzUart {
    pub node: String,
    pub transport: String,
    #[serde(flatten)]
    pub common: FuzzCommon,
    #[serde(default = "ascii")]
    pub mode: String,
    #[serde(default = "defaults::u64_::<1>")]
    pub min_length: u64,
    #[serde(default = "defaults::u64_::<32>")]
    pub max_length: u64,
    #[serde(default)]
    pub alphabet: Option<String>,
    #[serde(default)]
    pub dictionary: Vec<String>,
    #[serde(default)]
    pub suffix: String,
    #[serde(default)]
    pub settle_ms: u64,
    #[serde(default)]
    pub fail_contains: Option<String>,
    #[serde(default)]
    pub fail_regex: Option<String>,
    #[serde(default)]
    pub heartbeat_command: Option<String>,
    #[serde(default)]
    pub heartbeat_expect_contains: Option<String>,
    #[serde(default)]
    pub heartbeat_expect_regex: Option<String>,
    #[serde(default = "defaults::u64_::<500>")]
    pub heartbeat_within_ms: u64,
}

fn ascii() -> String {
    "ascii".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FuzzCan {
    pub node: String,
    pub transport: String,
    #[serde(flatten)]
    pub common: FuzzCommon,
    #[serde(default)]
    pub id_min: u32,
    #[serde(default = "defaults::u32_::<0x7FF>")]
    pub id_max: u32,
    #[serde(default)]
    pub extended: bool,
    #[serde(default)]
    pub fd: bool,
    #[serde(default)]
    pub min_data_length: u32,
    #[serde(default = "defaults::u32_::<8>")]
    pub max_data_length: u32,
    #[serde(default)]
    pub bitrate_switch: bool,
    #[serde(default)]
    pub error_state_indicator: bool,
    #[serde(default)]
    pub expect_response: Option<CanFrameRule>,
    #[serde(default = "defaults::u64_::<100>")]
    pub response_within_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FuzzModbus {
    pub node: String,
    pub transport: String,
    #[serde(flatten)]
    pub common: FuzzCommon,
    #[serde(default)]
    pub slave: Option<u32>,
    #[serde(default = "modbus_ops")]
    pub operations: Vec<String>,
    #[serde(default)]
    pub address_min: u32,
    #[serde(default = "defaults::u32_::<255>")]
    pub address_max: u32,
    #[serde(default = "defaults::u32_::<1>")]
    pub count_min: u32,
    #[serde(default = "defaults::u32_::<4>")]
    pub count_max: u32,
    #[serde(default)]
    pub value_min: u32,
    #[serde(default = "defaults::u32_::<0xFFFF>")]
    pub value_max: u32,
    #[serde(default = "defaults::t")]
    pub allow_protocol_exceptions: bool,
}

fn modbus_ops() -> Vec<String> {
    vec![
        "read_holding_registers".into(),
        "write_single_register".into(),
    ]
}

/// How a fault-injection step decides the DUT recovered.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Recovery {
    #[serde(rename = "type", default = "uart")]
    pub kind: String,
    pub node: String,
    pub transport: String,
    pub send: String,
    pub expect_contains: String,
    #[serde(default = "defaults::u64_::<5000>")]
    pub within_ms: u64,
    #[serde(default = "defaults::u64_::<250>")]
    pub retry_interval_ms: u64,
    #[serde(default)]
    pub watchdog_contains: Option<String>,
}

fn uart() -> String {
    "uart".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FaultPowerGlitch {
    pub resource: String,
    pub outlet: String,
    pub off_ms: u64,
    pub recovery: Recovery,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FaultGpioGlitch {
    pub node: String,
    pub line: String,
    pub pulse_value: bool,
    pub restore_value: bool,
    pub duration_ms: u64,
    pub recovery: Recovery,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FaultUartNoise {
    pub node: String,
    pub transport: String,
    pub data: String,
    #[serde(default = "defaults::u64_::<1>")]
    pub repeat: u64,
    #[serde(default)]
    pub inter_write_delay_ms: u64,
    pub recovery: Recovery,
}
