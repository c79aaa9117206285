//! A run as the agent knows it: the durable record (`runs/<id>/record.json`) and its event
//! log (`runs/<id>/events.jsonl`).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Run states of the agent API (agent-api spec §4), plus `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Preparing,
    Running,
    UploadingArtifacts,
    Done,
    Failed,
    Cancelled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Preparing => "preparing",
            RunState::Running => "running",
            RunState::UploadingArtifacts => "uploading_artifacts",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Done | RunState::Failed | RunState::Cancelled
        )
    }

    /// Executing: holds its bench.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RunState::Preparing | RunState::Running | RunState::UploadingArtifacts
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub status: RunState,
    /// `registered` or `uploaded`.
    pub mode: String,
    pub bench_id: Option<String>,
    /// The bench lock this run needs: a bench id, or `__uploaded__`.
    pub lock_key: String,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub current_test: Option<String>,
    pub current_step: Option<String>,
    pub skip_flash: bool,
    pub verbose: bool,
    /// Stored artifact file name inside the run directory.
    pub artifact: Option<String>,
    /// Submission order (FIFO across restarts).
    pub seq: u64,
    pub failure: Option<Value>,
    /// Resource-lock keys the run needs (serial ports, lines, relays…): runs sharing one
    /// wait for each other even on different benches.
    #[serde(default)]
    pub resource_keys: Vec<String>,
}

/// One agent event (agent-api spec §5) with hilt's sequence number.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentEvent {
    pub seq: u64,
    pub timestamp: String,
    pub event_type: String,
    pub message: Option<String>,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

pub fn save(dir: &Path, rec: &RunRecord) -> std::io::Result<()> {
    hilt_runner::rundir::write_json_atomic(&dir.join("record.json"), rec)
}

/// As [`save`], on disk before it returns: a submission is acknowledged only after this.
pub fn save_durable(dir: &Path, rec: &RunRecord) -> std::io::Result<()> {
    hilt_runner::rundir::write_json_durable(&dir.join("record.json"), rec)
}

/// A run's terminal record, on disk together with `also` (the run's own documents) before
/// it returns: one batch of syncs for all of them.
pub fn save_terminal(
    dir: &Path,
    rec: &RunRecord,
    also: &[std::path::PathBuf],
) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    text.push(b'\n');
    hilt_runner::rundir::write_durable_with(&dir.join("record.json"), &text, also, &[])
}

/// A new run's first record, on disk with the run's bench and suite and the new run
/// directory's entry in `runs_dir` before it returns (the submission is acknowledged after
/// this): two rounds of concurrent syncs.
pub fn save_accepted(dir: &Path, rec: &RunRecord, runs_dir: &Path) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let inputs: Vec<std::path::PathBuf> = ["bench.yaml", "suite.yaml"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    hilt_runner::rundir::write_durable_with(
        &dir.join("record.json"),
        &text,
        &inputs,
        &[runs_dir.to_path_buf()],
    )
}

pub fn load(dir: &Path) -> Option<RunRecord> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("record.json")).ok()?).ok()
}

pub fn append_event(dir: &Path, e: &AgentEvent) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("events.jsonl"))?;
    let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
    line.push(b'\n');
    f.write_all(&line)
}

pub fn load_events(dir: &Path) -> Vec<AgentEvent> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
