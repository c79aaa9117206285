//! `gpio_power` and `i2c_power_monitor` through the real `hilt` binary. The relay lines
//! are a `sim:loopback` GPIO chip of the run's own process (output 2k drives input 2k+1
//! 50 ms later), so a node's input line sees the outlet switch; the power monitors are
//! the INA226/INA260 of `hilt sim bus`. Readings carry units and limits into
//! results.json; a monitor that does not answer, an outlet never switched, and
//! parameters a chip cannot be read with are specific failures; `hilt doctor --bench`
//! checks both without switching anything.

mod common;

use std::path::{Path, PathBuf};

use common::hilt;
use common::hw::{SimProcess, metric, run_results, validate_error, write_suite_tests};

fn write_bench(dir: &Path, sim: &str, initial_state: &str, ina226_current: &str) -> PathBuf {
    let text = format!(
        r#"version: 1
bench: {{name: power rig}}
nodes:
  dut:
    kind: mcu
    gpio:
      powered: {{backend: local_gpio, chip: "sim:loopback", line: 3, direction: input}}
resources:
  relay:
    kind: relay_controller
    driver: {{type: gpio_power, chip: "sim:loopback", outlets: {{dut: 2, fan: 4}}, {initial_state}on_settle_ms: 60, off_settle_ms: 60}}
  rail_v:
    kind: measurement
    driver: {{type: i2c_power_monitor, chip: ina226, bus: 1, address: 0x40, quantity: voltage, sim: "{sim}"}}
  rail_i:
    kind: measurement
    driver: {{type: i2c_power_monitor, chip: ina226, bus: 1, address: 0x40, quantity: current, {ina226_current}sim: "{sim}"}}
  rail_p:
    kind: measurement
    driver: {{type: i2c_power_monitor, chip: ina260, bus: 1, address: 0x41, quantity: power, unit: W, sim: "{sim}"}}
  missing:
    kind: measurement
    driver: {{type: i2c_power_monitor, chip: ina260, bus: 1, address: 0x45, quantity: voltage, timeout_ms: 200, sim: "{sim}"}}
"#
    );
    let p = dir.join("bench.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn bus_sim() -> SimProcess {
    SimProcess::start(&["bus", "--listen", "127.0.0.1:0"], "127.0.0.1:")
}

const LSB: &str = "current_lsb_a: 0.0001, ";

#[test]
fn a_gpio_relay_switches_the_line_the_node_sees() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bus_sim();
    let bench = write_bench(dir.path(), &sim.address, "", LSB);
    let suite = write_suite_tests(
        dir.path(),
        "power",
        &[(
            "relay",
            &[
                "power_set: {resource: relay, outlet: dut, state: on}",
                "power_expect: {resource: relay, outlet: dut, state: on}",
                "gpio_expect: {node: dut, line: powered, value: true, within_ms: 500}",
                "power_cycle: {resource: relay, outlet: dut, off_ms: 100}",
                "gpio_expect: {node: dut, line: powered, value: true, within_ms: 500}",
                "power_set: {resource: relay, outlet: dut, state: off}",
                "power_expect: {resource: relay, outlet: dut, state: off}",
                "gpio_expect: {node: dut, line: powered, value: false, within_ms: 500}",
            ],
        )],
    );
    let (code, run, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    let locks = r["resource_locks"]["locks"].as_array().unwrap();
    for line in [2, 4] {
        assert!(
            locks
                .iter()
                .any(|l| l["key"] == format!("gpio:local:sim:loopback:{line}")
                    && l["category"] == "power_gpio_line"),
            "{locks:#?}"
        );
    }
    let log = std::fs::read_to_string(run.join("logs/resources/relay/power.log")).unwrap();
    assert!(log.contains("START"), "{log}");
}

#[test]
fn without_initial_state_an_outlet_is_left_alone_and_has_no_readback() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bus_sim();
    let bench = write_bench(dir.path(), &sim.address, "", LSB);
    let suite = write_suite_tests(
        dir.path(),
        "power",
        &[(
            "untouched",
            &["power_expect: {resource: relay, outlet: fan, state: off}"],
        )],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    let f = &r["failure"];
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(f["category"], "POWER_READBACK_UNAVAILABLE", "{r:#}");
    assert!(
        f["message"].as_str().unwrap().contains("left untouched"),
        "{f:#}"
    );
    // With initial_state the outlet starts there and reads back.
    let bench = write_bench(dir.path(), &sim.address, "initial_state: true, ", LSB);
    let suite = write_suite_tests(
        dir.path(),
        "power",
        &[(
            "initial",
            &[
                "power_expect: {resource: relay, outlet: fan, state: on}",
                "power_expect: {resource: relay, outlet: dut, state: on}",
            ],
        )],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn power_monitors_read_with_units_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = bus_sim();
    let bench = write_bench(dir.path(), &sim.address, "", LSB);
    sim.control("supply 3.3 0.25");
    let suite = write_suite_tests(
        dir.path(),
        "rails",
        &[(
            "rails",
            &[
                "measure: {resource: rail_v, record_as: rail_v, unit: V, expect_equal: 3.3, tolerance: 0.002}",
                "measure: {resource: rail_i, record_as: rail_i, unit: A, expect_greater_than: 0.2, expect_less_than: 0.3}",
                "measure: {resource: rail_p, record_as: rail_p, unit: W, expect_less_than: 1.0}",
            ],
        )],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    let v = metric(&r, "rail_v");
    assert_eq!(v["unit"], "V");
    assert_eq!(v["quantity"], "voltage");
    assert_eq!(v["backend"], "i2c_power_monitor");
    assert!(
        (v["value"].as_f64().unwrap() - 3.3).abs() < 0.00125,
        "{v:#}"
    );
    assert_eq!(v["query"], "register 0x02");
    assert_eq!(v["assertion"], "== 3.3 ± 0.002");
    let i = metric(&r, "rail_i");
    assert!((i["value"].as_f64().unwrap() - 0.25).abs() < 1e-9, "{i:#}");
    assert_eq!(i["address"], "0x40", "as BenchCI writes it");
    let p = metric(&r, "rail_p");
    assert!((p["value"].as_f64().unwrap() - 0.83).abs() < 0.011, "{p:#}");

    // Over the limit: the reading is kept, the assertion fails as the firmware's.
    sim.control("supply 3.3 0.4");
    let suite = write_suite_tests(
        dir.path(),
        "rails",
        &[(
            "over",
            &["measure: {resource: rail_i, record_as: rail_i, unit: A, expect_less_than: 0.3}"],
        )],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(
        r["tests"][0]["failure"]["category"],
        "MEASUREMENT_ASSERTION_FAILED"
    );
    assert!((metric(&r, "rail_i")["value"].as_f64().unwrap() - 0.4).abs() < 1e-9);
}

#[test]
fn a_monitor_that_does_not_answer_is_a_measurement_failure() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bus_sim();
    let bench = write_bench(dir.path(), &sim.address, "", LSB);
    let suite = write_suite_tests(
        dir.path(),
        "rails",
        &[("absent", &["measure: {resource: missing}"])],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "MEASUREMENT_FAILED", "{r:#}");
    assert_eq!(r["failure"]["source"], "bench_infrastructure");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("0x45") && msg.contains("no acknowledge"),
        "{msg}"
    );
}

#[test]
fn parameters_a_chip_cannot_be_read_with_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let bench = write_bench(dir.path(), "127.0.0.1:9", "", "");
    let suite = write_suite_tests(
        dir.path(),
        "rails",
        &[("i", &["measure: {resource: rail_i}"])],
    );
    let err = validate_error(&bench, &suite);
    assert!(
        err.contains("bench.yaml:17:") && err.contains("current_lsb_a") && err.contains("shunt"),
        "{err}"
    );
    let generic = std::fs::read_to_string(&bench).unwrap().replace(
        "chip: ina226, bus: 1, address: 0x40, quantity: current, ",
        "chip: generic_i2c_power_monitor, bus: 1, address: 0x40, quantity: current, ",
    );
    std::fs::write(&bench, generic).unwrap();
    let err = validate_error(&bench, &suite);
    assert!(err.contains("no known register map"), "{err}");
    let dup = std::fs::read_to_string(&bench)
        .unwrap()
        .replace("outlets: {dut: 2, fan: 4}", "outlets: {dut: 2, fan: 2}");
    std::fs::write(&bench, dup).unwrap();
    let suite = write_suite_tests(
        dir.path(),
        "p",
        &[(
            "p",
            &["power_set: {resource: relay, outlet: dut, state: on}"],
        )],
    );
    let err = validate_error(&bench, &suite);
    assert!(
        err.contains("relay.driver.outlets") && err.contains("its own line"),
        "{err}"
    );
}

#[test]
fn the_doctor_checks_relays_and_monitors_without_switching() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bus_sim();
    let bench = write_bench(dir.path(), &sim.address, "initial_state: true, ", LSB);
    let out = hilt()
        .env("HILT_LOCK_DIR", dir.path().join("locks"))
        .args(["doctor", "--bench"])
        .arg(&bench)
        .arg("--json")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let checks = doc["bench"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"));
    let find = |id: &str| {
        checks
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id}: {doc:#}"))
    };
    assert_eq!(
        find("resource.relay.power.start")["status"],
        "pass",
        "{doc:#}"
    );
    assert_eq!(
        find("resource.rail_v.measurement.start")["status"],
        "pass",
        "{doc:#}"
    );
    let read = find("resource.rail_v.measurement.read");
    assert_eq!(read["status"], "pass", "{doc:#}");
    assert!(
        read["message"].as_str().unwrap().contains("5 V"),
        "{read:#}"
    );
    let missing = find("resource.missing.measurement.read");
    assert_eq!(missing["status"], "fail", "{doc:#}");
    assert!(
        missing["message"].as_str().unwrap().contains("0x45"),
        "{missing:#}"
    );
}
