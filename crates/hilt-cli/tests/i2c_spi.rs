//! The I2C and SPI steps through the real `hilt` binary against `hilt sim bus` (a TMP102,
//! EEPROMs, power monitors, an SPI NOR flash and a register sensor), reached with the
//! transports' `sim:` extension: every step type, faults on demand (no acknowledge, a
//! device removed, clock stretching past the timeout, lost arbitration, the wrong SPI
//! mode), a missing device node, and bad input refused at `file:line:column`.
//!
//! This kernel has no i2c-stub or spidev, so `/dev/i2c-*` and `/dev/spidev*` are only
//! reached here to show a missing node is a bench failure; the kernel drivers' logic is
//! unit-tested in hilt-hw behind the `I2cBus` / `SpiDevice` traits.

mod common;

use std::path::{Path, PathBuf};

use common::hw::{SimProcess, run_results, validate_error, write_suite_tests};
use serde_json::Value;

/// A bench whose node `dut` has the I2C bus `sensors` and the SPI chip selects `flash`
/// (0), `accel` (1, mode 3) and `ghost` (7, absent), all on the simulator at `sim`.
fn write_bench(dir: &Path, sim: &str) -> PathBuf {
    let text = format!(
        r#"version: 1
bench: {{name: bus rig}}
nodes:
  dut:
    kind: mcu
    transports:
      sensors: {{backend: i2c, bus: 1, timeout_ms: 200, sim: "{sim}"}}
      flash: {{backend: spi, bus: 0, device: 0, sim: "{sim}"}}
      accel: {{backend: spi, bus: 0, device: 1, mode: 3, sim: "{sim}"}}
      wrong_mode: {{backend: spi, bus: 0, device: 0, mode: 1, sim: "{sim}"}}
      words: {{backend: spi, bus: 0, device: 1, bits_per_word: 16, sim: "{sim}"}}
      ghost: {{backend: spi, bus: 0, device: 7, sim: "{sim}"}}
      real_i2c: {{backend: i2c, bus: 250}}
      real_spi: {{backend: spi, bus: 250, device: 0}}
"#
    );
    let p = dir.join("bench.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn sim() -> SimProcess {
    SimProcess::start(&["bus", "--listen", "127.0.0.1:0"], "127.0.0.1:")
}

fn transport_log(run: &Path, name: &str) -> String {
    std::fs::read_to_string(run.join(format!("logs/nodes/dut/transport-{name}.log")))
        .unwrap_or_else(|e| panic!("transport-{name}.log: {e}"))
}

/// The events of one step type, from events.jsonl.
fn step_events(run: &Path, step_type: &str) -> Vec<Value> {
    std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event_type"] == "step.finished" && e["data"]["step_type"] == step_type)
        .collect()
}

#[test]
fn every_i2c_and_spi_step_runs_against_the_simulated_bus() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim();
    let bench = write_bench(dir.path(), &sim.address);
    let suite = write_suite_tests(
        dir.path(),
        "bus",
        &[
            (
                "i2c",
                &[
                    "i2c_scan: {node: dut, transport: sensors, expect_addresses: [0x40, 0x48, 0x50]}",
                    "i2c_scan: {node: dut, transport: sensors, start_address: 0x48, end_address: 0x4f, expect_addresses: [0x48]}",
                    "i2c_read_register: {node: dut, transport: sensors, address: 0x48, register: 0, length: 2, expect: [0x19, 0x00]}",
                    "i2c_read_register: {node: dut, transport: sensors, address: 0x48, register: 1, length: 2}",
                    "i2c_write_register: {node: dut, transport: sensors, address: 0x50, register: 0x10, value: [1, 2, 3]}",
                    // The EEPROM does not acknowledge during its 5 ms write cycle: i2c_expect
                    // reads again until it answers.
                    "i2c_expect: {node: dut, transport: sensors, address: 0x50, register: 0x10, length: 3, expect: [1, 2, 3], within_ms: 500}",
                    "i2c_write_register: {node: dut, transport: sensors, address: 0x57, register: 0x0100, value: 0xAA}",
                    "sleep_ms: 10",
                    "i2c_read_register: {node: dut, transport: sensors, address: 0x57, register: 0x0100, length: 2, expect: [0xAA, 0xFF]}",
                ],
            ),
            (
                "spi",
                &[
                    "spi_transfer: {node: dut, transport: flash, data: \"9F 00 00 00\", expect: \"FF EF 40 18\"}",
                    "spi_transfer: {node: dut, transport: flash, data: \"05 00\"}",
                    "spi_transfer: {node: dut, transport: flash, data: \"06\"}",
                    "spi_transfer: {node: dut, transport: flash, data: \"02 00 01 00 de ad\"}",
                    "spi_expect: {node: dut, transport: flash, data: \"03 00 01 00 00 00\", expect: \"FF FF FF FF DE AD\"}",
                    "spi_expect: {node: dut, transport: accel, data: \"80 00\", expect: \"00 E5\"}",
                    "spi_expect: {node: dut, transport: words, data: \"80 00\", expect: \"00 E5\"}",
                ],
            ),
        ],
    );
    let (code, run, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["status"], "passed");
    let scans = step_events(&run, "i2c_scan");
    assert_eq!(
        scans[0]["data"]["found"],
        serde_json::json!([0x40, 0x41, 0x48, 0x50, 0x57])
    );
    let reads = step_events(&run, "i2c_read_register");
    assert_eq!(reads[1]["data"]["values"], serde_json::json!([0x60, 0xa0]));
    let expects = step_events(&run, "i2c_expect");
    assert!(
        expects[0]["data"]["reads"].as_u64().unwrap() >= 1,
        "{:#}",
        expects[0]
    );
    let transfers = step_events(&run, "spi_transfer");
    assert_eq!(transfers[1]["data"]["rx"], serde_json::json!([0xff, 0x00]));
    let i2c_log = transport_log(&run, "sensors");
    assert!(
        i2c_log.contains("SCAN 0x03..0x77 found=[0x40, 0x41, 0x48, 0x50, 0x57]"),
        "{i2c_log}"
    );
    assert!(
        i2c_log.contains("WRITE address=0x50 register=0x10 data=[1, 2, 3]"),
        "{i2c_log}"
    );
    let spi_log = transport_log(&run, "flash");
    assert!(
        spi_log.contains("transfer tx=9F 00 00 00 rx=FF EF 40 18"),
        "{spi_log}"
    );
    let locks = r["resource_locks"]["locks"].as_array().unwrap();
    assert!(locks.iter().any(|l| l["key"] == "i2c-bus:1"), "{locks:#?}");
    assert!(locks.iter().any(|l| l["key"] == "spi:0.0"), "{locks:#?}");
}

/// The first test's failure, and the run's status and exit code.
fn failure_of(code: i32, r: &Value) -> (i32, String, String, String, String) {
    let f = if r["tests"][0]["failure"].is_null() {
        &r["failure"]
    } else {
        &r["tests"][0]["failure"]
    };
    (
        code,
        r["status"].as_str().unwrap_or_default().to_string(),
        f["category"].as_str().unwrap_or_default().to_string(),
        f["source"].as_str().unwrap_or_default().to_string(),
        f["message"].as_str().unwrap_or_default().to_string(),
    )
}

fn run_one(dir: &Path, bench: &Path, steps: &[&str]) -> (i32, PathBuf, Value) {
    let suite = write_suite_tests(dir, "bus", &[("one", steps), ("next", &["sleep_ms: 1"])]);
    run_results(dir, bench, &suite)
}

#[test]
fn device_answers_are_firmware_failures_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = sim();
    let bench = write_bench(dir.path(), &sim.address);

    // A scan missing an expected device.
    let (code, _, r) = run_one(
        dir.path(),
        &bench,
        &["i2c_scan: {node: dut, transport: sensors, expect_addresses: [0x48, 0x4a]}"],
    );
    let (code, status, cat, source, msg) = failure_of(code, &r);
    assert_eq!((code, status.as_str()), (1, "failed"), "{r:#}");
    assert_eq!(
        (cat.as_str(), source.as_str()),
        ("I2C_EXPECTATION_FAILED", "firmware")
    );
    assert!(
        msg.contains("I2C scan missing expected address(es): 0x4a"),
        "{msg}"
    );
    assert_eq!(r["tests"][1]["passed"], true, "the next test still runs");
    assert_eq!(
        r["tests"][0]["failure"]["details"]["missing"],
        serde_json::json!([0x4a])
    );

    // A register that reads other bytes.
    sim.control("temp 30.5");
    let (code, run, r) = run_one(
        dir.path(),
        &bench,
        &[
            "i2c_read_register: {node: dut, transport: sensors, address: 0x48, register: 0, length: 2, expect: [0x19, 0x00]}",
        ],
    );
    let (_, status, cat, _, msg) = failure_of(code, &r);
    assert_eq!(
        (status.as_str(), cat.as_str()),
        ("failed", "I2C_EXPECTATION_FAILED")
    );
    assert!(
        msg.contains("I2C register mismatch: expected [25, 0], got [30, 128]"),
        "{msg}"
    );
    assert!(transport_log(&run, "sensors").contains("MISMATCH"));

    // No acknowledge: the device is there but does not answer this time.
    assert!(sim.control("nack 0x48 1").starts_with("ok"), "control");
    let (code, _, r) = run_one(
        dir.path(),
        &bench,
        &[
            "i2c_read_register: {node: dut, transport: sensors, address: 0x48, register: 0, length: 2}",
        ],
    );
    let (code, status, cat, source, msg) = failure_of(code, &r);
    assert_eq!(
        (code, status.as_str(), cat.as_str(), source.as_str()),
        (1, "failed", "I2C_EXPECTATION_FAILED", "firmware"),
        "{r:#}"
    );
    assert!(msg.contains("no acknowledge from address 0x48"), "{msg}");

    // i2c_expect polls until within_ms, then reports how often it read.
    let (code, _, r) = run_one(
        dir.path(),
        &bench,
        &[
            "i2c_expect: {node: dut, transport: sensors, address: 0x48, register: 0, length: 2, expect: [0, 0], within_ms: 150}",
        ],
    );
    let (_, _, cat, _, msg) = failure_of(code, &r);
    assert_eq!(cat, "I2C_EXPECTATION_FAILED");
    assert!(msg.contains("reads)"), "{msg}");

    // An SPI device answering other bytes: a firmware mismatch; the wrong mode shows it.
    let (code, _, r) = run_one(
        dir.path(),
        &bench,
        &[
            "spi_expect: {node: dut, transport: wrong_mode, data: \"9F 00 00 00\", expect: \"FF EF 40 18\"}",
        ],
    );
    let (code, status, cat, source, msg) = failure_of(code, &r);
    assert_eq!(
        (code, status.as_str(), cat.as_str(), source.as_str()),
        (1, "failed", "SPI_EXPECTATION_FAILED", "firmware"),
        "{r:#}"
    );
    assert!(
        msg.contains("SPI response mismatch: expected FF EF 40 18, got FF F7 A0 0C"),
        "{msg}"
    );
}

#[test]
fn a_bus_that_cannot_be_used_is_a_bench_failure_and_ends_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = sim();
    let bench = write_bench(dir.path(), &sim.address);

    // Clock stretching beyond the transport's 200 ms timeout.
    sim.control("stretch 400");
    let (code, _, r) = run_one(
        dir.path(),
        &bench,
        &[
            "i2c_read_register: {node: dut, transport: sensors, address: 0x48, register: 0, length: 2}",
        ],
    );
    let (code, status, cat, source, msg) = failure_of(code, &r);
    assert_eq!(
        (code, status.as_str(), cat.as_str(), source.as_str()),
        (4, "error", "I2C_FAILED", "bench_infrastructure"),
        "{r:#}"
    );
    assert!(
        msg.contains("did not finish the transfer within 200 ms"),
        "{msg}"
    );
    assert_eq!(
        r["tests"].as_array().unwrap().len(),
        1,
        "the run stops: {r:#}"
    );
    sim.control("stretch 0");

    // Lost arbitration.
    sim.control("arbitration 1");
    let (code, _, r) = run_one(
        dir.path(),
        &bench,
        &["i2c_scan: {node: dut, transport: sensors}"],
    );
    let (code, _, cat, _, msg) = failure_of(code, &r);
    assert_eq!((code, cat.as_str()), (4, "I2C_FAILED"), "{r:#}");
    assert!(msg.contains("arbitration lost"), "{msg}");

    // A chip select with no device cannot be opened, as a missing /dev/spidevB.D.
    let (code, _, r) = run_one(
        dir.path(),
        &bench,
        &["spi_transfer: {node: dut, transport: ghost, data: \"9F\"}"],
    );
    let (code, _, cat, source, msg) = failure_of(code, &r);
    assert_eq!(
        (code, cat.as_str(), source.as_str()),
        (4, "TRANSPORT_OPEN_FAILED", "bench_infrastructure"),
        "{r:#}"
    );
    assert!(msg.contains("chip select 7"), "{msg}");

    // Missing kernel device nodes: the transport cannot be opened.
    for (step, node) in [
        ("i2c_scan: {node: dut, transport: real_i2c}", "/dev/i2c-250"),
        (
            "spi_transfer: {node: dut, transport: real_spi, data: \"00\"}",
            "/dev/spidev250.0",
        ),
    ] {
        let (code, _, r) = run_one(dir.path(), &bench, &[step]);
        let (code, status, cat, source, msg) = failure_of(code, &r);
        assert_eq!(
            (code, status.as_str(), cat.as_str(), source.as_str()),
            (4, "error", "TRANSPORT_OPEN_FAILED", "bench_infrastructure"),
            "{r:#}"
        );
        assert!(msg.contains(node), "{msg}");
    }

    // The simulator gone: the link fails.
    drop(sim);
    let (code, _, r) = run_one(
        dir.path(),
        &bench,
        &["i2c_scan: {node: dut, transport: sensors}"],
    );
    let (code, _, cat, _, msg) = failure_of(code, &r);
    assert_eq!((code, cat.as_str()), (4, "TRANSPORT_OPEN_FAILED"), "{r:#}");
    assert!(msg.contains("simulated bus"), "{msg}");
}

#[test]
fn bad_input_is_refused_before_the_run_at_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let bench = write_bench(dir.path(), "127.0.0.1:9");
    for (step, want) in [
        (
            "i2c_read_register: {node: dut, transport: sensors, address: 0x80, register: 0}",
            "steps[0].i2c_read_register.address",
        ),
        (
            "i2c_scan: {node: dut, transport: sensors, start_address: 0x50, end_address: 0x10}",
            "start_address must not exceed end_address",
        ),
        (
            "i2c_expect: {node: dut, transport: sensors, address: 0x48, register: 0, length: 2, expect: [1]}",
            "has 1 bytes but length is 2",
        ),
        (
            "i2c_write_register: {node: dut, transport: sensors, address: 0x50, register: 0, value: [1, 300]}",
            "i2c_write_register.value[1]",
        ),
        (
            "i2c_read_register: {node: dut, transport: sensors, address: 0x48, register: 0, length: 33}",
            "i2c_read_register.length",
        ),
        (
            "spi_expect: {node: dut, transport: flash, data: \"9F 00\", expect: \"FF\"}",
            "has 1 bytes but data has 2",
        ),
        (
            "spi_transfer: {node: dut, transport: flash, data: \"9G\"}",
            "spi_transfer.data",
        ),
        (
            "spi_transfer: {node: dut, transport: sensors, data: \"9F\"}",
            "sensors",
        ),
    ] {
        let suite = write_suite_tests(dir.path(), "bad", &[("bad", &[step])]);
        let err = validate_error(&bench, &suite);
        assert!(
            err.contains("suite.yaml:") && err.contains(want),
            "{step}: {err}"
        );
    }
    // A bad `sim:` address in the bench is located too.
    let bench_text = std::fs::read_to_string(&bench).unwrap().replace(
        "sim: \"127.0.0.1:9\"}\n      flash",
        "sim: \"nowhere\"}\n      flash",
    );
    std::fs::write(&bench, bench_text).unwrap();
    let suite = write_suite_tests(
        dir.path(),
        "ok",
        &[("ok", &["i2c_scan: {node: dut, transport: sensors}"])],
    );
    let err = validate_error(&bench, &suite);
    assert!(
        err.contains("bench.yaml:7:") && err.contains("sim"),
        "{err}"
    );
}

#[test]
fn a_wrong_length_for_the_word_size_is_a_configuration_failure() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim();
    let bench = write_bench(dir.path(), &sim.address);
    let (code, _, r) = run_one(
        dir.path(),
        &bench,
        &["spi_transfer: {node: dut, transport: words, data: \"80 00 00\"}"],
    );
    let (code, status, cat, source, msg) = failure_of(code, &r);
    assert_eq!(
        (code, status.as_str(), cat.as_str(), source.as_str()),
        (3, "error", "SPI_FAILED", "configuration"),
        "{r:#}"
    );
    assert!(
        msg.contains("3 bytes are not a whole number of 16-bit words"),
        "{msg}"
    );
}

#[test]
fn the_doctor_names_missing_bus_nodes_and_opens_simulated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim();
    let bench = write_bench(dir.path(), &sim.address);
    let out = common::hilt()
        .env("HILT_LOCK_DIR", dir.path().join("locks"))
        .args(["doctor", "--bench"])
        .arg(&bench)
        .arg("--json")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let checks = doc["bench"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"));
    let with = |id: &str| -> Vec<&Value> { checks.iter().filter(|c| c["id"] == id).collect() };
    let real = with("node.dut.transport.real_i2c");
    assert!(
        real.iter().any(|c| c["status"] == "fail"
            && c["message"].as_str().unwrap().contains("/dev/i2c-250")
            && c["suggested_fix"]
                .as_str()
                .unwrap()
                .contains("modprobe i2c-dev")),
        "{doc:#}"
    );
    let spi = with("node.dut.transport.real_spi");
    assert!(
        spi.iter().any(|c| c["status"] == "fail"
            && c["message"].as_str().unwrap().contains("/dev/spidev250.0")),
        "{doc:#}"
    );
    let simulated = with("node.dut.transport.sensors");
    assert!(
        !simulated.is_empty() && simulated.iter().all(|c| c["status"] == "pass"),
        "{doc:#}"
    );
    assert_eq!(doc["bench"]["health_status"], "failing");
    assert_eq!(out.status.code(), Some(1));
}
