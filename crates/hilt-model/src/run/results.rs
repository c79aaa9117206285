//! results.json, exactly in the shape of the run-results spec §2–§4.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Zero failed tests.
    Passed,
    /// At least one failed test.
    Failed,
    /// The run aborted (bench infrastructure, configuration, …).
    Error,
    /// hilt extension: interrupted (Ctrl-C, cancel); BenchCI has no such status.
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Error => "error",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
}

/// One reading, as `measurements[]` and `metrics{}` carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub resource: Option<String>,
    pub value: f64,
    pub unit: Option<String>,
    pub quantity: Option<String>,
    pub timestamp: String,
    pub backend: Option<String>,
    pub address: Option<String>,
    pub query: Option<String>,
    pub raw_response: Option<String>,
    pub assertion: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub name: String,
    pub test_case_id: Option<String>,
    pub requirement_ids: Vec<String>,
    pub risk_ids: Vec<String>,
    pub tags: Vec<String>,
    pub passed: bool,
    pub duration_s: f64,
    pub failure_reason: Option<String>,
    pub failure: Option<Failure>,
    pub metrics: Map<String, Value>,
    pub measurements: Vec<Metric>,
    pub fuzz: Vec<Value>,
    pub fault_injections: Vec<Value>,
    pub external_results: Vec<Value>,
}

/// The whole results.json document. Field order is the spec's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    pub tool: String,
    pub command: String,
    pub run_id: Option<String>,
    pub run_mode: String,
    pub bench: String,
    pub suite: String,
    pub status: RunStatus,
    pub skip_flash: bool,
    pub verbose: bool,
    pub artifact: Option<String>,
    pub results_dir: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    pub summary: Summary,
    pub artifacts: Map<String, Value>,
    pub evidence: Value,
    pub failure: Option<Failure>,
    pub duts: Vec<Value>,
    pub nodes: Map<String, Value>,
    pub resources: Map<String, Value>,
    pub measurements: Vec<Metric>,
    pub metrics: Map<String, Value>,
    pub fuzz: Value,
    pub fault_injections: Vec<Value>,
    pub external_results: Value,
    pub tests: Vec<TestResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_locks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
