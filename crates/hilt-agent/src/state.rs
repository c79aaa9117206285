//! The agent's shared state: registered benches, run records, the queue and which bench
//! lock each executing run holds. One mutex guards runs; no lock is held across I/O that
//! can block for long.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::sync::{Notify, broadcast};

use hilt_hw::CancelToken;

use crate::metrics::Metrics;
use crate::record::{self, AgentEvent, RunRecord, RunState};
use crate::registry::Registry;
use crate::settings::AgentSettings;

/// Lock key shared by every uploaded-bench run (they are serialised among themselves).
pub const UPLOADED_LOCK: &str = "__uploaded__";

pub struct RunEntry {
    pub rec: RunRecord,
    pub dir: PathBuf,
    /// Events kept in memory while the run is live; read from disk afterwards.
    pub events: Option<Vec<AgentEvent>>,
    pub next_seq: u64,
    pub tx: broadcast::Sender<AgentEvent>,
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

    pub fn stop_mode(&self) -> Stop {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an event to a run: memory, disk, live subscribers, current test/step.
    pub fn emit(
        &self,
        run_id: &str,
        event_type: &str,
        message: Option<String>,
        data: Map<String, Value>,
    ) {
        let mut runs = self.runs();
        if let Some(e) = runs.map.get_mut(run_id) {
            push_event(e, event_type, message, data);
        }
    }

    /// Moves a run to a terminal `state` and appends its final event under one lock, so no
    /// reader sees the state without the event (or the event without the state).
    pub fn finish(
        &self,
        run_id: &str,
        state: RunState,
        f: impl FnOnce(&mut RunRecord),
        event_type: &str,
        message: Option<String>,
        data: Map<String, Value>,
    ) {
        let mut runs = self.runs();
        if let Some(e) = runs.map.get_mut(run_id) {
            e.rec.status = state;
            f(&mut e.rec);
            e.rec.current_step = None;
            let _ = record::save(&e.dir, &e.rec);
            push_event(e, event_type, message, data);
        }
    }

    /// As [`Agent::finish`], for a run whose worker has just finished: the terminal record
    /// is made durable together with the run's own unsynced files (`also`) in one batch,
    /// outside the lock, before the new state is visible to anyone.
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
        let _ = record::save_terminal(&dir, &rec, also);
        let mut runs = self.runs();
        if let Some(e) = runs.map.get_mut(run_id) {
            e.rec = rec;
            push_event(e, event_type, message, data);
        }
    }

    /// Moves a run to a non-terminal `state` and persists the record (terminal states go
    /// through [`Agent::finish`]).
    pub fn set_state(&self, run_id: &str, state: RunState, f: impl FnOnce(&mut RunRecord)) {
        let mut runs = self.runs();
        if let Some(e) = runs.map.get_mut(run_id) {
            e.rec.status = state;
            f(&mut e.rec);
            let _ = record::save(&e.dir, &e.rec);
        }
    }

    /// Events of a run with `seq > after`.
    pub fn events_after(&self, run_id: &str, after: u64) -> Option<(RunState, Vec<AgentEvent>)> {
        let runs = self.runs();
        let e = runs.map.get(run_id)?;
        let events = match &e.events {
            Some(v) => v.iter().filter(|x| x.seq > after).cloned().collect(),
            None => record::load_events(&e.dir)
                .into_iter()
                .filter(|x| x.seq > after)
                .collect(),
        };
        Some((e.rec.status, events))
    }

    pub fn current_run_of(&self, bench_id: &str) -> Option<String> {
        self.runs().busy.get(bench_id).cloned()
    }
}

/// A short random run id: the first 12 hex characters of a random UUID (as BenchCI).
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Appends an event to a run: memory, disk, live subscribers, current test/step.
fn push_event(
    e: &mut RunEntry,
    event_type: &str,
    message: Option<String>,
    data: Map<String, Value>,
) {
    let ev = AgentEvent {
        seq: e.next_seq,
        timestamp: hilt_model::run::now(),
        event_type: event_type.to_string(),
        message,
        data,
    };
    e.next_seq += 1;
    if let Some(t) = ev.data.get("test_name").and_then(Value::as_str) {
        e.rec.current_test = Some(t.to_string());
    }
    if event_type == "step.started"
        && let Some(s) = ev.data.get("step_type").and_then(Value::as_str)
    {
        e.rec.current_step = Some(s.to_string());
    }
    let _ = record::append_event(&e.dir, &ev);
    let _ = e.tx.send(ev.clone());
    if let Some(v) = &mut e.events {
        v.push(ev);
    }
}
