//! `hilt runs status DIR`: what a run directory says, for people and programs.

use std::path::Path;

use anyhow::Context;
use hilt_model::run::RunStatusSnapshot;
use hilt_runner::classify::exit;
use serde_json::Value;

/// The exit code of `hilt runs status`: a finished run's own exit code (0 passed, 1 tests
/// failed, 3/4/5 errors, 130 cancelled), 0 while it is running with a live heartbeat, and
/// 5 (`RUN_ERROR`) when it stalled (its process is gone or its heartbeat is stale), so a
/// script that polls a run directory sees every non-passing outcome as non-zero.
fn status_exit(snap: &RunStatusSnapshot) -> i32 {
    if snap.monitoring.state == "stalled" {
        return exit::RUN_ERROR;
    }
    match snap.exit_code {
        Some(code) => code,
        None => match snap.state.as_str() {
            "running" => exit::PASSED,
            "passed" => exit::PASSED,
            "failed" => exit::TESTS_FAILED,
            "cancelled" => exit::INTERRUPTED,
            _ => exit::RUN_ERROR,
        },
    }
}

pub fn status(dir: &Path, json: bool) -> anyhow::Result<i32> {
    let status_path = dir.join("status.json");
    if !status_path.is_file() {
        eprintln!(
            "error: {} is not a hilt run directory (no status.json)",
            dir.display()
        );
        return Ok(exit::CONFIG_ERROR);
    }
    let text = std::fs::read_to_string(&status_path)
        .with_context(|| format!("reading {}", status_path.display()))?;
    let mut snap: RunStatusSnapshot = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid status document", status_path.display()))?;
    hilt_runner::rundir::derive_monitoring(&mut snap);
    let results: Option<Value> = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if json {
        let doc = serde_json::json!({"status": snap, "results_summary": results.as_ref().map(|r| serde_json::json!({
            "status": r["status"], "summary": r["summary"], "failure": r["failure"]}))});
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(status_exit(&snap));
    }
    println!("run {} — {}", snap.run_id, snap.state);
    println!("  directory: {}", snap.results_dir);
    println!(
        "  monitoring: {} (pid {}, last heartbeat {})",
        snap.monitoring.state,
        snap.monitoring.pid,
        snap.monitoring
            .last_heartbeat_at
            .as_deref()
            .unwrap_or("never")
    );
    println!("  phase: {}", snap.current_phase.as_str());
    for p in &snap.phases {
        println!(
            "    {:<10} {:<8} {}",
            p.phase.as_str(),
            p.state,
            p.detail.as_deref().unwrap_or("")
        );
    }
    println!(
        "  tests: {} passed, {} failed, {} total",
        snap.tests_passed, snap.tests_failed, snap.tests_total
    );
    if let Some(t) = &snap.current_test {
        println!(
            "  last test: {t}{}",
            snap.current_step
                .as_deref()
                .map(|s| format!(" (step {s})"))
                .unwrap_or_default()
        );
    }
    if let Some(f) = results
        .as_ref()
        .map(|r| &r["failure"])
        .filter(|f| !f.is_null())
    {
        println!(
            "  failure: {} — likely source: {}",
            f["title"].as_str().unwrap_or(""),
            source_label(f["source"].as_str().unwrap_or(""))
        );
        println!("    {}", f["message"].as_str().unwrap_or(""));
    }
    for a in &snap.alerts {
        println!("  {}: {}", a.severity, a.message);
        println!("    next: {}", a.next_action);
        if let Some(c) = &a.next_command {
            println!("    run:  {c}");
        }
        if let Some(p) = &a.next_path {
            println!("    see:  {p}");
        }
    }
    if let Some(code) = snap.exit_code {
        println!("  exit code: {code}");
    }
    Ok(status_exit(&snap))
}

fn source_label(s: &str) -> &str {
    serde_json::from_value::<hilt_model::run::Source>(Value::String(s.to_string()))
        .map(|s| s.label())
        .unwrap_or("Unknown")
}
