//! Executes one run on a blocking thread: preparing → running → uploading_artifacts →
//! done | failed | cancelled, with the runner's events forwarded into the agent's log.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use hilt_model::run::{Event, EventKind, RunResults, RunStatus};
use hilt_runner::{Observer, RunOptions};

use crate::dispatcher::{Job, Msg};
use crate::record::{RunRecord, RunState};
use crate::runlog::RunLog;
use crate::state::Agent;

/// Forwards the runner's events into the run's log, except its final event: that one is
/// folded into the agent's own (which adds `exit_code` and the evidence summary), so the log
/// holds exactly one final event.
struct Forward<'a> {
    log: &'a RunLog,
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
        self.log
            .append(&e.event_type, e.message.clone(), e.data.clone(), |_| {});
    }
}

/// Moves the executing run to a non-terminal `state` and publishes its record through the
/// dispatcher. Not written to disk: the record on disk says `running` from the moment the
/// run leaves the queue until its final state (see [`execute`]).
fn set_state(agent: &Agent, job: &mut Job, state: RunState, f: impl FnOnce(&mut RunRecord)) {
    job.rec.status = state;
    f(&mut job.rec);
    agent
        .dispatcher
        .send(Msg::Update(Box::new(job.rec.clone())));
}

pub fn execute(agent: &Arc<Agent>, mut job: Job) {
    let run_id = job.rec.run_id.clone();
    let dir = agent.settings.run_dir(&run_id);
    // The one record write between submission and the end: the run left the queue, so a
    // crash from here on is reconciled by recovery, never queued again. The API shows
    // preparing → running → uploading_artifacts from memory meanwhile.
    let mut on_disk = job.rec.clone();
    on_disk.status = RunState::Running;
    on_disk.started_at = Some(hilt_model::run::now());
    job.log.save(&on_disk);
    job.log.append("run.preparing", None, Map::new(), |_| {});
    let refusal = policy_refusal(agent, &job.rec, &dir, job.plan.as_ref());
    let log = job.log.clone();
    let mut fwd = Forward {
        log: &log,
        started: false,
        runner_final: None,
    };
    let outcome = if let Some(why) = refusal {
        Err(why)
    } else {
        set_state(agent, &mut job, RunState::Running, |r| {
            r.started_at = Some(hilt_model::run::now())
        });
        let opts = RunOptions {
            bench: dir.join("bench.yaml"),
            suite: dir.join("suite.yaml"),
            artifact: job.rec.artifact.as_ref().map(|a| dir.join(a)),
            skip_flash: job.rec.skip_flash,
            verbose: job.rec.verbose,
            results_dir: Some(dir.join("results")),
            run_id: Some(run_id.clone()),
            lock_config: agent.settings.lock_config.clone(),
            // Synced below with the terminal record, in one batch.
            defer_sync: true,
            ..RunOptions::default()
        };
        let cancel = &job.cancel.token;
        match job.plan.take() {
            Some(plan) => hilt_runner::run_plan(plan, &opts, &mut fwd, cancel),
            // Recovered after a restart: planned again from the run's files.
            None => hilt_runner::run(&opts, &mut fwd, cancel),
        }
        .map_err(|e| e.to_string())
    };
    // Every run that left the queue has exactly one `run.started` (the runner's, with its
    // details, or this one when the runner never got that far).
    if !fwd.started {
        log.append(EventKind::RUN_STARTED, None, Map::new(), |_| {});
    }
    let runner_final = fwd.runner_final.take().unwrap_or_default();
    set_state(agent, &mut job, RunState::UploadingArtifacts, |_| {});
    log.append("run.uploading_artifacts", None, Map::new(), |_| {});
    let unsynced = outcome
        .as_ref()
        .map(|o| o.unsynced.clone())
        .unwrap_or_default();
    let evidence = outcome
        .as_ref()
        .ok()
        .map(|o| evidence_summary(&o.results.evidence, job.rec.bench_id.as_deref()));
    let v = match outcome {
        Err(why) => Verdict {
            state: RunState::Failed,
            exit_code: None,
            error: Some(why),
            failure: None,
        },
        Ok(o) => verdict(&o.results, o.exit_code, job.cancel.signal()),
    };
    // Over the agent's maximum run time: failed with RUN_TIMEOUT, not "cancelled".
    let v = if job.cancel.timed_out() {
        let f = crate::limits::run_timeout_failure(job.limit_s);
        Verdict {
            state: RunState::Failed,
            exit_code: Some(hilt_runner::classify::exit::RUN_ERROR),
            error: Some(f.summary()),
            failure: Some(serde_json::to_value(&f).unwrap_or_default()),
        }
    } else {
        v
    };

    let Verdict {
        state,
        exit_code,
        error,
        failure,
    } = v;
    let mut data = runner_final;
    data.insert("exit_code".into(), json!(exit_code));
    data.insert("failure".into(), failure.clone().unwrap_or(Value::Null));
    data.insert("evidence".into(), evidence.unwrap_or(Value::Null));
    let mut rec = job.rec;
    rec.status = state;
    rec.finished_at = Some(hilt_model::run::now());
    rec.exit_code = exit_code;
    rec.error = error.clone();
    rec.failure = failure;
    rec.current_test = log.current().0.or(rec.current_test);
    // Counted before the terminal state is published: a client that sees the run ended
    // and then reads /metrics finds it counted.
    agent.metrics.finished(state);
    log.finish(
        &dir,
        rec,
        Some(&unsynced),
        crate::record::terminal_kind(state),
        error,
        data,
        |rec, saved| agent.dispatcher.finished_blocking(rec, saved),
    );
}

/// How a run ended, as the agent records it.
pub struct Verdict {
    pub state: RunState,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub failure: Option<Value>,
}

/// The agent's verdict from the runner's results (`exit_code` is the runner's; a run
/// cancelled by a signal to the agent reports 128+signal).
pub fn verdict(r: &RunResults, exit_code: i32, signal: Option<i32>) -> Verdict {
    let failure = r
        .failure
        .as_ref()
        .map(|f| serde_json::to_value(f).unwrap_or_default());
    let error = r.failure.as_ref().map(|f| f.summary());
    match r.status {
        RunStatus::Passed => Verdict {
            state: RunState::Done,
            exit_code: Some(0),
            error: None,
            failure: None,
        },
        RunStatus::Cancelled => Verdict {
            state: RunState::Cancelled,
            exit_code: Some(match signal {
                Some(s) if s > 0 => 128 + s,
                _ => exit_code,
            }),
            error: error.or(Some("run cancelled".into())),
            failure,
        },
        RunStatus::Failed | RunStatus::Error => Verdict {
            state: RunState::Failed,
            exit_code: Some(exit_code),
            error: Some(
                error.unwrap_or_else(|| format!("Run exited with non-zero exit code: {exit_code}")),
            ),
            failure,
        },
    }
}

/// Why the agent refuses to execute this run before it touches anything.
fn policy_refusal(
    agent: &Agent,
    rec: &crate::record::RunRecord,
    dir: &std::path::Path,
    plan: Option<&hilt_runner::Plan>,
) -> Option<String> {
    if rec.mode != "uploaded" {
        return None;
    }
    let allow_external = agent
        .registry()
        .config
        .as_ref()
        .is_some_and(|c| c.allow_uploaded_external);
    if allow_external {
        return None;
    }
    // The plan's bench when the run has one; a run recovered after a restart is read again.
    let enabled = match plan {
        Some(p) => p.bench().safety.external.enabled,
        None => {
            hilt_model::load_bench(&dir.join("bench.yaml"), hilt_model::LoadOptions::default())
                .ok()?
                .value
                .safety
                .external
                .enabled
        }
    };
    enabled.then(|| {
        "CONFIG_ERROR: refused by agent policy: an uploaded bench may not enable run_external (set allow_uploaded_external: true in agent.yaml to allow it)".to_string()
    })
}

/// The evidence summary BenchCI agents put in their final event (agent-api spec §5).
pub fn evidence_summary(ev: &serde_json::Value, bench_id: Option<&str>) -> serde_json::Value {
    let names: Vec<&String> = ev["metrics"]
        .as_object()
        .map(|m| m.keys().take(20).collect())
        .unwrap_or_default();
    json!({
        "metrics_count": ev["metrics"].as_object().map(|m| m.len()).unwrap_or(0),
        "measurement_count": ev["measurements"].as_array().map(Vec::len).unwrap_or(0),
        "metric_names": names,
        "firmware_sha256": ev["firmware"]["sha256"], "firmware_filename": ev["firmware"]["filename"],
        "git_commit": ev["source"]["git_commit"], "git_branch": ev["source"]["git_branch"],
        "ci_provider": ev["ci"]["ci_provider"], "ci_job_url": ev["ci"]["ci_job_url"],
        "bench_id": bench_id, "bench_config_sha256": ev["bench"]["config_sha256"],
        "suite_name": ev["suite"]["name"], "suite_sha256": ev["suite"]["sha256"],
    })
}
