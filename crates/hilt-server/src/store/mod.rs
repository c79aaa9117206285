//! The storage trait: everything the server keeps, behind one interface. The SQL is
//! written once (`sql.rs`, portable between SQLite and PostgreSQL); each backend file
//! (`sqlite.rs`, the default, and `postgres.rs`) only opens its pool and migrates. Every read and write of
//! tenant data takes the workspace id, so a query cannot cross workspaces by omission.

mod coord;
mod postgres;
mod sched;
mod sql;
mod sql_sched;
mod sqlite;

use std::future::Future;
use std::pin::Pin;

pub use coord::{Coordination, Heard};
pub use postgres::PgStore;
pub use sched::{
    BenchLabel, BenchWarning, Finished, HealthChangeRow, QueueBench, QueuedNeed, Scheduling,
};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST:PORT/DB")]
    UnsupportedUrl(String),
    #[error("the notification connection to the database was lost")]
    ListenerLost,
}

pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An authenticated token: who is calling, in which workspace.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Principal {
    pub token_id: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub kind: String,
    pub admin: bool,
    pub machine_id: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkspaceRow {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

pub struct NewToken<'a> {
    pub id: &'a str,
    pub workspace_id: &'a str,
    pub kind: &'a str,
    pub admin: bool,
    pub label: Option<&'a str>,
    pub hash: &'a str,
    pub created_at: &'a str,
}

/// What an agent's call tells about it (upserted on every authenticated agent call).
pub struct AgentSeen<'a> {
    pub agent_id: &'a str,
    pub workspace_id: &'a str,
    pub machine_id: &'a str,
    pub machine_name: Option<&'a str>,
    pub version: Option<&'a str>,
    pub now: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    pub id: String,
    pub name: Option<String>,
    pub machine_id: String,
    pub machine_name: Option<String>,
    pub version: Option<String>,
    pub region: Option<String>,
    pub last_seen_at: String,
}

pub struct BenchReport<'a> {
    pub workspace_id: &'a str,
    pub agent_id: &'a str,
    pub reported_bench_id: &'a str,
    pub name: &'a str,
    pub status: &'a str,
    pub current_run_id: Option<&'a str>,
    pub health_status: Option<&'a str>,
    pub summary: &'a str,
    pub now: &'a str,
    /// `tag:<t>` / `cap:<c>` labels, replacing the bench's previous ones.
    pub labels: &'a [String],
    /// (check id, concern, message) of its warning and failing checks.
    pub concerns: &'a [(String, String, Option<String>)],
    /// The health summary text, kept in the health history when the status changes.
    pub health_summary: Option<&'a str>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BenchRow {
    pub bench_id: String,
    pub agent_id: String,
    pub name: String,
    pub status: String,
    pub current_run_id: Option<String>,
    pub health_status: Option<String>,
    pub summary: String,
    pub updated_at: String,
}

pub struct NewRun<'a> {
    pub id: &'a str,
    pub workspace_id: &'a str,
    /// `""` for a run by tags/capabilities (set when it is assigned).
    pub bench_id: &'a str,
    pub priority: i32,
    /// JSON arrays as submitted (`None` for a run by bench id).
    pub tags: Option<&'a str>,
    pub capabilities: Option<&'a str>,
    /// `tag:<t>` / `cap:<c>` labels the bench must all carry.
    pub needs: &'a [String],
    /// What the suite uses (`resource:<r>`, `transport:<n>.<t>`, …).
    pub uses: &'a [String],
    pub suite_yaml: &'a str,
    pub artifact_name: Option<&'a str>,
    pub skip_flash: bool,
    pub verbose: bool,
    pub created_at: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub seq: i64,
    pub id: String,
    pub workspace_id: String,
    pub bench_id: String,
    pub state: String,
    pub suite_yaml: String,
    pub artifact_name: Option<String>,
    pub skip_flash: bool,
    #[sqlx(rename = "verbose_steps")]
    pub verbose: bool,
    pub agent_id: Option<String>,
    pub fence: i64,
    pub lease_expires_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub failure: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub artifacts_size: Option<i64>,
    pub artifacts_sha256: Option<String>,
    pub priority: i32,
    pub tags: Option<String>,
    pub capabilities: Option<String>,
    pub cancel_requested_at: Option<String>,
}

/// One event of an event call: the agent's sequence number (`None` when it sends none),
/// its type and its JSON body.
#[derive(Debug)]
pub struct NewEvent {
    pub agent_seq: Option<i64>,
    pub kind: String,
    pub body: String,
}

/// What an event call stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// `stored` new events; `replayed` sequenced ones were already stored and skipped.
    Stored { stored: usize, replayed: usize },
    /// The batch's first new sequenced event is not the next one (or its seqs do not rise
    /// by one): nothing was stored.
    Gap { expected: i64, got: i64 },
}

/// Which events of a batch are new, given the last stored agent seq: `Ok((new, replayed))`
/// with `new` the indices to store, or the gap. Sequenced events must rise by one through
/// the batch; those at or below `last` were stored before (a replay). Events without a seq
/// are always new.
pub fn sequence(last: i64, seqs: &[Option<i64>]) -> Result<(Vec<usize>, usize), Appended> {
    let mut new = Vec::with_capacity(seqs.len());
    let mut replayed = 0;
    let mut prev: Option<i64> = None;
    for (i, s) in seqs.iter().enumerate() {
        let Some(s) = *s else {
            new.push(i);
            continue;
        };
        let expected = prev.map_or(s.min(last + 1), |p| p + 1);
        if s != expected {
            return Err(Appended::Gap { expected, got: s });
        }
        prev = Some(s);
        if s <= last {
            replayed += 1;
        } else {
            new.push(i);
        }
    }
    Ok((new, replayed))
}

#[cfg(test)]
mod tests {
    use super::{Appended, sequence};

    #[test]
    fn replays_are_skipped_and_gaps_refused() {
        assert_eq!(sequence(0, &[Some(1), Some(2)]), Ok((vec![0, 1], 0)));
        // A replayed batch, and one that overlaps what is stored.
        assert_eq!(sequence(2, &[Some(1), Some(2)]), Ok((vec![], 2)));
        assert_eq!(
            sequence(2, &[Some(2), Some(3), Some(4)]),
            Ok((vec![1, 2], 1))
        );
        // A batch from the future, and one out of order inside.
        assert_eq!(
            sequence(2, &[Some(4), Some(5)]),
            Err(Appended::Gap {
                expected: 3,
                got: 4
            })
        );
        assert_eq!(
            sequence(0, &[Some(1), Some(3)]),
            Err(Appended::Gap {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(
            sequence(3, &[Some(4), Some(2)]),
            Err(Appended::Gap {
                expected: 5,
                got: 2
            })
        );
        // Unsequenced events (BenchCI) are always stored.
        assert_eq!(sequence(5, &[None, None]), Ok((vec![0, 1], 0)));
        assert_eq!(sequence(1, &[None, Some(2), None]), Ok((vec![0, 1, 2], 0)));
    }
}

/// The end of a run as its agent (or the lease sweeper) reports it.
pub struct Completion<'a> {
    pub state: &'a str,
    pub exit_code: Option<i32>,
    pub error: Option<&'a str>,
    pub failure: Option<&'a str>,
    pub started_at: Option<&'a str>,
    pub finished_at: &'a str,
}

/// Firmware submitted with a run (object `runs/<run_id>/firmware/<name>`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FirmwareRow {
    pub name: String,
    pub size: i64,
    pub sha256: String,
}

/// What a firmware download URL is checked against: the run's holder and lease.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FirmwareGrant {
    pub state: String,
    pub fence: i64,
    /// The SHA-256 of the holding agent's token (never leaves the server).
    pub token_hash: String,
    pub name: String,
}

/// Counts for `/metrics`, over every workspace.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// (state, runs in it).
    pub runs_by_state: Vec<(String, i64)>,
    /// Agents seen at or after the given time.
    pub agents_online: i64,
    pub agents: i64,
}

/// Run states in the store (`preparing` = assigned to an agent, not yet reporting).
pub mod state {
    pub const QUEUED: &str = "queued";
    pub const PREPARING: &str = "preparing";
    pub const RUNNING: &str = "running";
    pub const DONE: &str = "done";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
}

pub trait Store: Scheduling + Coordination + Send + Sync {
    /// Workspace `default` and an admin user token with this hash, if missing.
    fn ensure_bootstrap<'a>(&'a self, hash: &'a str, now: &'a str) -> Fut<'a, ()>;
    /// `None` when the name is taken.
    fn create_workspace<'a>(&'a self, name: &'a str, now: &'a str)
    -> Fut<'a, Option<WorkspaceRow>>;
    fn workspace_by_name<'a>(&'a self, name: &'a str) -> Fut<'a, Option<WorkspaceRow>>;
    fn insert_token<'a>(&'a self, t: NewToken<'a>) -> Fut<'a, ()>;
    /// The live (not revoked) token with this hash.
    fn principal<'a>(&'a self, hash: &'a str) -> Fut<'a, Option<Principal>>;
    /// Revokes a live token, within `workspace_id` unless `None` (admin). False when there
    /// is no such live token in scope.
    fn revoke_token<'a>(
        &'a self,
        id: &'a str,
        workspace_id: Option<&'a str>,
        now: &'a str,
    ) -> Fut<'a, bool>;
    /// Binds an agent token to a machine on first use; returns the machine it is bound to.
    fn bind_machine<'a>(&'a self, token_id: &'a str, machine_id: &'a str) -> Fut<'a, String>;
    fn touch_agent<'a>(&'a self, a: AgentSeen<'a>) -> Fut<'a, ()>;
    fn heartbeat<'a>(
        &'a self,
        agent_id: &'a str,
        name: Option<&'a str>,
        region: Option<&'a str>,
        lease_until_ms: i64,
    ) -> Fut<'a, ()>;
    /// Records a reported bench; returns the workspace-wide bench id it is known by.
    fn sync_bench<'a>(&'a self, b: BenchReport<'a>) -> Fut<'a, String>;
    fn benches<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<BenchRow>>;
    /// The agent a bench of the workspace belongs to.
    fn bench_agent<'a>(
        &'a self,
        workspace_id: &'a str,
        bench_id: &'a str,
    ) -> Fut<'a, Option<String>>;
    fn agents<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<AgentRow>>;
    /// Records a queued run; returns its row.
    fn insert_run<'a>(&'a self, r: NewRun<'a>) -> Fut<'a, RunRow>;
    fn run<'a>(&'a self, workspace_id: &'a str, id: &'a str) -> Fut<'a, Option<RunRow>>;
    /// Newest first.
    fn runs<'a>(&'a self, workspace_id: &'a str, limit: i64) -> Fut<'a, Vec<RunRow>>;
    /// Assigns the first queued run (priority, then age) that an idle, healthy-or-degraded
    /// bench of this agent matches — its own bench, or one carrying all its labels — with
    /// no warning on a part the suite uses (lease until `lease_until_ms`, fencing token + 1),
    /// in one transaction. Nothing while the agent was last seen before `seen_since` (lost).
    fn claim<'a>(
        &'a self,
        workspace_id: &'a str,
        agent_id: &'a str,
        lease_until_ms: i64,
        now: &'a str,
        seen_since: &'a str,
    ) -> Fut<'a, Option<RunRow>>;
    /// Appends events in order and marks a preparing run running. Sequenced events (an
    /// agent `seq`) already stored are skipped; a gap stores nothing.
    fn append_events<'a>(
        &'a self,
        run_id: &'a str,
        events: Vec<NewEvent>,
        now: &'a str,
    ) -> Fut<'a, Appended>;
    /// Event bodies with their sequence numbers, in order.
    fn events<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<(i64, String)>>;
    fn set_artifacts<'a>(&'a self, run_id: &'a str, size: i64, sha256: &'a str) -> Fut<'a, ()>;
    /// Ends an active run held by `agent_id` (as `cancelled` when a cancel was requested);
    /// false when the agent no longer holds it.
    /// `cancelled` is the (exit code, failure JSON) recorded instead when a cancel was
    /// requested.
    fn complete<'a>(
        &'a self,
        run_id: &'a str,
        agent_id: &'a str,
        c: Completion<'a>,
        cancelled: (i32, &'a str),
    ) -> Fut<'a, bool>;
    /// Fails every active run whose lease ran out; returns their ids.
    fn expire_leases<'a>(&'a self, now_ms: i64, c: Completion<'a>) -> Fut<'a, Vec<String>>;

    /// Records the firmware stored for a run (before the run is inserted, so an assignment
    /// always finds it).
    fn set_firmware<'a>(&'a self, run_id: &'a str, f: &'a FirmwareRow) -> Fut<'a, ()>;
    fn firmware<'a>(&'a self, run_id: &'a str) -> Fut<'a, Option<FirmwareRow>>;
    /// The run's firmware, lease and holder's token hash, while the token is live.
    fn firmware_grant<'a>(&'a self, run_id: &'a str) -> Fut<'a, Option<FirmwareGrant>>;
    /// Runs by state and agents seen since `online_since` (RFC 3339).
    fn counts<'a>(&'a self, online_since: &'a str) -> Fut<'a, Counts>;
    /// Ended runs (done or failed) created before `created_before` (RFC 3339) or beyond
    /// the newest `keep_per_workspace` runs of their workspace; at most `limit`, oldest
    /// first. Queued and active runs are never returned.
    fn prunable_runs<'a>(
        &'a self,
        created_before: &'a str,
        keep_per_workspace: Option<i64>,
        limit: i64,
    ) -> Fut<'a, Vec<String>>;
    /// Deletes an ended run with its events and firmware record; false when it is not
    /// there or not ended.
    fn delete_run<'a>(&'a self, run_id: &'a str) -> Fut<'a, bool>;
}
