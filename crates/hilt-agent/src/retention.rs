//! Retention: finished run directories older than `max_age_days`, or beyond the newest
//! `max_runs`, are removed (the dispatcher prunes at start-up and after each run finishes).
//! Queued and executing runs are never pruned, nor damaged runs (their files are kept for a
//! person to look at).

use std::path::PathBuf;

use crate::state::{Agent, Runs};

/// Takes what the retention policy no longer keeps out of the run table; returns the
/// runs and their directories, for [`remove`].
pub fn doomed(agent: &Agent, runs: &mut Runs) -> Vec<(String, PathBuf)> {
    let policy = agent.retention();
    if policy.max_runs == 0 && policy.max_age_days == 0 {
        return Vec::new();
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
    {
        let mut finished: Vec<(u64, &str, Option<jiff::Timestamp>)> = runs
            .map
            .iter()
            .filter(|(_, e)| e.sum.status.is_terminal() && !e.sum.damaged && e.log.is_none())
            .map(|(id, e)| (e.sum.seq, &**id, e.sum.age_from()))
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
            .map(|(_, id, _)| id.to_string())
            .collect();
        ids.into_iter()
            .filter(|id| runs.map.remove(id.as_str()).is_some())
            .map(|id| {
                let dir = agent.settings.run_dir(&id);
                (id, dir)
            })
            .collect()
    }
}

/// Removes pruned run directories (off the dispatcher: this is disk work).
pub fn remove(agent: &Agent, doomed: &[(String, PathBuf)]) {
    for (id, dir) in doomed {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::warn!(run_id = %id, error = %e, "cannot remove a pruned run directory");
        }
    }
    let policy = agent.retention();
    tracing::info!(
        count = doomed.len(),
        max_runs = policy.max_runs,
        max_age_days = policy.max_age_days,
        "pruned finished runs"
    );
}
