//! The SQLite store: one file in the data dir, WAL journal, embedded migrations
//! (`migrations/sqlite/`, applied at start).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use tokio::sync::mpsc;

use super::{
    AgentRow, AgentSeen, Appended, BenchLabel, BenchReport, BenchRow, BenchWarning, Completion,
    Coordination, Counts, Finished, FirmwareGrant, FirmwareRow, Fut, HealthChangeRow, Heard,
    NewEvent, NewRun, NewToken, Principal, QueuedNeed, RunRow, Scheduling, Store, StoreError,
    WorkspaceRow, sql, sql_sched, state,
};

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
