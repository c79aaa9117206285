//! `GET /health` (agent-api spec §3.1).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BenchHealthCounts {
    pub healthy: u64,
    pub degraded: u64,
    pub failing: u64,
    pub unknown: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub ok: bool,
    pub service: String,
    pub version: String,
    pub agent_id: String,
    pub agent_name: String,
    pub time_utc: String,
    pub queue_depth: usize,
    /// hilt extension: runs executing now.
    #[serde(default)]
    pub active_runs: usize,
    pub auth_enabled: bool,
    pub active_gpio_sessions: usize,
    pub registered_benches: usize,
    pub registered_mode: bool,
    pub agent_config_path: Option<String>,
    pub bench_health: BenchHealthCounts,
    /// hilt extension: false while the agent shuts down.
    #[serde(default = "yes")]
    pub accepting_runs: bool,
}

fn yes() -> bool {
    true
}
