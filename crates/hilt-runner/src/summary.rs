//! The human and machine summaries written at the end of a run: status alerts with the
//! next action, recovery_summary.md and run_manifest.json.

use std::path::Path;

use serde_json::{Value, json};

use hilt_model::Diagnostic;
use hilt_model::run::{Alert, Category, RunResults, RunStatus};

/// What a person (or a program) should do next, given how the run ended.
pub fn alerts(r: &RunResults, dir: &Path) -> Vec<Alert> {
    let d = dir.display();
    let results = format!("{d}/results.json");
    let Some(f) = &r.failure else {
        return Vec::new();
    };
    let log = f
        .artifacts
        .values()
        .next()
        .and_then(Value::as_str)
        .map(str::to_string);
    let (severity, code, action, command, path) = match (r.status, f.category) {
        (RunStatus::Cancelled, _) => (
            "warning",
            "RUN_CANCELLED",
            "re-run the suite when ready".to_string(),
            None,
            Some(results),
        ),
        (_, Category::ResourceLocked) => (
            "error",
            "RESOURCE_LOCKED",
            "wait for the run that holds the resource to finish, then run again".to_string(),
            f.details
                .get("lock_path")
                .and_then(Value::as_str)
                .map(|p| format!("cat {p}")),
            f.details
                .get("lock_path")
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        (_, Category::ConfigError) => (
            "error",
            "CONFIG_ERROR",
            "fix the bench or suite file at the location shown, then validate it".to_string(),
            Some(format!(
                "hilt validate --bench {d}/inputs/bench.yaml --suite {d}/inputs/suite.yaml"
            )),
            Some(format!("{d}/inputs")),
        ),
        (RunStatus::Error, _) => (
            "error",
            "RUN_ERROR",
            format!(
                "{} ({}): {}",
                f.title,
                f.source.label(),
                f.suggestions.first().cloned().unwrap_or_default()
            ),
            log.as_ref().map(|l| format!("tail -n 50 {l}")),
            log.or(Some(results)),
        ),
        _ => (
            "warning",
            "TESTS_FAILED",
            format!(
                "read why the first test failed ({}): {}",
                f.source.label(),
                f.title
            ),
            log.as_ref().map(|l| format!("tail -n 50 {l}")),
            log.or(Some(results)),
        ),
    };
    vec![Alert {
        severity: severity.into(),
        code: code.into(),
        message: f.summary(),
        next_action: action,
        next_command: command,
        next_path: path,
    }]
}

pub fn recovery_markdown(r: &RunResults, alerts: &[Alert], diags: &[Diagnostic]) -> String {
    let mut s = format!(
        "# Run summary: {} on {}\n\n- status: **{}**\n- tests: {} passed, {} failed, {} in the suite\n- started: {}\n- finished: {} ({} s)\n- results: {}/results.json\n",
        if r.suite.is_empty() {
            "(suite not loaded)"
        } else {
            &r.suite
        },
        if r.bench.is_empty() {
            "(bench not loaded)"
        } else {
            &r.bench
        },
        r.status.as_str(),
        r.summary.passed,
        r.summary.failed,
        r.summary.total,
        r.started_at,
        r.finished_at,
        r.duration_s,
        r.results_dir
    );
    if let Some(f) = &r.failure {
        s.push_str(&format!(
            "\n## What went wrong\n\n**{}** — likely source: **{}** (`{}`)\n\n{}\n\n{}\n",
            f.title,
            f.source.label(),
            f.category.as_str(),
            f.message,
            f.explanation
        ));
        if let Some(t) = &f.failed_step.test_name {
            s.push_str(&format!(
                "\nFailed at test `{t}`, step {} (`{}`).\n",
                f.failed_step.step_index.unwrap_or(0),
                f.failed_step.step_type.as_deref().unwrap_or("?")
            ));
        }
        s.push_str("\n## Checks\n\n");
        for c in &f.suggestions {
            s.push_str(&format!("- {c}\n"));
        }
        if !f.artifacts.is_empty() {
            s.push_str("\n## Evidence\n\n");
            for (k, v) in &f.artifacts {
                s.push_str(&format!("- {k}: {}\n", v.as_str().unwrap_or_default()));
            }
        }
    }
    if !diags.is_empty() {
        s.push_str("\n## Configuration errors\n\n");
        for d in diags {
            s.push_str(&format!("- {d}\n"));
        }
    }
    for a in alerts {
        s.push_str(&format!("\n## Next\n\n{}\n", a.next_action));
        if let Some(c) = &a.next_command {
            s.push_str(&format!("\n    {c}\n"));
        }
    }
    if r.failure.is_none() {
        s.push_str("\nNothing to recover: every test passed.\n");
    }
    s
}

pub fn run_manifest(r: &RunResults, dir: &Path, run_id: &str) -> Value {
    let rel = |p: &str| dir.join(p).exists().then(|| p.to_string());
    let mut logs: Vec<String> = crate::rundir::manifest::list_files(dir, &[])
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.starts_with("logs/"))
        .collect();
    logs.sort();
    json!({
        "schema_version": "hilt.run_manifest.v1",
        "run_id": run_id,
        "status": r.status.as_str(),
        "results_dir": dir.display().to_string(),
        "documents": {
            "results_json": rel("results.json"), "evidence_json": rel("evidence.json"), "metadata_json": rel("metadata.json"),
            "evidence_html": rel("evidence.html"), "status_json": rel("status.json"), "recovery_summary": rel("recovery_summary.md"),
            "manifest_json": "manifest.json", "artifact_manifest_json": "artifact_manifest.json",
        },
        "ledgers": {"events": rel("events.jsonl"), "command_ledger": rel("command_ledger.jsonl"), "transfer_ledger": rel("transfer_ledger.jsonl")},
        "inputs": {"bench_yaml": rel("inputs/bench.yaml"), "suite_yaml": rel("inputs/suite.yaml")},
        "logs": logs,
    })
}
