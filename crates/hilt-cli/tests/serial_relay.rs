//! The `usb_relay_serial` power driver (command maps) through the real `hilt` binary
//! against the simulated serial relay board on a pty: switching, readback, a board that
//! does not answer, and a bad command map located in the bench file.

mod common;

use std::path::{Path, PathBuf};

use common::hw::{run_results, validate_error, write_suite_steps};
use hilt_sim::SerialRelaySim;

fn write_files(dir: &Path, port: &Path, get2: &str, steps: &[&str]) -> (PathBuf, PathBuf) {
    let bench = dir.join("bench.yaml");
    std::fs::write(
        &bench,
        format!(
            r#"version: 1
bench: {{name: relay rig}}
nodes:
  dut:
    kind: mcu
    gpio: {{led: {{backend: mock_gpio, channel: 1, direction: input}}}}
resources:
  board:
    kind: relay_controller
    driver:
      type: usb_relay_serial
      model: command_map
      port: "{}"
      timeout_ms: 300
      outlets: {{dut: 1, fan: 2}}
      on_commands: {{"1": "A0 01 01 A2", "2": "A00201A3"}}
      off_commands: {{"1": "A0 01 00 A1", "2": "A0 02 00 A2"}}
      get_commands: {{"1": "A0 01 02 A3", "2": "{get2}"}}
      on_response_values: ["a0 01 01 a2", "a00201a3"]
      off_response_values: ["a00100a1", "A0 02 00 A2"]
      on_settle_ms: 0
      off_settle_ms: 0
"#,
            port.display()
        ),
    )
    .unwrap();
    let suite = write_suite_steps(dir, "r", "relay", steps);
    (bench, suite)
}

#[test]
fn command_maps_switch_and_read_back_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyRELAY");
    let sim = SerialRelaySim::start(Some(link.clone())).unwrap();
    let (bench, suite) = write_files(
        dir.path(),
        &link,
        "A0 02 02 A4",
        &[
            "power_set: {resource: board, outlet: dut, state: true}",
            "power_expect: {resource: board, outlet: dut, state: true}",
            "power_set: {resource: board, outlet: fan, state: true}",
            "power_cycle: {resource: board, outlet: fan, off_ms: 10, on_settle_ms: 0}",
            "power_set: {resource: board, outlet: dut, state: false}",
            "power_expect: {resource: board, outlet: dut, state: false}",
            "power_expect: {resource: board, outlet: fan, state: true}",
        ],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    assert!(!sim.channel(1));
    assert!(sim.channel(2));
    let ops: Vec<(u8, u8)> = sim.frames().iter().map(|f| (f[1], f[2])).collect();
    assert_eq!(
        ops,
        [
            (1, 1),
            (1, 2),
            (2, 1),
            (2, 0),
            (2, 1),
            (1, 0),
            (1, 2),
            (2, 2)
        ]
    );
    let locks = r["resource_locks"]["locks"].as_array().unwrap();
    assert!(
        locks.iter().any(|l| l["category"] == "power_serial_relay"),
        "{locks:#?}"
    );
}

#[test]
fn a_silent_board_and_a_bad_map() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyRELAY");
    let _sim = SerialRelaySim::start(Some(link.clone())).unwrap();
    // A query with a bad checksum: the board ignores it, so nothing answers.
    let (bench, suite) = write_files(
        dir.path(),
        &link,
        "A0 02 02 00",
        &["power_expect: {resource: board, outlet: fan, state: false}"],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "POWER_CONTROL_FAILED");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no answer to the state query of channel 2 within 300 ms"),
        "{msg}"
    );

    let (bench, suite) = write_files(
        dir.path(),
        &link,
        "A0 2",
        &["power_set: {resource: board, outlet: fan, state: true}"],
    );
    let err = validate_error(&bench, &suite);
    assert!(
        err.contains("resources.board.driver.get_commands.2: `A0 2` is not hex bytes"),
        "{err}"
    );
}
