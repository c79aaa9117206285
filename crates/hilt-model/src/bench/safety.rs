//! The bench's safety policy: what risky steps a suite may take on this bench.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Safety {
    #[serde(default)]
    pub fault_injection: FaultInjectionPolicy,
    #[serde(default)]
    pub external: ExternalPolicy,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct FaultInjectionPolicy {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub power: Vec<FaultPowerRule>,
    #[serde(default)]
    pub gpio: Vec<FaultGpioRule>,
    #[serde(default)]
    pub uart: Vec<FaultUartRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FaultPowerRule {
    pub resource: String,
    pub outlet: String,
    pub max_off_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FaultGpioRule {
    pub node: String,
    pub line: String,
    pub max_duration_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FaultUartRule {
    pub node: String,
    pub transport: String,
    pub max_total_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ExternalPolicy {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub targets: BTreeMap<String, ExternalTarget>,
}

/// A bench-owned external command or HTTP service a suite may trigger with `run_external`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ExternalTarget {
    /// Absolute; a step's `cwd` resolves under it.
    pub work_root: String,
    #[serde(default)]
    pub output_root: Option<String>,
    #[serde(default)]
    pub argv_prefix: Vec<String>,
    /// Full-match regexes; each suite argument must match one.
    #[serde(default)]
    pub arg_patterns: Vec<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    #[serde(default = "defaults::u64_::<3600000>")]
    pub max_timeout_ms: u64,
    #[serde(default = "defaults::u64_::<60000>")]
    pub max_poll_interval_ms: u64,
    #[serde(default = "defaults::u64_::<20>")]
    pub max_logs: u64,
    #[serde(default = "defaults::u64_::<262144>")]
    pub max_log_bytes: u64,
    #[serde(default = "defaults::u64_::<1048576>")]
    pub max_log_total_bytes: u64,
    #[serde(default = "defaults::u64_::<5242880>")]
    pub max_results_document_bytes: u64,
    #[serde(default = "defaults::u64_::<50>")]
    pub max_artifacts: u64,
    #[serde(default = "defaults::u64_::<1048576>")]
    pub max_artifact_bytes: u64,
    #[serde(default = "defaults::u64_::<5242880>")]
    pub max_artifact_total_bytes: u64,
    #[serde(default)]
    pub lock_key: Option<String>,
}

impl ExternalTarget {
    /// The target's `arg_patterns` as full-match regexes (invalid ones are reported by
    /// bench validation and match nothing).
    pub fn arg_regexes(&self) -> Vec<regex::Regex> {
        self.arg_patterns
            .iter()
            .filter_map(|p| regex::Regex::new(&format!("^(?:{p})$")).ok())
            .collect()
    }
}

fn default_methods() -> Vec<String> {
    vec!["GET".to_string(), "POST".to_string()]
}
