//! `hilt validate`, `hilt schema`, `hilt completions` and bad input.

mod common;

use common::hilt;
use predicates::prelude::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const BENCH: &str = "version: 1\nbench: {name: b}\nnodes:\n  dut:\n    kind: mcu\n    transports:\n      console: {backend: uart, port: /dev/ttyX}\n";

#[test]
fn malformed_yaml_names_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let b = write(&d, "bench.yaml", "bench: {name: b\nnodes: [\n");
    hilt()
        .arg("validate")
        .arg("--bench")
        .arg(&b)
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("bench.yaml:").and(predicate::str::contains("invalid YAML")),
        );
}

#[test]
fn unknown_key_warns_and_strict_refuses() {
    let d = tempfile::tempdir().unwrap();
    let b = write(
        &d,
        "bench.yaml",
        &BENCH.replace("port: /dev/ttyX", "port: /dev/ttyX, baudrate: 9600"),
    );
    hilt()
        .arg("validate")
        .arg("--bench")
        .arg(&b)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("bench.yaml:7:")
                .and(predicate::str::contains("unknown key `baudrate`"))
                .and(predicate::str::contains("did you mean `baud`?")),
        );
    hilt()
        .args(["validate", "--strict", "--bench"])
        .arg(&b)
        .assert()
        .code(3);
}

#[test]
fn wrong_type_and_missing_file() {
    let d = tempfile::tempdir().unwrap();
    let b = write(
        &d,
        "bench.yaml",
        &BENCH.replace("port: /dev/ttyX", "port: /dev/ttyX, baud: fast"),
    );
    hilt()
        .arg("validate")
        .arg("--bench")
        .arg(&b)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("bench.yaml:7:").and(predicate::str::contains("baud")));
    hilt()
        .args(["validate", "--bench", "/nonexistent/bench.yaml"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "cannot read /nonexistent/bench.yaml",
        ));
}

#[test]
fn alias_bomb_is_refused_quickly() {
    let d = tempfile::tempdir().unwrap();
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    let mut prev = 'a';
    for n in 'b'..='k' {
        text.push_str(&format!("{n}: &{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        prev = n;
    }
    let b = write(&d, "bench.yaml", &text);
    let t = std::time::Instant::now();
    hilt()
        .arg("validate")
        .arg("--bench")
        .arg(&b)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("expands to more than"));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn json_output_schema_and_completions() {
    let d = tempfile::tempdir().unwrap();
    let b = write(&d, "bench.yaml", BENCH);
    let out = hilt()
        .args(["validate", "--json", "--bench"])
        .arg(&b)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["ok"], true);
    let out = hilt().args(["schema", "bench"]).assert().success();
    let schema: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(schema.to_string().contains("\"baud\""));
    hilt()
        .args(["schema", "suite"])
        .assert()
        .success()
        .stdout(predicate::str::contains("expect_uart"));
    hilt()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("hilt"));
    hilt().args(["run", "--bench"]).assert().code(2);
    hilt().arg("--version").assert().success();
}

#[test]
fn bench_self_test_static_and_hardware_checks() {
    let b = common::Bench::start();
    let log_dir = b.path("health");
    let out = hilt()
        .args([
            "bench",
            "self-test",
            "--open-hardware",
            "--read-inputs",
            "--read-measurements",
            "--json",
            "--bench",
        ])
        .arg(&b.bench)
        .arg("--log-dir")
        .arg(&log_dir)
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["schema_version"], "benchci.diagnostics.v1");
    assert_eq!(report["health_status"], "healthy", "{report:#}");
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in [
        "bench_yaml_loaded",
        "default_node",
        "node.dut.transport.console",
        "hardware_open_mode",
        "node.dut.transport.console.open",
        "node.dut.gpio.start",
        "node.dut.gpio.ready.read",
        "resource.mains.power.start",
        "resource.shunt.measurement.read",
    ] {
        assert!(ids.contains(&id), "missing check {id}: {ids:?}");
    }
    let log = std::fs::read_to_string(log_dir.join("nodes/dut/transport-console.log")).unwrap();
    assert!(
        log.contains("OPEN_ATTEMPT") && log.contains("OPEN_OK") && log.contains("CLOSE_OK"),
        "{log}"
    );
    // Non-destructive: the device was neither reset nor power-cycled.
    assert_eq!(b.dut.controls().state().boots, 1);
    // A missing port fails the bench.
    let text = std::fs::read_to_string(&b.bench)
        .unwrap()
        .replace(&b.path("dut.tty").display().to_string(), "/dev/ttyNOPE7");
    std::fs::write(&b.bench, text).unwrap();
    hilt()
        .args(["bench", "self-test", "--bench"])
        .arg(&b.bench)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("failing"));
    hilt()
        .args(["bench", "self-test", "--read-inputs", "--bench"])
        .arg(&b.bench)
        .assert()
        .code(2);
}

/// A duration over 24 h is refused with its location (BenchCI accepts it, and a run would
/// then hold its bench for ever); 24 h itself is accepted.
#[test]
fn durations_over_a_day_are_refused_with_their_location() {
    let d = tempfile::tempdir().unwrap();
    let b = write(
        &d,
        "bench.yaml",
        "version: 1\nbench: {name: b}\nnodes:\n  dut:\n    kind: mcu\n    gpio: {led: {backend: mock_gpio, channel: 1, direction: input}}\n",
    );
    let suite = |steps: &str| {
        format!("version: 1\nsuite: {{name: s}}\ntests:\n  - name: t\n    steps:\n{steps}")
    };
    let s = write(
        &d,
        "long.yaml",
        &suite(
            "      - sleep_ms: 1\n      - sleep_ms: 99999999999999\n      - gpio_expect: {node: dut, line: led, value: true, within_ms: 86400001}\n",
        ),
    );
    hilt()
        .arg("validate")
        .arg("--bench")
        .arg(&b)
        .arg("--suite")
        .arg(&s)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("long.yaml:7:").and(predicate::str::contains(
            "tests[0].steps[1].sleep_ms: 99999999999999 ms is longer than the limit of 86400000 ms",
        )))
        .stderr(predicate::str::contains("tests[0].steps[2].gpio_expect.within_ms"));
    let ok = write(&d, "day.yaml", &suite("      - sleep_ms: 86400000\n"));
    hilt()
        .arg("validate")
        .arg("--bench")
        .arg(&b)
        .arg("--suite")
        .arg(&ok)
        .assert()
        .success();
}

#[test]
fn a_placeholder_driver_is_reported_once_at_its_definition() {
    let d = tempfile::tempdir().unwrap();
    // Line 9 defines the resource; three steps use it.
    let b = write(
        &d,
        "bench.yaml",
        &format!(
            "{BENCH}resources:\n  pdu: {{kind: measurement, driver: {{type: scpi, address: \"tcp://10.0.0.9:5025\"}}}}\n"
        ),
    );
    let s = write(
        &d,
        "suite.yaml",
        "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - measure: {resource: pdu}\n      - measure: {resource: pdu, record_as: a}\n      - measure: {resource: pdu, record_as: b}\n",
    );
    let out = hilt()
        .arg("validate")
        .arg("--bench")
        .arg(&b)
        .arg("--suite")
        .arg(&s)
        .assert()
        .code(3)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("generic SCPI placeholder").count(),
        1,
        "{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("generic SCPI placeholder"))
        .unwrap();
    assert!(line.contains("bench.yaml:9:"), "{line}");
    assert!(
        line.contains("`scpi`")
            && line.contains("used by 3 steps, first tests[0].steps[0].measure"),
        "{line}"
    );
}
