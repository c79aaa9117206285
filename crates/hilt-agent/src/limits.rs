//! The agent's resource limits, resolved in one place: a command-line flag, else
//! agent.yaml's `limits:`, else the default ([`AgentLimits::default`]).
//!
//! Connection limits (header timeout, connection cap) are read once at start; the others
//! are read when used, so a SIGHUP reload of agent.yaml changes them for new requests.

use hilt_model::agent::AgentLimits;

use crate::registry::Registry;
use crate::settings::AgentSettings;
use crate::state::Agent;

/// The limits in force: flags over agent.yaml over defaults.
pub fn resolve(settings: &AgentSettings, registry: &Registry) -> AgentLimits {
    let mut l = registry
        .config
        .as_ref()
        .map(|c| c.limits.clone())
        .unwrap_or_default();
    let o = &settings.overrides;
    if let Some(v) = o.header_read_timeout_ms {
        l.header_read_timeout_ms = v;
    }
    if let Some(v) = o.body_read_timeout_s {
        l.body_read_timeout_s = v;
    }
    if let Some(v) = o.max_connections {
        l.max_connections = v;
    }
    if let Some(v) = o.max_run_time_s {
        l.max_run_time_s = v;
    }
    l
}

/// The limits in force for this agent now.
pub fn current(agent: &Agent) -> AgentLimits {
    resolve(&agent.settings, &agent.registry())
}

/// Cancels a run that executes longer than `limits.max_run_time_s`; dropped when the run
/// ends (its thread then exits at once).
pub struct RunWatchdog {
    stop: hilt_hw::cancel::CancelToken,
    fired: std::sync::Arc<std::sync::atomic::AtomicBool>,
    limit_s: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunWatchdog {
    /// Starts watching `run`; `limit_s == 0` means no limit.
    pub fn start(run: &hilt_hw::cancel::CancelToken, limit_s: u64) -> RunWatchdog {
        let stop = hilt_hw::cancel::CancelToken::new();
        let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = (limit_s > 0).then(|| {
            let (stop, fired, run) = (stop.clone(), fired.clone(), run.clone());
            std::thread::spawn(move || {
                if !stop.wait_timeout(std::time::Duration::from_secs(limit_s)) {
                    fired.store(true, std::sync::atomic::Ordering::SeqCst);
                    run.cancel();
                }
            })
        });
        RunWatchdog {
            stop,
            fired,
            limit_s,
            thread,
        }
    }

    /// When the limit cancelled the run: the failure to record instead of "cancelled".
    pub fn timeout_failure(&self) -> Option<hilt_model::run::Failure> {
        self.fired
            .load(std::sync::atomic::Ordering::SeqCst)
            .then(|| {
                hilt_model::run::Failure::new(
                    hilt_model::run::Category::RunTimeout,
                    format!(
                        "the run was cancelled after the agent's maximum run time of {} s (limits.max_run_time_s)",
                        self.limit_s
                    ),
                )
            })
    }
}

impl Drop for RunWatchdog {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
