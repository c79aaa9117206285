//! Runs end to end against simulated hardware: lifecycle, events (`?after=N`, SSE),
//! artifacts, failures, cancel, listing, metrics and the OpenAPI document.

use hilt_testkit::agent as common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Agent, Lab, first, last};
use serde_json::Value;

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect()
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

fn zip_entries(agent: &Agent, id: &str) -> zip::ZipArchive<std::io::Cursor<Vec<u8>>> {
    let r = agent.get(&format!("/v1/runs/{id}/artifacts.zip"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type, "application/zip");
    zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap()
}

fn zip_json(z: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str) -> Value {
    let mut text = String::new();
    z.by_name(name).unwrap().read_to_string(&mut text).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn registered_run_lifecycle_events_stream_and_artifacts() {
    let mut lab = Lab::new();
    let bench = lab.sim_bench("sim1.yaml", "dut1");
    let cfg = lab.agent_yaml(&[("sim1", &bench)], "");
    let agent = lab.start(Some(&cfg));

    let listed = agent.get_json("/v1/benches");
    let b = &listed[0];
    assert_eq!(b["bench_id"], "sim1");
    assert_eq!(b["agent_id"], "test-agent");
    assert_eq!(b["status"], "idle");
    assert_eq!(b["capabilities"]["transports"], serde_json::json!(["uart"]));
    assert_eq!(b["capabilities"]["has_gpio"], true);
    assert_eq!(b["capabilities"]["has_power"], true);
    assert_eq!(b["capabilities"]["has_measurements"], true);
    assert_eq!(b["health_status"], "healthy", "{b:#}");
    let h = agent.get_json("/v1/benches/sim1/health?include_report=true");
    assert_eq!(h["bench_id"], "sim1");
    assert!(h["report"].is_object(), "{h}");

    let id = agent.submit("sim1", &common::ping_suite("dut1", 300));
    // A stream opened while the run is young sees everything and ends by itself.
    let (v, events, live) = std::thread::scope(|sc| {
        let live = sc.spawn(|| agent.sse(&id, None));
        let v = agent.wait_finished(&id);
        (v, agent.events(&id), live.join().unwrap())
    });
    assert_eq!(v["status"], "done", "{v}");
    assert_eq!(v["exit_code"], 0);
    assert!(v["error"].is_null());
    assert_eq!(v["mode"], "registered");
    assert_eq!(v["bench_id"], "sim1");
    assert!(v["started_at"].is_string() && v["finished_at"].is_string());
    assert_eq!(v["current_test"], "answers ping");
    assert!(v["current_step"].is_null());

    let s = seqs(&events);
    assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    let k = kinds(&events);
    let order = [
        "run.queued",
        "run.preparing",
        "run.started",
        "test.started",
        "step.started",
        "run.finished",
    ];
    let mut at = 0;
    for kind in order {
        let pos = k
            .iter()
            .position(|x| x == kind)
            .unwrap_or_else(|| panic!("no {kind} in {k:?}"));
        assert!(pos >= at, "{kind} out of order in {k:?}");
        at = pos;
    }
    let fin = events.last().unwrap();
    assert_eq!(fin["event_type"], "run.finished");
    assert_eq!(fin["data"]["exit_code"], 0);
    assert!(ts(&events[0]) <= ts(fin));
    assert_eq!(first(&events, "run.queued")["data"]["bench_id"], "sim1");

    // ?after=N: only the later events.
    let n = s[s.len() / 2];
    let later = agent.get_json(&format!("/v1/runs/{id}/events?after={n}"));
    assert_eq!(later["status"], "done");
    let later = later["events"].as_array().unwrap().clone();
    assert_eq!(
        later,
        events
            .iter()
            .filter(|e| e["seq"].as_u64().unwrap() > n)
            .cloned()
            .collect::<Vec<_>>()
    );
    let none = agent.get_json(&format!("/v1/runs/{id}/events?after={}", s.last().unwrap()));
    assert!(none["events"].as_array().unwrap().is_empty());

    // SSE: the live stream and one opened afterwards carry the same events.
    assert_eq!(live, events, "live stream != GET events");
    assert_eq!(agent.sse(&id, None), events);
    assert_eq!(agent.sse(&id, Some(n)), later);

    // artifacts.zip: results.json at the root.
    let mut z = zip_entries(&agent, &id);
    let names: Vec<String> = z.file_names().map(|n| n.unwrap().into_owned()).collect();
    assert!(names.iter().any(|n| n == "results.json"), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with('/') && !n.contains(".."))
    );
    let results = zip_json(&mut z, "results.json");
    assert_eq!(results["status"], "passed", "{results:#}");

    // Listing.
    let done = agent.get_json("/v1/runs?state=done");
    let ids: Vec<&str> = done["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);
    assert!(
        agent.get_json("/v1/runs?state=failed")["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        agent.get_json("/v1/runs?bench_id=sim1")["runs"][0]["run_id"],
        id.as_str()
    );
    assert!(
        agent.get_json("/v1/runs?limit=0")["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(agent.get_json("/v1/benches/sim1")["status"], "idle");
}

fn ts(e: &Value) -> jiff::Timestamp {
    common::ts(e)
}

#[test]
fn uploaded_run_completes() {
    let mut lab = Lab::new();
    let bench = std::fs::read_to_string(lab.sim_bench("up.yaml", "dutu")).unwrap();
    let agent = lab.start(None);
    let id = agent.upload(&bench, &common::ping_suite("dutu", 0));
    let v = agent.wait_finished(&id);
    assert_eq!(v["status"], "done", "{v}");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["mode"], "uploaded");
    assert!(v["bench_id"].is_null());
    let listed = agent.get_json("/v1/runs?bench_id=__uploaded__");
    assert_eq!(listed["runs"][0]["run_id"], id.as_str());
    let dir = agent.work_dir.join("runs").join(&id);
    assert_eq!(
        std::fs::read_to_string(dir.join("bench.yaml")).unwrap(),
        bench
    );
    let mut z = zip_entries(&agent, &id);
    assert_eq!(zip_json(&mut z, "results.json")["status"], "passed");
}

#[test]
fn failing_suite_fails_with_the_first_failure() {
    let mut lab = Lab::new();
    let bench = lab.sim_bench("sim1.yaml", "dutf");
    let cfg = lab.agent_yaml(&[("sim1", &bench)], "");
    let agent = lab.start(Some(&cfg));
    let suite = common::suite(
        "failing",
        "  - name: answers ping\n    steps:\n      \
         - send_uart: {node: dutf, transport: console, data: \"ping\\n\"}\n      \
         - expect_uart: {node: dutf, transport: console, contains: \"pong\"}\n  \
         - name: says something it never says\n    steps:\n      \
         - expect_uart: {node: dutf, transport: console, contains: \"no such text\", within_ms: 200}\n",
    );
    let id = agent.submit("sim1", &suite);
    let v = agent.wait_finished(&id);
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["exit_code"], 1, "{v}");
    let mut z = zip_entries(&agent, &id);
    let results = zip_json(&mut z, "results.json");
    let f = &results["failure"];
    let expected = format!(
        "{}: {}",
        f["title"].as_str().unwrap(),
        f["message"].as_str().unwrap()
    );
    assert_eq!(v["error"], expected.as_str(), "{results:#}");
    assert_eq!(v["failure"]["title"], f["title"]);
    let events = agent.events(&id);
    let fin = events.last().unwrap();
    assert_eq!(fin["event_type"], "run.failed", "{fin}");
    assert_eq!(fin["data"]["exit_code"], 1);
    assert!(kinds(&events).contains(&"step.failed".to_string()));
    assert_eq!(
        agent.get_json("/v1/runs?state=failed")["runs"][0]["run_id"],
        id.as_str()
    );
}

#[test]
fn cancelling_a_running_run_is_quick() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));
    let id = agent.submit("m1", &common::sleep_suite(30_000));
    agent.wait_run(&id, Duration::from_secs(30), |v| {
        v["status"] == "running" && v["current_step"] == "sleep_ms"
    });
    let t = Instant::now();
    let r = agent.post(&format!("/v1/runs/{id}/cancel"));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = agent.wait_finished(&id);
    let took = t.elapsed();
    // Reported as `failed` with `cancelled: true`: BenchCI clients wait for done/failed.
    assert_eq!(
        (v["status"].as_str(), v["cancelled"].as_bool()),
        (Some("failed"), Some(true)),
        "{v}"
    );
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    assert!(v["error"].is_string());
    let events = agent.events(&id);
    assert_eq!(
        last(&events, "run.cancelled")["seq"],
        events.last().unwrap()["seq"]
    );
    assert!(
        agent
            .metrics()
            .contains("hilt_agent_runs_finished_total{state=\"cancelled\"} 1")
    );
    // The bench is free again: the next run goes through.
    let next = agent.submit("m1", &common::sleep_suite(1));
    assert_eq!(agent.wait_finished(&next)["status"], "done");
}

#[test]
fn metrics_count_and_openapi_describes_the_api() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));
    let ok = agent.submit("m1", &common::sleep_suite(1));
    // Valid, but the button is never pressed: the test fails and so does the run.
    let bad = agent.submit(
        "m1",
        &common::suite(
            "bad",
            "  - name: t\n    steps:\n      - gpio_expect: {node: m1, line: button, value: true, within_ms: 20}\n",
        ),
    );
    assert_eq!(agent.wait_finished(&ok)["status"], "done");
    assert_eq!(agent.wait_finished(&bad)["status"], "failed");
    let m = agent.metrics();
    for line in [
        "hilt_agent_runs_submitted_total 2",
        "hilt_agent_runs_finished_total{state=\"done\"} 1",
        "hilt_agent_runs_finished_total{state=\"failed\"} 1",
        "hilt_agent_runs_finished_total{state=\"cancelled\"} 0",
        "hilt_agent_queue_depth 0",
        "hilt_agent_active_runs 0",
    ] {
        assert!(m.lines().any(|l| l == line), "no `{line}` in\n{m}");
    }
    let requests: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("hilt_agent_http_requests_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(requests >= 4, "{m}");

    let doc = agent.get_json("/openapi.json");
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/health",
        "/v1/benches",
        "/v1/runs",
        "/v1/runs/json",
        "/v1/runs/{run_id}",
        "/v1/runs/{run_id}/events",
        "/v1/runs/{run_id}/cancel",
        "/v1/runs/{run_id}/artifacts.zip",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    assert!(paths["/v1/runs"].get("post").is_some());
    assert!(paths["/v1/runs"].get("get").is_some());
}

/// A client that polls until the status is terminal must find the final event in the same
/// answer (the status must not become terminal before the final event is recorded).
#[test]
fn terminal_status_comes_with_its_final_event() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));
    for _ in 0..15 {
        let id = agent.submit("m1", &common::sleep_suite(1));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = agent.get_json(&format!("/v1/runs/{id}/events"));
            if v["status"] == "done" {
                let events = v["events"].as_array().unwrap();
                let fin = events.last().unwrap();
                assert_eq!(
                    fin["event_type"], "run.finished",
                    "status is done but the last event is {fin}"
                );
                assert!(fin["data"].get("exit_code").is_some(), "{fin}");
                break;
            }
            assert!(Instant::now() < deadline);
        }
    }
}

/// De-chunks an HTTP/1.1 chunked body.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&b[..eol]).unwrap().trim();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap(), 16).unwrap();
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
    out
}

/// A stream whose client reads slowly must still deliver every event (the live channel may
/// overflow; the stream has to catch up from the log instead of skipping events).
#[test]
fn a_slow_stream_reader_misses_no_events() {
    use std::io::Write;
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));
    // Big events (every step event carries the test name) and many of them: more than
    // the socket buffers hold while the client does not read.
    let name = "n".repeat(3000);
    let steps = "      - sleep_ms: 0\n".repeat(2000);
    let suite = common::suite("many", &format!("  - name: {name}\n    steps:\n{steps}"));
    let id = agent.submit("m1", &suite);
    let mut s = std::net::TcpStream::connect(agent.addr).unwrap();
    write!(
        s,
        "GET /v1/runs/{id}/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        common::TOKEN
    )
    .unwrap();
    // Not reading while the run executes.
    let v = agent.wait_finished(&id);
    assert_eq!(v["status"], "done", "{v}");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(&raw[head_end + 4..])
    } else {
        raw[head_end + 4..].to_vec()
    };
    let streamed: Vec<u64> = String::from_utf8(body)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| {
            serde_json::from_str::<Value>(d.trim_start()).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let all = seqs(&agent.events(&id));
    assert!(all.len() > 4000, "{}", all.len());
    assert_eq!(
        streamed.len(),
        all.len(),
        "the stream skipped {} of {} events",
        all.len() - streamed.len(),
        all.len()
    );
    assert_eq!(streamed, all);
}
