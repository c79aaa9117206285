//! The run table and its disk: one `run.started` and one final event per run (live, cancel,
//! restart), recovery from every crash window (record, log and results.json agree), damaged
//! records, retention, and what a stopping agent does with queued runs.

use hilt_testkit::agent as common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Agent, Lab, assert_one_start_one_end};

/// An agent that keeps every stored run (these fixtures are dated in the past).
fn start_keeping_all(lab: &Lab) -> Agent {
    let mut settings = lab.settings(None, "locks");
    settings.policy.max_age_days = Some(0);
    Agent::start(settings)
}
use hilt_agent::Control;
use hilt_agent::record::{AgentEvent, RunRecord, RunState};
use serde_json::{Value, json};

fn record(id: &str, seq: u64, status: RunState) -> RunRecord {
    RunRecord {
        run_id: id.into(),
        status,
        mode: "uploaded".into(),
        bench_id: None,
        lock_key: "__uploaded__".into(),
        exit_code: None,
        error: None,
        created_at: "2026-01-01T00:00:00.000000Z".into(),
        started_at: status
            .is_active()
            .then(|| "2026-01-01T00:00:01.000000Z".into()),
        finished_at: None,
        current_test: None,
        current_step: None,
        skip_flash: true,
        verbose: false,
        artifact: None,
        seq,
        failure: None,
        resource_keys: Vec::new(),
        damaged: None,
        notice: None,
    }
}

fn event(seq: u64, kind: &str, data: Value) -> AgentEvent {
    AgentEvent {
        seq,
        timestamp: "2026-01-01T00:00:01.000000Z".into(),
        event_type: kind.into(),
        message: None,
        data: data.as_object().cloned().unwrap_or_default(),
    }
}

/// Writes a run directory as an agent would have left it.
fn stored_run(work: &Path, rec: &RunRecord, events: &[AgentEvent]) -> PathBuf {
    let dir = work.join("runs").join(&rec.run_id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("record.json"),
        serde_json::to_vec_pretty(rec).unwrap(),
    )
    .unwrap();
    let mut log = String::new();
    for e in events {
        log.push_str(&serde_json::to_string(e).unwrap());
        log.push('\n');
    }
    std::fs::write(dir.join("events.jsonl"), log).unwrap();
    dir
}

fn started_events() -> Vec<AgentEvent> {
    vec![
        event(1, "run.queued", json!({})),
        event(2, "run.preparing", json!({})),
        event(3, "run.started", json!({"tests_total": 1})),
    ]
}

fn on_disk(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("record.json")).unwrap()).unwrap()
}

#[test]
fn every_run_logs_one_start_and_one_final_event() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));

    let passing = agent.submit("m1", &common::sleep_suite(10));
    // An uploaded bench that enables run_external: refused by the agent's policy before
    // the runner starts (the agent then logs the run's one run.started itself).
    let external = format!(
        "{}\nsafety:\n  external:\n    enabled: true\n    targets:\n      t:\n        work_root: /tmp\n        argv_prefix: [\"true\"]\n",
        std::fs::read_to_string(lab.mock_bench("ext.yaml", "ext")).unwrap()
    );
    let failing = agent.upload(&external, &common::sleep_suite(1));
    let running = agent.submit("m1", &common::sleep_suite(30_000));
    let queued = agent.submit("m1", &common::sleep_suite(10));
    agent.wait_finished(&passing);
    agent.wait_finished(&failing);
    agent.wait_run(&running, Duration::from_secs(30), |v| {
        v["current_step"] == "sleep_ms"
    });
    assert_eq!(agent.post(&format!("/v1/runs/{queued}/cancel")).status, 200);
    assert_eq!(
        agent.post(&format!("/v1/runs/{running}/cancel")).status,
        200
    );
    for id in [&passing, &failing, &running, &queued] {
        agent.wait_finished(id);
        let events = agent.events(id);
        assert_one_start_one_end(&events);
        let started = events
            .iter()
            .filter(|e| e["event_type"] == "run.started")
            .count();
        assert_eq!(started, usize::from(id != &queued), "{id}: {events:#?}");
    }
    // The runner's details are kept in the single final event.
    let fin = agent.events(&passing).pop().unwrap();
    assert_eq!(fin["event_type"], "run.finished");
    assert_eq!(fin["data"]["exit_code"], 0);
    assert_eq!(fin["data"]["status"], "passed", "{fin}");
    assert_eq!(fin["data"]["tests_total"], 1, "{fin}");
    let fin = agent.events(&failing).pop().unwrap();
    assert_eq!(fin["event_type"], "run.failed");
    assert!(fin["data"]["exit_code"].is_null(), "{fin}");
    assert!(
        fin["message"]
            .as_str()
            .is_some_and(|m| m.contains("refused by agent policy")),
        "{fin}"
    );
    // The runner's run.started (with details) is the one kept.
    let started = common::first(&agent.events(&passing), "run.started").clone();
    assert_eq!(started["data"]["tests_total"], 1, "{started}");
}

/// Cancels racing the end of each run (executing and queued alike): whoever the
/// dispatcher hears first wins, and every log still has one start (when the run left the
/// queue) and one final event, agreeing with the run's state.
#[test]
fn cancel_racing_the_end_of_a_run_leaves_one_final_event() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));

    let ids: Vec<String> = (0..12)
        .map(|i| agent.submit("m1", &common::sleep_suite(i % 4)))
        .collect();
    std::thread::scope(|s| {
        for (i, id) in ids.iter().enumerate() {
            let agent = &agent;
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(i as u64 * 3));
                let status = agent.post(&format!("/v1/runs/{id}/cancel")).status;
                assert!(
                    status == 200 || status == 409,
                    "{id}: cancel answered {status}"
                );
            });
        }
    });
    for id in &ids {
        let run = agent.wait_finished(id);
        let events = agent.events(id);
        assert_one_start_one_end(&events);
        let last = events.last().unwrap();
        let expected = match (run["status"].as_str(), run["cancelled"].as_bool()) {
            (Some("done"), _) => "run.finished",
            (_, Some(true)) => "run.cancelled",
            _ => "run.failed",
        };
        assert_eq!(last["event_type"], expected, "{id}: {run} {events:#?}");
        let started = events
            .iter()
            .filter(|e| e["event_type"] == "run.started")
            .count();
        let left_queue = events.iter().any(|e| e["event_type"] == "run.preparing");
        assert_eq!(started, usize::from(left_queue), "{id}: {events:#?}");
        let dir = agent.work_dir.join("runs").join(id);
        assert_eq!(on_disk(&dir)["status"], run_state_name(&run), "{id}");
    }
}

fn run_state_name(run: &Value) -> &'static str {
    match (run["status"].as_str(), run["cancelled"].as_bool()) {
        (Some("done"), _) => "done",
        (_, Some(true)) => "cancelled",
        _ => "failed",
    }
}

#[test]
fn recovery_makes_record_log_and_results_agree() {
    let lab = Lab::new();
    let work = lab.work_dir();

    // 1. An older agent saved `done` and died before appending the final event.
    let mut done = record("aaaaaaaaaaa1", 1, RunState::Done);
    done.exit_code = Some(0);
    done.finished_at = Some("2026-01-01T00:00:02.000000Z".into());
    let done_dir = stored_run(&work, &done, &started_events());

    // 2. Killed after the final event was appended, before the record was saved.
    let mut evs = started_events();
    evs.push(event(4, "run.uploading_artifacts", json!({})));
    let mut fin = event(5, "run.finished", json!({"exit_code": 0, "failure": null}));
    fin.timestamp = "2026-01-01T00:00:03.000000Z".into();
    evs.push(fin);
    let logged_dir = stored_run(
        &work,
        &record("aaaaaaaaaaa2", 2, RunState::UploadingArtifacts),
        &evs,
    );

    // 3. Killed right after the runner's run.finished: results.json says passed.
    let results_dir = stored_run(
        &work,
        &record("aaaaaaaaaaa3", 3, RunState::Running),
        &started_events(),
    );
    let results = minimal_results("passed");
    std::fs::create_dir_all(results_dir.join("results")).unwrap();
    std::fs::write(results_dir.join("results").join("results.json"), results).unwrap();

    // 4. Killed mid-run, nothing to go on: lost.
    let lost_dir = stored_run(
        &work,
        &record("aaaaaaaaaaa4", 4, RunState::Preparing),
        &[
            event(1, "run.queued", json!({})),
            event(2, "run.preparing", json!({})),
        ],
    );

    // 5. Killed after the final event was made durable, before record.json was written
    // (the agent writes it after publishing): the record still says running; the final
    // event wins over the runner's results.json.
    let mut evs = started_events();
    evs.push(event(4, "run.uploading_artifacts", json!({})));
    evs.push(event(
        5,
        "run.failed",
        json!({"exit_code": 1, "failure": null}),
    ));
    let durable_dir = stored_run(&work, &record("aaaaaaaaaaa5", 5, RunState::Running), &evs);
    std::fs::create_dir_all(durable_dir.join("results")).unwrap();
    std::fs::write(
        durable_dir.join("results").join("results.json"),
        minimal_results("passed"),
    )
    .unwrap();

    let agent = start_keeping_all(&lab);
    let expect = [
        (&done_dir, "aaaaaaaaaaa1", "done", json!(0), "run.finished"),
        (
            &logged_dir,
            "aaaaaaaaaaa2",
            "done",
            json!(0),
            "run.finished",
        ),
        (
            &results_dir,
            "aaaaaaaaaaa3",
            "done",
            json!(0),
            "run.finished",
        ),
        (&lost_dir, "aaaaaaaaaaa4", "failed", json!(-1), "run.failed"),
        (
            &durable_dir,
            "aaaaaaaaaaa5",
            "failed",
            json!(1),
            "run.failed",
        ),
    ];
    for (dir, id, status, code, kind) in expect {
        let v = agent.run(id);
        assert_eq!(v["status"], status, "{id}: {v}");
        assert_eq!(v["exit_code"], code, "{id}: {v}");
        let events = agent.events(id);
        assert_one_start_one_end(&events);
        assert_eq!(events.last().unwrap()["event_type"], kind, "{id}");
        assert_eq!(events.last().unwrap()["data"]["exit_code"], code, "{id}");
        // What is on disk agrees with what the API says.
        let rec = on_disk(dir);
        assert_eq!(rec["status"], status, "{id}: {rec}");
        assert_eq!(rec["exit_code"], code, "{id}: {rec}");
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{id}: {seqs:?}");
    }
    assert_eq!(
        on_disk(&logged_dir)["finished_at"],
        "2026-01-01T00:00:03.000000Z"
    );

    // A second restart changes nothing (reconciliation is idempotent).
    let before: Vec<usize> = [
        "aaaaaaaaaaa1",
        "aaaaaaaaaaa2",
        "aaaaaaaaaaa3",
        "aaaaaaaaaaa4",
        "aaaaaaaaaaa5",
    ]
    .iter()
    .map(|id| agent.events(id).len())
    .collect();
    drop(agent);
    let agent = start_keeping_all(&lab);
    let after: Vec<usize> = [
        "aaaaaaaaaaa1",
        "aaaaaaaaaaa2",
        "aaaaaaaaaaa3",
        "aaaaaaaaaaa4",
        "aaaaaaaaaaa5",
    ]
    .iter()
    .map(|id| agent.events(id).len())
    .collect();
    assert_eq!(before, after);
}

/// A results.json the runner would write (enough fields for the agent's verdict).
fn minimal_results(status: &str) -> String {
    let lab = Lab::new();
    let bench = lab.mock_bench("b.yaml", "m1");
    let suite = lab.path("s.yaml");
    std::fs::write(&suite, common::sleep_suite(1)).unwrap();
    let out = lab.path("out");
    let opts = hilt_runner::RunOptions {
        bench,
        suite,
        skip_flash: true,
        results_dir: Some(out.clone()),
        lock_config: Some(hilt_hw::locks::LockConfig {
            dir: lab.path("locks"),
            enabled: true,
        }),
        ..hilt_runner::RunOptions::default()
    };
    struct Quiet;
    impl hilt_runner::Observer for Quiet {
        fn event(&mut self, _: &hilt_model::run::Event) {}
    }
    let o = hilt_runner::run(&opts, &mut Quiet, &hilt_hw::CancelToken::new()).unwrap();
    assert_eq!(o.results.status.as_str(), status);
    std::fs::read_to_string(out.join("results.json")).unwrap()
}

#[test]
fn a_damaged_record_is_listed_reported_and_kept() {
    let lab = Lab::new();
    let work = lab.work_dir();
    let dir = work.join("runs").join("bbbbbbbbbbb1");
    std::fs::create_dir_all(dir.join("results")).unwrap();
    std::fs::write(
        dir.join("record.json"),
        b"{\"run_id\": \"bbbbbbbbbbb1\", \"stat",
    )
    .unwrap();
    std::fs::write(dir.join("results").join("keep.txt"), b"evidence").unwrap();

    let agent = start_keeping_all(&lab);
    let v = agent.run("bbbbbbbbbbb1");
    assert_eq!(v["status"], "failed", "{v}");
    assert!(
        v["damaged"]
            .as_str()
            .is_some_and(|d| d.contains("record.json")),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("damaged run record")),
        "{v}"
    );
    let list = agent.get_json("/v1/runs");
    assert!(
        list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["run_id"] == "bbbbbbbbbbb1"),
        "{list}"
    );
    assert_eq!(agent.get("/v1/runs/bbbbbbbbbbb1/events").status, 200);
    drop(agent);
    // Nothing was overwritten or removed.
    assert!(
        std::fs::read(dir.join("record.json"))
            .unwrap()
            .ends_with(b"\"stat")
    );
    assert!(dir.join("results").join("keep.txt").exists());
}

#[test]
fn retention_prunes_old_finished_runs_only() {
    let lab = Lab::new();
    let work = lab.work_dir();
    let mut dirs = Vec::new();
    for i in 1..=6u64 {
        let mut r = record(&format!("ccccccccccc{i}"), i, RunState::Done);
        r.exit_code = Some(0);
        r.finished_at = Some(hilt_model::run::now());
        dirs.push(stored_run(&work, &r, &started_events()));
    }
    // Old, but within max_runs: pruned by age.
    let mut old = record("ccccccccccc7", 7, RunState::Failed);
    old.finished_at = Some("2020-01-01T00:00:00.000000Z".into());
    let old_dir = stored_run(&work, &old, &started_events());
    // Queued runs are never pruned, however many finished runs there are.
    let queued = record("ccccccccccc8", 8, RunState::Queued);
    let queued_dir = stored_run(&work, &queued, &[event(1, "run.queued", json!({}))]);
    std::fs::copy(lab.mock_bench("q.yaml", "q"), queued_dir.join("bench.yaml")).unwrap();
    // Long enough that the start-up pruning is seen before this run's own.
    std::fs::write(queued_dir.join("suite.yaml"), common::sleep_suite(3000)).unwrap();

    let cfg = lab.agent_yaml(&[], "retention:\n  max_runs: 4\n  max_age_days: 30\n");
    let agent = lab.start(Some(&cfg));
    // The newest four finished runs stay; the two oldest by count and the one by age go.
    for (i, d) in dirs.iter().enumerate() {
        assert_eq!(d.exists(), i >= 2, "{}", d.display());
    }
    assert!(!old_dir.exists());
    assert!(queued_dir.exists());
    assert_eq!(agent.get("/v1/runs/ccccccccccc1").status, 404);
    assert_eq!(agent.get("/v1/runs/ccccccccccc6").status, 200);
    // Runs that finish prune the oldest kept ones.
    assert_eq!(agent.wait_finished("ccccccccccc8")["status"], "done");
    let id = agent.upload(
        &std::fs::read_to_string(lab.mock_bench("up.yaml", "up")).unwrap(),
        &common::sleep_suite(1),
    );
    agent.wait_finished(&id);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let kept: Vec<String> = agent.get_json("/v1/runs")["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_str().unwrap().to_string())
            .collect();
        if kept.len() == 4 || std::time::Instant::now() > deadline {
            break kept;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        kept,
        [id.as_str(), "ccccccccccc8", "ccccccccccc6", "ccccccccccc5"],
        "{kept:?}"
    );
    assert!(!dirs[2].exists() && !dirs[3].exists());
}

/// An agent (agent.yaml + `extra`) drained while one run executes and one waits: the
/// agent, its config, and the two run ids.
fn drain_with_a_queued_run(lab: &Lab, extra: &str) -> (Agent, PathBuf, String, String) {
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], extra);
    let agent = lab.start(Some(&cfg));
    let running = agent.submit("m1", &common::sleep_suite(600));
    let queued = agent.submit("m1", &common::sleep_suite(10));
    agent.wait_run(&running, Duration::from_secs(30), |v| {
        v["current_step"] == "sleep_ms"
    });
    agent.control(Control::Drain);
    (agent, cfg, running, queued)
}

#[test]
fn queued_runs_are_cancelled_at_shutdown_by_default() {
    let lab = Lab::new();
    let (agent, _, running, queued) = drain_with_a_queued_run(&lab, "");
    let v = agent.wait_run(&queued, Duration::from_secs(10), |v| {
        v["status"] != "queued"
    });
    assert_eq!(v["cancelled"], true, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("on_shutdown: cancel")),
        "{v}"
    );
    assert_one_start_one_end(&agent.events(&queued));
    // The executing run still finishes.
    assert_eq!(agent.wait_finished(&running)["status"], "done");
}

#[test]
fn queued_runs_can_be_kept_for_the_next_start() {
    let lab = Lab::new();
    let (agent, cfg, running, queued) = drain_with_a_queued_run(&lab, "on_shutdown: keep\n");
    let v = agent.wait_run(&queued, Duration::from_secs(10), |v| {
        v["notice"].is_string()
    });
    assert_eq!(v["status"], "queued", "{v}");
    assert!(
        v["notice"].as_str().unwrap().contains("on_shutdown: keep"),
        "{v}"
    );
    let events = agent.events(&queued);
    let notice = common::last(&events, "run.notice");
    assert!(notice["message"].as_str().unwrap().contains("stays queued"));
    agent.wait_finished(&running);
    drop(agent);
    // The next start runs it.
    let agent = lab.start(Some(&cfg));
    assert_eq!(agent.wait_finished(&queued)["status"], "done");
    assert_one_start_one_end(&agent.events(&queued));
}
