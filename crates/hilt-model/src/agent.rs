//! `agent.yaml`: the agent's identity and its registered benches (agent-api spec §1.1),
//! plus hilt's optional limits.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;
use crate::diag::Diags;
use crate::load::{LoadError, LoadOptions, Loaded};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentConfig {
    pub agent: AgentIdentity,
    #[serde(default)]
    pub benches: Vec<RegisteredBench>,
    /// hilt extension: request and upload limits.
    #[serde(default)]
    pub limits: AgentLimits,
    /// hilt extension: seconds between SIGTERM and SIGKILL for a cancelled run's children.
    #[serde(default = "defaults::u64_::<10>")]
    pub kill_grace_s: u64,
    /// hilt extension: a remote GPIO session unused this long is closed and its lines released.
    #[serde(default = "defaults::u64_::<300>")]
    pub gpio_session_idle_s: u64,
    /// hilt extension: accept runs that upload their own bench.yaml (`POST /v1/runs`).
    #[serde(default = "defaults::t")]
    pub allow_uploaded_benches: bool,
    /// hilt extension: let an uploaded bench enable `run_external` (it runs commands on this
    /// host, so it is off unless the operator opts in).
    #[serde(default)]
    pub allow_uploaded_external: bool,
    /// hilt extension: how long finished runs are kept on disk.
    #[serde(default)]
    pub retention: Retention,
    /// hilt extension: what happens to queued runs when the agent is stopped (SIGTERM,
    /// SIGINT, SIGQUIT). A restart request (SIGUSR1, the restart file) always keeps them.
    #[serde(default)]
    pub on_shutdown: OnShutdown,
}

/// Pruning of finished run directories (queued and executing runs are never pruned).
/// `0` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Retention {
    /// Keep at most this many finished runs (the oldest go first). Default 5000.
    #[serde(default = "defaults::u64_::<5000>")]
    pub max_runs: u64,
    /// Remove finished runs older than this many days. Default 30.
    #[serde(default = "defaults::u64_::<30>")]
    pub max_age_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_runs: 5000,
            max_age_days: 30,
        }
    }
}

/// What a stopping agent does with runs still waiting in its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnShutdown {
    /// Cancel them, recorded with the reason (the default: a run never drives hardware
    /// later with nobody watching; its client sees why and can submit it again).
    #[default]
    Cancel,
    /// Keep them queued: they start when the agent starts again.
    Keep,
}

impl OnShutdown {
    pub fn as_str(self) -> &'static str {
        match self {
            OnShutdown::Cancel => "cancel",
            OnShutdown::Keep => "keep",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentIdentity {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RegisteredBench {
    pub id: String,
    /// Relative paths resolve against agent.yaml's directory.
    pub bench_file: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub hardware_profile: Option<String>,
    #[serde(default)]
    pub hardware_revision: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentLimits {
    /// Largest bench.yaml / suite.yaml upload, bytes.
    #[serde(default = "defaults::u64_::<262144>")]
    pub max_yaml_bytes: u64,
    /// Largest firmware upload, bytes.
    #[serde(default = "defaults::u64_::<209715200>")]
    pub max_artifact_bytes: u64,
    /// Most runs waiting in the queue; more are refused with 503.
    #[serde(default = "defaults::u64_::<100000>")]
    pub max_queued_runs: u64,
    /// A connection must send a request's complete headers within this many milliseconds
    /// (an idle keep-alive connection too), else it is closed. Fixed at start.
    #[serde(default = "defaults::u64_::<10000>")]
    pub header_read_timeout_ms: u64,
    /// A request body that sends nothing for this many seconds is cut off (408) and its
    /// partial upload removed.
    #[serde(default = "defaults::u64_::<30>")]
    pub body_read_timeout_s: u64,
    /// Most open client connections; more are answered 503 and closed at once. Also capped
    /// below the process's open-file limit. Fixed at start.
    #[serde(default = "defaults::u64_::<4096>")]
    pub max_connections: u64,
    /// A run executing longer than this many seconds is cancelled and recorded failed
    /// (`RUN_TIMEOUT`); its locks are released. 0 = no limit.
    #[serde(default = "defaults::u64_::<86400>")]
    pub max_run_time_s: u64,
    /// Most GPIO lines one remote GPIO session may open.
    #[serde(default = "defaults::u64_::<64>")]
    pub max_gpio_lines_per_session: u64,
    /// Most remote GPIO sessions open at once (all clients).
    #[serde(default = "defaults::u64_::<32>")]
    pub max_gpio_sessions: u64,
    /// Most GPIO lines held by all open remote GPIO sessions together.
    #[serde(default = "defaults::u64_::<256>")]
    pub max_gpio_lines_total: u64,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            max_yaml_bytes: 262_144,
            max_artifact_bytes: 209_715_200,
            max_queued_runs: 100_000,
            header_read_timeout_ms: 10_000,
            body_read_timeout_s: 30,
            max_connections: 4096,
            max_run_time_s: 86_400,
            max_gpio_lines_per_session: 64,
            max_gpio_sessions: 32,
            max_gpio_lines_total: 256,
        }
    }
}

impl AgentConfig {
    /// The display name (defaults to the id).
    pub fn name(&self) -> String {
        self.agent
            .name
            .clone()
            .unwrap_or_else(|| self.agent.id.clone())
    }

    /// A bench file path resolved against the directory of `config_path`.
    pub fn bench_path(&self, config_path: &Path, bench: &RegisteredBench) -> PathBuf {
        let p = Path::new(&bench.bench_file);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            config_path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }
}

pub fn parse_agent_config(
    text: &str,
    file: &str,
    opts: LoadOptions,
) -> Result<Loaded<AgentConfig>, LoadError> {
    crate::load::parse_with(text, file, opts, |d: &mut Diags, c: &AgentConfig| {
        if c.agent.id.trim().is_empty() {
            d.error("agent.id", "must not be empty");
        }
        let mut seen = std::collections::BTreeMap::new();
        for (i, b) in c.benches.iter().enumerate() {
            if b.id.trim().is_empty() {
                d.error(&format!("benches[{i}].id"), "must not be empty");
            }
            if let Some(first) = seen.insert(b.id.clone(), i) {
                d.error(
                    &format!("benches[{i}].id"),
                    format!("duplicate bench id `{}` (first at benches[{first}])", b.id),
                );
            }
        }
    })
}

pub fn load_agent_config(path: &Path, opts: LoadOptions) -> Result<Loaded<AgentConfig>, LoadError> {
    let text = crate::load::read(path)?;
    parse_agent_config(&text, &path.display().to_string(), opts).map(|mut l| {
        l.path = path.to_path_buf();
        l
    })
}
