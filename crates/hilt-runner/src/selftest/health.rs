//! Health status from checks, and the compact health document the agent serves.

use serde_json::{Value, json};

use super::Check;

/// failing > degraded > unknown > healthy (spec §1.4).
pub fn derive_status(checks: &[Check]) -> &'static str {
    if checks
        .iter()
        .any(|c| c.required && c.status == "fail" && matches!(c.severity, "error" | "critical"))
    {
        "failing"
    } else if checks
        .iter()
        .any(|c| c.status == "warn" || c.status == "fail")
    {
        "degraded"
    } else if checks.is_empty() {
        "unknown"
    } else {
        "healthy"
    }
}

pub fn summary_text(status: &str, optional_issues: usize, failing: usize) -> String {
    match status {
        "healthy" => "Bench infrastructure looks healthy.".into(),
        "degraded" => {
            format!("Bench is usable but has {optional_issues} warning(s) or optional issue(s).")
        }
        "failing" => format!("Bench has {failing} failing required check(s)."),
        _ => "Bench health is not known.".into(),
    }
}

/// The compact form (spec §2) of a full report.
pub fn compact(
    report: &Value,
    log_dir: Option<&str>,
    bench_id: Option<&str>,
    options: Value,
) -> Value {
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    let pick = |status: &str| -> Vec<Value> {
        checks
            .iter()
            .filter(|c| c["status"] == status)
            .take(8)
            .cloned()
            .collect()
    };
    let mut h = json!({
        "schema_version": "benchci.diagnostics.v1",
        "status": report["health_status"],
        "checked_at": report["checked_at"],
        "summary": report["summary"],
        "counts": report["counts"],
        "failing_checks": pick("fail"),
        "warning_checks": pick("warn"),
        "bench_path": report["bench"]["path"],
        "options": options,
    });
    if let Some(d) = log_dir {
        h["log_dir"] = d.into();
        h["report_path"] = format!("{d}/self-test-summary.json").into();
    }
    if let Some(id) = bench_id {
        h["bench_id"] = id.into();
    }
    h
}

/// Health before the first check ran.
pub fn unknown_health(reason: &str) -> Value {
    json!({"schema_version": "benchci.diagnostics.v1", "status": "unknown", "checked_at": null, "summary": reason,
           "counts": {"passed": 0, "warnings": 0, "failed": 0, "skipped": 0, "total": 0},
           "failing_checks": [], "warning_checks": []})
}
