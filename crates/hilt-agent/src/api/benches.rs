//! Registered benches: list, show, health, health refresh.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use hilt_api::{BenchDetail, BenchHealth, BenchSummary};
use serde::Deserialize;

use super::error::ApiError;
use crate::registry::{detail, health_check, summary};
use crate::state::Agent;

fn not_found(agent: &Agent) -> ApiError {
    if agent.registry().registered_mode() {
        ApiError::NotFound("bench not found".into())
    } else {
        ApiError::NotFound("this agent has no registered benches".into())
    }
}

#[utoipa::path(get, path = "/v1/benches", responses((status = 200, description = "Bench summaries, sorted by id", body = [BenchSummary])))]
pub async fn list(State(agent): State<Arc<Agent>>) -> Json<Vec<BenchSummary>> {
    let reg = agent.registry();
    let busy = agent.runs().busy.clone();
    Json(
        reg.benches
            .values()
            .map(|e| summary(&reg.agent_id(), e, busy.get(&e.reg.id).map(String::as_str)))
            .collect(),
    )
}

#[utoipa::path(get, path = "/v1/benches/{bench_id}", params(("bench_id" = String, Path)), responses((status = 200, body = BenchDetail), (status = 404, body = hilt_api::ErrorBody)))]
pub async fn show(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Json<BenchDetail>, ApiError> {
    let reg = agent.registry();
    let e = reg.benches.get(&id).ok_or_else(|| not_found(&agent))?;
    let current = agent.current_run_of(&id);
    Ok(Json(detail(&reg.agent_id(), e, current.as_deref())))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct HealthQuery {
    #[serde(default)]
    include_report: bool,
}

#[utoipa::path(get, path = "/v1/benches/{bench_id}/health", params(("bench_id" = String, Path), HealthQuery), responses((status = 200, body = BenchHealth), (status = 404, body = hilt_api::ErrorBody)))]
pub async fn health(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    Query(q): Query<HealthQuery>,
) -> Result<Json<BenchHealth>, ApiError> {
    let reg = agent.registry();
    let e = reg.benches.get(&id).ok_or_else(|| not_found(&agent))?;
    Ok(Json(BenchHealth {
        health: e.health.clone(),
        report: q.include_report.then(|| e.report.clone()),
        bench_id: id,
    }))
}

#[utoipa::path(post, path = "/v1/benches/{bench_id}/health/refresh", params(("bench_id" = String, Path)), responses((status = 200, body = BenchHealth), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody)))]
pub async fn refresh(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Json<BenchHealth>, ApiError> {
    let path = {
        let reg = agent.registry();
        reg.benches
            .get(&id)
            .ok_or_else(|| not_found(&agent))?
            .path
            .clone()
    };
    // Hold the bench for the duration of the self-test, so no run starts on it meanwhile.
    let holder = format!("health-refresh-{}", crate::state::new_run_id());
    if let Err(run) = agent.dispatcher.hold(&id, &holder).await {
        return Err(ApiError::Conflict(format!("bench is busy with run {run}")));
    }
    let a = agent.clone();
    let bid = id.clone();
    let result = tokio::task::spawn_blocking(move || health_check(&a.settings, &bid, &path)).await;
    agent
        .dispatcher
        .send(crate::dispatcher::Msg::Release { holder });
    let (health, report) =
        result.map_err(|e| ApiError::Internal(format!("self-test failed to run: {e}")))?;
    if let Some(e) = agent
        .registry
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .benches
        .get_mut(&id)
    {
        e.health = health.clone();
        e.report = report;
    }
    Ok(Json(BenchHealth {
        bench_id: id,
        health,
        report: None,
    }))
}
