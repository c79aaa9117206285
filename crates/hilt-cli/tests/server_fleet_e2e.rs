//! A fleet end to end through the real binaries only: `hilt server`, `hilt agent cloud`
//! processes with their benches, and the user's `hilt runs submit|show|cancel` and `hilt
//! benches list` (issue 12's first "Done when").
//! - Two agents with simulated benches, both tagged `sim`: `sim-ok` passes its start-up
//!   self-test, `sim-bad` fails it (its UART port does not exist). Runs submitted at once
//!   with `--tags sim --wait` all run on `sim-ok` and pass; a run pinned to `sim-bad` stays
//!   queued with the reason naming it; `hilt benches list` (text and JSON) shows both
//!   healths. On SQLite and on PostgreSQL (a throwaway cluster; skipped with a message
//!   without PostgreSQL unless HILT_REQUIRE_PEERS=1).
//! - The QEMU board as a second, slower device (issue 15, item 5): a third agent serves it
//!   tagged `qemu`; a `--tags qemu` run flashes and boots hilt's firmware on it while `sim`
//!   runs keep going to the simulated bench. No emulator outlives the test.
//!
//! Every process is stopped with SIGTERM at the end and must exit cleanly (server 0,
//! agents 143).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

mod common;
#[path = "../../hilt-server/tests/common/postgres.rs"]
mod postgres;
#[path = "common/qemu.rs"]
mod qemu;

use serde_json::Value;

use common::server::{Proc, agent_token, client, json_out, text};

/// `hilt server` on a free loopback port (`db`: PostgreSQL, else SQLite in `data`).
fn start_server(data: &Path, db: Option<&str>) -> (Proc, String) {
    common::server::start_server(data, db, &["--bind", "127.0.0.1:0", "--long-poll-s", "5"])
}

/// `hilt agent cloud` serving `bench` as `id` tagged `tag`, with a token of its own.
fn start_agent(dir: &Path, url: &str, bench: &Path, id: &str, tag: &str, locks: &Path) -> Proc {
    let token = agent_token(url);
    common::server::start_agent(dir, url, &token, bench, id, tag, locks)
}

/// Every agent's log under `dir`, for failure messages.
fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_prefix("agent-") {
            for f in ["stdout.log", "stderr.log"] {
                let t = std::fs::read_to_string(e.path().join(f)).unwrap_or_default();
                out.push_str(&format!("--- agent {id} {f}:\n{t}\n"));
            }
        }
    }
    out
}

/// Waits (bounded) until `f` gives a value.
fn wait_for<T>(what: &str, secs: u64, dir: &Path, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: timed out\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bench's row of `hilt benches list --json`, once its health is known.
fn synced(url: &str, id: &str) -> Option<Value> {
    let o = client(url, &["benches", "list", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    json_out(&o)["benches"]
        .as_array()?
        .iter()
        .find(|b| b["bench_id"] == id && b["health_status"] != Value::Null)
        .cloned()
}

fn write_suite(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, yaml).unwrap();
    p
}

/// ping → pong, a short pause (so runs overlap), ping → pong.
const SIM_SUITE: &str = "version: 1\nsuite: {name: sim ping}\ntests:\n  - name: ping\n    steps:\n      \
    - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      \
    - expect_uart: {node: dut, transport: console, contains: pong, within_ms: 2000}\n      \
    - sleep_ms: 300\n      \
    - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      \
    - expect_uart: {node: dut, transport: console, contains: pong, within_ms: 2000}\n";

/// `hilt runs submit --tags TAG --suite S --wait --json EXTRA…`: the finished run.
fn submit_by_tag(url: &str, tag: &str, suite: &Path, extra: &[&str]) -> (Output, Value) {
    let mut args = vec![
        "runs",
        "submit",
        "--tags",
        tag,
        "--suite",
        suite.to_str().unwrap(),
        "--wait",
        "--json",
        "--timeout-s",
        "90",
    ];
    args.extend_from_slice(extra);
    let o = client(url, &args);
    let run = json_out(&o);
    (o, run)
}

/// A healthy and a failing simulated bench, both tagged `sim`.
struct SimPair {
    _sim: common::Bench,
    ok: Proc,
    bad: Proc,
}

fn start_sim_pair(dir: &Path, url: &str) -> SimPair {
    let sim = common::Bench::start();
    let locks = sim.path("locks");
    let ok = start_agent(dir, url, &sim.bench, "sim-ok", "sim", &locks);
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        "version: 1\nbench: {name: broken bench}\nnodes:\n  dut:\n    kind: simulator\n    \
         transports:\n      console: {backend: uart, port: /nonexistent/hilt-fleet-tty, baud: 115200}\n",
    )
    .unwrap();
    let bad = start_agent(dir, url, &broken, "sim-bad", "sim", &locks);
    SimPair { _sim: sim, ok, bad }
}

#[test]
fn runs_by_tags_go_to_the_healthy_bench_sqlite() {
    healthy_bench_takes_the_runs(None);
}

#[test]
fn runs_by_tags_go_to_the_healthy_bench_postgres() {
    if let Some(db) = postgres::fresh_database() {
        healthy_bench_takes_the_runs(Some(&db));
    }
}

fn healthy_bench_takes_the_runs(db: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t0 = Instant::now();
    let (mut server, url) = start_server(&dir.join("data"), db);
    let mut pair = start_sim_pair(dir, &url);
    let ok = wait_for("sim-ok synced", 60, dir, || synced(&url, "sim-ok"));
    let bad = wait_for("sim-bad synced", 60, dir, || synced(&url, "sim-bad"));
    assert_eq!(ok["health_status"], "healthy", "{ok}\n{}", logs(dir));
    assert_eq!(bad["health_status"], "failing", "{bad}\n{}", logs(dir));
    for b in [&ok, &bad] {
        assert_eq!(b["tags"], serde_json::json!(["sim"]), "{b}");
        assert_eq!(b["agent_online"], true, "{b}");
    }

    // The fleet as a user sees it: both benches, each with its health.
    let o = client(&url, &["benches", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = |id: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no line for {id}:\n{out}"))
            .to_string()
    };
    for (id, health) in [("sim-ok", "healthy"), ("sim-bad", "failing")] {
        let cols: Vec<String> = line(id).split_whitespace().map(str::to_string).collect();
        assert_eq!(cols[1], health, "{out}");
        assert!(cols.contains(&"sim".to_string()), "{out}");
        assert!(line(id).ends_with("(online)"), "{out}");
    }

    // Three runs by tag at once: all on the healthy bench (one after the other there), all
    // passing. A scheduler that ignored health would hand the failing bench one of them
    // while sim-ok is busy.
    let suite = write_suite(dir, "sim", SIM_SUITE);
    let t = Instant::now();
    let runs: Vec<(Output, Value)> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..3)
            .map(|_| sc.spawn(|| submit_by_tag(&url, "sim", &suite, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("three sim runs by tag: {:?}", t.elapsed());
    for (o, run) in &runs {
        assert_eq!(o.status.code(), Some(0), "{}\n{}", text(o), logs(dir));
        assert_eq!(run["status"], "done", "{run}");
        assert_eq!(run["exit_code"], 0, "{run}");
        assert_eq!(run["bench_id"], "sim-ok", "{run}");
    }
    let mut ids: Vec<&str> = runs
        .iter()
        .map(|(_, r)| r["run_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct runs");

    // Pinned to the failing bench: queued, with the reason naming it.
    let o = client(
        &url,
        &[
            "runs",
            "submit",
            "--bench-id",
            "sim-bad",
            "--suite",
            suite.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let pinned = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let reason = "waiting: bench sim-bad is failing";
    let shown = wait_for("the queue reason", 20, dir, || {
        let o = client(&url, &["runs", "show", &pinned, "--json"]);
        assert!(o.status.success(), "{}", text(&o));
        let v = json_out(&o);
        (v["queue"]["reason"] == reason).then_some(v)
    });
    assert_eq!(shown["status"], "queued", "{shown}");
    assert_eq!(shown["queue"]["position"], 1, "{shown}");
    // Two heartbeats later, still queued: nothing picked it up.
    std::thread::sleep(Duration::from_millis(1200));
    let o = client(&url, &["runs", "show", &pinned]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("queue: position 1: {reason}")),
        "{out}"
    );
    let o = client(&url, &["runs", "show", &pinned, "--json"]);
    assert_eq!(json_out(&o)["status"], "queued", "{}", text(&o));
    assert!(
        !dir.join("agent-sim-bad/cloud-runs").join(&pinned).exists(),
        "the failing bench's agent received the pinned run"
    );
    let o = client(&url, &["runs", "cancel", &pinned]);
    assert!(o.status.success(), "{}", text(&o));

    // Clean shutdown: agents on SIGTERM exit 143, the server 0.
    for (p, what) in [
        (&mut pair.ok, "agent sim-ok"),
        (&mut pair.bad, "agent sim-bad"),
    ] {
        let s = p.stop(what);
        assert_eq!(s.code(), Some(143), "{what}: {s}\n{}", logs(dir));
    }
    let s = server.stop("the server");
    assert_eq!(s.code(), Some(0), "server: {s}");
    eprintln!("fleet scenario: {:?} in all", t0.elapsed());
}

#[test]
fn the_qemu_board_serves_qemu_runs_while_sim_runs_go_to_the_sim_bench() {
    let Some((v1, _)) = qemu::firmware() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let t0 = Instant::now();
    let (mut server, url) = start_server(&dir.join("data"), None);
    let mut pair = start_sim_pair(dir, &url);
    let m = qemu::marker("fleet");
    let board = qemu::bench(dir, &m);
    let mut q = start_agent(dir, &url, &board, "qemu", "qemu", &dir.join("qemu-locks"));
    for (id, health) in [
        ("sim-ok", "healthy"),
        ("sim-bad", "failing"),
        ("qemu", "healthy"),
    ] {
        let row = wait_for("bench synced", 60, dir, || synced(&url, id));
        assert_eq!(row["health_status"], health, "{row}\n{}", logs(dir));
    }

    // A qemu run (flash, boot, ping, reset) alongside two sim runs.
    let sim_suite = write_suite(dir, "sim", SIM_SUITE);
    let qemu_suite = write_suite(dir, "qemu", qemu::SUITE);
    let t = Instant::now();
    let fw = ["--artifact", v1.to_str().unwrap()];
    let (qrun, sims) = std::thread::scope(|sc| {
        let qh = sc.spawn(|| submit_by_tag(&url, "qemu", &qemu_suite, &fw));
        let sh: Vec<_> = (0..2)
            .map(|_| sc.spawn(|| submit_by_tag(&url, "sim", &sim_suite, &[])))
            .collect();
        let sims: Vec<_> = sh.into_iter().map(|h| h.join().unwrap()).collect();
        (qh.join().unwrap(), sims)
    });
    eprintln!("one qemu and two sim runs at once: {:?}", t.elapsed());
    let (o, run) = &qrun;
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(o), logs(dir));
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(run["bench_id"], "qemu", "{run}");
    for (o, run) in &sims {
        assert_eq!(o.status.code(), Some(0), "{}\n{}", text(o), logs(dir));
        assert_eq!(run["bench_id"], "sim-ok", "{run}");
    }
    // The board really ran hilt's firmware: its results say so.
    let id = run["run_id"].as_str().unwrap();
    let results = dir
        .join("agent-qemu/cloud-runs")
        .join(id)
        .join("results/results.json");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(r["status"], "passed", "{r}");
    assert_eq!(r["summary"]["passed"], 3, "{r}");
    // The run's emulator ended with the run.
    qemu::assert_emulator_gone_soon(&m);

    for (p, what) in [
        (&mut pair.ok, "agent sim-ok"),
        (&mut pair.bad, "agent sim-bad"),
        (&mut q, "agent qemu"),
    ] {
        let s = p.stop(what);
        assert_eq!(s.code(), Some(143), "{what}: {s}\n{}", logs(dir));
    }
    assert_eq!(server.stop("the server").code(), Some(0));
    qemu::assert_emulator_gone_soon(&m);
    eprintln!("qemu fleet scenario: {:?} in all", t0.elapsed());
}
