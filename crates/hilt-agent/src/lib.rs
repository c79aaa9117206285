//! `hilt agent serve`: the BenchCI-compatible HTTP API next to the hardware.
//!
//! The server is a library function: [`serve`] takes a bound listener, the settings and a
//! channel of [`Control`] messages (what the binary's signal handlers send), so tests bind
//! port 0 and drive shutdown without signals.

pub mod api;
pub mod cloud;
pub mod connections;
mod dispatcher;
pub mod gpio;
pub mod limits;
mod metrics;
pub mod record;
mod recovery;
pub mod registry;
mod retention;
mod runlog;
pub mod settings;
pub mod state;
mod submit;
pub mod summary;
mod worker;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use registry::Registry;
pub use settings::AgentSettings;
pub use state::{Agent, Stop};

/// After a drain, how long the port stays open so that clients waiting on the runs that just
/// finished can still collect them; new runs are refused meanwhile.
const DRAIN_LINGER: Duration = Duration::from_secs(5);

/// The same after a cancelling stop (second SIGTERM, SIGQUIT): shorter, the operator asked
/// for a quick exit, but a waiting client still gets its cancelled run's results.
const CANCEL_LINGER: Duration = Duration::from_secs(3);

/// What the process asks the agent to do (mapped from signals by the binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGTERM: stop accepting, let executing runs finish, exit. Queued runs stay queued.
    Drain,
    /// Second SIGTERM or SIGQUIT: cancel executing runs (recorded as cancelled with exit
    /// code 128+signal), exit.
    Cancel(i32),
    /// SIGUSR1 or the restart file: exit as soon as no run is executing.
    Restart,
    /// SIGHUP: reload agent.yaml.
    Reload,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid agent configuration: {0}")]
    Config(#[from] registry::RegistryError),
    #[error("cannot use the work directory {path}: {source}")]
    WorkDir {
        path: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// Loads the configuration, self-tests the registered benches, recovers runs from disk and
/// serves until a [`Control`] says to stop and no run is executing any more.
pub async fn serve(
    listener: TcpListener,
    settings: AgentSettings,
    mut control: mpsc::Receiver<Control>,
) -> Result<(), AgentError> {
    let registry = Registry::load(&settings)?;
    let mut settings = settings;
    if settings.restart_file.is_none() {
        settings.restart_file = Some(AgentSettings::restart_file_for(&registry.agent_name()));
    }
    std::fs::create_dir_all(settings.runs_dir()).map_err(|source| AgentError::WorkDir {
        path: settings.work_dir.display().to_string(),
        source,
    })?;
    let conn_limits = connections::ConnLimits::from(&limits::resolve(&settings, &registry));
    let agent = Arc::new(Agent::new(settings, registry));
    if agent.settings.self_test_on_start {
        self_test_all(&agent, false).await;
    }
    if let Some(mut dispatcher) = dispatcher::Dispatcher::new(agent.clone()) {
        recovery::recover(&mut dispatcher);
        dispatcher.prune(true);
        tokio::spawn(dispatcher.run());
    }
    // Closes idle GPIO sessions periodically.
    tokio::spawn({
        let agent = agent.clone();
        async move { agent.gpio.run_sweeper().await }
    });
    let app = api::router(agent.clone());
    let shutdown = {
        let agent = agent.clone();
        async move {
            let mut restart_poll = tokio::time::interval(Duration::from_millis(500));
            // Once every sender is gone, `recv` returns None at once: stop polling it.
            let mut control_open = true;
            loop {
                tokio::select! {
                    c = control.recv(), if control_open => match c {
                        Some(Control::Reload) => reload(&agent).await,
                        Some(c) => begin_stop(&agent, c),
                        None => control_open = false,
                    },
                    _ = restart_poll.tick() => {
                        if let Some(f) = &agent.settings.restart_file && f.exists() {
                            let _ = std::fs::remove_file(f);
                            tracing::info!(file = %f.display(), "restart file found: exiting once no run is executing");
                            begin_stop(&agent, Control::Restart);
                        }
                    }
                }
                if agent.stop_mode() != Stop::No {
                    break;
                }
            }
            // Wait until nothing executes any more.
            let drained = agent.runs().active() > 0;
            loop {
                let stopped = agent.stopped.notified();
                if agent.runs().active() == 0 {
                    break;
                }
                tokio::select! {
                    _ = stopped => {}
                    c = control.recv(), if control_open => match c {
                        Some(c @ Control::Cancel(_)) => begin_stop(&agent, c),
                        Some(_) => {}
                        None => control_open = false,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            // Clients waiting on the runs that just finished or were cancelled (BenchCI
            // polls once a second) still fetch their status, events and artifacts before
            // the port closes. One more stop signal ends the wait.
            if drained {
                let window = match agent.stop_mode() {
                    Stop::Cancel(_) => CANCEL_LINGER,
                    Stop::Drain | Stop::No => DRAIN_LINGER,
                };
                tracing::info!(
                    seconds = window.as_secs(),
                    "executing runs ended; serving their results before exiting"
                );
                let mut linger = std::pin::pin!(tokio::time::sleep(window));
                loop {
                    tokio::select! {
                        _ = &mut linger => break,
                        c = control.recv(), if control_open => match c {
                            Some(Control::Cancel(_) | Control::Drain) => break,
                            Some(_) => {}
                            None => control_open = false,
                        },
                    }
                }
            }
        }
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let server = connections::serve(listener, app, conn_limits, async move {
        let _ = done_rx.await;
    });
    let server = tokio::spawn(server);
    shutdown.await;
    let _ = done_tx.send(());
    agent.gpio.close_all();
    // Open streams (SSE, downloads) get a moment to finish, then the process goes.
    match tokio::time::timeout(Duration::from_secs(2), server).await {
        Ok(Ok(Err(e))) => Err(AgentError::Serve(e)),
        _ => Ok(()),
    }
}

fn begin_stop(agent: &Agent, c: Control) {
    agent.accepting.store(false, Ordering::SeqCst);
    {
        let mut stop = agent.stop.lock().unwrap_or_else(|e| e.into_inner());
        match c {
            Control::Cancel(sig) => *stop = Stop::Cancel(sig),
            Control::Drain | Control::Restart if *stop == Stop::No => *stop = Stop::Drain,
            Control::Drain | Control::Restart | Control::Reload => {}
        }
    }
    // The dispatcher starts no more runs, cancels executing ones for a cancelling stop and
    // applies `on_shutdown` to the queue.
    agent.dispatcher.send(dispatcher::Msg::Stop(c));
}

/// Runs the self-test of every registered bench (or only of those without health yet).
async fn self_test_all(agent: &Arc<Agent>, only_unknown: bool) {
    let benches: Vec<(String, std::path::PathBuf)> = agent
        .registry()
        .benches
        .values()
        .filter(|b| !only_unknown || b.health["checked_at"].is_null())
        .filter(|b| agent.current_run_of(&b.reg.id).is_none())
        .map(|b| (b.reg.id.clone(), b.path.clone()))
        .collect();
    for (id, path) in benches {
        let a = agent.clone();
        let bid = id.clone();
        if let Ok((health, report)) =
            tokio::task::spawn_blocking(move || registry::health_check(&a.settings, &bid, &path))
                .await
            && let Some(e) = agent
                .registry
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .benches
                .get_mut(&id)
        {
            e.health = health;
            e.report = report;
        }
    }
}

/// SIGHUP: a new agent.yaml takes effect at once. Executing runs keep the bench file they
/// copied at submission, so they are not disturbed; benches whose file is unchanged keep
/// their health, new or changed ones are self-tested when idle.
async fn reload(agent: &Arc<Agent>) {
    let mut fresh = match Registry::load(&agent.settings) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reload refused, keeping the current configuration");
            return;
        }
    };
    {
        let old = agent.registry();
        for (id, b) in fresh.benches.iter_mut() {
            if let Some(prev) = old.benches.get(id)
                && prev.path == b.path
                && serde_json::to_value(&prev.bench).ok() == serde_json::to_value(&b.bench).ok()
            {
                b.health = prev.health.clone();
                b.report = prev.report.clone();
            }
        }
    }
    *agent.registry.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    tracing::info!("configuration reloaded");
    self_test_all(agent, true).await;
}
