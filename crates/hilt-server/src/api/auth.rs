//! Who is calling: the bearer token (stored as its SHA-256) names a workspace and a kind.
//! Handlers ask for a [`User`] or an [`AgentCaller`]; a missing header is 401, an unknown or
//! revoked token 403, a token of the wrong kind 403, and everything a handler then reads is
//! scoped to the token's workspace (another workspace's objects answer 404, like missing ones).
//! A valid token is looked up at most once a second per process (`principals.rs`).

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use hilt_agent::api::error::ApiError;

use crate::store::{AgentSeen, Principal};
use crate::{App, ids};

pub const MACHINE_ID: &str = "x-benchci-agent-machine-id";
pub const MACHINE_NAME: &str = "x-benchci-agent-machine-name";
pub const AGENT_VERSION: &str = "x-benchci-agent-version";

/// Longest machine id, machine name or agent version kept.
const MAX_HEADER: usize = 256;

/// A user/CI token.
pub struct User(pub Principal);

/// An agent token, bound to the calling machine; `agent_id` is the token's id.
pub struct AgentCaller {
    pub principal: Principal,
    pub agent_id: String,
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

pub fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(hilt_api::ErrorBody::new(message)),
    )
        .into_response()
}

async fn principal(parts: &Parts, app: &App) -> Result<Principal, Response> {
    let given = header(parts, "authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::MissingToken.into_response())?;
    if given.is_empty() {
        return Err(ApiError::MissingToken.into_response());
    }
    let hash = ids::token_hash(given);
    if let Some(p) = app.principals.get(&hash) {
        return Ok(p);
    }
    match app.store.principal(&hash).await {
        Ok(Some(p)) => {
            app.principals.trust(&hash, &p);
            Ok(p)
        }
        Ok(None) => Err(ApiError::BadToken.into_response()),
        Err(e) => Err(super::store_error(e).into_response()),
    }
}

impl FromRequestParts<Arc<App>> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<User, Response> {
        let p = principal(parts, app).await?;
        if p.kind != "user" {
            return Err(forbidden(
                "this route needs a user token, not an agent token",
            ));
        }
        Ok(User(p))
    }
}

impl FromRequestParts<Arc<App>> for AgentCaller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<AgentCaller, Response> {
        let p = principal(parts, app).await?;
        if p.kind != "agent" {
            return Err(forbidden(
                "this route is for cloud agents: use an agent token (hilt tokens create --kind agent)",
            ));
        }
        let Some(machine) = header(parts, MACHINE_ID) else {
            return Err(ApiError::BadRequest(
                "the X-BenchCI-Agent-Machine-ID header is required on agent calls".into(),
            )
            .into_response());
        };
        let too_long = [MACHINE_ID, MACHINE_NAME, AGENT_VERSION]
            .into_iter()
            .find(|h| header(parts, h).is_some_and(|v| v.len() > MAX_HEADER));
        if let Some(h) = too_long {
            return Err(ApiError::BadRequest(format!(
                "the {h} header is longer than {MAX_HEADER} bytes"
            ))
            .into_response());
        }
        // A token is bound once and never rebound: only its first call writes.
        let bound = match p.machine_id.clone() {
            Some(m) => m,
            None => {
                let bound = app
                    .store
                    .bind_machine(&p.token_id, machine)
                    .await
                    .map_err(|e| super::store_error(e).into_response())?;
                // The remembered principal still says unbound.
                app.principals.forget_all();
                bound
            }
        };
        if bound != machine {
            return Err(ApiError::Conflict(
                "this agent token is bound to another machine: create a new agent token for this machine"
                    .into(),
            )
            .into_response());
        }
        // Last seen: written at most every `app.seen.every()` per agent (and whenever its
        // headers change), not on every call.
        let (name, version) = (header(parts, MACHINE_NAME), header(parts, AGENT_VERSION));
        let fp = crate::seen::fingerprint(&[Some(&p.workspace_id), Some(machine), name, version]);
        if app.seen.due(&p.token_id, fp) {
            let now = ids::now();
            app.store
                .touch_agent(AgentSeen {
                    agent_id: &p.token_id,
                    workspace_id: &p.workspace_id,
                    machine_id: machine,
                    machine_name: name,
                    version,
                    now: &now,
                })
                .await
                .map_err(|e| super::store_error(e).into_response())?;
            app.seen.recorded(&p.token_id, fp);
        }
        Ok(AgentCaller {
            agent_id: p.token_id.clone(),
            principal: p,
        })
    }
}
