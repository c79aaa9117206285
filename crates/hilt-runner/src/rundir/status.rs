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

/// A run whose heartbeat is older than this while it claims to be active is stalled.
pub const STALL_AFTER_S: u64 = 30;
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
            },
            alerts: Vec::new(),
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
/// active but whose process is gone, or whose heartbeat is stale, is `stalled`.
pub fn derive_monitoring(s: &mut RunStatusSnapshot) {
    if s.state != "running" {
        s.monitoring.state = "idle".into();
        return;
    }
    let alive = Path::new(&format!("/proc/{}", s.monitoring.pid)).exists();
    let age = s
        .monitoring
        .last_heartbeat_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| (jiff::Timestamp::now() - t).get_seconds().max(0) as u64);
    let stale = age.is_none_or(|a| a > s.monitoring.stall_after_s);
    if alive && !stale {
        s.monitoring.state = "running".into();
        return;
    }
    s.monitoring.state = "stalled".into();
    let why = if !alive {
        format!("process {} is no longer running", s.monitoring.pid)
    } else {
        format!("no heartbeat for {} s", age.unwrap_or(0))
    };
    s.alerts.push(Alert {
        severity: "error".into(),
        code: "RUN_STALLED".into(),
        message: format!("the run stopped making progress: {why}"),
        next_action: "read recovery_summary.md and the last events, then re-run the suite".into(),
        next_command: Some(format!("tail -n 20 {}/events.jsonl", s.results_dir)),
        next_path: Some(format!("{}/events.jsonl", s.results_dir)),
    });
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
        assert!(snap.alerts[0].next_command.is_some());
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
