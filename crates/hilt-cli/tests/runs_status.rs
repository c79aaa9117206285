//! `hilt runs status`: its exit code follows the run (non-zero for failed, cancelled and
//! stalled runs), and a closed stdout (`… | head -1`) ends it quietly instead of a panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{hilt, last_run};
use predicates::prelude::*;

const BENCH: &str = "version: 1\nbench: {name: b}\nnodes:\n  dut:\n    kind: mcu\n    gpio: {led: {backend: mock_gpio, channel: 1, direction: input}}\n";

/// A finished local run of `steps` (mock bench, no hardware); returns its run directory.
fn run_with(d: &Path, steps: &str, want: i32) -> PathBuf {
    std::fs::create_dir_all(d).unwrap();
    let bench = d.join("bench.yaml");
    let suite = d.join("suite.yaml");
    std::fs::write(&bench, BENCH).unwrap();
    std::fs::write(
        &suite,
        format!("version: 1\nsuite: {{name: s}}\ntests:\n  - name: t\n    steps:\n{steps}"),
    )
    .unwrap();
    hilt()
        .arg("run")
        .arg("--bench")
        .arg(&bench)
        .arg("--suite")
        .arg(&suite)
        .arg("--results-dir")
        .arg(d.join("results"))
        .env("HILT_LOCK_DIR", d.join("locks"))
        .assert()
        .code(want);
    last_run(&d.join("results"))
}

fn status_code(run: &Path, json: bool) -> i32 {
    let mut c = hilt();
    c.args(["runs", "status"]);
    if json {
        c.arg("--json");
    }
    c.arg(run).output().unwrap().status.code().unwrap()
}

#[test]
fn exit_code_is_non_zero_for_failed_and_stalled_runs() {
    let d = tempfile::tempdir().unwrap();
    let passed = run_with(&d.path().join("p"), "      - sleep_ms: 1\n", 0);
    assert_eq!(status_code(&passed, false), 0);
    assert_eq!(status_code(&passed, true), 0);

    let failed = run_with(
        &d.path().join("f"),
        "      - gpio_expect: {node: dut, line: led, value: true, within_ms: 10}\n",
        1,
    );
    assert_eq!(status_code(&failed, false), 1);
    assert_eq!(status_code(&failed, true), 1);

    // The same directory as a run whose process died mid-run: stalled.
    let stalled = run_with(&d.path().join("s"), "      - sleep_ms: 1\n", 0);
    let path = stalled.join("status.json");
    let mut snap: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    snap["state"] = "running".into();
    snap["exit_code"] = serde_json::Value::Null;
    snap["monitoring"]["pid"] = dead_pid.into();
    snap["monitoring"]["last_heartbeat_at"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&path, snap.to_string()).unwrap();
    hilt()
        .args(["runs", "status"])
        .arg(&stalled)
        .assert()
        .code(5)
        .stdout(predicate::str::contains("stalled"));
    assert_eq!(status_code(&stalled, true), 5);
}

#[test]
fn closed_stdout_ends_quietly() {
    let d = tempfile::tempdir().unwrap();
    let run = run_with(d.path(), "      - sleep_ms: 1\n", 0);
    for json in [true, false] {
        // A pipe whose reader is already gone: the first write fails with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hilt"));
        c.args(["runs", "status"]);
        if json {
            c.arg("--json");
        }
        let out = c
            .arg(&run)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "json={json}: {stderr}");
        assert!(stderr.trim().is_empty(), "json={json}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "json={json}: {stderr}");
    }
}
