//! Retention: finished run directories older than `max_age_days`, or beyond the newest
//! `max_runs`, are removed (at start-up and after each run finishes). Queued and executing
//! runs are never pruned, nor damaged runs (their files are kept for a person to look at).

use std::sync::Arc;

use crate::state::Agent;

/// Removes what the retention policy no longer keeps; returns how many runs went.
pub fn prune(agent: &Arc<Agent>) -> usize {
    let policy = agent.retention();
    if policy.max_runs == 0 && policy.max_age_days == 0 {
        return 0;
    }
    let cutoff = (policy.max_age_days > 0)
        .then(|| {
            jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_hours(
                    policy
                        .max_age_days
                        .saturating_mul(24)
                        .min(i64::MAX as u64 / 4) as i64,
                ))
                .ok()
        })
        .flatten();
    let doomed: Vec<(String, std::path::PathBuf)> = {
        let mut runs = agent.runs();
        let mut finished: Vec<(u64, String, Option<jiff::Timestamp>)> = runs
            .map
            .values()
            .filter(|e| e.rec.status.is_terminal() && e.rec.damaged.is_none() && e.live.is_none())
            .map(|e| {
                let at = e
                    .rec
                    .finished_at
                    .as_deref()
                    .or(Some(e.rec.created_at.as_str()))
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok());
                (e.rec.seq, e.rec.run_id.clone(), at)
            })
            .collect();
        // Anything older than the cutoff goes; of the rest, everything past the newest
        // max_runs.
        finished.sort_by_key(|r| std::cmp::Reverse(r.0));
        let (old, young): (Vec<_>, Vec<_>) = finished
            .into_iter()
            .partition(|(_, _, at)| matches!((cutoff, at), (Some(c), Some(t)) if *t < c));
        let keep = if policy.max_runs == 0 {
            young.len()
        } else {
            policy.max_runs.min(young.len() as u64) as usize
        };
        let ids: Vec<String> = old
            .into_iter()
            .chain(young.into_iter().skip(keep))
            .map(|(_, id, _)| id)
            .collect();
        ids.into_iter()
            .filter_map(|id| runs.map.remove(&id).map(|e| (id, e.dir)))
            .collect()
    };
    for (id, dir) in &doomed {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::warn!(run_id = %id, error = %e, "cannot remove a pruned run directory");
        }
    }
    if !doomed.is_empty() {
        tracing::info!(
            count = doomed.len(),
            max_runs = policy.max_runs,
            max_age_days = policy.max_age_days,
            "pruned finished runs"
        );
    }
    doomed.len()
}
