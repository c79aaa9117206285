//! results.json → CTRF JSON (Common Test Report Format, run-results spec §11).
//!
//! The document follows CTRF 1.0.0 (`reportFormat`, `specVersion`, `suite` as an array
//! of names); hilt's own data goes in the `extra` objects CTRF provides for that:
//! per test `{test_case_id, requirement_ids, risk_ids, tags, category, source}`, per run
//! `{run_id, results_dir, status}`.

use serde_json::{Map, Value, json};

use super::{Outcome, RUN_ERROR_TEST_NAME, RunView, TestView, text};

/// The CTRF specification version the output follows.
pub const CTRF_SPEC_VERSION: &str = "1.0.0";

/// Renders a results.json document as a CTRF report. Never fails.
pub fn ctrf_json(results: &Value) -> Value {
    let run = RunView::from_results(results);

    let mut tests: Vec<Value> = run.tests.iter().map(|t| ctrf_test(&run, t)).collect();
    if let Some(run_error) = &run.run_error {
        let f = &run_error.failure;
        let mut test = Map::new();
        test.insert("name".into(), RUN_ERROR_TEST_NAME.into());
        test.insert("status".into(), "failed".into());
        test.insert("duration".into(), 0.into());
        test.insert("message".into(), f.message.clone().into());
        if !f.suggestions.is_empty() {
            test.insert("trace".into(), f.suggestions.join("\n").into());
        }
        test.insert("suite".into(), json!([run.suite]));
        test.insert(
            "extra".into(),
            json!({
                "test_case_id": null,
                "requirement_ids": [],
                "risk_ids": [],
                "tags": [],
                "category": run_error.category(),
                "source": f.source,
                "title": f.title,
            }),
        );
        tests.push(Value::Object(test));
    }

    let count = |status: &str| tests.iter().filter(|t| t["status"] == status).count();
    let start = run.started_at.as_deref().and_then(epoch_ms);
    let duration = millis(run.duration_s);
    let stop = run
        .finished_at
        .as_deref()
        .and_then(epoch_ms)
        .or_else(|| start.map(|s| s.saturating_add(duration)));
    let start = start.unwrap_or(0);
    let stop = stop.unwrap_or(start).max(start);
    let summary = json!({
        "tests": tests.len(),
        "passed": count("passed"),
        "failed": count("failed"),
        "pending": 0,
        "skipped": count("skipped"),
        "other": count("other"),
        "start": start,
        "stop": stop,
        "duration": stop - start,
    });

    let mut results_obj = Map::new();
    results_obj.insert(
        "tool".into(),
        json!({"name": "hilt", "version": env!("CARGO_PKG_VERSION")}),
    );
    results_obj.insert("summary".into(), summary);
    results_obj.insert("tests".into(), Value::Array(tests));
    results_obj.insert("environment".into(), environment(results, &run));
    results_obj.insert(
        "extra".into(),
        json!({"run_id": run.run_id, "results_dir": run.results_dir, "status": run.status}),
    );

    json!({
        "reportFormat": "CTRF",
        "specVersion": CTRF_SPEC_VERSION,
        "generatedBy": "hilt",
        "results": Value::Object(results_obj),
    })
}

fn ctrf_test(run: &RunView, t: &TestView) -> Value {
    let status = match t.outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Skipped => "skipped",
        Outcome::Other => "other",
    };
    let mut test = Map::new();
    test.insert("name".into(), t.name.clone().into());
    test.insert("status".into(), status.into());
    test.insert("duration".into(), millis(t.duration_s).into());
    let message = t
        .failure
        .as_ref()
        .map(|f| f.message.clone())
        .or_else(|| t.skip_message.clone());
    if let Some(message) = message {
        test.insert("message".into(), message.into());
    }
    if let Some(f) = t.failure.as_ref().filter(|f| !f.suggestions.is_empty()) {
        test.insert("trace".into(), f.suggestions.join("\n").into());
    }
    test.insert("suite".into(), json!([run.suite]));
    if !t.tags.is_empty() {
        test.insert("tags".into(), json!(t.tags));
    }
    let failure = t.failure.as_ref();
    test.insert(
        "extra".into(),
        json!({
            "test_case_id": t.test_case_id,
            "requirement_ids": t.requirement_ids,
            "risk_ids": t.risk_ids,
            "tags": t.tags,
            "category": failure.and_then(|f| f.category.clone()),
            "source": failure.and_then(|f| f.source.clone()),
        }),
    );
    Value::Object(test)
}

/// CTRF `environment`: the bench (as `testEnvironment`), source control and CI facts from
/// the evidence where present; the rest of the bench record under `extra`. CTRF types
/// these fields as strings, so absent values are left out rather than written as null.
fn environment(results: &Value, run: &RunView) -> Value {
    let evidence = |ptr: &str| text(results.pointer(ptr)).filter(|s| !s.is_empty());
    let mut env = Map::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            env.insert(key.into(), v.into());
        }
    };
    put("reportName", Some(run.suite.clone()));
    put(
        "testEnvironment",
        run.bench.clone().filter(|s| !s.is_empty()),
    );
    put("commit", evidence("/evidence/source/git_commit"));
    put("branchName", evidence("/evidence/source/git_branch"));
    put("repositoryUrl", evidence("/evidence/source/git_remote"));
    put("buildUrl", evidence("/evidence/ci/ci_job_url"));
    put("buildId", evidence("/evidence/ci/ci_run_id"));
    put("osPlatform", evidence("/evidence/environment/system"));

    let mut extra = Map::new();
    extra.insert("bench".into(), json!(run.bench));
    for key in ["bench_id", "agent_id"] {
        extra.insert(
            key.into(),
            json!(evidence(&format!("/evidence/bench/{key}"))),
        );
    }
    extra.insert("run_mode".into(), json!(run.run_mode));
    if let Some(duts) = results.get("duts").filter(|d| d.is_array()) {
        extra.insert("duts".into(), duts.clone());
    }
    env.insert("extra".into(), Value::Object(extra));
    Value::Object(env)
}

/// Milliseconds since the Unix epoch of an ISO-8601 timestamp.
fn epoch_ms(ts: &str) -> Option<i64> {
    ts.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// Seconds (already finite and non-negative) → whole milliseconds.
fn millis(seconds: f64) -> i64 {
    // `as` saturates, so absurd durations clamp instead of wrapping.
    (seconds * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Value {
        json!({
            "tool": "benchci", "bench": "rig A", "suite": "smoke", "status": "failed",
            "run_id": null, "results_dir": "/out/1",
            "started_at": "2025-03-04T10:15:00.100000Z", "finished_at": "2025-03-04T10:15:09.900000Z",
            "duration_s": 9.8,
            "evidence": {"source": {"git_commit": "abc123", "git_branch": null},
                         "bench": {"bench_id": "B-1", "agent_id": null}},
            "tests": [
                {"name": "boots", "test_case_id": "TC-1", "requirement_ids": ["REQ-1"],
                 "risk_ids": [], "tags": ["smoke"], "passed": true, "duration_s": 4.2},
                {"name": "wakes", "test_case_id": null, "requirement_ids": [], "risk_ids": [],
                 "tags": [], "passed": false, "duration_s": 2.1005,
                 "failure": {"category": "GPIO_EXPECTATION_FAILED", "source": "firmware",
                             "title": "GPIO expectation failed", "message": "no edge",
                             "suggestions": ["Check line.", "Check bias."]}}
            ]
        })
    }

    #[test]
    fn summary_and_tests() {
        let c = ctrf_json(&run());
        let r = &c["results"];
        assert_eq!(c["reportFormat"], "CTRF");
        assert_eq!(r["tool"]["name"], "hilt");
        assert_eq!(r["tool"]["version"], env!("CARGO_PKG_VERSION"));
        let s = &r["summary"];
        assert_eq!(s["tests"], 2);
        assert_eq!(s["passed"], 1);
        assert_eq!(s["failed"], 1);
        assert_eq!(s["pending"], 0);
        assert_eq!(s["start"], 1_741_083_300_100_i64);
        assert_eq!(s["stop"], 1_741_083_309_900_i64);
        let t = &r["tests"][1];
        assert_eq!(t["status"], "failed");
        assert_eq!(t["duration"], 2101);
        assert_eq!(t["message"], "no edge");
        assert_eq!(t["trace"], "Check line.\nCheck bias.");
        assert_eq!(t["suite"], json!(["smoke"]));
        assert_eq!(t["extra"]["category"], "GPIO_EXPECTATION_FAILED");
        assert_eq!(t["extra"]["source"], "firmware");
        let t = &r["tests"][0];
        assert_eq!(t["extra"]["test_case_id"], "TC-1");
        assert_eq!(t["extra"]["requirement_ids"], json!(["REQ-1"]));
        assert!(t.get("message").is_none());
        assert_eq!(r["environment"]["testEnvironment"], "rig A");
        assert_eq!(r["environment"]["commit"], "abc123");
        assert!(r["environment"].get("branchName").is_none());
        assert_eq!(r["environment"]["extra"]["bench_id"], "B-1");
        assert_eq!(
            r["extra"],
            json!({"run_id": null, "results_dir": "/out/1", "status": "failed"})
        );
    }

    #[test]
    fn run_error_becomes_a_failed_test() {
        let mut doc = run();
        doc["status"] = "error".into();
        doc["error"] = "Resource locked: shunt held by run 7".into();
        let c = ctrf_json(&doc);
        let tests = c["results"]["tests"].as_array().unwrap();
        let last = tests.last().unwrap();
        assert_eq!(last["name"], RUN_ERROR_TEST_NAME);
        assert_eq!(last["status"], "failed");
        assert_eq!(last["message"], "shunt held by run 7");
        assert_eq!(c["results"]["summary"]["failed"], 2);
    }

    #[test]
    fn missing_timestamps_are_zero() {
        let c = ctrf_json(&json!({"tests": []}));
        assert_eq!(c["results"]["summary"]["start"], 0);
        assert_eq!(c["results"]["summary"]["stop"], 0);
        assert_eq!(c["results"]["tests"], json!([]));
    }
}
