//! Accepting runs: files are written and the record is durable before the client gets its
//! run id, so an acknowledged run survives a crash.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Map, json};
use tokio::sync::broadcast;

use hilt_hw::CancelToken;

use crate::api::error::ApiError;
use crate::record::{self, RunRecord, RunState};
use crate::state::{Agent, RunEntry, UPLOADED_LOCK, new_run_id};

/// A validated submission whose files are already in `dir`.
pub struct Submission {
    pub run_id: String,
    pub dir: std::path::PathBuf,
    pub bench_id: Option<String>,
    pub artifact: Option<String>,
    pub skip_flash: bool,
    pub verbose: bool,
    /// The bench and suite in `dir`, loaded and validated.
    pub plan: hilt_runner::Plan,
}

/// Loads and validates the run's bench and suite off the request threads; an invalid suite
/// is refused (422) with its located diagnostics instead of being queued.
pub async fn plan(dir: &std::path::Path, skip_flash: bool) -> Result<hilt_runner::Plan, ApiError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let opts = hilt_runner::PlanOptions {
            strict: false,
            skip_flash,
        };
        hilt_runner::Plan::load(&dir.join("bench.yaml"), &dir.join("suite.yaml"), &opts).map_err(
            |e| {
                // Name the files as the client sent them, not where the agent keeps them.
                let prefix = format!("{}/", dir.display());
                let lines: Vec<String> = e
                    .diagnostics
                    .iter()
                    .map(|d| d.to_string().replacen(&prefix, "", 1))
                    .collect();
                ApiError::Unprocessable(format!("invalid bench or suite:\n{}", lines.join("\n")))
            },
        )
    })
    .await
    .map_err(|e| ApiError::Internal(format!("planning the run failed: {e}")))?
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
        resource_keys: s
            .plan
            .lock_keys()
            .into_iter()
            .map(|k| format!("resource:{k}"))
            .collect(),
    };
    record::save_accepted(&s.dir, &rec, &agent.settings.runs_dir())
        .map_err(|e| ApiError::Internal(format!("cannot persist the run: {e}")))?;
    insert(agent, rec.clone(), s.dir, true);
    if let Some(e) = agent.runs().map.get_mut(&rec.run_id) {
        e.plan = Some(s.plan);
    }
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

/// Puts a record into memory (and into the queue when it is queued).
pub fn insert(agent: &Agent, rec: RunRecord, dir: std::path::PathBuf, live: bool) {
    let (tx, _) = broadcast::channel(1024);
    let queued = rec.status == RunState::Queued;
    let id = rec.run_id.clone();
    let events = if live || queued {
        Some(record::load_events(&dir))
    } else {
        None
    };
    let next_seq = events
        .as_ref()
        .map(|v| v.len() as u64)
        .unwrap_or_else(|| record::load_events(&dir).len() as u64)
        + 1;
    let mut runs = agent.runs();
    runs.map.insert(
        id.clone(),
        RunEntry {
            rec,
            dir,
            events,
            next_seq,
            tx,
            cancel: CancelToken::new(),
            cancel_signal: None,
            plan: None,
        },
    );
    if queued {
        runs.queue.push_back(id);
    }
}

/// After a restart: queued runs are queued again in submission order; runs that were
/// executing when the agent died are failed with a clear reason (their partial results
/// stay downloadable).
pub fn recover(agent: &Arc<Agent>) {
    let Ok(entries) = std::fs::read_dir(agent.settings.runs_dir()) else {
        return;
    };
    let mut recs: Vec<(RunRecord, std::path::PathBuf)> = Vec::new();
    for e in entries.flatten() {
        match record::load(&e.path()) {
            Some(r) => recs.push((r, e.path())),
            // A submission cut off before its record was written was never acknowledged.
            None if e.path().is_dir() && !e.path().join("record.json").exists() => {
                let _ = std::fs::remove_dir_all(e.path());
            }
            None => {}
        }
    }
    recs.sort_by_key(|(r, _)| r.seq);
    let max_seq = recs.iter().map(|(r, _)| r.seq).max().unwrap_or(0);
    agent.next_seq.store(max_seq + 1, Ordering::SeqCst);
    for (mut rec, dir) in recs {
        let interrupted = rec.status.is_active();
        if interrupted {
            rec.status = RunState::Failed;
            rec.finished_at = Some(hilt_model::run::now());
            let reason = "the agent stopped while this run was executing (crash or kill); the run did not finish";
            rec.error = Some(format!("Agent restarted: {reason}"));
            rec.failure = Some(
                json!({"category": "UNKNOWN_ERROR", "source": "agent_cloud", "title": "Agent restarted",
                "message": reason, "explanation": "The agent process ended during the run, so the result is unknown; partial results are kept.",
                "suggestions": ["Check the agent's logs for why it stopped.", "Re-submit the run."]}),
            );
            let _ = record::save(&dir, &rec);
        }
        let id = rec.run_id.clone();
        insert(agent, rec, dir, false);
        if interrupted {
            let data = json!({"exit_code": null, "failure": agent.runs().map[&id].rec.failure})
                .as_object()
                .cloned()
                .unwrap_or_default();
            agent.emit(
                &id,
                "run.failed",
                Some("Agent restarted during the run".into()),
                data,
            );
        }
    }
    agent.wake.notify_one();
}
