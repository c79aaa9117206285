//! The agent client end to end: a real agent (in-process, on an ephemeral port) with the
//! demo bench registered on a simulated DUT, and the real `hilt` binary talking to it.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use predicates::prelude::*;
use serde_json::Value;

use common::{Bench, hilt, json};

use hilt_testkit::agent::TOKEN;

/// A running agent (in-process, from the test kit); stopped when dropped.
struct Agent {
    url: String,
    _inner: hilt_testkit::agent::Agent,
    _work: tempfile::TempDir,
}

impl Agent {
    /// Serves with `bench` registered as `demo`, token [`TOKEN`], locks in the bench's lock
    /// directory (the one the spawned `hilt` gets too).
    fn start(bench: &Bench) -> Agent {
        Agent::start_with(bench, "")
    }

    /// Like [`Agent::start`], with more agent.yaml text appended.
    fn start_with(bench: &Bench, extra_yaml: &str) -> Agent {
        let work = tempfile::tempdir().unwrap();
        let config = work.path().join("agent.yaml");
        std::fs::write(
            &config,
            format!(
                "agent: {{id: test-agent, name: test agent}}\nbenches:\n  - {{id: demo, bench_file: {:?}, tags: [sim]}}\n{extra_yaml}",
                bench.bench.display().to_string()
            ),
        )
        .unwrap();
        // Private restart file, so no other agent's can stop this one.
        let settings = hilt_testkit::agent::settings(
            &work.path().join("work"),
            Some(&config),
            &bench.path("locks"),
            &work.path().join("restart"),
        );
        let inner = hilt_testkit::agent::Agent::start(settings);
        Agent {
            url: inner.base.clone(),
            _inner: inner,
            _work: work,
        }
    }

    /// `hilt run --agent … --token t0k` with the bench's lock dir and results under `results`.
    fn run(&self, bench: &Bench, results: &str) -> assert_cmd::Command {
        let mut c = hilt();
        c.env("HILT_LOCK_DIR", bench.path("locks"))
            .env_remove("HILT_AGENT_TOKEN")
            .env_remove("BENCHCI_AGENT_TOKEN")
            .arg("run")
            .arg("--agent")
            .arg(&self.url)
            .arg("--token")
            .arg(TOKEN)
            .arg("--results-dir")
            .arg(bench.path(results));
        c
    }
}

const PASSING: &str = "  - name: answers ping
    steps:
      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}
      - expect_uart: {node: dut, transport: console, contains: \"pong\"}
  - name: reports a version
    steps:
      - send_uart: {node: dut, transport: console, data: \"version\\n\"}
      - expect_uart: {node: dut, transport: console, regex: \"version \\\\d+\\\\.\\\\d+\"}
";

/// The run id from the `agent_<id>.zip` the client saved under `root`.
fn run_id(root: &Path) -> String {
    let zips: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("agent_") && n.ends_with(".zip"))
        .collect();
    assert_eq!(
        zips.len(),
        1,
        "one zip expected in {}: {zips:?}",
        root.display()
    );
    zips[0]["agent_".len()..zips[0].len() - ".zip".len()].to_string()
}

fn firmware(b: &Bench, size: usize) -> PathBuf {
    let p = b.path("fw.bin");
    std::fs::write(
        &p,
        (0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    p
}

#[test]
fn registered_bench_run_passes_and_downloads_the_results() {
    let b = Bench::start();
    let agent = Agent::start(&b);
    let suite = b.suite("remote.yaml", PASSING);
    let fw = firmware(&b, 100_001);
    let out = agent
        .run(&b, "results")
        .arg("--bench-id")
        .arg("demo")
        .arg("--suite")
        .arg(&suite)
        .arg("--artifact")
        .arg(&fw)
        .arg("--skip-flash")
        .arg("--junit")
        .arg(b.path("junit.xml"))
        .arg("--ctrf")
        .arg(b.path("ctrf.json"))
        .arg("--json")
        .assert()
        .code(0)
        .stderr(predicate::str::contains("submitted run"))
        .stderr(predicate::str::contains("PASSED"))
        .stderr(predicate::str::contains("pass answers ping"))
        .get_output()
        .clone();
    let root = b.path("results");
    let id = run_id(&root);
    let dir = root.join(&id);
    let results = json(&dir.join("results.json"));
    assert_eq!(results["status"], "passed");
    assert_eq!(results["run_id"], id.as_str());
    assert_eq!(results["summary"]["passed"], 2);
    assert!(
        results["artifact"]
            .as_str()
            .unwrap_or("")
            .ends_with("fw.bin"),
        "the artifact travelled: {}",
        results["artifact"]
    );
    assert!(dir.join("events.jsonl").is_file());
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stdout["status"], "passed");
    assert!(
        std::fs::read_to_string(b.path("junit.xml"))
            .unwrap()
            .contains("answers ping")
    );
    assert_eq!(
        json(&b.path("ctrf.json"))["results"]["summary"]["passed"],
        2
    );
}

#[test]
fn uploaded_bench_run_passes() {
    let b = Bench::start();
    let agent = Agent::start(&b);
    let suite = b.suite("upload.yaml", PASSING);
    let fw = firmware(&b, 3 * 1024 * 1024 + 7);
    agent
        .run(&b, "up")
        .arg("--bench")
        .arg(&b.bench)
        .arg("--suite")
        .arg(&suite)
        .arg("--artifact")
        .arg(&fw)
        .arg("--skip-flash")
        .assert()
        .code(0)
        .stderr(predicate::str::contains("uploaded"))
        .stderr(predicate::str::contains("PASSED"));
    let root = b.path("up");
    let id = run_id(&root);
    let results = json(&root.join(&id).join("results.json"));
    assert_eq!(results["status"], "passed");
    assert_eq!(results["summary"]["total"], 2);
}

#[test]
fn failing_suite_exits_1_with_the_explanation() {
    let b = Bench::start();
    let agent = Agent::start(&b);
    let suite = b.suite(
        "fail.yaml",
        "  - name: reports firmware 9.9.9
    steps:
      - send_uart: {node: dut, transport: console, data: \"version\\n\"}
      - expect_uart: {node: dut, transport: console, contains: \"version 9.9.9\", within_ms: 300, scope: since_mark}
",
    );
    agent
        .run(&b, "results")
        .arg("--bench-id")
        .arg("demo")
        .arg("--suite")
        .arg(&suite)
        .arg("--skip-flash")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("FAIL reports firmware 9.9.9"))
        .stderr(predicate::str::contains("FAILED"))
        .stderr(predicate::str::contains("why:"))
        .stderr(predicate::str::contains("version 9.9.9"));
    let root = b.path("results");
    let id = run_id(&root);
    assert_eq!(
        json(&root.join(id).join("results.json"))["status"],
        "failed"
    );
}

#[test]
fn configuration_error_exits_3() {
    let b = Bench::start();
    let agent = Agent::start(&b);
    let suite = b.suite(
        "bad.yaml",
        "  - name: t\n    steps:\n      - send_uart: {node: nope, transport: console, data: \"x\"}\n",
    );
    agent
        .run(&b, "results")
        .arg("--bench-id")
        .arg("demo")
        .arg("--suite")
        .arg(&suite)
        .arg("--skip-flash")
        .assert()
        .code(3)
        // Refused at submission with the located diagnostic, never queued.
        .stderr(predicate::str::contains("HTTP 422"))
        .stderr(predicate::str::contains(
            "suite.yaml:7:27: tests[0].steps[0].send_uart.node: unknown node `nope`",
        ));
}

#[test]
fn refusals_at_submission() {
    let b = Bench::start();
    let agent = Agent::start(&b);
    let suite = b.suite("s.yaml", PASSING);
    // Unknown bench: 404 → configuration error, the server's text shown.
    agent
        .run(&b, "results")
        .arg("--bench-id")
        .arg("nope")
        .arg("--suite")
        .arg(&suite)
        .arg("--skip-flash")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("bench not found: nope"));
    // No artifact and no --skip-flash for a suite that flashes: 400 (a suite without a
    // flash step needs no artifact).
    let flashing = b.suite(
        "flashing.yaml",
        "  - name: t\n    steps:\n      - flash: {node: dut}\n",
    );
    agent
        .run(&b, "results")
        .arg("--bench-id")
        .arg("demo")
        .arg("--suite")
        .arg(&flashing)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("artifact is required"));
    // A missing local file never reaches the agent.
    agent
        .run(&b, "results")
        .arg("--bench-id")
        .arg("demo")
        .arg("--suite")
        .arg(b.path("missing.yaml"))
        .arg("--skip-flash")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("cannot read the suite"));
}

#[test]
fn refused_by_agent_policy_without_results_exits_3() {
    let b = Bench::start();
    let agent = Agent::start(&b);
    let bench = b.path("external-bench.yaml");
    let mut text = std::fs::read_to_string(&b.bench).unwrap();
    text.push_str("safety:\n  external:\n    enabled: true\n");
    std::fs::write(&bench, text).unwrap();
    let suite = b.suite("s.yaml", PASSING);
    agent
        .run(&b, "results")
        .arg("--bench")
        .arg(&bench)
        .arg("--suite")
        .arg(&suite)
        .arg("--skip-flash")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("refused by agent policy"));
    let zips = std::fs::read_dir(b.path("results"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(zips, 0, "no results to download");
}

#[test]
fn an_artifact_over_the_agent_limit_exits_3() {
    let b = Bench::start();
    let agent = Agent::start_with(&b, "limits: {max_artifact_bytes: 1000000}\n");
    let suite = b.suite("s.yaml", PASSING);
    let fw = firmware(&b, 8_000_000);
    for bench in [
        ["--bench-id", "demo"],
        ["--bench", b.bench.to_str().unwrap()],
    ] {
        agent
            .run(&b, "results")
            .args(bench)
            .arg("--suite")
            .arg(&suite)
            .arg("--artifact")
            .arg(&fw)
            .arg("--skip-flash")
            .assert()
            .code(3)
            .stderr(predicate::str::contains("limit"));
    }
}

#[test]
fn wrong_token_exits_2() {
    let b = Bench::start();
    let agent = Agent::start(&b);
    let suite = b.suite("s.yaml", PASSING);
    for bench in [
        ["--bench-id", "demo"],
        ["--bench", b.bench.to_str().unwrap()],
    ] {
        hilt()
            .env_remove("HILT_AGENT_TOKEN")
            .env_remove("BENCHCI_AGENT_TOKEN")
            .env("HILT_LOCK_DIR", b.path("locks"))
            .args(["run", "--agent", &agent.url, "--token", "wrong"])
            .args(bench)
            .arg("--suite")
            .arg(&suite)
            .arg("--skip-flash")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("authentication failed"))
            .stderr(predicate::str::contains("Invalid token"));
    }
    // The token also comes from the environment.
    hilt()
        .env("HILT_AGENT_TOKEN", TOKEN)
        .args(["benches", "list", "--agent", &agent.url])
        .assert()
        .code(0);
    hilt()
        .env_remove("HILT_AGENT_TOKEN")
        .env_remove("BENCHCI_AGENT_TOKEN")
        .args(["benches", "list", "--agent", &agent.url])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("authentication failed"));
}

#[test]
fn unreachable_agent_exits_4() {
    let b = Bench::start();
    let suite = b.suite("s.yaml", PASSING);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    hilt()
        .env("HILT_LOCK_DIR", b.path("locks"))
        .args([
            "run",
            "--agent",
            &url,
            "--token",
            TOKEN,
            "--bench-id",
            "demo",
        ])
        .arg("--suite")
        .arg(&suite)
        .arg("--skip-flash")
        .assert()
        .code(4)
        .stderr(predicate::str::contains(format!(
            "cannot reach the agent at {url}"
        )));
    hilt()
        .args(["agent", "health", &url])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(url.as_str()));
    hilt()
        .args(["benches", "list", "--agent", &url])
        .assert()
        .code(4);
}

#[test]
fn health_and_benches() {
    let b = Bench::start();
    let agent = Agent::start(&b);
    hilt()
        .args(["agent", "health", &agent.url])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("test-agent"))
        .stdout(predicate::str::contains(": ok"))
        .stdout(predicate::str::contains("1 registered"));
    let out = hilt()
        .args(["agent", "health", &agent.url, "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let h: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(h["ok"], true);
    assert_eq!(h["auth_enabled"], true);

    hilt()
        .args(["benches", "list", "--agent", &agent.url, "--token", TOKEN])
        .assert()
        .code(0)
        .stdout(
            predicate::str::is_match(r"(?m)^demo\s+hilt demo bench\s+idle\s+\S+\s+uart$").unwrap(),
        );
    let out = hilt()
        .args([
            "benches", "list", "--agent", &agent.url, "--token", TOKEN, "--json",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let list: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(list[0]["bench_id"], "demo");

    hilt()
        .args([
            "benches", "show", "demo", "--agent", &agent.url, "--token", TOKEN,
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("demo — hilt demo bench"))
        .stdout(predicate::str::contains("nodes:        dut"))
        .stdout(predicate::str::contains("tags:         sim"));
    let out = hilt()
        .args([
            "benches", "show", "demo", "--agent", &agent.url, "--token", TOKEN, "--json",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let show: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(show["node_names"][0], "dut");
    hilt()
        .args([
            "benches", "show", "nope", "--agent", &agent.url, "--token", TOKEN,
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("bench not found"));
}

#[test]
fn ctrl_c_cancels_the_remote_run() {
    use std::io::{BufRead, BufReader};

    let b = Bench::start();
    let agent = Agent::start(&b);
    let suite = b.suite(
        "slow.yaml",
        "  - name: waits\n    steps:\n      - sleep_ms: 30000\n",
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("hilt"))
        .env("HILT_LOCK_DIR", b.path("locks"))
        .env("NO_COLOR", "1")
        .args([
            "run",
            "--agent",
            &agent.url,
            "--token",
            TOKEN,
            "--bench-id",
            "demo",
        ])
        .arg("--suite")
        .arg(&suite)
        .arg("--skip-flash")
        .arg("--results-dir")
        .arg(b.path("results"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    // Interrupt once the suite is running on the agent.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the run did not start: {seen:?}"));
        let started = line.starts_with("running ");
        seen.push(line);
        if started {
            break;
        }
    }
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the client did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
        seen.push(l);
    }
    assert_eq!(status.code(), Some(130), "{seen:#?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "cancel took too long"
    );
    let text = seen.join("\n");
    assert!(text.contains("asked the agent to cancel"), "{text}");
    assert!(text.contains("CANCELLED"), "{text}");
    let root = b.path("results");
    let id = run_id(&root);
    assert_eq!(
        json(&root.join(id).join("results.json"))["status"],
        "cancelled"
    );
}

/// A BenchCI agent child process, killed when dropped.
struct BenchciAgent {
    url: String,
    child: std::process::Child,
    _home: tempfile::TempDir,
}

impl Drop for BenchciAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_benchci_agent_is_followed_by_polling() {
    let Some(exe) = hilt_testkit::peers::benchci() else {
        return;
    };
    let b = Bench::start();
    // BenchCI's own format only: one UART node on the simulated DUT.
    let bench = b.path("plain-bench.yaml");
    std::fs::write(
        &bench,
        format!(
            "version: 1\nbench: {{name: plain sim bench}}\ndefaults: {{node: dut, timeouts: {{within_ms: 2000}}}}\nnodes:\n  dut:\n    kind: simulator\n    transports:\n      console: {{backend: uart, port: {:?}, baud: 115200}}\n",
            b.path("dut.tty").display().to_string()
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "agent: {{id: bci}}\nbenches:\n  - {{id: plain, bench_file: {:?}}}\n",
            bench.display().to_string()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(exe)
        .args([
            "agent",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("BENCHCI_AGENT_CONFIG", &config)
        .env("BENCHCI_AGENT_TOKEN", TOKEN)
        .env("BENCHCI_LOCK_DIR", b.path("locks"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let agent = BenchciAgent {
        url: format!("http://127.0.0.1:{port}"),
        child,
        _home: home,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ureq::get(format!("{}/health", agent.url))
        .call()
        .is_ok_and(|r| r.status().as_u16() == 200)
    {
        assert!(Instant::now() < deadline, "the BenchCI agent did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    hilt()
        .args(["agent", "health", &agent.url])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("benchci-agent bci"));
    hilt()
        .args(["benches", "list", "--agent", &agent.url, "--token", TOKEN])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("plain sim bench"));

    let suite = b.suite(
        "mixed.yaml",
        "  - name: answers ping
    steps:
      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}
      - expect_uart: {node: dut, transport: console, contains: \"pong\"}
  - name: reports firmware 9.9.9
    steps:
      - send_uart: {node: dut, transport: console, data: \"version\\n\"}
      - expect_uart: {node: dut, transport: console, contains: \"9.9.9\", within_ms: 300}
",
    );
    for (bench_arg, results) in [
        (["--bench-id", "plain"], "registered"),
        (["--bench", bench.to_str().unwrap()], "uploaded"),
    ] {
        hilt()
            .env("HILT_LOCK_DIR", b.path("locks"))
            .args(["run", "--agent", &agent.url, "--token", TOKEN])
            .args(bench_arg)
            .arg("--suite")
            .arg(&suite)
            .arg("--skip-flash")
            .arg("--results-dir")
            .arg(b.path(results))
            .assert()
            .code(1)
            .stderr(predicate::str::contains("pass answers ping"))
            .stderr(predicate::str::contains("FAIL reports firmware 9.9.9"))
            .stderr(predicate::str::contains("why:"));
        let root = b.path(results);
        let id = run_id(&root);
        assert_eq!(
            json(&root.join(id).join("results.json"))["status"],
            "failed"
        );
    }
    hilt()
        .env("HILT_LOCK_DIR", b.path("locks"))
        .args([
            "run",
            "--agent",
            &agent.url,
            "--token",
            "wrong",
            "--bench-id",
            "plain",
        ])
        .arg("--suite")
        .arg(&suite)
        .arg("--skip-flash")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "authentication failed: Invalid token",
        ));
}
