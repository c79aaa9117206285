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
