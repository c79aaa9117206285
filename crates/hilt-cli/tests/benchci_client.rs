//! BenchCI's own client (BenchCI 2.0.1, installed by `scripts/peers.sh`) against
//! `hilt agent serve`: health, bench listing, registered-bench and uploaded-bench runs,
//! events, artifacts and exit codes, with no change on the BenchCI side.
//!
//! What BenchCI's client does (observed through a logging proxy; one line per request):
//!   `benchci doctor --agent URL --token T --json`   → GET /health
//!   `benchci run --agent URL --token T --bench-id ID --suite S [--artifact A | --skip-flash] --results-dir D`
//!       → POST /v1/runs/json {bench_id, suite_yaml, skip_flash, verbose[, artifact_relpath,
//!         artifact_filename, artifact_base64]}
//!   `benchci run --agent URL --token T --bench B --suite S --skip-flash --results-dir D`
//!       → POST /v1/runs multipart (skip_flash, verbose, bench_yaml=bench.yaml, suite_yaml=suite.yaml)
//!   then, once a second: GET /v1/runs/{id} and GET /v1/runs/{id}/events until the status is
//!   `done` or `failed` (any other status: it keeps polling, for up to 1800 s), then
//!   GET /v1/runs/{id}/artifacts.zip saved as D/agent_{id}.zip, from which it reads
//!   evidence.json and results.json. Exit code: 0 iff status `done` and exit_code 0, else 1.
//!   Its CLI has no command listing an agent's benches; its client library does
//!   (`benchci.agent.client.list_benches/get_bench/get_health`), called here through the
//!   venv's Python.
//!
//! Without `benchci` on PATH the tests skip, unless HILT_REQUIRE_PEERS is set (scripts/test).

use hilt_testkit::process as agent_proc;
mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use agent_proc::{
    AgentProc, Layout, PING, TOKEN, sleepy, suite, unique, write_agent_yaml, zip_has,
};
use common::Bench;
use hilt_testkit::peers::benchci as find_benchci;

/// The Python that runs `benchci` (from its `#!` line), to call BenchCI's client library.
fn benchci_python(benchci: &Path) -> PathBuf {
    let text = std::fs::read_to_string(benchci).unwrap_or_default();
    let shebang = text.lines().next().unwrap_or_default();
    match shebang.strip_prefix("#!").map(str::trim) {
        Some(s) if s.starts_with("/usr/bin/env") => {
            PathBuf::from(s.split_whitespace().nth(1).unwrap_or("python3"))
        }
        Some(s) if !s.is_empty() => PathBuf::from(s.split_whitespace().next().unwrap()),
        _ => benchci.with_file_name("python3"),
    }
}

/// A sim DUT bench registered as `sim-a` on a real agent process, and the BenchCI client.
struct Env {
    benchci: PathBuf,
    bench: Bench,
    tmp: tempfile::TempDir,
    layout: Layout,
    agent: AgentProc,
}

fn env() -> Option<Env> {
    let benchci = find_benchci()?;
    let bench = Bench::start();
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(&tmp.path().join("agent"), &unique("hilt-benchci"));
    write_agent_yaml(&layout.config(), &layout.name, &[("sim-a", &bench.bench)]);
    let agent = layout.start();
    std::fs::create_dir_all(tmp.path().join("home")).unwrap();
    Some(Env {
        benchci,
        bench,
        tmp,
        layout,
        agent,
    })
}

struct Out {
    code: Option<i32>,
    text: String,
}

impl Out {
    fn assert_has(&self, needle: &str) {
        assert!(
            self.text.contains(needle),
            "BenchCI's output lacks {needle:?}:\n{}",
            self.text
        );
    }

    /// The run id from "Run submitted: <id>".
    fn run_id(&self) -> String {
        self.text
            .split("Run submitted: ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no run id in BenchCI's output:\n{}", self.text))
            .to_string()
    }
}

/// Kills the client if a test fails while it runs.
struct ClientProc(Child);

impl Drop for ClientProc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Env {
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn results(&self) -> PathBuf {
        self.tmp.path().join("benchci-results")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.benchci);
        c.args(args)
            .current_dir(self.tmp.path())
            .env("HOME", self.tmp.path().join("home"))
            .env_remove("BENCHCI_AGENT_TOKEN")
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .env("COLUMNS", "200")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn spawn(&self, args: &[&str]) -> ClientProc {
        ClientProc(self.command(args).spawn().expect("spawning benchci"))
    }

    /// Waits for the client; `code` is `None` (and the client killed) after `timeout`.
    fn finish(&self, mut p: ClientProc, timeout: Duration) -> Out {
        let mut out = p.0.stdout.take().unwrap();
        let mut err = p.0.stderr.take().unwrap();
        let t_out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + timeout;
        let code = loop {
            if let Some(st) = p.0.try_wait().unwrap() {
                break st.code();
            }
            if Instant::now() >= deadline {
                let _ = p.0.kill();
                let _ = p.0.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let text = format!(
            "{}{}",
            t_out.join().unwrap_or_default(),
            t_err.join().unwrap_or_default()
        );
        Out { code, text }
    }

    fn benchci(&self, args: &[&str]) -> Out {
        let p = self.spawn(args);
        self.finish(p, Duration::from_secs(120))
    }

    /// `benchci run --agent <url> --token t0k <args…> --results-dir <tmp>/benchci-results`
    fn run_args<'a>(&'a self, extra: &[&'a str]) -> Vec<String> {
        let mut v: Vec<String> = ["run", "--agent", &self.agent.base, "--token", TOKEN]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push("--results-dir".into());
        v.push(self.results().display().to_string());
        v
    }

    fn run(&self, extra: &[&str]) -> Out {
        let args = self.run_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.benchci(&args)
    }

    /// Checks what every completed `benchci run` shows: events streamed, the zip downloaded
    /// and read, the final status; returns the run id.
    fn assert_completed(&self, out: &Out, status: &str, exit: i32, suite_name: &str) -> String {
        assert_eq!(out.code, Some(exit), "benchci exit code:\n{}", out.text);
        let id = out.run_id();
        out.assert_has("agent event run.queued");
        out.assert_has("agent event step.finished");
        out.assert_has(&format!("Run complete: status={status} exit_code={exit}"));
        // The artifacts zip was downloaded, and BenchCI read evidence.json from it.
        let zip_path = self.results().join(format!("agent_{id}.zip"));
        out.assert_has(&format!("Artifacts downloaded: {}", zip_path.display()));
        let zip = std::fs::read(&zip_path).unwrap();
        for f in ["results.json", "evidence.json", "events.jsonl"] {
            assert!(zip_has(&zip, f), "{f} missing in {}", zip_path.display());
        }
        out.assert_has("bench: hilt demo bench");
        out.assert_has(&format!("suite: {suite_name}"));
        // The agent agrees.
        let r = self.agent.run(&id);
        assert_eq!(r["status"], status, "{r}");
        assert_eq!(r["exit_code"], exit, "{r}");
        id
    }
}

const FAILING_STEPS: &str = "      - send_uart: {node: dut, transport: console, data: \"version\\n\"}\n      - expect_uart: {node: dut, transport: console, contains: \"version 9.9.9\", within_ms: 300}\n";

#[test]
fn benchci_checks_health_and_lists_benches() {
    let Some(e) = env() else { return };
    // benchci doctor --agent http://127.0.0.1:PORT --token t0k --json
    let out = e.benchci(&[
        "doctor",
        "--agent",
        &e.agent.base,
        "--token",
        TOKEN,
        "--json",
    ]);
    // (Doctor's exit code also depends on this machine's serial ports and tools; only its
    // agent check is ours.)
    let report: Value = serde_json::from_str(out.text.trim())
        .unwrap_or_else(|err| panic!("doctor --json: {err}:\n{}", out.text));
    let checks = report["checks"].as_array().expect("checks");
    let check = checks
        .iter()
        .find(|c| c["section"] == "Agent")
        .unwrap_or_else(|| panic!("no Agent check: {report}"));
    assert_eq!(check["ok"], true, "{check}");
    let details = check["details"].as_str().unwrap_or_default();
    assert!(
        details.contains(&format!("agent_id: {}", e.layout.name)),
        "{details}"
    );
    assert!(details.contains("registered_benches: 1"), "{details}");

    // BenchCI's agent client library (its CLI lists only cloud benches):
    //   python -c 'from benchci.agent.client import …' URL t0k
    let script = "import json, sys\n\
from benchci.agent.client import get_bench, get_health, list_benches\n\
url, token = sys.argv[1], sys.argv[2]\n\
print(json.dumps({'health': get_health(url, token=token), 'benches': list_benches(url, token=token), 'bench': get_bench(url, 'sim-a', token=token)}))\n";
    let py = benchci_python(&e.benchci);
    let o = Command::new(&py)
        .args(["-c", script, &e.agent.base, TOKEN])
        .env("HOME", e.tmp.path().join("home"))
        .output()
        .unwrap_or_else(|err| panic!("{}: {err}", py.display()));
    assert!(
        o.status.success(),
        "BenchCI's client library failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["health"]["ok"], true, "{v}");
    assert_eq!(v["health"]["registered_mode"], true, "{v}");
    let benches = v["benches"].as_array().unwrap();
    assert_eq!(benches.len(), 1, "{v}");
    let b = &benches[0];
    assert_eq!(b["bench_id"], "sim-a", "{b}");
    assert_eq!(b["agent_id"], e.layout.name.as_str(), "{b}");
    assert_eq!(b["status"], "idle", "{b}");
    assert_eq!(
        b["capabilities"]["transports"],
        serde_json::json!(["uart"]),
        "{b}"
    );
    assert_eq!(b["capabilities"]["has_gpio"], true, "{b}");
    assert_eq!(v["bench"]["node_names"], serde_json::json!(["dut"]), "{v}");
    assert_eq!(
        v["bench"]["bench_file"],
        e.bench.bench.display().to_string(),
        "{v}"
    );
}

#[test]
fn benchci_registered_bench_runs_pass_and_fail_with_matching_exit_codes() {
    let Some(e) = env() else { return };
    // benchci run --agent URL --token t0k --bench-id sim-a --suite pass.yaml --skip-flash --results-dir D
    let pass = e.write("pass.yaml", &suite("registered pass", PING));
    let out = e.run(&[
        "--bench-id",
        "sim-a",
        "--suite",
        pass.to_str().unwrap(),
        "--skip-flash",
    ]);
    out.assert_has("Submitting registered-bench run");
    e.assert_completed(&out, "done", 0, "registered pass");

    // benchci run --agent URL --token t0k --bench-id sim-a --suite fail.yaml --skip-flash --results-dir D
    let fail = e.write("fail.yaml", &suite("registered fail", FAILING_STEPS));
    let out = e.run(&[
        "--bench-id",
        "sim-a",
        "--suite",
        fail.to_str().unwrap(),
        "--skip-flash",
    ]);
    e.assert_completed(&out, "failed", 1, "registered fail");
    // The failure reaches the BenchCI user, with the failed step.
    out.assert_has("failed: UART expectation failed");
    out.assert_has("step_type: expect_uart");
}

#[test]
fn benchci_registered_bench_run_uploads_firmware() {
    let Some(e) = env() else { return };
    let fw = e.write("fw.bin", "\u{7f}ELF not really firmware");
    let pass = e.write("pass.yaml", &suite("with firmware", PING));
    // benchci run --agent URL --token t0k --bench-id sim-a --suite pass.yaml --artifact fw.bin --results-dir D
    let out = e.run(&[
        "--bench-id",
        "sim-a",
        "--suite",
        pass.to_str().unwrap(),
        "--artifact",
        fw.to_str().unwrap(),
    ]);
    let id = e.assert_completed(&out, "done", 0, "with firmware");
    let stored = e.layout.run_dir(&id).join("fw.bin");
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        std::fs::read(&fw).unwrap(),
        "the firmware arrived changed"
    );
    let evidence: Value = serde_json::from_str(
        &std::fs::read_to_string(e.layout.run_dir(&id).join("results/evidence.json")).unwrap(),
    )
    .unwrap();
    let sha = evidence["firmware"]["sha256"].as_str().unwrap();
    out.assert_has(&format!("firmware_sha256: {sha}"));
}

#[test]
fn benchci_uploaded_bench_runs_pass_and_fail_with_matching_exit_codes() {
    let Some(e) = env() else { return };
    let bench = e.bench.bench.to_str().unwrap();
    // benchci run --agent URL --token t0k --bench bench.yaml --suite pass.yaml --skip-flash --results-dir D
    let pass = e.write("pass.yaml", &suite("uploaded pass", PING));
    let out = e.run(&[
        "--bench",
        bench,
        "--suite",
        pass.to_str().unwrap(),
        "--skip-flash",
    ]);
    out.assert_has("Submitting uploaded-bench run");
    let id = e.assert_completed(&out, "done", 0, "uploaded pass");
    assert_eq!(e.agent.run(&id)["mode"], "uploaded");

    // benchci run --agent URL --token t0k --bench bench.yaml --suite fail.yaml --skip-flash --results-dir D
    let fail = e.write("fail.yaml", &suite("uploaded fail", FAILING_STEPS));
    let out = e.run(&[
        "--bench",
        bench,
        "--suite",
        fail.to_str().unwrap(),
        "--skip-flash",
    ]);
    e.assert_completed(&out, "failed", 1, "uploaded fail");
}

#[test]
fn benchci_shows_the_agents_refusals() {
    let Some(e) = env() else { return };
    let pass = e.write("pass.yaml", &suite("refused", PING));
    let s = pass.to_str().unwrap();
    // benchci run --agent URL --token wrong --bench-id sim-a --suite pass.yaml --skip-flash
    let out = e.benchci(&[
        "run",
        "--agent",
        &e.agent.base,
        "--token",
        "wrong",
        "--bench-id",
        "sim-a",
        "--suite",
        s,
        "--skip-flash",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.text);
    out.assert_has("Invalid token");
    // benchci run --agent URL --bench-id sim-a --suite pass.yaml --skip-flash   (no token)
    let out = e.benchci(&[
        "run",
        "--agent",
        &e.agent.base,
        "--bench-id",
        "sim-a",
        "--suite",
        s,
        "--skip-flash",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.text);
    out.assert_has("Missing Authorization header");
    // benchci run --agent URL --token t0k --bench-id nope --suite pass.yaml --skip-flash
    let out = e.run(&["--bench-id", "nope", "--suite", s, "--skip-flash"]);
    assert_eq!(out.code, Some(1), "{}", out.text);
    out.assert_has("bench not found: nope");
}

/// hilt refuses uploaded benches that enable `run_external` (BenchCI runs them: remote code
/// execution for anyone holding the token). The refusal reaches the BenchCI user as a failed
/// run with the reason, exit code 1.
#[test]
fn benchci_sees_the_refusal_of_an_uploaded_bench_with_run_external() {
    let Some(e) = env() else { return };
    let text = std::fs::read_to_string(&e.bench.bench).unwrap();
    let bench = e.write(
        "external-bench.yaml",
        &format!(
            "{text}\nsafety:\n  external:\n    enabled: true\n    targets:\n      t:\n        work_root: \"{}\"\n        argv_prefix: [\"true\"]\n",
            e.tmp.path().display()
        ),
    );
    let pass = e.write("pass.yaml", &suite("refused upload", PING));
    // benchci run --agent URL --token t0k --bench external-bench.yaml --suite pass.yaml --skip-flash --results-dir D
    let out = e.run(&[
        "--bench",
        bench.to_str().unwrap(),
        "--suite",
        pass.to_str().unwrap(),
        "--skip-flash",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.text);
    out.assert_has("refused by agent policy");
    out.assert_has("Run complete: status=failed");
}

/// The id of the only run the agent knows, once it executes its `sleep_ms` step.
fn sleeping_run(agent: &AgentProc) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = agent.get_ok("/v1/runs");
        if let Some(id) = runs["runs"][0]["run_id"].as_str() {
            agent.wait_sleeping(id);
            return id.to_string();
        }
        assert!(Instant::now() < deadline, "BenchCI never submitted: {runs}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A run cancelled on the agent must end the BenchCI client's wait. BenchCI's client polls
/// until the status is `done` or `failed`; hilt reports `cancelled`, a status BenchCI does
/// not know, so its client keeps polling (for up to 1800 s) although the run is over.
#[test]
fn benchci_client_stops_waiting_when_the_run_is_cancelled() {
    let Some(e) = env() else { return };
    let long = e.write("long.yaml", &sleepy("cancelled", 30_000));
    // benchci run --agent URL --token t0k --bench-id sim-a --suite long.yaml --skip-flash --results-dir D
    let args = e.run_args(&[
        "--bench-id",
        "sim-a",
        "--suite",
        long.to_str().unwrap(),
        "--skip-flash",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let client = e.spawn(&args);
    let id = sleeping_run(&e.agent);
    // POST /v1/runs/{id}/cancel (hilt extension)
    let (s, v) = e
        .agent
        .try_post(&format!("/v1/runs/{id}/cancel"), &Value::Null)
        .unwrap();
    assert_eq!(s, 200, "{v}");
    let r = e.agent.wait_finished(&id, Duration::from_secs(15));
    // BenchCI clients only stop on done/failed, so a cancelled run reads as failed + flag.
    assert_eq!(
        (r["status"].as_str(), r["cancelled"].as_bool()),
        (Some("failed"), Some(true)),
        "{r}"
    );
    let out = e.finish(client, Duration::from_secs(15));
    assert!(
        out.code.is_some(),
        "BenchCI's client still polls 15 s after the run ended as {:?}: it only stops on \
         `done`/`failed` (GET /v1/runs/{id} → {r})\n{}",
        r["status"],
        out.text
    );
    assert_eq!(
        out.code,
        Some(1),
        "a cancelled run must not pass:\n{}",
        out.text
    );
}

/// SIGTERM lets the executing run finish; the BenchCI client waiting for it must still get
/// its result (status, events, artifacts.zip) and exit 0 for the passing run. BenchCI polls
/// once a second, so an agent that closes its port the moment the run ends leaves the
/// client with "Fetching run status failed." and exit 1.
#[test]
fn benchci_client_gets_the_result_of_a_run_finished_during_a_drain() {
    let Some(mut e) = env() else { return };
    let slow = e.write("slow.yaml", &sleepy("drained", 2000));
    // benchci run --agent URL --token t0k --bench-id sim-a --suite slow.yaml --skip-flash --results-dir D
    let args = e.run_args(&[
        "--bench-id",
        "sim-a",
        "--suite",
        slow.to_str().unwrap(),
        "--skip-flash",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let client = e.spawn(&args);
    let id = sleeping_run(&e.agent);
    e.agent.signal(Signal::SIGTERM);
    e.agent.wait_log("no new runs", Duration::from_secs(5));
    // A new BenchCI submission is refused with the reason (503).
    let quick = e.write("quick.yaml", &suite("too late", PING));
    let late = e.run(&[
        "--bench-id",
        "sim-a",
        "--suite",
        quick.to_str().unwrap(),
        "--skip-flash",
    ]);
    assert_eq!(late.code, Some(1), "{}", late.text);
    late.assert_has("shutting down");
    let out = e.finish(client, Duration::from_secs(60));
    let st = e.agent.wait_exit(Duration::from_secs(30));
    assert_eq!(st.and_then(|s| s.code()), Some(0), "{}", e.agent.log());
    assert_eq!(e.layout.record(&id)["status"], "done");
    assert_eq!(
        out.code,
        Some(0),
        "the run passed, but the BenchCI client lost it when the agent exited:\n{}",
        out.text
    );
    out.assert_has("Run complete: status=done exit_code=0");
    assert!(e.results().join(format!("agent_{id}.zip")).is_file());
}
