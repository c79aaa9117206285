//! Bearer-token auth on every protected endpoint; `/health`, `/metrics` and `/openapi.json`
//! are open.

use hilt_testkit::agent as common;

use common::{Auth, Lab, Multipart, TOKEN};
use serde_json::json;

/// Every protected route (method, path), with real ids filled in.
fn protected(bench: &str, run: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GET", "/v1/benches".into()),
        ("GET", format!("/v1/benches/{bench}")),
        ("GET", format!("/v1/benches/{bench}/health")),
        ("POST", format!("/v1/benches/{bench}/health/refresh")),
        ("POST", "/v1/runs".into()),
        ("GET", "/v1/runs".into()),
        ("POST", "/v1/runs/json".into()),
        ("GET", format!("/v1/runs/{run}")),
        ("GET", format!("/v1/runs/{run}/events")),
        ("GET", format!("/v1/runs/{run}/events/stream")),
        ("POST", format!("/v1/runs/{run}/cancel")),
        ("GET", format!("/v1/runs/{run}/artifacts.zip")),
    ]
}

const GPIO: [&str; 6] = [
    "/v1/gpio/session/start",
    "/v1/gpio/session/stop",
    "/v1/gpio/set",
    "/v1/gpio/get",
    "/v1/gpio/wait_value",
    "/v1/gpio/wait_edge",
];

/// A body that would be accepted if auth were skipped, so a missing check is visible.
fn body_for(path: &str, bench: &str) -> (Option<String>, Option<Vec<u8>>) {
    if path == "/v1/runs/json" {
        let b =
            json!({"bench_id": bench, "suite_yaml": common::sleep_suite(1), "skip_flash": true});
        (
            Some("application/json".into()),
            Some(b.to_string().into_bytes()),
        )
    } else if path == "/v1/runs" {
        let (ct, body) = Multipart::new()
            .file("bench_yaml", "bench.yaml", b"version: 1\n")
            .file(
                "suite_yaml",
                "suite.yaml",
                common::sleep_suite(1).as_bytes(),
            )
            .field("skip_flash", "true")
            .finish();
        (Some(ct), Some(body))
    } else if path.starts_with("/v1/gpio/") {
        let b = json!({"chip": "sim:auth", "lines": {"1": {"direction": "output"}},
                       "session_id": "0123456789abcdef0123456789abcdef", "channel": 1,
                       "value": true, "edge": "both", "timeout_ms": 0});
        (
            Some("application/json".into()),
            Some(b.to_string().into_bytes()),
        )
    } else {
        (None, None)
    }
}

fn check_refused(agent: &common::Agent, method: &str, path: &str, bench: &str) {
    let (ct, body) = body_for(path, bench);
    let cases: [(Auth, u16, Option<&str>); 7] = [
        (Auth::None, 401, Some("Missing Authorization header")),
        (Auth::Header(TOKEN), 401, None),
        (Auth::Header("bearer t0k"), 401, None),
        (Auth::Header("Basic dDBrOg=="), 401, None),
        (Auth::Header("Bearer wrong"), 403, Some("Invalid token")),
        (Auth::Header("Bearer t0"), 403, Some("Invalid token")),
        (Auth::Header("Bearer t0kt0k"), 403, Some("Invalid token")),
    ];
    for (auth, status, text) in cases {
        let r = agent.request(method, path, auth, ct.as_deref(), body.as_deref());
        assert_eq!(
            r.status,
            status,
            "{method} {path} with {auth:?}: {}",
            r.text()
        );
        let err = r.expect_error(status);
        if let Some(t) = text {
            assert_eq!(err, t, "{method} {path} with {auth:?}");
            assert_eq!(r.json()["detail"], t);
        }
    }
}

#[test]
fn every_protected_endpoint_refuses_missing_and_wrong_tokens() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));
    let run = agent.submit("m1", &common::sleep_suite(1));
    let before = agent.wait_finished(&run);
    assert_eq!(before["status"], "done", "{before}");

    for (method, path) in protected("m1", &run) {
        check_refused(&agent, method, &path, "m1");
    }
    // Nothing was created, cancelled or refreshed by the refused requests.
    let runs = agent.get_json("/v1/runs");
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(agent.run(&run)["status"], "done");
    assert_eq!(lab.path("work/runs").read_dir().unwrap().count(), 1);

    // The same requests with the token are not refused.
    for (method, path) in protected("m1", &run) {
        let (ct, body) = body_for(&path, "m1");
        let r = agent.request(method, &path, Auth::Token, ct.as_deref(), body.as_deref());
        assert!(
            r.status != 401 && r.status != 403 && r.status < 500,
            "{method} {path} with the token: {} {}",
            r.status,
            r.text()
        );
    }
}

#[test]
fn gpio_endpoints_require_the_token() {
    let lab = Lab::new();
    let agent = lab.start(None);
    for path in GPIO {
        check_refused(&agent, "POST", path, "none");
    }
}

#[test]
fn health_metrics_and_openapi_are_open() {
    let lab = Lab::new();
    let agent = lab.start(None);
    for path in ["/health", "/metrics", "/openapi.json"] {
        for auth in [Auth::None, Auth::Header("Bearer wrong"), Auth::Token] {
            let r = agent.request("GET", path, auth, None, None);
            assert_eq!(r.status, 200, "GET {path} with {auth:?}: {}", r.text());
        }
    }
    let h = agent
        .request("GET", "/health", Auth::None, None, None)
        .json();
    assert_eq!(h["ok"], true);
    assert_eq!(h["auth_enabled"], true);
    assert_eq!(h["registered_mode"], false);
    assert_eq!(h["agent_id"], "standalone-agent");
    assert!(h["agent_config_path"].is_null());
}

#[test]
fn unknown_routes_do_not_reveal_anything_without_a_token() {
    let lab = Lab::new();
    let agent = lab.start(None);
    for path in ["/v1/nope", "/v1/runs/x/y/z", "/v2/runs"] {
        let r = agent.request("GET", path, Auth::None, None, None);
        assert!(
            r.status == 401 || r.status == 404,
            "GET {path}: {} {}",
            r.status,
            r.text()
        );
    }
}
