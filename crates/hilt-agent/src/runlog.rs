//! The per-run writer of a live run: its event log (`events.jsonl`) and its record
//! (`record.json`) are written under this run's own lock, never under a lock shared by
//! runs, so one run's disk writes never hold up requests about other runs.
//!
//! One party writes a run at a time: the dispatcher while it is queued, its worker while
//! it executes. A run is live from submission until its final event; afterwards it keeps
//! only its small summary in memory and its events are read from disk on demand.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::record::{self, AgentEvent, RunRecord};

/// Events a slow SSE reader may fall behind before it catches up from the log.
const LIVE_BACKLOG: usize = 1024;

pub struct RunLog {
    dir: PathBuf,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<AgentEvent>,
}

struct Inner {
    next_seq: u64,
    /// The events so far (a live run's log is read from memory).
    events: Vec<AgentEvent>,
    /// The test and step the run is in, followed from its events.
    current_test: Option<String>,
    current_step: Option<String>,
}

impl RunLog {
    /// The writer of a run whose log already holds `events`.
    pub fn open(dir: &Path, events: Vec<AgentEvent>) -> RunLog {
        let (tx, _) = broadcast::channel(LIVE_BACKLOG);
        RunLog {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                next_seq: events.last().map(|e| e.seq).unwrap_or(0) + 1,
                events,
                current_test: None,
                current_step: None,
            }),
            tx,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<AgentEvent> {
        self.tx.subscribe()
    }

    pub fn after(&self, after: u64) -> Vec<AgentEvent> {
        self.inner()
            .events
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect()
    }

    /// The log already holds the run's final event.
    pub fn ended(&self) -> bool {
        self.inner()
            .events
            .last()
            .is_some_and(record::is_terminal_event)
    }

    /// The test and step the run is in (from its events so far).
    pub fn current(&self) -> (Option<String>, Option<String>) {
        let inner = self.inner();
        (inner.current_test.clone(), inner.current_step.clone())
    }

    /// Appends an event: it is on disk first, then `publish` runs (the caller makes the
    /// matching state change visible), then readers and subscribers see the event. So a
    /// reader never sees a final event before the final state, and a crash never leaves a
    /// final record without its event. `publish` runs outside this run's lock (it may wait
    /// for the dispatcher, which must never wait for a reader of this log).
    pub fn append(
        &self,
        event_type: &str,
        message: Option<String>,
        data: Map<String, Value>,
        publish: impl FnOnce(&AgentEvent),
    ) -> AgentEvent {
        let ev = {
            let mut inner = self.inner();
            let ev = AgentEvent {
                seq: inner.next_seq,
                timestamp: hilt_model::run::now(),
                event_type: event_type.to_string(),
                message,
                data,
            };
            inner.next_seq += 1;
            if let Err(e) = record::append_event(&self.dir, &ev) {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot append to the run's event log");
            }
            ev
        };
        publish(&ev);
        let mut inner = self.inner();
        if let Some(t) = ev.data.get("test_name").and_then(Value::as_str) {
            inner.current_test = Some(t.to_string());
        }
        if ev.event_type == "step.started"
            && let Some(s) = ev.data.get("step_type").and_then(Value::as_str)
        {
            inner.current_step = Some(s.to_string());
        }
        inner.events.push(ev.clone());
        let _ = self.tx.send(ev.clone());
        ev
    }

    /// Ends the run: its final event, then its final record `rec`, then `publish(rec,
    /// saved)` makes the state visible, then readers see the event. `saved` is false when
    /// the record could not be written (it stays in memory).
    ///
    /// With `also` (the runner's unsynced documents) the end is durable before it is
    /// visible, in one round of disk waits: the event log holding the final event, those
    /// documents and their directories are synced at once; record.json is then written
    /// (atomically, not yet synced: recovery derives it from the final event) and synced
    /// after publishing, off the client's path.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &self,
        dir: &Path,
        mut rec: RunRecord,
        also: Option<&[PathBuf]>,
        event_type: &str,
        message: Option<String>,
        data: Map<String, Value>,
        publish: impl FnOnce(RunRecord, bool),
    ) {
        rec.current_step = None;
        self.append(event_type, message, data, |_| {
            if let Some(also) = also {
                let mut files = vec![self.dir.join(record::EVENTS_FILE)];
                files.extend(also.iter().cloned());
                if let Err(e) = hilt_runner::rundir::sync_together(&files, &[dir.to_path_buf()]) {
                    tracing::error!(run_id = %rec.run_id, error = %e, "cannot sync the run's final event");
                }
            }
            let saved = record::save(dir, &rec);
            if let Err(e) = &saved {
                tracing::error!(run_id = %rec.run_id, error = %e, "cannot save the final run record: it is kept in memory");
            }
            publish(rec, saved.is_ok());
        });
        if also.is_some() {
            record::sync(dir);
        }
    }

    /// Writes the run's record (serialised with this run's event appends).
    pub fn save(&self, rec: &RunRecord) {
        let _inner = self.inner();
        if let Err(e) = record::save(&self.dir, rec) {
            tracing::error!(run_id = %rec.run_id, error = %e, "cannot save the run record");
        }
    }
}
