//! Runs: submission, state, listing and event pages (agent-api spec §3.6–3.9, §4).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::RunEvent;

/// Run states of the agent API (agent-api spec §4), plus `cancelled` (served as `failed`
/// with `cancelled: true`, because BenchCI clients wait for `done` or `failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
    pub const ALL: [RunState; 7] = [
        RunState::Queued,
        RunState::Preparing,
        RunState::Running,
        RunState::UploadingArtifacts,
        RunState::Done,
        RunState::Failed,
        RunState::Cancelled,
    ];

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

    /// The state as BenchCI clients see it (`cancelled` is `failed`).
    pub fn wire(self) -> RunState {
        match self {
            RunState::Cancelled => RunState::Failed,
            other => other,
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

/// `POST /v1/runs/json` (agent-api §3.7).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct JsonRun {
    pub bench_id: String,
    pub suite_yaml: String,
    #[serde(default)]
    pub artifact_relpath: Option<String>,
    #[serde(default)]
    pub artifact_filename: Option<String>,
    #[serde(default)]
    pub artifact_base64: Option<String>,
    #[serde(default)]
    pub skip_flash: bool,
    #[serde(default)]
    pub verbose: bool,
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    pub run_id: String,
    pub status: RunState,
    /// `registered` or `uploaded`.
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench_id: Option<String>,
    pub queue_depth: usize,
    pub created_at: String,
}

/// `GET /v1/runs/{run_id}` (agent-api §3.8) and the entries of the run list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunView {
    pub run_id: String,
    /// The wire state: `cancelled` runs say `failed` here and `cancelled: true`.
    pub status: RunState,
    /// hilt extension.
    #[serde(default)]
    pub cancelled: bool,
    pub mode: String,
    pub bench_id: Option<String>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub current_test: Option<String>,
    pub current_step: Option<String>,
    pub queue_depth: usize,
    /// hilt extension: the first failure (results.json's `failure` object).
    #[serde(default)]
    #[schema(value_type = Option<Object>, additional_properties)]
    pub failure: Option<Value>,
    /// hilt extension: why this run's record could not be read (its files are kept).
    #[serde(default)]
    pub damaged: Option<String>,
    /// hilt extension: what the agent did to this run when it shut down.
    #[serde(default)]
    pub notice: Option<String>,
}

/// `GET /v1/runs` (hilt extension): newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunList {
    pub runs: Vec<RunView>,
}

/// `GET /v1/runs/{run_id}/events` (agent-api §3.9; `?after=N` is a hilt extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventsPage {
    pub run_id: String,
    pub status: RunState,
    #[serde(default)]
    pub cancelled: bool,
    pub events: Vec<RunEvent>,
}

/// `POST /v1/runs` (agent-api §3.6): the parts of the multipart/form-data body.
#[derive(Debug, Clone, Default, utoipa::ToSchema)]
pub struct MultipartRun {
    /// bench.yaml (file name ending `.yaml`/`.yml`).
    #[schema(value_type = String, format = Binary)]
    pub bench_yaml: Vec<u8>,
    /// suite.yaml (file name ending `.yaml`/`.yml`).
    #[schema(value_type = String, format = Binary)]
    pub suite_yaml: Vec<u8>,
    /// Firmware (`.elf`/`.hex`/`.bin`), required unless `skip_flash`.
    #[schema(value_type = Option<String>, format = Binary)]
    pub artifact: Option<Vec<u8>>,
    pub skip_flash: Option<bool>,
    pub verbose: Option<bool>,
}
