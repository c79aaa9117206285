//! The SQLite store: one file in the data dir, WAL journal, embedded migrations
//! (`migrations/sqlite/`, applied at start).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{
    AgentRow, AgentSeen, BenchReport, BenchRow, Completion, Fut, NewRun, NewToken, Principal,
    RunRow, Store, StoreError, WorkspaceRow, state,
};

/// The columns of a [`RunRow`], for `concat!` into static SQL.
macro_rules! run_cols {
    () => {
        "id, workspace_id, bench_id, state, suite_yaml, artifact_name, skip_flash, verbose, \
         agent_id, fence, lease_expires_ms, exit_code, error, failure, created_at, started_at, \
         finished_at, artifacts_size, artifacts_sha256"
    };
}

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`) and migrates it.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

impl Store for SqliteStore {
    fn ensure_bootstrap<'a>(&'a self, hash: &'a str, now: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO workspaces (id, name, created_at) VALUES (?, 'default', ?) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(crate::ids::new_id())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO tokens (id, workspace_id, kind, admin, label, hash, created_at) \
                 SELECT ?, id, 'user', 1, 'bootstrap', ?, ? FROM workspaces WHERE name = 'default' \
                 ON CONFLICT (hash) DO NOTHING",
            )
            .bind(crate::ids::new_id())
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn create_workspace<'a>(
        &'a self,
        name: &'a str,
        now: &'a str,
    ) -> Fut<'a, Option<WorkspaceRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as::<_, WorkspaceRow>(
                "INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?) \
                 ON CONFLICT (name) DO NOTHING RETURNING id, name, created_at",
            )
            .bind(crate::ids::new_id())
            .bind(name)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?)
        })
    }

    fn workspace_by_name<'a>(&'a self, name: &'a str) -> Fut<'a, Option<WorkspaceRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as::<_, WorkspaceRow>(
                "SELECT id, name, created_at FROM workspaces WHERE name = ?",
            )
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
        })
    }

    fn insert_token<'a>(&'a self, t: NewToken<'a>) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO tokens (id, workspace_id, kind, admin, label, hash, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(t.id)
            .bind(t.workspace_id)
            .bind(t.kind)
            .bind(t.admin)
            .bind(t.label)
            .bind(t.hash)
            .bind(t.created_at)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn principal<'a>(&'a self, hash: &'a str) -> Fut<'a, Option<Principal>> {
        Box::pin(async move {
            Ok(sqlx::query_as::<_, Principal>(
                "SELECT t.id AS token_id, t.workspace_id, w.name AS workspace_name, t.kind, \
                 t.admin, t.machine_id FROM tokens t JOIN workspaces w ON w.id = t.workspace_id \
                 WHERE t.hash = ? AND t.revoked_at IS NULL",
            )
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?)
        })
    }

    fn revoke_token<'a>(
        &'a self,
        id: &'a str,
        workspace_id: Option<&'a str>,
        now: &'a str,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL \
                 AND (? IS NULL OR workspace_id = ?)",
            )
            .bind(now)
            .bind(id)
            .bind(workspace_id)
            .bind(workspace_id)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn bind_machine<'a>(&'a self, token_id: &'a str, machine_id: &'a str) -> Fut<'a, String> {
        Box::pin(async move {
            let bound: (String,) = sqlx::query_as(
                "UPDATE tokens SET machine_id = COALESCE(machine_id, ?) WHERE id = ? \
                 RETURNING machine_id",
            )
            .bind(machine_id)
            .bind(token_id)
            .fetch_one(&self.pool)
            .await?;
            Ok(bound.0)
        })
    }

    fn touch_agent<'a>(&'a self, a: AgentSeen<'a>) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO agents (id, workspace_id, machine_id, machine_name, version, last_seen_at) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
                 machine_name = excluded.machine_name, version = excluded.version, \
                 last_seen_at = excluded.last_seen_at",
            )
            .bind(a.agent_id)
            .bind(a.workspace_id)
            .bind(a.machine_id)
            .bind(a.machine_name)
            .bind(a.version)
            .bind(a.now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn heartbeat<'a>(
        &'a self,
        agent_id: &'a str,
        name: Option<&'a str>,
        region: Option<&'a str>,
        lease_until_ms: i64,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "UPDATE agents SET name = COALESCE(?, name), region = COALESCE(?, region) WHERE id = ?",
            )
            .bind(name)
            .bind(region)
            .bind(agent_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE runs SET lease_expires_ms = ? WHERE agent_id = ? AND state IN (?, ?)",
            )
            .bind(lease_until_ms)
            .bind(agent_id)
            .bind(state::PREPARING)
            .bind(state::RUNNING)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn sync_bench<'a>(&'a self, b: BenchReport<'a>) -> Fut<'a, String> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let known: Option<(String,)> = sqlx::query_as(
                "SELECT bench_id FROM benches WHERE agent_id = ? AND reported_bench_id = ?",
            )
            .bind(b.agent_id)
            .bind(b.reported_bench_id)
            .fetch_optional(&mut *tx)
            .await?;
            let bench_id = match known {
                Some((id,)) => id,
                None => {
                    // The reported id, or the first `<id>-N` no other agent of the
                    // workspace holds.
                    let mut candidate = b.reported_bench_id.to_string();
                    let mut n = 1;
                    loop {
                        let taken: Option<(String,)> = sqlx::query_as(
                            "SELECT agent_id FROM benches WHERE workspace_id = ? AND bench_id = ?",
                        )
                        .bind(b.workspace_id)
                        .bind(&candidate)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if taken.is_none() {
                            break candidate;
                        }
                        n += 1;
                        candidate = format!("{}-{n}", b.reported_bench_id);
                    }
                }
            };
            sqlx::query(
                "INSERT INTO benches (workspace_id, bench_id, agent_id, reported_bench_id, name, \
                 status, current_run_id, health_status, summary, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (workspace_id, bench_id) DO UPDATE SET name = excluded.name, \
                 status = excluded.status, current_run_id = excluded.current_run_id, \
                 health_status = excluded.health_status, summary = excluded.summary, \
                 updated_at = excluded.updated_at",
            )
            .bind(b.workspace_id)
            .bind(&bench_id)
            .bind(b.agent_id)
            .bind(b.reported_bench_id)
            .bind(b.name)
            .bind(b.status)
            .bind(b.current_run_id)
            .bind(b.health_status)
            .bind(b.summary)
            .bind(b.now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(bench_id)
        })
    }

    fn benches<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<BenchRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as::<_, BenchRow>(
                "SELECT bench_id, agent_id, name, status, current_run_id, health_status, summary, \
                 updated_at FROM benches WHERE workspace_id = ? ORDER BY bench_id",
            )
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await?)
        })
    }

    fn bench_exists<'a>(&'a self, workspace_id: &'a str, bench_id: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT 1 FROM benches WHERE workspace_id = ? AND bench_id = ?")
                    .bind(workspace_id)
                    .bind(bench_id)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(row.is_some())
        })
    }

    fn agents<'a>(&'a self, workspace_id: &'a str) -> Fut<'a, Vec<AgentRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as::<_, AgentRow>(
                "SELECT id, name, machine_id, machine_name, version, region, last_seen_at \
                 FROM agents WHERE workspace_id = ? ORDER BY id",
            )
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await?)
        })
    }

    fn insert_run<'a>(&'a self, r: NewRun<'a>) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO runs (id, workspace_id, bench_id, state, suite_yaml, artifact_name, \
                 skip_flash, verbose, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.id)
            .bind(r.workspace_id)
            .bind(r.bench_id)
            .bind(state::QUEUED)
            .bind(r.suite_yaml)
            .bind(r.artifact_name)
            .bind(r.skip_flash)
            .bind(r.verbose)
            .bind(r.created_at)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn run<'a>(&'a self, workspace_id: &'a str, id: &'a str) -> Fut<'a, Option<RunRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as::<_, RunRow>(concat!(
                "SELECT ",
                run_cols!(),
                " FROM runs WHERE workspace_id = ? AND id = ?"
            ))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
        })
    }

    fn runs<'a>(&'a self, workspace_id: &'a str, limit: i64) -> Fut<'a, Vec<RunRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as::<_, RunRow>(concat!(
                "SELECT ",
                run_cols!(),
                " FROM runs WHERE workspace_id = ? ORDER BY seq DESC LIMIT ?"
            ))
            .bind(workspace_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        })
    }

    fn claim<'a>(
        &'a self,
        workspace_id: &'a str,
        agent_id: &'a str,
        lease_until_ms: i64,
        now: &'a str,
    ) -> Fut<'a, Option<RunRow>> {
        Box::pin(async move {
            // One statement: SQLite runs it under its single writer lock, so two agents
            // polling at once never get the same run.
            // Health gate: only healthy or degraded benches are scheduled; failing, unknown
            // or missing health never is.
            Ok(sqlx::query_as::<_, RunRow>(concat!(
                "UPDATE runs SET state = 'preparing', agent_id = ?, fence = fence + 1, \
                 lease_expires_ms = ?, assigned_at = ? \
                 WHERE state = 'queued' AND id = ( \
                   SELECT r.id FROM runs r JOIN benches b \
                     ON b.workspace_id = r.workspace_id AND b.bench_id = r.bench_id \
                   WHERE r.workspace_id = ? AND r.state = 'queued' AND b.agent_id = ? \
                     AND b.health_status IN ('healthy', 'degraded') \
                     AND NOT EXISTS (SELECT 1 FROM runs a WHERE a.workspace_id = r.workspace_id \
                       AND a.bench_id = r.bench_id AND a.state IN ('preparing', 'running')) \
                   ORDER BY r.seq LIMIT 1) \
                 RETURNING ",
                run_cols!()
            ))
            .bind(agent_id)
            .bind(lease_until_ms)
            .bind(now)
            .bind(workspace_id)
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await?)
        })
    }

    fn append_events<'a>(
        &'a self,
        run_id: &'a str,
        events: Vec<(String, String)>,
        now: &'a str,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let (last,): (i64,) =
                sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM run_events WHERE run_id = ?")
                    .bind(run_id)
                    .fetch_one(&mut *tx)
                    .await?;
            for (i, (kind, body)) in events.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO run_events (run_id, seq, event_type, body) VALUES (?, ?, ?, ?)",
                )
                .bind(run_id)
                .bind(last + 1 + i as i64)
                .bind(kind)
                .bind(body)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE runs SET state = ?, started_at = ? WHERE id = ? AND state = ?")
                .bind(state::RUNNING)
                .bind(now)
                .bind(run_id)
                .bind(state::PREPARING)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn events<'a>(&'a self, run_id: &'a str) -> Fut<'a, Vec<(i64, String)>> {
        Box::pin(async move {
            Ok(
                sqlx::query_as("SELECT seq, body FROM run_events WHERE run_id = ? ORDER BY seq")
                    .bind(run_id)
                    .fetch_all(&self.pool)
                    .await?,
            )
        })
    }

    fn set_artifacts<'a>(&'a self, run_id: &'a str, size: i64, sha256: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE runs SET artifacts_size = ?, artifacts_sha256 = ? WHERE id = ?")
                .bind(size)
                .bind(sha256)
                .bind(run_id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn complete<'a>(
        &'a self,
        run_id: &'a str,
        agent_id: &'a str,
        c: Completion<'a>,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE runs SET state = ?, exit_code = ?, error = ?, failure = ?, \
                 started_at = COALESCE(started_at, ?), finished_at = ?, lease_expires_ms = NULL \
                 WHERE id = ? AND agent_id = ? AND state IN (?, ?)",
            )
            .bind(c.state)
            .bind(c.exit_code)
            .bind(c.error)
            .bind(c.failure)
            .bind(c.started_at)
            .bind(c.finished_at)
            .bind(run_id)
            .bind(agent_id)
            .bind(state::PREPARING)
            .bind(state::RUNNING)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn expire_leases<'a>(&'a self, now_ms: i64, c: Completion<'a>) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            let rows: Vec<(String,)> = sqlx::query_as(
                "UPDATE runs SET state = ?, exit_code = ?, error = ?, failure = ?, \
                 finished_at = ?, lease_expires_ms = NULL \
                 WHERE state IN (?, ?) AND lease_expires_ms < ? RETURNING id",
            )
            .bind(c.state)
            .bind(c.exit_code)
            .bind(c.error)
            .bind(c.failure)
            .bind(c.finished_at)
            .bind(state::PREPARING)
            .bind(state::RUNNING)
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }
}
