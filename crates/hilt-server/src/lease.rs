//! Leases: an agent that stops heartbeating loses the runs it holds. The sweeper fails them
//! (exit code -1, source Agent/cloud) so the bench's queue moves on and late reports under
//! the lost lease are refused. The same sweep ends cancelled runs whose agent did not stop
//! them within the grace period, and removes agents silent for `agent_forget_after`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::store::{Completion, state};
use crate::{App, ids};

/// How often expired leases are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

pub async fn sweep(app: Arc<App>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        expire_leases(&app).await;
        expire_cancels(&app).await;
        forget_agents(&app).await;
    }
}

async fn expire_leases(app: &App) {
    let secs = app.settings.lease.as_secs();
    let error = format!("agent lost: no heartbeat for {secs} s, the run's lease expired");
    let failure = json!({
        "category": "AGENT_LOST",
        "source": "agent",
        "title": "Agent lost",
        "message": error,
    })
    .to_string();
    let now = ids::now();
    let c = Completion {
        state: state::FAILED,
        exit_code: Some(-1),
        error: Some(&error),
        failure: Some(&failure),
        started_at: None,
        finished_at: &now,
    };
    match app.store.expire_leases(ids::now_ms(), c).await {
        Ok(ids) if !ids.is_empty() => {
            tracing::warn!("leases expired, runs failed: {}", ids.join(", "));
            app.wake_all();
        }
        Ok(_) => {}
        Err(e) => tracing::error!("lease sweep failed: {e}"),
    }
}

async fn expire_cancels(app: &App) {
    let secs = app.settings.cancel_grace.as_secs();
    let error = format!(
        "cancelled by a user; the agent did not stop the run within the {secs} s grace period"
    );
    let failure = crate::sched::cancelled_failure(&error);
    let now = ids::now();
    let c = Completion {
        state: state::CANCELLED,
        exit_code: Some(crate::sched::CANCELLED_EXIT),
        error: Some(&error),
        failure: Some(&failure),
        started_at: None,
        finished_at: &now,
    };
    match app.store.expire_cancels(ids::now_ms(), c).await {
        Ok(ids) if !ids.is_empty() => {
            tracing::warn!("cancel grace ran out, runs cancelled: {}", ids.join(", "));
            app.wake_all();
        }
        Ok(_) => {}
        Err(e) => tracing::error!("cancel sweep failed: {e}"),
    }
}

async fn forget_agents(app: &App) {
    let ms = app.settings.agent_forget_after.as_millis() as i64;
    let before = ids::ms_to_rfc3339(ids::now_ms() - ms);
    match app.store.forget_agents(&before).await {
        Ok(ids) if !ids.is_empty() => {
            for id in &ids {
                app.seen.forget(id);
            }
            tracing::warn!("agents silent since {before} removed: {}", ids.join(", "));
        }
        Ok(_) => {}
        Err(e) => tracing::error!("agent retention sweep failed: {e}"),
    }
}
