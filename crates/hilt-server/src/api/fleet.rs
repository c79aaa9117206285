//! The workspace's benches and cloud agents, as their agents last reported them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use hilt_agent::api::error::ApiError;
use hilt_api::{ServerAgent, ServerAgentList, ServerBench, ServerBenchList};

use super::auth::User;
use super::store_error;
use crate::App;

pub async fn benches(
    State(app): State<Arc<App>>,
    User(p): User,
) -> Result<Json<ServerBenchList>, ApiError> {
    let rows = app
        .store
        .benches(&p.workspace_id)
        .await
        .map_err(store_error)?;
    Ok(Json(ServerBenchList {
        benches: rows
            .into_iter()
            .map(|b| ServerBench {
                bench_id: b.bench_id,
                agent_id: b.agent_id,
                name: b.name,
                status: b.status,
                current_run_id: b.current_run_id,
                health_status: b.health_status,
                updated_at: b.updated_at,
                summary: serde_json::from_str(&b.summary).unwrap_or_default(),
            })
            .collect(),
    }))
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
