//! The emulated board as a second, slower device behind a real agent: `hilt agent serve`
//! (the real binary) with an agent.yaml registering the QEMU bench as `qemu`, and `hilt run
//! --agent URL --bench-id qemu --suite … --artifact v1.elf` flashing hilt's firmware, seeing
//! the boot banner, ping → pong and a reset. No emulator outlives the run or the agent.
//! Skips visibly without QEMU or the cross compiler; fails under HILT_REQUIRE_PEERS=1.

mod common;
#[path = "common/qemu.rs"]
mod qemu;

use std::time::{Duration, Instant};

use sha2::Digest;

use hilt_testkit::process::{Layout, TOKEN, unique, write_agent_yaml};

#[test]
fn a_qemu_bench_registered_on_an_agent_runs_a_remote_suite() {
    let Some((v1, _)) = qemu::firmware() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let m = qemu::marker("agent");
    let bench = qemu::bench(tmp.path(), &m);
    let l = Layout::new(tmp.path(), &unique("hilt-qemu-agent"));
    write_agent_yaml(&l.config(), &l.name, &[("qemu", &bench)]);
    let mut agent = l.start();
    let suite = tmp.path().join("suite.yaml");
    std::fs::write(&suite, qemu::SUITE).unwrap();

    let t = Instant::now();
    let out = common::hilt()
        .env("HILT_LOCK_DIR", l.locks())
        .env_remove("HILT_AGENT_TOKEN")
        .env_remove("BENCHCI_AGENT_TOKEN")
        .args(["run", "--agent", &agent.base, "--token", TOKEN])
        .args(["--bench-id", "qemu", "--suite"])
        .arg(&suite)
        .arg("--artifact")
        .arg(v1)
        .arg("--results-dir")
        .arg(tmp.path().join("results"))
        .args(["--json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stderr}\nagent log:\n{}",
        agent.log()
    );
    eprintln!("qemu suite through hilt agent serve: {elapsed:?}");
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results["status"], "passed", "{results}");
    let passed: Vec<&str> = results["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["passed"] == true)
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        passed,
        ["flash boots v1", "ping pong", "reset reboots"],
        "{results}"
    );
    // hilt's firmware was flashed (named by its SHA-256) and reset over QMP on the board.
    let id = results["run_id"].as_str().unwrap();
    let run_dir = tmp.path().join("results").join(id);
    let flash_log = std::fs::read_to_string(run_dir.join("logs/nodes/dut/flash.log"))
        .unwrap_or_else(|e| panic!("{}: {e}", run_dir.display()));
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(v1).unwrap()));
    assert!(flash_log.contains(&format!("sha256 {sha}")), "{flash_log}");
    assert!(flash_log.contains("QMP system_reset"), "{flash_log}");
    // The run's emulator stopped with the run; the agent keeps none running either.
    qemu::assert_emulator_gone_soon(&m);
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(
        agent.wait_exit(Duration::from_secs(20)).is_some(),
        "SIGTERM did not stop the agent:\n{}",
        agent.log()
    );
    qemu::assert_emulator_gone_soon(&m);
}
