//! `hilt runs status DIR`: what a run directory says, for people and programs.

use std::path::Path;

use anyhow::Context;
use hilt_model::run::{Alert, RunStatusSnapshot};
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
    let dir = &hilt_runner::rundir::absolute(dir);
    let status_path = dir.join("status.json");
    if !hilt_runner::workflow::recover::is_run_dir(dir) {
        eprintln!(
            "error: {} is not a hilt run directory (no status.json, results.json or workflow journal)",
            dir.display()
        );
        return Ok(exit::CONFIG_ERROR);
    }
    // An older layout gains the files this version writes, on first touch.
    let backfilled = match std::fs::read(&status_path) {
        Ok(b) if serde_json::from_slice::<serde_json::Value>(&b).is_err() => Vec::new(),
        _ => hilt_runner::workflow::backfill::backfill(dir),
    };
    for b in &backfilled {
        eprintln!("backfilled {} from {}", b.file, b.from);
    }
    let text = std::fs::read_to_string(&status_path)
        .with_context(|| format!("reading {}", status_path.display()))?;
    let mut snap: RunStatusSnapshot = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: {} is damaged ({e}); help: hilt runs recover {} (keeps the damaged file beside the repaired one)",
                status_path.display(),
                dir.display()
            );
            return Ok(exit::RUN_ERROR);
        }
    };
    // The directory may have moved since it was written: commands name where it is now.
    snap.results_dir = dir.display().to_string();
    hilt_runner::rundir::derive_monitoring(&mut snap);
    let damaged = hilt_runner::workflow::repair::damaged_ledgers(dir);
    if !damaged.is_empty() {
        let mut a = Alert::new(
            "warning",
            "LEDGER_DAMAGED",
            format!(
                "the last line of {} is torn or unreadable",
                damaged.join(", ")
            ),
        )
        .action("repair the ledgers (the damaged originals are kept beside them)")
        .command(format!("hilt runs recover {}", dir.display()));
        for f in &damaged {
            a = a.path(dir.join(f).display().to_string());
        }
        snap.alerts.push(a);
        snap.pick_primary_alert();
    }
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
    if snap.monitoring.state == "stalled" {
        println!("  Attention: stalled");
    }
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
        if a.next_actions.is_empty() {
            println!("    next: {}", a.next_action);
        }
        for n in &a.next_actions {
            println!("    next: {n}");
        }
        match a.next_commands.is_empty() {
            true => a
                .next_command
                .iter()
                .for_each(|c| println!("    run:  {c}")),
            false => a
                .next_commands
                .iter()
                .for_each(|c| println!("    run:  {c}")),
        }
        if let Some(c) = &a.next_install_command {
            println!("    install: {c}");
        }
        if let Some(c) = &a.next_diagnostic_command {
            println!("    diagnose: {c}");
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
