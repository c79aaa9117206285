//! `hilt runs resume DIR`: continue an interrupted run in its own directory, from the
//! first incomplete step. Tests that ended keep their results, steps that finished are
//! not run again, stages verified earlier are reused (their remote copy re-checked), and
//! the ledgers and events.jsonl are appended to (numbered on), never rewritten.

use std::path::{Path, PathBuf};

use hilt_hw::CancelToken;

use super::{Inputs, WorkflowState};
use crate::events::Observer;
use crate::run::{RunOptions, RunOutcome};
use crate::rundir::{ProcState, process_state};

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("{0} is not a hilt run directory (no status.json, results.json or workflow journal)")]
    NotARunDir(String),
    #[error(
        "{dir} has no record of what it was started with (no workflow journal and no results.json naming its bench and suite); help: run the suite again with `hilt run`"
    )]
    NoInputs { dir: String },
    #[error(
        "the run is still active: process {pid} is writing {dir}; help: wait for it, or stop it (kill -TERM {pid}) and resume then"
    )]
    StillRunning { pid: u32, dir: String },
    #[error("nothing to resume: every test of the run in {dir} has its result (status {status})")]
    Complete { dir: String, status: String },
    #[error(
        "the {what} file {path} {problem}; a resume must run the same files as the run it continues; help: restore it, or start a new run with `hilt run`"
    )]
    InputChanged {
        what: &'static str,
        path: String,
        problem: String,
    },
    #[error("cannot use {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
}

/// What `resume` did besides running: repairs and backfills made first.
pub struct Resumed {
    pub outcome: RunOutcome,
    pub attempt: u32,
    pub tests_kept: usize,
    pub repairs: Vec<super::repair::Repair>,
    pub backfilled: Vec<super::backfill::Backfilled>,
}

pub fn resume(
    dir: &Path,
    observer: &mut dyn Observer,
    cancel: &CancelToken,
) -> Result<Resumed, ResumeError> {
    let dir = crate::rundir::absolute(dir);
    let d = dir.display().to_string();
    if !super::recover::is_run_dir(&dir) {
        return Err(ResumeError::NotARunDir(d));
    }
    let io = |source| ResumeError::Io {
        dir: d.clone(),
        source,
    };
    // A process still writing the directory (alive, even stopped) must not get a twin.
    let snap: Option<hilt_model::run::RunStatusSnapshot> = std::fs::read(dir.join("status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(s) = &snap
        && s.state == "running"
        && s.monitoring.pid != std::process::id()
        && process_state(s.monitoring.pid) != ProcState::Gone
        && is_hilt(s.monitoring.pid)
    {
        return Err(ResumeError::StillRunning {
            pid: s.monitoring.pid,
            dir: d,
        });
    }
    let mut repairs = Vec::new();
    if let Some(r) = super::repair::status(&dir.join("status.json")).map_err(io)? {
        repairs.push(r);
    }
    for f in super::repair::LEDGERS {
        if let Some(r) = super::repair::ledger(&dir.join(f)).map_err(io)? {
            repairs.push(r);
        }
    }
    let mut backfilled = super::backfill::backfill(&dir);
    backfilled.extend(super::backfill::missing_status(&dir));
    let state = WorkflowState::load(&dir).map_err(io)?;
    let snap: Option<hilt_model::run::RunStatusSnapshot> = std::fs::read(dir.join("status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .map(|mut s: hilt_model::run::RunStatusSnapshot| {
            crate::rundir::derive_monitoring(&mut s);
            s
        });
    if !super::recover::resumable(snap.as_ref(), &state) {
        return Err(ResumeError::Complete {
            dir: d,
            status: snap.map(|s| s.state).unwrap_or_default(),
        });
    }
    let Some(inputs) = state.inputs.clone().filter(|i| !i.bench.is_empty()) else {
        return Err(ResumeError::NoInputs { dir: d });
    };
    check_input("bench", &inputs.bench, inputs.bench_sha256.as_deref())?;
    check_input("suite", &inputs.suite, inputs.suite_sha256.as_deref())?;
    let attempt = state.next_attempt();
    let tests_kept = state.done_tests().count();
    let opts = options(&inputs, &dir, state);
    let outcome = crate::run::run(&opts, observer, cancel)?;
    Ok(Resumed {
        outcome,
        attempt,
        tests_kept,
        repairs,
        backfilled,
    })
}

fn options(i: &Inputs, dir: &Path, state: WorkflowState) -> RunOptions {
    let p = |s: &Option<String>| s.as_ref().map(PathBuf::from);
    RunOptions {
        bench: PathBuf::from(&i.bench),
        suite: PathBuf::from(&i.suite),
        artifact: p(&i.artifact),
        skip_flash: i.skip_flash,
        verbose: i.verbose,
        results_root: None,
        results_dir: Some(dir.to_path_buf()),
        run_id: i.run_id.clone(),
        strict: i.strict,
        junit: p(&i.junit),
        ctrf: p(&i.ctrf),
        lock_config: None,
        defer_sync: false,
        resume: Some(state),
    }
}

/// The file must exist and, when the run recorded its SHA-256, still have it.
fn check_input(what: &'static str, path: &str, sha: Option<&str>) -> Result<(), ResumeError> {
    let changed = |problem: String| ResumeError::InputChanged {
        what,
        path: path.to_string(),
        problem,
    };
    let text = std::fs::read(path).map_err(|e| changed(format!("cannot be read ({e})")))?;
    if let Some(want) = sha {
        let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&text));
        if !got.eq_ignore_ascii_case(want) {
            return Err(changed(format!(
                "changed since the run started (sha256 {got}, was {want})"
            )));
        }
    }
    Ok(())
}

/// Whether `pid` runs a hilt binary (a recycled pid of another program does not count).
fn is_hilt(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .next()
                .and_then(|arg0| {
                    Path::new(std::str::from_utf8(arg0).ok()?)
                        .file_name()
                        .map(|n| n.to_string_lossy().contains("hilt"))
                })
                .unwrap_or(false)
        })
        .unwrap_or(false)
}
