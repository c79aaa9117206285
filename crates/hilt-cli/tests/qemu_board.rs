//! The `qemu` driver through the real `hilt` binary: hilt's own firmware (`firmware/`,
//! built here with gcc-arm-none-eabi) on QEMU's lm3s6965evb. Flash v1 (`--artifact`),
//! boot, command/response, reset, flash v2 and its new banner, a firmware fault explained
//! as a firmware failure, and no emulator left behind after any run — passed, failed,
//! cancelled by SIGTERM, or failing to start. Skips visibly without QEMU or the cross
//! compiler; fails instead under HILT_REQUIRE_PEERS=1.

mod common;
#[path = "common/qemu.rs"]
mod qemu;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{assert_complete, hilt, json, last_run};
use qemu::{assert_emulator_gone_soon, assert_no_emulator, emulators, firmware, marker};
use sha2::{Digest, Sha256};

/// A bench with one emulated board (`dir/bench.yaml`).
fn write_bench(dir: &Path, marker: &str, driver_extra: &str) -> PathBuf {
    qemu::bench_file(&dir.join("bench.yaml"), marker, driver_extra)
}

fn write_suite(dir: &Path, tests: &str) -> PathBuf {
    let p = dir.join("suite.yaml");
    std::fs::write(
        &p,
        format!("version: 1\nsuite: {{name: qemu}}\ntests:\n{tests}"),
    )
    .unwrap();
    p
}

fn run_cmd(dir: &Path, bench: &Path, suite: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("hilt"));
    c.env("HILT_LOCK_DIR", dir.join("locks"))
        .env("NO_COLOR", "1")
        .args(["run", "--bench"])
        .arg(bench)
        .arg("--suite")
        .arg(suite)
        .arg("--results-dir")
        .arg(dir.join("results"));
    c
}

fn sha256(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn tests_by_name(results: &serde_json::Value) -> Vec<(String, String)> {
    results["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                if t["passed"] == true {
                    "passed"
                } else {
                    "failed"
                }
                .to_string(),
            )
        })
        .collect()
}

const SUITE: &str = r#"  - name: flash v1 boots
    steps:
      - flash: {node: dut}
      - expect_uart: {node: dut, transport: console, contains: "HILT-QEMU DUT v1.0.0"}
      - expect_uart: {node: dut, transport: console, contains: "ready"}
  - name: command and response
    steps:
      - send_uart: {node: dut, transport: console, data: "ping\n"}
      - expect_uart: {node: dut, transport: console, contains: "pong"}
      - send_uart: {node: dut, transport: console, data: "echo a b  c\n"}
      - expect_uart: {node: dut, transport: console, contains: "a b  c", scope: since_mark}
      - send_uart: {node: dut, transport: console, data: "reg write 5 4660\n"}
      - expect_uart: {node: dut, transport: console, contains: "ok"}
      - send_uart: {node: dut, transport: console, data: "reg read 0x05\n"}
      - expect_uart: {node: dut, transport: console, contains: "reg[0x05]=0x1234"}
      - send_uart: {node: dut, transport: console, data: "BENCHCI_ID?\n"}
      - expect_uart: {node: dut, transport: console, regex: 'BENCHCI_ID: \{"schema_version":"1","hardware_revision":"qemu-lm3s6965evb","serial_number":"QEMU-0001"\}'}
  - name: reset reboots
    steps:
      - reset: {node: dut}
      - expect_uart: {node: dut, transport: console, contains: "HILT-QEMU DUT v1.0.0"}
      - send_uart: {node: dut, transport: console, data: "reg read 5\n"}
      - expect_uart: {node: dut, transport: console, contains: "reg[0x05]=0x0000"}
  - name: flash v2 shows the new banner
    steps:
      - flash: {node: dut, artifact: "V2"}
      - expect_uart: {node: dut, transport: console, contains: "HILT-QEMU DUT v2.0.0"}
      - send_uart: {node: dut, transport: console, data: "version\n"}
      - expect_uart: {node: dut, transport: console, contains: "version 2.0.0"}
  - name: power off silences the board, power on boots v2 again
    steps:
      - power_set: {resource: board, outlet: dut, state: false}
      - power_expect: {resource: board, outlet: dut, state: false}
      - power_set: {resource: board, outlet: dut, state: true}
      - expect_uart: {node: dut, transport: console, contains: "HILT-QEMU DUT v2.0.0"}
  - name: fault
    steps:
      - send_uart: {node: dut, transport: console, data: "fault\n"}
      - expect_uart: {node: dut, transport: console, contains: "FAULT: HardFault"}
      - send_uart: {node: dut, transport: console, data: "ping\n"}
      - expect_uart: {node: dut, transport: console, contains: "pong", within_ms: 800, scope: since_mark}
"#;

#[test]
fn flash_boot_talk_reset_upgrade_and_fault() {
    let Some((v1, v2)) = firmware() else { return };
    let dir = tempfile::tempdir().unwrap();
    let m = marker("suite");
    let bench = write_bench(dir.path(), &m, "");
    let suite = write_suite(dir.path(), &SUITE.replace("V2", &v2.display().to_string()));
    let out = run_cmd(dir.path(), &bench, &suite)
        .arg("--artifact")
        .arg(v1)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "only the fault test fails:\n{stderr}"
    );
    assert_no_emulator(&m);

    let run = last_run(&dir.path().join("results"));
    assert_complete(&run);
    let results = json(&run.join("results.json"));
    let statuses = tests_by_name(&results);
    let expected = [
        ("flash v1 boots", "passed"),
        ("command and response", "passed"),
        ("reset reboots", "passed"),
        ("flash v2 shows the new banner", "passed"),
        (
            "power off silences the board, power on boots v2 again",
            "passed",
        ),
        ("fault", "failed"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(statuses, expected, "{stderr}");

    // The fault is the firmware's: category and source say so, the tail shows the line.
    let fault = &results["tests"][5]["failure"];
    assert_eq!(fault["category"], "UART_EXPECTATION_FAILED", "{fault}");
    assert_eq!(fault["source"], "firmware", "{fault}");
    let uart_log =
        std::fs::read_to_string(run.join("logs/nodes/dut/transport-console.log")).unwrap();
    // The log records reads as they came (possibly a byte at a time): join them.
    let received: String = uart_log
        .lines()
        .filter_map(|l| l.split_once(" RX ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once("B ").map(|(_, data)| data))
        .collect();
    assert!(received.contains("FAULT: HardFault pc=0x"), "{received}");

    // flash.log names both images by their SHA-256.
    let flash_log = std::fs::read_to_string(run.join("logs/nodes/dut/flash.log")).unwrap();
    assert!(
        flash_log.contains(&format!("sha256 {}", sha256(v1))),
        "{flash_log}"
    );
    assert!(
        flash_log.contains(&format!("sha256 {}", sha256(v2))),
        "{flash_log}"
    );
    assert!(flash_log.contains("QMP system_reset"), "{flash_log}");
    assert_ne!(sha256(v1), sha256(v2));
}

#[test]
fn configured_firmware_boots_for_self_identification() {
    let Some((v1, _)) = firmware() else { return };
    let dir = tempfile::tempdir().unwrap();
    let m = marker("selfid");
    let bench = write_bench(
        dir.path(),
        &m,
        &format!("      firmware: \"{}\"\n", v1.display()),
    );
    // Self-identification before the first test needs the board already running.
    let text = std::fs::read_to_string(&bench).unwrap().replace(
        "    reset: {method: qemu}\n",
        "    reset: {method: qemu}\n    dut:\n      hardware_revision: qemu-lm3s6965evb\n      serial_number: QEMU-0001\n      self_identification: {transport: console}\n",
    );
    std::fs::write(&bench, text).unwrap();
    let suite = write_suite(
        dir.path(),
        "  - name: version\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"version\\n\"}\n      - expect_uart: {node: dut, transport: console, contains: \"version 1.0.0\"}\n",
    );
    let out = run_cmd(dir.path(), &bench, &suite).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_no_emulator(&m);
    let results = json(&last_run(&dir.path().join("results")).join("results.json"));
    let dut = &results["duts"][0];
    assert_eq!(dut["verification_status"], "verified", "{dut}");
}

/// Starts a run that flashes v1 and then waits a minute; returns once its emulator runs.
fn start_waiting_run(dir: &Path, m: &str, v1: &Path) -> std::process::Child {
    let bench = write_bench(dir, m, "");
    let suite = write_suite(
        dir,
        "  - name: waits\n    steps:\n      - flash: {node: dut}\n      - send_uart: {node: dut, transport: console, data: \"hang\\n\"}\n      - expect_uart: {node: dut, transport: console, contains: \"never\", within_ms: 60000}\n",
    );
    let mut child = run_cmd(dir, &bench, &suite)
        .arg("--artifact")
        .arg(v1)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while emulators(m).is_empty() {
        assert!(Instant::now() < deadline, "the emulator never started");
        assert!(child.try_wait().unwrap().is_none(), "hilt exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn signal_and_wait(child: &mut std::process::Child, sig: nix::sys::signal::Signal) -> i32 {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            return s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0));
        }
        assert!(Instant::now() < deadline, "hilt did not stop after {sig}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_mid_run_leaves_no_emulator() {
    let Some((v1, _)) = firmware() else { return };
    let dir = tempfile::tempdir().unwrap();
    let m = marker("sigterm");
    let mut child = start_waiting_run(dir.path(), &m, v1);
    let code = signal_and_wait(&mut child, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, 130, "a cancelled run exits 130");
    assert_no_emulator(&m);
    let run = last_run(&dir.path().join("results"));
    assert_complete(&run);
    assert_eq!(json(&run.join("results.json"))["status"], "cancelled");
}

#[test]
fn sigkill_of_hilt_takes_the_emulator_with_it() {
    let Some((v1, _)) = firmware() else { return };
    assert!(
        hilt_hw::process::which("setpriv").is_some(),
        "setpriv (util-linux) gives the emulator its parent-death signal"
    );
    let dir = tempfile::tempdir().unwrap();
    let m = marker("sigkill");
    let mut child = start_waiting_run(dir.path(), &m, v1);
    let code = signal_and_wait(&mut child, nix::sys::signal::Signal::SIGKILL);
    assert_eq!(code, 128 + 9);
    // No destructor ran: the kernel's parent-death signal stops the emulator.
    assert_emulator_gone_soon(&m);
}

#[test]
fn an_image_that_is_not_an_arm_elf_fails_the_flash() {
    let Some(_) = firmware() else { return };
    let dir = tempfile::tempdir().unwrap();
    let m = marker("badelf");
    let bench = write_bench(dir.path(), &m, "");
    // An ELF for the host, not for the board.
    let bogus = dir.path().join("host.elf");
    std::fs::copy(std::env::current_exe().unwrap(), &bogus).unwrap();
    let suite = write_suite(
        dir.path(),
        "  - name: flash\n    steps:\n      - flash: {node: dut}\n",
    );
    let out = run_cmd(dir.path(), &bench, &suite)
        .arg("--artifact")
        .arg(&bogus)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert_no_emulator(&m);
    let run = last_run(&dir.path().join("results"));
    let text = json(&run.join("results.json")).to_string();
    assert!(text.contains("FLASH_FAILED"), "{text}");
    assert!(
        text.contains("not a 32-bit little-endian Arm ELF"),
        "{text}"
    );
    let flash_log = std::fs::read_to_string(run.join("logs/nodes/dut/flash.log")).unwrap();
    assert!(flash_log.contains("failed:"), "{flash_log}");
}

#[test]
fn a_missing_emulator_is_explained_with_the_install_line() {
    // Runs everywhere: nothing here needs QEMU.
    let dir = tempfile::tempdir().unwrap();
    let bench = write_bench(
        dir.path(),
        "unused",
        "      binary: no-such-qemu-system-arm\n",
    );
    let suite = write_suite(
        dir.path(),
        "  - name: ping\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n",
    );
    let out = run_cmd(dir.path(), &bench, &suite).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "bench error: {stderr}");
    let line = "apt-get install -y --no-install-recommends qemu-system-arm";
    let results =
        std::fs::read_to_string(last_run(&dir.path().join("results")).join("results.json"))
            .unwrap();
    assert!(results.contains(line), "{results}");

    // The self-test fails the board with the same fix.
    let out = hilt()
        .args(["bench", "self-test", "--open-hardware", "--json", "--bench"])
        .arg(&bench)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(line), "{text}");

    // And so does the demo, before touching anything.
    let out = hilt()
        .env("PATH", dir.path())
        .args(["demo", "--qemu", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(line), "{stderr}");
    assert!(stderr.contains("gcc-arm-none-eabi"), "{stderr}");
}

#[test]
fn bad_board_parameters_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let bench = write_bench(dir.path(), "unused", "      machine: \"-kernel\"\n");
    let suite = write_suite(
        dir.path(),
        "  - name: ping\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n",
    );
    let out = run_cmd(dir.path(), &bench, &suite).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("bench.yaml:19:"),
        "located at the machine line: {stderr}"
    );
    assert!(stderr.contains("not a QEMU machine name"), "{stderr}");

    // A flash block naming a resource that is not a board.
    let text = std::fs::read_to_string(&bench)
        .unwrap()
        .replace("board: board}", "board: nope}");
    std::fs::write(&bench, text).unwrap();
    let out = hilt()
        .args(["validate", "--bench"])
        .arg(&bench)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("resource `nope` is not defined"),
        "{stderr}"
    );
}

#[test]
fn demo_qemu_runs_the_tour_and_explains_the_fault() {
    let Some(_) = firmware() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = hilt()
        .args(["demo", "--qemu", "--dir"])
        .arg(dir.path())
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "only the fault test fails:\n{stderr}"
    );
    let run = last_run(&dir.path().join("results"));
    let results = json(&run.join("results.json"));
    let failed: Vec<_> = tests_by_name(&results)
        .into_iter()
        .filter(|(_, s)| s != "passed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}\n{stderr}");
    assert!(failed[0].0.contains("fault"), "{failed:?}");
    assert!(
        stderr.contains("Firmware"),
        "the explanation names the firmware:\n{stderr}"
    );
    assert_eq!(results["duts"][0]["verification_status"], "verified");
}

#[test]
fn the_self_test_of_a_qemu_bench_does_not_open_its_uart_as_a_serial_path() {
    let Some(_) = firmware() else { return };
    let dir = tempfile::tempdir().unwrap();
    let m = marker("selftest");
    let bench = write_bench(dir.path(), &m, "");
    // With hardware opened, as an agent self-tests its benches at start: the board's pty
    // exists only while a run's emulator does, so `qemu:board` is not a port to open.
    let out = hilt()
        .current_dir(dir.path())
        .args(["bench", "self-test", "--open-hardware", "--json", "--bench"])
        .arg(&bench)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["health_status"], "healthy", "{report}");
    let open = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "node.dut.transport.console.open")
        .unwrap_or_else(|| panic!("no open check: {report}"));
    assert_eq!(open["status"], "skip", "{open}");
    assert!(
        open["message"]
            .as_str()
            .unwrap()
            .contains("emulated board `board`"),
        "{open}"
    );
    assert_no_emulator(&m);
}
