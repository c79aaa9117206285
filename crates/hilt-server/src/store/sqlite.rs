//! The SQLite store: one file in the data dir, WAL journal, embedded migrations
//! (`migrations/sqlite/`, applied at start).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::{
    AgentRow, AgentSeen, Appended, BenchReport, BenchRow, Completion, Fut, NewEvent, NewRun,
    NewToken, Principal, RunRow, Store, StoreError, WorkspaceRow, sql, state,
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

sql::impl_store!(SqliteStore, "BEGIN IMMEDIATE");
