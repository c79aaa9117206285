//! The scheduler's reads and writes beyond the claim (which is in [`Store`](super::Store)):
//! what benches offer and what queued runs need (for queue reasons, positions and wake-ups),
//! cancel, health history, and forgetting long-lost agents. SQL in `sql_sched.rs`.

use super::{Completion, Fut};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BenchLabel {
    pub bench_id: String,
    pub label: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BenchWarning {
    pub bench_id: String,
    pub check_id: String,
    pub concern: String,
    pub message: Option<String>,
}

/// One label a queued run of the workspace needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueuedNeed {
    pub run_id: String,
    pub label: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HealthChangeRow {
    pub status: String,
    pub summary: Option<String>,
    pub changed_at: String,
}

/// A recently finished run on a bench (for start estimates).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Finished {
    pub seq: i64,
    pub bench_id: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// A bench as the queue view judges it: its row, when its agent was last seen (`None` when
/// the agent is not in the workspace), and whether the run it reports itself busy with has
/// ended on this server (as the claim judges it: a known run no longer queued or active).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueueBench {
    #[sqlx(flatten)]
    pub bench: super::BenchRow,
    pub agent_last_seen_at: Option<String>,
    pub current_run_ended: bool,
}

/// Ids per statement of a dynamic IN-list (each may be bound up to three times): well under
/// SQLite's 32,766 and PostgreSQL's 65,535 parameters.
pub const IN_LIST: usize = 500;
/// Benches per statement of [`Scheduling::finished_on`] (two `UNION ALL` members each:
/// SQLite allows 500 members in one compound `SELECT`).
pub const BENCHES_PER_UNION: usize = 200;

pub trait Scheduling {
    fn bench_labels<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<BenchLabel>>;
    fn bench_warnings<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<BenchWarning>>;
    /// Newest first.
    fn health_history<'a>(
        &'a self,
        workspace_id: &'a str,
        bench_id: &'a str,
    ) -> Fut<'a, Vec<HealthChangeRow>>;
    /// The labels every queued run of the workspace needs.
    fn queued_needs<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<QueuedNeed>>;
    /// Queued and active runs of the workspace, oldest first.
    fn open_runs<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<super::RunRow>>;
    fn run_uses<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<String>>;
    /// The workspace's latest finished runs that started (newest first, at most `limit`).
    fn finished<'a>(&'a self, workspace_id: &'a str, limit: i64) -> Fut<'a, Vec<Finished>>;
    /// The latest finished runs that started on each of these benches (at most `per_bench`
    /// each; newest first), in one statement per [`BENCHES_PER_UNION`] benches.
    fn finished_on<'a>(
        &'a self,
        workspace_id: &'a str,
        bench_ids: &'a [String],
        per_bench: i64,
    ) -> Fut<'a, Vec<Finished>>;
    /// Every bench of the workspace, for the queue view.
    fn queue_benches<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<QueueBench>>;
    /// The benches that could take the run (its own bench, or those carrying all its
    /// labels), whatever their health or load; by bench id. A submission wakes their agents
    /// and fails at once when there is none.
    fn queue_candidates<'a>(&'a self, run: &'a super::RunRow) -> Fut<'a, Vec<QueueBench>>;
    /// The labels of these benches.
    fn labels_of<'a>(
        &'a self,
        workspace_id: &'a str,
        bench_ids: &'a [String],
    ) -> Fut<'a, Vec<BenchLabel>>;
    /// The warnings of these benches.
    fn warnings_of<'a>(
        &'a self,
        workspace_id: &'a str,
        bench_ids: &'a [String],
    ) -> Fut<'a, Vec<BenchWarning>>;
    /// The labels these runs need.
    fn needs_of<'a>(&'a self, run_ids: &'a [String]) -> Fut<'a, Vec<QueuedNeed>>;
    /// The open runs that matter for the queue view of `run` on these (its candidate)
    /// benches: the active runs on them, and the queued runs ahead of `run` (higher
    /// priority, or the same and older) that could take one of them. Oldest first.
    fn open_runs_for<'a>(
        &'a self,
        run: &'a super::RunRow,
        bench_ids: &'a [String],
    ) -> Fut<'a, Vec<super::RunRow>>;
    /// Ends a run still queued (cancelled, or failed as impossible); false if it was not.
    fn finish_queued<'a>(
        &'a self,
        workspace_id: &'a str,
        run_id: &'a str,
        c: Completion<'a>,
    ) -> Fut<'a, bool>;
    /// Marks an active run for cancellation (its agent is told; after `deadline_ms` it
    /// is cancelled anyway); false if it is not active.
    fn request_cancel<'a>(
        &'a self,
        workspace_id: &'a str,
        run_id: &'a str,
        now: &'a str,
        deadline_ms: i64,
    ) -> Fut<'a, bool>;
    /// Active runs of this agent whose cancellation was requested.
    fn cancel_requested<'a>(&'a self, agent_id: &'a str) -> Fut<'a, Vec<String>>;
    /// Ends active runs whose cancel grace period ran out; returns their ids.
    fn expire_cancels<'a>(&'a self, now_ms: i64, c: Completion<'a>) -> Fut<'a, Vec<String>>;
    /// Removes agents last seen before `before` (RFC 3339) and their benches (runs are
    /// kept); returns the agents' ids.
    fn forget_agents<'a>(&'a self, before: &'a str) -> Fut<'a, Vec<String>>;
}
