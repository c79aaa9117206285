//! Remote GPIO endpoints (agent-api §3.11): `POST /v1/gpio/session/start|stop`, `set`,
//! `get`, `wait_value`, `wait_edge`. The session logic lives in [`crate::gpio`].
//!
//! Status codes: 400 non-integer line key/channel, 404 unknown (stopped, expired) session,
//! 409 session of another client / line not in the session / wrong direction / line held
//! by someone else (the message names the holder), 422 invalid body, `timeout_ms` over
//! [`crate::gpio::MAX_WAIT`] or an unsupported chip, 500 hardware failure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::error::{ApiError, json_rejection};
use crate::gpio::{BAD_KEY, GpioError, LineConfig, StartRequest, parse_line};
use crate::state::Agent;
use hilt_model::bench::Edge;

/// Header naming the client that owns a session; without it the peer IP address does.
pub const CLIENT_HEADER: &str = "x-hilt-client";

/// Longest accepted `X-Hilt-Client` value.
const MAX_CLIENT_LEN: usize = 128;

pub fn routes() -> Router<Arc<Agent>> {
    Router::new()
        .route("/v1/gpio/session/start", post(start))
        .route("/v1/gpio/session/stop", post(stop))
        .route("/v1/gpio/set", post(set))
        .route("/v1/gpio/get", post(get))
        .route("/v1/gpio/wait_value", post(wait_value))
        .route("/v1/gpio/wait_edge", post(wait_edge))
}

/// The client identity: `X-Hilt-Client` if present, else the peer IP address (needs
/// `into_make_service_with_connect_info::<SocketAddr>()`), else `unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Client, ApiError> {
        if let Some(v) = parts.headers.get(CLIENT_HEADER) {
            let v = v.to_str().map(str::trim).unwrap_or("");
            if v.is_empty()
                || v.len() > MAX_CLIENT_LEN
                || !v.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
            {
                return Err(ApiError::BadRequest(format!(
                    "X-Hilt-Client must be 1 to {MAX_CLIENT_LEN} printable ASCII characters"
                )));
            }
            return Ok(Client(v.to_owned()));
        }
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_canonical().to_string())
                .unwrap_or_else(|| "unknown".into()),
        ))
    }
}

impl From<GpioError> for ApiError {
    fn from(e: GpioError) -> ApiError {
        let text = e.to_string();
        match e {
            GpioError::BadRequest(_) => ApiError::BadRequest(text),
            GpioError::NotFound(_) => ApiError::NotFound(text),
            GpioError::NotOwner(_) | GpioError::Conflict(_) => ApiError::Conflict(text),
            GpioError::Invalid(_) => ApiError::Unprocessable(text),
            GpioError::Hardware(_) => ApiError::Internal(text),
            GpioError::TooLarge(_) => ApiError::TooLarge(text),
            GpioError::TooMany(_) => ApiError::TooMany(text),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct StartBody {
    pub chip: String,
    pub lines: BTreeMap<String, LineConfig>,
}

#[derive(Debug, Deserialize)]
pub struct StopBody {
    pub session_id: String,
}

/// A line number as a JSON integer or a decimal string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Channel {
    Number(u64),
    Text(String),
}

impl Channel {
    fn line(&self) -> Result<u32, ApiError> {
        match self {
            Channel::Number(n) => {
                u32::try_from(*n).map_err(|_| ApiError::BadRequest(BAD_KEY.into()))
            }
            Channel::Text(s) => Ok(parse_line(s)?),
        }
    }
}

/// A level as `true`/`false` or `1`/`0`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Level {
    Bool(bool),
    Number(u64),
}

impl Level {
    fn value(&self) -> Result<bool, ApiError> {
        match self {
            Level::Bool(b) => Ok(*b),
            Level::Number(0) => Ok(false),
            Level::Number(1) => Ok(true),
            Level::Number(n) => Err(ApiError::Unprocessable(format!(
                "value must be true, false, 1 or 0, not {n}"
            ))),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SetBody {
    pub session_id: String,
    pub channel: Channel,
    pub value: Level,
}

#[derive(Debug, Deserialize)]
pub struct GetBody {
    pub session_id: String,
    pub channel: Channel,
}

#[derive(Debug, Deserialize)]
pub struct WaitValueBody {
    pub session_id: String,
    pub channel: Channel,
    pub value: Level,
    pub timeout_ms: u64,
}

#[derive(Debug, Deserialize)]
pub struct WaitEdgeBody {
    pub session_id: String,
    pub channel: Channel,
    pub edge: Edge,
    pub timeout_ms: u64,
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t).map_err(json_rejection)
}

/// Opens a session on the agent host: takes the lines' resource locks and requests them.
#[utoipa::path(post, path = "/v1/gpio/session/start",
    request_body(content = Object, description = r#"{"chip": "/dev/gpiochip0" or "sim:<name>", "lines": {"17": {"direction": "output", "bias": null, "edge": null}}}"#),
    responses((status = 200, body = hilt_api::GpioSessionStarted),
        (status = 400, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 413, body = hilt_api::ErrorBody), (status = 422, body = hilt_api::ErrorBody), (status = 429, body = hilt_api::ErrorBody), (status = 500, body = hilt_api::ErrorBody)))]
pub async fn start(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<StartBody>, JsonRejection>,
) -> Result<Json<hilt_api::GpioSessionStarted>, ApiError> {
    let b = body(b)?;
    let s = agent
        .gpio
        .start_within(
            StartRequest {
                owner,
                chip: b.chip,
                lines: b.lines,
                lock_config: agent.settings.lock_config.clone(),
                log_dir: Some(agent.settings.work_dir.join("gpio-sessions")),
            },
            crate::gpio::GpioLimits::from(&crate::limits::current(&agent)),
        )
        .await?;
    Ok(Json(hilt_api::GpioSessionStarted {
        session_id: s.id.clone(),
        idle_timeout_s: Some(agent.gpio.idle_timeout().as_secs()),
    }))
}

/// Closes a session: releases its lines and their locks.
#[utoipa::path(post, path = "/v1/gpio/session/stop", request_body(content = Object, description = r#"{"session_id": "..."}"#),
    responses((status = 200, body = hilt_api::GpioOk), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody)))]
pub async fn stop(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<StopBody>, JsonRejection>,
) -> Result<Json<hilt_api::GpioOk>, ApiError> {
    let b = body(b)?;
    agent.gpio.stop(&b.session_id, &owner)?;
    Ok(Json(hilt_api::GpioOk { ok: true }))
}

/// Drives an output line to a physical level.
#[utoipa::path(post, path = "/v1/gpio/set", request_body(content = Object, description = r#"{"session_id", "channel": 17, "value": true}"#),
    responses((status = 200, body = hilt_api::GpioOk), (status = 400, body = hilt_api::ErrorBody), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 500, body = hilt_api::ErrorBody)))]
pub async fn set(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<SetBody>, JsonRejection>,
) -> Result<Json<hilt_api::GpioOk>, ApiError> {
    let b = body(b)?;
    let (line, value) = (b.channel.line()?, b.value.value()?);
    agent.gpio.set(&b.session_id, &owner, line, value)?;
    Ok(Json(hilt_api::GpioOk { ok: true }))
}

/// Reads an input line's physical level.
#[utoipa::path(post, path = "/v1/gpio/get", request_body(content = Object, description = r#"{"session_id", "channel": 27}"#),
    responses((status = 200, body = hilt_api::GpioValue), (status = 400, body = hilt_api::ErrorBody), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 500, body = hilt_api::ErrorBody)))]
pub async fn get(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<GetBody>, JsonRejection>,
) -> Result<Json<hilt_api::GpioValue>, ApiError> {
    let b = body(b)?;
    let value = agent.gpio.get(&b.session_id, &owner, b.channel.line()?)?;
    Ok(Json(hilt_api::GpioValue { value }))
}

/// Waits (without blocking other requests) until an input line is at a level.
#[utoipa::path(post, path = "/v1/gpio/wait_value", request_body(content = Object, description = r#"{"session_id", "channel", "value", "timeout_ms": 0..=600000}"#),
    responses((status = 200, body = hilt_api::GpioWaitResult), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 422, body = hilt_api::ErrorBody)))]
pub async fn wait_value(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<WaitValueBody>, JsonRejection>,
) -> Result<Json<hilt_api::GpioWaitResult>, ApiError> {
    let b = body(b)?;
    let (line, value) = (b.channel.line()?, b.value.value()?);
    let matched = agent
        .gpio
        .wait_value(
            &b.session_id,
            &owner,
            line,
            value,
            Duration::from_millis(b.timeout_ms),
        )
        .await?;
    Ok(Json(hilt_api::GpioWaitResult { matched }))
}

/// Waits (without blocking other requests) for an edge on an input line.
#[utoipa::path(post, path = "/v1/gpio/wait_edge", request_body(content = Object, description = r#"{"session_id", "channel", "edge": "rising"|"falling"|"both", "timeout_ms": 0..=600000}"#),
    responses((status = 200, body = hilt_api::GpioWaitResult), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 422, body = hilt_api::ErrorBody)))]
pub async fn wait_edge(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<WaitEdgeBody>, JsonRejection>,
) -> Result<Json<hilt_api::GpioWaitResult>, ApiError> {
    let b = body(b)?;
    let line = b.channel.line()?;
    let matched = agent
        .gpio
        .wait_edge(
            &b.session_id,
            &owner,
            line,
            b.edge,
            Duration::from_millis(b.timeout_ms),
        )
        .await?;
    Ok(Json(hilt_api::GpioWaitResult { matched }))
}
