//! The HTTP API: user routes (`/v1/runs`, `/v1/benches`, `/v1/agents`, `/v1/workspaces`,
//! `/v1/tokens`) and the cloud-agent backend calls (`/v1/agents/...`, agent-api spec §6).

mod admin;
mod agents;
pub mod auth;
mod event_batch;
mod firmware;
mod fleet;
mod metrics;
pub mod openapi;
mod runs;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::JsonRejection;
use axum::routing::{get, post};
use hilt_agent::api::error::{ApiError, json_rejection};

use crate::App;
use crate::store::StoreError;

/// A request body stalled this long is cut off (408).
const BODY_STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// Largest JSON body of every route but the submission (event batches, bench syncs, …).
const JSON_LIMIT: usize = 8 << 20;

pub fn router(app: Arc<App>) -> Router {
    // A JSON submission carries the firmware as base64 (4/3 of its size) beside the suite.
    let submit_limit = (app.settings.max_firmware_bytes as usize).saturating_mul(4) / 3 + (1 << 20);
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/workspaces", post(admin::create_workspace))
        .route("/v1/tokens", post(admin::create_token))
        .route("/v1/tokens/{token_id}/revoke", post(admin::revoke_token))
        .route("/v1/benches", get(fleet::benches))
        .route("/v1/benches/{bench_id}", get(fleet::bench))
        .route("/v1/agents", get(fleet::agents))
        .route(
            "/v1/runs",
            post(runs::submit)
                .layer(DefaultBodyLimit::max(submit_limit))
                .get(runs::list),
        )
        .route(
            "/v1/runs/json",
            post(runs::submit).layer(DefaultBodyLimit::max(submit_limit)),
        )
        .route("/v1/runs/{run_id}", get(runs::get))
        .route("/v1/runs/{run_id}/events", get(runs::events))
        .route("/v1/runs/{run_id}/cancel", post(runs::cancel))
        .route("/v1/runs/{run_id}/artifacts.zip", get(runs::artifacts))
        .route("/v1/agents/heartbeat", post(agents::heartbeat))
        .route("/v1/agents/benches/sync", post(agents::sync))
        .route("/v1/agents/assignments/next", get(agents::next))
        .route("/v1/agents/runs/{run_id}/events", post(agents::events))
        .route(
            "/v1/agents/runs/{run_id}/artifacts",
            // Streamed to the artifact store with its own cap, never buffered.
            post(agents::artifacts).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/agents/runs/{run_id}/complete", post(agents::complete))
        .route(
            "/v1/agents/runs/{run_id}/firmware/{name}",
            get(firmware::download),
        )
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            BODY_STALL,
            hilt_agent::connections::body_timeout,
        ))
        .layer(axum::middleware::from_fn(hilt_agent::api::json_errors))
        .with_state(app)
}

async fn health() -> axum::Json<hilt_api::ServerHealth> {
    axum::Json(hilt_api::ServerHealth {
        ok: true,
        service: "hilt-server".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

pub fn store_error(e: StoreError) -> ApiError {
    tracing::error!("{e}");
    ApiError::Internal("the server's database failed; see the server log".into())
}

/// A JSON body, or the 400/413/422 that says what is wrong with it.
pub fn body<T>(b: Result<axum::Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|axum::Json(v)| v).map_err(json_rejection)
}
