//! Sequenced events (hilt cloud agents number their events per run): the server stores each
//! `(run, seq)` once and in order — a replayed batch is acknowledged and stores nothing, a
//! batch that skips ahead is refused 409 whole, concurrent replays never duplicate — and a
//! report under a stale fencing token is refused. On SQLite and PostgreSQL.

mod common;

use common::{BOOT, Db, Server};
use serde_json::{Value, json};

fn batch(seqs: &[u64]) -> Value {
    let events: Vec<Value> = seqs
        .iter()
        .map(|s| {
            json!({"seq": s, "timestamp": "2026-01-01T00:00:00Z", "event_type": format!("e{s}"),
                "message": null, "data": {"n": s}})
        })
        .collect();
    json!({ "events": events })
}

/// An agent holding a fresh run: (server, agent token, run id, fencing token).
fn held_run(db: &Db) -> (Server, String, String, i64) {
    let s = Server::start(db, |_| {});
    let (_, agent) = s.token(BOOT, "default", "agent");
    let bench = s.sync(&agent, "m", "rig", "healthy");
    let run = s.submit(BOOT, &bench);
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], run.as_str(), "{v}");
    let fence = v["assignment"]["lease"]["fencing_token"].as_i64().unwrap();
    (s, agent, run, fence)
}

fn post(s: &Server, agent: &str, path: &str, fence: Option<i64>, body: Value) -> common::Resp {
    let f = fence.map(|f| f.to_string());
    let mut headers = vec![("X-BenchCI-Agent-Machine-ID", "m")];
    if let Some(f) = &f {
        headers.push(("X-Hilt-Fencing-Token", f.as_str()));
    }
    s.call(
        "POST",
        path,
        Some(agent),
        &headers,
        Some(("application/json", body.to_string().into_bytes())),
    )
}

/// (server seq, agent seq, type) of every stored event.
fn stored(s: &Server, run: &str) -> Vec<(u64, u64, String)> {
    let v = s
        .user(BOOT, "GET", &format!("/v1/runs/{run}/events"), None)
        .json();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["data"]["n"].as_u64().unwrap_or(0),
                e["event_type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn duplicated_and_out_of_order_batches_are_stored_once_in_order(db: Db) {
    let (s, agent, run, fence) = held_run(&db);
    let path = format!("/v1/agents/runs/{run}/events");
    let ok = |seqs: &[u64]| {
        let r = post(&s, &agent, &path, Some(fence), batch(seqs));
        assert_eq!(r.status, 200, "{seqs:?}: {}", r.text);
    };
    ok(&[1, 2, 3]);
    // The same batch again (the agent never saw the answer), and one overlapping it.
    ok(&[1, 2, 3]);
    ok(&[2, 3, 4, 5]);
    // Skipping ahead (7 before 6) and disorder inside a batch are refused whole.
    let r = post(&s, &agent, &path, Some(fence), batch(&[7, 8]));
    assert!(r.error(409).contains("expected seq 6, got 7"), "{}", r.text);
    let r = post(&s, &agent, &path, Some(fence), batch(&[6, 8, 7]));
    assert!(r.error(409).contains("event seq gap"), "{}", r.text);
    ok(&[6]);
    ok(&[7, 8]);
    // Concurrent replays of the same batches: still once each.
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for b in [&[7u64, 8, 9][..], &[9, 10], &[8, 9, 10, 11, 12]] {
                    let r = post(&s, &agent, &path, Some(fence), batch(b));
                    // A replay racing ahead of its predecessor may find a gap: refused,
                    // and the agent would resend it.
                    assert!(r.status == 200 || r.status == 409, "{}", r.text);
                }
            });
        }
    });
    let got = stored(&s, &run);
    let want: Vec<(u64, u64, String)> = (1..=12).map(|n| (n, n, format!("e{n}"))).collect();
    assert_eq!(got, want);

    // Events without seq (BenchCI's agent) are appended as they come, after the others.
    let r = s.agent(
        &agent,
        "m",
        "POST",
        &path,
        Some(json!({"events": [{"timestamp": "t", "event_type": "plain", "data": {}}]})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let got = stored(&s, &run);
    assert_eq!(got.len(), 13);
    assert_eq!(got[12].2, "plain");
    assert_eq!(got[12].0, 13);
}

fn reports_under_a_stale_fencing_token_are_refused(db: Db) {
    let (s, agent, run, fence) = held_run(&db);
    let base = format!("/v1/agents/runs/{run}");
    let r = post(
        &s,
        &agent,
        &format!("{base}/events"),
        Some(fence + 1),
        batch(&[1]),
    );
    assert!(r.error(409).contains("stale lease"), "{}", r.text);
    let r = post(
        &s,
        &agent,
        &format!("{base}/events"),
        Some(fence - 1),
        batch(&[1]),
    );
    assert!(r.error(409).contains("stale lease"), "{}", r.text);
    assert!(stored(&s, &run).is_empty());
    let r = s.call(
        "POST",
        &format!("{base}/events"),
        Some(&agent),
        &[
            ("X-BenchCI-Agent-Machine-ID", "m"),
            ("X-Hilt-Fencing-Token", "not-a-number"),
        ],
        Some(("application/json", batch(&[1]).to_string().into_bytes())),
    );
    r.error(400);
    let done = json!({"status": "done", "exit_code": 0});
    let r = post(
        &s,
        &agent,
        &format!("{base}/complete"),
        Some(fence + 7),
        done.clone(),
    );
    assert!(r.error(409).contains("stale lease"), "{}", r.text);
    let v = s.user(BOOT, "GET", &format!("/v1/runs/{run}"), None).json();
    assert_eq!(v["status"], "preparing", "{v}");
    // The current token is accepted; a repeat under a stale one is not acknowledged.
    assert_eq!(
        post(
            &s,
            &agent,
            &format!("{base}/events"),
            Some(fence),
            batch(&[1])
        )
        .status,
        200
    );
    assert_eq!(
        post(
            &s,
            &agent,
            &format!("{base}/complete"),
            Some(fence),
            done.clone()
        )
        .status,
        200
    );
    let r = post(
        &s,
        &agent,
        &format!("{base}/complete"),
        Some(fence + 1),
        done,
    );
    r.error(409);
    let v = s.user(BOOT, "GET", &format!("/v1/runs/{run}"), None).json();
    assert_eq!(v["status"], "done", "{v}");
}

crate::scenarios!(
    duplicated_and_out_of_order_batches_are_stored_once_in_order,
    reports_under_a_stale_fencing_token_are_refused,
);
