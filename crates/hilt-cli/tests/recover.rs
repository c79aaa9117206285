//! `hilt runs status|recover|resume` on run directories that need help: a run whose
//! process is stopped or killed (stalled, with the exact next command), damaged files
//! (repaired, originals kept), and older layouts (backfilled from the fixtures in
//! `tests/fixtures/`). A mock bench: no peers needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_complete, hilt, json, last_run};
use serde_json::Value;

const BENCH: &str = "version: 1\nbench: {name: b}\nnodes:\n  dut:\n    kind: mcu\n    gpio: {led: {backend: mock_gpio, channel: 1, direction: input}}\n";

fn write_files(d: &Path, tests: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(d).unwrap();
    let (bench, suite) = (d.join("bench.yaml"), d.join("suite.yaml"));
    std::fs::write(&bench, BENCH).unwrap();
    std::fs::write(
        &suite,
        format!("version: 1\nsuite: {{name: s}}\ntests:\n{tests}"),
    )
    .unwrap();
    (bench, suite)
}

fn run_cmd(d: &Path, bench: &Path, suite: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("hilt"));
    c.env_remove("BENCHCI_LOCK_DIR")
        .env("HILT_LOCK_DIR", d.join("locks"))
        .env("NO_COLOR", "1")
        .arg("run")
        .arg("--bench")
        .arg(bench)
        .arg("--suite")
        .arg(suite)
        .arg("--results-dir")
        .arg(d.join("results"));
    c
}

fn runs(what: &str, dir: &Path, json: bool) -> std::process::Output {
    let mut c = hilt();
    c.env("HILT_LOCK_DIR", dir.join("../../locks"));
    c.args(["runs", what]);
    if json {
        c.arg("--json");
    }
    c.arg(dir).output().unwrap()
}

fn status_json(run: &Path) -> Value {
    let out = runs("status", run, true);
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["status"].clone()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn a_stopped_then_killed_run_is_stalled_with_the_exact_next_command_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    let (bench, suite) = write_files(
        d.path(),
        "  - name: quick
    steps:
      - sleep_ms: 1
  - name: slow
    steps:
      - sleep_ms: 1
      - sleep_ms: 2500
  - name: last
    steps:
      - sleep_ms: 1
",
    );
    let mut child = run_cmd(d.path(), &bench, &suite)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let results = d.path().join("results");
    wait_for("the slow test", Duration::from_secs(20), || {
        std::fs::read_dir(&results)
            .ok()
            .and_then(|mut r| r.next())
            .and_then(|e| e.ok())
            .and_then(|e| std::fs::read(e.path().join("status.json")).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|s| s["current_test"] == "slow" && s["current_step"] == "2")
    });
    let run = last_run(&results);
    signal(pid, "-STOP");
    // The heartbeat interval is 2 s: stale after 4 s.
    std::thread::sleep(Duration::from_millis(4600));
    let out = runs("status", &run, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("Attention: stalled"), "{text}");
    assert!(text.contains("is stopped"), "{text}");
    assert!(text.contains(&format!("run:  kill -CONT {pid}")), "{text}");
    let s = status_json(&run);
    assert_eq!(s["monitoring"]["state"], "stalled");
    assert_eq!(s["monitoring"]["heartbeat_interval_s"], 2);
    let a = &s["primary_alert"];
    assert_eq!(a["code"], "RUN_STALLED");
    assert_eq!(
        a["next_diagnostic_command"],
        format!("ps -o pid,stat,etime,args -p {pid}")
    );
    // Resume refuses while the process lives, even stopped.
    let busy = runs("resume", &run, false);
    assert_eq!(busy.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&busy.stderr).contains("still active"));

    child.kill().unwrap(); // SIGKILL while stopped: the heartbeat stays stale
    child.wait().unwrap();
    let s = status_json(&run);
    let a = &s["primary_alert"];
    assert_eq!(
        a["next_command"],
        format!("hilt runs resume {}", run.display()),
        "{a}"
    );
    assert_eq!(
        a["next_commands"],
        serde_json::json!([
            format!("hilt runs resume {}", run.display()),
            format!("hilt runs recover {}", run.display())
        ])
    );
    assert_eq!(a["next_actions"].as_array().unwrap().len(), 2);
    for p in a["next_paths"].as_array().unwrap() {
        assert!(Path::new(p.as_str().unwrap()).is_file(), "{p}");
    }
    assert_eq!(
        a["next_path"],
        run.join("workflow_journal.jsonl").display().to_string()
    );

    let out = runs("resume", &run, false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_complete(&run);
    let r = json(&run.join("results.json"));
    assert_eq!(r["summary"]["passed"], 3);
    // The kept test did not run again; the slow one went on from its second step.
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    let started_quick = events
        .lines()
        .filter(|l| l.contains("\"test.started\"") && l.contains("\"quick\""))
        .count();
    assert_eq!(started_quick, 1);
    assert!(events.contains("\"test.kept\""));
    let kept_step = events.lines().any(|l| {
        l.contains("\"step.skipped\"") && l.contains("\"slow\"") && l.contains("\"step_index\":1")
    });
    assert!(kept_step, "step 1 of `slow` was not kept");
}

#[test]
fn recover_repairs_damaged_files_and_keeps_the_originals() {
    let d = tempfile::tempdir().unwrap();
    let (bench, suite) = write_files(d.path(), "  - name: t\n    steps:\n      - sleep_ms: 1\n");
    assert!(
        run_cmd(d.path(), &bench, &suite)
            .status()
            .unwrap()
            .success()
    );
    let run = last_run(&d.path().join("results"));
    let status = std::fs::read(run.join("status.json")).unwrap();
    let torn_status = &status[..status.len() / 2];
    std::fs::write(run.join("status.json"), torn_status).unwrap();
    let mut events = std::fs::read(run.join("events.jsonl")).unwrap();
    let events_len = events.len();
    events.extend_from_slice(b"{\"seq\":999,\"type\":\"te");
    std::fs::write(run.join("events.jsonl"), &events).unwrap();

    let out = runs("status", &run, false);
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("damaged") && err.contains("hilt runs recover"),
        "{err}"
    );

    let out = runs("recover", &run, true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let repaired: Vec<&str> = report["repairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(repaired, ["status.json", "events.jsonl"]);
    for r in report["repairs"].as_array().unwrap() {
        let kept = run.join(r["kept_as"].as_str().unwrap());
        assert!(kept.is_file(), "{}", kept.display());
    }
    let kept_status = report["repairs"][0]["kept_as"].as_str().unwrap();
    assert_eq!(std::fs::read(run.join(kept_status)).unwrap(), torn_status);
    assert_eq!(
        std::fs::metadata(run.join("events.jsonl")).unwrap().len(),
        events_len as u64
    );
    let s = json(&run.join("status.json"));
    assert_eq!(s["state"], "passed");
    assert_eq!(runs("status", &run, false).status.code(), Some(0));
    let summary = std::fs::read_to_string(run.join("recovery_summary.md")).unwrap();
    assert!(summary.contains("## Repairs"), "{summary}");
}

fn copy_fixture(name: &str, to: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dst = to.join(name);
    assert!(
        Command::new("cp")
            .arg("-r")
            .arg(&src)
            .arg(&dst)
            .status()
            .unwrap()
            .success()
    );
    dst
}

#[test]
fn an_older_hilt_layout_is_backfilled_on_first_touch() {
    let d = tempfile::tempdir().unwrap();
    let run = copy_fixture("layout-hilt-0.1", d.path());
    let out = runs("status", &run, false);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run's own exit code (failed)"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for f in [
        "status.json",
        "command_ledger.jsonl",
        "workflow_journal.jsonl",
        "host_inventory_snapshot.json",
        "recovery_summary.md",
        "run_manifest.json",
        "artifact_manifest.json",
    ] {
        assert!(run.join(f).is_file(), "{f} not backfilled");
        assert!(err.contains(&format!("backfilled {f}")), "{f}: {err}");
    }
    let s = json(&run.join("status.json"));
    assert_eq!(s["monitoring"]["state"], "idle");
    assert_eq!(s["state"], "failed", "existing fields are kept");
    let inv = json(&run.join("host_inventory_snapshot.json"));
    assert_eq!(inv["hosts"]["gateway"]["hostname"], "10.0.0.12");
    assert_eq!(inv["auth_refs"]["jump-pw"]["value"], "LAB_JUMP_PASSWORD");
    let m = json(&run.join("run_manifest.json"));
    assert_eq!(m["backfilled"].as_array().unwrap().len(), 7, "{m}");
    let am = json(&run.join("artifact_manifest.json"));
    let paths: Vec<&str> = am["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"results.json") && paths.contains(&"run_manifest.json"));
    // Second touch: nothing more to do.
    let again = runs("status", &run, false);
    assert!(String::from_utf8_lossy(&again.stderr).trim().is_empty());
    // Resume keeps both finished tests and has nothing to do.
    let r = runs("resume", &run, false);
    assert_eq!(r.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&r.stderr).contains("nothing to resume"));
}

#[test]
fn a_benchci_layout_is_backfilled_by_recover() {
    let d = tempfile::tempdir().unwrap();
    let run = copy_fixture("layout-benchci-2.0", d.path());
    let before = std::fs::read(run.join("results.json")).unwrap();
    let out = runs("recover", &run, true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["state"], "passed");
    assert_eq!(report["tests_done"], 2);
    assert_eq!(report["resumable"], false);
    let files: Vec<&str> = report["backfilled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["file"].as_str().unwrap())
        .collect();
    for f in [
        "status.json",
        "events.jsonl",
        "command_ledger.jsonl",
        "workflow_journal.jsonl",
    ] {
        assert!(files.contains(&f), "{f}: {files:?}");
    }
    assert_eq!(
        std::fs::read(run.join("results.json")).unwrap(),
        before,
        "evidence changed"
    );
    let s = json(&run.join("status.json"));
    assert_eq!(
        (s["state"].as_str(), s["exit_code"].as_i64()),
        (Some("passed"), Some(0))
    );
    assert_eq!(s["results_dir"], run.display().to_string());
    let journal = std::fs::read_to_string(run.join("workflow_journal.jsonl")).unwrap();
    assert_eq!(
        journal
            .lines()
            .filter(|l| l.contains("\"t\":\"test\""))
            .count(),
        2
    );
    assert!(
        std::fs::read_to_string(run.join("recovery_summary.md"))
            .unwrap()
            .contains("Nothing to recover")
    );
}
