//! status.json: where a run is, whether it is alive, and what to do next.

use serde::{Deserialize, Serialize};

/// The phases every run moves through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Discover,
    Preflight,
    Stage,
    Execute,
    Collect,
    Publish,
    Finalize,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Discover,
        Phase::Preflight,
        Phase::Stage,
        Phase::Execute,
        Phase::Collect,
        Phase::Publish,
        Phase::Finalize,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Discover => "discover",
            Phase::Preflight => "preflight",
            Phase::Stage => "stage",
            Phase::Execute => "execute",
            Phase::Collect => "collect",
            Phase::Publish => "publish",
            Phase::Finalize => "finalize",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseState {
    pub phase: Phase,
    /// `pending`, `running`, `done`, `failed`, `skipped`.
    pub state: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub heartbeat_at: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitoring {
    /// `idle` (finished), `running` (heartbeat fresh) or `stalled` (heartbeat stale while
    /// the run claims to be active).
    pub state: String,
    pub pid: u32,
    pub last_heartbeat_at: Option<String>,
    /// Seconds after which a heartbeat is stale: twice [`Monitoring::heartbeat_interval_s`].
    pub stall_after_s: u64,
    /// How often the running phase promises a heartbeat (written more often); a running
    /// phase whose heartbeat is older than twice this is stalled. Older files lack it
    /// (read as 0: `stall_after_s` alone decides).
    #[serde(default)]
    pub heartbeat_interval_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `info`, `warning`, `error`.
    pub severity: String,
    pub code: String,
    pub message: String,
    pub next_action: String,
    /// The exact `hilt` (or shell) invocation to run next.
    pub next_command: Option<String>,
    /// The most specific file that exists for this alert.
    pub next_path: Option<String>,
    /// Every action, the first being `next_action`.
    #[serde(default)]
    pub next_actions: Vec<String>,
    /// Every command, the first being `next_command`.
    #[serde(default)]
    pub next_commands: Vec<String>,
    /// Every path, the first being `next_path`.
    #[serde(default)]
    pub next_paths: Vec<String>,
    /// The install line for a missing tool, from the detected package manager.
    #[serde(default)]
    pub next_install_command: Option<String>,
    /// A command that shows more about the problem without changing anything.
    #[serde(default)]
    pub next_diagnostic_command: Option<String>,
}

impl Alert {
    pub fn new(severity: &str, code: &str, message: impl Into<String>) -> Alert {
        Alert {
            severity: severity.into(),
            code: code.into(),
            message: message.into(),
            next_action: String::new(),
            next_command: None,
            next_path: None,
            next_actions: Vec::new(),
            next_commands: Vec::new(),
            next_paths: Vec::new(),
            next_install_command: None,
            next_diagnostic_command: None,
        }
    }

    /// Adds an action; the first one is also `next_action`.
    pub fn action(mut self, a: impl Into<String>) -> Alert {
        let a = a.into();
        if self.next_actions.is_empty() {
            self.next_action.clone_from(&a);
        }
        self.next_actions.push(a);
        self
    }

    /// Adds a command; the first one is also `next_command`.
    pub fn command(mut self, c: impl Into<String>) -> Alert {
        let c = c.into();
        if self.next_command.is_none() {
            self.next_command = Some(c.clone());
        }
        self.next_commands.push(c);
        self
    }

    /// Adds a path; the first one is also `next_path`.
    pub fn path(mut self, p: impl Into<String>) -> Alert {
        let p = p.into();
        if self.next_path.is_none() {
            self.next_path = Some(p.clone());
        }
        self.next_paths.push(p);
        self
    }

    /// `severity` as a rank: error 2, warning 1, anything else 0.
    pub fn rank(&self) -> u8 {
        match self.severity.as_str() {
            "error" => 2,
            "warning" => 1,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatusSnapshot {
    pub schema_version: String,
    pub run_id: String,
    pub results_dir: String,
    /// `running` while active, then the final run status.
    pub state: String,
    pub current_phase: Phase,
    pub current_test: Option<String>,
    pub current_step: Option<String>,
    pub tests_total: usize,
    pub tests_passed: usize,
    pub tests_failed: usize,
    pub updated_at: String,
    pub phases: Vec<PhaseState>,
    pub monitoring: Monitoring,
    pub alerts: Vec<Alert>,
    /// The alert to act on first (the most severe, the earliest among equals).
    #[serde(default)]
    pub primary_alert: Option<Alert>,
    pub exit_code: Option<i32>,
}

impl RunStatusSnapshot {
    /// Sets `primary_alert` from `alerts`.
    pub fn pick_primary_alert(&mut self) {
        let mut best: Option<&Alert> = None;
        for a in &self.alerts {
            if best.is_none_or(|b| a.rank() > b.rank()) {
                best = Some(a);
            }
        }
        self.primary_alert = best.cloned();
    }
}
