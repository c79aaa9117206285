//! The firmware download of an assignment: `GET /v1/agents/runs/{run_id}/firmware/{name}
//! ?key=K`, streamed from the artifact store. BenchCI's cloud agent fetches `firmware_url`
//! with a plain GET (no token header), so the URL carries the credential: a key derived
//! from the holding agent's token hash, the run and its fencing token. It is valid while
//! that agent holds the run's current lease; a reassigned, ended or revoked run refuses it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use hilt_agent::api::error::ApiError;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::store_error;
use crate::store::{FirmwareGrant, state};
use crate::{App, artifacts};

/// The server as the calling agent reached it: `http://HOST` (or the forwarded scheme and
/// host behind a proxy).
pub fn base_url(headers: &HeaderMap) -> Result<String, ApiError> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or_default().trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let host = get("x-forwarded-host")
        .or_else(|| get("host"))
        .ok_or_else(|| ApiError::BadRequest("the Host header is required".into()))?;
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '?' || c == '#')
    {
        return Err(ApiError::BadRequest(format!(
            "invalid Host header {host:?}"
        )));
    }
    let scheme = match get("x-forwarded-proto").as_deref() {
        Some("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}"))
}

fn key(g: &FirmwareGrant, run_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        "hilt firmware url v1",
        &g.token_hash,
        run_id,
        &g.fence.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

pub struct FirmwareUrl {
    pub url: String,
    pub redacted: String,
    pub sha256: String,
}

/// The firmware URL for the run just assigned (`None` when it has no firmware record).
pub async fn grant_url(
    app: &App,
    base: &str,
    run_id: &str,
) -> Result<Option<FirmwareUrl>, ApiError> {
    let Some(g) = app
        .store
        .firmware_grant(run_id)
        .await
        .map_err(store_error)?
    else {
        return Ok(None);
    };
    let Some(f) = app.store.firmware(run_id).await.map_err(store_error)? else {
        return Ok(None);
    };
    let path = format!("{base}/v1/agents/runs/{run_id}/firmware/{}", g.name);
    Ok(Some(FirmwareUrl {
        url: format!("{path}?key={}", key(&g, run_id)),
        redacted: format!("{path}?key=<redacted>"),
        sha256: f.sha256,
    }))
}

#[derive(Deserialize)]
pub struct KeyQuery {
    #[serde(default)]
    key: String,
}

/// Equal, in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub async fn download(
    State(app): State<Arc<App>>,
    Path((run_id, name)): Path<(String, String)>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, ApiError> {
    let refused = || {
        ApiError::Conflict(
            "this firmware URL is not valid: the run is not held under this assignment any more"
                .into(),
        )
    };
    let g = app
        .store
        .firmware_grant(&run_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("no firmware for run {run_id}")))?;
    if q.key.is_empty() {
        return Err(ApiError::MissingToken);
    }
    let active = g.state == state::PREPARING || g.state == state::RUNNING;
    if !same(&q.key, &key(&g, &run_id)) || g.name != name {
        return Err(ApiError::BadToken);
    }
    if !active {
        return Err(refused());
    }
    let (size, body) = app
        .artifacts
        .get(&artifacts::firmware_key(&run_id, &g.name))
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}
