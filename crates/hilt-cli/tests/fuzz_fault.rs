//! Fuzzing and fault injection through the real `hilt` binary against the simulated DUT
//! (on a real pty, power and GPIO over its control socket) and the simulated Modbus slave:
//! seeded campaigns repeat, a planted firmware bug is found, saved and replayed, a power
//! glitch reboots the device and the recovery oracle waits for it, power comes back on
//! when the run is interrupted mid-glitch, and the bench's safety policy is enforced
//! before anything is touched.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::hw::validate_error;
use common::{assert_complete, hilt, json, last_run};
use hilt_sim::{
    DutConfig, ModbusBind, ModbusSim, ModbusSimConfig, RegisterMap, SimDut, SimDutHandle,
};
use serde_json::Value;

/// A sim DUT with its bench file (power, reset line, console; fault injection allowed).
struct Rig {
    dir: tempfile::TempDir,
    dut: SimDutHandle,
    bench: PathBuf,
}

fn rig(config: DutConfig) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("dut.tty");
    let control = dir.path().join("dut.sock");
    let dut = SimDut::start(DutConfig {
        link: Some(port.clone()),
        control: Some(control.clone()),
        ..config
    })
    .unwrap();
    assert!(dut.wait_ready(Duration::from_secs(5)));
    let bench = dir.path().join("bench.yaml");
    let (port, control) = (port.display(), control.display());
    std::fs::write(
        &bench,
        format!(
            "version: 1
bench: {{name: fault rig}}
nodes:
  dut:
    kind: simulator
    transports:
      console: {{backend: uart, port: \"{port}\", baud: 115200}}
    gpio:
      reset: {{backend: mock_gpio, channel: 0, direction: output, sim_control: \"{control}\"}}
resources:
  mains:
    kind: power_controller
    driver: {{type: mock_power, outlets: {{dut: true}}, sim_control: \"{control}\"}}
safety:
  fault_injection:
    enabled: true
    power: [{{resource: mains, outlet: dut, max_off_ms: 10000}}]
    gpio: [{{node: dut, line: reset, max_duration_ms: 500}}]
    uart: [{{node: dut, transport: console, max_total_bytes: 16}}]
"
        ),
    )
    .unwrap();
    Rig { dir, dut, bench }
}

impl Rig {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `<name>.yaml` with the given tests, each a name and its steps (YAML flow maps).
    fn suite(&self, name: &str, tests: &[(&str, &[&str])]) -> PathBuf {
        let mut text = format!("version: 1\nsuite: {{name: {name}}}\ntests:\n");
        for (test, steps) in tests {
            text.push_str(&format!("  - name: {test}\n    steps:\n"));
            for s in *steps {
                text.push_str(&format!("      - {s}\n"));
            }
        }
        let p = self.path(&format!("{name}.yaml"));
        std::fs::write(&p, text).unwrap();
        p
    }

    fn cmd(&self, suite: &Path, results: &str) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin!("hilt"));
        c.env_remove("BENCHCI_LOCK_DIR")
            .env("HILT_LOCK_DIR", self.path("locks"))
            .env("NO_COLOR", "1")
            .args(["run", "--bench"])
            .arg(&self.bench)
            .arg("--suite")
            .arg(suite)
            .arg("--results-dir")
            .arg(self.path(results));
        c
    }

    /// Runs `suite` with results under `<tmp>/<results>`: exit code, run dir, results.json.
    fn run(&self, suite: &Path, results: &str) -> (i32, PathBuf, Value) {
        let out = self.cmd(suite, results).output().unwrap();
        let run = last_run(&self.path(results));
        assert_complete(&run);
        let r = json(&run.join("results.json"));
        (out.status.code().unwrap_or(-1), run, r)
    }
}

/// The case records of a campaign's JSONL log.
fn cases(campaign: &Value) -> Vec<Value> {
    std::fs::read_to_string(campaign["log_path"].as_str().unwrap())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_seeded_campaign_repeats_finds_the_planted_bug_saves_it_and_replay_reproduces_it() {
    // The planted bug: a command line longer than 20 bytes crashes the firmware.
    let rig = rig(DutConfig {
        crash_on_line_over: Some(20),
        ..DutConfig::default()
    });
    let step = "fuzz_uart: {node: dut, transport: console, seed: 1234, iterations: 16, max_length: 32, suffix: \"\\n\", \
                settle_ms: 120, inter_case_delay_ms: 100, stop_on_failure: false, fail_contains: HardFault}";
    let suite = rig.suite("campaign", &[("fuzz the console", &[step])]);
    let (code, run, r) = rig.run(&suite, "first");
    assert_eq!(code, 1, "{r:#}");
    let campaign = &r["tests"][0]["fuzz"][0];
    assert_eq!(campaign["schema_version"], "benchci.fuzz_campaign.v1");
    assert_eq!(campaign["seed"], 1234);
    assert_eq!(campaign["cases_executed"], 16);
    assert_eq!(r["fuzz"]["campaigns"][0], *campaign);
    assert_eq!(r["fuzz"]["summary"]["status"], "failed");
    assert_eq!(
        r["fuzz"]["summary"]["protocols"],
        serde_json::json!(["uart"])
    );
    let first = cases(campaign);
    assert_eq!(first.len(), 16);
    assert_eq!(first[0]["case_index"], 1, "counted from 1, as BenchCI does");
    // The oracle is exact: a case fails iff its line (without the newline) is over 20 bytes.
    let mut crashed = 0;
    for c in &first {
        // `4F 41 0A`: three characters a byte; the last byte is the newline.
        let len = (c["payload_hex"].as_str().unwrap().len() + 1) / 3 - 1;
        assert_eq!(c["status"] == "failed", len > 20, "{c:#}");
        if len > 20 {
            crashed += 1;
            assert_eq!(c["failure_kind"], "oracle");
            assert!(c["tail"].as_str().unwrap().contains("HardFault"), "{c:#}");
        }
    }
    assert!(crashed > 0 && crashed < 16, "{crashed} of 16 crashed");
    assert_eq!(campaign["failures"], crashed);
    let failure = &r["tests"][0]["failure"];
    assert_eq!(failure["category"], "FUZZ_ORACLE_FAILED");
    assert_eq!(failure["source"], "firmware");
    let artifact = PathBuf::from(failure["artifacts"]["fuzz_failure"].as_str().unwrap());
    assert!(artifact.starts_with(&run), "{}", artifact.display());
    assert_eq!(
        artifact.file_name().unwrap(),
        "fuzz-the-console-step1-uart-failure.json"
    );
    let saved = json(&artifact);
    assert_eq!(saved["case"], campaign["first_failure"]);
    assert_eq!(saved["step"]["fuzz_uart"]["seed"], 1234);

    // Same seed, same inputs.
    let (_, _, again) = rig.run(&suite, "second");
    let second = cases(&again["tests"][0]["fuzz"][0]);
    let payloads =
        |v: &[Value]| -> Vec<Value> { v.iter().map(|c| c["payload_hex"].clone()).collect() };
    assert_eq!(payloads(&first), payloads(&second));
    // Another seed, other inputs.
    let other = rig.suite(
        "other",
        &[("fuzz the console", &[&step.replace("1234", "99")])],
    );
    let (_, _, r3) = rig.run(&other, "third");
    assert_ne!(
        payloads(&first),
        payloads(&cases(&r3["tests"][0]["fuzz"][0]))
    );

    // Replay: exactly the saved case, under the step's oracle, crashes the device again.
    let boots = rig.dut.controls().state().boots;
    let replay = format!(
        "fuzz_uart: {{node: dut, transport: console, settle_ms: 300, fail_contains: HardFault, replay: \"{}\"}}",
        artifact.display()
    );
    let replay_suite = rig.suite("replay", &[("replay", &[replay.as_str()])]);
    let (code, _, rr) = rig.run(&replay_suite, "replayed");
    assert_eq!(code, 1, "{rr:#}");
    let rc = &rr["tests"][0]["fuzz"][0];
    assert_eq!(rc["cases_executed"], 1);
    assert_eq!(rc["failures"], 1);
    assert_eq!(rc["replay"], artifact.display().to_string());
    assert_eq!(
        rc["first_failure"]["payload_hex"],
        saved["case"]["payload_hex"]
    );
    assert_eq!(rc["first_failure"]["seed"], saved["case"]["seed"]);
    assert!(rig.dut.wait_ready(Duration::from_secs(5)));
    assert!(
        rig.dut.controls().state().boots > boots,
        "the watchdog rebooted it"
    );

    // A replay artifact of the wrong protocol is refused with its path.
    let bad = rig.path("bad.json");
    std::fs::write(
        &bad,
        r#"{"schema_version": "hilt.fuzz_failure.v1", "protocol": "modbus", "case": {"seed": 1}}"#,
    )
    .unwrap();
    let bad_suite = rig.suite(
        "bad",
        &[(
            "replay",
            &[&replay.replace(&artifact.display().to_string(), &bad.display().to_string())],
        )],
    );
    let (code, _, rb) = rig.run(&bad_suite, "bad");
    assert_eq!(code, 3, "{rb:#}");
    let msg = rb["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("bad.json") && msg.contains("holds a `modbus` case"),
        "{msg}"
    );
}

#[test]
fn heartbeat_finds_a_crash_the_output_oracle_does_not_name() {
    let rig = rig(DutConfig {
        crash_on_line_over: Some(8),
        ..DutConfig::default()
    });
    let step = "fuzz_uart: {node: dut, transport: console, seed: 7, iterations: 40, min_length: 12, max_length: 16, suffix: \"\\n\", \
                heartbeat_command: \"ping\\n\", heartbeat_expect_contains: pong, heartbeat_within_ms: 20}";
    let suite = rig.suite("heartbeat", &[("heartbeat", &[step])]);
    let (code, _, r) = rig.run(&suite, "results");
    assert_eq!(code, 1, "{r:#}");
    let c = &r["tests"][0]["fuzz"][0];
    // stop_on_failure (default): the first case already kills the device.
    assert_eq!(c["cases_executed"], 1);
    assert_eq!(c["first_failure"]["failure_kind"], "heartbeat");
    assert_eq!(r["tests"][0]["failure"]["category"], "FUZZ_ORACLE_FAILED");
}

#[test]
fn power_glitch_reboots_the_device_and_recovery_waits_for_it_gpio_and_noise_too() {
    let rig = rig(DutConfig {
        boot_ms: 300,
        ..DutConfig::default()
    });
    let recovery = "recovery: {node: dut, transport: console, send: \"ping\\n\", expect_contains: pong, within_ms: 3000, retry_interval_ms: 100, watchdog_contains: \"reset cause: power-on\"}";
    let glitch = format!(
        "fault_inject_power_glitch: {{resource: mains, outlet: dut, off_ms: 100, {recovery}}}"
    );
    let never = "fault_inject_power_glitch: {resource: mains, outlet: dut, off_ms: 50, recovery: {node: dut, transport: console, send: \"ping\\n\", expect_contains: never-said, within_ms: 600}}";
    let gpio = "fault_inject_gpio_glitch: {node: dut, line: reset, pulse_value: true, restore_value: false, duration_ms: 50, recovery: {node: dut, transport: console, send: \"ping\\n\", expect_contains: pong, within_ms: 3000, retry_interval_ms: 100}}";
    let noise = "fault_inject_uart_noise: {node: dut, transport: console, data: \"AA 55\", repeat: 2, recovery: {node: dut, transport: console, send: \"ping\\n\", expect_contains: pong, within_ms: 2000, retry_interval_ms: 150}}";
    let suite = rig.suite(
        "faults",
        &[
            (
                "brown-out",
                &[
                    "send_uart: {node: dut, transport: console, data: \"reg write 5 42\\n\"}",
                    "expect_uart: {node: dut, transport: console, contains: ok, within_ms: 1000}",
                    &glitch,
                    "send_uart: {node: dut, transport: console, data: \"reg read 5\\n\"}",
                    "expect_uart: {node: dut, transport: console, contains: \"reg[0x05]=0x0000\", within_ms: 1000, scope: since_mark}",
                ],
            ),
            ("never recovers", &[never]),
            ("reset line glitch", &[gpio]),
            ("line noise", &[noise]),
        ],
    );
    let boots = rig.dut.controls().state().boots;
    let (code, run, r) = rig.run(&suite, "results");
    assert_eq!(code, 1, "{r:#}");
    let tests = r["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 4, "a recovery failure fails only its test");
    assert_eq!(tests[0]["passed"], true, "{:#}", tests[0]);
    let rec = &tests[0]["fault_injections"][0];
    assert_eq!(rec["schema_version"], "benchci.fault_injection.v1");
    assert_eq!(rec["type"], "power_glitch");
    assert_eq!(rec["status"], "recovered");
    assert_eq!(rec["parameters"]["off_ms"], 100);
    assert_eq!(
        rec["target"],
        serde_json::json!({"resource": "mains", "outlet": "dut"})
    );
    // It waited for the 300 ms boot: the first probes went unanswered.
    assert!(
        rec["recovery"]["recovery_time_ms"].as_u64().unwrap() >= 250,
        "{rec:#}"
    );
    assert!(
        rec["recovery"]["attempts"].as_u64().unwrap() >= 3,
        "{rec:#}"
    );
    assert_eq!(rec["recovery"]["watchdog_observed"], true);
    let power_log = std::fs::read_to_string(run.join("logs/resources/mains/power.log")).unwrap();
    assert!(
        power_log.contains("GLITCH dut off for 100 ms") && power_log.contains("restored on"),
        "{power_log}"
    );

    let f = &tests[1]["failure"];
    assert_eq!(f["category"], "FAULT_RECOVERY_FAILED");
    assert_eq!(f["source"], "firmware");
    assert_eq!(tests[1]["fault_injections"][0]["status"], "recovery_failed");

    let g = &tests[2]["fault_injections"][0];
    assert_eq!(tests[2]["passed"], true, "{:#}", tests[2]);
    assert_eq!(g["type"], "gpio_glitch");
    assert_eq!(g["status"], "recovered");

    let n = &tests[3]["fault_injections"][0];
    assert_eq!(tests[3]["passed"], true, "{:#}", tests[3]);
    assert_eq!(n["parameters"]["payload_hex"], "AA 55");
    assert_eq!(n["parameters"]["total_bytes"], 4);
    // The garbage ahead of the first probe made the parser answer an error.
    assert_eq!(n["recovery"]["attempts"], 2, "{n:#}");
    let console =
        std::fs::read_to_string(run.join("logs/nodes/dut/transport-console.log")).unwrap();
    assert!(console.contains("error: unknown command"), "{console}");
    assert_eq!(
        console.matches("reset cause: power-on").count(),
        2,
        "{console}"
    );
    assert!(console.contains("reset cause: reset-pin"), "{console}");

    assert_eq!(r["fault_injections"].as_array().unwrap().len(), 4);
    // Boots: brown-out, never-recovers glitch, reset pulse.
    assert_eq!(rig.dut.controls().state().boots, boots + 3);
}

#[test]
fn power_is_restored_when_the_run_is_interrupted_mid_glitch() {
    let rig = rig(DutConfig::default());
    let suite = rig.suite(
        "long glitch",
        &[(
            "long glitch",
            &["fault_inject_power_glitch: {resource: mains, outlet: dut, off_ms: 8000, recovery: {node: dut, transport: console, send: \"ping\\n\", expect_contains: pong}}"],
        )],
    );
    let mut child = rig
        .cmd(&suite, "results")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while rig.dut.controls().power_get() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the glitch never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(7),
        "the glitch was cut short"
    );
    assert_eq!(status.code(), Some(130));
    assert!(rig.dut.controls().power_get(), "power must be back on");
    assert!(
        rig.dut.wait_ready(Duration::from_secs(5)),
        "and the device boots"
    );
    let run = last_run(&rig.path("results"));
    let log = std::fs::read_to_string(run.join("logs/resources/mains/power.log")).unwrap();
    assert!(log.contains("restored on"), "{log}");
}

#[test]
fn the_safety_policy_is_enforced_at_validation_with_locations() {
    let rig = rig(DutConfig::default());
    let rec = "recovery: {node: dut, transport: console, send: \"ping\\n\", expect_contains: pong}";
    let suite = rig.suite(
        "over the limits",
        &[(
            "over",
            &[
                &format!("fault_inject_power_glitch: {{resource: mains, outlet: dut, off_ms: 20000, {rec}}}"),
                &format!("fault_inject_gpio_glitch: {{node: dut, line: reset, pulse_value: true, restore_value: false, duration_ms: 600, {rec}}}"),
                &format!("fault_inject_uart_noise: {{node: dut, transport: console, data: \"AA 55\", repeat: 9, {rec}}}"),
                "fuzz_can: {node: dut, transport: console}",
            ],
        )],
    );
    let err = validate_error(&rig.bench, &suite);
    for want in [
        "over the limits.yaml:6:",
        "off_ms 20000 exceeds the bench's limit of 10000 ms",
        "duration_ms 600 exceeds the bench's limit of 500 ms",
        "data × repeat is 18 bytes, more than the bench's limit of 16 bytes",
        "transport `console` is `uart`, but `fuzz_can` needs can or slcan",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // The fuzz steps' own fields are checked on their own, before the bench is consulted.
    let bad = rig.suite(
        "bad fuzz",
        &[(
            "bad",
            &["fuzz_uart: {node: dut, transport: console, fail_regex: \"(unclosed\", min_length: 9, max_length: 3}"],
        )],
    );
    let err = validate_error(&rig.bench, &bad);
    for want in [
        "bad fuzz.yaml:6:",
        "fuzz_uart.fail_regex: not a valid regex",
        "min_length must not exceed max_length",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    // A bench that has not enabled fault injection refuses every fault step.
    let text = std::fs::read_to_string(&rig.bench)
        .unwrap()
        .replace("enabled: true", "enabled: false");
    let off = rig.path("off.yaml");
    std::fs::write(&off, text).unwrap();
    let ok = rig.suite(
        "within",
        &[(
            "glitch",
            &[&format!(
                "fault_inject_power_glitch: {{resource: mains, outlet: dut, off_ms: 10, {rec}}}"
            )],
        )],
    );
    let err = validate_error(&off, &ok);
    assert!(
        err.contains("within.yaml:6:")
            && err.contains("fault injection is not enabled on this bench"),
        "{err}"
    );
    // Nothing was touched.
    assert_eq!(rig.dut.controls().state().boots, 1);
}

#[test]
fn fuzz_modbus_counts_exceptions_and_fails_on_them_when_told() {
    let map = RegisterMap::parse(
        "slaves:\n  1:\n    holding_registers: {0: [1, 2, 3, 4, 5, 6, 7, 8]}\n    coils: {0: [false, false, false, false]}\n",
        "map.yaml",
    )
    .unwrap();
    let sim = ModbusSim::start(
        ModbusBind::Tcp("127.0.0.1:0".into()),
        map,
        ModbusSimConfig::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (host, port) = sim.address().rsplit_once(':').unwrap();
    let bench = dir.path().join("bench.yaml");
    std::fs::write(
        &bench,
        format!("version: 1\nbench: {{name: plc}}\nnodes:\n  plc:\n    kind: plc\n    transports:\n      field: {{backend: modbus_tcp, host: \"{host}\", port: {port}, timeout_ms: 300}}\n"),
    )
    .unwrap();
    let step = "fuzz_modbus: {node: plc, transport: field, seed: 5, iterations: 60, address_max: 15, count_max: 2, operations: [read_holding_registers, write_single_register, read_coils, write_single_coil]}";
    let suite = dir.path().join("suite.yaml");
    std::fs::write(
        &suite,
        format!("version: 1\nsuite: {{name: plc}}\ntests:\n  - name: allowed\n    steps:\n      - {step}\n  - name: strict\n    steps:\n      - {}\n",
            step.replace("iterations: 60", "iterations: 60, allow_protocol_exceptions: false")),
    )
    .unwrap();
    let out = hilt()
        .env("HILT_LOCK_DIR", dir.path().join("locks"))
        .args(["run", "--bench"])
        .arg(&bench)
        .arg("--suite")
        .arg(&suite)
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let run = last_run(&dir.path().join("results"));
    let r = json(&run.join("results.json"));
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    let allowed = &r["tests"][0]["fuzz"][0];
    assert_eq!(r["tests"][0]["passed"], true, "{r:#}");
    assert_eq!(allowed["cases_executed"], 60);
    let exceptions = allowed["protocol_exceptions"].as_u64().unwrap();
    assert!(
        exceptions > 0 && exceptions < 60,
        "unmapped addresses answer exception 2: {allowed:#}"
    );
    for c in cases(allowed) {
        let a = c["address"].as_u64().unwrap();
        let (n, table) = match c["operation"].as_str().unwrap() {
            "read_holding_registers" => (c["count"].as_u64().unwrap(), 8),
            "write_single_register" => (1, 8),
            _ => (c["count"].as_u64().unwrap_or(1), 4),
        };
        assert_eq!(c["status"] == "protocol_exception", a + n > table, "{c:#}");
    }
    let strict = &r["tests"][1];
    assert_eq!(strict["failure"]["category"], "FUZZ_ORACLE_FAILED");
    assert_eq!(strict["fuzz"][0]["first_failure"]["failure_kind"], "oracle");
    assert!(
        strict["fuzz"][0]["first_failure"]["exception"]
            .as_str()
            .unwrap()
            .contains("0x02")
    );
    let summary = &r["fuzz"]["summary"];
    assert_eq!(summary["campaign_count"], 2);
    assert_eq!(summary["protocols"], serde_json::json!(["modbus"]));
}
