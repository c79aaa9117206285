//! The agent's shared state: registered benches, run records, the queue and which bench
//! lock each executing run holds. One mutex guards this table and is only held for
//! in-memory updates: event logs and records are written by each run's own writer
//! (`runlog.rs`).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::sync::Notify;

use hilt_hw::CancelToken;

use crate::metrics::Metrics;
use crate::record::{self, AgentEvent, RunRecord, RunState};
use crate::registry::Registry;
use crate::runlog::RunLog;
use crate::settings::AgentSettings;

/// Lock key shared by every uploaded-bench run (they are serialised among themselves).
pub const UPLOADED_LOCK: &str = "__uploaded__";

pub struct RunEntry {
    /// The run's small durable record (all a finished run keeps in memory).
    pub rec: RunRecord,
    pub dir: PathBuf,
    /// Present from submission until the final event; `None` for finished runs.
    pub live: Option<Live>,
}

/// What only a queued or executing run needs.
pub struct Live {
    /// The run's own writer (event log + record), its in-memory events and subscribers.
    pub log: Arc<RunLog>,
    pub cancel: CancelToken,
    /// The signal that cancelled the run (for the 128+signal exit code), 0 for an API cancel.
    pub cancel_signal: Option<i32>,
    /// The plan built at submission; the worker takes it (runs recovered after a restart
    /// have none and are planned again from their files).
    pub plan: Option<hilt_runner::Plan>,
}

#[derive(Default)]
pub struct Runs {
    pub map: HashMap<String, RunEntry>,
    pub queue: VecDeque<String>,
    /// Bench lock key → the run holding it.
    pub busy: HashMap<String, String>,
}

impl Runs {
    pub fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    /// Runs executing (each may hold several keys in `busy`).
    pub fn active(&self) -> usize {
        let mut ids: Vec<&String> = self.busy.values().collect();
        ids.sort();
        ids.dedup();
        ids.len()
    }
}

/// How the agent should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Keep serving.
    No,
    /// Stop accepting, let executing runs finish, exit (SIGTERM, SIGUSR1, restart file).
    Drain,
    /// Cancel executing runs (their children get SIGTERM → grace → SIGKILL), exit.
    Cancel(i32),
}

pub struct Agent {
    pub settings: AgentSettings,
    pub registry: RwLock<Registry>,
    pub runs: Mutex<Runs>,
    pub wake: Notify,
    pub stopped: Notify,
    pub stop: Mutex<Stop>,
    pub accepting: AtomicBool,
    pub next_seq: AtomicU64,
    pub metrics: Metrics,
    pub gpio: crate::gpio::Sessions,
    pub started: Instant,
}

impl Agent {
    pub fn new(settings: AgentSettings, registry: Registry) -> Agent {
        let idle = registry
            .config
            .as_ref()
            .map(|c| c.gpio_session_idle_s)
            .unwrap_or(300);
        Agent {
            settings,
            registry: RwLock::new(registry),
            runs: Mutex::new(Runs::default()),
            wake: Notify::new(),
            stopped: Notify::new(),
            stop: Mutex::new(Stop::No),
            accepting: AtomicBool::new(true),
            next_seq: AtomicU64::new(1),
            metrics: Metrics::default(),
            gpio: crate::gpio::Sessions::new(std::time::Duration::from_secs(idle)),
            started: Instant::now(),
        }
    }

    pub fn runs(&self) -> MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The retention policy in force (flag > agent.yaml > default).
    pub fn retention(&self) -> hilt_model::agent::Retention {
        let file = self.registry().config.as_ref().map(|c| c.retention);
        self.settings.retention(file)
    }

    /// What happens to queued runs when the agent stops (flag > agent.yaml > default).
    pub fn on_shutdown(&self) -> hilt_model::agent::OnShutdown {
        let file = self.registry().config.as_ref().map(|c| c.on_shutdown);
        self.settings.on_shutdown(file)
    }

    pub fn stop_mode(&self) -> Stop {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer of a live run.
    pub fn log_of(&self, run_id: &str) -> Option<Arc<RunLog>> {
        self.runs()
            .map
            .get(run_id)
            .and_then(|e| e.live.as_ref())
            .map(|l| l.log.clone())
    }

    /// Appends an event to a live run (disk, memory, subscribers) and follows its current
    /// test/step. The agent-wide lock is only taken for the in-memory record.
    pub fn emit(
        &self,
        run_id: &str,
        event_type: &str,
        message: Option<String>,
        data: Map<String, Value>,
    ) {
        let Some(log) = self.log_of(run_id) else {
            return;
        };
        log.append(event_type, message, data, |ev| {
            let test = ev.data.get("test_name").and_then(Value::as_str);
            let step = (ev.event_type == "step.started")
                .then(|| ev.data.get("step_type").and_then(Value::as_str))
                .flatten();
            if test.is_none() && step.is_none() {
                return;
            }
            if let Some(e) = self.runs().map.get_mut(run_id) {
                if let Some(t) = test {
                    e.rec.current_test = Some(t.to_string());
                }
                if let Some(s) = step {
                    e.rec.current_step = Some(s.to_string());
                }
            }
        });
    }

    /// Moves a run to a terminal `state` with its final event. The event is written first,
    /// then the record, then the state and the event become visible together; the run then
    /// stops being live (its events are read from disk from now on). A crash between the
    /// writes leaves a log recovery repairs, never a final record without its event.
    pub fn finish(
        &self,
        run_id: &str,
        state: RunState,
        f: impl FnOnce(&mut RunRecord),
        event_type: &str,
        message: Option<String>,
        data: Map<String, Value>,
    ) {
        self.finish_with(run_id, state, f, None, event_type, message, data);
    }

    /// As [`Agent::finish`], for a run whose worker has just finished: the terminal record
    /// is made durable together with the run's own unsynced files (`also`) in one batch,
    /// before the new state is visible to anyone.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_durable(
        &self,
        run_id: &str,
        state: RunState,
        f: impl FnOnce(&mut RunRecord),
        also: &[PathBuf],
        event_type: &str,
        message: Option<String>,
        data: Map<String, Value>,
    ) {
        self.finish_with(run_id, state, f, Some(also), event_type, message, data);
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_with(
        &self,
        run_id: &str,
        state: RunState,
        f: impl FnOnce(&mut RunRecord),
        also: Option<&[PathBuf]>,
        event_type: &str,
        message: Option<String>,
        data: Map<String, Value>,
    ) {
        let Some(log) = self.log_of(run_id) else {
            return;
        };
        // Runs under the run's own writer lock, after the event is appended: the record is
        // written outside the agent's lock, then the new state is published.
        log.append(event_type, message, data, |_| {
            let Some((dir, mut rec)) = self
                .runs()
                .map
                .get(run_id)
                .map(|e| (e.dir.clone(), e.rec.clone()))
            else {
                return;
            };
            rec.status = state;
            f(&mut rec);
            rec.current_step = None;
            let saved = match also {
                Some(also) => record::save_terminal(&dir, &rec, also),
                None => record::save(&dir, &rec),
            };
            if let Err(e) = saved {
                tracing::error!(run_id, error = %e, "cannot save the final run record");
            }
            if let Some(e) = self.runs().map.get_mut(run_id) {
                e.rec = rec;
            }
        });
        if let Some(e) = self.runs().map.get_mut(run_id) {
            e.live = None;
        }
    }

    /// Moves a run to a non-terminal `state` and persists the record (terminal states go
    /// through [`Agent::finish`]).
    pub fn set_state(&self, run_id: &str, state: RunState, f: impl FnOnce(&mut RunRecord)) {
        let (log, rec) = {
            let mut runs = self.runs();
            let Some(e) = runs.map.get_mut(run_id) else {
                return;
            };
            e.rec.status = state;
            f(&mut e.rec);
            (e.live.as_ref().map(|l| l.log.clone()), e.rec.clone())
        };
        match log {
            Some(log) => log.save(&rec),
            None => {
                if let Err(e) = record::save(&self.settings.run_dir(run_id), &rec) {
                    tracing::error!(run_id, error = %e, "cannot save the run record");
                }
            }
        }
    }

    /// The state and events of a run with `seq > after`: a live run's from memory, a
    /// finished run's from its log on disk (read outside the agent's lock).
    pub fn events_after(&self, run_id: &str, after: u64) -> Option<(RunState, Vec<AgentEvent>)> {
        let (state, log, dir) = {
            let runs = self.runs();
            let e = runs.map.get(run_id)?;
            (
                e.rec.status,
                e.live.as_ref().map(|l| l.log.clone()),
                e.dir.clone(),
            )
        };
        let events = match log {
            Some(log) => log.after(after),
            None => record::load_events(&dir)
                .into_iter()
                .filter(|x| x.seq > after)
                .collect(),
        };
        Some((state, events))
    }

    /// Cancels a run that is still queued: out of the queue, final state and event with
    /// `reason`. Returns false when the run is not queued (any more).
    pub fn cancel_queued(&self, run_id: &str, reason: &str) -> bool {
        {
            let mut runs = self.runs();
            let Some(e) = runs.map.get_mut(run_id) else {
                return false;
            };
            if e.rec.status != RunState::Queued {
                return false;
            }
            if let Some(l) = &mut e.live {
                l.cancel_signal.get_or_insert(0);
                l.cancel.cancel();
            }
            runs.queue.retain(|x| x != run_id);
        }
        let mut data = Map::new();
        data.insert("exit_code".into(), Value::Null);
        self.finish(
            run_id,
            RunState::Cancelled,
            |r| {
                r.finished_at = Some(hilt_model::run::now());
                r.error = Some(reason.to_string());
            },
            "run.cancelled",
            Some(reason.to_string()),
            data,
        );
        self.metrics.finished(RunState::Cancelled);
        true
    }

    /// The agent is stopping: queued runs are cancelled or kept as `on_shutdown` says, and
    /// each record and log says which.
    pub fn shutdown_queue(&self) {
        let policy = self.on_shutdown();
        let queued: Vec<String> = self.runs().queue.iter().cloned().collect();
        for id in queued {
            match policy {
                hilt_model::agent::OnShutdown::Cancel => {
                    let why = "cancelled: the agent shut down before this run started (on_shutdown: cancel); submit it again";
                    if self.cancel_queued(&id, why) {
                        tracing::info!(run_id = %id, "queued run cancelled at shutdown");
                    }
                }
                hilt_model::agent::OnShutdown::Keep => {
                    let note = "the agent is shutting down: this run stays queued and starts when the agent starts again (on_shutdown: keep)";
                    self.set_state(&id, RunState::Queued, |r| r.notice = Some(note.into()));
                    self.emit(&id, "run.notice", Some(note.into()), Map::new());
                    tracing::info!(run_id = %id, "queued run kept for the next start");
                }
            }
        }
    }

    pub fn current_run_of(&self, bench_id: &str) -> Option<String> {
        self.runs().busy.get(bench_id).cloned()
    }
}

/// A short random run id: the first 12 hex characters of a random UUID (as BenchCI).
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
