//! Retention: a background sweeper prunes ended runs created longer ago than
//! `--retain-days` or beyond the newest `--retain-runs` of their workspace — first their
//! objects in the artifact store, then their rows (run, events, firmware record). Queued
//! and active runs are never pruned. A run whose objects could not be deleted keeps its
//! row and is tried again on the next sweep.

use std::sync::Arc;

use crate::App;

/// Most runs pruned per sweep (the next sweep continues).
const BATCH: i64 = 500;

pub async fn sweep(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.settings.retention_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match prune(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("retention: pruned {n} runs"),
            Err(e) => tracing::error!("retention sweep failed: {e}"),
        }
    }
}

/// One sweep; returns how many runs were pruned.
pub async fn prune(app: &App) -> Result<usize, String> {
    let s = &app.settings;
    let age = jiff::SignedDuration::try_from(s.retain_age).unwrap_or(jiff::SignedDuration::MAX);
    let cutoff = jiff::Timestamp::now()
        .checked_sub(age)
        .unwrap_or(jiff::Timestamp::MIN)
        .to_string();
    let keep = s.retain_runs.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let ids = app
        .store
        .prunable_runs(&cutoff, keep, BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let mut pruned = 0;
    for id in ids {
        if let Err(e) = app.artifacts.delete_run(&id).await {
            tracing::warn!("retention: cannot delete the artifacts of run {id} (kept): {e}");
            continue;
        }
        if app.store.delete_run(&id).await.map_err(|e| e.to_string())? {
            pruned += 1;
        }
    }
    app.metrics.runs_pruned(pruned);
    Ok(pruned)
}
