//! Printing verdicts, failures and diagnostics for people.

use hilt_model::Diagnostic;
use hilt_model::run::{Failure, RunResults, RunStatus};

pub fn diagnostics(kind: &str, diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{kind}: {d}");
    }
}

pub fn failure(f: &Failure) {
    eprintln!(
        "  {} — likely source: {} ({})",
        f.title,
        f.source.label(),
        f.category.as_str()
    );
    if let Some(t) = &f.failed_step.test_name {
        eprintln!(
            "  at test \"{t}\", step {} ({})",
            f.failed_step.step_index.unwrap_or(0),
            f.failed_step.step_type.as_deref().unwrap_or("?")
        );
    }
    eprintln!("  {}", f.message);
    eprintln!("  why: {}", f.explanation);
    if !f.suggestions.is_empty() {
        eprintln!("  check:");
        for s in &f.suggestions {
            eprintln!("    - {s}");
        }
    }
    for (k, v) in &f.artifacts {
        if let Some(p) = v.as_str() {
            eprintln!("  {k}: {p}");
        }
    }
}

/// The final verdict block.
pub fn verdict(r: &RunResults, dir: &std::path::Path) {
    let word = match r.status {
        RunStatus::Passed => "PASSED",
        RunStatus::Failed => "FAILED",
        RunStatus::Error => "ERROR",
        RunStatus::Cancelled => "CANCELLED",
    };
    let what = if r.suite.is_empty() {
        "run".to_string()
    } else {
        format!("{} on {}", r.suite, r.bench)
    };
    eprintln!();
    eprintln!(
        "{word}  {what}: {} passed, {} failed, {} total in {:.2} s",
        r.summary.passed, r.summary.failed, r.summary.total, r.duration_s
    );
    if let Some(f) = &r.failure {
        failure(f);
        if let Some(diags) = f.details.get("diagnostics").and_then(|d| d.as_array())
            && diags.len() > 1
        {
            eprintln!("  all configuration errors:");
            for d in diags {
                let s: Option<Diagnostic> = serde_json::from_value(d.clone()).ok();
                if let Some(d) = s {
                    eprintln!("    {d}");
                }
            }
        }
    }
    eprintln!("results: {}", dir.join("results.json").display());
    if r.failure.is_some() {
        eprintln!("summary: {}", dir.join("recovery_summary.md").display());
    }
}
