//! `hilt server`: workspaces, tokens, cloud agents (BenchCI's `benchci agent cloud` speaks
//! to it unchanged, agent-api spec §6), leases and the run store.
//!
//! A library function like the agent: [`serve`] takes a bound listener, the settings and a
//! shutdown future, so tests bind port 0 and stop it without signals.

pub mod api;
pub mod artifacts;
pub mod ids;
mod lease;
pub mod metrics;
pub mod principals;
pub mod retention;
pub mod sched;
pub mod seen;
pub mod settings;
pub mod store;
pub mod wake;

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use settings::ServerSettings;
use store::{PgStore, SqliteStore, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Artifacts(#[from] artifacts::ArtifactsError),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// What every handler shares.
pub struct App {
    pub settings: ServerSettings,
    pub store: Box<dyn Store>,
    /// Firmware and results archives (`--artifacts`).
    pub artifacts: artifacts::Artifacts,
    pub metrics: metrics::Metrics,
    /// Agents whose last-seen time this process recorded lately.
    pub seen: seen::Seen,
    /// Tokens found valid lately.
    pub principals: principals::Principals,
    /// One wake-up per agent: a long-polling agent is woken when a run for one of its
    /// benches is queued or one of its benches frees up, and no other agent is; on a
    /// shared store (PostgreSQL) in every replica.
    wakers: wake::Wakers,
    /// Taken by [`run`]: the wake-ups to publish to the other replicas.
    outbox: Mutex<Option<wake::Outbox>>,
}

impl App {
    /// The agent's wake-up (made on first use; one per agent token).
    pub fn waker(&self, agent_id: &str) -> Arc<Notify> {
        self.wakers.waker(agent_id)
    }

    pub fn wake(&self, agent_id: &str) {
        self.wakers.wake(agent_id);
    }

    pub fn wake_agents(&self, agent_ids: &[String]) {
        for a in agent_ids {
            self.wake(a);
        }
    }

    pub fn wake_all(&self) {
        self.wakers.wake_all();
    }
}

/// Opens the store named by the settings (SQLite by default, PostgreSQL for `postgres://`).
pub async fn open_store(settings: &ServerSettings) -> Result<Box<dyn Store>, ServerError> {
    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        Ok(Box::new(
            SqliteStore::open(&url, settings.sqlite_full_sync).await?,
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Box::new(PgStore::open(&url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url).into())
    }
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    run(listener, open(settings).await?, shutdown).await
}

/// Everything [`serve`] needs before it listens: the data dir, the database (migrated, the
/// bootstrap token applied) and the artifact store (checked). The binary opens first and
/// says it listens only when this succeeded.
pub async fn open(settings: ServerSettings) -> Result<Arc<App>, ServerError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| ServerError::DataDir {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    let store = open_store(&settings).await?;
    if let Some(secret) = settings.bootstrap_token.as_deref().map(str::trim)
        && !secret.is_empty()
    {
        store
            .ensure_bootstrap(&ids::token_hash(secret), &ids::now())
            .await?;
    }
    let artifacts = artifacts::Artifacts::open(&settings).await?;
    tracing::info!("artifact store: {}", artifacts.url());
    let (wakers, outbox) = wake::Wakers::new(store.shared());
    Ok(Arc::new(App {
        seen: seen::Seen::new(settings.lease),
        principals: principals::Principals::default(),
        settings,
        store,
        artifacts,
        metrics: metrics::Metrics::default(),
        wakers,
        outbox: Mutex::new(Some(outbox)),
    }))
}

/// Serves an opened [`App`] until `shutdown` resolves, with the lease and retention
/// sweepers beside it.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let sweeper = tokio::spawn(lease::sweep(app.clone()));
    let retention = tokio::spawn(retention::sweep(app.clone()));
    // Wake-ups across replicas (nothing to do on SQLite).
    let outbox = app.outbox.lock().unwrap_or_else(|e| e.into_inner()).take();
    let publisher = outbox.map(|o| tokio::spawn(wake::publish(app.clone(), o)));
    let wake_listener = tokio::spawn(wake::listen(app.clone()));
    let limits = hilt_agent::connections::ConnLimits::from(&hilt_model::agent::AgentLimits {
        max_connections: app.settings.max_connections,
        ..Default::default()
    });
    let result = hilt_agent::connections::serve(listener, api::router(app), limits, shutdown)
        .await
        .map_err(ServerError::Serve);
    sweeper.abort();
    retention.abort();
    wake_listener.abort();
    if let Some(p) = publisher {
        p.abort();
    }
    result
}
