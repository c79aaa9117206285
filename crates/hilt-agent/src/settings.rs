//! Agent settings: CLI flag > environment variable (HILT_, then BENCHCI_) > agent.yaml >
//! default, resolved in one place.

use std::path::{Path, PathBuf};

use hilt_hw::locks::LockConfig;
use hilt_model::agent::{OnShutdown, Retention};

#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Runs, GPIO session logs and bench health live here.
    pub work_dir: PathBuf,
    /// agent.yaml; `None` = standalone mode (uploaded benches only).
    pub config_path: Option<PathBuf>,
    /// Bearer token; `None` = auth disabled.
    pub token: Option<String>,
    pub self_test_read_inputs: bool,
    pub self_test_read_measurements: bool,
    /// Run the self-test of every registered bench before serving (the spec's behaviour).
    pub self_test_on_start: bool,
    /// `None` reads the lock environment variables.
    pub lock_config: Option<LockConfig>,
    /// Checked once a second: when it exists, exit as soon as no run is executing.
    pub restart_file: Option<PathBuf>,
    /// Limits given as flags; they override agent.yaml's `limits:` (see `limits.rs`).
    pub overrides: LimitOverrides,
    /// Flag overrides of agent.yaml's run policy (`None` = the file's value or the default).
    pub policy: PolicyOverrides,
}

/// Limits given on the command line; each overrides agent.yaml (resolved in `limits.rs`).
#[derive(Debug, Clone, Default)]
pub struct LimitOverrides {
    pub header_read_timeout_ms: Option<u64>,
    pub body_read_timeout_s: Option<u64>,
    pub max_connections: Option<u64>,
    pub max_run_time_s: Option<u64>,
}

/// Command-line overrides of agent.yaml's `retention` and `on_shutdown`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyOverrides {
    pub max_runs: Option<u64>,
    pub max_age_days: Option<u64>,
    pub on_shutdown: Option<OnShutdown>,
}

/// Reads `HILT_<name>` then `BENCHCI_<name>`; an empty variable counts as unset (so an
/// empty `HILT_` one never hides a set `BENCHCI_` one).
pub fn env(name: &str) -> Option<String> {
    env_named(name).map(|(_, v)| v)
}

fn env_named(name: &str) -> Option<(String, String)> {
    [format!("HILT_{name}"), format!("BENCHCI_{name}")]
        .into_iter()
        .find_map(|k| {
            std::env::var(&k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| (k, v))
        })
}

/// The bearer token from `HILT_AGENT_TOKEN`, else `BENCHCI_AGENT_TOKEN` (empty = unset),
/// trimmed like the presented one is. A token of only whitespace is refused: it would
/// otherwise either turn auth off or never match.
pub fn token_from_env() -> Result<Option<String>, String> {
    match env_named("AGENT_TOKEN") {
        None => Ok(None),
        Some((var, v)) => {
            let t = v.trim();
            if t.is_empty() {
                Err(format!(
                    "{var} holds only whitespace: set a real token or unset the variable"
                ))
            } else {
                Ok(Some(t.to_string()))
            }
        }
    }
}

pub fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

impl AgentSettings {
    /// Settings from flags and the environment.
    pub fn resolve(work_dir: Option<PathBuf>, config: Option<PathBuf>) -> AgentSettings {
        let work_dir = work_dir.unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join("hilt-agent-results")
        });
        let work_dir = std::path::absolute(&work_dir).unwrap_or(work_dir);
        let config_path = config
            .or_else(|| env("AGENT_CONFIG").map(PathBuf::from))
            .or_else(|| Some(work_dir.join("agent.yaml")).filter(|p| p.is_file()));
        AgentSettings {
            work_dir,
            config_path,
            // A whitespace-only token is reported by `token_from_env` (the binary refuses
            // to start); a library caller that ignores it gets auth on with no valid token
            // rather than auth off.
            token: match token_from_env() {
                Ok(t) => t,
                Err(_) => Some(String::new()),
            },
            self_test_read_inputs: truthy(env("AGENT_SELF_TEST_READ_INPUTS")),
            self_test_read_measurements: truthy(env("AGENT_SELF_TEST_READ_MEASUREMENTS")),
            self_test_on_start: true,
            lock_config: None,
            restart_file: None,
            policy: PolicyOverrides::default(),
            overrides: Default::default(),
        }
    }

    /// Retention: flag > agent.yaml > default.
    pub fn retention(&self, file: Option<Retention>) -> Retention {
        let base = file.unwrap_or_default();
        Retention {
            max_runs: self.policy.max_runs.unwrap_or(base.max_runs),
            max_age_days: self.policy.max_age_days.unwrap_or(base.max_age_days),
        }
    }

    /// What happens to queued runs at shutdown: flag > agent.yaml > default (cancel).
    pub fn on_shutdown(&self, file: Option<OnShutdown>) -> OnShutdown {
        self.policy.on_shutdown.or(file).unwrap_or_default()
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.work_dir.join("runs")
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.runs_dir().join(id)
    }

    pub fn health_dir(&self, bench_id: &str) -> PathBuf {
        self.work_dir.join("bench-health").join(bench_id)
    }

    pub fn restart_file_for(name: &str) -> PathBuf {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Path::new("/tmp").join(format!("HILT-AGENT-RESTART-{safe}"))
    }
}
