//! Remote GPIO endpoints (agent-api §3.11): `POST /v1/gpio/session/start|stop`, `set`,
//! `get`, `wait_value`, `wait_edge`. The session logic lives in [`crate::gpio`].
//!
//! Status codes: 400 non-integer line key/channel, 404 unknown (stopped, expired) session,
//! 409 session of another client / line not in the session / wrong direction / line held
//! by someone else (the message names the holder), 422 invalid body, `timeout_ms` over
//! [`crate::gpio::MAX_WAIT`] or an unsupported chip, 500 hardware failure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};

use super::error::{ApiError, json_rejection};
use crate::gpio::{BAD_KEY, GpioError, StartRequest, parse_line};
use crate::state::Agent;
use hilt_api::{
    GpioChannel, GpioGet, GpioLevel, GpioSet, GpioStart, GpioStop, GpioWaitEdge, GpioWaitValue,
};

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

/// A line number from a JSON integer or a decimal string (400 otherwise).
fn line(c: &GpioChannel) -> Result<u32, ApiError> {
    match c {
        GpioChannel::Number(n) => {
            u32::try_from(*n).map_err(|_| ApiError::BadRequest(BAD_KEY.into()))
        }
        GpioChannel::Text(s) => Ok(parse_line(s)?),
    }
}

/// A level from `true`/`false` or `1`/`0` (422 otherwise).
fn level(l: GpioLevel) -> Result<bool, ApiError> {
    match l {
        GpioLevel::Bool(b) => Ok(b),
        GpioLevel::Number(0) => Ok(false),
        GpioLevel::Number(1) => Ok(true),
        GpioLevel::Number(n) => Err(ApiError::Unprocessable(format!(
            "value must be true, false, 1 or 0, not {n}"
        ))),
    }
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t).map_err(json_rejection)
}

/// Opens a session on the agent host: takes the lines' resource locks and requests them.
#[utoipa::path(post, path = "/v1/gpio/session/start",
    request_body = hilt_api::GpioStart,
    responses((status = 200, body = hilt_api::GpioSessionStarted),
        (status = 400, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 413, body = hilt_api::ErrorBody), (status = 422, body = hilt_api::ErrorBody), (status = 429, body = hilt_api::ErrorBody), (status = 500, body = hilt_api::ErrorBody)))]
pub async fn start(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<GpioStart>, JsonRejection>,
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
#[utoipa::path(post, path = "/v1/gpio/session/stop", request_body = hilt_api::GpioStop,
    responses((status = 200, body = hilt_api::GpioOk), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody)))]
pub async fn stop(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<GpioStop>, JsonRejection>,
) -> Result<Json<hilt_api::GpioOk>, ApiError> {
    let b = body(b)?;
    agent.gpio.stop(&b.session_id, &owner)?;
    Ok(Json(hilt_api::GpioOk { ok: true }))
}

/// Drives an output line to a physical level.
#[utoipa::path(post, path = "/v1/gpio/set", request_body = hilt_api::GpioSet,
    responses((status = 200, body = hilt_api::GpioOk), (status = 400, body = hilt_api::ErrorBody), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 500, body = hilt_api::ErrorBody)))]
pub async fn set(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<GpioSet>, JsonRejection>,
) -> Result<Json<hilt_api::GpioOk>, ApiError> {
    let b = body(b)?;
    let (line, value) = (line(&b.channel)?, level(b.value)?);
    agent.gpio.set(&b.session_id, &owner, line, value)?;
    Ok(Json(hilt_api::GpioOk { ok: true }))
}

/// Reads an input line's physical level.
#[utoipa::path(post, path = "/v1/gpio/get", request_body = hilt_api::GpioGet,
    responses((status = 200, body = hilt_api::GpioValue), (status = 400, body = hilt_api::ErrorBody), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 500, body = hilt_api::ErrorBody)))]
pub async fn get(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<GpioGet>, JsonRejection>,
) -> Result<Json<hilt_api::GpioValue>, ApiError> {
    let b = body(b)?;
    let value = agent.gpio.get(&b.session_id, &owner, line(&b.channel)?)?;
    Ok(Json(hilt_api::GpioValue { value }))
}

/// Waits (without blocking other requests) until an input line is at a level.
#[utoipa::path(post, path = "/v1/gpio/wait_value", request_body(content = hilt_api::GpioWaitValue, description = "`timeout_ms` is 0..=600000"),
    responses((status = 200, body = hilt_api::GpioWaitResult), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 422, body = hilt_api::ErrorBody)))]
pub async fn wait_value(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<GpioWaitValue>, JsonRejection>,
) -> Result<Json<hilt_api::GpioWaitResult>, ApiError> {
    let b = body(b)?;
    let (line, value) = (line(&b.channel)?, level(b.value)?);
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
#[utoipa::path(post, path = "/v1/gpio/wait_edge", request_body(content = hilt_api::GpioWaitEdge, description = "`timeout_ms` is 0..=600000"),
    responses((status = 200, body = hilt_api::GpioWaitResult), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody), (status = 422, body = hilt_api::ErrorBody)))]
pub async fn wait_edge(
    State(agent): State<Arc<Agent>>,
    Client(owner): Client,
    b: Result<Json<GpioWaitEdge>, JsonRejection>,
) -> Result<Json<hilt_api::GpioWaitResult>, ApiError> {
    let b = body(b)?;
    let line = self::line(&b.channel)?;
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

#[cfg(test)]
mod tests {
    //! The request bodies used to be agent-private types; these copies of them prove the
    //! wire types accept the same bodies, read the same values and reject the rest with
    //! the same text (the error JSON carries serde's message).

    use std::collections::BTreeMap;

    use hilt_model::bench::{Bias, Direction, Edge};
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct LineConfig {
        direction: Direction,
        #[serde(default)]
        bias: Option<Bias>,
        #[serde(default)]
        edge: Option<Edge>,
    }
    #[derive(Debug, Deserialize)]
    struct StartBody {
        chip: String,
        lines: BTreeMap<String, LineConfig>,
    }
    #[derive(Debug, Deserialize)]
    struct StopBody {
        session_id: String,
    }
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    enum Channel {
        Number(u64),
        Text(String),
    }
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    enum Level {
        Bool(bool),
        Number(u64),
    }
    #[derive(Debug, Deserialize)]
    struct SetBody {
        session_id: String,
        channel: Channel,
        value: Level,
    }
    #[derive(Debug, Deserialize)]
    struct GetBody {
        session_id: String,
        channel: Channel,
    }
    #[derive(Debug, Deserialize)]
    struct WaitValueBody {
        session_id: String,
        channel: Channel,
        value: Level,
        timeout_ms: u64,
    }
    #[derive(Debug, Deserialize)]
    struct WaitEdgeBody {
        session_id: String,
        channel: Channel,
        edge: Edge,
        timeout_ms: u64,
    }

    fn old_channel(c: &Channel) -> GpioChannel {
        match c {
            Channel::Number(n) => GpioChannel::Number(*n),
            Channel::Text(s) => GpioChannel::Text(s.clone()),
        }
    }
    fn old_level(l: &Level) -> GpioLevel {
        match l {
            Level::Bool(b) => GpioLevel::Bool(*b),
            Level::Number(n) => GpioLevel::Number(*n),
        }
    }

    /// Decodes `text` as the old and the new type; both must agree on success (then
    /// `same` compares the values) or fail with the same message.
    fn agree<O, N>(text: &str, same: impl Fn(&O, &N) -> bool)
    where
        O: for<'de> Deserialize<'de> + std::fmt::Debug,
        N: for<'de> Deserialize<'de> + std::fmt::Debug,
    {
        let old = serde_json::from_str::<O>(text).map_err(|e| e.to_string());
        let new = serde_json::from_str::<N>(text).map_err(|e| e.to_string());
        match (&old, &new) {
            (Ok(o), Ok(n)) => assert!(same(o, n), "{text}: {o:?} vs {n:?}"),
            (Err(o), Err(n)) => assert_eq!(o, n, "{text}"),
            _ => panic!("{text}: old {old:?}, new {new:?}"),
        }
    }

    #[test]
    fn wire_request_bodies_decode_like_the_old_private_ones() {
        let channels = [
            json!(17),
            json!("27"),
            json!("x"),
            json!(-1),
            json!(1.5),
            json!(null),
            json!(true),
            json!(u64::MAX),
        ];
        let levels = [
            json!(true),
            json!(false),
            json!(0),
            json!(1),
            json!(2),
            json!("1"),
            json!(null),
        ];
        let mut bodies: Vec<Value> = vec![
            json!({}),
            json!([]),
            json!("text"),
            json!(null),
            json!(1),
            json!({"session_id": 5}),
            json!({"session_id": "s"}),
            json!({"session_id": "s", "extra": 1}),
        ];
        for c in &channels {
            bodies.push(json!({"session_id": "s", "channel": c}));
            for l in &levels {
                bodies.push(json!({"session_id": "s", "channel": c, "value": l}));
                for t in [json!(0), json!(600000), json!(-1), json!("5")] {
                    bodies.push(
                        json!({"session_id": "s", "channel": c, "value": l, "timeout_ms": t}),
                    );
                }
            }
            for e in ["rising", "falling", "both", "sideways", "RISING"] {
                bodies.push(json!({"session_id": "s", "channel": c, "edge": e, "timeout_ms": 1}));
            }
        }
        for lines in [
            json!({"17": {"direction": "output", "bias": null, "edge": null}}),
            json!({"27": {"direction": "input", "bias": "pull_down", "edge": "both"}}),
            json!({"17": {"bias": null}}),
            json!({"17": {"direction": "sideways"}}),
            json!({"17": {"direction": "input", "bias": "pull_sideways"}}),
            json!({"x17": {"direction": "output"}}),
            json!({"17": "output"}),
            json!([]),
            json!({}),
        ] {
            bodies.push(json!({"chip": "sim:a", "lines": lines}));
            bodies.push(json!({"chip": 1, "lines": lines}));
            bodies.push(json!({"lines": lines}));
        }
        let mut texts: Vec<String> = bodies.iter().map(Value::to_string).collect();
        texts.extend(["", "{", "{\"session_id\": \"s\",}", "nul"].map(String::from));
        for t in &texts {
            agree::<StartBody, GpioStart>(t, |o, n| {
                o.chip == n.chip
                    && o.lines.len() == n.lines.len()
                    && o.lines.iter().zip(&n.lines).all(|((ok, ov), (nk, nv))| {
                        ok == nk
                            && (ov.direction, ov.bias, ov.edge) == (nv.direction, nv.bias, nv.edge)
                    })
            });
            agree::<StopBody, GpioStop>(t, |o, n| o.session_id == n.session_id);
            agree::<SetBody, GpioSet>(t, |o, n| {
                o.session_id == n.session_id
                    && old_channel(&o.channel) == n.channel
                    && old_level(&o.value) == n.value
            });
            agree::<GetBody, GpioGet>(t, |o, n| {
                o.session_id == n.session_id && old_channel(&o.channel) == n.channel
            });
            agree::<WaitValueBody, GpioWaitValue>(t, |o, n| {
                o.session_id == n.session_id
                    && old_channel(&o.channel) == n.channel
                    && old_level(&o.value) == n.value
                    && o.timeout_ms == n.timeout_ms
            });
            agree::<WaitEdgeBody, GpioWaitEdge>(t, |o, n| {
                o.session_id == n.session_id
                    && old_channel(&o.channel) == n.channel
                    && o.edge == n.edge
                    && o.timeout_ms == n.timeout_ms
            });
        }
    }
}
