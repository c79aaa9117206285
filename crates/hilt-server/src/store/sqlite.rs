//! The SQLite store: one file in the data dir, WAL journal, embedded migrations
//! (`migrations/sqlite/`, applied at start). Reads share a few connections; every write
//! goes through one writer connection, so writers queue behind a lock (woken the moment
//! the previous one is done) instead of polling SQLite's lock in its busy handler, which
//! sleeps up to 100 ms between tries.
//!
//! The connections are held by the store, not by a `sqlx` pool: a pool pings a connection
//! on every return (and before every use by default), a round trip to the connection's
//! worker thread each time, and with one writer every such round trip is time no other
//! write can use.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::{Mutex, MutexGuard, mpsc, oneshot};

use super::{
    AgentRow, AgentSeen, Appended, BenchLabel, BenchReport, BenchRow, BenchWarning, Completion,
    Coordination, Counts, Finished, FirmwareGrant, FirmwareRow, Fut, HealthChangeRow, Heard,
    NewEvent, NewRun, NewToken, Principal, QueuedNeed, RunRow, Scheduling, Store, StoreError,
    WorkspaceRow, sql, sql_sched, state,
};

/// Reader connections (WAL: reads run beside the writer and each other).
const READERS: usize = 8;

/// How often the write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Events per multi-row INSERT: 5 parameters each, well under SQLite's 32,766 parameters
/// per statement.
const EVENT_ROWS: usize = 500;

pub struct SqliteStore {
    readers: Vec<Mutex<SqliteConnection>>,
    /// Where the next reader is looked for first.
    next: AtomicUsize,
    writer: Mutex<SqliteConnection>,
    /// Dropped with the store: ends the checkpoint task.
    _checkpoints: oneshot::Sender<()>,
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
        let mut writer = SqliteConnection::connect_with(&opts).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut writer)
            .await?;
        // The writer never checkpoints: the commit that crosses SQLite's threshold would
        // copy the log into the file and flush it while every other write waits. A task
        // on its own connection does it beside the writes (`checkpoints`).
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut writer)
            .await?;
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(checkpoints(
            SqliteConnection::connect_with(&opts).await?,
            stopped,
        ));
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(Mutex::new(SqliteConnection::connect_with(&opts).await?));
        }
        Ok(SqliteStore {
            readers,
            next: AtomicUsize::new(0),
            writer: Mutex::new(writer),
            _checkpoints: stop,
        })
    }

    /// A free reader, or the next one in turn when all are busy.
    async fn read(&self) -> Result<MutexGuard<'_, SqliteConnection>, sqlx::Error> {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..READERS {
            if let Ok(c) = self.readers[(first + i) % READERS].try_lock() {
                return Ok(c);
            }
        }
        Ok(self.readers[first % READERS].lock().await)
    }

    /// The writer, once every write queued before has finished.
    async fn write(&self) -> Result<MutexGuard<'_, SqliteConnection>, sqlx::Error> {
        Ok(self.writer.lock().await)
    }

    /// Stores `events[k]` for each `k` of `new` as numbers `first`, `first + 1`, …: one
    /// multi-row INSERT per [`EVENT_ROWS`] events (not one statement per event).
    async fn insert_events(
        &self,
        tx: &mut SqliteConnection,
        run_id: &str,
        first: i64,
        events: &[NewEvent],
        new: &[usize],
    ) -> Result<(), sqlx::Error> {
        for (c, chunk) in new.chunks(EVENT_ROWS).enumerate() {
            let first = first + (c * EVENT_ROWS) as i64;
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO run_events (run_id, seq, event_type, body, agent_seq) ",
            );
            q.push_values(chunk.iter().enumerate(), |mut row, (i, &k)| {
                let e = &events[k];
                row.push_bind(run_id)
                    .push_bind(first + i as i64)
                    .push_bind(&e.kind)
                    .push_bind(&e.body)
                    .push_bind(e.agent_seq);
            });
            // Not cached: the statement's text changes with the chunk's length.
            q.build().persistent(false).execute(&mut *tx).await?;
        }
        Ok(())
    }

    fn builder(&self, init: &str) -> QueryBuilder<Sqlite> {
        QueryBuilder::new(init)
    }
}

/// Copies the write-ahead log into the database file every [`CHECKPOINT_EVERY`] (passive:
/// never waits for, nor blocks, readers and the writer) until the store is dropped.
async fn checkpoints(mut conn: SqliteConnection, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!("SQLite checkpoint failed (retried in {CHECKPOINT_EVERY:?}): {e}");
        }
    }
    let _ = conn.close().await;
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
