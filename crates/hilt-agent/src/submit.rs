//! Accepting runs: files are written and the record is durable before the client gets its
//! run id, so an acknowledged run survives a crash.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Map, json};

use hilt_hw::CancelToken;

use crate::api::error::ApiError;
use crate::record::{self, RunRecord, RunState};
use crate::runlog::RunLog;
use crate::state::{Agent, Live, RunEntry, UPLOADED_LOCK, new_run_id};

/// A validated submission whose files are already in `dir`.
pub struct Submission {
    pub run_id: String,
    pub dir: std::path::PathBuf,
    pub bench_id: Option<String>,
    pub artifact: Option<String>,
    pub skip_flash: bool,
    pub verbose: bool,
}

/// Reserves a run id and its directory.
pub fn new_run_dir(agent: &Agent) -> Result<(String, std::path::PathBuf), ApiError> {
    if !agent.accepting.load(Ordering::SeqCst) {
        return Err(ApiError::Unavailable(
            "the agent is shutting down and accepts no new runs".into(),
        ));
    }
    let max = agent
        .registry()
        .config
        .as_ref()
        .map(|c| c.limits.max_queued_runs)
        .unwrap_or(100_000) as usize;
    if agent.runs().queue_depth() >= max {
        return Err(ApiError::Unavailable(format!(
            "the queue is full ({max} runs waiting); retry later"
        )));
    }
    let id = new_run_id();
    let dir = agent.settings.run_dir(&id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::Internal(format!("cannot create the run directory: {e}")))?;
    Ok((id, dir))
}

/// Records the run as queued (durably) and wakes the dispatcher.
pub fn enqueue(agent: &Arc<Agent>, s: Submission) -> Result<RunRecord, ApiError> {
    let mode = if s.bench_id.is_some() {
        "registered"
    } else {
        "uploaded"
    };
    let rec = RunRecord {
        run_id: s.run_id.clone(),
        status: RunState::Queued,
        mode: mode.into(),
        lock_key: s.bench_id.clone().unwrap_or_else(|| UPLOADED_LOCK.into()),
        bench_id: s.bench_id.clone(),
        exit_code: None,
        error: None,
        created_at: hilt_model::run::now(),
        started_at: None,
        finished_at: None,
        current_test: None,
        current_step: None,
        skip_flash: s.skip_flash,
        verbose: s.verbose,
        artifact: s.artifact,
        seq: agent.next_seq.fetch_add(1, Ordering::SeqCst),
        failure: None,
        resource_keys: resource_keys(&s.dir, s.skip_flash),
        damaged: None,
        notice: None,
    };
    record::save_durable(&s.dir, &rec)
        .and_then(|()| std::fs::File::open(agent.settings.runs_dir())?.sync_all())
        .map_err(|e| ApiError::Internal(format!("cannot persist the run: {e}")))?;
    insert(agent, rec.clone(), s.dir);
    agent.metrics.runs_submitted.fetch_add(1, Ordering::Relaxed);
    let data = match &s.bench_id {
        Some(b) => json!({"bench_id": b})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        None => Map::new(),
    };
    agent.emit(&rec.run_id, "run.queued", None, data);
    agent.wake.notify_one();
    Ok(rec)
}

/// The hardware the run will lock, read from its bench and suite (none when they do not
/// parse: such a run fails at once without touching anything).
fn resource_keys(dir: &std::path::Path, skip_flash: bool) -> Vec<String> {
    let lo = hilt_model::LoadOptions::default();
    match (
        hilt_model::load_bench(&dir.join("bench.yaml"), lo),
        hilt_model::load_suite(&dir.join("suite.yaml"), lo),
    ) {
        (Ok(b), Ok(s)) => hilt_runner::lock_keys(&b.value, &s.value, skip_flash)
            .into_iter()
            .map(|k| format!("resource:{k}"))
            .collect(),
        _ => Vec::new(),
    }
}

/// Puts a record into memory (and into the queue when it is queued). Only a run that is
/// not finished gets a live writer with its events in memory.
pub fn insert(agent: &Agent, rec: RunRecord, dir: std::path::PathBuf) {
    let queued = rec.status == RunState::Queued;
    let id = rec.run_id.clone();
    let live = (!rec.status.is_terminal()).then(|| Live {
        log: Arc::new(RunLog::open(&dir, record::load_events(&dir))),
        cancel: CancelToken::new(),
        cancel_signal: None,
    });
    let mut runs = agent.runs();
    runs.map.insert(id.clone(), RunEntry { rec, dir, live });
    if queued {
        runs.queue.push_back(id);
    }
}
