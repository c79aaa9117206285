//! status.json: the live snapshot of a run, rewritten on phase and test boundaries and by a
//! heartbeat thread once a second while the run is active.
//!
//! Only the heartbeat thread writes the file while the run is active: a phase or progress
//! change updates the snapshot in memory and wakes it, so the run's own thread never waits
//! for a file to be created and renamed. The final snapshot ([`StatusBoard::finish`]) is
//! written by the caller after the heartbeat thread has stopped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hilt_model::run::{Alert, Monitoring, Phase, PhaseState, RunStatusSnapshot, now};

use super::write_atomic;

/// The heartbeat a running phase promises (status.json `monitoring.heartbeat_interval_s`);
/// it is written twice as often, so a loaded machine does not look stalled.
pub const HEARTBEAT_INTERVAL_S: u64 = 2;
/// A running phase whose heartbeat is older than this is stalled: twice the interval.
pub const STALL_AFTER_S: u64 = 2 * HEARTBEAT_INTERVAL_S;
const HEARTBEAT: Duration = Duration::from_secs(1);

struct Inner {
    snap: RunStatusSnapshot,
    last_write: Option<Instant>,
}

/// What the heartbeat thread is asked to do.
#[derive(Default)]
struct Ctl {
    stop: bool,
    /// A change is waiting to be written.
    dirty: bool,
}

pub struct StatusBoard {
    path: PathBuf,
    inner: Arc<Mutex<Inner>>,
    ctl: Arc<(Mutex<Ctl>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl StatusBoard {
    pub fn start(dir: &Path, run_id: &str, tests_total: usize) -> StatusBoard {
        let ts = now();
        let snap = RunStatusSnapshot {
            schema_version: "hilt.run_status.v1".into(),
            run_id: run_id.to_string(),
            results_dir: dir.display().to_string(),
            state: "running".into(),
            current_phase: Phase::Discover,
            current_test: None,
            current_step: None,
            tests_total,
            tests_passed: 0,
            tests_failed: 0,
            updated_at: ts.clone(),
            phases: Phase::ALL
                .iter()
                .map(|p| PhaseState {
                    phase: *p,
                    state: "pending".into(),
                    started_at: None,
                    finished_at: None,
                    heartbeat_at: None,
                    detail: None,
                })
                .collect(),
            monitoring: Monitoring {
                state: "running".into(),
                pid: std::process::id(),
                last_heartbeat_at: Some(ts),
                stall_after_s: STALL_AFTER_S,
                heartbeat_interval_s: HEARTBEAT_INTERVAL_S,
            },
            alerts: Vec::new(),
            primary_alert: None,
            exit_code: None,
        };
        let path = dir.join("status.json");
        let inner = Arc::new(Mutex::new(Inner {
            snap,
            last_write: None,
        }));
        let ctl = Arc::new((Mutex::new(Ctl::default()), Condvar::new()));
        let thread = {
            let (inner, ctl, path) = (inner.clone(), ctl.clone(), path.clone());
            std::thread::Builder::new()
                .name("hilt-heartbeat".into())
                .spawn(move || heartbeat(&path, &inner, &ctl))
                .ok()
        };
        let board = StatusBoard {
            path,
            inner,
            ctl,
            thread,
        };
        board.phase(Phase::Discover);
        board
    }

    /// Changes the snapshot; when `force` (or 200 ms after the last write) it goes to disk,
    /// through the heartbeat thread when there is one.
    fn update(&self, force: bool, f: impl FnOnce(&mut RunStatusSnapshot)) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g.snap);
        let due = g
            .last_write
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(200));
        if !(force || due) {
            return;
        }
        if self.thread.is_none() {
            write_snapshot(&self.path, &mut g);
            return;
        }
        drop(g);
        let (lock, cv) = &*self.ctl;
        lock.lock().unwrap_or_else(|e| e.into_inner()).dirty = true;
        cv.notify_all();
    }

    /// Enters `phase`; the phase before it is marked done.
    pub fn phase(&self, phase: Phase) {
        self.update(true, |s| {
            let ts = now();
            for p in &mut s.phases {
                if p.state == "running" {
                    p.state = "done".into();
                    p.finished_at = Some(ts.clone());
                }
            }
            if let Some(p) = s.phases.iter_mut().find(|p| p.phase == phase) {
                p.state = "running".into();
                p.started_at = Some(ts.clone());
                p.heartbeat_at = Some(ts);
            }
            s.current_phase = phase;
        });
    }

    /// Marks the running phase failed with a short reason.
    pub fn phase_failed(&self, detail: &str) {
        self.update(true, |s| {
            let ts = now();
            for p in &mut s.phases {
                if p.state == "running" {
                    p.state = "failed".into();
                    p.finished_at = Some(ts.clone());
                    p.detail = Some(detail.to_string());
                }
            }
        });
    }

    pub fn progress(&self, test: Option<&str>, step: Option<&str>, passed: usize, failed: usize) {
        self.update(false, |s| {
            s.current_test = test.map(str::to_string);
            s.current_step = step.map(str::to_string);
            s.tests_passed = passed;
            s.tests_failed = failed;
        });
    }

    /// Final snapshot: the run's state, exit code and what to do next. Stops the heartbeat.
    pub fn finish(mut self, state: &str, exit_code: i32, alerts: Vec<Alert>) {
        self.stop_heartbeat();
        self.update(true, |s| {
            let ts = now();
            for p in &mut s.phases {
                if p.state == "running" {
                    p.state = "done".into();
                    p.finished_at = Some(ts.clone());
                } else if p.state == "pending" {
                    p.state = "skipped".into();
                }
            }
            s.state = state.to_string();
            s.current_step = None;
            s.exit_code = Some(exit_code);
            s.alerts = alerts;
            s.pick_primary_alert();
            s.monitoring.state = "idle".into();
        });
    }

    fn stop_heartbeat(&mut self) {
        let (lock, cv) = &*self.ctl;
        lock.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StatusBoard {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

fn write_snapshot(path: &Path, g: &mut Inner) {
    if let Some(bytes) = render(g) {
        // Best effort: a status write failing must not fail the run; results.json is the record.
        let _ = write_atomic(path, &bytes, false);
    }
}

/// Stamps the snapshot with the time and serialises it.
fn render(g: &mut Inner) -> Option<Vec<u8>> {
    let ts = now();
    g.snap.updated_at = ts.clone();
    if g.snap.state == "running" {
        g.snap.monitoring.last_heartbeat_at = Some(ts.clone());
        let cur = g.snap.current_phase;
        if let Some(p) = g.snap.phases.iter_mut().find(|p| p.phase == cur) {
            p.heartbeat_at = Some(ts);
        }
    }
    g.last_write = Some(Instant::now());
    let mut bytes = serde_json::to_vec_pretty(&g.snap).ok()?;
    bytes.push(b'\n');
    Some(bytes)
}

/// Writes the snapshot when asked (a phase change) and once a second regardless, until
/// stopped. The file is written outside the snapshot's lock, so the run never waits for it;
/// this thread is the only writer while it runs, so snapshots reach the file in order.
fn heartbeat(path: &Path, inner: &Mutex<Inner>, ctl: &(Mutex<Ctl>, Condvar)) {
    let (lock, cv) = ctl;
    let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if !c.dirty && !c.stop {
            c = cv
                .wait_timeout(c, HEARTBEAT)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        // A change made just before the stop is still written.
        let (stop, write) = (c.stop, c.dirty || !c.stop);
        c.dirty = false;
        drop(c);
        if write {
            let bytes = render(&mut inner.lock().unwrap_or_else(|e| e.into_inner()));
            if let Some(b) = bytes {
                let _ = write_atomic(path, &b, false);
            }
        }
        if stop {
            return;
        }
        c = lock.lock().unwrap_or_else(|e| e.into_inner());
    }
}

/// Recomputes the monitoring block of a snapshot read from disk: a run that claims to be
/// active is `stalled` when its process is gone, or when its running phase's heartbeat is
/// older than twice the recorded interval (`stall_after_s` for files without one). A
/// stalled run gets a `RUN_STALLED` alert, first, with the exact commands to go on.
pub fn derive_monitoring(s: &mut RunStatusSnapshot) {
    s.alerts.retain(|a| a.code != "RUN_STALLED");
    if s.state != "running" {
        s.monitoring.state = "idle".into();
        s.pick_primary_alert();
        return;
    }
    let pid = s.monitoring.pid;
    let proc = process_state(pid);
    let running = s.phases.iter().find(|p| p.state == "running");
    let beat = running
        .and_then(|p| p.heartbeat_at.as_deref())
        .or(s.monitoring.last_heartbeat_at.as_deref());
    let age_ms = beat
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| (jiff::Timestamp::now().as_millisecond() - t.as_millisecond()).max(0) as u64);
    let age = age_ms.map(|ms| ms / 1000);
    let limit = match s.monitoring.heartbeat_interval_s {
        0 => s.monitoring.stall_after_s,
        i => 2 * i,
    };
    let stale = age_ms.is_none_or(|a| a > limit * 1000);
    if proc != ProcState::Gone && !stale {
        s.monitoring.state = "running".into();
        s.pick_primary_alert();
        return;
    }
    s.monitoring.state = "stalled".into();
    let phase = running.map(|p| p.phase).unwrap_or(s.current_phase).as_str();
    let beat_text = match age {
        Some(a) => format!("no heartbeat for {a} s (interval {} s)", limit / 2),
        None => "no heartbeat recorded".to_string(),
    };
    let dir = s.results_dir.clone();
    let resume = format!("hilt runs resume {dir}");
    let recover = format!("hilt runs recover {dir}");
    let mut a = Alert::new(
        "error",
        "RUN_STALLED",
        match proc {
            ProcState::Gone => format!(
                "Attention: stalled — phase {phase}: {beat_text}; process {pid} is no longer running"
            ),
            ProcState::Stopped => {
                format!("Attention: stalled — phase {phase}: {beat_text}; process {pid} is stopped")
            }
            ProcState::Alive => format!(
                "Attention: stalled — phase {phase}: {beat_text}; process {pid} is alive but not progressing"
            ),
        },
    );
    a = match proc {
        ProcState::Gone => a
            .action("resume the run: completed tests, steps and stages are kept, the first incomplete step runs next")
            .action("or only write recovery_summary.md and refresh status.json, executing nothing")
            .command(resume)
            .command(recover),
        ProcState::Stopped | ProcState::Alive => a
            .action(format!("continue the process (kill -CONT {pid}), or end it and resume the run"))
            .command(format!("kill -CONT {pid}"))
            .command(format!("kill -TERM {pid} && {resume}")),
    };
    for p in stalled_paths(s) {
        a = a.path(p);
    }
    a.next_diagnostic_command = Some(match proc {
        ProcState::Gone => format!("tail -n 20 {dir}/events.jsonl"),
        ProcState::Stopped | ProcState::Alive => format!("ps -o pid,stat,etime,args -p {pid}"),
    });
    s.alerts.insert(0, a);
    s.pick_primary_alert();
}

/// The most specific files that exist for a stalled run: the current step's remote
/// output, then the workflow journal, then the event log.
fn stalled_paths(s: &RunStatusSnapshot) -> Vec<String> {
    let dir = Path::new(&s.results_dir);
    let mut out = Vec::new();
    if let (Some(test), Some(step)) = (&s.current_test, &s.current_step) {
        let prefix = format!("{}-step{step}", crate::exec::slug(test));
        if let Ok(hosts) = std::fs::read_dir(dir.join("logs/hosts")) {
            let mut found: Vec<String> = hosts
                .flatten()
                .flat_map(|h| std::fs::read_dir(h.path()).into_iter().flatten().flatten())
                .map(|f| f.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".stdout"))
                })
                .map(|p| p.display().to_string())
                .collect();
            found.sort();
            out.extend(found.into_iter().rev().take(1));
        }
    }
    for f in ["workflow_journal.jsonl", "events.jsonl", "status.json"] {
        if dir.join(f).is_file() {
            out.push(dir.join(f).display().to_string());
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Gone,
    /// Stopped by a signal (`kill -STOP`) or a debugger.
    Stopped,
    Alive,
}

/// Whether `pid` is a live process, and whether it is stopped (from /proc).
pub fn process_state(pid: u32) -> ProcState {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcState::Gone;
    };
    // The state letter follows the command name in parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("");
    match state {
        "Z" | "X" | "x" => ProcState::Gone,
        "T" | "t" => ProcState::Stopped,
        _ => ProcState::Alive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_run_whose_process_is_gone_is_stalled() {
        let dir = std::env::temp_dir().join(format!("hilt-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let board = StatusBoard::start(&dir, "r1", 3);
        drop(board);
        let text = std::fs::read_to_string(dir.join("status.json")).unwrap();
        let mut snap: RunStatusSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(snap.state, "running");
        derive_monitoring(&mut snap);
        assert_eq!(snap.monitoring.state, "running", "this process is alive");
        snap.monitoring.pid = u32::MAX - 1;
        derive_monitoring(&mut snap);
        assert_eq!(snap.monitoring.state, "stalled");
        assert_eq!(snap.alerts[0].code, "RUN_STALLED");
        assert_eq!(
            snap.alerts[0].next_command.as_deref(),
            Some(format!("hilt runs resume {}", dir.display()).as_str())
        );
        assert_eq!(snap.primary_alert.as_ref(), Some(&snap.alerts[0]));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_finished_run_is_idle() {
        let dir = std::env::temp_dir().join(format!("hilt-status-done-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let board = StatusBoard::start(&dir, "r2", 1);
        board.phase(Phase::Execute);
        board.finish("passed", 0, Vec::new());
        let mut snap: RunStatusSnapshot =
            serde_json::from_str(&std::fs::read_to_string(dir.join("status.json")).unwrap())
                .unwrap();
        derive_monitoring(&mut snap);
        assert_eq!(
            (
                snap.state.as_str(),
                snap.monitoring.state.as_str(),
                snap.exit_code
            ),
            ("passed", "idle", Some(0))
        );
        let execute = snap
            .phases
            .iter()
            .find(|p| p.phase == Phase::Execute)
            .unwrap();
        assert_eq!(execute.state, "done");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
