//! The HTTP API: routes, auth, OpenAPI document.

pub mod artifacts;
pub mod auth;
pub mod benches;
pub mod error;
pub mod gpio;
pub mod health;
pub mod runs;
pub mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use utoipa::OpenApi;

use crate::state::Agent;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hilt agent",
        description = "BenchCI-compatible remote execution API next to the hardware."
    ),
    paths(
        health::health,
        health::metrics,
        benches::list,
        benches::show,
        benches::health,
        benches::refresh,
        runs::submit_multipart,
        runs::submit_json,
        runs::get,
        runs::list,
        runs::events,
        runs::stream,
        runs::cancel,
        artifacts::zip,
        gpio::start,
        gpio::stop,
        gpio::set,
        gpio::get,
        gpio::wait_value,
        gpio::wait_edge,
    ),
    components(schemas(
        hilt_api::JsonRun,
        hilt_api::RunEvent,
        hilt_api::RunState,
        hilt_api::RunView,
        hilt_api::ErrorBody
    ))
)]
pub struct ApiDoc;

pub fn router(agent: Arc<Agent>) -> Router {
    let (max_yaml, max_art) = upload::limits(&agent);
    let protected = Router::new()
        .route("/v1/benches", get(benches::list))
        .route("/v1/benches/{bench_id}", get(benches::show))
        .route("/v1/benches/{bench_id}/health", get(benches::health))
        .route(
            "/v1/benches/{bench_id}/health/refresh",
            post(benches::refresh),
        )
        .route("/v1/runs", post(runs::submit_multipart).get(runs::list))
        .route("/v1/runs/json", post(runs::submit_json))
        .route("/v1/runs/{run_id}", get(runs::get))
        .route("/v1/runs/{run_id}/events", get(runs::events))
        .route("/v1/runs/{run_id}/events/stream", get(runs::stream))
        .route("/v1/runs/{run_id}/cancel", post(runs::cancel))
        .route("/v1/runs/{run_id}/artifacts.zip", get(artifacts::zip))
        .merge(gpio::routes())
        .layer(axum::middleware::from_fn_with_state(
            agent.clone(),
            auth::require_token,
        ));
    // The whole body may hold two YAML files and a firmware image; each part has its own
    // limit enforced while streaming (api/upload.rs), base64 JSON needs 4/3 of the image.
    let body_limit = (max_art as usize).saturating_mul(4) / 3 + 2 * max_yaml as usize + 64 * 1024;
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(ApiDoc::openapi()) }),
        )
        .merge(protected)
        .fallback(|| async { error::ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            std::time::Duration::from_secs(
                crate::limits::current(&agent).body_read_timeout_s.max(1),
            ),
            crate::connections::body_timeout,
        ))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            agent.clone(),
            count_requests,
        ))
        .with_state(agent)
}

async fn count_requests(
    axum::extract::State(agent): axum::extract::State<Arc<Agent>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    agent
        .metrics
        .http_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    next.run(req).await
}

/// Framework rejections (a bad query string or path encoding, a wrong method) come as text
/// or empty bodies: give them the API's JSON error shape too, keeping status and headers.
pub async fn json_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let json = serde_json::to_string(&hilt_api::ErrorBody::new(text)).unwrap_or_default();
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(
        CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    axum::response::Response::from_parts(parts, axum::body::Body::from(json))
}
