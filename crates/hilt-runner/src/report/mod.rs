//! Test reports in the formats CI systems read: JUnit XML and CTRF JSON.
//!
//! Export ([`junit_xml`], [`ctrf_json`]) is a pure function of a results.json document
//! (run-results spec §2/§3/§9) taken as a [`serde_json::Value`], so it renders any
//! results.json — hilt's or BenchCI's — and never fails: missing or oddly typed fields
//! fall back to neutral defaults. The mapping is the one proposed in spec §11.
//!
//! Import ([`parse_junit`], [`parse_ctrf`]) reads reports written by external test
//! tools for the `run_external` step, with DTDs and entity declarations refused.
//!
//! Both exporters share one reading of the document ([`RunView`]) so the JUnit and CTRF
//! renderings of a run always agree on which tests exist and how they ended.

pub mod ctrf;
pub mod import;
pub mod junit;
mod page;

pub use ctrf::ctrf_json;
pub use import::{ExternalTest, ImportError, map_ctrf_status, parse_ctrf, parse_junit};
pub use junit::junit_xml;
pub use page::evidence_html;

use hilt_model::run::{Category, Source};
use serde_json::Value;

/// Name of the synthetic test case that stands for a run error or cancellation.
pub const RUN_ERROR_TEST_NAME: &str = "(run error)";

/// Display label of a failure `source` (spec §9.1): `bench_infrastructure` →
/// `Bench infrastructure`, … An unrecognised source is shown as given; an empty one as
/// `Unknown`.
pub fn source_label(source: &str) -> &str {
    const ALL: [Source; 6] = [
        Source::Firmware,
        Source::TestLogic,
        Source::BenchInfrastructure,
        Source::AgentCloud,
        Source::Configuration,
        Source::Unknown,
    ];
    if source.is_empty() {
        return Source::Unknown.label();
    }
    ALL.iter()
        .find(|s| s.as_str() == source)
        .map_or(source, |s| s.label())
}

/// How one rendered test case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Passed,
    Failed,
    /// Not reached (the run stopped first).
    Skipped,
    /// Neither passed nor failed according to the document (e.g. no `passed` flag).
    Other,
}

/// A failure object (spec §9), reduced to what reports show.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailureView {
    pub category: Option<String>,
    pub source: Option<String>,
    pub title: String,
    pub message: String,
    pub explanation: Option<String>,
    pub suggestions: Vec<String>,
}

impl FailureView {
    /// The human text of a failure: message, source label, explanation, suggestions.
    pub fn body(&self) -> String {
        let mut out = self.message.clone();
        let mut tail = Vec::new();
        if let Some(source) = &self.source {
            tail.push(format!("source: {}", source_label(source)));
        }
        if let Some(explanation) = &self.explanation {
            tail.push(explanation.clone());
        }
        if !self.suggestions.is_empty() {
            let mut s = String::from("suggestions:");
            for suggestion in &self.suggestions {
                s.push_str("\n- ");
                s.push_str(suggestion);
            }
            tail.push(s);
        }
        if !tail.is_empty() {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&tail.join("\n"));
        }
        out
    }
}

/// One test case as the reports show it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TestView {
    pub name: String,
    pub test_case_id: Option<String>,
    pub requirement_ids: Vec<String>,
    pub risk_ids: Vec<String>,
    pub tags: Vec<String>,
    pub outcome: Outcome,
    pub duration_s: f64,
    /// Set for failed tests.
    pub failure: Option<FailureView>,
    /// Set for skipped (not reached) tests.
    pub skip_message: Option<String>,
}

/// Why the run as a whole stopped early.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunErrorView {
    pub cancelled: bool,
    pub failure: FailureView,
}

impl RunErrorView {
    /// The category to report (`UNKNOWN_ERROR` when the document gives none).
    pub fn category(&self) -> &str {
        self.failure
            .category
            .as_deref()
            .unwrap_or(if self.cancelled {
                "CANCELLED"
            } else {
                "UNKNOWN_ERROR"
            })
    }
}

/// The parts of a results.json document the reports use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunView {
    pub suite: String,
    pub bench: Option<String>,
    pub status: String,
    pub run_id: Option<String>,
    pub run_mode: Option<String>,
    pub results_dir: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_s: f64,
    /// Tests that ran, in document order, followed by tests that were not reached.
    pub tests: Vec<TestView>,
    pub run_error: Option<RunErrorView>,
}

/// Message shown for tests that were not reached.
const NOT_RUN_MESSAGE: &str = "not run: the run stopped before this test";

impl RunView {
    pub fn from_results(results: &Value) -> RunView {
        let status = text(results.get("status")).unwrap_or_default();
        let mut tests: Vec<TestView> = results
            .get("tests")
            .and_then(Value::as_array)
            .map(|tests| tests.iter().map(test_view).collect())
            .unwrap_or_default();

        // Tests never reached are absent from `tests`; the evidence's traceability lists
        // them as `not_run`. Show them as skipped so totals match the suite.
        let not_run: Vec<TestView> = results
            .pointer("/evidence/traceability/tests")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.get("status").and_then(Value::as_str) == Some("not_run"))
                    .map(not_run_view)
                    .filter(|t| !tests.iter().any(|ran| ran.name == t.name))
                    .collect()
            })
            .unwrap_or_default();
        tests.extend(not_run);

        let run_error = match status.as_str() {
            "error" => Some(RunErrorView {
                cancelled: false,
                failure: run_failure(results, false),
            }),
            "cancelled" => Some(RunErrorView {
                cancelled: true,
                failure: run_failure(results, true),
            }),
            _ => None,
        };

        RunView {
            suite: text(results.get("suite"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "suite".to_owned()),
            bench: text(results.get("bench")),
            status,
            run_id: text(results.get("run_id")),
            run_mode: text(results.get("run_mode")),
            results_dir: text(results.get("results_dir")),
            started_at: text(results.get("started_at")),
            finished_at: text(results.get("finished_at")),
            duration_s: seconds(results.get("duration_s")),
            tests,
            run_error,
        }
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.tests.iter().filter(|t| t.outcome == outcome).count()
    }
}

fn test_view(test: &Value) -> TestView {
    let outcome = match test.get("passed") {
        Some(Value::Bool(true)) => Outcome::Passed,
        Some(Value::Bool(false)) => Outcome::Failed,
        _ => match test.get("status").and_then(Value::as_str) {
            Some("passed") => Outcome::Passed,
            Some("failed" | "error") => Outcome::Failed,
            Some("skipped" | "not_run") => Outcome::Skipped,
            _ => Outcome::Other,
        },
    };
    let failure = (outcome == Outcome::Failed).then(|| {
        let object = test.get("failure").filter(|f| f.is_object());
        failure_view(object, text(test.get("failure_reason")), "Test failed")
    });
    TestView {
        name: text(test.get("name")).unwrap_or_default(),
        test_case_id: text(test.get("test_case_id")).filter(|s| !s.is_empty()),
        requirement_ids: string_list(test.get("requirement_ids")),
        risk_ids: string_list(test.get("risk_ids")),
        tags: string_list(test.get("tags")),
        outcome,
        duration_s: seconds(test.get("duration_s")),
        failure,
        skip_message: (outcome == Outcome::Skipped).then(|| NOT_RUN_MESSAGE.to_owned()),
    }
}

fn not_run_view(entry: &Value) -> TestView {
    TestView {
        name: text(entry.get("name")).unwrap_or_default(),
        test_case_id: text(entry.get("test_case_id")).filter(|s| !s.is_empty()),
        requirement_ids: string_list(entry.get("requirement_ids")),
        risk_ids: string_list(entry.get("risk_ids")),
        tags: string_list(entry.get("tags")),
        outcome: Outcome::Skipped,
        duration_s: 0.0,
        failure: None,
        skip_message: Some(NOT_RUN_MESSAGE.to_owned()),
    }
}

/// The failure behind a run error or cancellation: the document's `failure` object when
/// it describes the same thing as the `error` summary, else one built from `error`.
fn run_failure(results: &Value, cancelled: bool) -> FailureView {
    let error = text(results.get("error")).filter(|s| !s.is_empty());
    let object = results.get("failure").filter(|f| f.is_object());
    let matches = |f: &Value| {
        if cancelled {
            return f.get("category").and_then(Value::as_str) == Some("CANCELLED");
        }
        let Some(error) = &error else { return true };
        let message = text(f.get("message")).filter(|s| !s.is_empty());
        let title = text(f.get("title")).filter(|s| !s.is_empty());
        message.is_some_and(|m| error.contains(&m)) || title.is_some_and(|t| *error == t)
    };
    if let Some(object) = object.filter(|f| matches(f)) {
        return failure_view(Some(object), error, "Run error");
    }
    // Build from the `error` summary ("<title>: <message>").
    let category = if cancelled {
        Category::Cancelled
    } else {
        Category::UnknownError
    };
    let (title, message) = match &error {
        Some(e) => match e.split_once(": ") {
            Some((t, m)) if !cancelled => (t.to_owned(), m.to_owned()),
            _ => (category.title().to_owned(), e.clone()),
        },
        None => (
            category.title().to_owned(),
            category.explanation().to_owned(),
        ),
    };
    FailureView {
        category: Some(category.as_str().to_owned()),
        source: Some(category.default_source().as_str().to_owned()),
        title,
        message,
        explanation: error.is_some().then(|| category.explanation().to_owned()),
        suggestions: Vec::new(),
    }
}

/// Reads a failure object, filling gaps from its category's defaults and `fallback_message`.
fn failure_view(
    object: Option<&Value>,
    fallback_message: Option<String>,
    fallback_title: &str,
) -> FailureView {
    let get = |key: &str| {
        object
            .and_then(|o| text(o.get(key)))
            .filter(|s| !s.is_empty())
    };
    let category = get("category");
    let known = category
        .as_deref()
        .and_then(|c| Category::ALL.iter().copied().find(|k| k.as_str() == c));
    let title = get("title")
        .or_else(|| known.map(|k| k.title().to_owned()))
        .unwrap_or_else(|| fallback_title.to_owned());
    let message = get("message")
        .or(fallback_message.filter(|s| !s.is_empty()))
        .unwrap_or_else(|| title.clone());
    FailureView {
        source: get("source").or_else(|| known.map(|k| k.default_source().as_str().to_owned())),
        category,
        title,
        message,
        explanation: get("explanation"),
        suggestions: string_list(object.and_then(|o| o.get("suggestions"))),
    }
}

/// A scalar as text: strings as they are, numbers and booleans printed; null/absent → None.
pub(crate) fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of ids: a JSON array of scalars or a comma-separated string; blanks dropped.
pub(crate) fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| text(Some(v)))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => split_list(s),
        _ => Vec::new(),
    }
}

/// Splits a comma-separated list, trimming entries and dropping blanks.
pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A duration in seconds; anything that is not a finite, non-negative number is 0.
fn seconds(value: Option<&Value>) -> f64 {
    value
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn source_labels() {
        assert_eq!(source_label("firmware"), "Firmware");
        assert_eq!(source_label("test_logic"), "Test logic");
        assert_eq!(source_label("bench_infrastructure"), "Bench infrastructure");
        assert_eq!(source_label("agent_cloud"), "Agent/cloud");
        assert_eq!(source_label("configuration"), "Configuration");
        assert_eq!(source_label("unknown"), "Unknown");
        assert_eq!(source_label(""), "Unknown");
        assert_eq!(source_label("martian"), "martian");
    }

    #[test]
    fn sparse_failure_is_filled_from_category_defaults() {
        // Shape of spec §12: the test's failure object has only category and source.
        let results = json!({
            "suite": "s", "status": "failed",
            "tests": [{"name": "t", "passed": false, "duration_s": 2.1,
                       "failure_reason": "GPIO edge wait timed out",
                       "failure": {"category": "GPIO_EXPECTATION_FAILED", "source": "firmware"}}]
        });
        let view = RunView::from_results(&results);
        let failure = view.tests[0].failure.as_ref().unwrap();
        assert_eq!(failure.title, "GPIO expectation failed");
        assert_eq!(failure.message, "GPIO edge wait timed out");
        assert!(failure.body().contains("source: Firmware"));
    }

    #[test]
    fn run_error_prefers_matching_failure_object() {
        let results = json!({
            "suite": "s", "status": "error",
            "error": "Flashing failed: openocd exited with 1",
            "failure": {"category": "FLASH_FAILED", "source": "bench_infrastructure",
                        "title": "Flashing failed", "message": "openocd exited with 1"},
            "tests": []
        });
        let run_error = RunView::from_results(&results).run_error.unwrap();
        assert_eq!(run_error.category(), "FLASH_FAILED");

        // A failure object from an earlier failed test does not describe the run error.
        let results = json!({
            "suite": "s", "status": "error",
            "error": "Resource locked: shunt held by run 7",
            "failure": {"category": "UART_EXPECTATION_FAILED", "title": "UART expectation failed",
                        "message": "no banner"},
            "tests": []
        });
        let run_error = RunView::from_results(&results).run_error.unwrap();
        assert_eq!(run_error.category(), "UNKNOWN_ERROR");
        assert_eq!(run_error.failure.title, "Resource locked");
        assert_eq!(run_error.failure.message, "shunt held by run 7");
    }

    #[test]
    fn cancelled_run_without_failure_object() {
        let results = json!({"suite": "s", "status": "cancelled", "tests": []});
        let run_error = RunView::from_results(&results).run_error.unwrap();
        assert!(run_error.cancelled);
        assert_eq!(run_error.category(), "CANCELLED");
        assert_eq!(run_error.failure.title, "Run cancelled");
    }

    #[test]
    fn not_run_tests_come_from_traceability() {
        let results = json!({
            "suite": "s", "status": "error", "error": "boom",
            "tests": [{"name": "a", "passed": true, "duration_s": 1.0}],
            "evidence": {"traceability": {"tests": [
                {"name": "a", "status": "passed"},
                {"name": "b", "status": "not_run", "test_case_id": "TC-B", "requirement_ids": ["R1"]}
            ]}}
        });
        let view = RunView::from_results(&results);
        assert_eq!(view.tests.len(), 2);
        assert_eq!(view.tests[1].outcome, Outcome::Skipped);
        assert_eq!(view.tests[1].test_case_id.as_deref(), Some("TC-B"));
    }

    #[test]
    fn garbage_documents_do_not_panic() {
        for doc in [
            json!(null),
            json!(42),
            json!([]),
            json!({"tests": 5}),
            json!({"tests": [null, 1, "x", {"passed": "yes", "duration_s": -1}]}),
            json!({"status": "error", "failure": [1], "error": 3}),
        ] {
            let view = RunView::from_results(&doc);
            assert!(view.tests.iter().all(|t| t.duration_s >= 0.0));
        }
    }
}
