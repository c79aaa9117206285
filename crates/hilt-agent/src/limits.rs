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

/// The failure recorded for a run the agent cancelled at its maximum run time `limit_s`
/// (the dispatcher keeps the deadlines).
pub fn run_timeout_failure(limit_s: u64) -> hilt_model::run::Failure {
    hilt_model::run::Failure::new(
        hilt_model::run::Category::RunTimeout,
        format!(
            "the run was cancelled after the agent's maximum run time of {limit_s} s (limits.max_run_time_s)"
        ),
    )
}
