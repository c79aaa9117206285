//! `hilt runs recover DIR`: repair what can be repaired (keeping every damaged original),
//! backfill an older layout, refresh status.json's monitoring block and alerts, and write
//! `recovery_summary.md` and `workflow_state.json` — executing nothing.

use std::path::Path;

use serde_json::Value;

use hilt_model::run::RunStatusSnapshot;

use super::WorkflowState;
use super::backfill::Backfilled;
use super::repair::Repair;
use crate::rundir::{derive_monitoring, write_atomic, write_json_atomic};

#[derive(Debug, Clone, serde::Serialize)]
pub struct RecoverReport {
    pub results_dir: String,
    pub repairs: Vec<Repair>,
    pub backfilled: Vec<Backfilled>,
    /// status.json's state and monitoring state after the refresh.
    pub state: String,
    pub monitoring: String,
    pub tests_done: usize,
    pub tests_total: usize,
    /// Whether `hilt runs resume` has anything left to do.
    pub resumable: bool,
    pub next_command: Option<String>,
    pub summary_path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("{0} is not a hilt run directory (no status.json, results.json or workflow journal)")]
    NotARunDir(String),
    #[error("cannot write in {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// Whether `dir` looks like a run directory of any layout.
pub fn is_run_dir(dir: &Path) -> bool {
    ["status.json", "results.json", super::JOURNAL]
        .iter()
        .any(|f| dir.join(f).is_file())
}

pub fn recover(dir: &Path) -> Result<RecoverReport, RecoverError> {
    if !is_run_dir(dir) {
        return Err(RecoverError::NotARunDir(dir.display().to_string()));
    }
    let io = |source| RecoverError::Io {
        dir: dir.display().to_string(),
        source,
    };
    // A live run owns its files: nothing is repaired or backfilled under it.
    let live = std::fs::read(dir.join("status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<RunStatusSnapshot>(&b).ok())
        .is_some_and(|mut s| {
            derive_monitoring(&mut s);
            s.monitoring.state == "running"
        });
    let mut repairs = Vec::new();
    let mut backfilled = Vec::new();
    if !live {
        if let Some(r) = super::repair::status(&dir.join("status.json")).map_err(io)? {
            repairs.push(r);
        }
        for f in super::repair::LEDGERS {
            if let Some(r) = super::repair::ledger(&dir.join(f)).map_err(io)? {
                repairs.push(r);
            }
        }
        backfilled = super::backfill::backfill(dir);
        backfilled.extend(super::backfill::missing_status(dir));
    }
    let state = WorkflowState::load(dir).map_err(io)?;
    if !live {
        state.write_snapshot(dir).map_err(io)?;
    }
    let results: Option<Value> = std::fs::read(dir.join("results.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut snap: Option<RunStatusSnapshot> = std::fs::read(dir.join("status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(s) = &mut snap {
        s.results_dir = dir.display().to_string();
        derive_monitoring(s);
        // A live run writes its own status; only a stalled or finished one is refreshed.
        if s.monitoring.state != "running" {
            if s.state == "running" {
                let done: Vec<_> = state.done_tests().collect();
                s.tests_passed = done.iter().filter(|(_, t)| t.passed).count();
                s.tests_failed = done.len() - s.tests_passed;
            }
            s.updated_at = hilt_model::run::now();
            write_json_atomic(&dir.join("status.json"), &*s).map_err(io)?;
        }
    }
    let text = summary_markdown(dir, results.as_ref(), &repairs, &backfilled);
    write_atomic(&dir.join("recovery_summary.md"), text.as_bytes(), false).map_err(io)?;
    let tests_total = snap.as_ref().map(|s| s.tests_total).unwrap_or(0);
    let tests_done = state.done_tests().count();
    let resumable = resumable(snap.as_ref(), &state);
    Ok(RecoverReport {
        results_dir: dir.display().to_string(),
        repairs,
        backfilled,
        state: snap.as_ref().map(|s| s.state.clone()).unwrap_or_default(),
        monitoring: snap
            .as_ref()
            .map(|s| s.monitoring.state.clone())
            .unwrap_or_default(),
        tests_done,
        tests_total,
        resumable,
        next_command: resumable.then(|| format!("hilt runs resume {}", dir.display())),
        summary_path: dir.join("recovery_summary.md").display().to_string(),
    })
}

/// A run is worth resuming when it did not end (stalled), was cancelled, or stopped on a
/// run error; a run whose tests all ended with a verdict is complete.
pub fn resumable(snap: Option<&RunStatusSnapshot>, state: &WorkflowState) -> bool {
    match snap.map(|s| (s.state.as_str(), s.monitoring.state.as_str())) {
        Some((_, "running")) => false,
        Some(("passed" | "failed", _)) => {
            let total = snap.map(|s| s.tests_total).unwrap_or(0);
            state.done_tests().count() < total
        }
        Some(_) => true,
        None => !state.attempts.is_empty(),
    }
}

/// recovery_summary.md for a run in any state: where it stands, per attempt, stage and
/// test, what was repaired or backfilled, and what to run next.
pub fn summary_markdown(
    dir: &Path,
    results: Option<&Value>,
    repairs: &[Repair],
    backfilled: &[Backfilled],
) -> String {
    let state = WorkflowState::load(dir).unwrap_or_default();
    let status: Option<RunStatusSnapshot> = std::fs::read(dir.join("status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .map(|mut s: RunStatusSnapshot| {
            s.results_dir = dir.display().to_string();
            derive_monitoring(&mut s);
            s
        });
    let d = dir.display();
    let mut s = format!(
        "# Recovery summary: {}\n\n",
        dir.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    if let Some(st) = &status {
        s.push_str(&format!(
            "- state: **{}** (monitoring: {})\n- phase: {}\n- tests: {} passed, {} failed, {} in the suite\n",
            st.state,
            st.monitoring.state,
            st.current_phase.as_str(),
            st.tests_passed,
            st.tests_failed,
            st.tests_total
        ));
        if st.monitoring.state == "stalled" {
            s.push_str("\n**Attention: stalled** — the run claims to be running but its heartbeat stopped.\n");
        }
    }
    if let Some(r) = results {
        s.push_str(&format!(
            "- results.json: status **{}**, {} passed, {} failed\n",
            r["status"].as_str().unwrap_or("?"),
            r["summary"]["passed"],
            r["summary"]["failed"]
        ));
        if let Some(f) = r["failure"].as_object() {
            s.push_str(&format!(
                "- failure: {} — {}\n",
                f.get("title").and_then(Value::as_str).unwrap_or(""),
                f.get("message").and_then(Value::as_str).unwrap_or("")
            ));
        }
    } else {
        s.push_str("- results.json: not written (the run did not finish)\n");
    }
    if !state.attempts.is_empty() {
        s.push_str("\n## Attempts\n\n| attempt | kind | pid | started | ended | status |\n|---|---|---|---|---|---|\n");
        for a in &state.attempts {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                a.attempt,
                a.kind,
                a.pid,
                a.started_at,
                a.finished_at.as_deref().unwrap_or("—"),
                a.status.as_deref().unwrap_or("did not end")
            ));
        }
    }
    if !state.stages.is_empty() {
        s.push_str("\n## Staged bundles\n\n");
        for v in state.stages.values() {
            s.push_str(&format!(
                "- `{}` on `{}`: {} ({}, verified: {}) — {}\n",
                v["bundle"].as_str().unwrap_or(""),
                v["host"].as_str().unwrap_or(""),
                v["decision"].as_str().unwrap_or("?"),
                v["state"].as_str().unwrap_or("?"),
                v["verified"],
                v["basis"].as_str().unwrap_or("")
            ));
        }
    }
    if !state.tests.is_empty() {
        s.push_str("\n## Tests\n\n");
        for (i, t) in &state.tests {
            let what = match &t.result {
                Some(r) if r.passed => "passed (kept on resume)".to_string(),
                Some(_) => "failed (kept on resume)".to_string(),
                None => format!(
                    "interrupted after step {} (resume continues at step {})",
                    t.steps_done,
                    t.steps_done + 1
                ),
            };
            s.push_str(&format!("- {i}. `{}`: {what}\n", t.name));
        }
    }
    if !repairs.is_empty() {
        s.push_str("\n## Repairs (originals kept beside them)\n\n");
        for r in repairs {
            s.push_str(&format!(
                "- {}: {} (original: {})\n",
                r.file, r.what, r.kept_as
            ));
        }
    }
    if !backfilled.is_empty() {
        s.push_str("\n## Backfilled (older layout)\n\n");
        for b in backfilled {
            s.push_str(&format!("- {} from {}\n", b.file, b.from));
        }
    }
    s.push_str("\n## Next\n\n");
    let alerts: Vec<_> = status.iter().flat_map(|st| st.alerts.iter()).collect();
    if resumable(status.as_ref(), &state) {
        s.push_str(&format!(
            "Resume the run from its first incomplete step (completed tests, steps and verified stages are kept):\n\n    hilt runs resume {d}\n"
        ));
    } else if let Some(a) = alerts.first() {
        s.push_str(&format!("{}\n", a.next_action));
        if let Some(c) = &a.next_command {
            s.push_str(&format!("\n    {c}\n"));
        }
    } else {
        s.push_str("Nothing to recover: the run ended and every test has its result.\n");
    }
    s
}
