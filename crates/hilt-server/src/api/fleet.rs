//! The workspace's benches and cloud agents, as their agents last reported them: health,
//! the warnings and what each concerns, tags, whether the agent is online, and (one bench)
//! the history of its health changes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use hilt_agent::api::error::ApiError;
use hilt_api::{
    HealthChange, HealthConcern, ServerAgent, ServerAgentList, ServerBench, ServerBenchList,
};
use serde_json::Value;

use super::auth::User;
use super::store_error;
use crate::store::{BenchRow, BenchWarning};
use crate::{App, ids};

fn online(app: &App, last_seen_at: &str) -> bool {
    last_seen_at
        .parse::<jiff::Timestamp>()
        .is_ok_and(|t| ids::now_ms() - t.as_millisecond() <= app.settings.lease.as_millis() as i64)
}

fn bench_view(
    app: &App,
    b: BenchRow,
    warnings: &[BenchWarning],
    agent_seen: Option<&str>,
) -> ServerBench {
    let summary: Value = serde_json::from_str(&b.summary).unwrap_or_default();
    let tags = summary
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    ServerBench {
        warnings: warnings
            .iter()
            .filter(|w| w.bench_id == b.bench_id)
            .map(|w| HealthConcern {
                check_id: w.check_id.clone(),
                concerns: w.concern.clone(),
                message: w.message.clone(),
            })
            .collect(),
        agent_online: agent_seen.is_some_and(|s| online(app, s)),
        agent_last_seen_at: agent_seen.map(str::to_string),
        bench_id: b.bench_id,
        agent_id: b.agent_id,
        name: b.name,
        status: b.status,
        current_run_id: b.current_run_id,
        health_status: b.health_status,
        tags,
        health_history: None,
        updated_at: b.updated_at,
        summary,
    }
}

async fn bench_views(app: &App, ws: &str) -> Result<Vec<ServerBench>, ApiError> {
    let rows = app.store.benches(ws).await.map_err(store_error)?;
    let warnings = app.store.bench_warnings(ws).await.map_err(store_error)?;
    let agents = app.store.agents(ws).await.map_err(store_error)?;
    Ok(rows
        .into_iter()
        .map(|b| {
            let seen = agents
                .iter()
                .find(|a| a.id == b.agent_id)
                .map(|a| a.last_seen_at.as_str());
            bench_view(app, b, &warnings, seen)
        })
        .collect())
}

pub async fn benches(
    State(app): State<Arc<App>>,
    User(p): User,
) -> Result<Json<ServerBenchList>, ApiError> {
    Ok(Json(ServerBenchList {
        benches: bench_views(&app, &p.workspace_id).await?,
    }))
}

/// `GET /v1/benches/{id}`: one bench with its health history, newest first.
pub async fn bench(
    State(app): State<Arc<App>>,
    User(p): User,
    Path(bench_id): Path<String>,
) -> Result<Json<ServerBench>, ApiError> {
    let mut bench = bench_views(&app, &p.workspace_id)
        .await?
        .into_iter()
        .find(|b| b.bench_id == bench_id)
        .ok_or_else(|| ApiError::NotFound(format!("bench not found: {bench_id}")))?;
    let history = app
        .store
        .health_history(&p.workspace_id, &bench_id)
        .await
        .map_err(store_error)?;
    bench.health_history = Some(
        history
            .into_iter()
            .map(|h| HealthChange {
                status: h.status,
                summary: h.summary,
                changed_at: h.changed_at,
            })
            .collect(),
    );
    Ok(Json(bench))
}

pub async fn agents(
    State(app): State<Arc<App>>,
    User(p): User,
) -> Result<Json<ServerAgentList>, ApiError> {
    let rows = app
        .store
        .agents(&p.workspace_id)
        .await
        .map_err(store_error)?;
    Ok(Json(ServerAgentList {
        agents: rows
            .into_iter()
            .map(|a| ServerAgent {
                online: online(&app, &a.last_seen_at),
                agent_id: a.id,
                name: a.name,
                machine_id: a.machine_id,
                machine_name: a.machine_name,
                version: a.version,
                region: a.region,
                last_seen_at: a.last_seen_at,
            })
            .collect(),
    }))
}
