//! `hilt agent serve` as a real process: crash recovery (kill -9), SIGTERM drain, second
//! SIGTERM / SIGQUIT cancel, SIGUSR1 and the restart file, SIGHUP reload. Every agent is a
//! child process killed on drop, so a failing test leaves nothing running.

use hilt_testkit::process as agent_proc;
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;

use agent_proc::{
    Layout, PING, alive, processes, sleepy, suite, unique, write_agent_yaml, zip_has,
};
use common::Bench;

/// A sim DUT bench registered as `sim-a` on an agent with a unique name.
fn setup(tmp: &Path, bench: &Bench) -> Layout {
    let l = Layout::new(tmp, &unique("hilt-agent-proc"));
    write_agent_yaml(&l.config(), &l.name, &[("sim-a", &bench.bench)]);
    l
}

/// Removes a file when dropped (the restart file must not outlive its test).
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn kill_9_then_restart_fails_the_interrupted_run_and_runs_the_queued_ones() {
    let bench = Bench::start();
    let tmp = tempfile::tempdir().unwrap();
    let l = setup(tmp.path(), &bench);
    let mut first = l.start();
    let long = first.submit("sim-a", &sleepy("long", 20_000));
    let q1 = first.submit("sim-a", &suite("quick one", PING));
    let q2 = first.submit("sim-a", &suite("quick two", PING));
    first.wait_sleeping(&long);
    assert_eq!(first.run(&q1)["status"], "queued");
    assert_eq!(first.run(&q2)["status"], "queued");
    first.kill9();
    assert!(!alive(first.pid().as_raw()));
    // The record on disk still says the run executes: nobody finished it.
    assert_eq!(l.record(&long)["status"], "running");

    let second = l.start();
    let r = second.run(&long);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["failure"]["source"], "agent_cloud", "{r}");
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Agent restarted") && error.contains("did not finish"),
        "unclear reason: {error}"
    );
    assert!(r["finished_at"].is_string(), "{r}");
    let (s, events) = second.get(&format!("/v1/runs/{long}/events"));
    assert_eq!(s, 200);
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert!(types.contains(&"step.started"), "{types:?}");
    assert_eq!(types.last(), Some(&"run.failed"), "{types:?}");

    // Partial results stay downloadable.
    let (s, zip) = second.get_bytes(&format!("/v1/runs/{long}/artifacts.zip"));
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&zip));
    assert!(zip.starts_with(b"PK"), "not a zip");
    for f in [
        "events.jsonl",
        "status.json",
        "command_ledger.jsonl",
        "transport-console.log",
    ] {
        assert!(zip_has(&zip, f), "{f} missing in the partial results zip");
    }

    // Nothing acknowledged is lost: the queued runs run, in order.
    let a = second.wait_finished(&q1, Duration::from_secs(30));
    let b = second.wait_finished(&q2, Duration::from_secs(30));
    assert_eq!(a["status"], "done", "{a}");
    assert_eq!(b["status"], "done", "{b}");
    assert!(
        a["started_at"].as_str() <= b["started_at"].as_str(),
        "FIFO order lost: {a} {b}"
    );
    let listed = second.get_ok("/v1/runs");
    let text = listed.to_string();
    for id in [&long, &q1, &q2] {
        assert!(text.contains(id.as_str()), "{id} missing from {listed}");
    }
}

#[test]
fn sigterm_drains_the_executing_run_and_keeps_the_queue_on_disk() {
    let bench = Bench::start();
    let tmp = tempfile::tempdir().unwrap();
    let l = setup(tmp.path(), &bench);
    keep_queue_on_shutdown(&l);
    let mut agent = l.start();
    let running = agent.submit("sim-a", &sleepy("drained", 1500));
    let queued = agent.submit("sim-a", &suite("waits", PING));
    agent.wait_sleeping(&running);
    agent.signal(Signal::SIGTERM);
    agent.wait_log("SIGTERM", Duration::from_secs(5));

    // While the run executes the agent still serves: submissions get 503, reads work.
    let (s, v) = agent
        .try_post(
            "/v1/runs/json",
            &json!({"bench_id": "sim-a", "suite_yaml": suite("late", PING), "skip_flash": true}),
        )
        .unwrap_or_else(|e| panic!("the draining agent stopped serving early: {e}"));
    assert_eq!(s, 503, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("shutting down")),
        "{v}"
    );
    assert_eq!(agent.run(&running)["status"], "running");
    let h = agent.get_ok("/health");
    assert_eq!(h["accepting_runs"], false, "{h}");

    // Once the run is over, its client can still collect it before the port closes.
    let r = agent.wait_finished(&running, Duration::from_secs(20));
    assert_eq!(r["status"], "done", "{r}");
    let (s, zip) = agent.get_bytes(&format!("/v1/runs/{running}/artifacts.zip"));
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&zip));
    assert_eq!(agent.run(&queued)["status"], "queued");

    let st = agent
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the agent did not exit:\n{}", agent.log()));
    assert_eq!(st.code(), Some(0), "{st}\n{}", agent.log());
    let done = l.record(&running);
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["exit_code"], 0, "{done}");
    let waiting = l.record(&queued);
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert!(
        waiting["notice"]
            .as_str()
            .is_some_and(|n| n.contains("on_shutdown: keep")),
        "{waiting}"
    );
    assert!(!l.run_dir(&queued).join("results").exists());

    // The next start runs it.
    let next = l.start();
    let r = next.wait_finished(&queued, Duration::from_secs(30));
    assert_eq!(r["status"], "done", "{r}");
    assert_eq!(next.run(&running)["status"], "done");
}

fn keep_queue_on_shutdown(l: &Layout) {
    let mut text = std::fs::read_to_string(l.config()).unwrap();
    text.push_str("on_shutdown: keep\n");
    std::fs::write(l.config(), text).unwrap();
}

#[test]
fn sigterm_cancels_queued_runs_by_default_and_says_why() {
    let bench = Bench::start();
    let tmp = tempfile::tempdir().unwrap();
    let l = setup(tmp.path(), &bench);
    let mut agent = l.start();
    let running = agent.submit("sim-a", &sleepy("drained", 1500));
    let queued = agent.submit("sim-a", &suite("waits", PING));
    agent.wait_sleeping(&running);
    agent.signal(Signal::SIGTERM);
    agent.wait_log("SIGTERM", Duration::from_secs(5));
    let r = agent.wait_finished(&queued, Duration::from_secs(10));
    assert_eq!(r["cancelled"], true, "{r}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("agent shut down") && e.contains("on_shutdown: cancel")),
        "{r}"
    );
    assert_eq!(
        agent.wait_finished(&running, Duration::from_secs(20))["status"],
        "done"
    );
    let st = agent
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the agent did not exit:\n{}", agent.log()));
    assert_eq!(st.code(), Some(0), "{st}\n{}", agent.log());
    assert_eq!(l.record(&queued)["status"], "cancelled");
    // Nothing runs at the next start with nobody watching.
    let next = l.start();
    assert_eq!(next.run(&queued)["status"], "failed");
    assert!(!l.run_dir(&queued).join("results").exists());
}

/// A bench whose `run_external` target `sleeper` runs `sleep <n>` in `work_root`.
fn external_bench(bench: &Bench, work_root: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&bench.bench).unwrap();
    let text = format!(
        "{text}\nsafety:\n  external:\n    enabled: true\n    targets:\n      sleeper:\n        work_root: \"{}\"\n        argv_prefix: [sleep]\n        arg_patterns: [\"[0-9]+\"]\n",
        work_root.display()
    );
    let p = bench.path("external-bench.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Starts a run whose child is `sleep 60`, cancels it with `signals` (one after another,
/// each acknowledged before the next), and checks the run, the exit and the child.
fn cancel_with(signals: &[Signal], want_exit: i64) {
    let bench = Bench::start();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("ext")).unwrap();
    let work_root = tmp.path().join("ext").canonicalize().unwrap();
    let bfile = external_bench(&bench, &work_root);
    let l = Layout::new(&tmp.path().join("agent"), &unique("hilt-agent-cancel"));
    write_agent_yaml(&l.config(), &l.name, &[("sim-x", &bfile)]);
    let mut agent = l.start();
    let steps = format!(
        "{PING}      - run_external: {{target: sleeper, args: [\"60\"], timeout_ms: 120000}}\n"
    );
    let id = agent.submit("sim-x", &suite("external", &steps));
    let deadline = Instant::now() + Duration::from_secs(30);
    let sleeper = loop {
        if let Some(p) = processes(&["sleep", "60"], &work_root).first() {
            break *p;
        }
        let r = agent.run(&id);
        assert!(
            Instant::now() < deadline && !matches!(r["status"].as_str(), Some("done" | "failed")),
            "the external command never started: {r}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    let mut sent = Instant::now();
    for (i, s) in signals.iter().enumerate() {
        sent = Instant::now();
        agent.signal(*s);
        if i + 1 < signals.len() {
            // Same-signal deliveries coalesce if sent back to back: wait for the first one.
            agent.wait_log("no new runs", Duration::from_secs(5));
        }
    }
    // The waiting client still gets its results: the cancelled run is final and its
    // artifacts download before the port closes.
    let r = agent.wait_finished(&id, Duration::from_secs(5));
    assert_eq!(r["cancelled"], true, "{r}");
    let (s, zip) = agent.get_bytes(&format!("/v1/runs/{id}/artifacts.zip"));
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&zip));
    let st = agent
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the agent did not exit within 5 s:\n{}", agent.log()));
    let took = sent.elapsed();
    // Stopped by that signal: 128+signal, like any process it ends.
    assert_eq!(
        st.code().map(i64::from),
        Some(want_exit),
        "{st}\n{}",
        agent.log()
    );
    assert!(took < Duration::from_secs(5), "exit took {took:?}");

    let rec = l.record(&id);
    assert_eq!(rec["status"], "cancelled", "{rec}");
    assert_eq!(rec["exit_code"], want_exit, "{rec}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(sleeper) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(sleeper),
        "the run's child `sleep 60` ({sleeper}) survived"
    );
    assert!(processes(&["sleep", "60"], &work_root).is_empty());
}

#[test]
fn second_sigterm_cancels_the_run_with_143_and_kills_its_child() {
    cancel_with(&[Signal::SIGTERM, Signal::SIGTERM], 143);
}

#[test]
fn sigquit_cancels_the_run_with_131_and_kills_its_child() {
    cancel_with(&[Signal::SIGQUIT], 131);
}

enum RestartBy {
    Sigusr1,
    File,
}

/// Starts a 1.5 s run, asks for a restart, checks the agent waits for the run, then exits 0.
fn restart_with(by: RestartBy) {
    let bench = Bench::start();
    let tmp = tempfile::tempdir().unwrap();
    let l = setup(tmp.path(), &bench);
    let file = hilt_agent::AgentSettings::restart_file_for(&l.name);
    let _cleanup = RemoveOnDrop(file.clone());
    let mut agent = l.start();
    let id = agent.submit("sim-a", &sleepy("restart", 1500));
    agent.wait_sleeping(&id);
    match by {
        RestartBy::Sigusr1 => {
            agent.signal(Signal::SIGUSR1);
            agent.wait_log("restart requested", Duration::from_secs(5));
        }
        RestartBy::File => {
            std::fs::write(&file, b"").unwrap();
            // The agent checks every 500 ms and consumes the file when it sees it.
            let deadline = Instant::now() + Duration::from_secs(5);
            while file.exists() {
                assert!(
                    Instant::now() < deadline,
                    "the agent never noticed {}",
                    file.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    // It waits for the run: still alive and serving, the run still executing.
    std::thread::sleep(Duration::from_millis(300));
    assert!(agent.try_exit().is_none(), "exited before the run finished");
    let (s, v) = agent.get(&format!("/v1/runs/{id}"));
    assert_eq!(s, 200);
    assert_eq!(v["status"], "running", "{v}");
    let (s, v) = agent
        .try_post(
            "/v1/runs/json",
            &json!({"bench_id": "sim-a", "suite_yaml": suite("late", PING), "skip_flash": true}),
        )
        .unwrap();
    assert_eq!(s, 503, "a restarting agent accepted a run: {v}");
    let st = agent
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the agent did not exit:\n{}", agent.log()));
    assert_eq!(st.code(), Some(0), "{st}\n{}", agent.log());
    let rec = l.record(&id);
    assert_eq!(rec["status"], "done", "{rec}");
    assert!(!file.exists());
}

#[test]
fn sigusr1_restarts_once_the_executing_run_is_done() {
    restart_with(RestartBy::Sigusr1);
}

#[test]
fn restart_file_restarts_once_the_executing_run_is_done() {
    restart_with(RestartBy::File);
}

#[test]
fn sighup_reloads_agent_yaml_without_disturbing_runs_and_keeps_the_old_one_if_invalid() {
    let a = Bench::start();
    let b = Bench::start();
    let tmp = tempfile::tempdir().unwrap();
    let l = setup(tmp.path(), &a);
    let agent = l.start();
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x["bench_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&agent.get_ok("/v1/benches")), ["sim-a"]);
    let id = agent.submit("sim-a", &sleepy("during reload", 1500));
    agent.wait_sleeping(&id);

    write_agent_yaml(
        &l.config(),
        &l.name,
        &[("sim-a", &a.bench), ("sim-b", &b.bench)],
    );
    agent.signal(Signal::SIGHUP);
    agent.wait_log("configuration reloaded", Duration::from_secs(10));
    assert_eq!(ids(&agent.get_ok("/v1/benches")), ["sim-a", "sim-b"]);
    let busy = agent.get_ok("/v1/benches/sim-a");
    assert_eq!(busy["status"], "busy", "{busy}");
    assert_eq!(busy["current_run_id"], id.as_str(), "{busy}");
    let r = agent.wait_finished(&id, Duration::from_secs(30));
    assert_eq!(r["status"], "done", "the reload disturbed the run: {r}");
    // The new bench takes runs.
    let on_b = agent.submit("sim-b", &suite("on b", PING));
    assert_eq!(
        agent.wait_finished(&on_b, Duration::from_secs(30))["status"],
        "done"
    );

    // An invalid agent.yaml is refused; the old configuration stays.
    std::fs::write(l.config(), "agent: [this is not\n").unwrap();
    agent.signal(Signal::SIGHUP);
    agent.wait_log("reload refused", Duration::from_secs(10));
    assert_eq!(ids(&agent.get_ok("/v1/benches")), ["sim-a", "sim-b"]);
    let h = agent.get_ok("/health");
    assert_eq!(h["registered_benches"], 2, "{h}");
    let again = agent.submit("sim-a", &suite("after refusal", PING));
    assert_eq!(
        agent.wait_finished(&again, Duration::from_secs(30))["status"],
        "done"
    );
}

/// Resident memory of a process, kB.
fn rss_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Writes `n` finished runs as an agent leaves them: record plus a 40-event log.
fn store_finished_runs(l: &Layout, n: usize) {
    let now = jiff::Timestamp::now().to_string();
    for i in 0..n {
        let id = format!("{i:012x}");
        let dir = l.run_dir(&id);
        std::fs::create_dir_all(&dir).unwrap();
        let rec = json!({"run_id": id, "status": "done", "mode": "registered", "bench_id": "sim-a",
            "lock_key": "sim-a", "exit_code": 0, "error": null, "created_at": now, "started_at": now,
            "finished_at": now, "current_test": "t", "current_step": null, "skip_flash": true,
            "verbose": false, "artifact": null, "seq": i + 1, "failure": null, "resource_keys": []});
        std::fs::write(dir.join("record.json"), rec.to_string()).unwrap();
        let mut log = String::new();
        for seq in 1..=40 {
            let kind = match seq {
                1 => "run.started",
                40 => "run.finished",
                _ => "step.finished",
            };
            let e = json!({"seq": seq, "timestamp": now, "event_type": kind, "message": null,
                "data": {"test_name": "t", "step_index": seq, "step_type": "sleep_ms", "exit_code": 0}});
            log.push_str(&e.to_string());
            log.push('\n');
        }
        std::fs::write(dir.join("events.jsonl"), log).unwrap();
    }
}

/// Idle memory does not grow with the number of stored runs: a finished run keeps only its
/// small record in memory (its events are read from disk when asked for).
#[test]
fn idle_memory_is_flat_in_the_number_of_stored_runs() {
    let bench = Bench::start();
    let measure = |n: usize| {
        let tmp = tempfile::tempdir().unwrap();
        let l = setup(tmp.path(), &bench);
        store_finished_runs(&l, n);
        let agent = l.start();
        let rss = rss_kb(agent.pid().as_raw());
        // Every run is known, and a finished run's events still come from disk.
        if n > 0 {
            let listed = agent.get_ok("/v1/runs?limit=100000");
            assert_eq!(listed["runs"].as_array().unwrap().len(), n);
            let (s, ev) = agent.get("/v1/runs/000000000000/events");
            assert_eq!(s, 200, "{ev}");
            assert_eq!(ev["events"].as_array().unwrap().len(), 40);
        }
        rss
    };
    let empty = measure(0);
    let full = measure(3000);
    // ~178 kB per stored run before (3000 runs: +520 MB); a small record each now.
    assert!(
        full < empty + 15 * 1024,
        "idle RSS {empty} kB with no stored runs, {full} kB with 3000"
    );
    eprintln!("idle RSS: {empty} kB with 0 stored runs, {full} kB with 3000");
}
