//! Flash and reset through external tools: fake executables on PATH record their argv.

mod common;

use common::{Bench, json, last_run};
use predicates::prelude::*;

fn fake_tool(dir: &std::path::Path, name: &str, exit: i32) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\necho \"$0 $*\" >> \"$(dirname \"$0\")/argv.log\"\necho programming done\nexit {exit}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn with_flash(b: &Bench) {
    let text = std::fs::read_to_string(&b.bench).unwrap().replace(
        "    reset: {method: gpio, line: reset, pulse_ms: 5}\n",
        "    reset: {method: gpio, line: reset, pulse_ms: 5}\n    flash: {backend: openocd, interface_cfg: interface/stlink.cfg, target_cfg: target/stm32l4x.cfg, probe_serial: \"066DFF\"}\n",
    );
    std::fs::write(&b.bench, text).unwrap();
}

#[test]
fn flash_runs_the_tool_with_argv_and_records_it() {
    let b = Bench::start();
    with_flash(&b);
    let tools = b.path("tools");
    std::fs::create_dir_all(&tools).unwrap();
    fake_tool(&tools, "openocd", 0);
    std::fs::write(b.path("fw.elf"), b"\x7fELF firmware").unwrap();
    let suite = b.suite(
        "s.yaml",
        "  - name: flash\n    steps:\n      - flash: {node: dut}\n",
    );
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap());
    b.run(&suite)
        .arg("--artifact")
        .arg(b.path("fw.elf"))
        .env("PATH", path)
        .assert()
        .success();
    let argv = std::fs::read_to_string(tools.join("argv.log")).unwrap();
    assert!(argv.contains("-f interface/stlink.cfg -c hla_serial 066DFF -f target/stm32l4x.cfg -c init -c reset halt -c program"), "{argv}");
    assert!(
        argv.contains("fw.elf verify -c reset run -c shutdown"),
        "{argv}"
    );
    let run = last_run(&b.path("results"));
    assert!(
        std::fs::read_to_string(run.join("logs/nodes/dut/flash.log"))
            .unwrap()
            .contains("programming done")
    );
    let ledger = std::fs::read_to_string(run.join("command_ledger.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(ledger.lines().next().unwrap()).unwrap();
    assert_eq!(entry["argv"][0], "openocd");
    assert_eq!(entry["exit_code"], 0);
    let r = json(&run.join("results.json"));
    assert_eq!(r["evidence"]["firmware"]["size_bytes"], 13);
}

#[test]
fn failing_tool_is_flash_failed_and_missing_tool_is_unavailable() {
    let b = Bench::start();
    with_flash(&b);
    let tools = b.path("tools");
    std::fs::create_dir_all(&tools).unwrap();
    fake_tool(&tools, "openocd", 3);
    std::fs::write(b.path("fw.elf"), b"x").unwrap();
    let suite = b.suite(
        "s.yaml",
        "  - name: flash\n    steps:\n      - flash: {node: dut}\n",
    );
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap());
    b.run(&suite)
        .arg("--artifact")
        .arg(b.path("fw.elf"))
        .env("PATH", &path)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("Flashing failed"));
    let r = json(&last_run(&b.path("results")).join("results.json"));
    assert_eq!(r["failure"]["category"], "FLASH_FAILED");
    assert_eq!(r["failure"]["details"]["exit_code"], 3);
    b.run_in(&suite, "r2")
        .arg("--artifact")
        .arg(b.path("fw.elf"))
        .env("PATH", "/nonexistent")
        .assert()
        .code(4);
    let r = json(&last_run(&b.path("r2")).join("results.json"));
    assert_eq!(r["failure"]["category"], "FLASH_TOOL_UNAVAILABLE");
    // --skip-flash skips the step entirely.
    b.run_in(&suite, "r3")
        .arg("--skip-flash")
        .assert()
        .success();
}

#[test]
fn missing_artifact_is_a_configuration_problem() {
    let b = Bench::start();
    with_flash(&b);
    let suite = b.suite(
        "s.yaml",
        "  - name: flash\n    steps:\n      - flash: {node: dut}\n",
    );
    b.run(&suite)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("Firmware artifact problem"));
}

/// esptool programs through the console's own adapter: the console lets go of the port for
/// the tool and opens it again when the tool is done (what the device printed in between,
/// while the tool held the port, is the tool's, as on a real adapter). The fake esptool takes the port
/// the way a programmer does (an exclusive lock, then it talks to the chip): while the
/// console held the port it was refused.
#[test]
fn esptool_gets_the_console_port_and_the_console_opens_it_again() {
    let b = Bench::start();
    let port = b.path("dut.tty");
    let text = std::fs::read_to_string(&b.bench).unwrap().replace(
        "    reset: {method: gpio, line: reset, pulse_ms: 5}\n",
        &format!(
            "    reset: {{method: gpio, line: reset, pulse_ms: 5}}\n    flash: {{backend: esptool, port: \"{}\", baud: 460800, address: \"0x10000\"}}\n",
            port.display()
        ),
    );
    std::fs::write(&b.bench, text).unwrap();
    let tools = b.path("tools");
    std::fs::create_dir_all(&tools).unwrap();
    let fake = tools.join("esptool.py");
    std::fs::write(
        &fake,
        "#!/usr/bin/env python3\n\
import fcntl, os, sys\n\
port = sys.argv[sys.argv.index('--port') + 1]\n\
fd = os.open(port, os.O_RDWR | os.O_NOCTTY)\n\
try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
except OSError:\n    print('port busy: another program holds ' + port)\n    sys.exit(2)\n\
os.write(fd, b'reboot\\n')\n\
print('Hash of data verified.')\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(b.path("app.bin"), b"\xe9 esp image").unwrap();
    let suite = b.suite(
        "s.yaml",
        "  - name: flash over the console's adapter\n    steps:\n      - flash: {node: dut}\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      - expect_uart: {node: dut, transport: console, contains: pong, within_ms: 1000}\n",
    );
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap());
    b.run(&suite)
        .arg("--artifact")
        .arg(b.path("app.bin"))
        .env("PATH", path)
        .assert()
        .success();
    let run = last_run(&b.path("results"));
    let flash_log = std::fs::read_to_string(run.join("logs/nodes/dut/flash.log")).unwrap();
    assert!(flash_log.contains("Hash of data verified."), "{flash_log}");
    let console =
        std::fs::read_to_string(run.join("logs/nodes/dut/transport-console.log")).unwrap();
    assert!(console.contains("CLOSE for the flash tool"), "{console}");
    assert_eq!(console.matches("OPEN ").count(), 2, "{console}");
}
