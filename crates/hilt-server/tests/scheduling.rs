//! The scheduler over real HTTP, as agents and users call it: runs by tags go only to
//! benches that are online, idle, carrying the tags and healthy (or degraded on parts the
//! suite does not use); pinned runs to a failing bench wait with their reason; impossible
//! runs fail at once as Configuration; priority then FIFO; cancel of queued and running
//! runs; health history; lost agents forgotten; two agents racing for 200 runs each get
//! every run exactly once. Every scenario runs on SQLite and PostgreSQL.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{BOOT, Db, Server};
use serde_json::{Value, json};

/// A bench summary as an agent syncs it.
fn bench(id: &str, tags: &[&str], health: Value) -> Value {
    let mut b = json!({"bench_id": id, "name": id, "status": "idle", "tags": tags,
        "capabilities": {"transports": ["uart"], "has_power": true, "power_backends": ["mock_power"]}});
    match health {
        Value::String(s) => b["health_status"] = json!(s),
        Value::Null => {}
        h => {
            b["health_status"] = h["status"].clone();
            b["health"] = h;
        }
    }
    b
}

/// A suite that switches `resource`.
fn power_suite(resource: &str) -> String {
    format!(
        "version: 1\nsuite: {{name: p}}\ntests:\n  - name: t\n    steps:\n      \
         - power_set: {{resource: {resource}, outlet: dut, state: true}}\n"
    )
}

fn complete(s: &Server, agent: &str, m: &str, run: &str, status: &str, code: i32) -> u16 {
    s.agent(
        agent,
        m,
        "POST",
        &format!("/v1/agents/runs/{run}/complete"),
        Some(json!({"status": status, "exit_code": code})),
    )
    .status
}

fn tags_route_only_to_the_healthy_bench(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, good) = s.token(BOOT, "default", "agent");
    let (_, bad) = s.token(BOOT, "default", "agent");
    s.sync_all(
        &good,
        "m-good",
        json!([bench("good", &["stm32"], json!("healthy"))]),
    );
    s.sync_all(
        &bad,
        "m-bad",
        json!([bench("bad", &["stm32", "can"], json!("failing"))]),
    );

    let r1 = s.submit_json(BOOT, json!({"tags": ["stm32"]}));
    assert_eq!(r1["status"], "queued");
    assert_eq!(r1["bench_id"], Value::Null);
    let r1 = r1["run_id"].as_str().unwrap().to_string();
    assert_eq!(s.next(&bad, "m-bad"), None, "a failing bench got a run");
    assert_eq!(s.next(&good, "m-good").as_deref(), Some(r1.as_str()));
    assert_eq!(s.run(BOOT, &r1)["bench_id"], "good");

    // The healthy bench is busy: the next tag run waits for it, saying so.
    let r2 = s.submit_json(BOOT, json!({"tags": ["stm32"]}));
    let r2 = r2["run_id"].as_str().unwrap().to_string();
    assert_eq!(s.next(&bad, "m-bad"), None);
    let q = s.run(BOOT, &r2)["queue"].clone();
    assert_eq!(
        q["reason"],
        format!("waiting: bench good is busy with run {r1}"),
        "{q}"
    );
    assert_eq!(q["position"], 1);
    assert!(q["estimated_start_at"].is_string(), "{q}");

    // Only the failing bench carries `can`: waits, never assigned to it.
    let r3 = s.submit_json(BOOT, json!({"tags": ["stm32", "can"]}));
    let r3 = r3["run_id"].as_str().unwrap().to_string();
    let q = s.run(BOOT, &r3)["queue"].clone();
    let reason = q["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("waiting: no online bench with tags can,stm32")
            && reason.contains("bench bad is failing"),
        "{q}"
    );
    assert_eq!(q["estimated_start_at"], Value::Null);

    // Pinned to the failing bench: an explicit bench id does not bypass its health.
    let pinned = s.submit(BOOT, "bad");
    assert_eq!(s.next(&bad, "m-bad"), None);
    let v = s.run(BOOT, &pinned);
    assert_eq!(v["status"], "queued");
    assert_eq!(v["queue"]["reason"], "waiting: bench bad is failing");

    // Both healths are visible.
    let v = s.user(BOOT, "GET", "/v1/benches", None).json();
    let healths: Vec<(&str, &str)> = v["benches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["bench_id"].as_str().unwrap(),
                b["health_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(healths, [("bad", "failing"), ("good", "healthy")]);

    // Unknown, missing and malformed health are never scheduled either.
    for (id, health) in [
        ("u", json!("unknown")),
        ("none", Value::Null),
        ("odd", json!({"status": "fine"})),
        ("mixed", json!("healthy")),
    ] {
        let mut b = bench(id, &["x"], health);
        if id == "mixed" {
            b["health"] = json!({"status": "failing"});
        }
        s.sync_all(&bad, "m-bad", json!([b]));
        let run = s.submit(BOOT, id);
        assert_eq!(s.next(&bad, "m-bad"), None, "bench {id} got a run");
        let v = s.run(BOOT, &run);
        assert_eq!(v["status"], "queued", "{v}");
    }
    let v = s.user(BOOT, "GET", "/v1/benches/odd", None).json();
    assert_eq!(v["health_status"], "malformed");
}

fn degraded_bench_matches_only_suites_that_avoid_its_warning(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, agent) = s.token(BOOT, "default", "agent");
    let health = json!({"schema_version": "benchci.diagnostics.v1", "status": "degraded",
        "summary": "Bench is usable but has 1 warning(s)",
        "failing_checks": [],
        "warning_checks": [{"id": "resource.psu.power.5.read", "status": "warn",
            "category": "POWER_READBACK_UNAVAILABLE", "message": "no readback"}]});
    s.sync_all(&agent, "m", json!([bench("rig", &["lab"], health)]));

    // Submitted first, but uses the warned resource: skipped for the later run.
    let uses_psu = s.submit_json(
        BOOT,
        json!({"tags": ["lab"], "suite_yaml": power_suite("psu")}),
    );
    let uses_psu = uses_psu["run_id"].as_str().unwrap().to_string();
    let avoids = s.submit_json(
        BOOT,
        json!({"tags": ["lab"], "suite_yaml": power_suite("relay")}),
    );
    let avoids = avoids["run_id"].as_str().unwrap().to_string();
    assert_eq!(s.next(&agent, "m").as_deref(), Some(avoids.as_str()));
    assert_eq!(complete(&s, &agent, "m", &avoids, "done", 0), 200);
    assert_eq!(
        s.next(&agent, "m"),
        None,
        "a run using the warned resource was assigned"
    );
    let v = s.run(BOOT, &uses_psu);
    let reason = v["queue"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("bench rig is degraded on resource:psu"),
        "{reason}"
    );
    // Pinned, the same.
    let pinned = s.submit_json(
        BOOT,
        json!({"bench_id": "rig", "suite_yaml": power_suite("psu")}),
    );
    let pinned = pinned["run_id"].as_str().unwrap().to_string();
    assert_eq!(s.next(&agent, "m"), None);
    let v = s.run(BOOT, &pinned);
    assert!(
        v["queue"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("waiting: bench rig is degraded on resource:psu"),
        "{v}"
    );
    // The warning shows on the bench, with what it concerns.
    let b = s.user(BOOT, "GET", "/v1/benches/rig", None).json();
    assert_eq!(b["warnings"][0]["concerns"], "resource:psu", "{b}");

    // The warning goes away: the waiting runs are taken, oldest first.
    s.sync_all(
        &agent,
        "m",
        json!([bench("rig", &["lab"], json!("healthy"))]),
    );
    assert_eq!(s.next(&agent, "m").as_deref(), Some(uses_psu.as_str()));

    // An invalid suite is refused with its location.
    let r = s.user(
        BOOT,
        "POST",
        "/v1/runs",
        Some(json!({"tags": ["lab"], "suite_yaml": "version: 1\nsuite: {name: s}\ntests:\n  - name: t\n    steps:\n      - power_set: {outlet: 1}\n"})),
    );
    let text = r.error(422);
    assert!(text.contains("suite.yaml:6:"), "{text}");
}

fn impossible_runs_fail_at_once_as_configuration(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, agent) = s.token(BOOT, "default", "agent");
    s.sync_all(
        &agent,
        "m",
        json!([bench("rig", &["stm32"], json!("healthy"))]),
    );
    for (body, words) in [
        (
            json!({"tags": ["esp32"]}),
            "no bench in this workspace has tags esp32",
        ),
        (
            json!({"tags": ["stm32"], "capabilities": ["transport:can"]}),
            "no bench in this workspace has tags stm32 and capabilities transport:can",
        ),
        (json!({"bench_id": "ghost"}), "bench not found: ghost"),
    ] {
        let v = s.submit_json(BOOT, body);
        assert_eq!(v["status"], "failed", "{v}");
        assert_eq!(v["exit_code"], 3, "{v}");
        assert_eq!(v["failure"]["category"], "CONFIG_ERROR", "{v}");
        assert_eq!(v["failure"]["source"], "configuration", "{v}");
        assert!(v["error"].as_str().unwrap().contains(words), "{v}");
    }
    // Capabilities the bench has: a match.
    let v = s.submit_json(BOOT, json!({"capabilities": ["transport:uart", "power"]}));
    assert_eq!(v["status"], "queued", "{v}");
    assert_eq!(s.next(&agent, "m").as_deref(), v["run_id"].as_str());
}

fn priority_first_then_fifo(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, agent) = s.token(BOOT, "default", "agent");
    s.sync_all(&agent, "m", json!([bench("rig", &["t"], json!("healthy"))]));
    let mut ids = Vec::new();
    for p in [0, 0, 5, 5, -1] {
        let v = s.submit_json(BOOT, json!({"tags": ["t"], "priority": p}));
        ids.push(v["run_id"].as_str().unwrap().to_string());
    }
    let expected = [&ids[2], &ids[3], &ids[0], &ids[1], &ids[4]];
    for (pos, id) in expected.iter().enumerate() {
        let q = s.run(BOOT, id)["queue"].clone();
        assert_eq!(q["position"], pos as u64 + 1, "{id}: {q}");
    }
    for id in expected {
        let got = s.next(&agent, "m");
        assert_eq!(got.as_deref(), Some(id.as_str()));
        assert_eq!(complete(&s, &agent, "m", id, "done", 0), 200);
    }
    assert_eq!(s.next(&agent, "m"), None);
}

fn a_bench_reporting_busy_waits_until_its_run_ended(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, agent) = s.token(BOOT, "default", "agent");
    let busy = |run: &str| {
        let mut b = bench("rig", &["t"], json!("healthy"));
        b["status"] = json!("busy");
        b["current_run_id"] = json!(run);
        b
    };
    // Busy with a run this server does not know (a local run on the agent): it waits.
    s.sync_all(&agent, "m", json!([busy("local-7")]));
    let run = s.submit(BOOT, "rig");
    assert_eq!(s.next(&agent, "m"), None);
    assert_eq!(
        s.run(BOOT, &run)["queue"]["reason"],
        "waiting: bench rig is busy with run local-7"
    );
    // Still "busy" with a server run that has ended (the agent has not synced since): free.
    s.sync_all(&agent, "m", json!([bench("rig", &["t"], json!("healthy"))]));
    assert_eq!(s.next(&agent, "m").as_deref(), Some(run.as_str()));
    assert_eq!(complete(&s, &agent, "m", &run, "done", 0), 200);
    s.sync_all(&agent, "m", json!([busy(&run)]));
    let next = s.submit(BOOT, "rig");
    assert_eq!(
        s.run(BOOT, &next)["queue"]["reason"],
        "waiting: for the agent of bench rig to take it"
    );
    assert_eq!(s.next(&agent, "m").as_deref(), Some(next.as_str()));
}

fn estimated_start_follows_recent_durations(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, agent) = s.token(BOOT, "default", "agent");
    s.sync_all(&agent, "m", json!([bench("rig", &["t"], json!("healthy"))]));
    // Two finished runs of 20 s and 40 s: the bench's mean is 30 s.
    for secs in [20, 40] {
        let run = s.submit(BOOT, "rig");
        assert_eq!(s.next(&agent, "m").as_deref(), Some(run.as_str()));
        let body = json!({"status": "done", "exit_code": 0,
            "started_at": "2026-01-01T00:00:00Z",
            "finished_at": format!("2026-01-01T00:00:{secs:02}Z")});
        let r = s.agent(
            &agent,
            "m",
            "POST",
            &format!("/v1/agents/runs/{run}/complete"),
            Some(body),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let running = s.submit(BOOT, "rig");
    assert_eq!(s.next(&agent, "m").as_deref(), Some(running.as_str()));
    let at = |v: &Value| -> i64 {
        let t: jiff::Timestamp = v["queue"]["estimated_start_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        t.as_millisecond()
    };
    let now = jiff::Timestamp::now().as_millisecond();
    let first = s.run(BOOT, &s.submit(BOOT, "rig"));
    let second = s.run(BOOT, &s.submit(BOOT, "rig"));
    assert_eq!(
        (&first["queue"]["position"], &second["queue"]["position"]),
        (&json!(1), &json!(2))
    );
    // The running run ends in about 30 s; the first waiting one runs 30 s after that.
    let (a, b) = (at(&first) - now, at(&second) - now);
    assert!((29_000..=33_000).contains(&a), "{a} ms: {first}");
    assert!((59_000..=63_000).contains(&b), "{b} ms: {second}");
    let basis = first["queue"]["estimate_basis"].as_str().unwrap();
    assert!(basis.contains("rig 30.0 s"), "{basis}");
}

fn cancel_of_queued_and_running_runs(db: Db) {
    let s = Server::start(&db, |c| c.cancel_grace = Duration::from_secs(1));
    let (_, agent) = s.token(BOOT, "default", "agent");
    s.sync_all(&agent, "m", json!([bench("rig", &["t"], json!("healthy"))]));
    let cancel = |run: &str| {
        s.user(
            BOOT,
            "POST",
            &format!("/v1/runs/{run}/cancel"),
            Some(json!({})),
        )
    };

    // Queued: cancelled at once, never assigned.
    let queued = s.submit(BOOT, "rig");
    let r = cancel(&queued);
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(
        (v["status"].as_str(), v["cancelled"].as_bool()),
        (Some("failed"), Some(true))
    );
    assert_eq!(v["failure"]["category"], "CANCELLED");
    assert_eq!(s.next(&agent, "m"), None);
    assert!(cancel(&queued).error(409).contains("already ended"));

    // Running: the agent sees it in its heartbeat and on its event calls; its completion
    // is recorded as cancelled.
    let running = s.submit(BOOT, "rig");
    assert_eq!(s.next(&agent, "m").as_deref(), Some(running.as_str()));
    let event = |run: &str| {
        s.agent(
            &agent,
            "m",
            "POST",
            &format!("/v1/agents/runs/{run}/events"),
            Some(json!({"events": [{"timestamp": "t", "event_type": "test.started", "data": {}}]})),
        )
    };
    assert_eq!(event(&running).status, 200);
    let hb = |s: &Server| {
        s.agent(&agent, "m", "POST", "/v1/agents/heartbeat", Some(json!({})))
            .json()
    };
    assert_eq!(hb(&s)["cancel_run_ids"], json!([]));
    let r = cancel(&running);
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json()["cancel_requested"], true);
    assert_eq!(hb(&s)["cancel_run_ids"], json!([running]));
    let r = event(&running);
    r.error(409);
    assert_eq!(r.json()["code"], "run_cancelled", "{}", r.text);
    assert_eq!(complete(&s, &agent, "m", &running, "done", 0), 200);
    let v = s.run(BOOT, &running);
    assert_eq!(
        (v["status"].as_str(), v["cancelled"].as_bool()),
        (Some("failed"), Some(true)),
        "{v}"
    );
    assert!(
        v["error"].as_str().unwrap().contains("cancelled by a user"),
        "{v}"
    );
    assert_eq!(v["exit_code"], 130, "{v}");
    assert_eq!(v["failure"]["category"], "CANCELLED", "{v}");
    assert_eq!(hb(&s)["cancel_run_ids"], json!([]));
    // The events after the cancel were not recorded.
    let ev = s
        .user(BOOT, "GET", &format!("/v1/runs/{running}/events"), None)
        .json();
    assert_eq!(ev["events"].as_array().unwrap().len(), 1, "{ev}");
    assert_eq!(ev["cancelled"], true);

    // An agent that ignores the cancel: after the grace period the run is cancelled anyway
    // and its late completion is refused.
    let ignored = s.submit(BOOT, "rig");
    assert_eq!(s.next(&agent, "m").as_deref(), Some(ignored.as_str()));
    assert_eq!(cancel(&ignored).status, 202);
    let deadline = Instant::now() + Duration::from_secs(15);
    let v = loop {
        let v = s.run(BOOT, &ignored);
        if v["cancelled"] == true || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(v["cancelled"], true, "{v}");
    assert!(v["error"].as_str().unwrap().contains("grace period"), "{v}");
    assert_eq!(complete(&s, &agent, "m", &ignored, "done", 0), 409);
    // The bench is free again.
    let next = s.submit(BOOT, "rig");
    assert_eq!(s.next(&agent, "m").as_deref(), Some(next.as_str()));
}

fn new_routes_are_workspace_scoped(db: Db) {
    let s = Server::start(&db, |_| {});
    s.workspace("a");
    s.workspace("b");
    let (_, user_a) = s.token(BOOT, "a", "user");
    let (_, agent_a) = s.token(BOOT, "a", "agent");
    let (_, user_b) = s.token(BOOT, "b", "user");
    let (_, agent_b) = s.token(BOOT, "b", "agent");
    s.sync_all(
        &agent_a,
        "m-a",
        json!([bench("rig", &["shared"], json!("healthy"))]),
    );
    let queued = s.submit_json(&user_a, json!({"tags": ["shared"], "priority": 1}));
    let queued = queued["run_id"].as_str().unwrap().to_string();

    // b sees neither A's bench nor A's run, and cannot cancel it.
    for (method, path) in [
        ("GET", "/v1/benches/rig".to_string()),
        ("GET", format!("/v1/runs/{queued}")),
        ("POST", format!("/v1/runs/{queued}/cancel")),
    ] {
        let text = s.user(&user_b, method, &path, Some(json!({}))).error(404);
        let missing = s
            .user(
                &user_b,
                method,
                &path.replace(&queued, "0000").replace("rig", "gir"),
                Some(json!({})),
            )
            .error(404);
        assert_eq!(
            text.replace(&queued, "X").replace("rig", "X"),
            missing.replace("0000", "X").replace("gir", "X"),
            "{path}"
        );
    }
    // A tag run in b never reaches A's bench: b has no bench with the tag.
    let v = s.submit_json(&user_b, json!({"tags": ["shared"]}));
    assert_eq!(v["failure"]["category"], "CONFIG_ERROR", "{v}");
    assert_eq!(s.next(&agent_b, "m-b"), None);
    // A's run is still queued and is A's agent's.
    assert_eq!(s.run(&user_a, &queued)["status"], "queued");
    assert_eq!(s.next(&agent_a, "m-a").as_deref(), Some(queued.as_str()));
    // b's agent hears of no cancel of A's run.
    assert_eq!(
        s.user(
            &user_a,
            "POST",
            &format!("/v1/runs/{queued}/cancel"),
            Some(json!({}))
        )
        .status,
        202
    );
    let hb = s.agent(
        &agent_b,
        "m-b",
        "POST",
        "/v1/agents/heartbeat",
        Some(json!({})),
    );
    assert_eq!(hb.json()["cancel_run_ids"], json!([]));
    let hb = s.agent(
        &agent_a,
        "m-a",
        "POST",
        "/v1/agents/heartbeat",
        Some(json!({})),
    );
    assert_eq!(hb.json()["cancel_run_ids"], json!([queued]));
}

fn long_poll_wakes_for_tag_runs(db: Db) {
    let s = Server::start(&db, |c| c.long_poll = Duration::from_secs(10));
    let (_, agent) = s.token(BOOT, "default", "agent");
    s.sync_all(
        &agent,
        "m",
        json!([bench("rig", &["fast"], json!("healthy"))]),
    );
    std::thread::scope(|sc| {
        let poll = sc.spawn(|| s.next(&agent, "m"));
        std::thread::sleep(Duration::from_millis(500));
        let submitted = Instant::now();
        let v = s.submit_json(BOOT, json!({"tags": ["fast"]}));
        let got = poll.join().unwrap();
        assert_eq!(got.as_deref(), v["run_id"].as_str());
        assert!(
            submitted.elapsed() < Duration::from_secs(2),
            "{:?}",
            submitted.elapsed()
        );
    });
}

fn health_history_is_kept(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, agent) = s.token(BOOT, "default", "agent");
    for h in ["healthy", "failing", "failing", "degraded", "healthy"] {
        s.sync_all(&agent, "m", json!([bench("rig", &[], json!(h))]));
    }
    let v = s.user(BOOT, "GET", "/v1/benches/rig", None).json();
    let statuses: Vec<&str> = v["health_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["healthy", "degraded", "failing", "healthy"],
        "{v}"
    );
    assert_eq!(v["agent_online"], true);
    // The list leaves the history out.
    let v = s.user(BOOT, "GET", "/v1/benches", None).json();
    assert!(v["benches"][0].get("health_history").is_none(), "{v}");
}

fn lost_agents_wait_then_are_forgotten(db: Db) {
    let s = Server::start(&db, |c| {
        c.lease = Duration::from_secs(1);
        c.agent_forget_after = Duration::from_secs(5);
    });
    let (_, agent) = s.token(BOOT, "default", "agent");
    s.sync_all(&agent, "m", json!([bench("rig", &["t"], json!("healthy"))]));
    let done = s.submit(BOOT, "rig");
    assert_eq!(s.next(&agent, "m").as_deref(), Some(done.as_str()));
    assert_eq!(complete(&s, &agent, "m", &done, "done", 0), 200);
    std::thread::sleep(Duration::from_millis(1600));
    let v = s.user(BOOT, "GET", "/v1/agents", None).json();
    assert_eq!(v["agents"][0]["online"], false, "{v}");
    let waiting = s.submit(BOOT, "rig");
    let v = s.run(BOOT, &waiting);
    assert_eq!(
        v["queue"]["reason"], "waiting: agent of bench rig offline",
        "{v}"
    );
    // Forgotten after 5 s of silence: agent and bench gone, runs kept.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = s.user(BOOT, "GET", "/v1/agents", None).json();
        if v["agents"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lost agent was not removed: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let v = s.user(BOOT, "GET", "/v1/benches", None).json();
    assert_eq!(v["benches"], json!([]));
    assert_eq!(s.run(BOOT, &done)["status"], "done");
    assert_eq!(s.run(BOOT, &waiting)["status"], "queued");
}

fn two_agents_race_for_200_tag_runs(db: Db) {
    let s = Server::start(&db, |c| c.long_poll = Duration::from_millis(500));
    let agents: Vec<String> = (0..2)
        .map(|_| s.token(BOOT, "default", "agent").1)
        .collect();
    for (i, a) in agents.iter().enumerate() {
        let m = format!("m{i}");
        s.sync_all(
            a,
            &m,
            json!([
                bench(&format!("r{i}a"), &["t"], json!("healthy")),
                bench(&format!("r{i}b"), &["t"], json!("healthy"))
            ]),
        );
    }
    let mut submitted = Vec::new();
    for i in 0..200 {
        let v = s.submit_json(BOOT, json!({"tags": ["t"], "priority": i % 3}));
        submitted.push(v["run_id"].as_str().unwrap().to_string());
    }
    let taken: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let holding: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    let deadline = Instant::now() + Duration::from_secs(180);
    std::thread::scope(|sc| {
        // Two concurrent long-polls per agent.
        for (i, a) in agents.iter().enumerate() {
            for _ in 0..2 {
                let (s, taken, holding) = (&s, &taken, &holding);
                let m = format!("m{i}");
                sc.spawn(move || {
                    while Instant::now() < deadline && taken.lock().unwrap().len() < 200 {
                        let r = s.agent(a, &m, "GET", "/v1/agents/assignments/next", None);
                        assert_eq!(r.status, 200, "{}", r.text);
                        let v = r.json();
                        let Some(run) = v["assignment"]["run_id"].as_str() else {
                            continue;
                        };
                        let bench = v["assignment"]["bench_id"].as_str().unwrap().to_string();
                        *taken.lock().unwrap().entry(run.to_string()).or_default() += 1;
                        let before = holding.lock().unwrap().insert(bench.clone(), run.into());
                        assert_eq!(before, None, "bench {bench} got two runs at once");
                        // "Runs" a moment: a second assignment of the bench meanwhile is caught.
                        std::thread::sleep(Duration::from_millis(3));
                        holding.lock().unwrap().remove(&bench);
                        assert_eq!(complete(s, a, &m, run, "done", 0), 200);
                    }
                });
            }
        }
    });
    let taken = taken.into_inner().unwrap();
    assert_eq!(taken.len(), 200, "not every run was assigned in time");
    for id in &submitted {
        assert_eq!(
            taken.get(id),
            Some(&1),
            "run {id} assigned {:?} times",
            taken.get(id)
        );
    }
    let v = s.user(BOOT, "GET", "/v1/runs?limit=1000", None).json();
    let done = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "done")
        .count();
    assert_eq!(done, 200);
}

/// The queue view of one run (`GET /v1/runs/{id}`: read from what concerns that run only)
/// equals its view in a list (`GET /v1/runs`: one snapshot of the whole workspace), in a
/// workspace with two agents, benches with different labels, a degraded, a failing and a
/// busy bench, a running run with known durations and queued runs of every kind ahead.
fn one_runs_queue_view_equals_the_workspace_view(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, a) = s.token(BOOT, "default", "agent");
    let (_, b) = s.token(BOOT, "default", "agent");
    let degraded = json!({"schema_version": "benchci.diagnostics.v1", "status": "degraded",
        "summary": "Bench is usable but has 1 warning(s)", "failing_checks": [],
        "warning_checks": [{"id": "resource.psu.power.5.read", "status": "warn",
            "category": "POWER_READBACK_UNAVAILABLE", "message": "no readback"}]});
    let mut busy = bench("b2", &["x", "z"], json!("healthy"));
    busy["status"] = json!("busy");
    busy["current_run_id"] = json!("local-7");
    s.sync_all(
        &a,
        "ma",
        json!([
            bench("a1", &["x", "y"], json!("healthy")),
            bench("a2", &["x"], degraded)
        ]),
    );
    s.sync_all(
        &b,
        "mb",
        json!([bench("b1", &["y"], json!("failing")), busy]),
    );
    // a1: two finished runs (20 s and 40 s), then one running.
    for secs in [20, 40] {
        let run = s.submit(BOOT, "a1");
        assert_eq!(s.next(&a, "ma").as_deref(), Some(run.as_str()));
        let body = json!({"status": "done", "exit_code": 0,
            "started_at": "2026-01-01T00:00:00Z",
            "finished_at": format!("2026-01-01T00:00:{secs:02}Z")});
        let r = s.agent(
            &a,
            "ma",
            "POST",
            &format!("/v1/agents/runs/{run}/complete"),
            Some(body),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let running = s.submit(BOOT, "a1");
    assert_eq!(s.next(&a, "ma").as_deref(), Some(running.as_str()));

    let mut ids = Vec::new();
    for body in [
        json!({"tags": ["x"]}),
        json!({"tags": ["x"], "suite_yaml": power_suite("psu")}),
        json!({"bench_id": "a2", "priority": 1}),
        json!({"tags": ["y"]}),
        json!({"tags": ["x", "z"]}),
        json!({"bench_id": "b1"}),
        json!({"tags": ["x", "y"], "priority": -1}),
        json!({"bench_id": "a1"}),
        json!({"bench_id": "a2", "suite_yaml": power_suite("psu")}),
        json!({"capabilities": ["power"]}),
        json!({"tags": ["x"], "priority": 1}),
        json!({"tags": ["y"], "capabilities": ["power"]}),
    ] {
        let v = s.submit_json(BOOT, body);
        assert_eq!(v["status"], "queued", "{v}");
        ids.push(v["run_id"].as_str().unwrap().to_string());
    }
    let at = |v: &Value| -> Option<i64> {
        let t: jiff::Timestamp = v["estimated_start_at"].as_str()?.parse().unwrap();
        Some(t.as_millisecond())
    };
    let list = s.user(BOOT, "GET", "/v1/runs?limit=100", None).json();
    let mut reasons = Vec::new();
    let mut deepest = 0;
    for id in &ids {
        let mut one = s.run(BOOT, id)["queue"].clone();
        let mut listed = list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == id.as_str())
            .unwrap()["queue"]
            .clone();
        // The estimates are made at two instants: equal up to the time between them.
        match (at(&one), at(&listed)) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 2_000, "{id}: {one} / {listed}"),
            (None, None) => {}
            _ => panic!("{id}: one has an estimate, the other not: {one} / {listed}"),
        }
        one["estimated_start_at"] = Value::Null;
        listed["estimated_start_at"] = Value::Null;
        assert_eq!(one, listed, "{id}");
        deepest = deepest.max(one["position"].as_u64().unwrap());
        reasons.push(one["reason"].as_str().unwrap().to_string());
    }
    // The scenario reaches every kind of answer.
    for words in [
        "earlier run(s) ahead",
        "degraded on resource:psu",
        "bench b1 is failing",
        "bench b2 is busy with run local-7",
        &format!("is busy with run {running}"),
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(words)),
            "no reason says {words:?}: {reasons:#?}"
        );
    }
    assert!(deepest >= 3, "{reasons:#?}");
}

crate::scenarios!(
    tags_route_only_to_the_healthy_bench,
    degraded_bench_matches_only_suites_that_avoid_its_warning,
    impossible_runs_fail_at_once_as_configuration,
    priority_first_then_fifo,
    estimated_start_follows_recent_durations,
    a_bench_reporting_busy_waits_until_its_run_ended,
    cancel_of_queued_and_running_runs,
    new_routes_are_workspace_scoped,
    long_poll_wakes_for_tag_runs,
    health_history_is_kept,
    lost_agents_wait_then_are_forgotten,
    two_agents_race_for_200_tag_runs,
    one_runs_queue_view_equals_the_workspace_view,
);
