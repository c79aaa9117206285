//! Runs as users and CI see them: submit by bench id (the agent API's JSON submission,
//! agent-api §3.7), read one, list, events, and the results archive its agent uploaded.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
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
use crate::store::{NewRun, RunRow, state};
use crate::{App, files, ids};

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

pub async fn submit(
    State(app): State<Arc<App>>,
    User(p): User,
    req: Result<Json<JsonRun>, JsonRejection>,
) -> Result<(StatusCode, Json<ServerRun>), ApiError> {
    let req = body(req)?;
    if req.bench_id.trim().is_empty() {
        return Err(ApiError::Unprocessable("bench_id is required".into()));
    }
    if req.suite_yaml.trim().is_empty() {
        return Err(ApiError::Unprocessable("suite_yaml is empty".into()));
    }
    if req.suite_yaml.len() > MAX_SUITE_BYTES {
        return Err(ApiError::TooLarge(format!(
            "suite_yaml is {} bytes; the limit is {MAX_SUITE_BYTES} bytes",
            req.suite_yaml.len()
        )));
    }
    let firmware = firmware(&req, app.settings.max_firmware_bytes)?;
    let owner = app
        .store
        .bench_agent(&p.workspace_id, &req.bench_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("bench not found: {}", req.bench_id)))?;
    let (id, now) = (ids::new_id(), ids::now());
    if let Some((name, bytes)) = &firmware {
        files::save_firmware(
            &files::firmware_path(&app.settings.data_dir, &id, name),
            bytes,
        )
        .await?;
    }
    app.store
        .insert_run(NewRun {
            id: &id,
            workspace_id: &p.workspace_id,
            bench_id: &req.bench_id,
            suite_yaml: &req.suite_yaml,
            artifact_name: firmware.as_ref().map(|(n, _)| n.as_str()),
            skip_flash: req.skip_flash,
            verbose: req.verbose,
            created_at: &now,
        })
        .await
        .map_err(store_error)?;
    app.wake(&owner);
    let run = load(&app, &p.workspace_id, &id).await?;
    Ok((StatusCode::CREATED, Json(view(run))))
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
    let path = files::artifacts_path(&app.settings.data_dir, &run.id);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::NotFound(format!("the results archive is missing: {e}")))?;
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"hilt_{}_artifacts.zip\"", run.id),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
