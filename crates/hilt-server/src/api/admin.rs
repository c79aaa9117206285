//! Workspaces and tokens. Only admin tokens create workspaces; a user token creates and
//! revokes tokens of its own workspace (an admin token: of any). Secrets are shown once.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hilt_agent::api::error::ApiError;
use hilt_api::{CreateToken, CreateWorkspace, TokenCreated, TokenRevoked, Workspace};

use axum::response::{IntoResponse, Response};

use super::auth::{User, forbidden};
use super::{body, store_error};
use crate::store::NewToken;
use crate::{App, ids};

const MAX_NAME: usize = 64;

/// Workspace names: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(format!(
            "workspace name {name:?} is not allowed: use 1-{MAX_NAME} characters a-z, 0-9, '-', '_' or '.'"
        )))
    }
}

pub async fn create_workspace(
    State(app): State<Arc<App>>,
    User(p): User,
    req: Result<Json<CreateWorkspace>, JsonRejection>,
) -> Result<(StatusCode, Json<Workspace>), Response> {
    let req = body(req).map_err(IntoResponse::into_response)?;
    if !p.admin {
        return Err(forbidden("creating workspaces needs an admin token"));
    }
    check_name(&req.name).map_err(IntoResponse::into_response)?;
    let row = app
        .store
        .create_workspace(&req.name, &ids::now())
        .await
        .map_err(|e| store_error(e).into_response())?
        .ok_or_else(|| {
            ApiError::Conflict(format!("workspace {:?} exists", req.name)).into_response()
        })?;
    Ok((
        StatusCode::CREATED,
        Json(Workspace {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
        }),
    ))
}

pub async fn create_token(
    State(app): State<Arc<App>>,
    User(p): User,
    req: Result<Json<CreateToken>, JsonRejection>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let req = body(req)?;
    // Another workspace answers like a missing one.
    let not_found = || ApiError::NotFound(format!("workspace not found: {}", req.workspace));
    if !p.admin && req.workspace != p.workspace_name {
        return Err(not_found());
    }
    let ws = app
        .store
        .workspace_by_name(&req.workspace)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    if req.label.as_deref().is_some_and(|l| l.len() > 200) {
        return Err(ApiError::Unprocessable(
            "label is too long (200 bytes at most)".into(),
        ));
    }
    let (id, secret, now) = (ids::new_id(), ids::new_secret(), ids::now());
    app.store
        .insert_token(NewToken {
            id: &id,
            workspace_id: &ws.id,
            kind: req.kind.as_str(),
            admin: false,
            label: req.label.as_deref(),
            hash: &ids::token_hash(&secret),
            created_at: &now,
        })
        .await
        .map_err(store_error)?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id,
            workspace: ws.name,
            kind: req.kind,
            label: req.label,
            token: secret,
            created_at: now,
        }),
    ))
}

pub async fn revoke_token(
    State(app): State<Arc<App>>,
    User(p): User,
    Path(token_id): Path<String>,
) -> Result<Json<TokenRevoked>, ApiError> {
    let scope = (!p.admin).then_some(p.workspace_id.as_str());
    let now = ids::now();
    let revoked = app
        .store
        .revoke_token(&token_id, scope, &now)
        .await
        .map_err(store_error)?;
    if !revoked {
        return Err(ApiError::NotFound(format!("token not found: {token_id}")));
    }
    app.principals.forget_all();
    Ok(Json(TokenRevoked {
        id: token_id,
        revoked_at: now,
    }))
}
