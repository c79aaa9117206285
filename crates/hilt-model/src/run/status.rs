//! status.json: where a run is, whether it is alive, and what to do next.

use serde::{Deserialize, Serialize};

/// The phases every run moves through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Discover,
    Preflight,
    Stage,
    Execute,
    Collect,
    Publish,
    Finalize,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Discover,
        Phase::Preflight,
        Phase::Stage,
        Phase::Execute,
        Phase::Collect,
        Phase::Publish,
        Phase::Finalize,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Discover => "discover",
            Phase::Preflight => "preflight",
            Phase::Stage => "stage",
            Phase::Execute => "execute",
            Phase::Collect => "collect",
            Phase::Publish => "publish",
            Phase::Finalize => "finalize",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseState {
    pub phase: Phase,
    /// `pending`, `running`, `done`, `failed`, `skipped`.
    pub state: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub heartbeat_at: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitoring {
    /// `idle` (finished), `running` (heartbeat fresh) or `stalled` (heartbeat stale while
    /// the run claims to be active).
    pub state: String,
    pub pid: u32,
    pub last_heartbeat_at: Option<String>,
    pub stall_after_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `info`, `warning`, `error`.
    pub severity: String,
    pub code: String,
    pub message: String,
    pub next_action: String,
    pub next_command: Option<String>,
    pub next_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatusSnapshot {
    pub schema_version: String,
    pub run_id: String,
    pub results_dir: String,
    /// `running` while active, then the final run status.
    pub state: String,
    pub current_phase: Phase,
    pub current_test: Option<String>,
    pub current_step: Option<String>,
    pub tests_total: usize,
    pub tests_passed: usize,
    pub tests_failed: usize,
    pub updated_at: String,
    pub phases: Vec<PhaseState>,
    pub monitoring: Monitoring,
    pub alerts: Vec<Alert>,
    pub exit_code: Option<i32>,
}
