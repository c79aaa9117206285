//! The cloud-agent calls in-process (the shapes BenchCI's cloud agent sends): the long-poll
//! answers the moment a run is submitted, a run goes queued → preparing → running → done
//! with its events and archive, leases expire for silent agents, late reports are refused,
//! and malformed or oversized bodies get 4xx JSON errors.

mod common;

use std::time::{Duration, Instant};

use common::{BOOT, Db, Server, multipart};
use serde_json::json;

fn long_poll_answers_when_a_run_is_submitted(db: Db) {
    let s = Server::start(&db, |c| c.long_poll = Duration::from_secs(10));
    let (_, agent) = s.token(BOOT, "default", "agent");
    let bench = s.sync(&agent, "m", "rig", "healthy");
    let started = Instant::now();
    let run = std::thread::scope(|sc| {
        let poll = sc.spawn(|| s.agent(&agent, "m", "GET", "/v1/agents/assignments/next", None));
        std::thread::sleep(Duration::from_millis(500));
        let submitted = Instant::now();
        let run = s.submit(BOOT, &bench);
        let r = poll.join().unwrap();
        let waited = submitted.elapsed();
        assert_eq!(r.json()["assignment"]["run_id"], run.as_str(), "{}", r.text);
        assert!(
            waited < Duration::from_secs(2),
            "the poll answered {waited:?} after the submission"
        );
        run
    });
    assert!(started.elapsed() < Duration::from_secs(5));
    let v = s.user(BOOT, "GET", &format!("/v1/runs/{run}"), None).json();
    assert_eq!(v["status"], "preparing");
    // Nothing else queued: an empty poll waits its full time and says null.
    let s2 = Server::start(&db, |c| c.long_poll = Duration::from_millis(400));
    let (_, a2) = s2.token(BOOT, "default", "agent");
    s2.sync(&a2, "m", "rig", "healthy");
    let t = Instant::now();
    let r = s2.agent(&a2, "m", "GET", "/v1/agents/assignments/next", None);
    assert_eq!(r.json(), json!({"assignment": null}));
    assert!(t.elapsed() >= Duration::from_millis(350));
}

fn a_run_goes_through_its_lifecycle_and_late_reports_are_refused(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, agent) = s.token(BOOT, "default", "agent");
    let bench = s.sync(&agent, "m", "rig", "healthy");
    let run = s.submit(BOOT, &bench);
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    let a = &v["assignment"];
    assert_eq!(a["run_id"], run.as_str());
    assert_eq!(a["bench_id"], bench.as_str());
    assert_eq!(a["lease"]["fencing_token"], 1);
    assert!(a["suite_yaml"].as_str().unwrap().starts_with("version: 1"));
    // The bench is busy: a second run waits.
    let second = s.submit(BOOT, &bench);
    let r = s.agent(&agent, "m", "GET", "/v1/agents/assignments/next", None);
    assert_eq!(r.json()["assignment"], serde_json::Value::Null);

    for (i, kind) in ["run.started", "test.started", "run.failed"]
        .iter()
        .enumerate()
    {
        let e = json!({"events": [{"timestamp": "2026-01-01T00:00:00Z", "event_type": kind,
            "message": format!("e{i}"),
            "data": if *kind == "run.failed" { json!({"failure": {"category": "UART_TIMEOUT", "title": "t"}}) } else { json!({}) }}]});
        let r = s.agent(
            &agent,
            "m",
            "POST",
            &format!("/v1/agents/runs/{run}/events"),
            Some(e),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let zip = b"PK\x05\x06".repeat(100);
    let (ct, body) = multipart("artifact_zip", "artifacts.zip", &zip);
    let r = s.call(
        "POST",
        &format!("/v1/agents/runs/{run}/artifacts"),
        Some(&agent),
        &[("X-BenchCI-Agent-Machine-ID", "m")],
        Some((&ct, body)),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let done = json!({"status": "failed", "exit_code": 1, "error": "boom",
        "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:05Z"});
    let path = format!("/v1/agents/runs/{run}/complete");
    assert_eq!(
        s.agent(&agent, "m", "POST", &path, Some(done.clone()))
            .status,
        200
    );
    // BenchCI retries a completion: acknowledged, nothing changes.
    assert_eq!(s.agent(&agent, "m", "POST", &path, Some(done)).status, 200);

    let v = s.user(BOOT, "GET", &format!("/v1/runs/{run}"), None).json();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["failure"]["category"], "UART_TIMEOUT");
    assert_eq!(v["artifacts"]["size_bytes"], 400);
    let ev = s
        .user(BOOT, "GET", &format!("/v1/runs/{run}/events"), None)
        .json();
    let seqs: Vec<_> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let r = s.call(
        "GET",
        &format!("/v1/runs/{run}/artifacts.zip"),
        Some(BOOT),
        &[],
        None,
    );
    assert_eq!((r.status, r.text.len()), (200, 400));

    // Reports after the end are refused, not recorded.
    let late = json!({"events": [{"timestamp": "t", "event_type": "late", "data": {}}]});
    let r = s.agent(
        &agent,
        "m",
        "POST",
        &format!("/v1/agents/runs/{run}/events"),
        Some(late),
    );
    assert!(r.error(409).contains("not held by this agent"));
    let ev = s
        .user(BOOT, "GET", &format!("/v1/runs/{run}/events"), None)
        .json();
    assert_eq!(ev["events"].as_array().unwrap().len(), 3);

    // The bench is free again: the second run is assigned.
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], second.as_str());
}

fn a_silent_agent_loses_its_run(db: Db) {
    let s = Server::start(&db, |c| c.lease = Duration::from_secs(1));
    let (_, agent) = s.token(BOOT, "default", "agent");
    let bench = s.sync(&agent, "m", "rig", "healthy");
    let run = s.submit(BOOT, &bench);
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], run.as_str());
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let v = s.user(BOOT, "GET", &format!("/v1/runs/{run}"), None).json();
        if v["status"] == "failed" || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["exit_code"], -1);
    assert_eq!(v["failure"]["category"], "AGENT_LOST");
    let r = s.agent(
        &agent,
        "m",
        "POST",
        &format!("/v1/agents/runs/{run}/complete"),
        Some(json!({"status": "done", "exit_code": 0})),
    );
    r.error(409);
}

fn concurrent_agents_sync_and_poll_without_database_errors(db: Db) {
    let s = Server::start(&db, |c| c.long_poll = Duration::from_millis(200));
    let tokens: Vec<String> = (0..12)
        .map(|_| s.token(BOOT, "default", "agent").1)
        .collect();
    std::thread::scope(|sc| {
        for (i, t) in tokens.iter().enumerate() {
            let s = &s;
            sc.spawn(move || {
                let m = format!("m{i}");
                for _ in 0..5 {
                    s.sync(t, &m, &format!("rig-{i}"), "healthy");
                    let r = s.agent(t, &m, "GET", "/v1/agents/assignments/next", None);
                    assert_eq!(r.status, 200, "{}", r.text);
                }
            });
        }
    });
}

fn failing_or_unknown_benches_get_no_runs(db: Db) {
    let s = Server::start(&db, |_| {});
    let (_, agent) = s.token(BOOT, "default", "agent");
    for health in ["failing", "unknown"] {
        let bench = s.sync(&agent, "m", &format!("rig-{health}"), health);
        s.submit(BOOT, &bench);
    }
    let r = s.agent(&agent, "m", "GET", "/v1/agents/assignments/next", None);
    assert_eq!(r.json()["assignment"], serde_json::Value::Null);
}

fn bad_bodies_get_clear_4xx_json(db: Db) {
    let s = Server::start(&db, |c| c.max_artifacts_bytes = 1024);
    let (_, agent) = s.token(BOOT, "default", "agent");
    let bench = s.sync(&agent, "m", "rig", "healthy");
    let raw = |method: &str, path: &str, token: &str, ct: &str, body: &[u8]| {
        s.call(
            method,
            path,
            Some(token),
            &[("X-BenchCI-Agent-Machine-ID", "m")],
            Some((ct, body.to_vec())),
        )
    };
    raw("POST", "/v1/runs", BOOT, "application/json", b"{not json").error(400);
    raw("POST", "/v1/runs", BOOT, "text/plain", b"{}").error(400);
    raw(
        "POST",
        "/v1/runs",
        BOOT,
        "application/json",
        b"{\"bench_id\": 5}",
    )
    .error(422);
    let submit = |body: serde_json::Value| s.user(BOOT, "POST", "/v1/runs", Some(body));
    submit(json!({"bench_id": bench, "suite_yaml": "  "})).error(422);
    // A suite that is not a suite: 422 with its location.
    let text = submit(json!({"bench_id": bench, "suite_yaml": "x: 1"})).error(422);
    assert!(text.contains("suite.yaml:"), "{text}");
    // Neither or both of bench id and tags.
    submit(json!({"suite_yaml": common::SUITE})).error(422);
    submit(json!({"bench_id": bench, "tags": ["a"], "suite_yaml": common::SUITE})).error(422);
    submit(json!({"tags": [""], "suite_yaml": common::SUITE})).error(422);
    submit(json!({"tags": "a", "suite_yaml": common::SUITE})).error(422);
    submit(json!({"bench_id": bench, "suite_yaml": "x".repeat(300 * 1024)})).error(413);
    submit(
        json!({"bench_id": bench, "suite_yaml": "x: 1", "artifact_base64": "!!",
        "artifact_filename": "fw.bin"}),
    )
    .error(400);
    submit(
        json!({"bench_id": bench, "suite_yaml": "x: 1", "artifact_base64": "AAAA",
        "artifact_filename": ".fw.bin"}),
    )
    .error(400);
    submit(
        json!({"bench_id": bench, "suite_yaml": "x: 1", "artifact_base64": "AAAA",
        "artifact_filename": "fw.exe"}),
    )
    .error(400);
    s.user(
        BOOT,
        "POST",
        "/v1/workspaces",
        Some(json!({"name": "Bad Name"})),
    )
    .error(422);
    s.user(
        BOOT,
        "POST",
        "/v1/tokens",
        Some(json!({"workspace": "default", "kind": "root"})),
    )
    .error(422);
    s.user(BOOT, "GET", "/v1/nowhere", None).error(404);

    let run = s.submit(BOOT, &bench);
    s.agent(&agent, "m", "GET", "/v1/agents/assignments/next", None);
    let base = format!("/v1/agents/runs/{run}");
    raw(
        "POST",
        &format!("{base}/events"),
        &agent,
        "application/json",
        b"[]",
    )
    .error(422);
    raw(
        "POST",
        &format!("{base}/complete"),
        &agent,
        "application/json",
        b"{\"status\": \"maybe\"}",
    )
    .error(422);
    raw(
        "POST",
        "/v1/agents/benches/sync",
        &agent,
        "application/json",
        b"{\"benches\": [{}]}",
    )
    .error(422);
    // An event batch beyond the JSON limit (8 MiB) is refused before it is parsed.
    let big = format!(
        "{{\"events\": [{{\"event_type\": \"{}\"}}]}}",
        "x".repeat(9 << 20)
    );
    let r = s.try_call(
        "POST",
        &format!("{base}/events"),
        Some(&agent),
        &[("X-BenchCI-Agent-Machine-ID", "m")],
        Some(("application/json", big.into_bytes())),
    );
    match r {
        Ok(r) => {
            r.error(413);
        }
        // The server may close the connection while the body is still being sent.
        Err(ureq::Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
        Err(e) => panic!("{e}"),
    }
    raw(
        "POST",
        &format!("{base}/artifacts"),
        &agent,
        "application/zip",
        b"PK",
    )
    .error(400);
    let (ct, body) = multipart("other", "x.zip", b"PK");
    assert!(
        raw("POST", &format!("{base}/artifacts"), &agent, &ct, &body)
            .error(400)
            .contains("artifact_zip")
    );
    let (ct, body) = multipart("artifact_zip", "artifacts.zip", &[0u8; 4096]);
    raw("POST", &format!("{base}/artifacts"), &agent, &ct, &body).error(413);
    // Just over the cap, with the length only known while streaming (the 413 comes from
    // the streamed count): nothing is kept.
    let (ct, body) = multipart("artifact_zip", "artifacts.zip", &[0u8; 1025]);
    raw("POST", &format!("{base}/artifacts"), &agent, &ct, &body).error(413);
    let v = s.user(BOOT, "GET", &format!("/v1/runs/{run}"), None).json();
    assert_eq!(v["artifacts"], serde_json::Value::Null);
}

crate::scenarios!(
    long_poll_answers_when_a_run_is_submitted,
    a_run_goes_through_its_lifecycle_and_late_reports_are_refused,
    a_silent_agent_loses_its_run,
    failing_or_unknown_benches_get_no_runs,
    concurrent_agents_sync_and_poll_without_database_errors,
    bad_bodies_get_clear_4xx_json,
);
