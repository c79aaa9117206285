//! Runs as users and CI see them: submit by bench id (the agent API's JSON submission,
//! agent-api §3.7) or by tags/capabilities, read one (a queued run with its queue reason,
//! position and estimated start), list, events, cancel, and the results archive its agent
//! uploaded.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hilt_agent::api::error::ApiError;
use hilt_agent::api::upload::{check_suffix, safe_name};
use hilt_api::{
    EventsPage, RunEvent, RunState, ServerRun, ServerRunList, StoredArtifacts, SubmitRun,
};
use serde::Deserialize;

use super::auth::User;
use super::{body, store_error};
use crate::sched::queue::Snapshot;
use crate::store::{Completion, FirmwareRow, NewRun, Principal, RunRow, state};
use crate::{App, artifacts, ids, sched};

/// Largest suite accepted, bytes (the agent's default `limits.max_yaml_bytes`).
const MAX_SUITE_BYTES: usize = 256 * 1024;
/// Most tags (or capabilities) one run may ask for.
const MAX_LABELS: usize = 32;

/// What a queued run waits for; `None` for any other state.
pub type Queue = Option<hilt_api::QueueInfo>;

fn json_list(text: Option<&str>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

pub fn view(r: RunRow, queue: Queue) -> ServerRun {
    let status = match r.state.as_str() {
        state::QUEUED => RunState::Queued,
        state::PREPARING => RunState::Preparing,
        state::RUNNING => RunState::Running,
        state::DONE => RunState::Done,
        state::CANCELLED => RunState::Cancelled,
        _ => RunState::Failed,
    };
    ServerRun {
        run_id: r.id,
        status: status.wire(),
        cancelled: status == RunState::Cancelled,
        cancel_requested: r.cancel_requested_at.is_some() && status.is_active(),
        mode: "registered".into(),
        bench_id: (!r.bench_id.is_empty()).then_some(r.bench_id),
        tags: json_list(r.tags.as_deref()),
        capabilities: json_list(r.capabilities.as_deref()),
        priority: r.priority,
        queue,
        agent_id: r.agent_id,
        exit_code: r.exit_code,
        error: r.error,
        failure: r.failure.and_then(|f| serde_json::from_str(&f).ok()),
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        artifacts: r.artifacts_sha256.map(|sha256| StoredArtifacts {
            size_bytes: r.artifacts_size.unwrap_or(0),
            sha256,
        }),
    }
}

/// Runs with the queue view of those still queued: one run's view reads what concerns that
/// run only; several share one snapshot of the workspace.
async fn views(app: &App, ws: &str, rows: Vec<RunRow>) -> Result<Vec<ServerRun>, ApiError> {
    let queued = rows.iter().filter(|r| r.state == state::QUEUED).count();
    let snapshot = if queued > 1 {
        Some(Snapshot::load(app, ws).await.map_err(store_error)?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let queue = if r.state == state::QUEUED {
            let uses = app.store.run_uses(&r.id).await.map_err(store_error)?;
            Some(queue_info(app, ws, snapshot.as_ref(), &r, &uses).await?)
        } else {
            None
        };
        out.push(view(r, queue));
    }
    Ok(out)
}

/// The queue view of a queued run, from `snapshot` or else from one loaded for the run.
async fn queue_info(
    app: &App,
    ws: &str,
    snapshot: Option<&Snapshot>,
    r: &RunRow,
    uses: &[String],
) -> Result<hilt_api::QueueInfo, ApiError> {
    Ok(match snapshot {
        Some(s) => s.queue(r, uses),
        None => Snapshot::for_run(app, ws, r)
            .await
            .map_err(store_error)?
            .queue(r, uses),
    })
}

async fn view_one(app: &App, ws: &str, r: RunRow) -> Result<ServerRun, ApiError> {
    let mut v = views(app, ws, vec![r]).await?;
    Ok(v.remove(0))
}

/// The firmware of a submission: (stored name, bytes), checked like the agent checks it.
fn firmware(req: &SubmitRun, cap: u64) -> Result<Option<(String, Vec<u8>)>, ApiError> {
    let Some(b64) = req.artifact_base64.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let given = req
        .artifact_relpath
        .as_deref()
        .or(req.artifact_filename.as_deref())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "artifact_base64 needs artifact_filename or artifact_relpath".into(),
            )
        })?;
    let base = given.rsplit('/').next().unwrap_or(given);
    let name = safe_name(base)?;
    check_suffix(&name, &[".elf", ".hex", ".bin"], "artifact")?;
    if (b64.len() as u64) / 4 * 3 > cap.saturating_add(3) {
        return Err(ApiError::TooLarge(format!(
            "the artifact exceeds the limit of {cap} bytes"
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ApiError::BadRequest(format!("artifact_base64 is not valid base64: {e}")))?;
    if bytes.len() as u64 > cap {
        return Err(ApiError::TooLarge(format!(
            "the artifact is {} bytes; the limit is {cap} bytes",
            bytes.len()
        )));
    }
    Ok(Some((name, bytes)))
}

/// Tags or capabilities as submitted: trimmed, non-empty, short, few.
fn labels(kind: &str, items: &[String]) -> Result<Vec<String>, ApiError> {
    if items.len() > MAX_LABELS {
        return Err(ApiError::Unprocessable(format!(
            "at most {MAX_LABELS} {kind}, got {}",
            items.len()
        )));
    }
    let mut out = Vec::new();
    for t in items {
        let t = t.trim();
        if t.is_empty() || t.len() > 100 || t.contains(',') {
            return Err(ApiError::Unprocessable(format!(
                "every entry of {kind} must be 1-100 bytes without commas, got {t:?}"
            )));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// `POST /v1/runs` (and `/v1/runs/json`): a JSON body ([`SubmitRun`], the agent API's
/// shape plus tags, capabilities and priority), or on `/v1/runs` a `multipart/form-data`
/// body whose firmware part is streamed to the artifact store.
pub async fn submit(
    State(app): State<Arc<App>>,
    User(p): User,
    req: Request,
) -> Result<(StatusCode, Json<ServerRun>), ApiError> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if multipart {
        let mp = Multipart::from_request(req, &app).await.map_err(|e| {
            ApiError::BadRequest(format!(
                "expected a multipart/form-data body: {}",
                e.body_text()
            ))
        })?;
        return submit_multipart(app, p, mp).await;
    }
    let req = body(Json::<SubmitRun>::from_request(req, &app).await)?;
    let firmware = firmware(&req, app.settings.max_firmware_bytes)?;
    let s = Submission {
        bench_id: req.bench_id.clone().unwrap_or_default(),
        tags: req.tags.clone(),
        capabilities: req.capabilities.clone(),
        priority: req.priority,
        suite_yaml: req.suite_yaml,
        skip_flash: req.skip_flash,
        verbose: req.verbose,
    };
    let checked = check_submission(&s)?;
    let id = ids::new_id();
    let stored = match firmware {
        Some((name, bytes)) => {
            let (size, sha256) = app
                .artifacts
                .put(&artifacts::firmware_key(&id, &name), bytes)
                .await?;
            Some(FirmwareRow { name, size, sha256 })
        }
        None => None,
    };
    let outcome = queue(&app, &p, &id, s, checked, stored).await;
    if outcome.is_err()
        && let Err(e) = app.artifacts.delete_run(&id).await
    {
        tracing::warn!("cannot delete the objects of refused submission {id}: {e}");
    }
    outcome
}

/// What a submission asks for, once its firmware is stored.
struct Submission {
    /// Empty for a run by tags/capabilities.
    bench_id: String,
    tags: Vec<String>,
    capabilities: Vec<String>,
    priority: i32,
    suite_yaml: String,
    skip_flash: bool,
    verbose: bool,
}

/// A submission's labels, checked: (tags, capabilities, by labels rather than bench id).
struct Checked {
    tags: Vec<String>,
    caps: Vec<String>,
    by_labels: bool,
}

fn check_submission(s: &Submission) -> Result<Checked, ApiError> {
    let tags = labels("tags", &s.tags)?;
    let caps = labels("capabilities", &s.capabilities)?;
    let by_labels = !tags.is_empty() || !caps.is_empty();
    if s.bench_id.trim().is_empty() != by_labels {
        return Err(ApiError::Unprocessable(
            "give either bench_id or tags/capabilities (exactly one of the two)".into(),
        ));
    }
    if s.suite_yaml.trim().is_empty() {
        return Err(ApiError::Unprocessable("suite_yaml is empty".into()));
    }
    if s.suite_yaml.len() > MAX_SUITE_BYTES {
        return Err(ApiError::TooLarge(format!(
            "suite_yaml is {} bytes; the limit is {MAX_SUITE_BYTES} bytes",
            s.suite_yaml.len()
        )));
    }
    Ok(Checked {
        tags,
        caps,
        by_labels,
    })
}

/// Parses the suite (422 when invalid), records the run and its firmware, fails it at once
/// when no bench of the workspace could ever take it, and wakes the agents that could.
async fn queue(
    app: &App,
    p: &Principal,
    id: &str,
    s: Submission,
    c: Checked,
    firmware: Option<FirmwareRow>,
) -> Result<(StatusCode, Json<ServerRun>), ApiError> {
    let uses = sched::suite::uses(&s.suite_yaml, s.skip_flash)
        .map_err(|d| ApiError::Unprocessable(format!("the suite is invalid:\n{d}")))?;
    let now = ids::now();
    let bench_id = s.bench_id.trim();
    let Checked {
        tags,
        caps,
        by_labels,
    } = c;
    let mut needs: Vec<String> = tags.iter().map(|t| format!("tag:{t}")).collect();
    needs.extend(caps.iter().map(|c| format!("cap:{c}")));
    let (tags_json, caps_json) = (
        serde_json::to_string(&tags).unwrap_or_default(),
        serde_json::to_string(&caps).unwrap_or_default(),
    );
    if let Some(f) = &firmware {
        app.store.set_firmware(id, f).await.map_err(store_error)?;
    }
    let run = app
        .store
        .insert_run(NewRun {
            id,
            workspace_id: &p.workspace_id,
            bench_id,
            priority: s.priority,
            tags: by_labels.then_some(tags_json.as_str()),
            capabilities: by_labels.then_some(caps_json.as_str()),
            needs: &needs,
            uses: &uses,
            suite_yaml: &s.suite_yaml,
            artifact_name: firmware.as_ref().map(|f| f.name.as_str()),
            skip_flash: s.skip_flash,
            verbose: s.verbose,
            created_at: &now,
        })
        .await
        .map_err(store_error)?;
    app.metrics.run_submitted();
    // The run's queue view reads its candidate benches: the agents to wake are theirs.
    let snapshot = Snapshot::for_run(app, &p.workspace_id, &run)
        .await
        .map_err(store_error)?;
    let agents = snapshot.agents();
    if agents.is_empty() {
        // No bench of the workspace could ever take it: it fails now, not never.
        let error = if by_labels {
            let mut want = Vec::new();
            if !tags.is_empty() {
                want.push(format!("tags {}", tags.join(",")));
            }
            if !caps.is_empty() {
                want.push(format!("capabilities {}", caps.join(",")));
            }
            format!("no bench in this workspace has {}", want.join(" and "))
        } else {
            format!("bench not found: {bench_id} (no such bench in this workspace)")
        };
        let failure = sched::configuration_failure(&error);
        app.store
            .finish_queued(
                &p.workspace_id,
                id,
                Completion {
                    state: state::FAILED,
                    exit_code: Some(sched::CONFIG_EXIT),
                    error: Some(&error),
                    failure: Some(&failure),
                    started_at: None,
                    finished_at: &now,
                },
            )
            .await
            .map_err(store_error)?;
        // It will never run: its firmware is not kept.
        if firmware.is_some()
            && let Err(e) = app.artifacts.delete_run(id).await
        {
            tracing::warn!("cannot delete the firmware of impossible run {id}: {e}");
        }
        let failed = load(app, &p.workspace_id, id).await?;
        return Ok((StatusCode::CREATED, Json(view(failed, None))));
    }
    app.wake_agents(&agents);
    // The suite's uses are known here: not read back.
    let queue = Some(snapshot.queue(&run, &uses));
    Ok((StatusCode::CREATED, Json(view(run, queue))))
}

/// The multipart submission: parts `bench_id` or `tags`/`capabilities` (comma-separated),
/// `priority`, `suite_yaml` (text or a file), `artifact` (a file, streamed to the artifact
/// store with the firmware size cap), `skip_flash`, `verbose`. Stored objects of a
/// submission that is then refused are deleted.
async fn submit_multipart(
    app: Arc<App>,
    p: Principal,
    mut mp: Multipart,
) -> Result<(StatusCode, Json<ServerRun>), ApiError> {
    let id = ids::new_id();
    let outcome = async {
        let mut fields: std::collections::HashMap<String, String> = Default::default();
        let mut stored: Option<FirmwareRow> = None;
        while let Some(field) = mp.next_field().await.map_err(|e| {
            ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
        })? {
            let name = field.name().unwrap_or_default().to_string();
            match name.as_str() {
                "artifact" => {
                    if stored.is_some() {
                        return Err(ApiError::BadRequest("more than one `artifact` part".into()));
                    }
                    let given = field.file_name().unwrap_or_default();
                    let base = given.rsplit('/').next().unwrap_or(given).to_string();
                    let file = safe_name(&base)?;
                    check_suffix(&file, &[".elf", ".hex", ".bin"], "artifact")?;
                    let key = artifacts::firmware_key(&id, &file);
                    let (size, sha256) = app
                        .artifacts
                        .receive(field, &key, app.settings.max_firmware_bytes)
                        .await?;
                    stored = Some(FirmwareRow {
                        name: file,
                        size,
                        sha256,
                    });
                }
                "bench_id" | "tags" | "capabilities" | "priority" | "suite_yaml"
                | "skip_flash" | "verbose" => {
                    let text = field.text().await.map_err(|e| {
                        ApiError::BadRequest(format!("cannot read part `{name}`: {}", e.body_text()))
                    })?;
                    if text.len() > MAX_SUITE_BYTES {
                        return Err(ApiError::TooLarge(format!(
                            "part `{name}` is {} bytes; the limit is {MAX_SUITE_BYTES} bytes",
                            text.len()
                        )));
                    }
                    fields.insert(name, text);
                }
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "unknown part `{other}`: expected bench_id, tags, capabilities, priority, suite_yaml, artifact, skip_flash or verbose"
                    )));
                }
            }
        }
        let flag = |k: &str| -> Result<bool, ApiError> {
            match fields.get(k).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(false),
                Some(v) if v == "true" || v == "1" => Ok(true),
                Some(v) if v == "false" || v == "0" || v.is_empty() => Ok(false),
                Some(v) => Err(ApiError::BadRequest(format!(
                    "part `{k}` must be true or false, got {v:?}"
                ))),
            }
        };
        let list = |k: &str| -> Vec<String> {
            fields
                .get(k)
                .map(|v| v.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect())
                .unwrap_or_default()
        };
        let priority = match fields.get("priority").map(|v| v.trim()) {
            None | Some("") => 0,
            Some(v) => v.parse::<i32>().map_err(|_| {
                ApiError::BadRequest(format!("part `priority` must be an integer, got {v:?}"))
            })?,
        };
        let s = Submission {
            bench_id: fields.get("bench_id").cloned().unwrap_or_default(),
            tags: list("tags"),
            capabilities: list("capabilities"),
            priority,
            suite_yaml: fields.get("suite_yaml").cloned().unwrap_or_default(),
            skip_flash: flag("skip_flash")?,
            verbose: flag("verbose")?,
        };
        let checked = check_submission(&s)?;
        queue(&app, &p, &id, s, checked, stored).await
    }
    .await;
    if outcome.is_err()
        && let Err(e) = app.artifacts.delete_run(&id).await
    {
        tracing::warn!("cannot delete the objects of refused submission {id}: {e}");
    }
    outcome
}

/// `POST /v1/runs/{id}/cancel`: a queued run is cancelled at once; an executing run is
/// marked, its agent told (heartbeat reply, 409 `run_cancelled` on its event calls), and
/// cancelled anyway after the grace period.
pub async fn cancel(
    State(app): State<Arc<App>>,
    User(p): User,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<ServerRun>), ApiError> {
    let ws = p.workspace_id.as_str();
    // Twice: the run may be assigned between the read and the update.
    for _ in 0..2 {
        let run = load(&app, ws, &run_id).await?;
        let now = ids::now();
        if run.state == state::QUEUED {
            let error = "cancelled by a user before it started";
            let failure = sched::cancelled_failure(error);
            let c = Completion {
                state: state::CANCELLED,
                exit_code: Some(sched::CANCELLED_EXIT),
                error: Some(error),
                failure: Some(&failure),
                started_at: None,
                finished_at: &now,
            };
            if app
                .store
                .finish_queued(ws, &run_id, c)
                .await
                .map_err(store_error)?
            {
                let run = load(&app, ws, &run_id).await?;
                return Ok((StatusCode::OK, Json(view(run, None))));
            }
        } else if run.state == state::PREPARING || run.state == state::RUNNING {
            let deadline = ids::now_ms() + app.settings.cancel_grace.as_millis() as i64;
            if app
                .store
                .request_cancel(ws, &run_id, &now, deadline)
                .await
                .map_err(store_error)?
            {
                let run = load(&app, ws, &run_id).await?;
                return Ok((StatusCode::ACCEPTED, Json(view(run, None))));
            }
        } else {
            return Err(ApiError::Conflict(format!(
                "run {run_id} has already ended (status {})",
                view(run, None).status.as_str()
            )));
        }
    }
    Err(ApiError::Conflict(format!(
        "run {run_id} changed state while being cancelled; try again"
    )))
}

async fn load(app: &App, workspace_id: &str, run_id: &str) -> Result<RunRow, ApiError> {
    app.store
        .run(workspace_id, run_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("run not found: {run_id}")))
}

pub async fn get(
    State(app): State<Arc<App>>,
    User(p): User,
    Path(run_id): Path<String>,
) -> Result<Json<ServerRun>, ApiError> {
    let run = load(&app, &p.workspace_id, &run_id).await?;
    Ok(Json(view_one(&app, &p.workspace_id, run).await?))
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    User(p): User,
    Query(q): Query<ListQuery>,
) -> Result<Json<ServerRunList>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let rows = app
        .store
        .runs(&p.workspace_id, i64::from(limit))
        .await
        .map_err(store_error)?;
    Ok(Json(ServerRunList {
        runs: views(&app, &p.workspace_id, rows).await?,
    }))
}

pub async fn events(
    State(app): State<Arc<App>>,
    User(p): User,
    Path(run_id): Path<String>,
) -> Result<Json<EventsPage>, ApiError> {
    let run = load(&app, &p.workspace_id, &run_id).await?;
    let rows = app.store.events(&run.id).await.map_err(store_error)?;
    let events = rows
        .into_iter()
        .filter_map(|(seq, body)| {
            let mut e: RunEvent = serde_json::from_str(&body).ok()?;
            e.seq = seq as u64;
            Some(e)
        })
        .collect();
    let v = view(run, None);
    Ok(Json(EventsPage {
        run_id: v.run_id,
        status: v.status,
        cancelled: v.cancelled,
        events,
    }))
}

pub async fn artifacts(
    State(app): State<Arc<App>>,
    User(p): User,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let run = load(&app, &p.workspace_id, &run_id).await?;
    if run.state != state::DONE && run.state != state::FAILED && run.state != state::CANCELLED {
        return Err(ApiError::Conflict(format!(
            "run not finished: current status is '{}'",
            run.state
        )));
    }
    if run.artifacts_sha256.is_none() {
        return Err(ApiError::NotFound(
            "the agent uploaded no results archive for this run".into(),
        ));
    }
    let (size, body) = app.artifacts.get(&artifacts::results_key(&run.id)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"hilt_{}_artifacts.zip\"", run.id),
            ),
        ],
        body,
    )
        .into_response())
}
