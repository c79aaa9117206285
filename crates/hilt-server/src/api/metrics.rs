//! `GET /metrics`: Prometheus text. Server-wide figures (every workspace), so it needs an
//! admin user token — Prometheus sends it with `authorization: {credentials: …}` — unless
//! the server runs with `--metrics-public` (a scraper on a private network).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::auth::{User, forbidden};
use super::store_error;
use crate::{App, ids};

pub async fn metrics(
    State(app): State<Arc<App>>,
    user: Result<User, Response>,
) -> Result<Response, Response> {
    if !app.settings.metrics_public {
        let User(p) = user?;
        if !p.admin {
            return Err(forbidden(
                "/metrics needs an admin token (or start the server with --metrics-public)",
            ));
        }
    }
    let online_since = ids::ms_to_rfc3339(ids::now_ms() - app.settings.lease.as_millis() as i64);
    let counts = app
        .store
        .counts(&online_since)
        .await
        .map_err(|e| store_error(e).into_response())?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(&counts),
    )
        .into_response())
}
