//! `hilt server` on the wire: workspaces, tokens, the cloud-agent backend calls (agent-api
//! spec §6, the shapes BenchCI's `benchci agent cloud` sends and reads) and the user view
//! of runs, benches and agents.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{RunEvent, RunState};

/// `POST /v1/workspaces` (admin tokens only).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateWorkspace {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// Who holds a token: a cloud agent (the `/v1/agents/*` calls) or a user/CI client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Agent,
    User,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Agent => "agent",
            TokenKind::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "agent" => Some(TokenKind::Agent),
            "user" => Some(TokenKind::User),
            _ => None,
        }
    }
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateToken {
    /// Workspace name.
    pub workspace: String,
    pub kind: TokenKind,
    #[serde(default)]
    pub label: Option<String>,
}

/// The answer to `POST /v1/tokens`: the only time the secret is shown (the server keeps
/// its SHA-256 only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenCreated {
    pub id: String,
    pub workspace: String,
    pub kind: TokenKind,
    pub label: Option<String>,
    pub token: String,
    pub created_at: String,
}

/// The answer to `POST /v1/tokens/{id}/revoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenRevoked {
    pub id: String,
    pub revoked_at: String,
}

/// `POST /v1/agents/heartbeat` (agent-api §6).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Heartbeat {
    #[serde(default)]
    pub agent_name: Option<String>,
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

/// A plain acknowledgement (BenchCI's cloud agent reads the answer as JSON and ignores it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ack {
    pub ok: bool,
}

/// The answer to `POST /v1/agents/heartbeat` (BenchCI's cloud agent ignores it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatReply {
    pub ok: bool,
    /// hilt extension: runs held by this agent whose cancellation a user requested. The
    /// agent stops them and completes them (any status; the server records `cancelled`).
    /// Event calls for such a run answer 409 with `"code": "run_cancelled"`. A run not
    /// completed within the server's cancel grace period is recorded cancelled anyway and
    /// later reports on it are refused.
    #[serde(default)]
    pub cancel_run_ids: Vec<String>,
}

/// One bench as a cloud agent reports it: the §3.2 summary without `agent_id`, plus
/// `node_names`. The keys the server schedules by are typed; the rest is kept as sent.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CloudBench {
    pub bench_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub current_run_id: Option<String>,
    #[serde(default)]
    pub health_status: Option<String>,
    /// Every other key of the summary (capabilities, health, node names, …).
    #[serde(flatten)]
    #[schema(value_type = Object, additional_properties)]
    pub rest: Map<String, Value>,
}

/// `POST /v1/agents/benches/sync`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BenchSync {
    pub benches: Vec<CloudBench>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BenchIdMapping {
    pub reported_bench_id: String,
    pub bench_id: String,
}

/// The answer to a sync: the id the server uses for each reported bench (a bench id taken
/// by another agent of the workspace gets a suffix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BenchSyncReply {
    pub bench_id_mappings: Vec<BenchIdMapping>,
}

/// The lease an assignment is held under: renewed by the agent's heartbeats; a report
/// under a lease that is no longer the run's current one is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lease {
    /// Grows by one each time the run is assigned.
    pub fencing_token: i64,
    pub expires_at: String,
}

/// A run handed to a cloud agent (the fields BenchCI's cloud agent reads, agent-api §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assignment {
    pub run_id: String,
    pub bench_id: String,
    pub agent_id: String,
    pub suite_yaml: String,
    /// Inline firmware (hilt server sends `firmware_url` instead).
    pub artifact_base64: Option<String>,
    pub artifact_filename: Option<String>,
    /// Where the agent downloads the run's firmware (a plain GET; the URL carries a key
    /// valid while this agent holds the run's current lease).
    #[serde(default)]
    pub firmware_url: Option<String>,
    /// `firmware_url` with its key replaced by `<redacted>`, for logs and events.
    #[serde(default)]
    pub firmware_url_redacted: Option<String>,
    /// SHA-256 of the firmware, lower-case hex; the agent checks the download against it.
    #[serde(default)]
    pub firmware_sha256: Option<String>,
    pub skip_flash: bool,
    pub verbose: bool,
    pub lease: Lease,
}

/// hilt extension: the header a hilt cloud agent puts on its reports about a run (events,
/// results archive, completion) with the `lease.fencing_token` of its assignment. A report
/// whose token is not the run's current one is refused with 409 (a stale lease); BenchCI's
/// agent sends no such header and is checked by agent and run state only.
pub const FENCING_TOKEN_HEADER: &str = "X-Hilt-Fencing-Token";

/// `GET /v1/agents/assignments/next`: `{"assignment": null}` when nothing came within the
/// long-poll wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NextAssignment {
    pub assignment: Option<Assignment>,
}

/// `POST /v1/agents/runs/{run_id}/events`.
///
/// hilt extension: an event with `seq` > 0 carries its agent's sequence number, counted
/// from 1 within the run. The server stores each `(run, seq)` once and in order: events at
/// or below the last stored seq are acknowledged and dropped (a replayed batch), and a
/// batch whose first new event is not the next seq (a gap), or whose seqs do not rise by
/// one, is refused with 409 and nothing of it is stored. Events without `seq` (BenchCI's
/// agent) are appended as they come.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventBatch {
    pub events: Vec<RunEvent>,
}

/// `POST /v1/agents/runs/{run_id}/complete`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompleteRun {
    /// `done` or `failed`.
    pub status: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>, additional_properties)]
    pub failure: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>, additional_properties)]
    pub evidence: Option<Value>,
}

/// `POST /v1/runs` (and `/v1/runs/json`) on the server: a run for one bench (`bench_id`,
/// the agent API's JSON submission) or for any bench carrying all `tags` and
/// `capabilities`. Exactly one of `bench_id` and `tags`/`capabilities` is given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubmitRun {
    #[serde(default)]
    pub bench_id: Option<String>,
    /// Every tag the bench must carry (its summary's `tags`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Every capability the bench must have: `gpio`, `power`, `measurements`,
    /// `transport:<t>`, `flash:<backend>`, `power:<backend>`, `measurement:<backend>`
    /// (derived from the summary's `capabilities`).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Higher first; FIFO within a priority. Default 0.
    #[serde(default)]
    pub priority: i32,
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

/// Why a queued run waits, where it stands, and when it may start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueInfo {
    /// `waiting: bench X is failing`, `waiting: bench X is busy with run R`, `waiting: no
    /// online bench with tags a,b`, `waiting: agent of bench X offline`, …
    pub reason: String,
    /// 1 = next: queued runs ahead of it (higher priority, or same priority and older)
    /// that could take one of its benches, plus one.
    pub position: u64,
    /// RFC 3339; absent when no candidate bench is online and schedulable.
    pub estimated_start_at: Option<String>,
    /// How the estimate was made.
    pub estimate_basis: Option<String>,
}

/// The results archive a cloud agent uploaded for a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredArtifacts {
    pub size_bytes: i64,
    pub sha256: String,
}

/// A run as the server knows it (`GET /v1/runs/{run_id}`; the keys BenchCI's client polls
/// for — `status`, `exit_code`, `error` — have the agent API's meaning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerRun {
    pub run_id: String,
    /// The wire state: `cancelled` runs say `failed` here and `cancelled: true`.
    pub status: RunState,
    #[serde(default)]
    pub cancelled: bool,
    /// A cancel was requested while the run was executing; its agent has not ended it yet.
    #[serde(default)]
    pub cancel_requested: bool,
    pub mode: String,
    /// The bench asked for, or (a run by tags) the bench it was assigned to.
    pub bench_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub priority: i32,
    /// While queued.
    #[serde(default)]
    pub queue: Option<QueueInfo>,
    pub agent_id: Option<String>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// The first failure (category, source, title, …) when the run failed.
    #[schema(value_type = Option<Object>, additional_properties)]
    pub failure: Option<Value>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub artifacts: Option<StoredArtifacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerRunList {
    pub runs: Vec<ServerRun>,
}

/// A bench of the workspace, as last synced by its agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerBench {
    pub bench_id: String,
    pub agent_id: String,
    pub name: String,
    pub status: String,
    pub current_run_id: Option<String>,
    pub health_status: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The agent was seen within the lease window.
    #[serde(default)]
    pub agent_online: bool,
    #[serde(default)]
    pub agent_last_seen_at: Option<String>,
    /// Warnings of a degraded bench and what each concerns (`resource:<r>`,
    /// `transport:<node>.<t>`, `gpio:<node>`, `flash:<node>`, `node:<node>`, or `bench`).
    #[serde(default)]
    pub warnings: Vec<HealthConcern>,
    /// `GET /v1/benches/{id}` only: every health change, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_history: Option<Vec<HealthChange>>,
    pub updated_at: String,
    /// The summary as the agent sent it.
    #[schema(value_type = Object, additional_properties)]
    pub summary: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerBenchList {
    pub benches: Vec<ServerBench>,
}

/// A cloud agent of the workspace (one per agent token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerAgent {
    pub agent_id: String,
    pub name: Option<String>,
    pub machine_id: String,
    pub machine_name: Option<String>,
    pub version: Option<String>,
    pub region: Option<String>,
    pub last_seen_at: String,
    /// Seen within the lease window (else lost: its benches get no runs).
    #[serde(default)]
    pub online: bool,
}

/// One warning or failing check of a bench's health and the part of the bench it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthConcern {
    pub check_id: String,
    pub concerns: String,
    pub message: Option<String>,
}

/// A bench's health as it changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthChange {
    pub status: String,
    pub summary: Option<String>,
    pub changed_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerAgentList {
    pub agents: Vec<ServerAgent>,
}

/// `GET /health` of the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerHealth {
    pub ok: bool,
    /// `hilt-server`.
    pub service: String,
    pub version: String,
}

/// `POST /v1/runs` as `multipart/form-data`: the firmware is streamed to the artifact
/// store instead of riding base64 inside JSON.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerMultipartRun {
    /// A bench id, or else `tags` and/or `capabilities`.
    pub bench_id: Option<String>,
    /// Comma-separated tags every candidate bench carries.
    pub tags: Option<String>,
    /// Comma-separated capabilities every candidate bench has.
    pub capabilities: Option<String>,
    /// Higher first; FIFO within a priority (default 0).
    pub priority: Option<i32>,
    /// The suite YAML (text or a file part).
    pub suite_yaml: String,
    /// Firmware (`.elf`/`.hex`/`.bin`; the part's file name is kept).
    #[schema(value_type = Option<String>, format = Binary)]
    pub artifact: Option<Vec<u8>>,
    /// `true` or `false`.
    pub skip_flash: Option<bool>,
    pub verbose: Option<bool>,
}

/// `POST /v1/agents/runs/{run_id}/artifacts` (agent-api §6): the zipped results.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResultsUpload {
    #[schema(value_type = String, format = Binary)]
    pub artifact_zip: Vec<u8>,
}

/// A file's bytes (the results archive, a firmware image).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// `GET /openapi.json`: this document (OpenAPI 3.1).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpenApiDocument {
    pub openapi: String,
    #[schema(value_type = Object, additional_properties)]
    pub info: Value,
    #[schema(value_type = Object, additional_properties)]
    pub paths: Value,
    #[schema(value_type = Object, additional_properties)]
    pub components: Value,
}
