//! The agent's shared parts: settings, registered benches, and the run table as the
//! dispatcher (`dispatcher.rs`) publishes it. Only the dispatcher changes the run table;
//! everyone else reads it here or sends the dispatcher a message.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Instant;

use tokio::sync::Notify;

use crate::dispatcher::{Handle, Published};
use crate::metrics::Metrics;
use crate::record::{self, AgentEvent, RunRecord, RunState};
use crate::registry::Registry;
use crate::runlog::RunLog;
use crate::settings::AgentSettings;
pub use crate::summary::Summary;

/// Lock key shared by every uploaded-bench run (they are serialised among themselves).
pub const UPLOADED_LOCK: &str = "__uploaded__";

/// A run in the run table. A finished run keeps only its [`Summary`] in memory (about
/// 100 bytes with its key and table slot); its record and events are read from its
/// directory when asked for, so idle memory is flat in the number of stored runs.
pub struct RunEntry {
    pub sum: Summary,
    /// The full record while the run is live, or when its final record could not be saved
    /// (the disk copy is stale then, so memory stays the source of truth).
    pub rec: Option<Box<RunRecord>>,
    /// The run's own writer (event log, in-memory events, subscribers) from submission
    /// until its final event; `None` for finished runs.
    pub log: Option<Arc<RunLog>>,
}

/// The run table as published by the dispatcher.
#[derive(Default)]
pub struct Runs {
    pub map: HashMap<Box<str>, RunEntry>,
    /// Bench or resource lock key → the run (or health refresh) holding it.
    pub busy: HashMap<String, String>,
    /// Runs waiting in the queue.
    pub queued: usize,
    /// Bench ids, shared by the summaries of the runs on them.
    benches: HashSet<Arc<str>>,
}

impl Runs {
    /// Adds a run to the table. `rec` is kept in memory only when the run is live or `pin`
    /// says its disk copy is stale.
    pub fn insert(&mut self, rec: RunRecord, log: Option<Arc<RunLog>>, pin: bool) {
        let bench = rec.bench_id.as_deref().map(|b| self.bench(b));
        let sum = Summary::of(&rec, bench);
        let id: Box<str> = rec.run_id.as_str().into();
        let keep = log.is_some() || pin;
        let entry = RunEntry {
            sum,
            rec: keep.then(|| Box::new(rec)),
            log,
        };
        self.map.insert(id, entry);
    }

    /// The shared copy of a bench id.
    fn bench(&mut self, id: &str) -> Arc<str> {
        if let Some(b) = self.benches.get(id) {
            return b.clone();
        }
        let b: Arc<str> = id.into();
        self.benches.insert(b.clone());
        b
    }

    pub fn queue_depth(&self) -> usize {
        self.queued
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
    /// The run table, written by the dispatcher only.
    pub runs: Published,
    /// Messages to the dispatcher.
    pub dispatcher: Handle,
    /// The dispatcher's end of the channel, until [`crate::dispatcher::Dispatcher::new`]
    /// takes it.
    pub(crate) inbox: Mutex<Option<crate::dispatcher::Inbox>>,
    /// Told by the dispatcher when the agent is stopping and nothing executes any more.
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
        let (dispatcher, inbox) = crate::dispatcher::channel();
        let idle = registry
            .config
            .as_ref()
            .map(|c| c.gpio_session_idle_s)
            .unwrap_or(300);
        Agent {
            settings,
            registry: RwLock::new(registry),
            runs: Published::default(),
            dispatcher,
            inbox: Mutex::new(Some(inbox)),
            stopped: Notify::new(),
            stop: Mutex::new(Stop::No),
            accepting: AtomicBool::new(true),
            next_seq: AtomicU64::new(1),
            metrics: Metrics::default(),
            gpio: crate::gpio::Sessions::new(std::time::Duration::from_secs(idle)),
            started: Instant::now(),
        }
    }

    /// The published run table (read lock; hold it only for a lookup).
    pub fn runs(&self) -> RwLockReadGuard<'_, Runs> {
        self.runs.read()
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

    /// The state and events of a run with `seq > after`: a live run's from memory, a
    /// finished run's from its log on disk (read outside the table's lock).
    pub fn events_after(&self, run_id: &str, after: u64) -> Option<(RunState, Vec<AgentEvent>)> {
        let (state, log) = {
            let runs = self.runs();
            let e = runs.map.get(run_id)?;
            (e.sum.status, e.log.clone())
        };
        let dir = self.settings.run_dir(run_id);
        let events = match log {
            Some(log) => log.after(after),
            None => record::load_events(&dir)
                .into_iter()
                .filter(|x| x.seq > after)
                .collect(),
        };
        Some((state, events))
    }

    /// A run's full record: from memory while it is live (with the test and step it is
    /// in), else read from its directory (outside the table's lock). `None` when the run is
    /// unknown or its directory went.
    pub fn record(&self, run_id: &str) -> Option<RunRecord> {
        let damaged = {
            let runs = self.runs();
            let e = runs.map.get(run_id)?;
            if let Some(rec) = e.rec.as_deref() {
                let mut rec = rec.clone();
                if let Some(log) = &e.log {
                    let (test, step) = log.current();
                    rec.current_test = test.or(rec.current_test);
                    if !rec.status.is_terminal() {
                        rec.current_step = step.or(rec.current_step);
                    }
                }
                return Some(rec);
            }
            e.sum.damaged
        };
        let dir = self.settings.run_dir(run_id);
        let reason = match record::load(&dir) {
            Ok(rec) if !damaged => return Some(rec),
            Err(record::LoadError::Missing) if !damaged => return None,
            Err(record::LoadError::Damaged(reason)) => reason,
            // Reported as at start-up until the agent starts again and reads it afresh.
            Ok(_) => "record.json was unreadable when the agent started".into(),
            Err(record::LoadError::Missing) => "record.json is missing".into(),
        };
        Some(RunRecord::damaged(run_id, reason, record::created_at(&dir)))
    }

    pub fn current_run_of(&self, bench_id: &str) -> Option<String> {
        self.runs().busy.get(bench_id).cloned()
    }
}

/// A short random run id: the first 12 hex characters of a random UUID (as BenchCI).
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
