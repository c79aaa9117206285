//! The SCPI measurement drivers (`scpi_measurement`, `scpi_power_supply_measurement`)
//! through the real `hilt` binary against the simulated instrument, in-process and as
//! `hilt sim scpi`: readings with units and limits in results.json, set points applied
//! and refused, an instrument answering garbage or nothing, a bad address located.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::hw::{SimProcess, metric, run_results, validate_error, write_suite_steps};
use hilt_sim::ScpiSim;

fn write_bench(dir: &Path, address: &str, set_voltage: &str) -> PathBuf {
    let text = format!(
        r#"version: 1
bench: {{name: scpi rig}}
nodes:
  dut: {{kind: mcu, gpio: {{led: {{backend: mock_gpio, channel: 1, direction: input}}}}}}
resources:
  rail_v:
    kind: measurement
    driver:
      type: scpi_power_supply_measurement
      address: "{address}"
      preset: rigol_dp_basic
      channel: 1
      quantity: voltage
      set_voltage: {set_voltage}
      set_current: 0.5
      timeout_ms: 500
  rail_i:
    kind: measurement
    driver: {{type: scpi_power_supply_measurement, address: "{address}", quantity: current, timeout_ms: 500}}
  meter:
    kind: measurement
    driver: {{type: scpi_measurement, address: "{address}", query: "MEAS:VOLT:DC?", quantity: voltage, unit: V, timeout_ms: 500}}
"#
    );
    let p = dir.join("bench.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn write_suite(dir: &Path, steps: &[&str]) -> PathBuf {
    write_suite_steps(dir, "scpi", "rails", steps)
}

#[test]
fn readings_carry_units_limits_and_the_query_into_results() {
    let dir = tempfile::tempdir().unwrap();
    let sim = ScpiSim::start("127.0.0.1:0").unwrap();
    let bench = write_bench(dir.path(), &sim.address(), "3.3");
    let suite = write_suite(
        dir.path(),
        &[
            "measure: {resource: rail_v, record_as: rail, unit: V, expect_equal: 3.3, tolerance: 0.01}",
            "measure: {resource: rail_i, record_as: load, unit: A, expect_greater_than: 0.03, expect_less_than: 0.035}",
            "measure: {resource: meter, expect_greater_than_or_equal: 3.2}",
        ],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    let rail = metric(&r, "rail");
    assert_eq!(rail["value"], 3.3);
    assert_eq!(rail["unit"], "V");
    assert_eq!(rail["quantity"], "voltage");
    assert_eq!(rail["backend"], "scpi_power_supply_measurement");
    assert_eq!(rail["query"], ":MEAS:VOLT? CH1");
    assert_eq!(rail["raw_response"], "+3.300000E0");
    assert_eq!(rail["address"], sim.address());
    assert_eq!(rail["assertion"], "== 3.3 ± 0.01");
    let load = metric(&r, "load");
    assert_eq!(load["unit"], "A", "the preset's default unit");
    assert!((load["value"].as_f64().unwrap() - 0.033).abs() < 1e-9);
    assert_eq!(load["assertion"], "< 0.035 and > 0.03");
    assert_eq!(metric(&r, "meter")["query"], "MEAS:VOLT:DC?");
    assert_eq!(sim.setpoints(1), (3.3, 0.5));
    let cmds = sim.commands();
    assert!(
        cmds.starts_with(&[
            "INST:NSEL 1".to_string(),
            "VOLT 3.3".into(),
            "CURR 0.5".into(),
            "SYST:ERR?".into()
        ]),
        "{cmds:?}"
    );

    // Outside its limits: the test fails, the reading is still recorded.
    let suite = write_suite(
        dir.path(),
        &["measure: {resource: rail_v, record_as: rail, expect_greater_than: 4.5}"],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(
        r["tests"][0]["failure"]["category"],
        "MEASUREMENT_ASSERTION_FAILED"
    );
    assert_eq!(metric(&r, "rail")["assertion"], "> 4.5 (violated)");
}

#[test]
fn garbage_silence_and_refused_set_points_are_measurement_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = SimProcess::start(&["scpi", "--tcp", "127.0.0.1:0"], "tcp://");
    let bench = write_bench(dir.path(), &sim.address, "3.3");
    let suite = write_suite(dir.path(), &["measure: {resource: meter}"]);

    assert_eq!(sim.control("fault garbage"), "ok");
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "MEASUREMENT_FAILED");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("answered \"#@!ERR\" to `MEAS:VOLT:DC?`, which is not a number"),
        "{msg}"
    );

    assert_eq!(sim.control("fault silence"), "ok");
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no answer to `MEAS:VOLT:DC?` within 500 ms"),
        "{msg}"
    );

    // 45 V is beyond the supply's range: it queues -222 and the run stops before a test.
    let bench = write_bench(dir.path(), &sim.address, "45");
    let suite = write_suite(dir.path(), &["measure: {resource: rail_v}"]);
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "MEASUREMENT_FAILED");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("refused the set points") && msg.contains("-222,\"Data out of range\""),
        "{msg}"
    );
    assert!(sim.control("get").starts_with("ch1=5V/0.5A/on"));
}

#[test]
fn a_visa_address_is_a_located_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let bench = write_bench(dir.path(), "USB0::0x1AB1::0x0E11::DP8C1::INSTR", "3.3");
    let suite = write_suite(dir.path(), &["measure: {resource: meter}"]);
    let err = validate_error(&bench, &suite);
    assert!(
        err.contains("bench.yaml:22:47: resources.meter.driver.address: `USB0::0x1AB1::0x0E11::DP8C1::INSTR` is a VISA resource string"),
        "{err}"
    );
}

#[test]
fn the_same_instrument_over_a_serial_line() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyPSU");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("hilt"))
        .args(["sim", "scpi", "--serial"])
        .arg(&link)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("serial://{}", link.display()));
    let bench = write_bench(dir.path(), line.trim(), "12");
    let suite = write_suite(
        dir.path(),
        &["measure: {resource: rail_v, record_as: v, unit: V, expect_equal: 12}"],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(metric(&r, "v")["value"], 12.0);
    assert_eq!(
        metric(&r, "v")["address"],
        format!("serial://{}", link.display())
    );
    let locks = r["resource_locks"]["locks"].as_array().unwrap();
    assert!(
        locks.iter().any(|l| l["category"] == "measurement_serial"
            && l["key"] == format!("serial:{}", link.display())),
        "{locks:#?}"
    );
    // A serial port has one user at a time: two resources on it cannot both be open.
    let suite = write_suite(
        dir.path(),
        &["measure: {resource: rail_v}", "measure: {resource: meter}"],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "MEASUREMENT_RESOURCE_UNAVAILABLE");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(msg.contains("busy"), "{msg}");
    let suite = write_suite(dir.path(), &["measure: {resource: meter, record_as: dc}"]);
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(metric(&r, "dc")["value"], 12.0);
    assert!(!link.exists(), "the sim removes its link when it stops");
}
