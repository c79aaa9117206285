//! Registered benches: summaries, details and health (agent-api spec §3.2–3.5).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether a run holds the bench now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BenchStatus {
    #[default]
    Idle,
    Busy,
}

impl BenchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BenchStatus::Idle => "idle",
            BenchStatus::Busy => "busy",
        }
    }
}

/// One logical hardware channel group of a hardware profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HardwareChannel {
    pub kind: String,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub notes: Option<String>,
}

fn one() -> u32 {
    1
}

/// What a bench can do, derived from its bench file (agent-api spec §3.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct BenchCapabilities {
    /// Sorted distinct transport backends of all nodes.
    pub transports: Vec<String>,
    pub has_gpio: bool,
    pub has_power: bool,
    pub has_measurements: bool,
    pub flash_backends: Vec<String>,
    pub power_backends: Vec<String>,
    pub measurement_backends: Vec<String>,
    pub node_count: usize,
    /// I2C bus numbers; always empty on a local agent.
    pub i2c_buses: Vec<u32>,
    /// SPI devices; always empty on a local agent.
    pub spi_devices: Vec<String>,
    pub hardware_profile: Option<String>,
    pub hardware_revision: Option<String>,
    /// hilt always says `true`/`false`; BenchCI agents send null without a profile.
    pub hardware_profile_known: Option<bool>,
    /// Null when the hardware profile is unknown or absent.
    pub hardware_channels: Option<Vec<HardwareChannel>>,
}

/// One entry of `GET /v1/benches`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct BenchSummary {
    pub bench_id: String,
    pub agent_id: String,
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub status: BenchStatus,
    pub current_run_id: Option<String>,
    pub capabilities: BenchCapabilities,
    /// The compact self-test health (self-test-and-locks spec §2).
    #[schema(value_type = Object, additional_properties)]
    pub health: Value,
    /// `healthy`, `degraded`, `failing` or `unknown` (the health's `status`).
    pub health_status: Option<String>,
    pub health_checked_at: Option<String>,
    pub health_summary: Option<String>,
}

/// `GET /v1/benches/{bench_id}`: the summary plus where the bench lives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BenchDetail {
    #[serde(flatten)]
    pub summary: BenchSummary,
    /// Absolute path of the bench file on the agent host.
    #[serde(default)]
    pub bench_file: String,
    /// Sorted node names.
    #[serde(default)]
    pub node_names: Vec<String>,
}

/// `GET /v1/benches/{bench_id}/health` and `POST …/health/refresh`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BenchHealth {
    pub bench_id: String,
    /// The compact self-test health.
    #[schema(value_type = Object, additional_properties)]
    pub health: Value,
    /// The full self-test report (null before the first self-test), present only with
    /// `include_report=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, additional_properties)]
    pub report: Option<Value>,
}
