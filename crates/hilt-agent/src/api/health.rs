//! `GET /health` (no auth) and `GET /metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::state::Agent;

/// Liveness and a summary of the agent (agent-api spec §3.1).
#[utoipa::path(get, path = "/health", responses((status = 200, description = "Agent summary", body = hilt_api::Health)))]
pub async fn health(State(agent): State<Arc<Agent>>) -> Json<hilt_api::Health> {
    let reg = agent.registry();
    let mut counts = hilt_api::BenchHealthCounts::default();
    for b in reg.benches.values() {
        match b.health["status"].as_str() {
            Some("healthy") => counts.healthy += 1,
            Some("degraded") => counts.degraded += 1,
            Some("failing") => counts.failing += 1,
            _ => counts.unknown += 1,
        }
    }
    let (queue_depth, active) = {
        let runs = agent.runs();
        (runs.queue_depth(), runs.active())
    };
    Json(hilt_api::Health {
        ok: true,
        service: "hilt-agent".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        agent_id: reg.agent_id(),
        agent_name: reg.agent_name(),
        time_utc: hilt_model::run::now(),
        queue_depth,
        active_runs: active,
        auth_enabled: agent.settings.token.is_some(),
        active_gpio_sessions: agent.gpio.count(),
        registered_benches: reg.benches.len(),
        registered_mode: reg.registered_mode(),
        agent_config_path: reg.config_path.as_ref().map(|p| p.display().to_string()),
        bench_health: counts,
        accepting_runs: agent.accepting.load(std::sync::atomic::Ordering::SeqCst),
    })
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus metrics", body = String)))]
pub async fn metrics(
    State(agent): State<Arc<Agent>>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let (q, a) = {
        let runs = agent.runs();
        (runs.queue_depth(), runs.active())
    };
    let text = agent.metrics.render(
        q,
        a,
        agent.gpio.count(),
        agent.started.elapsed().as_secs_f64(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}
