//! What a finished command reports.

use serde_json::{Value, json};
use std::path::PathBuf;

/// The result of [`run`](super::run).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    pub argv: Vec<String>,
    /// Absolute working directory the child ran in.
    pub cwd: PathBuf,
    /// UTC, ISO-8601 with microseconds and `Z`.
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    /// The exit status, or `128 + signal` when the child was killed by a signal.
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub output_path: PathBuf,
    /// Bytes of child output written to `output_path` by this run (the truncation marker
    /// line is not counted).
    pub output_bytes: u64,
    /// Output beyond the cap was discarded (or the output file could not be written).
    pub output_truncated: bool,
}

impl CommandOutcome {
    /// Exit code 0, neither timed out nor cancelled.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out && !self.cancelled
    }

    /// The record stored in the run's command ledger.
    pub fn ledger_entry(&self) -> Value {
        json!({
            "argv": self.argv,
            "cwd": self.cwd.to_string_lossy(),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "timed_out": self.timed_out,
            "cancelled": self.cancelled,
            "output_file": self.output_path.to_string_lossy(),
            "output_bytes": self.output_bytes,
            "output_truncated": self.output_truncated,
        })
    }
}

/// UTC now, ISO-8601 with microseconds and `Z`.
pub(crate) fn utc_now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}
