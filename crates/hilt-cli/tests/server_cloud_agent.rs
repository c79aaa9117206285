//! `hilt server` + `hilt agent cloud`, both the real binary, over real HTTP on loopback,
//! with a simulated DUT on a real pty:
//! - the agent registers, syncs its bench healthy, and `hilt runs submit --wait` passes with
//!   the run's events in the server, numbered 1..N once each;
//! - a second agent whose bench fails its self-test (a serial port that does not exist)
//!   syncs it `failing`, and a run pinned to it stays queued;
//! - the server is killed (SIGKILL) mid-run and restarted on the same data dir and port:
//!   the run completes and the server holds every event of it exactly once (compared with
//!   the runner's own events.jsonl on the agent);
//! - the agent is killed (SIGKILL) mid-run: the run fails AGENT_LOST with exit code -1
//!   within the server's lease window (`--lease-s 3`).
//!
//! That scenario runs on SQLite and on PostgreSQL (a throwaway cluster, as the server's
//! own scenario tests; skipped with a message without PostgreSQL unless
//! HILT_REQUIRE_PEERS=1).

use std::path::Path;
use std::time::{Duration, Instant};

mod common;
#[path = "../../hilt-server/tests/common/postgres.rs"]
mod postgres;

use serde_json::Value;

use common::cloud::{agent_log, assert_nothing_lost, bench_row, count, events, suite, wait_for};
use common::server::{Proc, agent_token, client, hilt, json_out, server_get};

/// `hilt server` on `bind`; returns the process and its URL.
fn start_server(data: &Path, bind: &str, lease_s: u32) -> (Proc, String) {
    start_server_on(data, None, bind, lease_s)
}

/// The same on a database (`None`: the SQLite file in the data dir).
fn start_server_on(data: &Path, db: Option<&str>, bind: &str, lease_s: u32) -> (Proc, String) {
    let lease = lease_s.to_string();
    let args = ["--bind", bind, "--long-poll-s", "5", "--lease-s", &lease];
    common::server::start_server(data, db, &args)
}

/// `hilt agent cloud` serving `bench` as `id`, tagged `sim`.
fn start_agent(dir: &Path, url: &str, token: &str, bench: &Path, id: &str, locks: &Path) -> Proc {
    common::server::start_agent(dir, url, token, bench, id, "sim", locks)
}

fn submit(url: &str, bench: &str, suite: &Path, wait: bool) -> (std::process::Output, Value) {
    submit_with(url, bench, suite, wait, &[])
}

fn submit_with(
    url: &str,
    bench: &str,
    suite: &Path,
    wait: bool,
    extra: &[&str],
) -> (std::process::Output, Value) {
    let mut args = vec![
        "runs",
        "submit",
        "--bench-id",
        bench,
        "--suite",
        suite.to_str().unwrap(),
        "--json",
        "--timeout-s",
        "120",
    ];
    args.extend_from_slice(extra);
    if wait {
        args.push("--wait");
    }
    let o = client(url, &args);
    if wait {
        let run = json_out(&o);
        return (o, run);
    }
    // Without --wait the run id alone is printed.
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o, serde_json::json!({ "run_id": id }))
}

#[test]
fn hilt_cloud_agent_runs_assignments_through_restarts_and_loss_sqlite() {
    runs_through_restarts_and_loss(None);
}

#[test]
fn hilt_cloud_agent_runs_assignments_through_restarts_and_loss_postgres() {
    if let Some(db) = postgres::fresh_database() {
        runs_through_restarts_and_loss(Some(&db));
    }
}

fn runs_through_restarts_and_loss(db: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let (mut server, url) = start_server_on(&data, db, "127.0.0.1:0", 60);
    let bind = url.trim_start_matches("http://").to_string();

    let sim = common::Bench::start();
    let locks = sim.path("locks");
    let token = agent_token(&url);
    let mut agent = start_agent(dir, &url, &token, &sim.bench, "sim-a", &locks);
    let log = || agent_log(dir, "sim-a");

    // Registered, with the start-up self-test's health, its tags and capabilities.
    let row = wait_for("bench sim-a synced", 60, &log, || {
        bench_row(&url, "sim-a").filter(|b| b["health_status"] != Value::Null)
    });
    assert_eq!(row["health_status"], "healthy", "{row}\n{}", log());
    assert_eq!(row["summary"]["tags"], serde_json::json!(["sim"]), "{row}");
    assert_eq!(row["summary"]["capabilities"]["has_gpio"], true, "{row}");
    assert_eq!(
        row["summary"]["node_names"],
        serde_json::json!(["dut"]),
        "{row}"
    );
    let agents = server_get(&url, "/v1/agents");
    let a = &agents["agents"][0];
    assert_eq!(a["name"], "lab-sim-a", "{agents}");
    assert!(
        a["machine_id"]
            .as_str()
            .unwrap()
            .starts_with("hilt_machine_")
    );
    assert!(
        a["version"].as_str().unwrap().starts_with("hilt/"),
        "{agents}"
    );

    // 1. A passing run, submitted and awaited by the CLI.
    let quick = suite(dir, "quick", 0);
    let firmware = dir.join("fw.bin");
    let fw_bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&firmware, &fw_bytes).unwrap();
    let with_fw = ["--artifact", firmware.to_str().unwrap(), "--skip-flash"];
    let t = Instant::now();
    let (o, run) = submit_with(&url, "sim-a", &quick, true, &with_fw);
    eprintln!("quick run: submit → done in {:?}", t.elapsed());
    assert_eq!(o.status.code(), Some(0), "{run}\n{}", log());
    assert_eq!(run["status"], "done");
    assert_eq!(run["exit_code"], 0);
    assert!(
        run["artifacts"]["size_bytes"].as_i64().unwrap() > 0,
        "{run}"
    );
    let id = run["run_id"].as_str().unwrap().to_string();
    let ev = events(&url, &id);
    for k in [
        "run.preparing",
        "run.started",
        "test.started",
        "step.finished",
        "test.finished",
    ] {
        assert_eq!(count(&ev, k).min(1), 1, "{k} missing");
    }
    assert_eq!(count(&ev, "run.started"), 1);
    assert_eq!(count(&ev, "run.finished"), 1);
    let last = ev.last().unwrap();
    assert_eq!(last["event_type"], "run.finished");
    assert_eq!(last["data"]["exit_code"], 0);
    let runner_log = dir
        .join("agent-sim-a/cloud-runs")
        .join(&id)
        .join("results/events.jsonl");
    assert_nothing_lost(&ev, &runner_log);
    // The firmware came with the assignment (base64) and reached the runner intact.
    let run_dir = dir.join("agent-sim-a/cloud-runs").join(&id);
    let got = std::fs::read(run_dir.join("fw.bin")).unwrap();
    assert!(got == fw_bytes, "the firmware changed on the way");

    // 2. A second agent whose bench fails its self-test: synced failing, nothing scheduled.
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "version: 1\nbench: {name: broken bench}\nnodes:\n  dut:\n    kind: simulator\n    \
         transports:\n      console: {backend: uart, port: /nonexistent/hilt-tty, baud: 115200}\n",
    )
    .unwrap();
    let token2 = agent_token(&url);
    let _agent2 = start_agent(dir, &url, &token2, &broken, "broken", &locks);
    let log2 = || agent_log(dir, "broken");
    let row = wait_for("bench broken synced", 60, &log2, || {
        bench_row(&url, "broken").filter(|b| b["health_status"] != Value::Null)
    });
    assert_eq!(row["health_status"], "failing", "{row}\n{}", log2());
    let (o, queued) = submit(&url, "broken", &quick, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let queued_id = queued["run_id"].as_str().unwrap().to_string();

    // 3. The server is killed mid-run and restarted on the same data dir and port.
    let long = suite(dir, "long", 10);
    let (o, run) = submit(&url, "sim-a", &long, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = run["run_id"].as_str().unwrap().to_string();
    wait_for("the long run started", 60, &log, || {
        let v = server_get(&url, &format!("/v1/runs/{id}/events"));
        (v["events"].as_array().map_or(0, Vec::len) >= 5).then_some(())
    });
    server.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    let (s2, url2) = start_server_on(&data, db, &bind, 60);
    server = s2;
    assert_eq!(url2, url);
    let run = wait_for("the long run completed", 90, &log, || {
        let v = server_get(&url, &format!("/v1/runs/{id}"));
        (v["status"] == "done" || v["status"] == "failed").then_some(v)
    });
    assert_eq!(run["status"], "done", "{run}\n{}", log());
    assert_eq!(run["exit_code"], 0);
    let ev = events(&url, &id);
    assert_eq!(count(&ev, "run.started"), 1);
    assert_eq!(count(&ev, "run.finished"), 1);
    assert_eq!(ev.last().unwrap()["event_type"], "run.finished");
    let runner_log = dir
        .join("agent-sim-a/cloud-runs")
        .join(&id)
        .join("results/events.jsonl");
    assert_nothing_lost(&ev, &runner_log);
    eprintln!(
        "long run: {} events, all stored once across a server restart",
        ev.len()
    );
    assert!(
        log().contains("kept for retry"),
        "the agent never noticed the restart\n{}",
        log()
    );

    // The run pinned to the failing bench is still queued.
    let v = server_get(&url, &format!("/v1/runs/{queued_id}"));
    assert_eq!(v["status"], "queued", "{v}");

    // 4. The agent is killed mid-run: AGENT_LOST, exit -1, within the lease window.
    server.kill9();
    let (s3, _) = start_server_on(&data, db, &bind, 3);
    server = s3;
    let (o, run) = submit(&url, "sim-a", &long, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = run["run_id"].as_str().unwrap().to_string();
    wait_for("the third run started", 60, &log, || {
        let v = server_get(&url, &format!("/v1/runs/{id}"));
        (v["status"] == "running").then_some(())
    });
    // The bench is synced busy with the run while it executes.
    let row = wait_for("bench busy", 10, &log, || {
        bench_row(&url, "sim-a").filter(|b| b["status"] == "busy")
    });
    assert_eq!(row["current_run_id"], id.as_str(), "{row}");
    agent.kill9();
    let killed = Instant::now();
    let run = wait_for("the run failed as agent lost", 30, &log, || {
        let v = server_get(&url, &format!("/v1/runs/{id}"));
        (v["status"] == "failed").then_some(v)
    });
    let lost_after = killed.elapsed();
    eprintln!("agent killed: run failed AGENT_LOST after {lost_after:?}");
    assert_eq!(run["exit_code"], -1, "{run}");
    assert_eq!(run["failure"]["category"], "AGENT_LOST", "{run}");
    // Lease 3 s + one sweep (2 s) + slack for a loaded machine.
    assert!(lost_after < Duration::from_secs(12), "{lost_after:?}");
    drop(server);
}

#[test]
fn a_wrong_revoked_or_foreign_token_stops_the_agent_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, url) = start_server(&dir.join("data"), "127.0.0.1:0", 60);
    let sim = common::Bench::start();
    let mut agent = start_agent(
        dir,
        &url,
        "hilt_wrong",
        &sim.bench,
        "sim-x",
        &sim.path("locks"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = agent.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the agent kept running with a wrong token"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = agent_log(dir, "sim-x");
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("refused the agent token (HTTP 403)"), "{log}");

    // A token revoked while the agent runs: the next heartbeat is refused and it stops.
    let o = client(
        &url,
        &[
            "tokens",
            "create",
            "--workspace",
            "default",
            "--kind",
            "agent",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let created = json_out(&o);
    let token = created["token"].as_str().unwrap();
    let mut agent = start_agent(dir, &url, token, &sim.bench, "sim-r", &sim.path("locks"));
    let log = || agent_log(dir, "sim-r");
    wait_for("bench synced", 60, &log, || bench_row(&url, "sim-r"));
    let o = client(&url, &["tokens", "revoke", created["id"].as_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = agent.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the agent kept running with a revoked token\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(2), "{}", log());
    assert!(log().contains("refused the agent token"), "{}", log());

    // One token, a second machine (its own machine id): refused 409, the agent stops.
    let token = agent_token(&url);
    let _first = start_agent(dir, &url, &token, &sim.bench, "sim-m1", &sim.path("locks"));
    wait_for("bench synced", 60, &log, || bench_row(&url, "sim-m1"));
    let mut second = start_agent(dir, &url, &token, &sim.bench, "sim-m2", &sim.path("locks"));
    let log2 = || agent_log(dir, "sim-m2");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = second.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "a second machine kept running\n{}",
            log2()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(2), "{}", log2());
    assert!(log2().contains("HTTP 409"), "{}", log2());
}

#[test]
fn signals_cancel_and_complete_the_run_and_bad_flags_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, url) = start_server(&dir.join("data"), "127.0.0.1:0", 60);
    let sim = common::Bench::start();
    let token = agent_token(&url);
    let mut agent = start_agent(dir, &url, &token, &sim.bench, "sim-t", &sim.path("locks"));
    let log = || agent_log(dir, "sim-t");
    wait_for("bench synced", 60, &log, || bench_row(&url, "sim-t"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = agent.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "SIGTERM did not stop the agent\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(143), "{}", log());

    // SIGINT in the middle of a run: the run is cancelled, completed (exit 130) and the
    // agent exits 130.
    let mut agent = start_agent(dir, &url, &token, &sim.bench, "sim-t", &sim.path("locks"));
    let long = suite(dir, "long", 40);
    let (o, run) = submit(&url, "sim-t", &long, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = run["run_id"].as_str().unwrap().to_string();
    wait_for("the run started", 60, &log, || {
        let v = server_get(&url, &format!("/v1/runs/{id}"));
        (v["status"] == "running").then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = agent.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "SIGINT did not stop the agent\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130), "{}", log());
    let v = server_get(&url, &format!("/v1/runs/{id}"));
    assert_eq!(v["status"], "failed", "{v}\n{}", log());
    assert_eq!(v["exit_code"], 130, "{v}");
    let ev = events(&url, &id);
    assert_eq!(ev.last().unwrap()["event_type"], "run.cancelled", "{ev:?}");
    let row = bench_row(&url, "sim-t").unwrap();
    assert_eq!(row["status"], "idle", "{row}");

    // No server, no token, no bench: clear usage errors.
    let o = hilt()
        .args(["agent", "cloud", "--bench"])
        .arg(&sim.bench)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HILT_SERVER"));
    let o = hilt()
        .args(["agent", "cloud", "--server", &url, "--bench"])
        .arg(&sim.bench)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("HILT_AGENT_TOKEN"));
    let o = hilt()
        .args(["agent", "cloud", "--server", &url, "--token", "t"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = hilt()
        .args([
            "agent", "cloud", "--server", "ftp://x", "--token", "t", "--bench",
        ])
        .arg(&sim.bench)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("http://host:port"));
}

#[test]
fn one_agent_serves_every_bench_of_an_agent_yaml_in_parallel() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, url) = start_server(&dir.join("data"), "127.0.0.1:0", 60);
    // Two simulated DUTs, each on its own pty. Only their consoles are wired: the demo
    // bench's mock GPIO lines of node `dut` would take the same host-wide locks on both.
    let (a, b) = (common::Bench::start(), common::Bench::start());
    for sim in [&a, &b] {
        std::fs::write(
            &sim.bench,
            format!(
                "version: 1\nbench: {{name: console only}}\ndefaults: {{node: dut}}\nnodes:\n  dut:\n    kind: simulator\n    \
                 transports:\n      console: {{backend: uart, port: \"{}\", baud: 115200}}\n",
                sim.path("dut.tty").display()
            ),
        )
        .unwrap();
    }
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "agent: {{id: lab-pi, name: Lab Pi}}\nbenches:\n  \
             - {{id: left, bench_file: \"{}\", tags: [lab]}}\n  \
             - {{id: right, bench_file: \"{}\"}}\n",
            a.bench.display(),
            b.bench.display()
        ),
    )
    .unwrap();
    let token = agent_token(&url);
    let work = dir.join("agent-cfg");
    std::fs::create_dir_all(&work).unwrap();
    let _agent = Proc(
        hilt()
            .args(["agent", "cloud", "--config"])
            .arg(&config)
            .args([
                "--server",
                &url,
                "--token",
                &token,
                "--tag",
                "sim",
                "--work-dir",
            ])
            .arg(&work)
            .env("HILT_LOCK_DIR", a.path("locks"))
            .env("HILT_LOG", "info")
            .stdout(std::fs::File::create(work.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(work.join("stderr.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || agent_log(dir, "cfg");
    for id in ["left", "right"] {
        let row = wait_for("bench synced", 60, &log, || {
            bench_row(&url, id).filter(|b| b["health_status"] != Value::Null)
        });
        assert_eq!(row["health_status"], "healthy", "{row}\n{}", log());
    }
    assert_eq!(
        bench_row(&url, "left").unwrap()["summary"]["tags"],
        serde_json::json!(["lab", "sim"])
    );
    assert_eq!(
        server_get(&url, "/v1/agents")["agents"][0]["name"],
        "Lab Pi"
    );

    // A run on each bench at once: they execute side by side, not one after the other.
    let long = suite(dir, "long", 6);
    let t = Instant::now();
    let (l, r) = std::thread::scope(|sc| {
        let l = sc.spawn(|| submit(&url, "left", &long, true));
        let r = sc.spawn(|| submit(&url, "right", &long, true));
        (l.join().unwrap(), r.join().unwrap())
    });
    let both = t.elapsed();
    for (o, run) in [&l, &r] {
        assert_eq!(o.status.code(), Some(0), "{run}\n{}", log());
        assert_eq!(run["status"], "done");
    }
    let started = |run: &Value| run["started_at"].as_str().unwrap().to_string();
    let finished = |run: &Value| run["finished_at"].as_str().unwrap().to_string();
    // Overlapping: each started before the other finished.
    assert!(
        started(&l.1) < finished(&r.1) && started(&r.1) < finished(&l.1),
        "{} {}",
        l.1,
        r.1
    );
    eprintln!("two benches, two runs of ~2.4 s each: {both:?} in all");
}

/// A user cancels a running run on the server (`hilt runs cancel`): the heartbeat answer
/// (`cancel_run_ids`) or a 409 `run_cancelled` on its events reaches the agent, which
/// cancels the runner and completes the run; the bench is free again. Needs a server with
/// cancel (the scheduler's `POST /v1/runs/{id}/cancel`); skipped, saying so, without it.
#[test]
fn a_cancel_on_the_server_stops_the_run_on_the_agent() {
    let help = hilt().args(["runs", "cancel", "--help"]).output().unwrap();
    if !help.status.success() {
        eprintln!("skipping: this build's server has no run cancel yet (hilt runs cancel)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, url) = start_server(&dir.join("data"), "127.0.0.1:0", 60);
    let sim = common::Bench::start();
    let token = agent_token(&url);
    let _agent = start_agent(dir, &url, &token, &sim.bench, "sim-c", &sim.path("locks"));
    let log = || agent_log(dir, "sim-c");
    wait_for("bench synced", 60, &log, || {
        bench_row(&url, "sim-c").filter(|b| b["health_status"] == "healthy")
    });
    let long = suite(dir, "long", 40);
    let (o, run) = submit(&url, "sim-c", &long, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = run["run_id"].as_str().unwrap().to_string();
    wait_for("the run started", 60, &log, || {
        let v = server_get(&url, &format!("/v1/runs/{id}"));
        (v["status"] == "running").then_some(())
    });
    let t = Instant::now();
    let o = client(&url, &["runs", "cancel", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = wait_for("the cancelled run ended", 30, &log, || {
        let v = server_get(&url, &format!("/v1/runs/{id}"));
        (v["status"] == "failed").then_some(v)
    });
    eprintln!("cancel → run ended in {:?}", t.elapsed());
    assert_eq!(v["cancelled"], true, "{v}");
    // Well before the suite's own 16 s: the agent stopped the runner.
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "{:?}\n{}",
        t.elapsed(),
        log()
    );
    wait_for("the agent completed it", 20, &log, || {
        log()
            .contains(&format!("run {id}: completed"))
            .then_some(())
    });
    let results = dir
        .join("agent-sim-c/cloud-runs")
        .join(&id)
        .join("results/results.json");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(r["status"], "cancelled", "{r}");
    let row = wait_for("bench idle", 20, &log, || {
        bench_row(&url, "sim-c").filter(|b| b["status"] == "idle")
    });
    assert_eq!(row["current_run_id"], Value::Null);
}

/// A bench whose device is not there yet fails its start-up self-test: synced `failing`, a
/// run pinned to it stays queued. The agent tests it again with back-off; once the device
/// appears the bench passes, is synced healthy and the queued run executes.
#[test]
fn a_failing_bench_returns_to_service_when_its_self_test_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, url) = start_server(&dir.join("data"), "127.0.0.1:0", 60);
    let link = dir.join("late.tty");
    let bench = dir.join("late.yaml");
    std::fs::write(
        &bench,
        format!(
            "version: 1\nbench: {{name: late bench}}\ndefaults: {{node: dut}}\nnodes:\n  dut:\n    \
             kind: simulator\n    transports:\n      console: {{backend: uart, port: \"{}\", baud: 115200}}\n",
            link.display()
        ),
    )
    .unwrap();
    let token = agent_token(&url);
    let locks = dir.join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let work = dir.join("agent-late");
    std::fs::create_dir_all(&work).unwrap();
    let _agent = Proc(
        hilt()
            .args(["agent", "cloud", "--bench"])
            .arg(&bench)
            .args(["--bench-id", "late", "--retest-s", "0.3", "--work-dir"])
            .arg(&work)
            .env("HILT_SERVER", &url)
            .env("HILT_AGENT_TOKEN", &token)
            .env("HILT_LOCK_DIR", &locks)
            .env("HILT_LOG", "info")
            .stdout(std::fs::File::create(work.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(work.join("stderr.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || agent_log(dir, "late");
    let row = wait_for("bench synced", 60, &log, || {
        bench_row(&url, "late").filter(|b| b["health_status"] != Value::Null)
    });
    assert_eq!(row["health_status"], "failing", "{row}\n{}", log());
    let quick = suite(dir, "quick", 0);
    let (o, run) = submit(&url, "late", &quick, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let id = run["run_id"].as_str().unwrap().to_string();
    // Tested again meanwhile, still failing: the run waits.
    wait_for("a second self-test", 30, &log, || {
        log().contains("still failing its self-test").then_some(())
    });
    assert_eq!(
        server_get(&url, &format!("/v1/runs/{id}"))["status"],
        "queued"
    );

    // The device appears.
    let dut = hilt_sim::SimDut::start(hilt_sim::DutConfig {
        link: Some(link.clone()),
        ..hilt_sim::DutConfig::default()
    })
    .unwrap();
    dut.wait_ready(Duration::from_secs(5));
    let run = wait_for("the queued run ran", 60, &log, || {
        let v = server_get(&url, &format!("/v1/runs/{id}"));
        (v["status"] == "done" || v["status"] == "failed").then_some(v)
    });
    assert_eq!(run["status"], "done", "{run}\n{}", log());
    assert_eq!(bench_row(&url, "late").unwrap()["health_status"], "healthy");
    assert!(log().contains("back in service"), "{}", log());
}
