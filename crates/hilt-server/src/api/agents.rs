//! The cloud-agent backend calls (agent-api spec §6), as BenchCI's `benchci agent cloud`
//! makes them: heartbeat, bench sync, the assignment long-poll, events, the results
//! archive and completion. Reports about a run are accepted only from the agent holding
//! its lease, while the run is active.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hilt_agent::api::error::ApiError;
use hilt_api::{
    Ack, Assignment, BenchIdMapping, BenchSync, BenchSyncReply, CompleteRun, ErrorBody,
    FENCING_TOKEN_HEADER, Heartbeat, HeartbeatReply, Lease, NextAssignment,
};
use serde_json::Value;

use super::auth::AgentCaller;
use super::event_batch::RawBatch;
use super::{body, firmware, store_error};
use crate::store::{Appended, BenchReport, Completion, RunRow, state};
use crate::{App, artifacts, ids, sched};

/// Most benches one sync may report, most events one call may carry.
const MAX_BENCHES: usize = 256;
const MAX_EVENTS: usize = 10_000;

fn lease_until(app: &App) -> i64 {
    ids::now_ms() + app.settings.lease.as_millis() as i64
}

pub async fn heartbeat(
    State(app): State<Arc<App>>,
    agent: AgentCaller,
    req: Result<Json<Heartbeat>, JsonRejection>,
) -> Result<Json<HeartbeatReply>, ApiError> {
    let req = body(req)?;
    app.store
        .heartbeat(
            &agent.agent_id,
            req.agent_name.as_deref(),
            req.region.as_deref(),
            lease_until(&app),
        )
        .await
        .map_err(store_error)?;
    let cancel_run_ids = app
        .store
        .cancel_requested(&agent.agent_id)
        .await
        .map_err(store_error)?;
    Ok(Json(HeartbeatReply {
        ok: true,
        cancel_run_ids,
    }))
}

pub async fn sync(
    State(app): State<Arc<App>>,
    agent: AgentCaller,
    req: Result<Json<BenchSync>, JsonRejection>,
) -> Result<Json<BenchSyncReply>, ApiError> {
    let req = body(req)?;
    if req.benches.len() > MAX_BENCHES {
        return Err(ApiError::Unprocessable(format!(
            "a sync may report at most {MAX_BENCHES} benches, got {}",
            req.benches.len()
        )));
    }
    let now = ids::now();
    let mut mappings = Vec::with_capacity(req.benches.len());
    for b in &req.benches {
        let reported = b.bench_id.trim();
        if reported.is_empty() || reported.len() > 200 {
            return Err(ApiError::Unprocessable(
                "every bench needs a bench_id of 1-200 bytes".into(),
            ));
        }
        let health = sched::health::status(b);
        let concerns = sched::health::concerns(b);
        let labels = sched::health::labels(b);
        let health_summary = b
            .rest
            .get("health_summary")
            .or_else(|| b.rest.get("health").and_then(|h| h.get("summary")))
            .and_then(Value::as_str);
        let summary = serde_json::to_string(b).unwrap_or_default();
        let bench_id = app
            .store
            .sync_bench(BenchReport {
                workspace_id: &agent.principal.workspace_id,
                agent_id: &agent.agent_id,
                reported_bench_id: reported,
                name: b.name.as_deref().unwrap_or(reported),
                status: b.status.as_deref().unwrap_or("idle"),
                current_run_id: b.current_run_id.as_deref(),
                health_status: health.as_deref(),
                summary: &summary,
                now: &now,
                labels: &labels,
                concerns: &concerns,
                health_summary,
            })
            .await
            .map_err(store_error)?;
        mappings.push(BenchIdMapping {
            reported_bench_id: reported.to_string(),
            bench_id,
        });
    }
    // A bench that turned healthy may take a queued run now.
    app.wake(&agent.agent_id);
    Ok(Json(BenchSyncReply {
        bench_id_mappings: mappings,
    }))
}

/// The long-poll: answers the moment a run for one of this agent's benches can be claimed,
/// else `{"assignment": null}` after `settings.long_poll`. A wake-up made in another replica
/// arrives as a notification (`wake.rs`).
pub async fn next(
    State(app): State<Arc<App>>,
    agent: AgentCaller,
    headers: HeaderMap,
) -> Result<Json<NextAssignment>, ApiError> {
    let base = firmware::base_url(&headers)?;
    let deadline = tokio::time::Instant::now() + app.settings.long_poll;
    loop {
        // Registered before the claim, so a submission between the claim and the wait
        // still wakes this poll.
        let waker = app.waker(&agent.agent_id);
        let woken = waker.notified();
        let mut woken = std::pin::pin!(woken);
        woken.as_mut().enable();
        let lease = lease_until(&app);
        // An agent silent for a lease is lost (its runs fail): a poll of its that is still
        // open — a connection cut by a partition looks open to the server — takes nothing,
        // or the run would go to an agent that never hears of it.
        let seen_since = ids::ms_to_rfc3339(ids::now_ms() - app.settings.lease.as_millis() as i64);
        let claimed = app
            .store
            .claim(
                &agent.principal.workspace_id,
                &agent.agent_id,
                lease,
                &ids::now(),
                &seen_since,
            )
            .await
            .map_err(store_error)?;
        if let Some(run) = claimed {
            return Ok(Json(NextAssignment {
                assignment: Some(assignment(&app, run, lease, &base).await?),
            }));
        }
        // On a shared store a wake-up from another replica may be lost: claim again at
        // least every `recheck`.
        let until = if app.store.shared() {
            deadline.min(tokio::time::Instant::now() + app.settings.recheck)
        } else {
            deadline
        };
        if tokio::time::timeout_at(until, woken).await.is_err()
            && tokio::time::Instant::now() >= deadline
        {
            return Ok(Json(NextAssignment { assignment: None }));
        }
    }
}

async fn assignment(
    app: &App,
    run: RunRow,
    lease: i64,
    base: &str,
) -> Result<Assignment, ApiError> {
    if let Ok(created) = run.created_at.parse::<jiff::Timestamp>() {
        let waited = jiff::Timestamp::now().duration_since(created);
        app.metrics.dispatched(waited.as_secs_f64());
    }
    // The firmware is fetched from the artifact store through the server (streamed), never
    // inlined: an assignment stays small whatever the image size.
    let fw = match &run.artifact_name {
        Some(_) => firmware::grant_url(app, base, &run.id).await?,
        None => None,
    };
    Ok(Assignment {
        agent_id: run.agent_id.clone().unwrap_or_default(),
        run_id: run.id,
        bench_id: run.bench_id,
        suite_yaml: run.suite_yaml,
        artifact_base64: None,
        artifact_filename: run.artifact_name,
        firmware_url: fw.as_ref().map(|f| f.url.clone()),
        firmware_url_redacted: fw.as_ref().map(|f| f.redacted.clone()),
        firmware_sha256: fw.map(|f| f.sha256),
        skip_flash: run.skip_flash,
        verbose: run.verbose,
        lease: Lease {
            fencing_token: run.fence,
            expires_at: ids::ms_to_rfc3339(lease),
        },
    })
}

/// The fencing token a hilt agent sent with a report (`X-Hilt-Fencing-Token`), if any.
fn fence(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(FENCING_TOKEN_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{FENCING_TOKEN_HEADER} must be the integer lease.fencing_token of the assignment"
                ))
            }),
    }
}

/// The run, if this agent holds its lease (under `fence`, when the report names one) and
/// it is still active.
async fn held_run(
    app: &App,
    agent: &AgentCaller,
    run_id: &str,
    fence: Option<i64>,
) -> Result<RunRow, ApiError> {
    let run = app
        .store
        .run(&agent.principal.workspace_id, run_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("run not found: {run_id}")))?;
    held(&run, agent, fence)?;
    Ok(run)
}

/// Refuses a report on `run` unless this agent holds its lease (under `fence`, when the
/// report names one) and it is still active.
fn held(run: &RunRow, agent: &AgentCaller, fence: Option<i64>) -> Result<(), ApiError> {
    let run_id = &run.id;
    let active = run.state == state::PREPARING || run.state == state::RUNNING;
    if run.agent_id.as_deref() != Some(agent.agent_id.as_str()) || !active {
        return Err(ApiError::Conflict(format!(
            "run {run_id} is not held by this agent (it is {}): a report under a lost or ended lease is refused",
            run.state
        )));
    }
    if let Some(f) = fence.filter(|f| *f != run.fence) {
        return Err(ApiError::Conflict(format!(
            "run {run_id}: stale lease (fencing token {f}, the run's is {}): the report is refused",
            run.fence
        )));
    }
    Ok(())
}

pub async fn events(
    State(app): State<Arc<App>>,
    agent: AgentCaller,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    req: Result<Json<RawBatch>, JsonRejection>,
) -> Result<Json<Ack>, Response> {
    let req = body(req).map_err(IntoResponse::into_response)?;
    if req.events.len() > MAX_EVENTS {
        return Err(ApiError::Unprocessable(format!(
            "at most {MAX_EVENTS} events per call, got {}",
            req.events.len()
        ))
        .into_response());
    }
    let rows = req.rows().map_err(IntoResponse::into_response)?;
    let fence = fence(&headers).map_err(IntoResponse::into_response)?;
    let run = held_run(&app, &agent, &run_id, fence)
        .await
        .map_err(IntoResponse::into_response)?;
    if run.cancel_requested_at.is_some() {
        // The agent stops the run; its events are no longer recorded.
        let text = format!("run {run_id} was cancelled by a user: stop it and complete it");
        return Err((
            StatusCode::CONFLICT,
            Json(ErrorBody::new(text).with_code("run_cancelled")),
        )
            .into_response());
    }
    // Sequenced events are stored once and in order: a replayed batch (the agent did not
    // see the answer, or the server restarted) is acknowledged without storing anything
    // twice; a gap is refused whole, never stored out of order.
    match app
        .store
        .append_events(&run_id, rows, &ids::now())
        .await
        .map_err(|e| store_error(e).into_response())?
    {
        Appended::Stored { stored, .. } => {
            app.metrics.events_ingested(stored);
            Ok(Json(Ack { ok: true }))
        }
        Appended::Gap { expected, got } => Err(ApiError::Conflict(format!(
            "run {run_id}: event seq gap: expected seq {expected}, got {got}; nothing of the batch was stored"
        ))
        .into_response()),
    }
}

pub async fn artifacts(
    State(app): State<Arc<App>>,
    agent: AgentCaller,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Json<Ack>, ApiError> {
    held_run(&app, &agent, &run_id, fence(&headers)?).await?;
    let cap = app.settings.max_artifacts_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap.saturating_add(64 * 1024)) {
        return Err(ApiError::TooLarge(format!(
            "the results archive exceeds the limit of {cap} bytes"
        )));
    }
    let mut multipart = multipart.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let dest = artifacts::results_key(&run_id);
    loop {
        let field = multipart.next_field().await.map_err(|e| {
            ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
        })?;
        let Some(field) = field else {
            return Err(ApiError::BadRequest(
                "the multipart part `artifact_zip` is missing".into(),
            ));
        };
        if field.name() == Some("artifact_zip") {
            let (size, sha) = app.artifacts.receive(field, &dest, cap).await?;
            app.store
                .set_artifacts(&run_id, size, &sha)
                .await
                .map_err(store_error)?;
            return Ok(Json(Ack { ok: true }));
        }
    }
}

pub async fn complete(
    State(app): State<Arc<App>>,
    agent: AgentCaller,
    Path(run_id): Path<String>,
    headers: HeaderMap,
    req: Result<Json<CompleteRun>, JsonRejection>,
) -> Result<Json<Ack>, ApiError> {
    let req = body(req)?;
    let fence = fence(&headers)?;
    let final_state = match req.status.as_str() {
        "done" => state::DONE,
        "failed" => state::FAILED,
        other => {
            return Err(ApiError::Unprocessable(format!(
                "status must be \"done\" or \"failed\", got {other:?}"
            )));
        }
    };
    let run = app
        .store
        .run(&agent.principal.workspace_id, &run_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("run not found: {run_id}")))?;
    // BenchCI retries a completion whose answer it did not see: the same agent repeating
    // the completion already recorded is acknowledged, nothing changes. Any other report
    // on an ended run (a lease lost meanwhile) is refused below.
    let mine = run.agent_id.as_deref() == Some(agent.agent_id.as_str());
    let same_lease = fence.is_none_or(|f| f == run.fence);
    if mine
        && same_lease
        && run.state == final_state
        && run.exit_code == req.exit_code
        && run.cancel_requested_at.is_none()
    {
        return Ok(Json(Ack { ok: true }));
    }
    held(&run, &agent, fence)?;
    let failure = match (&req.failure, final_state) {
        (Some(f), _) => Some(f.clone()),
        (None, s) if s == state::FAILED => last_failure(&app, &run_id).await?,
        _ => None,
    };
    let failure_text = failure.as_ref().map(Value::to_string);
    let finished = req.finished_at.clone().unwrap_or_else(ids::now);
    let cancelled = sched::cancelled_failure("cancelled by a user while it ran");
    let completed = app
        .store
        .complete(
            &run_id,
            &agent.agent_id,
            Completion {
                state: final_state,
                exit_code: req.exit_code,
                error: req.error.as_deref(),
                failure: failure_text.as_deref(),
                started_at: req.started_at.as_deref(),
                finished_at: &finished,
            },
            (sched::CANCELLED_EXIT, &cancelled),
        )
        .await
        .map_err(store_error)?;
    if !completed {
        return Err(ApiError::Conflict(format!(
            "run {run_id} is no longer held by this agent"
        )));
    }
    // Its bench is free: the next queued run on it can go to this agent.
    app.wake(&agent.agent_id);
    Ok(Json(Ack { ok: true }))
}

/// The failure of the run's last `run.failed` event (BenchCI sends the failure there and
/// in `complete` only when the archive upload failed).
async fn last_failure(app: &App, run_id: &str) -> Result<Option<Value>, ApiError> {
    let events = app.store.events(run_id).await.map_err(store_error)?;
    Ok(events.iter().rev().find_map(|(_, body)| {
        let v: Value = serde_json::from_str(body).ok()?;
        if v.get("event_type")?.as_str()? != "run.failed" {
            return None;
        }
        v.get("data")?
            .get("failure")
            .filter(|f| f.is_object())
            .cloned()
    }))
}
