//! The fleet and scheduling commands through the real binaries: `hilt server`, and `hilt
//! benches list|show`, `hilt agents list`, `hilt runs submit --tags … --wait`, `hilt runs
//! show|cancel` with HILT_SERVER and HILT_TOKEN. The cloud agent is this test speaking the
//! agent calls over HTTP (one healthy bench, one failing), so the run's outcome is chosen
//! here and the exit codes can be checked.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::server::{Proc, agent_token, client_cmd as client, hilt};

fn start_server(data: &Path) -> (Proc, String) {
    let args = ["--bind", "127.0.0.1:0", "--long-poll-s", "2"];
    common::server::start_server_to(data, None, &args, Stdio::null())
}

fn run(c: &mut Command) -> (i32, String, String) {
    let o: Output = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The cloud agent's calls, as BenchCI's agent makes them.
struct Agent {
    url: String,
    token: String,
    http: ureq::Agent,
}

impl Agent {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("X-BenchCI-Agent-Machine-ID", "fleet-machine")
            .header("Content-Type", "application/json");
        let mut resp = match body {
            Some(b) => self.http.run(req.body(b.to_string()).unwrap()),
            None => self.http.run(req.body(()).unwrap()),
        }
        .unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The next assignment (run id, bench id), waiting up to `within`.
    fn next(&self, within: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let (status, v) = self.call("GET", "/v1/agents/assignments/next", None);
            assert_eq!(status, 200, "{v}");
            if let Some(run) = v["assignment"]["run_id"].as_str() {
                let bench = v["assignment"]["bench_id"].as_str().unwrap_or_default();
                return Some((run.to_string(), bench.to_string()));
            }
        }
        None
    }

    fn event(&self, run: &str, kind: &str, message: &str) -> u16 {
        let e = json!({"events": [{"timestamp": "2026-01-01T00:00:00Z", "event_type": kind,
            "message": message, "data": {}}]});
        self.call("POST", &format!("/v1/agents/runs/{run}/events"), Some(e))
            .0
    }

    /// Uploads the results archive (multipart part `artifact_zip`).
    fn upload(&self, run: &str, zip: &[u8]) -> u16 {
        let boundary = "fleetboundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"artifact_zip\"; \
             filename=\"artifacts.zip\"\r\nContent-Type: application/zip\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(zip);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}/v1/agents/runs/{run}/artifacts", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("X-BenchCI-Agent-Machine-ID", "fleet-machine")
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .unwrap();
        self.http.run(req).unwrap().status().as_u16()
    }

    fn complete(&self, run: &str, status: &str, exit_code: i32) -> u16 {
        self.call(
            "POST",
            &format!("/v1/agents/runs/{run}/complete"),
            Some(json!({"status": status, "exit_code": exit_code})),
        )
        .0
    }
}

const SUITE: &str = "version: 1\nsuite: {name: fleet}\ntests:\n  - name: t\n    steps:\n      \
                     - power_set: {resource: mains, outlet: dut, state: true}\n";

#[test]
fn fleet_commands_submit_by_tags_wait_and_cancel() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url) = start_server(&tmp.path().join("data"));
    let suite = tmp.path().join("suite.yaml");
    std::fs::write(&suite, SUITE).unwrap();
    let suite = suite.to_str().unwrap();

    let agent = Agent {
        url: url.clone(),
        token: agent_token(&url),
        http: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent(),
    };
    let failing = json!({"status": "failing", "summary": "1 failing required check",
        "failing_checks": [{"id": "resource.mains.power.start", "status": "fail",
            "severity": "critical", "required": true, "message": "relay board unreachable"}],
        "warning_checks": []});
    let (status, v) = agent.call(
        "POST",
        "/v1/agents/benches/sync",
        Some(json!({"benches": [
            {"bench_id": "good", "name": "Good rig", "status": "idle", "tags": ["stm32"],
             "health_status": "healthy"},
            {"bench_id": "bad", "name": "Bad rig", "status": "idle", "tags": ["stm32"],
             "health_status": "failing", "health": failing},
        ]})),
    );
    assert_eq!(status, 200, "{v}");

    // The fleet as users see it.
    let (code, out, err) = run(&mut client(&url, &["benches", "list"]));
    assert_eq!(code, 0, "{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {out}"))
            .to_string()
    };
    let (good, bad) = (line("good"), line("bad"));
    for (l, health) in [(&good, "healthy"), (&bad, "failing")] {
        assert!(
            l.contains(health) && l.contains("stm32") && l.contains("(online)"),
            "{out}"
        );
    }
    let (code, out, err) = run(&mut client(&url, &["benches", "show", "bad"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("relay board unreachable") && out.contains("resource:mains"),
        "{out}"
    );
    assert!(
        out.contains("health history") && out.contains("failing"),
        "{out}"
    );
    let (code, out, err) = run(&mut client(&url, &["agents", "list"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().nth(1).is_some_and(|l| l.ends_with("online")),
        "{out}"
    );

    // By tags, waiting: only the healthy bench gets it; the run's exit code is the CLI's.
    let mut waiting = client(
        &url,
        &[
            "runs", "submit", "--tags", "stm32", "--suite", suite, "--wait",
        ],
    );
    let waiter = waiting
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (run_id, bench) = agent.next(Duration::from_secs(20)).expect("no assignment");
    assert_eq!(bench, "good");
    assert_eq!(
        agent.event(&run_id, "run.started", "started on the good rig"),
        200
    );
    std::thread::sleep(Duration::from_millis(600));
    let zip = b"PK\x05\x06 results of the good rig".to_vec();
    assert_eq!(agent.upload(&run_id, &zip), 200);
    assert_eq!(agent.complete(&run_id, "failed", 1), 200);
    let o = waiter.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("started on the good rig"), "{err}");
    let (code, _, err) = run(&mut client(&url, &["runs", "events", &run_id]));
    assert_eq!(code, 0, "{err}");
    let dest = tmp.path().join("got.zip");
    let (code, _, err) = run(&mut client(
        &url,
        &["runs", "download", &run_id, "-o", dest.to_str().unwrap()],
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), zip);

    // Pinned to the failing bench: queued with its reason, then cancelled.
    let (code, out, err) = run(&mut client(
        &url,
        &["runs", "submit", "--bench-id", "bad", "--suite", suite],
    ));
    assert_eq!(code, 0, "{err}");
    let pinned = out.trim().to_string();
    let (code, out, _) = run(&mut client(&url, &["runs", "show", &pinned]));
    assert_eq!(code, 0);
    assert!(
        out.contains("queue: position 1: waiting: bench bad is failing"),
        "{out}"
    );
    let (code, out, err) = run(&mut client(&url, &["runs", "cancel", &pinned]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cancelled"), "{out}");
    let (_, out, _) = run(&mut client(&url, &["runs", "list"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with(&pinned) && l.contains("cancelled")),
        "{out}"
    );

    // Waiting on a run pinned to the failing bench: the CLI shows why, until it is cancelled.
    let mut waiting = client(
        &url,
        &[
            "runs",
            "submit",
            "--bench-id",
            "bad",
            "--suite",
            suite,
            "--wait",
        ],
    );
    let mut waiter = waiting
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(waiter.stderr.take().unwrap()).lines();
    let queued = lines.next().unwrap().unwrap();
    let id = queued
        .strip_prefix("run ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{queued}"))
        .to_string();
    let reason = lines.next().unwrap().unwrap();
    assert!(
        reason.contains("queued (position 1): waiting: bench bad is failing"),
        "{reason}"
    );
    let (code, _, err) = run(&mut client(&url, &["runs", "cancel", &id]));
    assert_eq!(code, 0, "{err}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(waiter.wait().unwrap().code(), Some(130), "{rest:?}");

    // Cancelled while running: the agent hears of it, the waiting CLI exits 130.
    let mut waiting = client(
        &url,
        &[
            "runs", "submit", "--tags", "stm32", "--suite", suite, "--wait",
        ],
    );
    let waiter = waiting
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (run_id, _) = agent.next(Duration::from_secs(20)).expect("no assignment");
    let (code, out, err) = run(&mut client(&url, &["runs", "cancel", &run_id]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cancel requested"), "{out}");
    let (_, hb) = agent.call("POST", "/v1/agents/heartbeat", Some(json!({})));
    assert_eq!(hb["cancel_run_ids"], json!([run_id]));
    assert_eq!(agent.event(&run_id, "step.started", "late"), 409);
    assert_eq!(agent.complete(&run_id, "failed", 1), 200);
    let o = waiter.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("cancelled"), "{err}");

    // A run no bench could take: exit 3 at once, saying why.
    let (code, _, err) = run(&mut client(
        &url,
        &[
            "runs", "submit", "--tags", "esp32", "--suite", suite, "--wait",
        ],
    ));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("no bench in this workspace has tags esp32"),
        "{err}"
    );

    // Clear errors.
    let (code, _, err) = run(hilt().args(["benches", "list"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("HILT_SERVER"), "{err}");
    let (code, _, err) = run(client(&url, &["agents", "list"]).env("HILT_TOKEN", "wrong"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    let (code, _, err) = run(&mut client(&url, &["runs", "cancel", "nope"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("run not found"), "{err}");
    let (code, _, err) = run(&mut client(&url, &["runs", "submit", "--suite", suite]));
    assert_eq!(code, 2, "{err}");
}
