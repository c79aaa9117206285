//! Start-up recovery: the run directories are the store. Queued runs are queued again in
//! submission order; every other run is reconciled so that its record, its event log and
//! its results agree, whatever instant the previous agent died at:
//!
//! - a final record without its final event (killed between the two writes of an older
//!   agent) gets the event appended from the record;
//! - an executing record whose log already has the final event takes the event's verdict;
//! - an executing record whose runner finished (`results/results.json` complete) takes the
//!   runner's verdict, so results.json and the agent agree;
//! - otherwise the run was lost: failed, `exit_code: -1`, source agent.
//!
//! A `record.json` that cannot be read is a damaged run: listed and reported as failed with
//! the reason, its files left untouched.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::dispatcher::Dispatcher;
use crate::runlog::RunLog;

use serde_json::{Map, Value, json};

use hilt_model::run::{EventKind, RunResults};

use crate::record::{self, AgentEvent, LoadError, RunRecord, RunState};
use crate::worker::{Verdict, evidence_summary, verdict};

/// The exit code of a run lost to an agent restart (as a lost cloud run).
pub const LOST_EXIT_CODE: i32 = -1;

pub fn recover(d: &mut Dispatcher) {
    let agent = d.agent().clone();
    let Ok(entries) = std::fs::read_dir(agent.settings.runs_dir()) else {
        return;
    };
    // Each record is read, reconciled, summarised into the run table and dropped: only
    // queued runs (live again) and records that could not be saved stay whole in memory.
    let mut queued: Vec<RunRecord> = Vec::new();
    let mut max_seq = 0;
    for e in entries.flatten() {
        let dir = e.path();
        if !dir.is_dir() {
            continue;
        }
        let (rec, saved) = match record::load(&dir) {
            Ok(r) if r.status == RunState::Queued => {
                max_seq = max_seq.max(r.seq);
                queued.push(r);
                continue;
            }
            Ok(r) => reconcile(r, &dir),
            // A submission cut off before its record was written was never acknowledged.
            Err(LoadError::Missing) => {
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            Err(LoadError::Damaged(reason)) => {
                let id = e.file_name().to_string_lossy().into_owned();
                tracing::warn!(run_id = %id, dir = %dir.display(), %reason, "damaged run record: the run is reported as failed and its files are kept");
                let created = record::created_at(&dir);
                (RunRecord::damaged(&id, reason, created), true)
            }
        };
        max_seq = max_seq.max(rec.seq);
        if rec.status.is_terminal() {
            d.insert_finished(rec, !saved);
        } else {
            insert(d, rec);
        }
    }
    agent.next_seq.store(max_seq + 1, Ordering::SeqCst);
    // Queued again in submission order (FIFO across restarts).
    queued.sort_by_key(|r| r.seq);
    for rec in queued {
        insert(d, rec);
    }
}

/// Puts a run that is not finished back into the run table with a live writer and its
/// events in memory (queued when its record says so).
fn insert(d: &mut Dispatcher, rec: RunRecord) {
    let dir = d.agent().settings.run_dir(&rec.run_id);
    let log = Arc::new(RunLog::open(&dir, record::load_events(&dir)));
    d.insert_live(rec, log);
}

/// Makes a non-queued run's record and event log agree (see the module docs). Says
/// whether the record on disk is the returned one (false: it could not be saved).
pub fn reconcile(mut rec: RunRecord, dir: &Path) -> (RunRecord, bool) {
    let log = record::summarize_events(dir);
    let mut next = log.last_seq + 1;
    let mut append = |kind: &str, message: Option<String>, data: Map<String, Value>| {
        let ev = AgentEvent {
            seq: next,
            timestamp: hilt_model::run::now(),
            event_type: kind.to_string(),
            message,
            data,
        };
        next += 1;
        if let Err(e) = record::append_event(dir, &ev) {
            tracing::error!(run_id = %rec.run_id, error = %e, "cannot repair the run's event log");
        }
    };
    let final_event = log.final_event.as_ref();
    let left_queue = rec.started_at.is_some() || rec.status.is_active();
    if left_queue && !log.has_started {
        append(EventKind::RUN_STARTED, None, Map::new());
    }
    if rec.status.is_terminal() {
        if final_event.is_none() {
            tracing::warn!(run_id = %rec.run_id, "final event missing from the log: appended from the record");
            let data = final_data(rec.exit_code, rec.failure.clone(), None);
            append(record::terminal_kind(rec.status), rec.error.clone(), data);
        }
        return (rec, true);
    }
    if let Some(ev) = final_event {
        // Killed after the final event, before the record.
        rec.status = match ev.event_type.as_str() {
            "run.finished" => RunState::Done,
            "run.cancelled" => RunState::Cancelled,
            _ => RunState::Failed,
        };
        rec.exit_code = ev
            .data
            .get("exit_code")
            .and_then(Value::as_i64)
            .map(|c| c as i32);
        rec.error = ev.message.clone();
        rec.failure = ev.data.get("failure").filter(|f| !f.is_null()).cloned();
        rec.finished_at = Some(ev.timestamp.clone());
    } else if let Some(results) = complete_results(dir) {
        // The runner finished; the agent died before recording it.
        let code = hilt_runner::classify::exit_code(results.status, results.failure.as_ref());
        let Verdict {
            state,
            exit_code,
            error,
            failure,
        } = verdict(&results, code, None);
        tracing::warn!(run_id = %rec.run_id, state = state.as_str(), "run finished by its runner before the agent stopped: verdict taken from results.json");
        rec.status = state;
        rec.exit_code = exit_code;
        rec.error = error;
        rec.failure = failure;
        rec.finished_at = Some(hilt_model::run::now());
        let evidence = evidence_summary(&results.evidence, rec.bench_id.as_deref());
        let data = final_data(rec.exit_code, rec.failure.clone(), Some(evidence));
        append(record::terminal_kind(state), rec.error.clone(), data);
    } else {
        tracing::warn!(run_id = %rec.run_id, "run lost to an agent restart: recorded as failed");
        let reason = "the agent stopped while this run was executing (crash or kill); the run did not finish";
        rec.status = RunState::Failed;
        rec.exit_code = Some(LOST_EXIT_CODE);
        rec.finished_at = Some(hilt_model::run::now());
        rec.error = Some(format!("Agent restarted: {reason}"));
        rec.failure = Some(
            json!({"category": "UNKNOWN_ERROR", "source": "agent_cloud", "title": "Agent restarted",
            "message": reason, "explanation": "The agent process ended during the run, so the result is unknown; partial results are kept.",
            "suggestions": ["Check the agent's logs for why it stopped.", "Re-submit the run."]}),
        );
        let data = final_data(rec.exit_code, rec.failure.clone(), None);
        append(
            EventKind::RUN_FAILED,
            Some("Agent restarted during the run".into()),
            data,
        );
    }
    rec.current_step = None;
    if let Err(e) = record::save(dir, &rec) {
        tracing::error!(run_id = %rec.run_id, error = %e, "cannot save the recovered run record: it is kept in memory");
        return (rec, false);
    }
    (rec, true)
}

fn final_data(
    exit_code: Option<i32>,
    failure: Option<Value>,
    evidence: Option<Value>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("exit_code".into(), json!(exit_code));
    m.insert("failure".into(), failure.unwrap_or(Value::Null));
    m.insert("evidence".into(), evidence.unwrap_or(Value::Null));
    m
}

/// The runner's results when it got as far as writing them (results.json is written once,
/// atomically, with the final verdict).
fn complete_results(dir: &Path) -> Option<RunResults> {
    let text = std::fs::read(dir.join("results").join("results.json")).ok()?;
    serde_json::from_slice(&text).ok()
}
