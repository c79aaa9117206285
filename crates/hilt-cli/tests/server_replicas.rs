//! Two `hilt server` processes (replicas) on one throwaway PostgreSQL cluster, sharing the
//! artifact directory, with `hilt agent cloud` processes on simulated DUTs (real ptys):
//! - (a) runs submitted concurrently through both replicas, by tag, with agents polling
//!   each replica: every run is assigned exactly once (fencing token 1 in the database, one
//!   `run.started`, one run directory on one agent) and completes;
//! - (b) an agent long-polling replica A gets a run submitted on replica B within 1 s —
//!   the replicas' re-check safety net is 30 s, so only the cross-replica notification
//!   explains it;
//! - (d) a cancel requested on replica A stops a run whose agent talks to replica B;
//! - (c) an agent behind a load balancer (a TCP forwarder in the test: the first replica
//!   that accepts a connection gets it, as a load balancer's health check does) runs a
//!   long run; replica A is killed (SIGKILL) mid-run; the agent's calls go to B, the run
//!   completes with every event the runner logged, stored once.
//!
//! Needs PostgreSQL (skipped, saying so, without it unless HILT_REQUIRE_PEERS=1).

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;
#[path = "../../hilt-server/tests/common/postgres.rs"]
mod postgres;

use common::Bench;
use common::cloud::{agent_log, assert_nothing_lost, bench_row, count, events, suite, wait_for};
use common::server::{Proc, agent_token, client, server_get, start_agent, text};
use serde_json::Value;

/// A replica on the shared database and data (artifact) directory. The re-check safety net
/// is long (30 s) so that (b) measures the notification, not the net.
fn replica(data: &Path, db: &str) -> (Proc, String) {
    common::server::start_server(
        data,
        Some(db),
        &[
            "--bind",
            "127.0.0.1:0",
            "--long-poll-s",
            "20",
            "--recheck-s",
            "30",
            "--lease-s",
            "30",
        ],
    )
}

/// A TCP load balancer for the test: each connection goes to the first backend that
/// accepts it (a dead replica refuses, so traffic moves to the next), bytes copied both
/// ways until either side closes.
struct Balancer {
    url: String,
    /// Connections forwarded, per backend.
    forwarded: Arc<Vec<AtomicUsize>>,
}

impl Balancer {
    fn start(backends: Vec<SocketAddr>) -> Balancer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let forwarded: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = forwarded.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(down) = conn else { continue };
                let (backends, counts) = (backends.clone(), counts.clone());
                std::thread::spawn(move || {
                    for (i, b) in backends.iter().enumerate() {
                        if let Ok(up) = TcpStream::connect_timeout(b, Duration::from_secs(1)) {
                            counts[i].fetch_add(1, Ordering::SeqCst);
                            pipe(down, up);
                            return;
                        }
                    }
                    // No backend: the client sees the connection closed.
                });
            }
        });
        Balancer { url, forwarded }
    }

    fn forwarded(&self, backend: usize) -> usize {
        self.forwarded[backend].load(Ordering::SeqCst)
    }
}

fn pipe(down: TcpStream, up: TcpStream) {
    let (Ok(mut down2), Ok(mut up2)) = (down.try_clone(), up.try_clone()) else {
        return;
    };
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut down2, &mut up2);
        let _ = up2.shutdown(Shutdown::Write);
    });
    let (mut down, mut up) = (down, up);
    let _ = std::io::copy(&mut up, &mut down);
    let _ = down.flush();
    // The backend is gone or done: the client's side is closed too.
    let _ = down.shutdown(Shutdown::Both);
    let _ = t.join();
}

/// A run as the replicas left it in the database.
#[derive(sqlx::FromRow)]
struct RunDb {
    id: String,
    /// Raised by each assignment: 1 = assigned exactly once.
    fence: i64,
    agent_id: Option<String>,
    created_at: String,
    assigned_at: Option<String>,
}

fn runs_in_db(db: &str) -> HashMap<String, RunDb> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(db).await.unwrap();
        let rows: Vec<RunDb> =
            sqlx::query_as("SELECT id, fence, agent_id, created_at, assigned_at FROM runs")
                .fetch_all(&mut c)
                .await
                .unwrap();
        rows.into_iter().map(|r| (r.id.clone(), r)).collect()
    })
}

fn ms_between(from: &str, to: &str) -> i64 {
    let a: jiff::Timestamp = from.parse().unwrap();
    let b: jiff::Timestamp = to.parse().unwrap();
    b.duration_since(a).as_millis() as i64
}

/// `hilt runs submit … --json` without waiting: the run id.
fn submit(url: &str, target: &[&str], suite: &Path) -> String {
    let mut args = vec!["runs", "submit"];
    args.extend_from_slice(target);
    args.extend_from_slice(&["--suite", suite.to_str().unwrap(), "--json"]);
    let o = client(url, &args);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn run_view(url: &str, id: &str) -> Value {
    server_get(url, &format!("/v1/runs/{id}"))
}

fn ended(v: &Value) -> bool {
    matches!(v["status"].as_str(), Some("done" | "failed"))
}

#[test]
fn two_replicas_on_one_postgres_share_agents_and_runs_and_survive_a_kill() {
    let Some(db) = postgres::fresh_database() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Both replicas keep artifacts in one place (a shared directory here; S3 in a real
    // deployment): an agent may upload through either.
    let data = dir.join("data");
    let (mut rep_a, url_a) = replica(&data, &db);
    let (_rep_b, url_b) = replica(&data, &db);
    let addr = |u: &str| -> SocketAddr { u.trim_start_matches("http://").parse().unwrap() };

    // Two agents poll replica A, two replica B; each has its own simulated DUT.
    let ids = ["a1", "a2", "b1", "b2"];
    let sims: Vec<Bench> = ids.iter().map(|_| Bench::start()).collect();
    let mut agents = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let url = if id.starts_with('a') { &url_a } else { &url_b };
        let token = agent_token(&url_a);
        let sim = &sims[i];
        agents.push(start_agent(
            dir,
            url,
            &token,
            &sim.bench,
            id,
            "sim",
            &sim.path("locks"),
        ));
    }
    let all_logs = || {
        ids.iter()
            .map(|id| agent_log(dir, id))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for id in ids {
        // What an agent synced through one replica, the other lists.
        let row = wait_for("bench synced", 90, &all_logs, || {
            bench_row(&url_b, id).filter(|b| b["health_status"] != Value::Null)
        });
        assert_eq!(row["health_status"], "healthy", "{row}\n{}", all_logs());
        assert!(bench_row(&url_a, id).is_some());
    }

    // (a) Runs submitted concurrently through both replicas, by tag.
    const RUNS: usize = 16;
    let quick = suite(dir, "quick", 0);
    let mut submitted: Vec<String> = std::thread::scope(|sc| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let url = if t % 2 == 0 { &url_a } else { &url_b };
                let quick = &quick;
                sc.spawn(move || {
                    (0..RUNS / 4)
                        .map(|_| submit(url, &["--tags", "sim"], quick))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    submitted.sort();
    submitted.dedup();
    assert_eq!(submitted.len(), RUNS);
    let t = Instant::now();
    for id in &submitted {
        let v = wait_for("every run ended", 240, &all_logs, || {
            Some(run_view(&url_a, id)).filter(ended)
        });
        assert_eq!(v["status"], "done", "{v}\n{}", all_logs());
    }
    eprintln!(
        "(a) {RUNS} runs through two replicas and four agents: {:?}",
        t.elapsed()
    );
    let in_db = runs_in_db(&db);
    let mut per_agent: HashMap<String, usize> = HashMap::new();
    for id in &submitted {
        let r = &in_db[id];
        assert_eq!(r.fence, 1, "run {id} was assigned {} times", r.fence);
        let ev = events(&url_b, id);
        assert_eq!(count(&ev, "run.started"), 1, "run {id}");
        assert_eq!(count(&ev, "run.finished"), 1, "run {id}");
        let ran_on: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|a| dir.join(format!("agent-{a}/cloud-runs/{id}")).is_dir())
            .collect();
        assert_eq!(ran_on.len(), 1, "run {id} executed on {ran_on:?}");
        *per_agent.entry(ran_on[0].to_string()).or_default() += 1;
        assert!(r.agent_id.is_some());
    }
    eprintln!("(a) runs per agent: {per_agent:?}");
    let on = |p: char| {
        per_agent
            .iter()
            .filter(|(a, _)| a.starts_with(p))
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    assert!(
        on('a') > 0 && on('b') > 0,
        "agents of one replica only: {per_agent:?}"
    );

    // (b) Agent a1 long-polls replica A; a run pinned to its bench is submitted on B.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        let id = submit(&url_b, &["--bench-id", "a1"], &quick);
        let v = wait_for("the pinned run ended", 60, &all_logs, || {
            Some(run_view(&url_b, &id)).filter(ended)
        });
        assert_eq!(v["status"], "done", "{v}");
        let r = &runs_in_db(&db)[&id];
        let waited = ms_between(&r.created_at, r.assigned_at.as_deref().unwrap());
        eprintln!("(b) submitted on B, assigned to the agent polling A after {waited} ms");
        assert!(
            waited < 1000,
            "{waited} ms: the wake-up did not cross replicas"
        );
    }

    // (d) A cancel requested on A reaches an agent that talks to B.
    let long = suite(dir, "long", 40);
    let id = submit(&url_a, &["--bench-id", "b1"], &long);
    wait_for("the run to cancel started", 60, &all_logs, || {
        (run_view(&url_b, &id)["status"] == "running").then_some(())
    });
    let t = Instant::now();
    let o = client(&url_a, &["runs", "cancel", &id]);
    assert!(o.status.success(), "{}", text(&o));
    let v = wait_for("the cancelled run ended", 30, &all_logs, || {
        Some(run_view(&url_b, &id)).filter(ended)
    });
    eprintln!(
        "(d) cancel on A → run on B's agent ended in {:?}",
        t.elapsed()
    );
    assert_eq!(v["cancelled"], true, "{v}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // (c) An agent behind the load balancer; replica A is killed mid-run.
    let lb = Balancer::start(vec![addr(&url_a), addr(&url_b)]);
    let sim = Bench::start();
    let token = agent_token(&url_a);
    let _lb_agent = start_agent(
        dir,
        &lb.url,
        &token,
        &sim.bench,
        "lb",
        "lb",
        &sim.path("locks"),
    );
    let log = || agent_log(dir, "lb");
    wait_for("bench lb synced", 90, &log, || {
        bench_row(&url_b, "lb").filter(|b| b["health_status"] == "healthy")
    });
    let long = suite(dir, "long", 12);
    let id = submit(&url_b, &["--bench-id", "lb"], &long);
    wait_for("the long run started", 60, &log, || {
        let v = server_get(&url_b, &format!("/v1/runs/{id}/events"));
        (v["events"].as_array().map_or(0, Vec::len) >= 5).then_some(())
    });
    let before_b = lb.forwarded(1);
    assert!(
        lb.forwarded(0) > 0,
        "the agent never went through replica A"
    );
    rep_a.kill9();
    let t = Instant::now();
    let v = wait_for("the long run completed", 120, &log, || {
        Some(run_view(&url_b, &id)).filter(ended)
    });
    eprintln!(
        "(c) replica A killed mid-run: the run ended {:?} later",
        t.elapsed()
    );
    assert_eq!(v["status"], "done", "{v}\n{}", log());
    assert_eq!(v["exit_code"], 0, "{v}");
    assert!(
        lb.forwarded(1) > before_b,
        "the agent's calls never reached B"
    );
    let ev = events(&url_b, &id);
    assert_eq!(count(&ev, "run.started"), 1);
    assert_eq!(count(&ev, "run.finished"), 1);
    assert_eq!(ev.last().unwrap()["event_type"], "run.finished");
    let runner_log = dir
        .join("agent-lb/cloud-runs")
        .join(&id)
        .join("results/events.jsonl");
    assert_nothing_lost(&ev, &runner_log);
    assert_eq!(runs_in_db(&db)[&id].fence, 1);
    eprintln!(
        "(c) {} events, all stored once across the replica's death",
        ev.len()
    );
    drop(agents);
}
