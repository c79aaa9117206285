//! Two server replicas on one PostgreSQL database, in-process, over real HTTP: agents'
//! polls and users' submissions go to either. Each run is assigned exactly once under
//! concurrent claims through both replicas; a long-poll waiting on replica A is woken by a
//! run submitted on replica B (a `NOTIFY`), far sooner than the re-check safety net, also
//! after A's notification connection was killed (it reconnects); both replicas' sweepers
//! expire a silent agent's leases, and each run ends once. Needs PostgreSQL (skipped,
//! saying so, without it unless HILT_REQUIRE_PEERS=1).

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{BOOT, Db, Server};
use serde_json::{Value, json};

fn bench(id: &str, tags: &[&str]) -> Value {
    json!({"bench_id": id, "name": id, "status": "idle", "tags": tags,
        "health_status": "healthy", "capabilities": {"transports": ["uart"]}})
}

fn complete(s: &Server, agent: &str, m: &str, run: &str) -> u16 {
    s.agent(
        agent,
        m,
        "POST",
        &format!("/v1/agents/runs/{run}/complete"),
        Some(json!({"status": "done", "exit_code": 0})),
    )
    .status
}

/// Two replicas on a fresh database (and its URL); `None` when PostgreSQL is skipped.
fn replicas(tune: impl Fn(&mut hilt_server::ServerSettings)) -> Option<(Server, Server, String)> {
    let db = Db::postgres()?;
    let a = Server::start(&db, &tune);
    let b = Server::start(&db, &tune);
    let Db::Postgres(url) = db else { return None };
    Some((a, b, url))
}

#[test]
fn concurrent_claims_through_both_replicas_assign_each_run_once() {
    let Some((a, b, _)) = replicas(|c| c.long_poll = Duration::from_millis(500)) else {
        return;
    };
    let servers = [&a, &b];
    let agents: Vec<String> = (0..4)
        .map(|_| a.token(BOOT, "default", "agent").1)
        .collect();
    for (i, t) in agents.iter().enumerate() {
        // Each agent syncs through one replica, two benches each.
        servers[i % 2].sync_all(
            t,
            &format!("m{i}"),
            json!([
                bench(&format!("r{i}a"), &["t"]),
                bench(&format!("r{i}b"), &["t"])
            ]),
        );
    }
    const RUNS: usize = 300;
    // Submitted through both replicas, from two threads at once.
    let submitted: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for s in servers {
            let submitted = &submitted;
            sc.spawn(move || {
                for i in 0..RUNS / 2 {
                    let v = s.submit_json(BOOT, json!({"tags": ["t"], "priority": i % 3}));
                    submitted
                        .lock()
                        .unwrap()
                        .push(v["run_id"].as_str().unwrap().to_string());
                }
            });
        }
    });
    let submitted = submitted.into_inner().unwrap();
    let taken: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let holding: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    let deadline = Instant::now() + Duration::from_secs(180);
    std::thread::scope(|sc| {
        // Every agent polls through both replicas at once.
        for (i, t) in agents.iter().enumerate() {
            for s in servers {
                let (taken, holding) = (&taken, &holding);
                let m = format!("m{i}");
                sc.spawn(move || {
                    while Instant::now() < deadline && taken.lock().unwrap().len() < RUNS {
                        let r = s.agent(t, &m, "GET", "/v1/agents/assignments/next", None);
                        assert_eq!(r.status, 200, "{}", r.text);
                        let v = r.json();
                        let Some(run) = v["assignment"]["run_id"].as_str() else {
                            continue;
                        };
                        assert_eq!(v["assignment"]["lease"]["fencing_token"], 1, "{v}");
                        let bench = v["assignment"]["bench_id"].as_str().unwrap().to_string();
                        *taken.lock().unwrap().entry(run.to_string()).or_default() += 1;
                        let before = holding.lock().unwrap().insert(bench.clone(), run.into());
                        assert_eq!(before, None, "bench {bench} got two runs at once");
                        std::thread::sleep(Duration::from_millis(2));
                        holding.lock().unwrap().remove(&bench);
                        // Completed through either replica.
                        let through = servers[usize::from(run.as_bytes()[run.len() - 1] % 2)];
                        assert_eq!(complete(through, t, &m, run), 200);
                    }
                });
            }
        }
    });
    let taken = taken.into_inner().unwrap();
    assert_eq!(taken.len(), RUNS, "not every run was assigned in time");
    for id in &submitted {
        assert_eq!(
            taken.get(id),
            Some(&1),
            "run {id} assigned {:?} times",
            taken.get(id)
        );
    }
    for s in servers {
        let v = s.user(BOOT, "GET", "/v1/runs?limit=1000", None).json();
        let done = v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "done")
            .count();
        assert_eq!(done, RUNS);
    }
}

/// Submits on `b` while the agent long-polls on `a`; returns how long the assignment took.
fn cross_wake(a: &Server, b: &Server, agent: &str) -> Duration {
    std::thread::scope(|sc| {
        let poll = sc.spawn(|| a.next(agent, "m"));
        // The poll is waiting (its first claim found nothing).
        std::thread::sleep(Duration::from_millis(600));
        let submitted = Instant::now();
        let v = b.submit_json(BOOT, json!({"tags": ["x"]}));
        let got = poll.join().unwrap();
        let took = submitted.elapsed();
        let id = v["run_id"].as_str().unwrap();
        assert_eq!(
            got.as_deref(),
            Some(id),
            "the poll on A did not get the run"
        );
        assert_eq!(complete(a, agent, "m", id), 200);
        took
    })
}

#[test]
fn a_long_poll_on_one_replica_is_woken_by_a_run_submitted_on_the_other() {
    // The re-check safety net is 30 s and a poll lasts 20 s: only a notification can
    // answer within the bound.
    let Some((a, b, url)) = replicas(|c| {
        c.long_poll = Duration::from_secs(20);
        c.recheck = Duration::from_secs(30);
    }) else {
        return;
    };
    let (_, agent) = a.token(BOOT, "default", "agent");
    a.sync_all(&agent, "m", json!([bench("rig", &["x"])]));
    for _ in 0..3 {
        let took = cross_wake(&a, &b, &agent);
        eprintln!("submitted on B, assigned on A after {took:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
    }

    // A's notification connection is killed: it reconnects and still hears B.
    let killed = kill_listeners(&url);
    assert!(killed >= 1, "no LISTEN connection found to kill");
    // Reconnect back-off starts at 200 ms.
    std::thread::sleep(Duration::from_millis(1500));
    let took = cross_wake(&a, &b, &agent);
    eprintln!("after the listener was killed: assigned on A after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

/// Terminates every backend that ran `LISTEN` on the database (both replicas' listeners);
/// returns how many.
fn kill_listeners(url: &str) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let rows: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND query LIKE 'LISTEN%'",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        rows.iter().filter(|r| r.0).count()
    })
}

#[test]
fn both_replicas_sweep_lost_leases_and_each_run_ends_once() {
    let Some((a, b, _)) = replicas(|c| {
        c.long_poll = Duration::from_millis(300);
        c.lease = Duration::from_secs(1);
    }) else {
        return;
    };
    let (_, agent) = a.token(BOOT, "default", "agent");
    let benches: Vec<Value> = (0..6).map(|i| bench(&format!("s{i}"), &["s"])).collect();
    a.sync_all(&agent, "m", json!(benches));
    let mut held = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { &a } else { &b };
        let v = s.submit_json(BOOT, json!({"tags": ["s"]}));
        let id = v["run_id"].as_str().unwrap().to_string();
        assert_eq!(s.next(&agent, "m").as_deref(), Some(id.as_str()));
        held.push(id);
    }
    // The agent falls silent: both replicas' sweepers (every 2 s) find the leases expired.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        let runs: Vec<Value> = held.iter().map(|id| b.run(BOOT, id)).collect();
        if runs.iter().all(|r| r["status"] == "failed") {
            break runs;
        }
        assert!(Instant::now() < deadline, "leases not expired: {runs:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for r in &ended {
        assert_eq!(r["exit_code"], -1, "{r}");
        assert_eq!(r["failure"]["category"], "AGENT_LOST", "{r}");
    }
    // Later sweeps of either replica leave an ended run as it is.
    std::thread::sleep(Duration::from_secs(5));
    for (id, before) in held.iter().zip(&ended) {
        for s in [&a, &b] {
            let now = s.run(BOOT, id);
            assert_eq!(
                now["finished_at"], before["finished_at"],
                "run {id} ended twice"
            );
            assert_eq!(now["error"], before["error"]);
        }
    }
}
