//! BenchCI 2.0.1's own cloud agent (`benchci agent cloud`, unchanged) against `hilt server`,
//! through the real binaries: the server starts with a bootstrap token, an agent token is
//! made with `hilt tokens create`, BenchCI's agent registers a simulated bench (a sim DUT on
//! a real pty), and `hilt runs submit --bench-id … --wait` runs a passing suite (done, its
//! events and results archive stored), a failing one (failed, with its category), one
//! with firmware, which BenchCI's agent fetches by the assignment's `firmware_url` and
//! checks against its `firmware_sha256`, and a run submitted by the agent's `--tag` and
//! cancelled while BenchCI runs it (BenchCI ignores the cancel, the server records the run
//! cancelled, the waiting CLI exits 130).
//!
//! Without `benchci` on PATH the test skips with a message, unless HILT_REQUIRE_PEERS=1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use hilt_testkit::peers::benchci as find_benchci;

use serde_json::Value;

use common::server::{BOOT, Proc, agent_token, client, hilt, json_out, server_get};

/// `hilt server` on a free port; returns the process and its URL.
fn start_server(data: &Path) -> (Proc, String) {
    common::server::start_server(data, None, &["--bind", "127.0.0.1:0", "--long-poll-s", "5"])
}

fn suite(dir: &Path, name: &str, expect: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &p,
        format!(
            "version: 1\nsuite:\n  name: {name}\ntests:\n  - name: ping\n    steps:\n      \
             - send_uart: {{node: dut, transport: console, data: \"ping\\n\"}}\n      \
             - expect_uart: {{node: dut, transport: console, contains: \"{expect}\", within_ms: 1000}}\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn benchci_cloud_agent_runs_assignments_from_hilt_server() {
    let Some(benchci) = find_benchci() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, url) = start_server(&dir.join("data"));

    let agent_token = agent_token(&url);
    assert!(agent_token.starts_with("hilt_"), "{agent_token}");

    // A simulated DUT on a real pty (its link is `<bench dir>/dut.tty`).
    let sim = common::Bench::start();
    let port = sim.path("dut.tty");
    let bench = dir.join("bench.yaml");
    std::fs::write(
        &bench,
        format!(
            "version: 1\nbench: {{name: cloud sim bench}}\ndefaults: {{node: dut}}\nnodes:\n  dut:\n    \
             kind: simulator\n    transports:\n      console: {{backend: uart, port: \"{}\", baud: 115200}}\n",
            port.display()
        ),
    )
    .unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let agent_log = dir.join("benchci-agent.log");
    let _agent = Proc(
        Command::new(&benchci)
            .args(["agent", "cloud", "--bench"])
            .arg(&bench)
            .args([
                "--bench-id",
                "sim-a",
                "--agent-name",
                "lab-1",
                "--tag",
                "sim",
                "--poll-interval-s",
                "0.2",
            ])
            .env("BENCHCI_API_URL", &url)
            .env("BENCHCI_AGENT_TOKEN", &agent_token)
            .env("HOME", &home)
            .env("BENCHCI_LOCK_DIR", dir.join("locks"))
            .env_remove("BENCHCI_MACHINE_ID")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&agent_log).unwrap())
            .stderr(std::fs::File::create(dir.join("benchci-agent.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = || {
        format!(
            "benchci agent stdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(&agent_log).unwrap_or_default(),
            std::fs::read_to_string(dir.join("benchci-agent.err")).unwrap_or_default()
        )
    };

    // The agent registers and syncs its bench with its self-test health.
    let deadline = Instant::now() + Duration::from_secs(60);
    let bench_row = loop {
        let v = server_get(&url, "/v1/benches");
        let found = v["benches"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["bench_id"] == "sim-a").cloned());
        if let Some(b) = found {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "the bench never synced\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        bench_row["health_status"],
        "healthy",
        "{bench_row}\n{}",
        log()
    );
    let agents = server_get(&url, "/v1/agents");
    let a = &agents["agents"][0];
    assert_eq!(a["name"], "lab-1", "{agents}");
    assert!(
        a["machine_id"]
            .as_str()
            .unwrap()
            .starts_with("benchci_machine_")
    );

    // A passing suite: done, events and the results archive stored.
    let pass = suite(dir, "passing", "pong");
    let (o, run) = submit_wait(&url, &pass);
    assert_eq!(o.status.code(), Some(0), "{run}\n{}", log());
    assert_eq!(run["status"], "done");
    assert_eq!(run["exit_code"], 0);
    assert!(
        run["artifacts"]["size_bytes"].as_i64().unwrap() > 0,
        "{run}"
    );
    let id = run["run_id"].as_str().unwrap();
    let o = client(&url, &["runs", "events", id, "--json"]);
    let events = json_out(&o);
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for k in [
        "run.started",
        "test.started",
        "step.finished",
        "test.finished",
        "run.finished",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let archive = dir.join("data/runs").join(id).join("artifacts.zip");
    let zip = zip::ZipArchive::new(std::fs::File::open(&archive).unwrap()).unwrap();
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()).unwrap_or_default())
        .collect();
    assert!(
        names.iter().any(|n| n == "results.json"),
        "no results.json in {names:?}"
    );

    // A failing suite: failed, exit code 1 (tests failed), with its failure category.
    let fail = suite(dir, "failing", "no-such-reply");
    let (o, run) = submit_wait(&url, &fail);
    assert_eq!(o.status.code(), Some(1), "{run}\n{}", log());
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 1);
    let category = run["failure"]["category"].as_str().unwrap_or_default();
    assert_eq!(category, "UART_EXPECTATION_FAILED", "{run}");
    eprintln!("failing run category: {category}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(category), "{stderr}");

    // Firmware with a run: the assignment names it by URL (never inline); BenchCI's agent
    // downloads it with a plain GET, checks its SHA-256 against the assignment's and says
    // so in its events (the suite skips flashing: the sim DUT has no flash tool).
    let firmware: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let fw = dir.join("app.bin");
    std::fs::write(&fw, &firmware).unwrap();
    let (o, run) = submit_wait_with(
        &url,
        &pass,
        &["--artifact", fw.to_str().unwrap(), "--skip-flash"],
    );
    assert_eq!(o.status.code(), Some(0), "{run}\n{}", log());
    let id = run["run_id"].as_str().unwrap();
    let events = json_out(&client(&url, &["runs", "events", id, "--json"]));
    let find = |kind: &str| {
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event: {events}"))
            .clone()
    };
    let fetched = find("artifact.external_fetch_finished");
    assert_eq!(
        fetched["data"]["firmware_size_bytes"],
        firmware.len(),
        "{fetched}"
    );
    let verified = find("artifact.hash_verified");
    assert_eq!(verified["data"]["source"], "external_url");
    assert_eq!(
        verified["data"]["firmware_sha256"],
        sha256_hex(&firmware).as_str(),
        "{verified}"
    );

    // The run list has all three, newest first.
    let o = client(&url, &["runs", "list", "--json"]);
    let list = json_out(&o);
    let states: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "failed", "done"]);

    // By tag, cancelled while BenchCI's agent runs it: BenchCI ignores the cancel and
    // finishes, the server records the run cancelled, and the waiting CLI exits 130.
    let slow = suite(dir, "slow", "never-sent");
    let slow_text = std::fs::read_to_string(&slow)
        .unwrap()
        .replace("within_ms: 1000", "within_ms: 4000");
    std::fs::write(&slow, slow_text).unwrap();
    let waiter = hilt()
        .args(["runs", "submit", "--tags", "sim", "--suite"])
        .arg(&slow)
        .args(["--wait", "--json", "--timeout-s", "120"])
        .env("HILT_SERVER", &url)
        .env("HILT_TOKEN", BOOT)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let v = server_get(&url, "/v1/runs");
        let newest = &v["runs"][0];
        if states.len() < v["runs"].as_array().unwrap().len() && newest["status"] == "running" {
            break newest["run_id"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the tag run never ran: {v}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let o = client(&url, &["runs", "cancel", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = waiter.wait_with_output().unwrap();
    let run = json_out(&o);
    assert_eq!(o.status.code(), Some(130), "{run}\n{}", log());
    assert_eq!(run["cancelled"], true, "{run}");
    assert_eq!(run["bench_id"], "sim-a", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("cancelled by a user; the agent reported"),
        "{run}"
    );
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// `hilt runs submit --bench-id sim-a --suite S --wait --json`: the output and the final run.
fn submit_wait(url: &str, suite: &Path) -> (std::process::Output, Value) {
    submit_wait_with(url, suite, &[])
}

fn submit_wait_with(url: &str, suite: &Path, more: &[&str]) -> (std::process::Output, Value) {
    let suite = suite.to_str().unwrap();
    let args = [
        "runs",
        "submit",
        "--bench-id",
        "sim-a",
        "--suite",
        suite,
        "--wait",
        "--json",
    ];
    let o = client(url, &[&args[..], more, &["--timeout-s", "120"]].concat());
    let run = json_out(&o);
    (o, run)
}

/// An artifact store the server cannot use stops it before it listens: a clear error and
/// exit code 3 (needs no peer: nothing listens at the S3 endpoint).
#[test]
fn hilt_server_refuses_an_unusable_artifact_store() {
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (url, expect) in [
        ("gs://bucket", "unsupported --artifacts URL \"gs://bucket\""),
        (
            "s3://bucket/prefix",
            "cannot use the artifact store s3://bucket/prefix",
        ),
    ] {
        let t = Instant::now();
        let o = hilt()
            .args(["server", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(["--artifacts", url])
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert_eq!(o.status.code(), Some(3), "{url}: {out}\n{err}");
        assert!(err.contains(expect), "{url}: {err}");
        assert!(!out.contains("listening"), "{url}: said it listens: {out}");
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{url}: {:?}",
            t.elapsed()
        );
    }
}
