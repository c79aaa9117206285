//! `local_gpio` through the whole runner on a `sim:` chip of this test process: the test
//! plays the outside world (reads the outputs the suite drives, drives the inputs it
//! waits on) while the run goes on in another thread.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use hilt_hw::CancelToken;
use hilt_hw::gpiochip::sim_chip;
use hilt_hw::locks::LockConfig;
use hilt_runner::RunOptions;

fn write(dir: &Path, chip: &str, extra_line: &str, steps: &str) -> RunOptions {
    let bench = dir.join("bench.yaml");
    std::fs::write(
        &bench,
        format!(
            "version: 1\nbench: {{name: local rig}}\nnodes:\n  dut:\n    kind: mcu\n    gpio:\n      \
             led: {{backend: local_gpio, chip: \"{chip}\", line: 4, direction: output}}\n      \
             nreset: {{backend: local_gpio, chip: \"{chip}\", line: 6, direction: output, active_high: false}}\n      \
             button: {{backend: local_gpio, chip: \"{chip}\", line: 7, direction: input, active_high: false, bias: pull_up, edge: both}}\n{extra_line}"
        ),
    )
    .unwrap();
    let suite = dir.join("suite.yaml");
    std::fs::write(
        &suite,
        format!("version: 1\nsuite: {{name: local}}\ntests:\n  - name: lines\n    steps:\n{steps}"),
    )
    .unwrap();
    RunOptions {
        bench,
        suite,
        results_dir: Some(dir.join("run")),
        lock_config: Some(LockConfig {
            dir: dir.join("locks"),
            enabled: true,
        }),
        ..RunOptions::default()
    }
}

fn results(dir: &Path) -> Value {
    let p: PathBuf = dir.join("run").join("results.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Polls `f` every millisecond for up to 10 s.
fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn gpio_steps_drive_a_local_chip() {
    let dir = tempfile::tempdir().unwrap();
    let opts = write(
        dir.path(),
        "sim:runner-local",
        "",
        "      - gpio_get: {node: dut, line: button, expect: false}
      - gpio_set: {node: dut, line: led, value: true}
      - gpio_wait_edge: {node: dut, line: button, edge: rising, within_ms: 5000}
      - gpio_expect: {node: dut, line: button, value: true, within_ms: 1000}
      - gpio_set: {node: dut, line: nreset, value: true}
      - gpio_expect: {node: dut, line: button, value: false, within_ms: 5000}
",
    );
    let sim = sim_chip("runner-local");
    let run = std::thread::spawn(move || {
        hilt_runner::run(&opts, &mut hilt_runner::Quiet, &CancelToken::new()).unwrap()
    });
    wait_for("the lines to be requested", || sim.is_requested(7));
    assert_eq!(sim.consumer(4).as_deref(), Some("hilt"));
    // The active-low output starts logically inactive: physically high.
    assert!(sim.level(6), "nreset must start high (inactive)");
    wait_for("the suite to switch the LED on", || sim.level(4));
    std::thread::sleep(Duration::from_millis(50));
    sim.drive(7, false); // pressed: active low
    wait_for("the suite to assert nreset", || !sim.level(6));
    sim.drive(7, true); // released
    let outcome = run.join().unwrap();
    let r = results(dir.path());
    assert_eq!(outcome.exit_code, 0, "{r:#}");
    let keys: Vec<String> = r["resource_locks"]["locks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["key"].as_str().map(str::to_string))
        .collect();
    assert!(
        keys.contains(&"gpio:local:sim:runner-local:7".to_string()),
        "{keys:?}"
    );
    assert!(!sim.is_requested(4), "released at the end of the run");
}

#[test]
fn a_missing_chip_is_an_unreachable_line_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let opts = write(
        dir.path(),
        "/dev/hilt-no-gpiochip",
        "",
        "      - gpio_set: {node: dut, line: led, value: true}\n",
    );
    let outcome = hilt_runner::run(&opts, &mut hilt_runner::Quiet, &CancelToken::new()).unwrap();
    let r = results(dir.path());
    assert_eq!(outcome.exit_code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "GPIO_LINE_UNREACHABLE");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("cannot open GPIO chip /dev/hilt-no-gpiochip: no such device"),
        "{msg}"
    );
}

#[test]
fn a_line_number_used_twice_is_refused_before_anything_is_requested() {
    let dir = tempfile::tempdir().unwrap();
    let opts = write(
        dir.path(),
        "sim:runner-dup",
        "      again: {backend: local_gpio, chip: \"sim:runner-dup\", line: 4, direction: input}\n",
        "      - gpio_set: {node: dut, line: led, value: true}\n",
    );
    let outcome = hilt_runner::run(&opts, &mut hilt_runner::Quiet, &CancelToken::new()).unwrap();
    let r = results(dir.path());
    assert_eq!(outcome.exit_code, 4, "{r:#}");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("lines `again` and `led` of node `dut` both use line number 4"),
        "{msg}"
    );
    assert!(!sim_chip("runner-dup").is_requested(6));
}
