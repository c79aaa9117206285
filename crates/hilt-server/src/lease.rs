//! Leases: an agent that stops heartbeating loses the runs it holds. The sweeper fails them
//! (exit code -1, source Agent/cloud) so the bench's queue moves on and late reports under
//! the lost lease are refused.

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
}
