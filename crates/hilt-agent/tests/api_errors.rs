//! Bad input: unknown ids, malformed and oversized submissions, unsafe file names, state
//! conflicts — each answered with the right status and a JSON `{error, detail}` body, and
//! no run directory left behind by a refused submission.

use hilt_testkit::agent as common;

use std::time::Duration;

use base64::Engine;
use common::{Agent, Auth, Lab, Multipart};
use serde_json::json;

const LIMITS: &str = "limits: {max_yaml_bytes: 1000, max_artifact_bytes: 1000000}\n";

fn registered(lab: &Lab) -> Agent {
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], LIMITS);
    lab.start(Some(&cfg))
}

fn bench_text(lab: &Lab) -> String {
    std::fs::read_to_string(lab.mock_bench("up.yaml", "up")).unwrap()
}

fn multipart(agent: &Agent, ct: &str, body: &[u8]) -> common::Resp {
    agent.request("POST", "/v1/runs", Auth::Token, Some(ct), Some(body))
}

#[test]
fn unknown_bench_and_run_are_404() {
    let lab = Lab::new();
    let agent = registered(&lab);
    let r = agent.post_json(
        "/v1/runs/json",
        &json!({"bench_id": "nope", "suite_yaml": common::sleep_suite(1), "skip_flash": true}),
    );
    assert_eq!(r.expect_error(404), "bench not found: nope");
    for path in [
        "/v1/benches/nope",
        "/v1/benches/nope/health",
        "/v1/benches/nope/health/refresh",
    ] {
        let method = if path.ends_with("refresh") {
            "POST"
        } else {
            "GET"
        };
        let r = agent.request(method, path, Auth::Token, None, None);
        assert_eq!(r.expect_error(404), "bench not found", "{method} {path}");
    }
    for (method, path) in [
        ("GET", "/v1/runs/0123456789ab"),
        ("GET", "/v1/runs/0123456789ab/events"),
        ("GET", "/v1/runs/0123456789ab/events/stream"),
        ("POST", "/v1/runs/0123456789ab/cancel"),
        ("GET", "/v1/runs/0123456789ab/artifacts.zip"),
        ("GET", "/v1/runs/..%2F..%2Fetc/artifacts.zip"),
    ] {
        let r = agent.request(method, path, Auth::Token, None, None);
        assert_eq!(r.expect_error(404), "run not found", "{method} {path}");
    }
    assert!(agent.run_dirs().is_empty());
}

#[test]
fn standalone_agent_refuses_registered_runs() {
    let lab = Lab::new();
    let agent = lab.start(None);
    let r = agent.post_json(
        "/v1/runs/json",
        &json!({"bench_id": "m1", "suite_yaml": common::sleep_suite(1), "skip_flash": true}),
    );
    assert_eq!(
        r.expect_error(400),
        "this agent is not configured with registered benches"
    );
    let r = agent.get("/v1/benches/m1");
    assert_eq!(r.expect_error(404), "this agent has no registered benches");
    assert_eq!(agent.get_json("/v1/benches"), json!([]));
    assert!(agent.run_dirs().is_empty());
}

#[test]
fn json_submission_errors() {
    let lab = Lab::new();
    let agent = registered(&lab);
    let suite = common::sleep_suite(1);
    let post = |body: &serde_json::Value| agent.post_json("/v1/runs/json", body);
    let raw = |ct: Option<&str>, body: &[u8]| {
        agent.request("POST", "/v1/runs/json", Auth::Token, ct, Some(body))
    };

    // Syntax errors and a missing content type: 400.
    for body in [
        &b"{"[..],
        b"not json",
        b"",
        b"{\"bench_id\": \"m1\",}",
        b"\xff\xfe",
    ] {
        raw(Some("application/json"), body).expect_error(400);
    }
    raw(
        None,
        json!({"bench_id": "m1", "suite_yaml": suite})
            .to_string()
            .as_bytes(),
    )
    .expect_error(400);
    raw(
        Some("text/plain"),
        json!({"bench_id": "m1", "suite_yaml": suite})
            .to_string()
            .as_bytes(),
    )
    .expect_error(400);

    // Well-formed JSON of the wrong shape: 422.
    for body in [
        json!({"bench_id": 5, "suite_yaml": suite}),
        json!({"bench_id": "m1", "suite_yaml": ["x"]}),
        json!({"bench_id": "m1"}),
        json!({"suite_yaml": suite}),
        json!({"bench_id": "m1", "suite_yaml": suite, "skip_flash": "yes"}),
        json!({"bench_id": "m1", "suite_yaml": suite, "artifact_base64": 12}),
        json!({"bench_id": "", "suite_yaml": suite, "skip_flash": true}),
        json!({"bench_id": "m1", "suite_yaml": "", "skip_flash": true}),
        json!([1, 2, 3]),
        json!(null),
    ] {
        let r = post(&body);
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        r.expect_error(422);
    }

    // No artifact and no skip_flash for a suite that flashes (one that does not is
    // accepted: tests/hardening.rs).
    let flashing = common::suite("f", "  - name: t\n    steps:\n      - flash: {node: m1}\n");
    let r = post(&json!({"bench_id": "m1", "suite_yaml": flashing}));
    assert_eq!(
        r.expect_error(400),
        "artifact is required unless skip_flash=true (the suite has a flash step)"
    );

    // Invalid base64, bad names.
    let fw = base64::engine::general_purpose::STANDARD.encode(b"\x7fELF firmware");
    for (b64, name) in [
        ("!!!not base64!!!", "fw.bin"),
        ("QUJD=", "fw.bin"),
        ("QUJDRA", "fw.bin"),
        (fw.as_str(), "fw.txt"),
        (fw.as_str(), "fw"),
        (fw.as_str(), ".."),
        (fw.as_str(), "fw\0.bin"),
        (fw.as_str(), "a\\b.bin"),
        (fw.as_str(), "dir/"),
    ] {
        let r = post(&json!({"bench_id": "m1", "suite_yaml": suite,
                             "artifact_base64": b64, "artifact_filename": name}));
        assert_eq!(r.status, 400, "{b64:?} {name:?}: {}", r.text());
        r.expect_error(400);
    }

    // Too large: the suite, and the artifact (under and over the whole-body limit).
    let big_suite = format!("{suite}# {}\n", "x".repeat(1000));
    let r = post(&json!({"bench_id": "m1", "suite_yaml": big_suite, "skip_flash": true}));
    r.expect_error(413);
    let b64 = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 1_000_001]);
    let r = post(&json!({"bench_id": "m1", "suite_yaml": suite,
                         "artifact_base64": b64, "artifact_filename": "fw.bin"}));
    r.expect_error(413);
    assert!(agent.run_dirs().is_empty(), "{:?}", agent.run_dirs());

    // A relative path is reduced to its base name.
    let r = post(
        &json!({"bench_id": "m1", "suite_yaml": suite, "artifact_base64": fw,
                         "artifact_relpath": "../../build/fw.elf", "skip_flash": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    let dir = agent.work_dir.join("runs").join(&id);
    assert!(dir.join("fw.elf").is_file());
    assert_eq!(
        std::fs::read(dir.join("bench.yaml")).unwrap(),
        std::fs::read(lab.path("m1.yaml")).unwrap(),
        "the registered bench is copied at submission"
    );
    assert_eq!(agent.wait_finished(&id)["status"], "done");
}

#[test]
fn multipart_submission_errors() {
    let lab = Lab::new();
    let agent = registered(&lab);
    let bench = bench_text(&lab);
    let suite = common::sleep_suite(1);
    let ok = || {
        Multipart::new()
            .file("bench_yaml", "bench.yaml", bench.as_bytes())
            .file("suite_yaml", "suite.yaml", suite.as_bytes())
    };
    let flashing_suite = common::suite("f", "  - name: t\n    steps:\n      - flash: {node: up}\n");
    let flashing = || {
        Multipart::new()
            .file("bench_yaml", "bench.yaml", bench.as_bytes())
            .file("suite_yaml", "suite.yaml", flashing_suite.as_bytes())
    };

    // Not multipart at all, no boundary, garbage after the boundary.
    for (ct, body) in [
        (
            "multipart/form-data; boundary=xyz",
            b"this is not multipart at all".to_vec(),
        ),
        (
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nContent-Disposition: form-data; name=\"bench_yaml\"; filename=\"b.yaml\"\r\n\r\nunterminated"
                .to_vec(),
        ),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\n\r\n\r\n--xyz--".to_vec()),
        ("multipart/form-data", b"--xyz\r\n".to_vec()),
        ("application/json", b"{}".to_vec()),
        ("text/plain", b"hello".to_vec()),
    ] {
        let r = multipart(&agent, ct, &body);
        assert_eq!(r.status, 400, "{ct}: {}", r.text());
        assert!(
            r.content_type.starts_with("application/json"),
            "{ct}: not JSON: {} {}",
            r.content_type,
            r.text()
        );
        r.expect_error(400);
    }
    let r = agent.request("POST", "/v1/runs", Auth::Token, None, Some(b"x"));
    assert_eq!(r.status, 400, "{}", r.text());
    r.expect_error(400);

    // Missing files, missing artifact without skip_flash, bad booleans.
    let cases: Vec<(Multipart, &str)> = vec![
        (
            Multipart::new()
                .file("suite_yaml", "suite.yaml", suite.as_bytes())
                .field("skip_flash", "true"),
            "missing bench_yaml",
        ),
        (
            Multipart::new()
                .file("bench_yaml", "bench.yaml", bench.as_bytes())
                .field("skip_flash", "true"),
            "missing suite_yaml",
        ),
        (flashing(), "no artifact for a flashing suite"),
        (ok().field("skip_flash", "maybe"), "bad bool"),
        (flashing().field("skip_flash", "false"), "skip_flash=false"),
    ];
    for (m, what) in cases {
        let (ct, body) = m.finish();
        let r = multipart(&agent, &ct, &body);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        r.expect_error(400);
    }
    let (ct, body) = flashing().finish();
    assert_eq!(
        multipart(&agent, &ct, &body).expect_error(400),
        "artifact is required unless skip_flash=true (the suite has a flash step)"
    );

    // Wrong suffixes and unsafe names.
    for (part, name) in [
        ("bench_yaml", "bench.txt"),
        ("suite_yaml", "suite.json"),
        ("bench_yaml", ".."),
        ("bench_yaml", "../bench.yaml"),
        ("suite_yaml", "a/suite.yaml"),
        ("suite_yaml", "/etc/suite.yaml"),
        ("bench_yaml", "a\\bench.yaml"),
        ("bench_yaml", ""),
        ("artifact", "fw.txt"),
        ("artifact", "../fw.bin"),
        ("artifact", "..bin"),
    ] {
        let mut m = Multipart::new();
        for (p, default) in [("bench_yaml", "bench.yaml"), ("suite_yaml", "suite.yaml")] {
            let n = if p == part { name } else { default };
            let data = if p == "bench_yaml" { &bench } else { &suite };
            m = m.file(p, n, data.as_bytes());
        }
        if part == "artifact" {
            m = m.file("artifact", name, b"\x7fELF");
        } else {
            m = m.field("skip_flash", "true");
        }
        let (ct, body) = m.finish();
        let r = multipart(&agent, &ct, &body);
        assert_eq!(r.status, 400, "{part} named {name:?}: {}", r.text());
        r.expect_error(400);
    }
    // NUL in a file name (raw bytes in the part header).
    let mut body = Vec::new();
    body.extend_from_slice(b"--b0\r\nContent-Disposition: form-data; name=\"bench_yaml\"; filename=\"a\0.yaml\"\r\n\r\n");
    body.extend_from_slice(bench.as_bytes());
    body.extend_from_slice(b"\r\n--b0--\r\n");
    let r = multipart(&agent, "multipart/form-data; boundary=b0", &body);
    assert_eq!(r.status, 400, "{}", r.text());
    r.expect_error(400);

    // Oversized suite (limit 1000 bytes): 413, nothing left on disk.
    let big = format!("{suite}# {}\n", "x".repeat(1000));
    let (ct, body) = Multipart::new()
        .file("bench_yaml", "bench.yaml", bench.as_bytes())
        .file("suite_yaml", "suite.yaml", big.as_bytes())
        .field("skip_flash", "true")
        .finish();
    multipart(&agent, &ct, &body).expect_error(413);

    assert!(agent.run_dirs().is_empty(), "{:?}", agent.run_dirs());

    // The same parts within limits are accepted; unknown parts are ignored.
    let (ct, body) = ok()
        .field("skip_flash", "true")
        .field("comment", "ignored")
        .finish();
    let r = multipart(&agent, &ct, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    assert_eq!(agent.run_dirs(), vec![id.clone()]);
    assert_eq!(agent.wait_finished(&id)["status"], "done");
}

/// Base64 artifacts over the limit, below and above the whole-request limit: 413 with the
/// JSON body (never 400, never a reset without an answer).
#[test]
fn oversized_json_artifact_is_413() {
    let lab = Lab::new();
    let agent = registered(&lab);
    let suite = serde_json::to_string(&common::sleep_suite(1)).unwrap();
    for decoded in [1_000_002u64, 1_200_000, 3_000_000, 30_000_000] {
        let prefix = format!(
            "{{\"bench_id\":\"m1\",\"suite_yaml\":{suite},\"artifact_filename\":\"fw.bin\",\"artifact_base64\":\""
        );
        let s = common::stream_request(
            agent.addr,
            "/v1/runs/json",
            "application/json",
            prefix.into_bytes(),
            b'A',
            decoded.div_ceil(3) * 4,
            b"\"}".to_vec(),
        );
        assert_eq!(
            s.status,
            Some(413),
            "{decoded} bytes: {}",
            String::from_utf8_lossy(&s.answer)
        );
        assert!(s.json()["error"].is_string());
    }
    assert!(agent.run_dirs().is_empty(), "{:?}", agent.run_dirs());
}

#[test]
fn state_conflicts_are_409() {
    let lab = Lab::new();
    let agent = registered(&lab);
    let long = agent.submit("m1", &common::sleep_suite(30_000));
    agent.wait_run(&long, Duration::from_secs(30), |v| v["status"] == "running");
    let queued = agent.submit("m1", &common::sleep_suite(1));
    assert_eq!(agent.run(&queued)["status"], "queued");

    let r = agent.get(&format!("/v1/runs/{queued}/artifacts.zip"));
    assert_eq!(
        r.expect_error(409),
        "run not finished: current status is 'queued'"
    );
    let r = agent.get(&format!("/v1/runs/{long}/artifacts.zip"));
    assert_eq!(
        r.expect_error(409),
        "run not finished: current status is 'running'"
    );
    // The bench is busy: no health refresh while the run holds it.
    let r = agent.post("/v1/benches/m1/health/refresh");
    assert_eq!(
        r.expect_error(409),
        format!("bench is busy with run {long}")
    );
    let b = agent.get_json("/v1/benches/m1");
    assert_eq!(b["status"], "busy");
    assert_eq!(b["current_run_id"], long.as_str());

    // Cancel the queued run: it never starts; cancelling again is a conflict.
    let r = agent.post(&format!("/v1/runs/{queued}/cancel"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["status"].clone(), r.json()["cancelled"].clone()),
        (serde_json::json!("failed"), serde_json::json!(true))
    );
    let r = agent.post(&format!("/v1/runs/{queued}/cancel"));
    assert_eq!(
        r.expect_error(409),
        "run already finished: current status is 'cancelled'"
    );
    let events = agent.events(&queued);
    assert!(events.iter().all(|e| e["event_type"] != "run.started"));

    // Cancel the running one, then cancelling it again is a conflict too.
    assert_eq!(agent.post(&format!("/v1/runs/{long}/cancel")).status, 200);
    let v = agent.wait_finished(&long);
    assert_eq!(
        (v["status"].as_str(), v["cancelled"].as_bool()),
        (Some("failed"), Some(true)),
        "{v}"
    );
    agent
        .post(&format!("/v1/runs/{long}/cancel"))
        .expect_error(409);
    // A finished run's artifacts are downloadable.
    let r = agent.get(&format!("/v1/runs/{long}/artifacts.zip"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type, "application/zip");
}

#[test]
fn invalid_suite_is_refused_with_located_diagnostics_and_not_queued() {
    let lab = Lab::new();
    let agent = registered(&lab);
    let submit = |suite: &str| {
        agent.post_json(
            "/v1/runs/json",
            &json!({"bench_id": "m1", "suite_yaml": suite, "skip_flash": true}),
        )
    };
    let r = submit(
        "version: 1\nsuite:\n  name: broken\ntests:\n  - name: t\n    steps: [ {sleep_ms: 1\n",
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap().to_string();
    // Located in the file the client sent, not where the agent keeps it.
    assert!(error.contains("suite.yaml:7:1: invalid YAML"), "{error}");
    assert!(
        !error.contains(&lab.work_dir().display().to_string()),
        "{error}"
    );
    // A suite that parses but names an unknown node is refused the same way.
    let r = submit(&common::suite(
        "unknown node",
        "  - name: t\n    steps:\n      - gpio_set: {node: ghost, line: led, value: true}\n",
    ));
    assert_eq!(r.status, 422, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("suite.yaml:") && error.contains("unknown node `ghost`"),
        "{error}"
    );
    // Neither was queued, and neither left a run directory behind.
    assert_eq!(
        agent.get_json("/v1/runs")["runs"],
        json!([]),
        "refused runs are not listed"
    );
    let id = agent.submit("m1", &common::sleep_suite(1));
    assert_eq!(agent.wait_finished(&id)["status"], "done");
}

/// Every error the API gives is JSON with `error` and `detail`, including the ones the
/// framework produces (bad query strings, bad path encoding, unknown routes, wrong methods).
#[test]
fn every_error_body_is_json() {
    let lab = Lab::new();
    let agent = registered(&lab);
    let id = agent.submit("m1", &common::sleep_suite(1));
    agent.wait_finished(&id);
    for (method, path, status) in [
        ("GET", format!("/v1/runs/{id}/events?after=abc"), 400),
        ("GET", format!("/v1/runs/{id}/events?after=-1"), 400),
        ("GET", format!("/v1/runs/{id}/events/stream?after=x"), 400),
        ("GET", "/v1/runs?limit=abc".to_string(), 400),
        (
            "GET",
            "/v1/benches/m1/health?include_report=maybe".to_string(),
            400,
        ),
        ("GET", "/v1/runs/%FF%FE".to_string(), 400),
        ("GET", "/v1/nope".to_string(), 404),
        ("DELETE", format!("/v1/runs/{id}"), 405),
        ("GET", "/v1/runs/json".to_string(), 405),
        ("PUT", "/v1/gpio/set".to_string(), 405),
    ] {
        let r = agent.request(method, &path, Auth::Token, None, None);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert!(
            r.content_type.starts_with("application/json"),
            "{method} {path}: {status} with {:?}: {:?}",
            r.content_type,
            r.text()
        );
        r.expect_error(status);
    }
}
