//! `hilt agent cloud`: hilt's own cloud agent. Outbound HTTP only: it registers with a
//! server (`hilt server`, or any backend speaking agent-api §6), syncs its benches with
//! their start-up self-test health, long-polls for assignments and runs each with the same
//! runner as local runs, streaming sequenced events, uploading the results archive and
//! completing the run.
//!
//! Threads, not tasks: the runner is blocking, and so is this client.
//! - the **poller** long-polls `assignments/next` and starts a job per assignment; it polls
//!   again at once (the server answers the instant a run is assigned);
//! - the **heartbeat** renews the leases of running assignments, reads cancellations and
//!   re-syncs the benches now and then;
//! - one **job** per executing run (`job.rs`), at most one per bench, with an event sender.
//!
//! Network errors and 5xx are retried with bounded exponential back-off and jitter
//! (`backoff.rs`); a 401/403 stops the agent (exit 2); SIGINT/SIGTERM cancel executing runs,
//! complete them and exit 130/143.

mod backoff;
mod benches;
mod buffer;
mod client;
mod firmware;
mod job;

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hilt_api::{Assignment, BenchSync, CompleteRun, Heartbeat};
use hilt_hw::CancelToken;
use hilt_runner::classify::exit;

pub use backoff::Backoff;
pub use benches::{BenchSource, slug};
pub use buffer::EventBuffer;
pub use client::{CallError, Client, Identity};

use crate::registry::BenchEntry;
use crate::settings::AgentSettings;

/// Longest wait for a bench whose last run is being completed when the next is assigned.
const FREEING: Duration = Duration::from_secs(10);
/// Benches are re-synced every this many heartbeats (and at every busy/idle change).
const SYNC_EVERY: u32 = 6;

#[derive(Debug, Clone)]
pub struct CloudSettings {
    /// `http://host:port` of the server.
    pub server: String,
    pub identity: Identity,
    pub agent_name: Option<String>,
    pub region: Option<String>,
    pub source: BenchSource,
    /// Work dir (`cloud-runs/<run_id>/`, bench health), lock settings, self-test options.
    pub agent: AgentSettings,
    /// Between heartbeats; keep it well below the server's lease window.
    pub heartbeat: Duration,
    /// BenchCI's `--poll-interval-s`: only the pause after a server that answered an empty
    /// poll at once (a backend without long-poll), never between long-polls.
    pub poll_interval: Duration,
    /// First wait before a failing bench is self-tested again (doubling, up to 10 min).
    pub retest: Duration,
    /// How long the end-of-run reports (events, archive, completion) are retried while the
    /// server is unreachable.
    pub report_timeout: Duration,
}

/// What stops the agent: a signal (exit 128+signal) or a fatal answer of the server.
#[derive(Default)]
pub struct Stop {
    token: CancelToken,
    signal: AtomicI32,
    fatal: Mutex<Option<String>>,
}

impl Stop {
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop::default())
    }

    /// SIGINT (2) / SIGTERM (15): cancel executing runs, complete them, exit 128+signal.
    pub fn signal(&self, sig: i32) {
        let _ = self
            .signal
            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
        self.token.cancel();
    }

    fn fatal(&self, why: String) {
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            tracing::error!("{why}");
            *f = Some(why);
        }
        drop(f);
        self.token.cancel();
    }

    fn is_fatal(&self) -> bool {
        self.fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn signalled(&self) -> Option<i32> {
        Some(self.signal.load(Ordering::SeqCst)).filter(|s| *s > 0)
    }

    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// An executing run of a bench.
struct Running {
    run_id: String,
    cancel: CancelToken,
    /// Cancelled by a user on the server (not by a signal to this agent).
    by_server: Arc<AtomicBool>,
}

struct Slot {
    entry: BenchEntry,
    /// The id the server knows the bench by (its `bench_id_mappings` answer).
    server_id: String,
    run: Option<Running>,
}

pub(crate) struct Session {
    client: Client,
    settings: CloudSettings,
    agent_name: String,
    slots: Mutex<Vec<Slot>>,
    idle: Condvar,
    stop: Arc<Stop>,
    /// Cancelled on a fatal error only (not on a signal): cuts retries short.
    dead: CancelToken,
}

impl Session {
    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, e: &CallError) {
        self.stop.fatal(e.to_string());
        self.dead.cancel();
    }

    fn heartbeat(&self) -> Result<hilt_api::HeartbeatReply, CallError> {
        self.client.heartbeat(&Heartbeat {
            agent_name: Some(self.agent_name.clone()),
            endpoint_url: None,
            region: self.settings.region.clone(),
            labels: None,
        })
    }

    /// Reports every bench with its busy/idle state; adopts the server's bench ids.
    fn sync(&self) -> Result<(), CallError> {
        let benches = {
            let slots = self.slots();
            slots
                .iter()
                .map(|s| {
                    benches::cloud_summary(&s.entry, s.run.as_ref().map(|r| r.run_id.as_str()))
                })
                .collect()
        };
        let reply = self.client.sync(&BenchSync { benches })?;
        let mut slots = self.slots();
        for m in reply.bench_id_mappings {
            let renamed = slots
                .iter_mut()
                .find(|s| s.entry.reg.id == m.reported_bench_id)
                .filter(|s| s.server_id != m.bench_id);
            if let Some(s) = renamed {
                tracing::info!(
                    "bench {} is known to the server as {}",
                    s.entry.reg.id,
                    m.bench_id
                );
                s.server_id = m.bench_id;
            }
        }
        Ok(())
    }

    /// A sync whose failure is only logged (the next periodic sync repairs it).
    fn sync_soon(&self) {
        match self.sync() {
            Ok(()) => {}
            Err(e @ CallError::Auth { .. }) => self.fail(&e),
            Err(e) => tracing::warn!("bench sync failed (retried with the next heartbeat): {e}"),
        }
    }

    /// Calls `f` until it succeeds, retrying network errors and 5xx with back-off for at
    /// most `budget`; a 401/403 makes the agent stop.
    fn retry<T>(
        &self,
        what: &str,
        budget: Duration,
        mut f: impl FnMut() -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let deadline = Instant::now() + budget;
        let mut backoff = Backoff::network();
        loop {
            match f() {
                Ok(v) => {
                    if backoff.attempts() > 0 {
                        tracing::info!("{what}: succeeded after {} retries", backoff.attempts());
                    }
                    return Ok(v);
                }
                Err(CallError::Retry(m)) => {
                    let wait = backoff.next_delay();
                    if Instant::now() + wait > deadline || self.dead.is_cancelled() {
                        return Err(CallError::Retry(format!("{what}: gave up: {m}")));
                    }
                    if backoff.worth_logging() {
                        tracing::warn!("{what} failed, retrying: {m}");
                    }
                    self.dead.wait_timeout(wait);
                }
                Err(e @ CallError::Auth { .. }) => {
                    self.fail(&e);
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A cancellation requested on the server for a run of this agent.
    fn cancel_run(&self, run_id: &str) {
        let slots = self.slots();
        if let Some(r) = slots
            .iter()
            .filter_map(|s| s.run.as_ref())
            .find(|r| r.run_id == run_id)
        {
            if !r.cancel.is_cancelled() {
                tracing::info!("run {run_id}: cancel requested on the server, cancelling");
            }
            r.by_server.store(true, Ordering::SeqCst);
            r.cancel.cancel();
        }
    }

    /// Starts a job for an assignment on one of this agent's benches.
    fn start(self: &Arc<Self>, a: Assignment) {
        let slots = self.slots();
        let Some(i) = slots.iter().position(|s| s.server_id == a.bench_id) else {
            drop(slots);
            self.refuse(
                &a,
                "the bench of this assignment is not served by this agent",
            );
            return;
        };
        // The server assigns a bench's next run once the previous one is completed there;
        // the job frees the bench a moment after its completion was acknowledged, so a
        // bench still busy is waited for (bounded) before the assignment is refused.
        let (mut slots, _) = self
            .idle
            .wait_timeout_while(slots, FREEING, |s| s[i].run.is_some())
            .unwrap_or_else(|p| p.into_inner());
        if let Some(r) = &slots[i].run {
            let busy = r.run_id.clone();
            drop(slots);
            self.refuse(&a, &format!("the bench is busy with run {busy}"));
            return;
        }
        let cancel = CancelToken::new();
        let by_server = Arc::new(AtomicBool::new(false));
        slots[i].run = Some(Running {
            run_id: a.run_id.clone(),
            cancel: cancel.clone(),
            by_server: by_server.clone(),
        });
        let bench = job::BenchRef {
            id: slots[i].entry.reg.id.clone(),
            path: slots[i].entry.path.clone(),
        };
        drop(slots);
        tracing::info!("run {}: assigned on bench {}", a.run_id, bench.id);
        let me = self.clone();
        std::thread::spawn(move || {
            let run_id = a.run_id.clone();
            job::execute(&me, &bench, a, &cancel, &by_server);
            let mut slots = me.slots();
            for s in slots.iter_mut() {
                if s.run.as_ref().is_some_and(|r| r.run_id == run_id) {
                    s.run = None;
                }
            }
            drop(slots);
            me.idle.notify_all();
            me.sync_soon();
        });
    }

    /// Completes an assignment this agent cannot run as failed, so it does not wait for
    /// its lease to expire.
    fn refuse(&self, a: &Assignment, why: &str) {
        tracing::warn!("run {}: refused: {why}", a.run_id);
        let now = hilt_model::run::now();
        let c = CompleteRun {
            status: "failed".into(),
            exit_code: None,
            error: Some(format!("refused by the agent: {why}")),
            started_at: Some(now.clone()),
            finished_at: Some(now),
            failure: None,
            evidence: None,
        };
        let _ = self.retry("complete", Duration::from_secs(30), || {
            self.client.complete(&a.run_id, a.lease.fencing_token, &c)
        });
    }

    fn cancel_all(&self) {
        for r in self.slots().iter().filter_map(|s| s.run.as_ref()) {
            r.cancel.cancel();
        }
    }
}

/// Runs the cloud agent until a signal or a fatal error; returns the process exit code.
pub fn run(settings: CloudSettings, stop: Arc<Stop>) -> i32 {
    let client = match Client::new(&settings.server, settings.identity.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let (mut entries, config_name) = match benches::load(&settings.source, &settings.agent) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::CONFIG_ERROR;
        }
    };
    let runs_dir = settings.agent.work_dir.join("cloud-runs");
    if let Err(e) = std::fs::create_dir_all(&runs_dir) {
        eprintln!("error: cannot create {}: {e}", runs_dir.display());
        return exit::CONFIG_ERROR;
    }
    benches::self_test(&mut entries, &settings.agent);
    let agent_name = settings
        .agent_name
        .clone()
        .or(config_name)
        .unwrap_or_else(|| settings.identity.machine_name.clone());
    let slots = entries
        .into_iter()
        .map(|entry| Slot {
            server_id: entry.reg.id.clone(),
            entry,
            run: None,
        })
        .collect();
    let session = Arc::new(Session {
        client,
        settings,
        agent_name,
        slots: Mutex::new(slots),
        idle: Condvar::new(),
        stop: stop.clone(),
        dead: CancelToken::new(),
    });

    // Register: heartbeat and sync, retried until the server answers.
    let mut backoff = Backoff::network();
    loop {
        match session.heartbeat().and_then(|_| session.sync()) {
            Ok(()) => break,
            // A wrong token, or one bound to another machine (409): retrying cannot help.
            Err(e @ (CallError::Auth { .. } | CallError::Refused { .. })) => {
                session.fail(&e);
                break;
            }
            Err(e) => {
                let wait = backoff.next_delay();
                if backoff.worth_logging() {
                    tracing::warn!(
                        "cannot register with {}: {e}; retrying",
                        session.client.base()
                    );
                }
                if stop.token.wait_timeout(wait) {
                    break;
                }
            }
        }
    }
    if !stop.is_stopping() {
        let ids: Vec<String> = session
            .slots()
            .iter()
            .map(|s| {
                format!(
                    "{} ({})",
                    s.server_id,
                    s.entry.health["status"].as_str().unwrap_or("unknown")
                )
            })
            .collect();
        tracing::info!(
            "registered with {} as {}: benches {}",
            session.client.base(),
            session.agent_name,
            ids.join(", ")
        );
        println!(
            "hilt agent cloud: serving {} for {}",
            ids.join(", "),
            session.client.base()
        );
    }

    let beats = CancelToken::new();
    let hb = {
        let (s, beats) = (session.clone(), beats.clone());
        std::thread::spawn(move || heartbeats(&s, &beats))
    };
    {
        let s = session.clone();
        // Not joined: a long-poll in flight may take the server's whole wait to return.
        std::thread::spawn(move || poll(&s));
    }
    {
        // Not joined either: a self-test in progress finishes on its own.
        let (s, beats) = (session.clone(), beats.clone());
        std::thread::spawn(move || retest(&s, &beats));
    }

    // Until a signal or a fatal error.
    while !stop.token.wait_timeout(Duration::from_secs(3600)) {}
    session.cancel_all();
    {
        let mut slots = session.slots();
        while slots.iter().any(|s| s.run.is_some()) {
            slots = session
                .idle
                .wait_timeout(slots, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
            // A job started by a poll that was in flight when the stop came.
            for r in slots.iter().filter_map(|s| s.run.as_ref()) {
                r.cancel.cancel();
            }
        }
    }
    if !stop.is_fatal() {
        let _ = session.sync();
    }
    beats.cancel();
    let _ = hb.join();
    let fatal = stop.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match (fatal, stop.signalled()) {
        (Some(why), _) => {
            eprintln!("error: {why}");
            exit::USAGE
        }
        (None, Some(sig)) => {
            tracing::info!("stopped by signal {sig}");
            128 + sig
        }
        (None, None) => 0,
    }
}

/// A failing bench is self-tested again, while idle, with back-off (`retest`, doubling to
/// ten minutes, jittered); when it passes it is synced and the server schedules on it again.
fn retest(s: &Arc<Session>, beats: &CancelToken) {
    let n = s.slots().len();
    let mut backoff = vec![Backoff::new(s.settings.retest, Duration::from_secs(600)); n];
    let mut next: Vec<Instant> = (0..n)
        .map(|i| Instant::now() + backoff[i].next_delay())
        .collect();
    while !beats.wait_timeout(Duration::from_millis(250)) {
        for i in 0..n {
            let due = {
                let slots = s.slots();
                let slot = &slots[i];
                let failing = slot.entry.health["status"] == "failing";
                if !failing {
                    backoff[i].reset();
                }
                (failing && slot.run.is_none() && Instant::now() >= next[i])
                    .then(|| (slot.entry.reg.id.clone(), slot.entry.path.clone()))
            };
            let Some((id, path)) = due else {
                continue;
            };
            let (health, report) = crate::registry::health_check(&s.settings.agent, &id, &path);
            let status = health["status"].as_str().unwrap_or("unknown").to_string();
            {
                let mut slots = s.slots();
                slots[i].entry.health = health;
                slots[i].entry.report = report;
            }
            if status == "failing" {
                next[i] = Instant::now() + backoff[i].next_delay();
                tracing::info!(
                    "bench {id}: still failing its self-test; next try in {:?}",
                    next[i] - Instant::now()
                );
            } else {
                tracing::info!("bench {id}: self-test {status}: back in service");
                s.sync_soon();
            }
        }
    }
}

fn heartbeats(s: &Arc<Session>, beats: &CancelToken) {
    let mut n: u32 = 0;
    let mut failing = false;
    while !beats.wait_timeout(s.settings.heartbeat) {
        match s.heartbeat() {
            Ok(reply) => {
                if failing {
                    tracing::info!("the server answers heartbeats again");
                    failing = false;
                }
                for id in &reply.cancel_run_ids {
                    s.cancel_run(id);
                }
            }
            Err(e @ CallError::Auth { .. }) => s.fail(&e),
            Err(e) => {
                if !failing {
                    tracing::warn!("heartbeat failed (the run keeps going; retrying): {e}");
                }
                failing = true;
            }
        }
        n = n.wrapping_add(1);
        if n.is_multiple_of(SYNC_EVERY) && !failing && !s.stop.is_fatal() {
            s.sync_soon();
        }
    }
}

fn poll(s: &Arc<Session>) {
    let mut backoff = Backoff::network();
    while !s.stop.is_stopping() {
        let asked = Instant::now();
        match s.client.next() {
            Ok(next) => {
                backoff.reset();
                match next.assignment {
                    Some(a) if s.stop.is_stopping() => s.refuse(&a, "the agent is stopping"),
                    Some(a) => s.start(a),
                    // A backend that does not long-poll answers at once: pace it.
                    None if asked.elapsed() < Duration::from_millis(500) => {
                        s.stop.token.wait_timeout(s.settings.poll_interval);
                    }
                    None => {}
                }
            }
            Err(e @ CallError::Auth { .. }) => s.fail(&e),
            Err(e) => {
                let wait = backoff.next_delay();
                if backoff.worth_logging() {
                    tracing::warn!("assignment poll failed, retrying in {wait:?}: {e}");
                }
                s.stop.token.wait_timeout(wait);
            }
        }
    }
}
