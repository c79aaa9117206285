//! The SQLite store: one file in the data dir, WAL journal, embedded migrations
//! (`migrations/sqlite/`, applied at start). Reads share a pool of connections; every
//! write goes through one writer connection, so writers queue in the pool (woken the
//! moment the previous one commits) instead of polling SQLite's lock in its busy handler,
//! which sleeps up to 100 ms between tries.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use tokio::sync::mpsc;

use super::{
    AgentRow, AgentSeen, Appended, BenchLabel, BenchReport, BenchRow, BenchWarning, Completion,
    Coordination, Counts, Finished, FirmwareGrant, FirmwareRow, Fut, HealthChangeRow, Heard,
    NewEvent, NewRun, NewToken, Principal, QueuedNeed, RunRow, Scheduling, Store, StoreError,
    WorkspaceRow, sql, sql_sched, state,
};

pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// Writes: one connection.
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`) and migrates it.
    /// `full_sync`: flush every commit to disk (`synchronous = FULL`); otherwise commits
    /// survive a crash or kill of the server and are flushed at checkpoints
    /// (`synchronous = NORMAL`, WAL), so a power loss may lose the last ones.
    pub async fn open(url: &str, full_sync: bool) -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if full_sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        Ok(SqliteStore { pool, writer })
    }
}

sql::impl_store!(SqliteStore, "BEGIN IMMEDIATE", "");
sql_sched::impl_sched!(SqliteStore, "BEGIN IMMEDIATE");

/// One process's file: no other server shares it, wake-ups stay in the process.
impl Coordination for SqliteStore {
    fn shared(&self) -> bool {
        false
    }

    fn publish<'a>(&'a self, _channel: &'a str, _payloads: &'a [String]) -> Fut<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn listen<'a>(&'a self, _channel: &'a str, _heard: mpsc::Sender<Heard>) -> Fut<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}
