//! The PostgreSQL store (`--database postgres://…`): a connection pool, embedded migrations
//! (`migrations/postgres/`, applied at start), the same SQL as SQLite (`sql.rs`).

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{
    AgentRow, AgentSeen, Appended, BenchLabel, BenchReport, BenchRow, BenchWarning, Completion,
    Counts, Finished, FirmwareGrant, FirmwareRow, Fut, HealthChangeRow, NewEvent, NewRun, NewToken,
    Principal, QueuedNeed, RunRow, Scheduling, Store, StoreError, WorkspaceRow, sql, sql_sched,
    state,
};

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` and migrates it.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }
}

sql::impl_store!(PgStore, "BEGIN");
sql_sched::impl_sched!(PgStore, "BEGIN");
