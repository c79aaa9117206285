//! Workspaces and tokens: every route answered for a token of another workspace says 404
//! (as for a missing object) or shows nothing, bad tokens are refused without saying why,
//! revoked tokens stop working, and an agent token is bound to its first machine.

mod common;

use common::{BOOT, Db, Server, multipart};
use serde_json::json;

fn another_workspace_sees_and_schedules_nothing(db: Db) {
    let s = Server::start(&db, |_| {});
    s.workspace("a");
    s.workspace("b");
    let (_, user_a) = s.token(BOOT, "a", "user");
    let (_, agent_a) = s.token(BOOT, "a", "agent");
    let (_, user_b) = s.token(BOOT, "b", "user");
    let (_, agent_b) = s.token(BOOT, "b", "agent");
    let bench = s.sync(&agent_a, "m-a", "rig", "healthy");
    let run = s.submit(&user_a, &bench);

    // Workspace b: lists are empty, A's objects are missing.
    for path in ["/v1/benches", "/v1/agents", "/v1/runs"] {
        let r = s.user(&user_b, "GET", path, None);
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        let v = r.json();
        let list = v.as_object().unwrap().values().next().unwrap();
        assert_eq!(
            list.as_array().unwrap().len(),
            0,
            "{path} leaks: {}",
            r.text
        );
    }
    for path in [
        format!("/v1/runs/{run}"),
        format!("/v1/runs/{run}/events"),
        format!("/v1/runs/{run}/artifacts.zip"),
    ] {
        let text = s.user(&user_b, "GET", &path, None).error(404);
        let missing = s
            .user(&user_b, "GET", &path.replace(&run, "0000"), None)
            .error(404);
        assert_eq!(
            text.replace(&run, "X"),
            missing.replace("0000", "X"),
            "{path}: another workspace's run must look missing"
        );
    }
    // A's bench is unknown in b: the run fails at once as Configuration, with the same
    // words as for a bench that exists nowhere.
    let fail_b = |bench: &str| {
        let r = s.user(
            &user_b,
            "POST",
            "/v1/runs",
            Some(json!({"bench_id": bench, "suite_yaml": common::SUITE})),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let v = r.json();
        assert_eq!(v["status"], "failed", "{v}");
        assert_eq!(v["failure"]["category"], "CONFIG_ERROR", "{v}");
        v["error"].as_str().unwrap().replace(bench, "X")
    };
    let text = fail_b(&bench);
    assert!(text.contains("bench not found"), "{text}");
    assert_eq!(text, fail_b("no-such-bench"));
    // Tokens of another workspace cannot be made or revoked by a user of b.
    let r = s.user(
        &user_b,
        "POST",
        "/v1/tokens",
        Some(json!({"workspace": "a", "kind": "agent"})),
    );
    assert_eq!(r.error(404), "workspace not found: a");
    let (a_token_id, _) = s.token(BOOT, "a", "user");
    let r = s.user(
        &user_b,
        "POST",
        &format!("/v1/tokens/{a_token_id}/revoke"),
        Some(json!({})),
    );
    r.error(404);

    // Agent of b: never assigned A's run, cannot report on it.
    let r = s.agent(&agent_b, "m-b", "GET", "/v1/agents/assignments/next", None);
    assert_eq!(r.json()["assignment"], serde_json::Value::Null);
    for (path, body) in [
        (
            format!("/v1/agents/runs/{run}/events"),
            json!({"events": []}),
        ),
        (
            format!("/v1/agents/runs/{run}/complete"),
            json!({"status": "done", "exit_code": 0}),
        ),
    ] {
        s.agent(&agent_b, "m-b", "POST", &path, Some(body))
            .error(404);
    }
    let (ct, bytes) = multipart("artifact_zip", "artifacts.zip", b"PK");
    s.call(
        "POST",
        &format!("/v1/agents/runs/{run}/artifacts"),
        Some(&agent_b),
        &[("X-BenchCI-Agent-Machine-ID", "m-b")],
        Some((&ct, bytes)),
    )
    .error(404);

    // A's agent still gets it.
    let r = s.agent(&agent_a, "m-a", "GET", "/v1/agents/assignments/next", None);
    assert_eq!(r.json()["assignment"]["run_id"], run.as_str());
}

fn bad_tokens_kinds_and_machines_are_refused(db: Db) {
    let s = Server::start(&db, |_| {});
    let (agent_id, agent) = s.token(BOOT, "default", "agent");
    let (user_id, user) = s.token(BOOT, "default", "user");

    s.call("GET", "/v1/runs", None, &[], None).error(401);
    s.call(
        "GET",
        "/v1/runs",
        None,
        &[("Authorization", "Basic x")],
        None,
    )
    .error(401);
    s.call("GET", "/v1/runs", Some(""), &[], None).error(401);
    assert_eq!(
        s.user("nope", "GET", "/v1/runs", None).error(403),
        "Invalid token"
    );

    // Kinds.
    assert!(
        s.user(&agent, "GET", "/v1/runs", None)
            .error(403)
            .contains("user token")
    );
    assert!(
        s.user(&user, "GET", "/v1/agents/assignments/next", None)
            .error(403)
            .contains("agent token")
    );
    assert!(
        s.user(&user, "POST", "/v1/workspaces", Some(json!({"name": "x"})))
            .error(403)
            .contains("admin")
    );

    // Machine binding: first machine wins, another gets 409, none gets 400.
    s.agent(
        &agent,
        "m1",
        "POST",
        "/v1/agents/heartbeat",
        Some(json!({})),
    );
    let r = s.agent(
        &agent,
        "m2",
        "POST",
        "/v1/agents/heartbeat",
        Some(json!({})),
    );
    let text = r.error(409);
    assert!(text.contains("machine") && text.contains("token"), "{text}");
    s.user(&agent, "POST", "/v1/agents/heartbeat", Some(json!({})))
        .error(400);
    let long = "m".repeat(300);
    let r = s.agent(
        &agent,
        &long,
        "POST",
        "/v1/agents/heartbeat",
        Some(json!({})),
    );
    assert!(r.error(400).contains("longer than"));

    // Revoked tokens stop at once, and look like unknown ones.
    for (id, token) in [(&agent_id, &agent), (&user_id, &user)] {
        let r = s.user(BOOT, "POST", &format!("/v1/tokens/{id}/revoke"), None);
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            s.user(token, "GET", "/v1/runs", None).error(403),
            "Invalid token"
        );
        s.user(BOOT, "POST", &format!("/v1/tokens/{id}/revoke"), None)
            .error(404);
    }
}

fn bootstrap_is_idempotent_across_restarts(db: Db) {
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("data");
    let first = data.clone();
    let s = Server::start(&db, move |c| c.data_dir = first);
    s.workspace("kept");
    drop(s);
    // The same database, the same bootstrap token: the token still works, nothing doubled.
    let s = Server::start(&db, move |c| c.data_dir = data);
    let r = s.user(
        BOOT,
        "POST",
        "/v1/workspaces",
        Some(json!({"name": "kept"})),
    );
    assert!(r.error(409).contains("exists"));
}

crate::scenarios!(
    another_workspace_sees_and_schedules_nothing,
    bad_tokens_kinds_and_machines_are_refused,
    bootstrap_is_idempotent_across_restarts,
);
