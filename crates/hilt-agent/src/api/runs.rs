//! Runs: submit (multipart and JSON), get, list, events (+ `?after=N` and SSE), cancel.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use base64::Engine;
use futures_util::Stream;
use serde::Deserialize;

use super::error::{ApiError, json_rejection};
use super::upload::{check_suffix, limits, receive, safe_name};
use hilt_api::{Accepted, ErrorBody, EventsPage, JsonRun, RunEvent, RunList, RunView};

use crate::record::{RunRecord, RunState};
use crate::state::Agent;
use crate::submit::{Cleanup, Submission, enqueue, new_run_dir};

fn accepted((rec, queue_depth): (RunRecord, usize)) -> Accepted {
    Accepted {
        run_id: rec.run_id,
        status: rec.status,
        mode: rec.mode,
        bench_id: rec.bench_id,
        queue_depth,
        created_at: rec.created_at,
    }
}

/// Uploaded-bench run: bench.yaml, suite.yaml and an optional artifact (agent-api §3.6).
#[utoipa::path(post, path = "/v1/runs", request_body(content_type = "multipart/form-data", content = hilt_api::MultipartRun),
    responses((status = 200, body = Accepted), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn submit_multipart(
    State(agent): State<Arc<Agent>>,
    mp: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Json<Accepted>, ApiError> {
    // A missing or invalid multipart Content-Type gets the JSON error shape too.
    let mp = mp.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected a multipart/form-data body: {}",
            e.body_text()
        ))
    })?;
    if !agent
        .registry()
        .config
        .as_ref()
        .is_none_or(|c| c.allow_uploaded_benches)
    {
        return Err(ApiError::BadRequest("this agent does not accept uploaded benches; submit to a registered bench with POST /v1/runs/json".into()));
    }
    let (run_id, dir) = new_run_dir(&agent)?;
    let mut cleanup = Cleanup::new(&dir);
    let up = receive(&agent, mp, &dir).await?;
    if !up.bench || !up.suite {
        return Err(ApiError::BadRequest(
            "bench_yaml and suite_yaml files are required".into(),
        ));
    }
    let needs_artifact = up.artifact.is_none() && !up.skip_flash;
    let plan = crate::submit::plan(&dir, up.skip_flash, needs_artifact).await?;
    let acc = enqueue(
        &agent,
        Submission {
            run_id,
            dir,
            bench_id: None,
            artifact: up.artifact,
            skip_flash: up.skip_flash,
            verbose: up.verbose,
            plan,
        },
        &mut cleanup,
    )
    .await?;
    Ok(Json(accepted(acc)))
}

/// Registered-bench run (agent-api §3.7).
#[utoipa::path(post, path = "/v1/runs/json", request_body = JsonRun,
    responses((status = 200, body = Accepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn submit_json(
    State(agent): State<Arc<Agent>>,
    body: Result<Json<JsonRun>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Accepted>, ApiError> {
    let Json(req) = body.map_err(json_rejection)?;
    if req.bench_id.is_empty() || req.suite_yaml.is_empty() {
        return Err(ApiError::Unprocessable(
            "bench_id and suite_yaml must not be empty".into(),
        ));
    }
    let bench_path = {
        let reg = agent.registry();
        if !reg.registered_mode() {
            return Err(ApiError::BadRequest(
                "this agent is not configured with registered benches".into(),
            ));
        }
        reg.benches
            .get(&req.bench_id)
            .map(|b| b.path.clone())
            .ok_or_else(|| ApiError::NotFound(format!("bench not found: {}", req.bench_id)))?
    };
    let (max_yaml, max_art) = limits(&agent);
    if req.suite_yaml.len() as u64 > max_yaml {
        return Err(ApiError::TooLarge(format!(
            "suite_yaml is larger than the limit of {max_yaml} bytes"
        )));
    }
    let artifact = match &req.artifact_base64 {
        None => None,
        Some(b64) => {
            if (b64.len() as u64 / 4) * 3 > max_art + 3 {
                return Err(ApiError::TooLarge(format!(
                    "artifact is larger than the limit of {max_art} bytes"
                )));
            }
            let raw = req
                .artifact_relpath
                .as_deref()
                .or(req.artifact_filename.as_deref())
                .unwrap_or("firmware.bin");
            let base = raw.rsplit('/').next().unwrap_or(raw);
            let name = safe_name(base)?;
            check_suffix(&name, &[".elf", ".hex", ".bin"], "artifact")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    ApiError::BadRequest(format!("artifact_base64 is not valid base64: {e}"))
                })?;
            if bytes.len() as u64 > max_art {
                return Err(ApiError::TooLarge(format!(
                    "artifact is larger than the limit of {max_art} bytes"
                )));
            }
            Some((name, bytes))
        }
    };
    let needs_artifact = artifact.is_none() && !req.skip_flash;
    let (run_id, dir) = new_run_dir(&agent)?;
    let mut cleanup = Cleanup::new(&dir);
    let io = |e: std::io::Error| ApiError::Internal(format!("cannot store the run: {e}"));
    std::fs::copy(&bench_path, dir.join("bench.yaml")).map_err(io)?;
    std::fs::write(dir.join("suite.yaml"), &req.suite_yaml).map_err(io)?;
    let artifact = match artifact {
        Some((name, bytes)) => {
            std::fs::write(dir.join(&name), bytes)
                .map_err(|e| super::upload::store_error("artifact", e))?;
            Some(name)
        }
        None => None,
    };
    let plan = crate::submit::plan(&dir, req.skip_flash, needs_artifact).await?;
    let acc = enqueue(
        &agent,
        Submission {
            run_id,
            dir,
            bench_id: Some(req.bench_id),
            artifact,
            skip_flash: req.skip_flash,
            verbose: req.verbose,
            plan,
        },
        &mut cleanup,
    )
    .await?;
    Ok(Json(accepted(acc)))
}

/// The status BenchCI clients understand: they wait for `done` or `failed`, so a cancelled
/// run is reported as `failed` with `"cancelled": true` beside it.
pub fn wire_status(s: RunState) -> &'static str {
    s.wire().as_str()
}

pub fn view(agent: &Agent, r: &RunRecord) -> RunView {
    view_with(r, agent.runs().queue_depth())
}

fn view_with(r: &RunRecord, queue_depth: usize) -> RunView {
    RunView {
        run_id: r.run_id.clone(),
        status: r.status.wire(),
        cancelled: r.status == RunState::Cancelled,
        mode: r.mode.clone(),
        bench_id: r.bench_id.clone(),
        exit_code: r.exit_code,
        error: r.error.clone(),
        created_at: r.created_at.clone(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        current_test: r.current_test.clone(),
        current_step: r.current_step.clone(),
        queue_depth,
        failure: r.failure.clone(),
        damaged: r.damaged.clone(),
        notice: r.notice.clone(),
    }
}

/// A run's full record (read from its directory once it has finished).
fn record(agent: &Agent, id: &str) -> Result<RunRecord, ApiError> {
    agent
        .record(id)
        .ok_or_else(|| ApiError::NotFound("run not found".into()))
}

#[utoipa::path(get, path = "/v1/runs/{run_id}", params(("run_id" = String, Path)), responses((status = 200, body = RunView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    // A live run's record is in memory; a finished one's is one small file (read inline,
    // as its event log is: cheaper than a hop to the blocking pool).
    let r = record(&agent, &id)?;
    Ok(Json(view(&agent, &r)))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only runs in this state.
    state: Option<String>,
    /// Only runs on this bench (`__uploaded__` for uploaded benches).
    bench_id: Option<String>,
    /// At most this many, newest first (default 100).
    limit: Option<usize>,
}

/// hilt extension: runs, newest first.
#[utoipa::path(get, path = "/v1/runs", params(ListQuery), responses((status = 200, body = RunList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(agent): State<Arc<Agent>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<RunList>, ApiError> {
    if let Some(s) = q.state.as_deref()
        && !LISTABLE_STATES.iter().any(|v| v.as_str() == s)
    {
        let valid: Vec<&str> = LISTABLE_STATES.iter().map(|v| v.as_str()).collect();
        return Err(ApiError::BadRequest(format!(
            "unknown state `{s}`; valid states: {}",
            valid.join(", ")
        )));
    }
    // The page is chosen from the summaries; only its records are read.
    let mut page: Vec<(u64, String)> = agent
        .runs()
        .map
        .iter()
        .filter(|(_, e)| {
            q.state
                .as_deref()
                .is_none_or(|s| e.sum.status.as_str() == s)
        })
        .filter(|(_, e)| {
            q.bench_id.as_deref().is_none_or(|b| {
                e.sum.bench.as_deref() == Some(b)
                    || (b == crate::state::UPLOADED_LOCK && e.sum.bench.is_none())
            })
        })
        .map(|(id, e)| (e.sum.seq, id.to_string()))
        .collect();
    page.sort_by(|a, b| b.cmp(a));
    page.truncate(q.limit.unwrap_or(100));
    let recs: Vec<RunRecord> = tokio::task::spawn_blocking({
        let agent = agent.clone();
        move || page.iter().filter_map(|(_, id)| agent.record(id)).collect()
    })
    .await
    .unwrap_or_default();
    let depth = agent.runs().queue_depth();
    Ok(Json(RunList {
        runs: recs.iter().map(|r| view_with(r, depth)).collect(),
    }))
}

/// The values `GET /v1/runs?state=` accepts (an unknown one is a 400 that lists these).
const LISTABLE_STATES: [RunState; 7] = RunState::ALL;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AfterQuery {
    /// Only events with a sequence number greater than this (hilt extension).
    #[serde(default)]
    after: u64,
}

#[utoipa::path(get, path = "/v1/runs/{run_id}/events", params(("run_id" = String, Path), AfterQuery), responses((status = 200, body = EventsPage), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    Query(q): Query<AfterQuery>,
) -> Result<Json<EventsPage>, ApiError> {
    let (state, events) = agent
        .events_after(&id, q.after)
        .ok_or_else(|| ApiError::NotFound("run not found".into()))?;
    Ok(Json(EventsPage {
        run_id: id,
        status: state.wire(),
        cancelled: state == RunState::Cancelled,
        events,
    }))
}

/// hilt extension: the run's events as Server-Sent Events, ending after the final one.
#[utoipa::path(get, path = "/v1/runs/{run_id}/events/stream", params(("run_id" = String, Path), AfterQuery), responses((status = 200, description = "text/event-stream: one RunEvent per message, id = seq", content_type = "text/event-stream", body = RunEvent), (status = 404, body = ErrorBody)))]
pub async fn stream(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    Query(q): Query<AfterQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    // Subscribe before reading the backlog so nothing falls between the two.
    let rx = {
        let runs = agent.runs();
        let e = runs
            .map
            .get(id.as_str())
            .ok_or_else(|| ApiError::NotFound("run not found".into()))?;
        e.log.as_ref().map(|l| l.subscribe())
    };
    let (state, backlog) = agent
        .events_after(&id, q.after)
        .ok_or_else(|| ApiError::NotFound("run not found".into()))?;
    let stream = async_stream(move |tx| async move {
        let mut last = q.after;
        for e in backlog {
            last = e.seq;
            if tx.send(e).await.is_err() {
                return;
            }
        }
        let Some(mut rx) = rx.filter(|_| !state.is_terminal()) else {
            return;
        };
        loop {
            let batch = match rx.recv().await {
                Ok(e) if e.seq <= last => continue,
                Ok(e) => vec![e],
                // A slow reader fell behind the live channel: catch up from the run's log
                // rather than skip what was dropped.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    match agent.events_after(&id, last) {
                        Some((_, missed)) => missed,
                        None => return,
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            for e in batch {
                last = e.seq;
                let end = crate::record::is_terminal_event(&e);
                if tx.send(e).await.is_err() || end {
                    return;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream fed by a task through a bounded channel (no extra crate).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<crate::record::AgentEvent>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures_util::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), |e| {
        Ok(SseEvent::default()
            .id(e.seq.to_string())
            .event(e.event_type.clone())
            .data(serde_json::to_string(&e).unwrap_or_default()))
    })
}

/// hilt extension: cancel a queued or executing run.
#[utoipa::path(post, path = "/v1/runs/{run_id}/cancel", params(("run_id" = String, Path)), responses((status = 200, body = RunView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    agent.dispatcher.cancel(&id).await?;
    let r = record(&agent, &id)?;
    Ok(Json(view(&agent, &r)))
}
