//! Retention: ended runs beyond `retain_runs` per workspace, or created longer ago than
//! `retain_age`, are pruned by the background sweeper with their events and their objects
//! in the artifact store; queued and active runs never are, and another workspace's count
//! is its own.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{BOOT, Db, Server, multipart};
use serde_json::json;

/// The agent takes `run` (the bench's next), uploads an archive and completes it.
fn finish(s: &Server, agent: &str, run: &str) {
    let v = s
        .agent(agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], run, "{v}");
    let (ct, body) = multipart("artifact_zip", "artifacts.zip", b"PK\x05\x06 results");
    let r = s.call(
        "POST",
        &format!("/v1/agents/runs/{run}/artifacts"),
        Some(agent),
        &[("X-BenchCI-Agent-Machine-ID", "m")],
        Some((&ct, body)),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.agent(
        agent,
        "m",
        "POST",
        &format!("/v1/agents/runs/{run}/complete"),
        Some(json!({"status": "done", "exit_code": 0})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

fn submit_with_firmware(s: &Server, token: &str, bench: &str) -> String {
    let r = s.user(
        token,
        "POST",
        "/v1/runs",
        Some(
            json!({"bench_id": bench, "suite_yaml": "version: 1\nsuite: {name: s}\ntests: []\n",
            "artifact_base64": "AAECAw==", "artifact_filename": "fw.bin"}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["run_id"].as_str().unwrap().to_string()
}

fn run_dir(s: &Server, run: &str) -> std::path::PathBuf {
    s.dir.path().join("data").join("runs").join(run)
}

fn status(s: &Server, token: &str, run: &str) -> u16 {
    s.user(token, "GET", &format!("/v1/runs/{run}"), None)
        .status
}

/// Waits (bounded) until every run in `gone` answers 404.
fn wait_pruned(s: &Server, token: &str, gone: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while gone.iter().any(|r| status(s, token, r) != 404) {
        assert!(Instant::now() < deadline, "runs not pruned within 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn runs_beyond_the_count_are_pruned_but_never_active_ones(db: Db) {
    let s = Server::start(&db, |c| {
        c.retain_runs = Some(1);
        c.retention_every = Duration::from_millis(200);
    });
    let (_, agent) = s.token(BOOT, "default", "agent");
    let bench = s.sync(&agent, "m", "rig", "healthy");
    // Another workspace with one ended run: its count is its own.
    s.workspace("b");
    let (_, user_b) = s.token(BOOT, "b", "user");
    let (_, agent_b) = s.token(BOOT, "b", "agent");
    let bench_b = s.sync(&agent_b, "mb", "rig", "healthy");

    let ended: Vec<String> = (0..3)
        .map(|_| {
            let run = submit_with_firmware(&s, BOOT, &bench);
            finish(&s, &agent, &run);
            // The newest run of the workspace: kept until a newer one comes.
            assert!(run_dir(&s, &run).join("artifacts.zip").is_file());
            assert!(run_dir(&s, &run).join("firmware/fw.bin").is_file());
            run
        })
        .collect();
    let r = s.user(
        &user_b,
        "POST",
        "/v1/runs",
        Some(json!({"bench_id": bench_b, "suite_yaml": common::SUITE})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let run_b = r.json()["run_id"].as_str().unwrap().to_string();
    let v = s
        .agent(&agent_b, "mb", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], run_b.as_str());
    let r = s.agent(
        &agent_b,
        "mb",
        "POST",
        &format!("/v1/agents/runs/{run_b}/complete"),
        Some(json!({"status": "failed", "exit_code": 1})),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // One active run (beyond the count of 1 once the next is queued) and one queued.
    let active = submit_with_firmware(&s, BOOT, &bench);
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], active.as_str());
    let queued = submit_with_firmware(&s, BOOT, &bench);

    let gone: Vec<&str> = ended.iter().map(String::as_str).collect();
    wait_pruned(&s, BOOT, &gone);
    for run in &gone {
        assert!(!run_dir(&s, run).exists(), "objects of {run} left behind");
        let r = s.user(BOOT, "GET", &format!("/v1/runs/{run}/events"), None);
        assert_eq!(r.status, 404);
    }
    // Give the sweeper a few more rounds: the active and queued runs stay, with their files.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(status(&s, BOOT, &active), 200);
    assert_eq!(status(&s, BOOT, &queued), 200);
    assert!(run_dir(&s, &active).join("firmware/fw.bin").is_file());
    assert!(run_dir(&s, &queued).join("firmware/fw.bin").is_file());
    assert_eq!(
        status(&s, &user_b, &run_b),
        200,
        "workspace b's only run was pruned"
    );
    let list = s.user(BOOT, "GET", "/v1/runs", None).json();
    assert_eq!(list["runs"].as_array().unwrap().len(), 2, "{list}");
    // The pruned runs are counted.
    let m = s.call("GET", "/metrics", Some(BOOT), &[], None).text;
    assert!(m.contains("hilt_server_runs_pruned_total 3\n"), "{m}");
}

fn runs_older_than_the_age_are_pruned(db: Db) {
    let s = Server::start(&db, |c| {
        c.retain_age = Duration::from_secs(1);
        c.retention_every = Duration::from_millis(200);
    });
    let (_, agent) = s.token(BOOT, "default", "agent");
    let bench = s.sync(&agent, "m", "rig", "healthy");
    let old = submit_with_firmware(&s, BOOT, &bench);
    finish(&s, &agent, &old);
    let active = submit_with_firmware(&s, BOOT, &bench);
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], active.as_str());
    let queued = submit_with_firmware(&s, BOOT, &bench);
    wait_pruned(&s, BOOT, &[&old]);
    assert!(!run_dir(&s, &old).exists());
    std::thread::sleep(Duration::from_millis(1500));
    // Older than the age by now, but not ended.
    assert_eq!(status(&s, BOOT, &active), 200);
    assert_eq!(status(&s, BOOT, &queued), 200);
    assert!(
        Path::new(&run_dir(&s, &queued))
            .join("firmware/fw.bin")
            .is_file()
    );
}

crate::scenarios!(
    runs_beyond_the_count_are_pruned_but_never_active_ones,
    runs_older_than_the_age_are_pruned,
);
