//! The human and machine summaries written at the end of a run: status alerts with the
//! next action, recovery_summary.md and run_manifest.json.

use std::path::Path;

use serde_json::{Value, json};

use hilt_model::Diagnostic;
use hilt_model::run::{Alert, Category, RunResults, RunStatus};

/// What the alerts can know beyond the results: the bench file the run read and the
/// package manager each remote host has (from the stage phase's probe).
#[derive(Debug, Clone, Default)]
pub struct AlertContext {
    pub bench: Option<String>,
    pub host_package_managers: std::collections::BTreeMap<String, String>,
}

/// What a person (or a program) should do next, given how the run ended.
pub fn alerts(r: &RunResults, dir: &Path, ctx: &AlertContext) -> Vec<Alert> {
    let d = dir.display();
    let results = format!("{d}/results.json");
    let resume = format!("hilt runs resume {d}");
    let Some(f) = &r.failure else {
        return Vec::new();
    };
    let log = f
        .artifacts
        .values()
        .next()
        .and_then(Value::as_str)
        .map(str::to_string);
    let detail = |k: &str| f.details.get(k).and_then(Value::as_str).map(str::to_string);
    let self_test = ctx
        .bench
        .as_ref()
        .map(|b| format!("hilt bench self-test --bench {b}"));
    let a = match (r.status, f.category) {
        (RunStatus::Cancelled, _) => Alert::new("warning", "RUN_CANCELLED", f.summary())
            .action("resume the run when ready: completed tests and stages are kept")
            .command(resume)
            .path(results),
        (_, Category::ResourceLocked) => {
            let mut a = Alert::new("error", "RESOURCE_LOCKED", f.summary())
                .action("wait for the run that holds the resource to finish, then run again");
            if let Some(p) = detail("lock_path") {
                a = a.command(format!("cat {p}")).path(p);
            }
            a
        }
        (_, Category::ConfigError) => Alert::new("error", "CONFIG_ERROR", f.summary())
            .action("fix the bench or suite file at the location shown, then validate it")
            .command(format!(
                "hilt validate --bench {d}/inputs/bench.yaml --suite {d}/inputs/suite.yaml"
            ))
            .path(format!("{d}/inputs")),
        (_, Category::BundleChecksumMismatch | Category::BundleUnavailable) => {
            let mut a = Alert::new("error", f.category.as_str(), f.summary())
                .action(f.suggestions.first().cloned().unwrap_or_default())
                .action("then resume the run: stages already verified are not redone")
                .command(resume);
            if let Some(file) = detail("file") {
                a.next_diagnostic_command = Some(format!("sha256sum {file}"));
            }
            a.path(format!("{d}/workflow_journal.jsonl"))
        }
        (RunStatus::Error, c) => {
            let mut a = Alert::new("error", "RUN_ERROR", f.summary())
                .action(format!(
                    "{} ({}): {}",
                    f.title,
                    f.source.label(),
                    f.suggestions.first().cloned().unwrap_or_default()
                ))
                .action("once fixed, resume the run from its first incomplete step");
            if let Some(l) = &log {
                a = a.command(format!("tail -n 50 {l}"));
            }
            a = a.command(resume);
            a = a.path(log.clone().unwrap_or(results));
            a.next_diagnostic_command = match c {
                Category::RemoteHostUnreachable
                | Category::RemoteAuthFailed
                | Category::RemoteHostKeyMismatch
                | Category::RemoteTransferFailed => self_test,
                _ => None,
            };
            a.next_install_command = missing_tool(f).and_then(|(tool, host)| match host {
                Some(h) => ctx
                    .host_package_managers
                    .get(&h)
                    .and_then(|pm| crate::workflow::pkg::install_command(pm, &tool)),
                None => crate::workflow::pkg::detect_local().and_then(|pm| {
                    crate::workflow::pkg::install_command(
                        pm,
                        crate::workflow::pkg::local_package(&tool),
                    )
                }),
            });
            a
        }
        _ => {
            let mut a = Alert::new("warning", "TESTS_FAILED", f.summary()).action(format!(
                "read why the first test failed ({}): {}",
                f.source.label(),
                f.title
            ));
            if let Some(l) = &log {
                a = a.command(format!("tail -n 50 {l}"));
            }
            if let Some(o) = detail("stdout_file") {
                a = a.path(format!("{d}/{o}"));
            }
            a = a.path(log.unwrap_or(results));
            if let Some((tool, Some(h))) = missing_tool(f) {
                a.next_install_command = ctx
                    .host_package_managers
                    .get(&h)
                    .and_then(|pm| crate::workflow::pkg::install_command(pm, &tool));
            }
            a
        }
    };
    vec![a]
}

/// A tool the failure says is missing, and the host it is missing on (`None`: here).
fn missing_tool(f: &hilt_model::run::Failure) -> Option<(String, Option<String>)> {
    let quoted = || {
        let m = &f.message;
        let start = m.find('`')? + 1;
        let end = start + m[start..].find('`')?;
        Some(m[start..end].to_string())
    };
    match f.category {
        Category::FlashToolUnavailable => quoted().map(|t| (t, None)),
        Category::RemoteHostUnreachable if f.message.contains("cannot start ssh") => {
            Some(("ssh".into(), None))
        }
        // A remote shell answers 127 for a command it cannot find.
        Category::RemoteCommandFailed if f.message.contains("exited with 127") => {
            let host = f.details.get("host").and_then(Value::as_str)?.to_string();
            let program = f
                .details
                .get("program")
                .and_then(Value::as_str)?
                .to_string();
            Some((program, Some(host)))
        }
        _ => None,
    }
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

pub fn run_manifest(status: &str, dir: &Path, run_id: &str) -> Value {
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
        "status": status,
        "results_dir": dir.display().to_string(),
        "documents": {
            "results_json": rel("results.json"), "evidence_json": rel("evidence.json"), "metadata_json": rel("metadata.json"),
            "evidence_html": rel("evidence.html"), "status_json": rel("status.json"), "recovery_summary": rel("recovery_summary.md"),
            "workflow_state": rel("workflow_state.json"), "host_inventory_snapshot": rel("host_inventory_snapshot.json"),
            "manifest_json": "manifest.json", "artifact_manifest_json": "artifact_manifest.json",
        },
        "ledgers": {"events": rel("events.jsonl"), "command_ledger": rel("command_ledger.jsonl"), "transfer_ledger": rel("transfer_ledger.jsonl"),
                    "workflow_journal": rel("workflow_journal.jsonl")},
        "inputs": {"bench_yaml": rel("inputs/bench.yaml"), "suite_yaml": rel("inputs/suite.yaml")},
        "logs": logs,
    })
}
