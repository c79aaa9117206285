//! The real `hilt` binary against a simulated DUT on a real pseudo-terminal.

mod common;

use common::{Bench, assert_complete, hilt, json, last_run};
use predicates::prelude::*;

const SPEC_KEYS: &[&str] = &[
    "tool",
    "command",
    "run_id",
    "run_mode",
    "bench",
    "suite",
    "status",
    "skip_flash",
    "verbose",
    "artifact",
    "results_dir",
    "started_at",
    "finished_at",
    "duration_s",
    "summary",
    "artifacts",
    "evidence",
    "failure",
    "duts",
    "nodes",
    "resources",
    "measurements",
    "metrics",
    "fuzz",
    "fault_injections",
    "external_results",
    "tests",
];

#[test]
fn demo_passes_and_writes_a_complete_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = hilt()
        .env("HILT_LOCK_DIR", dir.path().join("locks"))
        .args(["demo", "--dir"])
        .arg(dir.path().join("d"))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("PASSED"), "{err}");
    let run = last_run(&dir.path().join("d/results"));
    assert_complete(&run);
    let r = json(&run.join("results.json"));
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    for k in SPEC_KEYS {
        assert!(keys.contains(k), "results.json lacks {k}");
    }
    assert_eq!(r["status"], "passed");
    assert_eq!(
        r["summary"],
        serde_json::json!({"total": 6, "passed": 6, "failed": 0})
    );
    assert_eq!(r["duts"][0]["verification_status"], "verified");
    assert_eq!(r["metrics"]["idle_current"]["unit"], "A");
    assert!(r["resource_locks"]["locks"].as_array().unwrap().len() >= 6);
    let log = std::fs::read_to_string(run.join("logs/nodes/dut/transport-console.log")).unwrap();
    assert!(log.contains(" TX ") && log.contains(" RX "), "{log}");
    assert!(
        std::fs::read_to_string(run.join("logs/nodes/dut/gpio.log"))
            .unwrap()
            .contains("SET reset")
    );
    assert!(
        std::fs::read_to_string(run.join("logs/resources/mains/power.log"))
            .unwrap()
            .contains("SET dut off")
    );
    let status = json(&run.join("status.json"));
    let phases: Vec<&str> = status["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["done"; 7]);
    // The run directory as one archive, every document in it, the archive not in itself.
    assert!(err.contains("archive: "), "{err}");
    let z = zip::ZipArchive::new(std::fs::File::open(run.join("artifacts.zip")).unwrap()).unwrap();
    let names: Vec<String> = z.file_names().map(|n| n.unwrap().into_owned()).collect();
    for doc in [
        "results.json",
        "evidence.html",
        "events.jsonl",
        "status.json",
    ] {
        assert!(
            names.iter().any(|n| n == doc),
            "{doc} missing from {names:?}"
        );
    }
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".zip") || n.ends_with(".tmp")),
        "{names:?}"
    );
}

#[test]
fn demo_fail_explains_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    hilt()
        .env("HILT_LOCK_DIR", dir.path().join("locks"))
        .args(["demo", "--fail", "--dir"])
        .arg(dir.path().join("d"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "UART expectation failed — likely source: Firmware",
        ))
        .stderr(predicate::str::contains("check:"));
    let run = last_run(&dir.path().join("d/results"));
    assert_complete(&run);
    let r = json(&run.join("results.json"));
    assert_eq!(r["status"], "failed");
    let f = &r["failure"];
    assert_eq!(f["category"], "UART_EXPECTATION_FAILED");
    assert_eq!(f["source"], "firmware");
    assert_eq!(f["failed_step"]["test_index"], 7);
    assert_eq!(f["failed_step"]["step_index"], 2);
    assert!(
        f["artifacts"]["transport_log"]
            .as_str()
            .unwrap()
            .ends_with("transport-console.log")
    );
    let summary = std::fs::read_to_string(run.join("recovery_summary.md")).unwrap();
    assert!(summary.contains("likely source: **Firmware**"), "{summary}");
    let status = json(&run.join("status.json"));
    assert_eq!(status["alerts"][0]["code"], "TESTS_FAILED");
    assert!(
        status["alerts"][0]["next_path"]
            .as_str()
            .unwrap()
            .ends_with("transport-console.log")
    );
}

#[test]
fn silent_device_is_blamed_on_the_bench_not_the_firmware() {
    let b = Bench::start();
    let text = std::fs::read_to_string(&b.bench)
        .unwrap()
        .replace("within_ms: 1000}", "within_ms: 100, required: false}");
    std::fs::write(&b.bench, text).unwrap();
    b.dut.controls().power_set(false);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let suite = b.suite("silent.yaml", "  - name: hello\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      - expect_uart: {node: dut, transport: console, contains: pong, within_ms: 200}\n");
    b.run(&suite)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "likely source: Bench infrastructure",
        ));
    let r = json(&last_run(&b.path("results")).join("results.json"));
    assert_eq!(r["failure"]["category"], "UART_EXPECTATION_FAILED");
    assert_eq!(r["failure"]["source"], "bench_infrastructure");
    assert_eq!(r["duts"][0]["verification_status"], "query_failed_optional");
    // BenchCI's shape: nothing observed, so the entry holds the bench's identity.
    let dut = &r["duts"][0];
    assert_eq!(dut["identity_source"], "configured");
    assert_eq!(
        dut["self_identification"]["verification_status"],
        "query_failed"
    );
    assert_eq!(dut["self_identification"]["required"], false);
    assert_eq!(
        dut["self_identification"]["observed"],
        serde_json::json!({})
    );
    assert_eq!(
        dut["self_identification"]["configured"]["serial_number"],
        "SIM-0001"
    );
    // results.json embeds evidence in BenchCI's order; evidence.json sorts its keys.
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let embedded = keys(&r["evidence"]);
    assert_eq!(&embedded[..3], ["schema_version", "generated_at", "run"]);
    let on_disk = keys(&json(&last_run(&b.path("results")).join("evidence.json")));
    let mut sorted = on_disk.clone();
    sorted.sort();
    assert_eq!(on_disk, sorted);
}

#[test]
fn missing_port_is_a_bench_infrastructure_error() {
    let b = Bench::start();
    let text = std::fs::read_to_string(&b.bench)
        .unwrap()
        .replace(&b.path("dut.tty").display().to_string(), "/dev/ttyNOPE9");
    std::fs::write(&b.bench, text).unwrap();
    let suite = b.suite("s.yaml", "  - name: t\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n");
    b.run(&suite)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("Transport could not be opened"));
    let run = last_run(&b.path("results"));
    assert_complete(&run);
    let r = json(&run.join("results.json"));
    assert_eq!(r["status"], "error");
    assert_eq!(r["failure"]["category"], "TRANSPORT_OPEN_FAILED");
    assert_eq!(r["failure"]["source"], "bench_infrastructure");
    assert!(r["error"].as_str().unwrap().contains("/dev/ttyNOPE9"));
}

#[test]
fn busy_port_is_reported_as_busy() {
    let b = Bench::start();
    let settings = hilt_hw::serial::SerialSettings {
        port: b.path("dut.tty").display().to_string(),
        baud: 115200,
        bytesize: 8,
        parity: hilt_model_parity(),
        stopbits: 1.0,
    };
    let _held = hilt_hw::serial::open(&settings).unwrap();
    let suite = b.suite("s.yaml", "  - name: t\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n");
    b.run(&suite)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("busy"));
}

fn hilt_model_parity() -> hilt_model::bench::Parity {
    hilt_model::bench::Parity::N
}

#[test]
fn undefined_node_is_a_configuration_error_with_location() {
    let b = Bench::start();
    let suite = b.suite(
        "s.yaml",
        "  - name: t\n    steps:\n      - reset: {node: ghost}\n",
    );
    b.run(&suite)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("s.yaml:7:"))
        .stderr(predicate::str::contains("unknown node `ghost`"))
        .stderr(predicate::str::contains("likely source: Configuration"));
    let run = last_run(&b.path("results"));
    assert_complete(&run);
    let r = json(&run.join("results.json"));
    assert_eq!(r["failure"]["category"], "CONFIG_ERROR");
    assert!(run.join("inputs/suite.yaml").is_file());
}

#[test]
fn junit_and_ctrf_exports_and_json_output() {
    let b = Bench::start();
    let suite = b.suite("s.yaml", "  - name: ping\n    test_case_id: TC-1\n    requirement_ids: [R1, R2]\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      - expect_uart: {node: dut, transport: console, contains: pong}\n  - name: wrong\n    steps:\n      - expect_uart: {node: dut, transport: console, contains: nope, within_ms: 50}\n");
    let out = b
        .run(&suite)
        .arg("--junit")
        .arg(b.path("r.xml"))
        .arg("--ctrf")
        .arg(b.path("r.ctrf.json"))
        .arg("--json")
        .assert()
        .code(1);
    let stdout: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(stdout["summary"]["failed"], 1);
    let xml = std::fs::read_to_string(b.path("r.xml")).unwrap();
    assert!(
        xml.contains("<testcase name=\"ping\"") && xml.contains("UART_EXPECTATION_FAILED"),
        "{xml}"
    );
    let ctrf = json(&b.path("r.ctrf.json"));
    assert_eq!(ctrf["results"]["summary"]["failed"], 1);
    // A failed run is archived too.
    assert!(last_run(&b.path("results")).join("artifacts.zip").is_file());
}

#[test]
fn no_zip_leaves_no_archive() {
    let b = Bench::start();
    let suite = b.suite("s.yaml", "  - name: ping\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      - expect_uart: {node: dut, transport: console, contains: pong}\n");
    let out = b.run(&suite).arg("--no-zip").assert().success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(!err.contains("archive: "), "{err}");
    let run = last_run(&b.path("results"));
    assert!(run.join("results.json").is_file());
    assert!(!run.join("artifacts.zip").exists());
}

#[test]
fn runs_status_summarises_a_run() {
    let b = Bench::start();
    let suite = b.suite("s.yaml", "  - name: t\n    steps:\n      - sleep_ms: 1\n");
    b.run(&suite).assert().success();
    let run = last_run(&b.path("results"));
    hilt()
        .args(["runs", "status"])
        .arg(&run)
        .assert()
        .success()
        .stdout(predicate::str::contains("passed"))
        .stdout(predicate::str::contains("finalize"));
    let out = hilt()
        .args(["runs", "status", "--json"])
        .arg(&run)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["status"]["state"], "passed");
    hilt()
        .args(["runs", "status"])
        .arg(b.path("nothing"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("not a hilt run directory"));
}

/// `mock_gpio` lines of one node that share a `channel` are one wire (as in BenchCI): a
/// level set through the output is read through the input; other channels are untouched.
#[test]
fn mock_gpio_lines_sharing_a_channel_are_one_wire() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench.yaml");
    std::fs::write(
        &bench,
        "version: 1\nbench: {name: wire}\nnodes:\n  dut:\n    kind: mcu\n    gpio:\n      \
         out: {backend: mock_gpio, channel: 2, direction: output}\n      \
         inp: {backend: mock_gpio, channel: 2, direction: input, edge: both}\n      \
         other: {backend: mock_gpio, channel: 3, direction: input}\n",
    )
    .unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(
        &suite,
        "version: 1\nsuite: {name: wire}\ntests:\n  - name: one wire\n    steps:\n      \
         - gpio_get: {node: dut, line: inp, expect: false}\n      \
         - gpio_set: {node: dut, line: out, value: true}\n      \
         - gpio_get: {node: dut, line: inp, expect: true}\n      \
         - gpio_expect: {node: dut, line: inp, value: true, within_ms: 100}\n      \
         - gpio_get: {node: dut, line: other, expect: false}\n      \
         - gpio_set: {node: dut, line: out, value: false}\n      \
         - gpio_get: {node: dut, line: inp, expect: false}\n",
    )
    .unwrap();
    hilt()
        .env("HILT_LOCK_DIR", dir.path().join("locks"))
        .arg("run")
        .arg("--bench")
        .arg(&bench)
        .arg("--suite")
        .arg(&suite)
        .arg("--results-dir")
        .arg(dir.path().join("out"))
        .assert()
        .code(0);
    let r = json(&last_run(&dir.path().join("out")).join("results.json"));
    assert_eq!(r["status"], "passed", "{}", r["failure"]);
}
