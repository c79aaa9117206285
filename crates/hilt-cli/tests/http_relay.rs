//! The `http_relay` power driver through the real `hilt` binary, against the simulated
//! HTTP relay board (in-process to check the exact requests, and as `hilt sim http-relay`).

mod common;

use std::path::{Path, PathBuf};

use common::hw::{SimProcess, run_dir, validate_error};
use common::json;
use hilt_sim::{HttpRelayConfig, HttpRelaySim};

fn write_bench(dir: &Path, base: &str, extra: &str) -> PathBuf {
    let text = r#"version: 1
bench: {name: relay rig}
nodes:
  dut:
    kind: mcu
    gpio: {led: {backend: mock_gpio, channel: 1, direction: input}}
resources:
  mains:
    kind: power_controller
    driver:
      type: http_relay
      outlets: {dut: "3", fan: "4"}
      on_url: "BASE/relay/{channel}/on"
      off_url: "BASE/relay/{channel}/set/{value}"
      get_url: "BASE/relay/{channel}"
      method: POST
      headers: {X-Token: s3cret}
      on_settle_ms: 0
      off_settle_ms: 0
EXTRA"#
        .replace("BASE", base)
        .replace("EXTRA", extra);
    let p = dir.join("bench.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn write_suite(dir: &Path, steps: &str) -> PathBuf {
    let p = dir.join("suite.yaml");
    std::fs::write(
        &p,
        format!("version: 1\nsuite: {{name: relay}}\ntests:\n  - name: power\n    steps:\n{steps}"),
    )
    .unwrap();
    p
}

#[test]
fn power_steps_send_the_spec_requests_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = HttpRelaySim::start(
        "127.0.0.1:0",
        HttpRelayConfig {
            latency_ms: 5,
            require_header: Some(("X-Token".into(), "s3cret".into())),
        },
    )
    .unwrap();
    let bench = write_bench(dir.path(), &sim.base_url(), "");
    let suite = write_suite(
        dir.path(),
        "      - power_set: {resource: mains, outlet: dut, state: true}
      - power_expect: {resource: mains, outlet: dut, state: true}
      - power_cycle: {resource: mains, outlet: dut, off_ms: 20, on_settle_ms: 0}
      - power_set: {resource: mains, outlet: fan, state: false}
      - power_expect: {resource: mains, outlet: fan, state: false}
",
    );
    let (code, run) = run_dir(dir.path(), &bench, &suite);
    let r = json(&run.join("results.json"));
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["status"], "passed");
    assert_eq!(sim.channel("3"), Some(true));
    assert_eq!(sim.channel("4"), Some(false));
    let seen: Vec<(String, String)> = sim
        .requests()
        .into_iter()
        .map(|q| {
            assert_eq!(q.headers.get("x-token").map(String::as_str), Some("s3cret"));
            (q.method, q.path)
        })
        .collect();
    let want = [
        ("POST", "/relay/3/on"),
        ("GET", "/relay/3"),
        ("POST", "/relay/3/set/0"),
        ("POST", "/relay/3/on"),
        ("POST", "/relay/4/set/0"),
        ("GET", "/relay/4"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(seen, want);
    let locks = &r["resource_locks"]["locks"];
    assert!(
        locks
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["category"] == "power_http_relay"),
        "{locks:#}"
    );
    let log = std::fs::read_to_string(run.join("logs/resources/mains/power.log")).unwrap();
    assert!(log.contains("SET dut on"), "{log}");
}

/// `hilt sim http-relay` as a separate process; stops on drop.
fn start_sim() -> SimProcess {
    let args = ["http-relay", "--bind", "127.0.0.1:0", "--latency-ms", "2"];
    SimProcess::start(&args, "http://")
}

/// GET on the simulator: status and body.
fn sim_get(sim: &SimProcess, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(format!("{}{path}", sim.address)).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

#[test]
fn a_relay_fault_is_a_power_control_failure_of_the_bench() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim();
    let bench = write_bench(dir.path(), &sim.address, "");
    let suite = write_suite(
        dir.path(),
        "      - power_set: {resource: mains, outlet: dut, state: true}\n",
    );
    let (code, _) = run_dir(dir.path(), &bench, &suite);
    assert_eq!(code, 0);
    assert_eq!(sim_get(&sim, "/sim/state").1, r#"{"3":"on"}"#);
    // The board answers the next request with 503.
    assert_eq!(sim_get(&sim, "/sim/fail/1/503").0, 200);
    let suite = write_suite(
        dir.path(),
        "      - power_set: {resource: mains, outlet: dut, state: false}\n",
    );
    let (code, run) = run_dir(dir.path(), &bench, &suite);
    let r = json(&run.join("results.json"));
    assert_eq!(r["status"], "error", "{r:#}");
    assert_eq!(code, 4, "bench infrastructure exit code");
    assert_eq!(r["failure"]["category"], "POWER_CONTROL_FAILED");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("HTTP 503") && msg.contains("/relay/3/set/0"),
        "{msg}"
    );
    assert_eq!(
        sim_get(&sim, "/sim/state").1,
        r#"{"3":"on"}"#,
        "the failed switch did not happen"
    );
}

#[test]
fn bad_relay_urls_are_located_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bench = write_bench(dir.path(), "ftp://relay.local", "");
    let suite = write_suite(
        dir.path(),
        "      - power_set: {resource: mains, outlet: dut, state: true}\n",
    );
    let err = validate_error(&bench, &suite);
    // on_url is on line 13 of the bench, its value at column 15.
    assert!(
        err.contains("bench.yaml:13:15: resources.mains.driver.on_url: `ftp://relay.local/relay/{channel}/on` is not an http:// or https:// URL"),
        "{err}"
    );
    let (code, run) = run_dir(dir.path(), &bench, &suite);
    assert_eq!(code, 3);
    let r = json(&run.join("results.json"));
    assert_eq!(r["failure"]["category"], "CONFIG_ERROR");
}
