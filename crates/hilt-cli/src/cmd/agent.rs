//! `hilt agent serve`: the agent process. Signals become [`hilt_agent::Control`] messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use hilt_agent::settings::PolicyOverrides;
use hilt_agent::{AgentSettings, Control};
use hilt_model::agent::OnShutdown;
use hilt_runner::classify::exit;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{AgentServeArgs, OnShutdownArg};

pub fn serve(a: AgentServeArgs) -> anyhow::Result<i32> {
    init_logging();
    if let Err(e) = hilt_agent::settings::token_from_env() {
        eprintln!("error: {e}");
        return Ok(exit::USAGE);
    }
    let mut settings = AgentSettings::resolve(a.work_dir, a.config);
    settings.self_test_on_start = !a.no_self_test;
    settings.policy = PolicyOverrides {
        max_runs: a.keep_runs,
        max_age_days: a.keep_days,
        on_shutdown: a.on_shutdown.map(|o| match o {
            OnShutdownArg::Cancel => OnShutdown::Cancel,
            OnShutdownArg::Keep => OnShutdown::Keep,
        }),
    };
    settings.overrides = hilt_agent::settings::LimitOverrides {
        header_read_timeout_ms: a.header_timeout_ms,
        body_read_timeout_s: a.body_timeout_s,
        max_connections: a.max_connections,
        max_run_time_s: a.max_run_time_s,
    };
    let loopback = matches!(a.host.as_str(), "127.0.0.1" | "::1" | "localhost");
    if settings.token.is_none() && !loopback && !a.insecure {
        eprintln!(
            "error: refusing to serve on {} without a token: anyone who can reach the port could run commands on this host.\n  help: export HILT_AGENT_TOKEN=<secret>, bind --host 127.0.0.1, or pass --insecure for a lab-only network",
            a.host
        );
        return Ok(exit::USAGE);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind((a.host.as_str(), a.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}:{}: {e}", a.host, a.port);
                return Ok(exit::BENCH_ERROR);
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let cancelled_by = Arc::new(AtomicI32::new(0));
        tokio::spawn(forward_signals(tx, cancelled_by.clone()));
        tracing::info!(
            "hilt agent listening on http://{} (auth {}, work dir {})",
            listener.local_addr()?,
            if settings.token.is_some() {
                "on"
            } else {
                "off"
            },
            settings.work_dir.display()
        );
        match hilt_agent::serve(listener, settings, rx).await {
            Ok(()) => {
                // Stopped by cancelling its runs (a second SIGTERM, SIGQUIT): 128+signal,
                // as any process ended by that signal; a drain is a clean exit.
                let sig = cancelled_by.load(Ordering::SeqCst);
                tracing::info!("hilt agent stopped");
                Ok(if sig > 0 { 128 + sig } else { 0 })
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(exit::CONFIG_ERROR)
            }
        }
    })
}

/// Agent logs go to stderr through `tracing`; `RUST_LOG` (or `HILT_LOG`) picks the level
/// (default `info`).
pub(super) fn init_logging() {
    let filter = std::env::var("HILT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn forward_signals(tx: tokio::sync::mpsc::Sender<Control>, cancelled_by: Arc<AtomicI32>) {
    let (Ok(mut term), Ok(mut int), Ok(mut quit), Ok(mut usr1), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    let mut terms = 0;
    loop {
        let c = tokio::select! {
            _ = term.recv() => { terms += 1; if terms == 1 { Control::Drain } else { Control::Cancel(15) } }
            _ = int.recv() => { terms += 1; if terms == 1 { Control::Drain } else { Control::Cancel(2) } }
            _ = quit.recv() => Control::Cancel(3),
            _ = usr1.recv() => Control::Restart,
            _ = hup.recv() => Control::Reload,
        };
        if let Control::Cancel(s) = c {
            cancelled_by.store(s, Ordering::SeqCst);
        }
        match c {
            Control::Drain => tracing::info!(
                "SIGTERM: no new runs; finishing the executing ones (send again to cancel them)"
            ),
            Control::Cancel(s) => tracing::info!("signal {s}: cancelling executing runs"),
            Control::Restart => {
                tracing::info!("restart requested: exiting once no run is executing")
            }
            Control::Reload => tracing::info!("SIGHUP: reloading agent.yaml"),
        }
        if tx.send(c).await.is_err() {
            return;
        }
    }
}
