//! The round trip promised by the run-results spec §11: a results.json exported as JUnit
//! and as CTRF reads back through hilt's own importers with names, statuses, test case
//! ids and requirement ids intact. Plus escaping and a small mutation fuzz.

use hilt_runner::report::{
    ExternalTest, RUN_ERROR_TEST_NAME, ctrf_json, junit_xml, parse_ctrf, parse_junit,
};
use serde_json::{Value, json};

/// A results.json shaped like a real run (spec §2, §3, §9): one passed test with
/// traceability metadata, one failed test with a full failure object.
fn failed_run() -> Value {
    let failure = json!({
        "category": "UART_EXPECTATION_FAILED",
        "source": "firmware",
        "title": "UART expectation failed",
        "message": "Expectation not met on dut.console. Recent transport tail: 'boot: v1.2'",
        "explanation": "The device did not print the expected text in time.",
        "suggestions": ["Check that the firmware prints the expected text.",
                        "Open the transport log to see what the device did print."],
        "failed_step": {"test_name": "reports version", "test_index": 2, "step_index": 3,
                        "steps_total": 4, "step_type": "expect_uart", "node_name": "dut",
                        "transport_name": "console"},
        "artifacts": {"transport_log": "/results/20250304-101500/logs/nodes/dut/transport-console.log"},
        "details": {},
        "raw_error": "Expectation not met on dut.console."
    });
    let tests = json!([
        {"name": "boots", "test_case_id": "TC-BOOT-001",
         "requirement_ids": ["REQ-BOOT-001", "REQ-PWR-002"], "risk_ids": ["RISK-1"],
         "tags": ["smoke", "boot"], "passed": true, "duration_s": 4.2,
         "failure_reason": null, "failure": null, "metrics": {}, "measurements": [],
         "fuzz": [], "fault_injections": [], "external_results": []},
        {"name": "reports version", "test_case_id": "TC-VER-002",
         "requirement_ids": ["REQ-VER-001"], "risk_ids": [], "tags": [],
         "passed": false, "duration_s": 5.012,
         "failure_reason": "Expectation not met on dut.console.",
         "failure": failure.clone(), "metrics": {}, "measurements": [], "fuzz": [],
         "fault_injections": [], "external_results": []}
    ]);
    json!({
        "tool": "benchci",
        "command": "run_local",
        "run_id": null,
        "run_mode": "local",
        "bench": "Thermostat rig A",
        "suite": "thermo-smoke",
        "status": "failed",
        "skip_flash": false,
        "verbose": false,
        "artifact": "/fw/thermo.elf",
        "results_dir": "/results/20250304-101500",
        "started_at": "2025-03-04T10:15:00.100000Z",
        "finished_at": "2025-03-04T10:15:09.900000Z",
        "duration_s": 9.8,
        "summary": {"total": 2, "passed": 1, "failed": 1},
        "artifacts": {},
        "evidence": {
            "schema_version": "benchci.evidence.v1",
            "bench": {"name": "Thermostat rig A", "bench_id": "rig-a", "agent_id": null},
            "source": {"git_commit": "0123abcd", "git_branch": "main", "git_remote": null, "git_dirty": false},
            "traceability": {"tests": [
                {"name": "boots", "status": "passed"},
                {"name": "reports version", "status": "failed"}
            ]}
        },
        "failure": failure,
        "duts": [],
        "nodes": {"dut": {"flash_log": null, "gpio_log": null, "transport_logs": {}}},
        "resources": {},
        "measurements": [],
        "metrics": {},
        "fuzz": {"summary": {}, "campaigns": []},
        "fault_injections": [],
        "external_results": {},
        "tests": tests,
    })
}

/// The same run aborted by a bench error during the second test's setup: that test and
/// a third are never reached and are absent from `tests`.
fn errored_run() -> Value {
    let mut run = failed_run();
    let failure = json!({
        "category": "RESOURCE_LOCKED", "source": "bench_infrastructure",
        "title": "Resource locked", "message": "power relay 'psu' is locked by another run",
        "explanation": "Another run holds a lock on a bench resource.",
        "suggestions": ["Wait for the other run to finish."],
        "details": {}, "raw_error": "power relay 'psu' is locked by another run"
    });
    run["status"] = "error".into();
    run["summary"] = json!({"total": 3, "passed": 1, "failed": 0});
    run["failure"] = failure;
    run["error"] = "Resource locked: power relay 'psu' is locked by another run".into();
    run["tests"].as_array_mut().unwrap().truncate(1);
    run["evidence"]["traceability"]["tests"] = json!([
        {"name": "boots", "status": "passed"},
        {"name": "reports version", "status": "not_run", "test_case_id": "TC-VER-002",
         "requirement_ids": ["REQ-VER-001"]},
        {"name": "survives brownout", "status": "not_run", "test_case_id": null,
         "requirement_ids": []}
    ]);
    run
}

fn by_name<'a>(tests: &'a [ExternalTest], name: &str) -> &'a ExternalTest {
    tests
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no test {name:?} in {tests:#?}"))
}

fn both_ways(results: &Value) -> (Vec<ExternalTest>, Vec<ExternalTest>) {
    let xml = junit_xml(results);
    let from_junit = parse_junit(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let ctrf = serde_json::to_string_pretty(&ctrf_json(results)).unwrap();
    let from_ctrf = parse_ctrf(&ctrf).unwrap_or_else(|e| panic!("{e}\n{ctrf}"));
    (from_junit, from_ctrf)
}

#[test]
fn failed_run_round_trips() {
    let (junit, ctrf) = both_ways(&failed_run());
    for (format, tests) in [("junit", &junit), ("ctrf", &ctrf)] {
        assert_eq!(tests.len(), 2, "{format}");
        let boots = by_name(tests, "boots");
        assert_eq!(boots.status, "passed", "{format}");
        assert_eq!(
            boots.test_case_id.as_deref(),
            Some("TC-BOOT-001"),
            "{format}"
        );
        assert_eq!(
            boots.requirement_ids,
            ["REQ-BOOT-001", "REQ-PWR-002"],
            "{format}"
        );
        assert_eq!(boots.duration_s, Some(4.2), "{format}");
        assert_eq!(boots.classname.as_deref(), Some("thermo-smoke"), "{format}");

        let version = by_name(tests, "reports version");
        assert_eq!(version.status, "failed", "{format}");
        assert_eq!(
            version.test_case_id.as_deref(),
            Some("TC-VER-002"),
            "{format}"
        );
        assert_eq!(version.requirement_ids, ["REQ-VER-001"], "{format}");
        assert_eq!(version.duration_s, Some(5.012), "{format}");
        assert_eq!(
            version.failure_type.as_deref(),
            Some("UART_EXPECTATION_FAILED"),
            "{format}"
        );
        let message = version.failure_message.as_deref().unwrap();
        assert!(
            message.contains("Expectation not met on dut.console."),
            "{format}: {message}"
        );
    }
    // The JUnit failure text carries the source label and the suggestions.
    let message = by_name(&junit, "reports version")
        .failure_message
        .clone()
        .unwrap();
    assert!(message.contains("source: Firmware"), "{message}");
    assert!(message.contains("- Open the transport log"), "{message}");
}

#[test]
fn errored_run_round_trips() {
    let results = errored_run();
    let (junit, ctrf) = both_ways(&results);
    for (format, tests) in [("junit", &junit), ("ctrf", &ctrf)] {
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "boots",
                "reports version",
                "survives brownout",
                RUN_ERROR_TEST_NAME
            ],
            "{format}"
        );
        assert_eq!(by_name(tests, "boots").status, "passed");
        let not_run = by_name(tests, "reports version");
        assert_eq!(not_run.status, "skipped", "{format}");
        assert_eq!(
            not_run.test_case_id.as_deref(),
            Some("TC-VER-002"),
            "{format}"
        );
        assert_eq!(not_run.requirement_ids, ["REQ-VER-001"], "{format}");
        let run_error = by_name(tests, RUN_ERROR_TEST_NAME);
        assert_eq!(
            run_error.failure_type.as_deref(),
            Some("RESOURCE_LOCKED"),
            "{format}"
        );
        let message = run_error.failure_message.as_deref().unwrap();
        assert!(
            message.contains("locked by another run"),
            "{format}: {message}"
        );
    }
    // JUnit has a distinct error status; CTRF has none and reports the run error as failed.
    assert_eq!(by_name(&junit, RUN_ERROR_TEST_NAME).status, "error");
    assert_eq!(by_name(&ctrf, RUN_ERROR_TEST_NAME).status, "failed");

    let xml = junit_xml(&results);
    assert!(
        xml.contains(
            r#"<testsuite name="thermo-smoke" tests="4" failures="0" errors="1" skipped="2""#
        ),
        "{xml}"
    );
    let summary = &ctrf_json(&results)["results"]["summary"];
    assert_eq!(summary["tests"], 4);
    assert_eq!(summary["passed"], 1);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["skipped"], 2);
}

#[test]
fn cancelled_run_round_trips() {
    let mut results = failed_run();
    results["status"] = "cancelled".into();
    results["error"] = "Run cancelled".into();
    results["failure"] = json!({"category": "CANCELLED", "source": "unknown",
                                "title": "Run cancelled", "message": "interrupted by SIGINT"});
    let (junit, ctrf) = both_ways(&results);
    let junit_error = by_name(&junit, RUN_ERROR_TEST_NAME);
    assert_eq!(junit_error.status, "error");
    assert_eq!(junit_error.failure_type.as_deref(), Some("CANCELLED"));
    let ctrf_error = by_name(&ctrf, RUN_ERROR_TEST_NAME);
    assert_eq!(ctrf_error.status, "failed");
    assert_eq!(ctrf_error.failure_type.as_deref(), Some("CANCELLED"));
    assert_eq!(
        ctrf_error.failure_message.as_deref(),
        Some("interrupted by SIGINT")
    );
}

#[test]
fn benchci_minimal_failure_objects_export() {
    // Spec §12: the test's own failure object may carry only category and source.
    let mut results = failed_run();
    results["tests"][1]["failure"] =
        json!({"category": "GPIO_EXPECTATION_FAILED", "source": "firmware"});
    results["tests"][1]["failure_reason"] = "GPIO edge wait timed out on dut.led".into();
    let xml = junit_xml(&results);
    assert!(
        xml.contains(r#"<failure type="GPIO_EXPECTATION_FAILED" message="GPIO expectation failed">GPIO edge wait timed out on dut.led"#),
        "{xml}"
    );
    let (junit, ctrf) = both_ways(&results);
    assert_eq!(by_name(&junit, "reports version").status, "failed");
    assert_eq!(
        by_name(&ctrf, "reports version").failure_message.as_deref(),
        Some("GPIO edge wait timed out on dut.led")
    );
}

/// Whether every character of `s` is allowed by XML 1.0.
fn only_xml_chars(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    })
}

#[test]
fn awkward_strings_survive_escaping() {
    let awkward = "a<b>&c\"d'e ]]> <!-- x --> &amp; \u{1b}[31mred\u{7}\u{0}\u{FFFF} tab\there 🦀";
    let mut results = failed_run();
    results["suite"] = "suite <&>\"'".into();
    results["tests"][0]["name"] = awkward.into();
    results["tests"][0]["test_case_id"] = "TC-<1>&\"'".into();
    results["tests"][0]["requirement_ids"] = json!(["REQ-<1>", "REQ-&2"]);
    results["tests"][1]["name"] = "multi\nline\r\nname".into();
    results["tests"][1]["failure"]["title"] = "title with \"quotes\" and\nnewline".into();
    results["tests"][1]["failure"]["message"] = format!("message: {awkward}\r\nend").into();

    let xml = junit_xml(&results);
    assert!(only_xml_chars(&xml), "illegal character in\n{xml}");
    let tests = parse_junit(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(tests.len(), 2);

    let sanitised = awkward.replace(['\u{1b}', '\u{7}', '\u{0}', '\u{FFFF}'], "\u{FFFD}");
    assert_eq!(tests[0].name, sanitised);
    assert_eq!(tests[0].classname.as_deref(), Some("suite <&>\"'"));
    assert_eq!(tests[0].test_case_id.as_deref(), Some("TC-<1>&\"'"));
    assert_eq!(tests[0].requirement_ids, ["REQ-<1>", "REQ-&2"]);
    // Line breaks in attributes are kept (written as character references).
    assert_eq!(tests[1].name, "multi\nline\r\nname");
    let message = tests[1].failure_message.as_deref().unwrap();
    assert!(
        message.starts_with("title with \"quotes\" and\nnewline\n"),
        "{message}"
    );
    assert!(
        message.contains(&format!("message: {sanitised}\r\nend")),
        "{message}"
    );

    // CTRF is JSON: strings go through unchanged (serde_json escapes control characters).
    let ctrf = serde_json::to_string(&ctrf_json(&results)).unwrap();
    let tests = parse_ctrf(&ctrf).unwrap();
    assert_eq!(tests[0].name, awkward);
    assert_eq!(tests[0].test_case_id.as_deref(), Some("TC-<1>&\"'"));
}

#[test]
fn exports_are_deterministic() {
    for results in [failed_run(), errored_run()] {
        assert_eq!(junit_xml(&results), junit_xml(&results));
        assert_eq!(
            serde_json::to_string(&ctrf_json(&results)).unwrap(),
            serde_json::to_string(&ctrf_json(&results)).unwrap()
        );
    }
}

/// xorshift64*: a tiny deterministic generator, enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"<>&;\"'/=!?[]{}:,#x0 \n\t\\-DOCTYPE";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if at < bytes.len() => bytes[at] = rng.next() as u8,
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 => bytes.truncate(at),
            _ if at < bytes.len() => {
                let end = (at + rng.below(16)).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                let to = rng.below(bytes.len() + 1);
                bytes.splice(to..to, chunk);
            }
            _ => {}
        }
    }
    bytes
}

#[test]
fn importers_survive_mutated_input() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let xml = junit_xml(&errored_run());
    let ctrf = serde_json::to_string(&ctrf_json(&failed_run())).unwrap();
    for _ in 0..2000 {
        let bytes = mutate(&mut rng, xml.as_bytes());
        let _ = parse_junit(&String::from_utf8_lossy(&bytes));
        let bytes = mutate(&mut rng, ctrf.as_bytes());
        let _ = parse_ctrf(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn exports_of_mutated_results_stay_readable() {
    // Whatever a results.json contains, the JUnit export is XML the importer accepts and
    // the CTRF export is a CTRF document the importer accepts.
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let seed = serde_json::to_string(&errored_run()).unwrap();
    let mut parsed = 0;
    for _ in 0..2000 {
        let bytes = mutate(&mut rng, seed.as_bytes());
        let Ok(results) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        parsed += 1;
        let xml = junit_xml(&results);
        assert!(only_xml_chars(&xml));
        parse_junit(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let ctrf = serde_json::to_string(&ctrf_json(&results)).unwrap();
        parse_ctrf(&ctrf).unwrap_or_else(|e| panic!("{e}\n{ctrf}"));
    }
    assert!(parsed > 50, "only {parsed} mutants parsed");
}
