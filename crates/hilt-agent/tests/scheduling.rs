//! Scheduling: runs on one bench never overlap and start in submission order; runs on
//! different benches execute in parallel; uploaded-bench runs are serialised among
//! themselves but not with registered benches. Proven from the events' timestamps.

use hilt_testkit::agent as common;

use common::{Agent, Lab, first, last, ts};

struct Span {
    id: String,
    start: jiff::Timestamp,
    end: jiff::Timestamp,
}

fn span(agent: &Agent, id: &str) -> Span {
    let v = agent.wait_finished(id);
    assert_eq!(v["status"], "done", "{v}");
    let events = agent.events(id);
    let fin = last(&events, "run.finished");
    assert!(fin["data"].get("exit_code").is_some(), "{fin}");
    Span {
        id: id.to_string(),
        start: ts(first(&events, "run.started")),
        end: ts(fin),
    }
}

/// Spans in submission order: each starts after the previous one finished.
fn assert_serial(what: &str, spans: &[Span]) {
    for w in spans.windows(2) {
        assert!(
            w[1].start >= w[0].end,
            "{what}: run {} started at {} before run {} finished at {}",
            w[1].id,
            w[1].start,
            w[0].id,
            w[0].end
        );
    }
}

fn overlap(a: &[Span], b: &[Span]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| x.start < y.end && y.start < x.end))
}

#[test]
fn one_run_per_bench_benches_in_parallel_uploads_serialised() {
    let mut lab = Lab::new();
    let a = lab.sim_bench("a.yaml", "duta");
    let b = lab.sim_bench("b.yaml", "dutb");
    let cfg = lab.agent_yaml(&[("bench-a", &a), ("bench-b", &b)], "");
    let agent = lab.start(Some(&cfg));
    let upload_bench = std::fs::read_to_string(lab.mock_bench("up.yaml", "upl")).unwrap();

    let (mut ra, mut rb, mut ru) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        ra.push(agent.submit("bench-a", &common::ping_suite("duta", 300)));
        rb.push(agent.submit("bench-b", &common::ping_suite("dutb", 300)));
        ru.push(agent.upload(&upload_bench, &common::sleep_suite(300)));
    }
    let health = agent.get_json("/health");
    assert!(health["active_runs"].as_u64().unwrap() <= 3, "{health}");

    let sa: Vec<Span> = ra.iter().map(|id| span(&agent, id)).collect();
    let sb: Vec<Span> = rb.iter().map(|id| span(&agent, id)).collect();
    let su: Vec<Span> = ru.iter().map(|id| span(&agent, id)).collect();
    assert_serial("bench-a", &sa);
    assert_serial("bench-b", &sb);
    assert_serial("uploaded", &su);
    assert!(
        overlap(&sa, &sb),
        "bench-a and bench-b never ran at the same time"
    );
    assert!(
        overlap(&su, &sa) || overlap(&su, &sb),
        "uploaded runs waited for registered benches"
    );
    // Everything is idle again.
    let benches = agent.get_json("/v1/benches");
    for b in benches.as_array().unwrap() {
        assert_eq!(b["status"], "idle", "{b}");
        assert!(b["current_run_id"].is_null());
    }
    let health = agent.get_json("/health");
    assert_eq!(health["queue_depth"], 0);
    assert_eq!(health["active_runs"], 0);
}

/// A queued run waits for its own bench only, even when it was submitted after runs on a
/// busy bench (no head-of-line blocking across benches).
#[test]
fn a_busy_bench_does_not_block_another() {
    let lab = Lab::new();
    let m1 = lab.mock_bench("m1.yaml", "m1");
    let m2 = lab.mock_bench("m2.yaml", "m2");
    let cfg = lab.agent_yaml(&[("m1", &m1), ("m2", &m2)], "");
    let agent = lab.start(Some(&cfg));
    let long = agent.submit("m1", &common::sleep_suite(30_000));
    let waiting = agent.submit("m1", &common::sleep_suite(1));
    let other = agent.submit("m2", &common::sleep_suite(1));
    assert_eq!(agent.wait_finished(&other)["status"], "done");
    assert_eq!(agent.run(&waiting)["status"], "queued");
    assert_eq!(agent.run(&long)["status"], "running");
    assert_eq!(agent.run(&waiting)["queue_depth"], 1);
    assert_eq!(agent.post(&format!("/v1/runs/{long}/cancel")).status, 200);
    assert_eq!(agent.wait_finished(&waiting)["status"], "done");
}

/// Two registered benches that share a physical resource (here the same mock GPIO line: same
/// node name and channel, so the same lock key `gpio:mock:shared:0`). Runs on them must
/// wait for each other, as they would on BenchCI's single worker, instead of the second
/// failing with RESOURCE_LOCKED because the agent started it in parallel.
#[test]
fn benches_sharing_a_resource_wait_for_each_other() {
    let lab = Lab::new();
    let a = lab.mock_bench("a.yaml", "shared");
    let b = lab.path("b.yaml");
    std::fs::copy(&a, &b).unwrap();
    let cfg = lab.agent_yaml(&[("bench-a", &a), ("bench-b", &b)], "");
    let agent = lab.start(Some(&cfg));
    let suite = common::suite(
        "uses the line",
        "  - name: t\n    steps:\n      - gpio_set: {node: shared, line: led, value: true}\n      - sleep_ms: 300\n",
    );
    let ra = agent.submit("bench-a", &suite);
    let rb = agent.submit("bench-b", &suite);
    let sa = span(&agent, &ra);
    let sb = span(&agent, &rb);
    assert_serial("shared resource", &[sa, sb]);
}
