//! A run as the agent knows it: the durable record (`runs/<id>/record.json`) and its event
//! log (`runs/<id>/events.jsonl`).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use hilt_api::RunState;

/// One agent event (agent-api spec §5) with hilt's sequence number.
pub type AgentEvent = hilt_api::RunEvent;

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
    /// Why this run's record could not be read (the run is reported as failed, its files
    /// are kept untouched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
    /// What the agent did to this run when it shut down (queued runs: kept or cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl RunRecord {
    /// The record reported for a run directory whose `record.json` does not parse.
    pub fn damaged(run_id: &str, reason: String, created_at: String) -> RunRecord {
        RunRecord {
            run_id: run_id.to_string(),
            status: RunState::Failed,
            mode: "unknown".into(),
            bench_id: None,
            lock_key: String::new(),
            exit_code: None,
            error: Some(format!("damaged run record: {reason}")),
            created_at,
            started_at: None,
            finished_at: None,
            current_test: None,
            current_step: None,
            skip_flash: false,
            verbose: false,
            artifact: None,
            seq: 0,
            failure: None,
            resource_keys: Vec::new(),
            damaged: Some(reason),
            notice: None,
        }
    }
}

/// The agent's final event of a run: a terminal type carrying `exit_code` (the runner's own
/// terminal events are folded into it and never logged separately).
pub fn is_terminal_event(e: &AgentEvent) -> bool {
    e.is_final()
}

/// The final event type of a terminal state.
pub fn terminal_kind(state: RunState) -> &'static str {
    match state {
        RunState::Done => "run.finished",
        RunState::Cancelled => "run.cancelled",
        RunState::Queued
        | RunState::Preparing
        | RunState::Running
        | RunState::UploadingArtifacts
        | RunState::Failed => "run.failed",
    }
}

pub fn save(dir: &Path, rec: &RunRecord) -> std::io::Result<()> {
    hilt_runner::rundir::write_json_atomic(&dir.join("record.json"), rec)
}

/// Why a run directory's record cannot be used.
#[derive(Debug)]
pub enum LoadError {
    /// No `record.json`: a submission cut off before it was acknowledged.
    Missing,
    /// Present but unreadable or not a record.
    Damaged(String),
}

pub fn load(dir: &Path) -> Result<RunRecord, LoadError> {
    let text = match std::fs::read(dir.join("record.json")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Damaged(format!("cannot read record.json: {e}"))),
    };
    serde_json::from_slice(&text)
        .map_err(|e| LoadError::Damaged(format!("record.json is not a run record: {e}")))
}

/// Makes a written record.json and its directory entry durable (one round).
pub fn sync(dir: &Path) {
    let _ = hilt_runner::rundir::sync_together(&[dir.join("record.json")], &[]);
}

/// A new run's first record (already written), on disk with the run's bench and suite and
/// the new run directory's entry in `runs_dir` before it returns (the submission is
/// acknowledged after this): one round of concurrent syncs.
pub fn sync_accepted(dir: &Path, runs_dir: &Path) -> std::io::Result<()> {
    let files: Vec<std::path::PathBuf> = ["record.json", "bench.yaml", "suite.yaml"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    hilt_runner::rundir::sync_together(&files, &[runs_dir.to_path_buf()])
}

/// The run's event log, in its directory.
pub const EVENTS_FILE: &str = "events.jsonl";

pub fn append_event(dir: &Path, e: &AgentEvent) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(EVENTS_FILE))?;
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

/// What recovery needs to know about a log, read line by line without keeping it.
#[derive(Default)]
pub struct LogSummary {
    pub last_seq: u64,
    pub has_started: bool,
    /// The agent's final event, if logged.
    pub final_event: Option<AgentEvent>,
}

pub fn summarize_events(dir: &Path) -> LogSummary {
    #[derive(Deserialize)]
    struct Head {
        seq: u64,
        event_type: String,
    }
    let mut s = LogSummary::default();
    let Ok(f) = std::fs::File::open(dir.join("events.jsonl")) else {
        return s;
    };
    for line in std::io::BufRead::lines(std::io::BufReader::new(f)).map_while(Result::ok) {
        let Ok(h) = serde_json::from_str::<Head>(&line) else {
            continue;
        };
        s.last_seq = s.last_seq.max(h.seq);
        match h.event_type.as_str() {
            "run.started" => s.has_started = true,
            "run.finished" | "run.failed" | "run.cancelled" => {
                if let Ok(e) = serde_json::from_str::<AgentEvent>(&line)
                    && is_terminal_event(&e)
                {
                    s.final_event = Some(e);
                }
            }
            _ => {}
        }
    }
    s
}

/// When a damaged run's directory was made (best effort, for listing).
pub fn created_at(dir: &Path) -> String {
    std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .map(hilt_model::run::timestamp)
        .unwrap_or_else(hilt_model::run::now)
}
