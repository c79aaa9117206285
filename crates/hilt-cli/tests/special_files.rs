//! Files hilt loads are read with a hard cap and must be regular files: a device or a FIFO
//! given as a bench, suite, agent.yaml or artifact is refused at once (exit 3), never read
//! forever or waited on.

mod common;

use std::time::{Duration, Instant};

use common::hilt;
use predicates::prelude::*;

const BENCH: &str = "version: 1\nbench: {name: b}\nnodes:\n  dut:\n    kind: mcu\n    transports:\n      console: {backend: uart, port: /dev/ttyX}\n";
const SUITE: &str =
    "version: 1\nsuite: {name: s}\ntests:\n  - name: t\n    steps:\n      - sleep_ms: 1\n";

fn fifo(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let p = dir.path().join("pipe.yaml");
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    p
}

/// Every special file, as the bench and as the suite: exit 3, "not a regular file", fast.
#[test]
fn validate_refuses_devices_and_fifos_quickly() {
    let d = tempfile::tempdir().unwrap();
    let bench = d.path().join("bench.yaml");
    std::fs::write(&bench, BENCH).unwrap();
    let pipe = fifo(&d);
    for special in [
        std::path::PathBuf::from("/dev/zero"),
        std::path::PathBuf::from("/dev/urandom"),
        pipe,
    ] {
        for as_suite in [false, true] {
            let started = Instant::now();
            let mut cmd = hilt();
            cmd.arg("validate").timeout(Duration::from_secs(20));
            if as_suite {
                cmd.arg("--bench").arg(&bench).arg("--suite").arg(&special);
            } else {
                cmd.arg("--bench").arg(&special);
            }
            cmd.assert()
                .code(3)
                .stderr(predicate::str::contains("not a regular file"));
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} took {:?}",
                special.display(),
                started.elapsed()
            );
        }
    }
}

#[test]
fn a_file_over_the_limit_is_refused_with_its_size_limit() {
    let d = tempfile::tempdir().unwrap();
    let big = d.path().join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(hilt_model::load::MAX_FILE_BYTES + 1).unwrap();
    hilt()
        .arg("validate")
        .arg("--bench")
        .arg(&big)
        .timeout(Duration::from_secs(20))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("limit"));
}

#[test]
fn run_refuses_a_device_as_artifact() {
    let d = tempfile::tempdir().unwrap();
    let bench = d.path().join("bench.yaml");
    let suite = d.path().join("suite.yaml");
    std::fs::write(&bench, "version: 1\nbench: {name: b}\nnodes:\n  dut:\n    kind: mcu\n    gpio: {led: {backend: mock_gpio, channel: 1, direction: input}}\n").unwrap();
    std::fs::write(&suite, SUITE).unwrap();
    let out = hilt()
        .arg("run")
        .arg("--bench")
        .arg(&bench)
        .arg("--suite")
        .arg(&suite)
        .arg("--artifact")
        .arg("/dev/zero")
        .arg("--skip-flash")
        .arg("--results-dir")
        .arg(d.path().join("out"))
        .env("HILT_LOCK_DIR", d.path().join("locks"))
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        format!("{stdout}{stderr}").contains("not a regular file"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn agent_refuses_a_fifo_as_agent_yaml() {
    let d = tempfile::tempdir().unwrap();
    let pipe = fifo(&d);
    hilt()
        .args(["agent", "serve", "--port", "0", "--config"])
        .arg(&pipe)
        .arg("--work-dir")
        .arg(d.path().join("work"))
        .timeout(Duration::from_secs(20))
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a regular file"));
}
