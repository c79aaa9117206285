//! One assignment, executed: firmware → the runner (the same `hilt_runner::run` as local
//! and agent runs) with its events streamed to the server while it runs → the agent's one
//! final event → the results archive → completion.
//!
//! Events go through an [`EventBuffer`] and a sender thread: a server restart or a network
//! blip stalls the sender, never the run; unsent events wait (bounded) and are sent again
//! with the same `seq`s, which the server stores once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hilt_api::{Assignment, CompleteRun, EventBatch, RunEvent, RunState};
use hilt_hw::CancelToken;
use hilt_model::run::{Event, EventKind};
use hilt_runner::{Observer, RunOptions};
use serde_json::{Map, Value, json};

use super::buffer::EventBuffer;
use super::client::CallError;
use super::{Backoff, Session, firmware};

/// Most events waiting for the server per run; beyond, the oldest are dropped (and said so).
const BUFFER_CAP: usize = 100_000;
/// Most events per call, and about the most JSON (the server takes 8 MiB bodies).
const BATCH: usize = 500;
const BATCH_BYTES: usize = 2 << 20;

/// The bench a job runs on.
pub struct BenchRef {
    pub id: String,
    pub path: PathBuf,
}

/// The runner's events into the buffer, except its final event: folded into the agent's
/// own (with `exit_code` and the evidence summary), as the local agent does, so the run has
/// exactly one `run.started` and one final event.
struct Forward<'a> {
    buf: &'a EventBuffer,
    started: bool,
    runner_final: Option<Map<String, Value>>,
}

impl Observer for Forward<'_> {
    fn event(&mut self, e: &Event) {
        match e.event_type.as_str() {
            EventKind::RUN_FINISHED | EventKind::RUN_FAILED | EventKind::RUN_CANCELLED => {
                self.runner_final = Some(e.data.clone());
                return;
            }
            EventKind::RUN_STARTED if self.started => return,
            EventKind::RUN_STARTED => self.started = true,
            _ => {}
        }
        let mut e = e.clone();
        e.seq = 0;
        self.buf.push(e);
    }
}

fn event(kind: &str, message: Option<String>, data: Map<String, Value>) -> RunEvent {
    RunEvent {
        seq: 0,
        timestamp: hilt_model::run::now(),
        event_type: kind.into(),
        message,
        data,
    }
}

pub fn execute(
    s: &Session,
    bench: &BenchRef,
    a: Assignment,
    cancel: &CancelToken,
    by_server: &Arc<AtomicBool>,
) {
    let run_id = a.run_id.clone();
    let fence = a.lease.fencing_token;
    let dir = s.settings.agent.work_dir.join("cloud-runs").join(&run_id);
    let buf = EventBuffer::new(BUFFER_CAP);
    // Set when the server refuses reports on this run (a lost or stale lease): nothing more
    // is sent and the run is stopped.
    let lost = AtomicBool::new(false);
    let started_at = hilt_model::run::now();
    s.sync_soon();

    std::thread::scope(|sc| {
        let sender = sc.spawn(|| send_events(s, &run_id, fence, &buf, cancel, by_server, &lost));
        buf.push(event("run.preparing", None, Map::new()));
        let mut started = false;
        let outcome = prepare(&a, &dir, &buf).and_then(|artifact| {
            let opts = RunOptions {
                bench: bench.path.clone(),
                suite: dir.join("suite.yaml"),
                artifact,
                skip_flash: a.skip_flash,
                verbose: a.verbose,
                results_dir: Some(dir.join("results")),
                run_id: Some(run_id.clone()),
                lock_config: s.settings.agent.lock_config.clone(),
                ..RunOptions::default()
            };
            let mut fwd = Forward {
                buf: &buf,
                started: false,
                runner_final: None,
            };
            let out = hilt_runner::run(&opts, &mut fwd, cancel).map_err(|e| e.to_string());
            started = fwd.started;
            out.map(|o| (o, fwd.runner_final.take().unwrap_or_default()))
        });
        // Exactly one `run.started`: the runner's, or this one when it never got that far
        // (a firmware that could not be fetched, a run directory that could not be made).
        if !started {
            buf.push(event(EventKind::RUN_STARTED, None, Map::new()));
        }
        let signal = if by_server.load(Ordering::SeqCst) {
            None
        } else {
            s.stop.signalled()
        };
        let (v, evidence, mut data) = match &outcome {
            Ok((o, runner_final)) => (
                crate::worker::verdict(&o.results, o.exit_code, signal),
                Some(crate::worker::evidence_summary(
                    &o.results.evidence,
                    Some(&bench.id),
                )),
                runner_final.clone(),
            ),
            Err(why) => (
                crate::worker::Verdict {
                    state: RunState::Failed,
                    exit_code: None,
                    error: Some(why.clone()),
                    failure: None,
                },
                None,
                Map::new(),
            ),
        };
        data.insert("exit_code".into(), json!(v.exit_code));
        data.insert("failure".into(), v.failure.clone().unwrap_or(Value::Null));
        data.insert("evidence".into(), evidence.clone().unwrap_or(Value::Null));
        buf.push(event(
            crate::record::terminal_kind(v.state),
            v.error.clone(),
            data,
        ));
        buf.close();
        tracing::info!(
            "run {run_id}: {} (exit code {:?}){}",
            v.state.as_str(),
            v.exit_code,
            v.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );

        // The results archive, streamed from a file written next to the results.
        let results = dir.join("results");
        if results.is_dir() && !lost.load(Ordering::SeqCst) {
            let zip = dir.join("artifacts.zip");
            match hilt_runner::rundir::zip::write_zip_file(&results, &zip) {
                Ok(()) => {
                    let up = s.retry("results upload", s.settings.report_timeout, || {
                        s.client.artifacts(&run_id, fence, &zip)
                    });
                    if let Err(e) = up {
                        tracing::warn!("run {run_id}: results archive not uploaded: {e}");
                    }
                }
                Err(e) => tracing::warn!("run {run_id}: cannot write the results archive: {e}"),
            }
        }
        if sender.join().is_err() {
            tracing::error!("run {run_id}: the event sender panicked");
        }
        if buf.dropped() > 0 {
            tracing::warn!(
                "run {run_id}: {} events were dropped (buffer full)",
                buf.dropped()
            );
        }
        if lost.load(Ordering::SeqCst) {
            tracing::warn!(
                "run {run_id}: not completed: the server no longer accepts reports on it"
            );
            return;
        }
        let c = CompleteRun {
            status: match v.state {
                RunState::Done => "done",
                _ => "failed",
            }
            .into(),
            exit_code: v.exit_code,
            error: v.error,
            started_at: Some(started_at),
            finished_at: Some(hilt_model::run::now()),
            failure: v.failure,
            evidence,
        };
        match s.retry("completion", s.settings.report_timeout, || {
            s.client.complete(&run_id, fence, &c)
        }) {
            Ok(()) => tracing::info!("run {run_id}: completed"),
            // The server recorded the cancel itself.
            Err(CallError::Cancelled(_)) => tracing::info!("run {run_id}: completed (cancelled)"),
            Err(e) => tracing::warn!("run {run_id}: completion not recorded: {e}"),
        }
    });
}

/// The run directory with the suite and the firmware; returns the firmware path.
fn prepare(a: &Assignment, dir: &Path, buf: &EventBuffer) -> Result<Option<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(dir.join("suite.yaml"), &a.suite_yaml)
        .map_err(|e| format!("cannot write the suite into {}: {e}", dir.display()))?;
    firmware::materialise(a, dir, &mut |kind, data| buf.push(event(kind, None, data)))
}

/// Sends the run's events until the buffer is closed and drained. Network errors and 5xx
/// are retried with back-off (the run keeps going meanwhile); once the run is over, for at
/// most the report timeout.
fn send_events(
    s: &Session,
    run_id: &str,
    fence: i64,
    buf: &EventBuffer,
    cancel: &CancelToken,
    by_server: &AtomicBool,
    lost: &AtomicBool,
) {
    let mut backoff = Backoff::network();
    let mut over: Option<Instant> = None;
    loop {
        if buf.drained() || s.dead.is_cancelled() {
            return;
        }
        let Some(batch) = buf.batch(BATCH, BATCH_BYTES, Duration::from_millis(500)) else {
            continue;
        };
        if lost.load(Ordering::SeqCst) {
            buf.ack();
            continue;
        }
        let n = batch.len();
        match s
            .client
            .events(run_id, fence, &EventBatch { events: batch })
        {
            Ok(()) => {
                if backoff.attempts() > 0 {
                    tracing::info!("run {run_id}: events reach the server again");
                }
                backoff.reset();
                buf.ack();
            }
            Err(CallError::Retry(m)) => {
                if buf.is_closed() {
                    let since = *over.get_or_insert_with(Instant::now);
                    if since.elapsed() > s.settings.report_timeout {
                        tracing::warn!("run {run_id}: gave up sending {} events: {m}", buf.len());
                        return;
                    }
                }
                let wait = backoff.next_delay();
                if backoff.worth_logging() {
                    tracing::warn!(
                        "run {run_id}: sending {n} events failed, kept for retry ({} waiting): {m}",
                        buf.len()
                    );
                }
                s.dead.wait_timeout(wait);
            }
            Err(CallError::Cancelled(m)) => {
                tracing::info!("run {run_id}: cancelled on the server: {m}");
                by_server.store(true, Ordering::SeqCst);
                cancel.cancel();
                // The server takes no more events for a cancelled run.
                buf.ack();
            }
            // The batch itself is refused (too large, say): sent again stripped to the
            // event types under the same seqs; the run goes on.
            Err(CallError::Refused { status, message })
                if status != 404
                    && status != 409
                    && buf.strip_in_flight(&format!(
                        "event content refused by the server (HTTP {status})"
                    )) =>
            {
                tracing::warn!(
                    "run {run_id}: the server refused {n} events (HTTP {status}: {message}); sending them without their data"
                );
            }
            Err(CallError::Refused { status, message }) => {
                tracing::warn!(
                    "run {run_id}: the server refuses its events (HTTP {status}: {message}); stopping the run"
                );
                lost.store(true, Ordering::SeqCst);
                cancel.cancel();
                buf.ack();
            }
            Err(e @ CallError::Auth { .. }) => {
                s.fail(&e);
                cancel.cancel();
                return;
            }
        }
    }
}
