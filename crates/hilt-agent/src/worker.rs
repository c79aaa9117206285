//! Executes one run on a blocking thread: preparing → running → uploading_artifacts →
//! done | failed | cancelled, with the runner's events forwarded into the agent's log.

use std::sync::Arc;

use serde_json::{Map, json};

use hilt_model::run::{Event, RunStatus};
use hilt_runner::{Observer, RunOptions};

use crate::record::RunState;
use crate::state::Agent;

struct Forward<'a> {
    agent: &'a Agent,
    run_id: &'a str,
}

impl Observer for Forward<'_> {
    fn event(&mut self, e: &Event) {
        self.agent.emit(
            self.run_id,
            &e.event_type,
            e.message.clone(),
            e.data.clone(),
        );
    }
}

pub fn execute(agent: &Arc<Agent>, run_id: &str) {
    let Some((dir, rec, cancel, plan)) = agent.runs().map.get_mut(run_id).map(|e| {
        (
            e.dir.clone(),
            e.rec.clone(),
            e.cancel.clone(),
            e.plan.take(),
        )
    }) else {
        return;
    };
    agent.set_state(run_id, RunState::Preparing, |_| {});
    agent.emit(run_id, "run.preparing", None, Map::new());
    let refusal = policy_refusal(agent, &rec, &dir);
    let watchdog =
        crate::limits::RunWatchdog::start(&cancel, crate::limits::current(agent).max_run_time_s);
    let outcome = if let Some(why) = refusal {
        Err(why)
    } else {
        agent.set_state(run_id, RunState::Running, |r| {
            r.started_at = Some(hilt_model::run::now())
        });
        agent.emit(run_id, "run.started", None, Map::new());
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
        let mut fwd = Forward { agent, run_id };
        match plan {
            Some(plan) => hilt_runner::run_plan(plan, &opts, &mut fwd, &cancel),
            // Recovered after a restart: planned again from the run's files.
            None => hilt_runner::run(&opts, &mut fwd, &cancel),
        }
        .map_err(|e| e.to_string())
    };
    agent.set_state(run_id, RunState::UploadingArtifacts, |_| {});
    agent.emit(run_id, "run.uploading_artifacts", None, Map::new());
    let signal = agent.runs().map.get(run_id).and_then(|e| e.cancel_signal);
    let unsynced = outcome
        .as_ref()
        .map(|o| o.unsynced.clone())
        .unwrap_or_default();
    let evidence = outcome
        .as_ref()
        .ok()
        .map(|o| evidence_summary(&o.results.evidence, rec.bench_id.as_deref()));
    let (state, exit_code, error, failure) = match outcome {
        Err(why) => (RunState::Failed, None, Some(why), None),
        Ok(o) => {
            let failure = o
                .results
                .failure
                .as_ref()
                .map(|f| serde_json::to_value(f).unwrap_or_default());
            let error = o.results.failure.as_ref().map(|f| f.summary());
            match o.results.status {
                RunStatus::Passed => (RunState::Done, Some(0), None, None),
                RunStatus::Cancelled => {
                    let code = match signal {
                        Some(s) if s > 0 => 128 + s,
                        _ => o.exit_code,
                    };
                    (
                        RunState::Cancelled,
                        Some(code),
                        error.or(Some("run cancelled".into())),
                        failure,
                    )
                }
                RunStatus::Failed | RunStatus::Error => {
                    let error = error.unwrap_or_else(|| {
                        format!("Run exited with non-zero exit code: {}", o.exit_code)
                    });
                    (RunState::Failed, Some(o.exit_code), Some(error), failure)
                }
            }
        }
    };
    // Over the agent's maximum run time: failed with RUN_TIMEOUT, not "cancelled".
    let (state, exit_code, error, failure) = match watchdog.timeout_failure() {
        Some(f) => (
            RunState::Failed,
            Some(hilt_runner::classify::exit::RUN_ERROR),
            Some(f.summary()),
            Some(serde_json::to_value(&f).unwrap_or_default()),
        ),
        None => (state, exit_code, error, failure),
    };
    drop(watchdog);
    let data = json!({"exit_code": exit_code, "failure": failure, "evidence": evidence})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let kind = match state {
        RunState::Done => "run.finished",
        RunState::Cancelled => "run.cancelled",
        _ => "run.failed",
    };
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
    {
        let mut runs = agent.runs();
        runs.busy.retain(|_, v| v != run_id);
        if let Some(e) = runs.map.get_mut(run_id) {
            e.events = None;
        }
    }
    agent.wake.notify_one();
}

/// Why the agent refuses to execute this run before it touches anything.
fn policy_refusal(
    agent: &Agent,
    rec: &crate::record::RunRecord,
    dir: &std::path::Path,
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
    let bench =
        hilt_model::load_bench(&dir.join("bench.yaml"), hilt_model::LoadOptions::default()).ok()?;
    bench.value.safety.external.enabled.then(|| {
        "CONFIG_ERROR: refused by agent policy: an uploaded bench may not enable run_external (set allow_uploaded_external: true in agent.yaml to allow it)".to_string()
    })
}

/// The evidence summary BenchCI agents put in their final event (agent-api spec §5).
fn evidence_summary(ev: &serde_json::Value, bench_id: Option<&str>) -> serde_json::Value {
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
