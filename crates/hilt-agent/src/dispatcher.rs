//! The dispatcher: one task that owns the run table, the queue, the bench/resource busy map
//! and run deadlines. Handlers, workers and shutdown send it [`Msg`]s over a channel and
//! await replies; it is the only writer of the table it publishes for reads
//! ([`Published`]), so no two parties ever decide about one run at once.
//!
//! Who writes what: a queued run's record and events belong to the dispatcher; an
//! executing run's belong to its worker (which publishes its record changes through the
//! dispatcher); a finished run's live on disk. Events are persisted by each run's own
//! writer (`runlog.rs`), never under a lock shared by runs.
//!
//! Queued runs start in FIFO order whenever their bench and resource locks are free: runs
//! on different benches execute in parallel, runs on one bench one at a time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde_json::Map;
use tokio::sync::{mpsc, oneshot};

use hilt_hw::CancelToken;

use crate::api::error::ApiError;
use crate::record::{RunRecord, RunState};
use crate::runlog::RunLog;
use crate::state::{Agent, RunEntry, Runs, Stop};

/// The run table as the dispatcher last published it. Readers take the read lock for a
/// lookup (never across an await: the guard is not `Send`); only the dispatcher writes.
#[derive(Default)]
pub struct Published(RwLock<Runs>);

impl Published {
    pub fn read(&self) -> RwLockReadGuard<'_, Runs> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Runs> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// How a run is being stopped, shared by the dispatcher (which decides) and the run's
/// worker (which records why it ended).
#[derive(Default)]
pub struct Cancel {
    pub token: CancelToken,
    /// The signal that cancelled the run (128+signal exit code); 0 for an API cancel, -1
    /// when not cancelled.
    signal: AtomicI32,
    /// The agent's maximum run time cancelled the run.
    timed_out: AtomicBool,
}

impl Cancel {
    fn new() -> Cancel {
        Cancel {
            token: CancelToken::new(),
            signal: AtomicI32::new(-1),
            timed_out: AtomicBool::new(false),
        }
    }

    /// Cancels with `signal` (0: API); the first reason given is kept.
    fn cancel(&self, signal: i32) {
        let _ = self
            .signal
            .compare_exchange(-1, signal, Ordering::SeqCst, Ordering::SeqCst);
        self.token.cancel();
    }

    /// Cancels with `signal`, replacing an earlier API cancel (a signal to the agent wins).
    fn cancel_by_signal(&self, signal: i32) {
        self.signal.store(signal, Ordering::SeqCst);
        self.token.cancel();
    }

    pub fn signal(&self) -> Option<i32> {
        let s = self.signal.load(Ordering::SeqCst);
        (s >= 0).then_some(s)
    }

    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::SeqCst)
    }
}

/// What a worker gets to execute one run.
pub struct Job {
    pub rec: RunRecord,
    pub log: Arc<RunLog>,
    pub cancel: Arc<Cancel>,
    pub plan: Option<hilt_runner::Plan>,
    /// The maximum run time in force when the run started (0: none).
    pub limit_s: u64,
}

pub enum Msg {
    /// A new run whose files and record are durable: queue it; replies with the queue depth.
    Submit {
        rec: Box<RunRecord>,
        log: Arc<RunLog>,
        plan: Option<Box<hilt_runner::Plan>>,
        reply: oneshot::Sender<usize>,
    },
    /// Cancel a queued or executing run.
    Cancel {
        id: String,
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// An executing run's worker changed its record (state, start time).
    Update(Box<RunRecord>),
    /// An executing run's final event and record are on disk (`saved`: the record could be
    /// written; else it stays pinned in memory). Acknowledged once published.
    Finished {
        rec: Box<RunRecord>,
        saved: bool,
        ack: oneshot::Sender<()>,
    },
    /// Hold a bench for someone other than a run (a health refresh); replies with the run
    /// holding it when busy.
    Hold {
        key: String,
        holder: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Release {
        holder: String,
    },
    /// An executing run's worker thread panicked before it recorded the end: the run fails
    /// (internal error) and its bench and resources are freed.
    WorkerPanicked {
        id: String,
        what: String,
    },
    /// The agent is stopping or restarting.
    Stop(crate::Control),
    /// Prune what the retention policy no longer keeps.
    Prune,
}

/// Runs `work` (one run's worker) on a blocking thread; if it panics, the dispatcher hears
/// of it ([`Msg::WorkerPanicked`]) so the run ends and its bench does not stay busy forever.
fn spawn_worker(dispatcher: Handle, id: String, work: impl FnOnce() + Send + 'static) {
    let worker = tokio::task::spawn_blocking(work);
    tokio::spawn(async move {
        if let Err(e) = worker.await
            && e.is_panic()
        {
            let what = panic_text(e.into_panic());
            tracing::error!(run_id = %id, panic = %what, "the run's worker panicked");
            dispatcher.send(Msg::WorkerPanicked { id, what });
        }
    });
}

/// The text of a panic payload (`panic!` with a message or a format string).
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// The senders' side.
#[derive(Clone)]
pub struct Handle(mpsc::UnboundedSender<Msg>);

impl Handle {
    pub fn send(&self, m: Msg) {
        // Only fails once the dispatcher is gone (the runtime is shutting down).
        let _ = self.0.send(m);
    }

    async fn ask<T>(&self, f: impl FnOnce(oneshot::Sender<T>) -> Msg) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(f(tx));
        rx.await.ok()
    }

    pub async fn submit(
        &self,
        rec: RunRecord,
        log: Arc<RunLog>,
        plan: hilt_runner::Plan,
    ) -> Result<usize, ApiError> {
        self.ask(|reply| Msg::Submit {
            rec: Box::new(rec),
            log,
            plan: Some(Box::new(plan)),
            reply,
        })
        .await
        .ok_or_else(gone)
    }

    pub async fn cancel(&self, id: &str) -> Result<(), ApiError> {
        self.ask(|reply| Msg::Cancel {
            id: id.to_string(),
            reply,
        })
        .await
        .unwrap_or_else(|| Err(gone()))
    }

    pub async fn hold(&self, key: &str, holder: &str) -> Result<(), String> {
        self.ask(|reply| Msg::Hold {
            key: key.to_string(),
            holder: holder.to_string(),
            reply,
        })
        .await
        .unwrap_or(Ok(()))
    }

    /// From a worker thread: publishes the final record and waits until it is visible.
    pub fn finished_blocking(&self, rec: RunRecord, saved: bool) {
        let (ack, rx) = oneshot::channel();
        self.send(Msg::Finished {
            rec: Box::new(rec),
            saved,
            ack,
        });
        let _ = rx.blocking_recv();
    }
}

fn gone() -> ApiError {
    ApiError::Unavailable("the agent is shutting down".into())
}

/// A queued or executing run as only the dispatcher knows it.
struct Ctl {
    cancel: Arc<Cancel>,
    plan: Option<Box<hilt_runner::Plan>>,
    log: Arc<RunLog>,
    executing: bool,
    deadline: Option<Instant>,
}

/// The dispatcher's own state; [`Dispatcher::publish`]es what readers see.
pub struct Dispatcher {
    agent: Arc<Agent>,
    rx: mpsc::UnboundedReceiver<Msg>,
    queue: VecDeque<String>,
    ctl: HashMap<String, Ctl>,
    stop: Stop,
}

/// The dispatcher's end of its channel.
pub type Inbox = mpsc::UnboundedReceiver<Msg>;

/// The channel: the handle and the inbox both go into the [`Agent`].
pub fn channel() -> (Handle, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Handle(tx), rx)
}

impl Dispatcher {
    /// The dispatcher of `agent` (`None` when it already has one).
    pub fn new(agent: Arc<Agent>) -> Option<Dispatcher> {
        let rx = agent
            .inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        Some(Dispatcher {
            agent,
            rx,
            queue: VecDeque::new(),
            ctl: HashMap::new(),
            stop: Stop::No,
        })
    }

    pub fn agent(&self) -> &Arc<Agent> {
        &self.agent
    }

    /// Adds a finished run (recovery); `pin` keeps its record in memory (its disk copy is
    /// stale).
    pub fn insert_finished(&mut self, rec: RunRecord, pin: bool) {
        self.agent.runs.write().insert(rec, None, pin);
    }

    /// Adds a run that has not finished: queued when its record says so.
    pub fn insert_live(&mut self, rec: RunRecord, log: Arc<RunLog>) {
        let id = rec.run_id.clone();
        if rec.status == RunState::Queued {
            self.queue.push_back(id.clone());
        }
        self.ctl.insert(
            id,
            Ctl {
                cancel: Arc::new(Cancel::new()),
                plan: None,
                log: log.clone(),
                executing: false,
                deadline: None,
            },
        );
        let mut runs = self.agent.runs.write();
        runs.insert(rec, Some(log), false);
        runs.queued = self.queue.len();
    }

    /// Serves messages until every sender is gone. Call [`Dispatcher::prune`] with
    /// `wait` first to prune at start-up before the agent serves.
    pub async fn run(mut self) {
        self.start_ready();
        loop {
            let deadline = self.ctl.values().filter_map(|c| c.deadline).min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                m = self.rx.recv() => match m {
                    Some(m) => self.handle(m),
                    None => return,
                },
                _ = sleep => self.expire(),
            }
            self.check_stopped();
        }
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Submit {
                rec,
                log,
                plan,
                reply,
            } => {
                let id = rec.run_id.clone();
                self.insert_live(*rec, log);
                if let Some(c) = self.ctl.get_mut(&id) {
                    c.plan = plan;
                }
                let _ = reply.send(self.queue.len());
                self.start_ready();
            }
            Msg::Cancel { id, reply } => {
                let _ = reply.send(self.cancel(&id));
            }
            Msg::Update(rec) => {
                let mut runs = self.agent.runs.write();
                if let Some(e) = runs.map.get_mut(rec.run_id.as_str()) {
                    e.set(*rec);
                }
            }
            Msg::Finished { rec, saved, ack } => {
                let id = rec.run_id.clone();
                self.ctl.remove(&id);
                {
                    let mut runs = self.agent.runs.write();
                    runs.busy.retain(|_, v| v != &id);
                    runs.finish(*rec, saved);
                }
                let _ = ack.send(());
                self.start_ready();
                self.prune(false);
            }
            Msg::Hold { key, holder, reply } => {
                let mut runs = self.agent.runs.write();
                let r = match runs.busy.get(&key) {
                    Some(run) => Err(run.clone()),
                    None => {
                        runs.busy.insert(key, holder);
                        Ok(())
                    }
                };
                drop(runs);
                let _ = reply.send(r);
            }
            Msg::Release { holder } => {
                self.agent.runs.write().busy.retain(|_, v| v != &holder);
                self.start_ready();
            }
            Msg::WorkerPanicked { id, what } => self.worker_panicked(&id, &what),
            Msg::Stop(s) => self.begin_stop(s),
            Msg::Prune => self.prune(false),
        }
    }

    /// Ends a run whose worker panicked (unless it already recorded its end): one final
    /// `run.failed` event (internal error, exit code 70), its record, and its bench and
    /// resource keys freed for the next run.
    fn worker_panicked(&mut self, id: &str, what: &str) {
        let Some(c) = self.ctl.remove(id) else {
            return;
        };
        self.agent.runs.write().busy.retain(|_, v| v != id);
        let Some(mut rec) = self.agent.runs.read().record_of(id) else {
            self.start_ready();
            return;
        };
        if !rec.status.is_terminal() && !c.log.ended() {
            let f = hilt_model::run::Failure::new(
                hilt_model::run::Category::UnknownError,
                format!("internal error: the agent's worker for this run panicked: {what}"),
            )
            .with_source(hilt_model::run::Source::AgentCloud);
            rec.status = RunState::Failed;
            rec.finished_at = Some(hilt_model::run::now());
            rec.exit_code = Some(hilt_runner::classify::exit::INTERNAL);
            rec.error = Some(f.summary());
            rec.failure = Some(serde_json::to_value(&f).unwrap_or_default());
            let mut data = Map::new();
            data.insert("exit_code".into(), rec.exit_code.into());
            data.insert("failure".into(), rec.failure.clone().unwrap_or_default());
            let dir = self.agent.settings.run_dir(id);
            let error = rec.error.clone();
            let agent = &self.agent;
            c.log
                .finish(&dir, rec, None, "run.failed", error, data, |rec, saved| {
                    agent.runs.write().finish(rec, saved)
                });
            self.agent.metrics.finished(RunState::Failed);
        }
        self.start_ready();
        self.prune(false);
    }

    /// Cancels a queued run (out of the queue, final state and event) or signals an
    /// executing one (its worker records the end).
    fn cancel(&mut self, id: &str) -> Result<(), ApiError> {
        let Some(c) = self.ctl.get(id) else {
            let runs = self.agent.runs.read();
            let e = runs
                .map
                .get(id)
                .ok_or_else(|| ApiError::NotFound("run not found".into()))?;
            return Err(ApiError::Conflict(format!(
                "run already finished: current status is '{}'",
                e.sum.status.as_str()
            )));
        };
        c.cancel.cancel(0);
        if !c.executing {
            self.cancel_queued(id, "cancelled before it started");
        }
        Ok(())
    }

    /// Cancels a run that is still queued: out of the queue, then its final event and
    /// record are written by its own writer and the new state published.
    fn cancel_queued(&mut self, id: &str, reason: &str) {
        self.queue.retain(|x| x != id);
        let Some(c) = self.ctl.remove(id) else {
            return;
        };
        let Some(mut rec) = self.agent.runs.read().record_of(id) else {
            return;
        };
        rec.status = RunState::Cancelled;
        rec.finished_at = Some(hilt_model::run::now());
        rec.error = Some(reason.to_string());
        let mut data = Map::new();
        data.insert("exit_code".into(), serde_json::Value::Null);
        let dir = self.agent.settings.run_dir(id);
        let agent = &self.agent;
        c.log.finish(
            &dir,
            rec,
            None,
            "run.cancelled",
            Some(reason.to_string()),
            data,
            |rec, saved| {
                let mut runs = agent.runs.write();
                runs.finish(rec, saved);
                runs.queued = self.queue.len();
            },
        );
        self.agent.metrics.finished(RunState::Cancelled);
    }

    /// Starts every queued run whose locks are free (not while stopping).
    fn start_ready(&mut self) {
        if self.stop != Stop::No {
            return;
        }
        let mut jobs = Vec::new();
        {
            let mut runs = self.agent.runs.write();
            let mut i = 0;
            let mut waiting = HashSet::new();
            while i < self.queue.len() {
                let id = self.queue[i].clone();
                let keys: Vec<String> =
                    match runs.map.get(id.as_str()).and_then(|e| e.rec.as_deref()) {
                        Some(r) if r.status == RunState::Queued => {
                            std::iter::once(r.lock_key.clone())
                                .chain(r.resource_keys.iter().cloned())
                                .collect()
                        }
                        _ => {
                            self.queue.remove(i);
                            continue;
                        }
                    };
                // The bench lock, and every physical resource the run will lock: runs that
                // share hardware wait here instead of failing with RESOURCE_LOCKED.
                // A waiting run also holds back later runs on its own bench (FIFO per bench).
                if keys.iter().any(|k| runs.busy.contains_key(k)) || waiting.contains(&keys[0]) {
                    waiting.insert(keys[0].clone());
                    i += 1;
                    continue;
                }
                self.queue.remove(i);
                for k in keys {
                    runs.busy.insert(k, id.clone());
                }
                let Some(c) = self.ctl.get_mut(&id) else {
                    continue;
                };
                let Some(e) = runs.map.get_mut(id.as_str()) else {
                    continue;
                };
                let Some(mut rec) = e.rec.as_deref().cloned() else {
                    continue;
                };
                rec.status = RunState::Preparing;
                e.set(rec.clone());
                let limit_s = crate::limits::current(&self.agent).max_run_time_s;
                c.executing = true;
                c.deadline = (limit_s > 0)
                    .then(|| Instant::now().checked_add(Duration::from_secs(limit_s)))
                    .flatten();
                jobs.push(Job {
                    rec,
                    log: c.log.clone(),
                    cancel: c.cancel.clone(),
                    plan: c.plan.take().map(|p| *p),
                    limit_s,
                });
            }
            runs.queued = self.queue.len();
        }
        for job in jobs {
            let agent = self.agent.clone();
            let id = job.rec.run_id.clone();
            spawn_worker(self.agent.dispatcher.clone(), id, move || {
                crate::worker::execute(&agent, job)
            });
        }
    }

    /// Cancels the runs whose maximum run time has passed.
    fn expire(&mut self) {
        let now = Instant::now();
        for c in self.ctl.values_mut() {
            if c.deadline.is_some_and(|d| d <= now) {
                c.deadline = None;
                c.cancel.timed_out.store(true, Ordering::SeqCst);
                c.cancel.token.cancel();
            }
        }
    }

    /// No new run starts any more; a cancelling stop cancels executing runs; the first
    /// stop applies `on_shutdown` to queued runs (a restart keeps them for the next start).
    fn begin_stop(&mut self, c: crate::Control) {
        use crate::Control;
        let first = self.stop == Stop::No;
        match c {
            Control::Cancel(sig) => {
                self.stop = Stop::Cancel(sig);
                for c in self.ctl.values().filter(|c| c.executing) {
                    c.cancel.cancel_by_signal(sig);
                }
            }
            Control::Drain | Control::Restart if first => self.stop = Stop::Drain,
            Control::Drain | Control::Restart | Control::Reload => {}
        }
        if first && matches!(c, Control::Drain | Control::Cancel(_)) {
            self.shutdown_queue();
        }
    }

    /// Queued runs are cancelled or kept as `on_shutdown` says, and each record and log
    /// says which.
    fn shutdown_queue(&mut self) {
        let policy = self.agent.on_shutdown();
        let queued: Vec<String> = self.queue.iter().cloned().collect();
        for id in queued {
            match policy {
                hilt_model::agent::OnShutdown::Cancel => {
                    let why = "cancelled: the agent shut down before this run started (on_shutdown: cancel); submit it again";
                    self.cancel_queued(&id, why);
                    tracing::info!(run_id = %id, "queued run cancelled at shutdown");
                }
                hilt_model::agent::OnShutdown::Keep => {
                    let note = "the agent is shutting down: this run stays queued and starts when the agent starts again (on_shutdown: keep)";
                    let Some(c) = self.ctl.get(&id) else {
                        continue;
                    };
                    let Some(mut rec) = self.agent.runs.read().record_of(&id) else {
                        continue;
                    };
                    rec.notice = Some(note.into());
                    c.log.save(&rec);
                    if let Some(e) = self.agent.runs.write().map.get_mut(id.as_str()) {
                        e.set(rec);
                    }
                    c.log
                        .append("run.notice", Some(note.into()), Map::new(), |_| {});
                    tracing::info!(run_id = %id, "queued run kept for the next start");
                }
            }
        }
    }

    /// While stopping, tells the waiting shutdown when nothing executes any more.
    fn check_stopped(&self) {
        if self.stop != Stop::No && !self.ctl.values().any(|c| c.executing) {
            self.agent.stopped.notify_waiters();
        }
    }

    /// Retention: finished run directories the policy no longer keeps leave the table at
    /// once and are removed from disk, off this task unless `wait` (at start-up).
    pub fn prune(&mut self, wait: bool) {
        let doomed = crate::retention::doomed(&self.agent, &mut self.agent.runs.write());
        if doomed.is_empty() {
            return;
        }
        let agent = self.agent.clone();
        if wait {
            crate::retention::remove(&agent, &doomed);
        } else {
            tokio::task::spawn_blocking(move || crate::retention::remove(&agent, &doomed));
        }
    }
}

impl RunEntry {
    /// Replaces the in-memory record of a live (or pinned) run and its summary with it.
    fn set(&mut self, rec: RunRecord) {
        self.sum.refresh(&rec);
        self.rec = Some(Box::new(rec));
    }
}

impl Runs {
    /// A run's in-memory record (live or pinned runs only).
    fn record_of(&self, id: &str) -> Option<RunRecord> {
        self.map.get(id).and_then(|e| e.rec.as_deref().cloned())
    }

    /// A run reached its final state: it stops being live; its record is read from its
    /// directory from now on unless it could not be saved there.
    fn finish(&mut self, rec: RunRecord, saved: bool) {
        if let Some(e) = self.map.get_mut(rec.run_id.as_str()) {
            e.sum.refresh(&rec);
            e.log = None;
            e.rec = (!saved).then(|| Box::new(rec));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_worker_is_reported_to_the_dispatcher() {
        let (handle, mut inbox) = channel();
        spawn_worker(handle.clone(), "r1".into(), || panic!("boom {}", 7));
        spawn_worker(handle, "r2".into(), || {});
        let m = tokio::time::timeout(Duration::from_secs(10), inbox.recv())
            .await
            .expect("the panic is reported")
            .expect("a message");
        match m {
            Msg::WorkerPanicked { id, what } => {
                assert_eq!(id, "r1");
                assert_eq!(what, "boom 7");
            }
            _ => panic!("unexpected message"),
        }
        // A worker that returns normally sends nothing (the run reports its own end).
        // (The channel closes once both workers are done: `None`, or still open: timeout.)
        let next = tokio::time::timeout(Duration::from_millis(500), inbox.recv()).await;
        assert!(matches!(next, Err(_) | Ok(None)));
    }
}
