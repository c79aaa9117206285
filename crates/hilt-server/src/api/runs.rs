//! Runs as users and CI see them: submit by bench id (the agent API's JSON submission,
//! agent-api §3.7), read one, list, events, and the results archive its agent uploaded.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hilt_agent::api::error::ApiError;
use hilt_agent::api::upload::{check_suffix, safe_name};
use hilt_api::{
    EventsPage, JsonRun, RunEvent, RunState, ServerRun, ServerRunList, StoredArtifacts,
};
use serde::Deserialize;

use super::auth::User;
use super::{body, store_error};
use crate::store::{FirmwareRow, NewRun, Principal, RunRow, state};
use crate::{App, artifacts, ids};

/// Largest suite accepted, bytes (the agent's default `limits.max_yaml_bytes`).
const MAX_SUITE_BYTES: usize = 256 * 1024;

pub fn view(r: RunRow) -> ServerRun {
    let status = match r.state.as_str() {
        state::QUEUED => RunState::Queued,
        state::PREPARING => RunState::Preparing,
        state::RUNNING => RunState::Running,
        state::DONE => RunState::Done,
        _ => RunState::Failed,
    };
    ServerRun {
        run_id: r.id,
        status,
        mode: "registered".into(),
        bench_id: r.bench_id,
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

/// The firmware of a submission: (stored name, bytes), checked like the agent checks it.
fn firmware(req: &JsonRun, cap: u64) -> Result<Option<(String, Vec<u8>)>, ApiError> {
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

/// `POST /v1/runs` (and `/v1/runs/json`): the agent API's JSON body, or on `/v1/runs` a
/// `multipart/form-data` body whose firmware part is streamed to the artifact store.
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
    let req = body(Json::<JsonRun>::from_request(req, &app).await)?;
    check_submission(&req.bench_id, &req.suite_yaml)?;
    let firmware = firmware(&req, app.settings.max_firmware_bytes)?;
    let owner = bench_owner(&app, &p, &req.bench_id).await?;
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
    let new = Submission {
        bench_id: req.bench_id,
        suite_yaml: req.suite_yaml,
        skip_flash: req.skip_flash,
        verbose: req.verbose,
    };
    queue(&app, &p, &owner, &id, new, stored).await
}

/// What a submission asks for, once its firmware is stored.
struct Submission {
    bench_id: String,
    suite_yaml: String,
    skip_flash: bool,
    verbose: bool,
}

fn check_submission(bench_id: &str, suite_yaml: &str) -> Result<(), ApiError> {
    if bench_id.trim().is_empty() {
        return Err(ApiError::Unprocessable("bench_id is required".into()));
    }
    if suite_yaml.trim().is_empty() {
        return Err(ApiError::Unprocessable("suite_yaml is empty".into()));
    }
    if suite_yaml.len() > MAX_SUITE_BYTES {
        return Err(ApiError::TooLarge(format!(
            "suite_yaml is {} bytes; the limit is {MAX_SUITE_BYTES} bytes",
            suite_yaml.len()
        )));
    }
    Ok(())
}

async fn bench_owner(app: &App, p: &Principal, bench_id: &str) -> Result<String, ApiError> {
    app.store
        .bench_agent(&p.workspace_id, bench_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("bench not found: {bench_id}")))
}

/// Records the firmware (if any) and queues the run; wakes the bench's agent.
async fn queue(
    app: &App,
    p: &Principal,
    owner: &str,
    id: &str,
    s: Submission,
    firmware: Option<FirmwareRow>,
) -> Result<(StatusCode, Json<ServerRun>), ApiError> {
    let now = ids::now();
    if let Some(f) = &firmware {
        app.store.set_firmware(id, f).await.map_err(store_error)?;
    }
    app.store
        .insert_run(NewRun {
            id,
            workspace_id: &p.workspace_id,
            bench_id: &s.bench_id,
            suite_yaml: &s.suite_yaml,
            artifact_name: firmware.as_ref().map(|f| f.name.as_str()),
            skip_flash: s.skip_flash,
            verbose: s.verbose,
            created_at: &now,
        })
        .await
        .map_err(store_error)?;
    app.metrics.run_submitted();
    app.wake(owner);
    let run = load(app, &p.workspace_id, id).await?;
    Ok((StatusCode::CREATED, Json(view(run))))
}

/// The multipart submission: parts `bench_id`, `suite_yaml` (text or a file), `artifact`
/// (a file, streamed to the artifact store with the firmware size cap), `skip_flash`,
/// `verbose`. Stored objects of a submission that is then refused are deleted.
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
                "bench_id" | "suite_yaml" | "skip_flash" | "verbose" => {
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
                        "unknown part `{other}`: expected bench_id, suite_yaml, artifact, skip_flash or verbose"
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
        let s = Submission {
            bench_id: fields.get("bench_id").cloned().unwrap_or_default(),
            suite_yaml: fields.get("suite_yaml").cloned().unwrap_or_default(),
            skip_flash: flag("skip_flash")?,
            verbose: flag("verbose")?,
        };
        check_submission(&s.bench_id, &s.suite_yaml)?;
        let owner = bench_owner(&app, &p, &s.bench_id).await?;
        queue(&app, &p, &owner, &id, s, stored).await
    }
    .await;
    if outcome.is_err()
        && let Err(e) = app.artifacts.delete_run(&id).await
    {
        tracing::warn!("cannot delete the objects of refused submission {id}: {e}");
    }
    outcome
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
    Ok(Json(view(load(&app, &p.workspace_id, &run_id).await?)))
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
        runs: rows.into_iter().map(view).collect(),
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
    Ok(Json(EventsPage {
        run_id: run.id.clone(),
        status: view(run).status,
        cancelled: false,
        events,
    }))
}

pub async fn artifacts(
    State(app): State<Arc<App>>,
    User(p): User,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let run = load(&app, &p.workspace_id, &run_id).await?;
    if run.state != state::DONE && run.state != state::FAILED {
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
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"hilt_{}_artifacts.zip\"", run.id),
            ),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}
