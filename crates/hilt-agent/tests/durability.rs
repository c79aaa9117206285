//! Durability across an in-process "crash": the agent's tasks are dropped at once while one
//! run executes and others wait; a new agent on the same work dir re-queues the waiting runs
//! (in order) and fails the interrupted one with a clear reason, its partial results kept.
//! (Killing a real agent process with SIGKILL is covered by the process-level tests.)

use hilt_testkit::agent as common;

use std::time::Duration;

use common::{Agent, Lab, first, last, ts};
use serde_json::Value;

fn on_disk(agent_work: &std::path::Path, id: &str) -> Value {
    let text = std::fs::read_to_string(agent_work.join("runs").join(id).join("record.json"))
        .unwrap_or_else(|e| panic!("record of {id}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn queued_runs_survive_a_crash_and_the_interrupted_run_fails() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let upload_bench = std::fs::read_to_string(lab.mock_bench("up.yaml", "up")).unwrap();
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");

    // The first agent: one run executing on each lock (m1 and the uploaded pseudo-bench),
    // runs queued behind them.
    let first_agent = Agent::start(lab.settings(Some(&cfg), "locks-1"));
    let long = first_agent.submit("m1", &common::sleep_suite(30_000));
    let long_up = first_agent.upload(&upload_bench, &common::sleep_suite(30_000));
    for id in [&long, &long_up] {
        first_agent.wait_run(id, Duration::from_secs(30), |v| {
            v["status"] == "running" && v["current_step"] == "sleep_ms"
        });
    }
    let q1 = first_agent.submit("m1", &common::sleep_suite(50));
    let q2 = first_agent.submit("m1", &common::sleep_suite(50));
    let qu = first_agent.upload(&upload_bench, &common::sleep_suite(50));
    for id in [&q1, &q2, &qu] {
        assert_eq!(first_agent.run(id)["status"], "queued");
    }
    let work = first_agent.work_dir.clone();
    first_agent.crash();

    // What the crash left on disk.
    for id in [&q1, &q2, &qu] {
        assert_eq!(on_disk(&work, id)["status"], "queued", "{id}");
    }
    for id in [&long, &long_up] {
        assert_eq!(on_disk(&work, id)["status"], "running", "{id}");
    }

    // A new agent on the same work dir (fresh lock dir: the crashed agent's detached run
    // threads still exist in this process, a real crash would have released everything).
    let restarted_at = jiff::Timestamp::now();
    let agent = Agent::start(lab.settings(Some(&cfg), "locks-2"));

    for id in [&long, &long_up] {
        let v = agent.run(id);
        assert_eq!(v["status"], "failed", "{v}");
        // A run lost to a restart has exit code -1 (as a lost cloud run), not null.
        assert_eq!(v["exit_code"], -1, "{v}");
        assert_eq!(v["failure"]["source"], "agent_cloud", "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("Agent restarted"),
            "{v}"
        );
        assert!(v["finished_at"].is_string());
        let events = agent.events(id);
        let fin = events.last().unwrap();
        assert_eq!(fin["event_type"], "run.failed", "{fin}");
        assert_eq!(fin["data"]["failure"]["source"], "agent_cloud");
        assert_eq!(fin["data"]["exit_code"], -1, "{fin}");
        common::assert_one_start_one_end(&events);
        // The events from before the crash are still there, numbered on.
        assert_eq!(events[0]["event_type"], "run.queued");
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        // Partial results are downloadable.
        let r = agent.get(&format!("/v1/runs/{id}/artifacts.zip"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.content_type, "application/zip");
        let z = zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap();
        assert!(!z.is_empty());
        // Cancelling it is a conflict now.
        assert_eq!(agent.post(&format!("/v1/runs/{id}/cancel")).status, 409);
    }

    // The queued runs complete, in submission order, after the restart.
    let mut starts = Vec::new();
    for id in [&q1, &q2, &qu] {
        let v = agent.wait_finished(id);
        assert_eq!(v["status"], "done", "{v}");
        assert_eq!(v["exit_code"], 0);
        let events = agent.events(id);
        let queued = first(&events, "run.queued");
        assert!(ts(queued) < restarted_at, "{queued}");
        let started = ts(first(&events, "run.started"));
        assert!(started > restarted_at);
        assert_eq!(last(&events, "run.finished")["data"]["exit_code"], 0);
        starts.push(started);
    }
    assert!(starts[0] <= starts[1], "q1 must start before q2");

    // Listing knows every run; a new run gets a fresh id and sorts first (newest).
    let fresh = agent.submit("m1", &common::sleep_suite(1));
    assert_eq!(agent.wait_finished(&fresh)["status"], "done");
    let runs = agent.get_json("/v1/runs");
    let ids: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert_eq!(ids[0], fresh);
    for id in [&long, &long_up, &q1, &q2, &qu] {
        assert!(ids.contains(&id.as_str()), "{id} not listed: {ids:?}");
    }
    let failed = agent.get_json("/v1/runs?state=failed");
    assert_eq!(failed["runs"].as_array().unwrap().len(), 2, "{failed}");
}

/// A restart with nothing running or queued keeps finished runs as they were.
#[test]
fn finished_runs_are_kept_across_a_restart() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let (id, before) = {
        let agent = Agent::start(lab.settings(Some(&cfg), "locks"));
        let id = agent.submit("m1", &common::sleep_suite(1));
        let v = agent.wait_finished(&id);
        let events = agent.events(&id);
        (id, (v, events))
    };
    let agent = Agent::start(lab.settings(Some(&cfg), "locks"));
    let v = agent.run(&id);
    for key in [
        "status",
        "exit_code",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ] {
        assert_eq!(v[key], before.0[key], "{key}");
    }
    assert_eq!(agent.events(&id), before.1);
    assert_eq!(agent.sse(&id, None), before.1);
    assert_eq!(
        agent.get(&format!("/v1/runs/{id}/artifacts.zip")).status,
        200
    );
}
