//! Non-destructive bench self-test (self-test-and-locks spec §1): decides whether a bench is
//! usable without running a suite. It never flashes, resets, switches relays, drives
//! outputs or sends protocol traffic; it opens hardware, reads inputs and takes readings
//! only when asked.

mod checks;
mod health;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

pub use health::{compact, derive_status, unknown_health};

/// What the self-test may touch.
#[derive(Debug, Clone, Default)]
pub struct SelfTestOptions {
    pub open_hardware: bool,
    pub read_inputs: bool,
    pub read_measurements: bool,
    /// Where `self-test.log`, `nodes/` and `resources/` go.
    pub log_dir: PathBuf,
}

/// One check record (spec §1.1); null/empty fields are omitted when serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub id: String,
    pub title: String,
    /// pass | warn | fail | skip
    pub status: &'static str,
    /// info | warning | error | critical
    pub severity: &'static str,
    pub category: Option<&'static str>,
    pub source: Option<&'static str>,
    pub message: String,
    pub suggested_fix: Option<String>,
    pub required: bool,
    pub details: Map<String, Value>,
}

impl Check {
    pub fn pass(
        id: impl Into<String>,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Check {
        Check {
            id: id.into(),
            title: title.into(),
            status: "pass",
            severity: "info",
            category: None,
            source: None,
            message: message.into(),
            suggested_fix: None,
            required: true,
            details: Map::new(),
        }
    }

    pub fn fail(
        id: impl Into<String>,
        title: impl Into<String>,
        category: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            status: "fail",
            severity: "critical",
            category: Some(category),
            source: Some(source_of(category)),
            suggested_fix: Some(fix.into()),
            ..Check::pass(id, title, message)
        }
    }

    pub fn warn(
        id: impl Into<String>,
        title: impl Into<String>,
        category: &'static str,
        message: impl Into<String>,
    ) -> Check {
        Check {
            status: "warn",
            severity: "warning",
            category: Some(category),
            source: Some(source_of(category)),
            required: false,
            ..Check::pass(id, title, message)
        }
    }

    pub fn skip(
        id: impl Into<String>,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Check {
        Check {
            status: "skip",
            required: false,
            ..Check::pass(id, title, message)
        }
    }

    pub fn optional(mut self) -> Check {
        self.required = false;
        self
    }

    pub fn detail(mut self, k: &str, v: impl Into<Value>) -> Check {
        let v = v.into();
        if !v.is_null() {
            self.details.insert(k.to_string(), v);
        }
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("title".into(), self.title.clone().into());
        m.insert("status".into(), self.status.into());
        m.insert("severity".into(), self.severity.into());
        if let Some(c) = self.category {
            m.insert("category".into(), c.into());
        }
        if let Some(s) = self.source {
            m.insert("source".into(), s.into());
        }
        if !self.message.is_empty() {
            m.insert("message".into(), self.message.clone().into());
        }
        if let Some(f) = &self.suggested_fix {
            m.insert("suggested_fix".into(), f.clone().into());
        }
        m.insert("required".into(), self.required.into());
        if !self.details.is_empty() {
            m.insert("details".into(), Value::Object(self.details.clone()));
        }
        Value::Object(m)
    }
}

fn source_of(category: &str) -> &'static str {
    match category {
        "CONFIG_ERROR" | "CONFIG_WARNING" => "configuration",
        "BENCH_SELF_TEST_FAILED" => "agent_cloud",
        _ => "bench_infrastructure",
    }
}

/// Runs the self-test of the bench file at `path` and returns the full report
/// (`benchci.diagnostics.v1`). Writes logs under `opts.log_dir` when hardware is opened.
pub fn self_test(path: &Path, opts: &SelfTestOptions) -> Value {
    let checks = checks::run(path, opts);
    report(path, opts, &checks)
}

fn report(path: &Path, _opts: &SelfTestOptions, checks: &[Check]) -> Value {
    let status = derive_status(checks);
    let count = |s: &str| checks.iter().filter(|c| c.status == s).count();
    let failed_required = checks
        .iter()
        .filter(|c| c.required && c.status == "fail")
        .count();
    let summary = health::summary_text(
        status,
        count("warn") + count("fail") - failed_required.min(count("fail")),
        failed_required,
    );
    let name = hilt_model::load_bench(path, hilt_model::LoadOptions::default())
        .ok()
        .map(|b| b.value.bench.name);
    json!({
        "schema_version": "benchci.diagnostics.v1",
        "tool": "hilt",
        "command": "bench self-test",
        "checked_at": hilt_model::run::now(),
        "bench": {"name": name, "path": std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()},
        "health_status": status,
        "summary": summary,
        "counts": {"passed": count("pass"), "warnings": count("warn"), "failed": count("fail"), "skipped": count("skip"), "total": checks.len()},
        "checks": checks.iter().map(Check::to_json).collect::<Vec<_>>(),
    })
}
