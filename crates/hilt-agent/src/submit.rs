//! Accepting runs: files are written and the record is durable before the client gets its
//! run id, so an acknowledged run survives a crash.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Map, json};

use crate::api::error::ApiError;
use crate::record::{self, RunRecord, RunState};
use crate::runlog::RunLog;
use crate::state::{Agent, UPLOADED_LOCK, new_run_id};

/// A validated submission whose files are already in `dir`.
pub struct Submission {
    pub run_id: String,
    pub dir: PathBuf,
    pub bench_id: Option<String>,
    pub artifact: Option<String>,
    pub skip_flash: bool,
    pub verbose: bool,
    /// The bench and suite in `dir`, loaded and validated.
    pub plan: hilt_runner::Plan,
}

/// Loads and validates the run's bench and suite off the request threads; an invalid suite
/// is refused (422) with its located diagnostics instead of being queued.
///
/// `needs_artifact` (no artifact, no `skip_flash`): the run is refused (400) when its suite
/// flashes, or when the suite could not be read at all (what it would flash cannot be
/// told). BenchCI's agent refuses such a run whatever the suite; a suite that never
/// flashes has no use for an artifact. The answer comes from the plan, not a second parse.
pub async fn plan(
    dir: &Path,
    skip_flash: bool,
    needs_artifact: bool,
) -> Result<hilt_runner::Plan, ApiError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let opts = hilt_runner::PlanOptions {
            strict: false,
            skip_flash,
        };
        let artifact_required = || {
            ApiError::BadRequest(
                "artifact is required unless skip_flash=true (the suite has a flash step)".into(),
            )
        };
        match hilt_runner::Plan::load(&dir.join("bench.yaml"), &dir.join("suite.yaml"), &opts) {
            Ok(plan) if needs_artifact && flashes(plan.suite()) => Err(artifact_required()),
            Ok(plan) => Ok(plan),
            Err(e) if needs_artifact && e.suite.as_ref().is_none_or(|s| flashes(&s.value)) => {
                Err(artifact_required())
            }
            Err(e) => {
                // Name the files as the client sent them, not where the agent keeps them.
                let prefix = format!("{}/", dir.display());
                let lines: Vec<String> = e
                    .diagnostics
                    .iter()
                    .map(|d| d.to_string().replacen(&prefix, "", 1))
                    .collect();
                Err(ApiError::Unprocessable(format!(
                    "invalid bench or suite:\n{}",
                    lines.join("\n")
                )))
            }
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("planning the run failed: {e}")))?
}

fn flashes(suite: &hilt_model::suite::Suite) -> bool {
    suite.tests.iter().any(|t| {
        t.steps
            .iter()
            .any(|st| matches!(st, hilt_model::suite::Step::Flash(_)))
    })
}

/// Reserves a run id and its directory.
pub fn new_run_dir(agent: &Agent) -> Result<(String, PathBuf), ApiError> {
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

/// Removes a half-written run directory when a submission is refused before the dispatcher
/// has the run; from then on the directory is the run's (a worker may be in it).
pub struct Cleanup(Option<PathBuf>);

impl Cleanup {
    pub fn new(dir: &Path) -> Cleanup {
        Cleanup(Some(dir.to_path_buf()))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Records the run as queued, logs `run.queued`, hands it to the dispatcher and returns
/// the record and the queue depth once all of it is durable. `cleanup` is disarmed as soon
/// as the dispatcher has the run.
pub async fn enqueue(
    agent: &Arc<Agent>,
    s: Submission,
    cleanup: &mut Cleanup,
) -> Result<(RunRecord, usize), ApiError> {
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
        damaged: None,
        notice: None,
    };
    // The record is in place before the dispatcher knows the run (so a worker's later
    // record is never overwritten by this one); it is made durable below.
    record::save(&s.dir, &rec)
        .map_err(|e| ApiError::Internal(format!("cannot persist the run: {e}")))?;
    agent.metrics.runs_submitted.fetch_add(1, Ordering::Relaxed);
    let data = match &s.bench_id {
        Some(b) => json!({"bench_id": b})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        None => Map::new(),
    };
    let log = Arc::new(RunLog::open(&s.dir, Vec::new()));
    log.append("run.queued", None, data, |_| {});
    let depth = agent.dispatcher.submit(rec.clone(), log, s.plan).await?;
    cleanup.0 = None;
    // Acknowledged only once durable: one round of syncs, overlapping the run's start.
    let (dir, runs_dir) = (s.dir.clone(), agent.settings.runs_dir());
    let synced = tokio::task::spawn_blocking(move || record::sync_accepted(&dir, &runs_dir))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    if let Err(e) = synced {
        // The run may already be executing: cancel it and keep its directory (its record
        // and events say what happened).
        let _ = agent.dispatcher.cancel(&rec.run_id).await;
        return Err(ApiError::Internal(format!(
            "cannot persist the run {}: it was cancelled: {e}",
            rec.run_id
        )));
    }
    Ok((rec, depth))
}
