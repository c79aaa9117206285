//! The PostgreSQL store (`--database postgres://…`): a connection pool, embedded migrations
//! (`migrations/postgres/`, applied at start), the same SQL as SQLite (`sql.rs`), and what
//! lets several server processes share it: the claim skips runs another process is
//! claiming (`FOR UPDATE … SKIP LOCKED`) and wake-ups cross processes as `NOTIFY`s.

use sqlx::Connection as _;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder};
use tokio::sync::mpsc;

use super::{
    AgentRow, AgentSeen, Appended, BenchLabel, BenchReport, BenchRow, BenchWarning, Completion,
    Coordination, Counts, Finished, FirmwareGrant, FirmwareRow, Fut, HealthChangeRow, Heard,
    NewEvent, NewRun, NewToken, Principal, QueuedNeed, RunRow, Scheduling, Store, StoreError,
    WorkspaceRow, sql, sql_sched, state,
};

pub struct PgStore {
    /// Reads and writes: PostgreSQL's row locks let writers run side by side.
    pool: PgPool,
    /// For the notification listener's own connection.
    url: String,
}

impl PgStore {
    /// Connects to the database at `url` and migrates it. Several processes may do this at
    /// once: sqlx's migrator takes an advisory lock, so one migrates and the others wait.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(std::time::Duration::from_secs(10))
            // No `SELECT 1` round trip before each use: a connection is already checked
            // when it returns to the pool, and one broken since fails its statement.
            .test_before_acquire(false)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            pool,
            url: url.to_string(),
        })
    }

    async fn read(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        self.pool.acquire().await
    }

    async fn write(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        self.pool.acquire().await
    }

    /// Stores `events[k]` for each `k` of `new` as numbers `first`, `first + 1`, …: one
    /// statement whatever their number, its columns bound as arrays, so that it is parsed
    /// and planned once per connection (a multi-row VALUES list changes with the batch).
    async fn insert_events(
        &self,
        tx: &mut PgConnection,
        run_id: &str,
        first: i64,
        events: &[NewEvent],
        new: &[usize],
    ) -> Result<(), sqlx::Error> {
        if new.is_empty() {
            return Ok(());
        }
        let kinds: Vec<&str> = new.iter().map(|&k| events[k].kind.as_str()).collect();
        let bodies: Vec<&str> = new.iter().map(|&k| events[k].body.as_str()).collect();
        let seqs: Vec<Option<i64>> = new.iter().map(|&k| events[k].agent_seq).collect();
        sqlx::query(
            "INSERT INTO run_events (run_id, seq, event_type, body, agent_seq) \
             SELECT $1, $2 + t.i - 1, t.k, t.b, t.a \
             FROM unnest($3::text[], $4::text[], $5::bigint[]) WITH ORDINALITY AS t(k, b, a, i)",
        )
        .bind(run_id)
        .bind(first)
        .bind(&kinds)
        .bind(&bodies)
        .bind(&seqs)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    fn builder(&self, init: &str) -> QueryBuilder<Postgres> {
        QueryBuilder::new(init)
    }
}

// The claim's choice of a run locks it and skips runs locked by a claim in another
// transaction (of this process or another replica's), so concurrent claims never wait on
// each other nor choose the same run.
sql::impl_store!(PgStore, "BEGIN", " FOR UPDATE OF r SKIP LOCKED");
sql_sched::impl_sched!(PgStore, "BEGIN");

impl Coordination for PgStore {
    fn shared(&self) -> bool {
        true
    }

    fn publish<'a>(&'a self, channel: &'a str, payloads: &'a [String]) -> Fut<'a, ()> {
        Box::pin(async move {
            if payloads.is_empty() {
                return Ok(());
            }
            sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                .bind(channel)
                .bind(payloads)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn listen<'a>(&'a self, channel: &'a str, heard: mpsc::Sender<Heard>) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut listener = PgListener::connect(&self.url).await?;
            // A lost connection is reported, not silently re-made: the caller wakes every
            // long-poll once after reconnecting, since notifications sent meanwhile are gone.
            listener.eager_reconnect(false);
            listener.listen(channel).await?;
            if heard.send(Heard::Listening).await.is_err() {
                return Ok(());
            }
            loop {
                let Some(n) = listener.try_recv().await? else {
                    return Err(StoreError::ListenerLost);
                };
                if heard
                    .send(Heard::Payload(n.payload().to_string()))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        })
    }
}
