//! What the cloud-agent tests check of a run on `hilt server`: a suite of a given length,
//! bounded waits, the agent's logs, the stored events (numbered 1..N once each) and that
//! none of the runner's own events is missing on the server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::server::server_get;

/// The stdout and stderr of the agent started as `id` under `dir` (`server::start_agent`).
pub fn agent_log(dir: &Path, id: &str) -> String {
    let w = dir.join(format!("agent-{id}"));
    format!(
        "agent {id} stdout:\n{}\nstderr:\n{}",
        std::fs::read_to_string(w.join("stdout.log")).unwrap_or_default(),
        std::fs::read_to_string(w.join("stderr.log")).unwrap_or_default()
    )
}

/// A suite: `ping` answered `pong`, then `pauses` sleeps of 400 ms each with a ping between
/// (a run of a few seconds with a steady stream of events).
pub fn suite(dir: &Path, name: &str, pauses: usize) -> PathBuf {
    let mut steps = String::from(
        "      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      \
         - expect_uart: {node: dut, transport: console, contains: \"pong\", within_ms: 2000}\n",
    );
    for _ in 0..pauses {
        steps.push_str(
            "      - sleep_ms: 400\n      \
             - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      \
             - expect_uart: {node: dut, transport: console, contains: \"pong\", within_ms: 2000}\n",
        );
    }
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &p,
        format!("version: 1\nsuite:\n  name: {name}\ntests:\n  - name: ping\n    steps:\n{steps}"),
    )
    .unwrap();
    p
}

/// Waits until `f` gives a value (bounded); `log` says what happened when it does not.
pub fn wait_for<T>(
    what: &str,
    secs: u64,
    log: &dyn Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: timed out\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bench `id` as `GET /v1/benches` lists it.
pub fn bench_row(url: &str, id: &str) -> Option<Value> {
    server_get(url, "/v1/benches")["benches"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["bench_id"] == id).cloned())
}

/// The stored events of a run: asserts they are numbered 1..N, each once.
pub fn events(url: &str, run: &str) -> Vec<Value> {
    let v = server_get(url, &format!("/v1/runs/{run}/events"));
    let events = v["events"].as_array().unwrap().clone();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let want: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(seqs, want, "event seqs are not 1..N");
    events
}

pub fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event_type"] == kind).count()
}

/// Every runner event the agent's run directory logged (but the runner's final event,
/// which the agent folds into its own) is on the server once, in the same order.
pub fn assert_nothing_lost(events: &[Value], runner_log: &Path) {
    let key = |e: &Value| {
        format!(
            "{} {} {}",
            e["event_type"].as_str().unwrap_or_default(),
            e["timestamp"].as_str().unwrap_or_default(),
            e["data"]
        )
    };
    let local: Vec<String> = std::fs::read_to_string(runner_log)
        .unwrap_or_else(|e| panic!("{}: {e}", runner_log.display()))
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| {
            !matches!(
                e["event_type"].as_str(),
                Some("run.finished" | "run.failed")
            )
        })
        .map(|e| key(&e))
        .collect();
    let remote: Vec<String> = events.iter().map(key).collect();
    let mut seen = std::collections::HashSet::new();
    for r in &remote {
        assert!(seen.insert(r.clone()), "event stored twice: {r}");
    }
    let on_server: Vec<&String> = remote.iter().filter(|r| local.contains(r)).collect();
    assert_eq!(
        on_server.len(),
        local.len(),
        "events lost: {:?}",
        local
            .iter()
            .filter(|l| !remote.contains(l))
            .collect::<Vec<_>>()
    );
    assert!(
        on_server.iter().zip(&local).all(|(a, b)| *a == b),
        "events out of order"
    );
}
