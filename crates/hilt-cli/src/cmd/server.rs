//! `hilt server`: the server process (hilt-server) with its settings resolved here.

use std::time::Duration;

use hilt_runner::classify::exit;
use tokio::signal::unix::{SignalKind, signal};

use crate::server_cli::ServerArgs;

pub fn serve(a: ServerArgs) -> anyhow::Result<i32> {
    super::agent::init_logging();
    let data_dir = match a.data_dir {
        Some(d) => d,
        None => match std::env::var_os("HOME") {
            Some(h) => std::path::PathBuf::from(h).join("hilt-server"),
            None => {
                eprintln!("error: HOME is not set: give --data-dir");
                return Ok(exit::USAGE);
            }
        },
    };
    let mut settings = hilt_server::ServerSettings::new(data_dir);
    settings.database = a.database;
    settings.sqlite_full_sync = a.sqlite_synchronous == crate::server_cli::SqliteSync::Full;
    settings.bootstrap_token = std::env::var("HILT_SERVER_BOOTSTRAP_TOKEN").ok();
    settings.long_poll = Duration::from_secs(a.long_poll_s);
    settings.recheck = Duration::from_secs(a.recheck_s);
    settings.lease = Duration::from_secs(a.lease_s);
    settings.max_artifacts_bytes = a.max_artifacts_bytes;
    settings.artifacts = a.artifacts;
    settings.retain_age = Duration::from_secs(a.retain_days * 24 * 3600);
    settings.retain_runs = a.retain_runs;
    settings.metrics_public = a.metrics_public;
    settings.cancel_grace = Duration::from_secs(a.cancel_grace_s);
    settings.agent_forget_after = a.agent_forget_after;
    settings.max_connections = a.max_connections;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(a.bind.as_str()).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", a.bind);
                return Ok(exit::USAGE);
            }
        };
        let data_dir = settings.data_dir.clone();
        let app = match hilt_server::open(settings).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(exit::CONFIG_ERROR);
            }
        };
        println!(
            "hilt server listening on http://{} (data dir {})",
            listener.local_addr()?,
            data_dir.display()
        );
        match hilt_server::run(listener, app, stop_signal()).await {
            Ok(()) => {
                tracing::info!("hilt server stopped");
                Ok(0)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(exit::CONFIG_ERROR)
            }
        }
    })
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
