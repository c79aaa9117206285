//! What the run table keeps of a finished run: a compact summary (state, bench, times as
//! integers, exit code), enough to filter, order, prune and check states without the
//! record, which stays on disk (`runs/<id>/record.json`) and is read when asked for.

use std::sync::Arc;

use crate::record::{RunRecord, RunState};

/// What the run table keeps of every run: enough to filter, order, prune and answer
/// state checks without the record.
#[derive(Debug, Clone)]
pub struct Summary {
    pub status: RunState,
    /// The record could not be read (never pruned; reported as failed).
    pub damaged: bool,
    pub exit_code: Option<i32>,
    /// Submission order.
    pub seq: u64,
    /// Unix seconds of `created_at` and `finished_at` (`i64::MIN`: unknown / not yet).
    pub created_s: i64,
    pub finished_s: i64,
    /// The registered bench (shared with every other run on it), `None` when uploaded.
    pub bench: Option<Arc<str>>,
}

impl Summary {
    pub fn of(rec: &RunRecord, bench: Option<Arc<str>>) -> Summary {
        let mut s = Summary {
            status: rec.status,
            damaged: rec.damaged.is_some(),
            exit_code: None,
            seq: 0,
            created_s: i64::MIN,
            finished_s: i64::MIN,
            bench,
        };
        s.refresh(rec);
        s
    }

    /// Takes the fields a record's updates can change.
    pub fn refresh(&mut self, rec: &RunRecord) {
        self.status = rec.status;
        self.damaged = rec.damaged.is_some();
        self.exit_code = rec.exit_code;
        self.seq = rec.seq;
        self.created_s = unix_seconds(Some(&rec.created_at));
        self.finished_s = unix_seconds(rec.finished_at.as_deref());
    }

    /// When the run finished (or was created, when that is unknown), for retention.
    pub fn age_from(&self) -> Option<jiff::Timestamp> {
        [self.finished_s, self.created_s]
            .into_iter()
            .find(|s| *s != i64::MIN)
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
    }
}

fn unix_seconds(t: Option<&str>) -> i64 {
    t.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second())
        .unwrap_or(i64::MIN)
}
