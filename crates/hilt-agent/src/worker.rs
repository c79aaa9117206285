//! Executes one run on a blocking thread: preparing → running → uploading_artifacts →
//! done | failed | cancelled, with the runner's events forwarded into the agent's log.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use hilt_model::run::{Event, EventKind, RunResults, RunStatus};
use hilt_runner::{Observer, RunOptions};

use crate::record::RunState;
use crate::state::Agent;

/// Forwards the runner's events into the agent's log, except its final event: that one is
/// folded into the agent's own (which adds `exit_code` and the evidence summary), so the log
/// holds exactly one final event.
struct Forward<'a> {
    agent: &'a Agent,
    run_id: &'a str,
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
        self.agent.emit(
            self.run_id,
            &e.event_type,
            e.message.clone(),
            e.data.clone(),
        );
    }
}

pub fn execute(agent: &Arc<Agent>, run_id: &str) {
    let dir = agent.settings.run_dir(run_id);
    let Some((rec, cancel, plan)) = agent.runs().map.get_mut(run_id).and_then(|e| {
        let rec = e.rec.as_deref().cloned()?;
        e.live
            .as_mut()
            .map(|l| (rec, l.cancel.clone(), l.plan.take()))
    }) else {
        return;
    };
    agent.set_state(run_id, RunState::Preparing, |_| {});
    agent.emit(run_id, "run.preparing", None, Map::new());
    let refusal = policy_refusal(agent, &rec, &dir, plan.as_ref());
    let mut fwd = Forward {
        agent,
        run_id,
        started: false,
        runner_final: None,
    };
    let watchdog =
        crate::limits::RunWatchdog::start(&cancel, crate::limits::current(agent).max_run_time_s);
    let outcome = if let Some(why) = refusal {
        Err(why)
    } else {
        agent.set_state(run_id, RunState::Running, |r| {
            r.started_at = Some(hilt_model::run::now())
        });
        let opts = RunOptions {
            bench: dir.join("bench.yaml"),
            suite: dir.join("suite.yaml"),
            artifact: rec.artifact.as_ref().map(|a| dir.join(a)),
            skip_flash: rec.skip_flash,
            verbose: rec.verbose,
            results_dir: Some(dir.join("results")),
            run_id: Some(run_id.to_string()),
            lock_config: agent.settings.lock_config.clone(),
            // Synced below with the terminal record, in one batch.
            defer_sync: true,
            ..RunOptions::default()
        };
        match plan {
            Some(plan) => hilt_runner::run_plan(plan, &opts, &mut fwd, &cancel),
            // Recovered after a restart: planned again from the run's files.
            None => hilt_runner::run(&opts, &mut fwd, &cancel),
        }
        .map_err(|e| e.to_string())
    };
    // Every run that left the queue has exactly one `run.started` (the runner's, with its
    // details, or this one when the runner never got that far).
    if !fwd.started {
        agent.emit(run_id, EventKind::RUN_STARTED, None, Map::new());
    }
    let runner_final = fwd.runner_final.take().unwrap_or_default();
    agent.set_state(run_id, RunState::UploadingArtifacts, |_| {});
    agent.emit(run_id, "run.uploading_artifacts", None, Map::new());
    let signal = agent
        .runs()
        .map
        .get(run_id)
        .and_then(|e| e.live.as_ref())
        .and_then(|l| l.cancel_signal);
    let unsynced = outcome
        .as_ref()
        .map(|o| o.unsynced.clone())
        .unwrap_or_default();
    let evidence = outcome
        .as_ref()
        .ok()
        .map(|o| evidence_summary(&o.results.evidence, rec.bench_id.as_deref()));
    let v = match outcome {
        Err(why) => Verdict {
            state: RunState::Failed,
            exit_code: None,
            error: Some(why),
            failure: None,
        },
        Ok(o) => verdict(&o.results, o.exit_code, signal),
    };
    // Over the agent's maximum run time: failed with RUN_TIMEOUT, not "cancelled".
    let v = match watchdog.timeout_failure() {
        Some(f) => Verdict {
            state: RunState::Failed,
            exit_code: Some(hilt_runner::classify::exit::RUN_ERROR),
            error: Some(f.summary()),
            failure: Some(serde_json::to_value(&f).unwrap_or_default()),
        },
        None => v,
    };
    drop(watchdog);

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
    let kind = crate::record::terminal_kind(state);
    let message = error.clone();
    agent.finish_durable(
        run_id,
        state,
        |r| {
            r.finished_at = Some(hilt_model::run::now());
            r.exit_code = exit_code;
            r.error = error;
            r.failure = failure;
        },
        &unsynced,
        kind,
        message,
        data,
    );
    agent.metrics.finished(state);
    agent.runs().busy.retain(|_, v| v != run_id);
    agent.wake.notify_one();
    crate::retention::prune(agent);
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
