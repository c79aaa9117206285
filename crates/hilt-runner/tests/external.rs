//! run_external end to end: the whole runner, real child processes and a real HTTP server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use hilt_hw::CancelToken;
use hilt_hw::locks::LockConfig;
use hilt_model::run::RunStatus;
use hilt_runner::{RunOptions, RunOutcome};

/// A private temporary directory with a work tree for the external target.
struct Env {
    dir: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const TOOL: &str = r#"
import json, os, sys
mode = sys.argv[1] if len(sys.argv) > 1 else "pass"
os.makedirs("out", exist_ok=True)
def junit(cases):
    body = "".join(cases)
    with open("out/report.xml", "w") as f:
        f.write('<?xml version="1.0"?><testsuite name="hil">' + body + '</testsuite>')
ok = '<testcase classname="hil.boot" name="{0}" time="0.5"/>'
if mode == "pass":
    junit([ok.format("boots"), ok.format("reports_version")])
    with open("out/tool.log", "w") as f:
        f.write("test=%s\nstep=%s\nresults=%s\nbenchci_test=%s\n" % (
            os.environ.get("HILT_TEST_NAME"), os.environ.get("HILT_STEP_INDEX"),
            os.environ.get("HILT_RESULTS_DIR"), os.environ.get("BENCHCI_TEST_NAME")))
    os.makedirs("out/art/sub", exist_ok=True)
    with open("out/art/a.bin", "wb") as f:
        f.write(b"\x00\x01\x02")
    with open("out/art/sub/b.txt", "w") as f:
        f.write("bee")
    print("hello from the tool")
elif mode == "fail":
    junit([ok.format("boots"),
           '<testcase classname="hil.ctrl" name="holds_setpoint"><failure message="drifted by 3 K">trace</failure></testcase>'])
elif mode == "empty":
    junit([])
elif mode == "exit3":
    junit([ok.format("boots")])
    print("simulator crashed", file=sys.stderr)
    sys.exit(3)
elif mode == "flood":
    chunk = b"x" * 65536
    for _ in range(320):
        sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
elif mode == "ctrf":
    with open("out/report.json", "w") as f:
        json.dump({"results": {"tool": {"name": "sim"}, "tests": [
            {"name": "a", "status": "passed", "duration": 5},
            {"name": "b", "status": "skipped", "duration": 0}]}}, f)
elif mode == "logs":
    junit([ok.format("boots")])
    for n in ("one", "two", "three"):
        with open("out/%s.log" % n, "w") as f:
            f.write(n * 100)
    os.makedirs("out/art", exist_ok=True)
    with open("out/art/big.bin", "wb") as f:
        f.write(b"y" * 5000)
    with open("out/art/small.bin", "wb") as f:
        f.write(b"z" * 10)
elif mode == "marker":
    open("ran.marker", "w").close()
    junit([ok.format("boots")])
"#;

impl Env {
    fn new(name: &str) -> Env {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "hilt-ext-{name}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(dir.join("work")).unwrap();
        std::fs::create_dir_all(dir.join("locks")).unwrap();
        // Canonical, so that paths compare equal to what the runner resolves.
        let dir = dir.canonicalize().unwrap();
        std::fs::write(dir.join("work/tool.py"), TOOL).unwrap();
        Env { dir }
    }

    fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The python tool as a command target.
    fn tool_target(&self) -> Value {
        json!({
            "work_root": self.work(),
            "argv_prefix": ["python3", self.work().join("tool.py")],
            "arg_patterns": ["[a-z0-9_-]+"],
        })
    }

    fn write_inputs(&self, target: &Value, steps: &[Value]) -> (PathBuf, PathBuf) {
        let bench = json!({
            "version": 1,
            "bench": {"name": "external bench"},
            "nodes": {"dut": {"kind": "mcu", "gpio": {"x": {"backend": "mock_gpio", "channel": 0, "direction": "output"}}}},
            "safety": {"external": {"enabled": true, "targets": {"sim": target}}},
        });
        let steps: Vec<Value> = steps.iter().map(|s| json!({"run_external": s})).collect();
        let suite = json!({
            "version": 1,
            "suite": {"name": "external suite"},
            "tests": [{"name": "hil job", "steps": steps}],
        });
        let b = self.dir.join("bench.yaml");
        let s = self.dir.join("suite.yaml");
        std::fs::write(&b, serde_json::to_string_pretty(&bench).unwrap()).unwrap();
        std::fs::write(&s, serde_json::to_string_pretty(&suite).unwrap()).unwrap();
        (b, s)
    }

    fn options(&self, target: &Value, steps: &[Value]) -> RunOptions {
        let (bench, suite) = self.write_inputs(target, steps);
        RunOptions {
            bench,
            suite,
            results_dir: Some(self.run_dir()),
            lock_config: Some(LockConfig {
                dir: self.dir.join("locks"),
                enabled: true,
            }),
            ..RunOptions::default()
        }
    }

    fn run(&self, target: &Value, steps: &[Value]) -> RunOutcome {
        let opts = self.options(target, steps);
        hilt_runner::run(&opts, &mut hilt_runner::Quiet, &CancelToken::new()).unwrap()
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.run_dir().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// The step record of the first run_external step: from the failure, from results.json's
/// aggregate, or from the step's event data.
fn record(env: &Env, out: &RunOutcome) -> Value {
    if let Some(f) = out.results.tests.first().and_then(|t| t.failure.as_ref())
        && let Some(r) = f.details.get("external_record")
    {
        return r.clone();
    }
    if let Some(r) = out.results.external_results["steps"].get(0) {
        return r.clone();
    }
    env.events()
        .into_iter()
        .find(|e| e["event_type"] == "step.finished" && e["data"]["external_record"].is_object())
        .map(|e| e["data"]["external_record"].clone())
        .expect("an external record")
}

fn category(out: &RunOutcome) -> String {
    out.results.tests[0]
        .failure
        .as_ref()
        .map(|f| f.category.as_str().to_string())
        .unwrap_or_default()
}

fn message(out: &RunOutcome) -> String {
    out.results.tests[0]
        .failure
        .as_ref()
        .map(|f| f.message.clone())
        .unwrap_or_default()
}

fn source(out: &RunOutcome) -> String {
    out.results.tests[0]
        .failure
        .as_ref()
        .map(|f| f.source.as_str().to_string())
        .unwrap_or_default()
}

fn step(args: &[&str]) -> Value {
    json!({"target": "sim", "args": args, "junit": "out/report.xml", "timeout_ms": 30000})
}

#[test]
fn junit_report_with_two_passing_tests_passes() {
    let env = Env::new("pass");
    let mut s = step(&["pass"]);
    s["source"] = "hil-rig".into();
    s["framework"] = "pytest".into();
    s["logs"] = json!(["out/tool.log", "out/missing.log"]);
    s["artifacts"] = json!(["out/art"]);
    s["artifact_urls"] = json!(["http://lab.example/builds/42/trace.vcd"]);
    let out = env.run(&env.tool_target(), &[s]);
    assert_eq!(
        out.results.status,
        RunStatus::Passed,
        "{:?}",
        out.results.failure
    );
    assert_eq!(out.exit_code, 0);

    let rec = record(&env, &out);
    assert_eq!(rec["schema_version"], "benchci.external_results.v1");
    assert_eq!(rec["status"], "passed");
    assert_eq!(rec["target"], "sim");
    assert_eq!(rec["test_name"], "hil job");
    assert_eq!(rec["step_index"], 1);
    assert_eq!(rec["reports"]["junit"]["test_count"], 2);
    assert_eq!(rec["reports"]["junit"]["path"], "out/report.xml");
    assert_eq!(
        rec["reports"]["junit"]["sha256"].as_str().unwrap().len(),
        64
    );
    assert_eq!(rec["tests"].as_array().unwrap().len(), 2);
    assert_eq!(rec["tests"][0]["source"], "hil-rig");
    assert_eq!(rec["tests"][1]["framework"], "pytest");
    assert_eq!(rec["trigger"]["type"], "command");
    assert_eq!(rec["trigger"]["exit_code"], 0);
    assert!(rec["failure"].is_null());

    // The command's own output.
    let run = env.run_dir();
    let step_log = run.join("logs/external/hil-job-step1-sim.log");
    let text = std::fs::read_to_string(&step_log).unwrap();
    assert!(text.contains("hello from the tool"), "{text}");
    assert_eq!(
        rec["trigger"]["output_log"],
        "logs/external/hil-job-step1-sim.log"
    );

    // Collected log, with the environment the child saw.
    let log = &rec["logs"][0];
    assert_eq!(log["path"], "logs/external/sim-1-tool.log");
    let copied = std::fs::read_to_string(run.join("logs/external/sim-1-tool.log")).unwrap();
    assert!(copied.contains("test=hil job\n"), "{copied}");
    assert!(copied.contains("step=1\n"), "{copied}");
    assert!(copied.contains("benchci_test=hil job\n"), "{copied}");
    assert!(
        copied.contains(&format!("results={}\n", run.display())),
        "{copied}"
    );
    assert_eq!(rec["logs"][1]["skipped"], true);

    // Artifacts, directory walked, plus the external URL reference.
    let arts = rec["artifacts"].as_array().unwrap();
    let paths: Vec<&str> = arts.iter().filter_map(|a| a["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            "external-artifacts/sim/out/art/a.bin",
            "external-artifacts/sim/out/art/sub/b.txt"
        ]
    );
    assert_eq!(
        std::fs::read(run.join("external-artifacts/sim/out/art/a.bin")).unwrap(),
        b"\x00\x01\x02"
    );
    let url = arts.iter().find(|a| a["external"] == true).unwrap();
    assert_eq!(url["url"], "http://lab.example/builds/42/trace.vcd");
    assert_eq!(url["name"], "trace.vcd");

    // Command ledger and events.
    let ledger = std::fs::read_to_string(run.join("command_ledger.jsonl")).unwrap();
    assert!(ledger.contains("tool.py"), "{ledger}");
    assert!(ledger.contains("\"run_external\""), "{ledger}");
    let events = env.events();
    let started = events
        .iter()
        .find(|e| e["event_type"] == "external.started")
        .unwrap();
    assert_eq!(started["data"]["mode"], "command");
    assert_eq!(started["data"]["step_type"], "run_external");
    let finished = events
        .iter()
        .find(|e| e["event_type"] == "external.finished")
        .unwrap();
    assert_eq!(finished["data"]["test_count"], 2);
    assert_eq!(finished["data"]["target"], "sim");
}

#[test]
fn ctrf_report_is_read() {
    let env = Env::new("ctrf");
    let s = json!({"target": "sim", "args": ["ctrf"], "ctrf": "out/report.json"});
    let out = env.run(&env.tool_target(), &[s]);
    assert_eq!(
        out.results.status,
        RunStatus::Passed,
        "{:?}",
        out.results.failure
    );
    let rec = record(&env, &out);
    assert_eq!(rec["reports"]["ctrf"]["test_count"], 2);
    assert_eq!(rec["tests"][1]["status"], "skipped");
}

#[test]
fn failing_junit_test_fails_the_test() {
    let env = Env::new("fail");
    let out = env.run(&env.tool_target(), &[step(&["fail"])]);
    assert_eq!(out.results.status, RunStatus::Failed);
    assert_eq!(out.exit_code, 1);
    assert_eq!(category(&out), "EXTERNAL_RUN_FAILED");
    let msg = message(&out);
    assert!(msg.contains("hil.ctrl.holds_setpoint"), "{msg}");
    assert!(msg.contains("drifted by 3 K"), "{msg}");
    let rec = record(&env, &out);
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["failure"]["category"], "EXTERNAL_RUN_FAILED");
    assert_eq!(rec["reports"]["junit"]["test_count"], 2);
    let f = out.results.tests[0].failure.as_ref().unwrap();
    assert!(f.artifacts.contains_key("external_log_1"));
    let events = env.events();
    let failed = events
        .iter()
        .find(|e| e["event_type"] == "external.failed")
        .unwrap();
    assert_eq!(failed["data"]["failure"]["category"], "EXTERNAL_RUN_FAILED");
}

#[test]
fn empty_report_is_external_results_empty() {
    let env = Env::new("empty");
    let out = env.run(&env.tool_target(), &[step(&["empty"])]);
    assert_eq!(out.results.status, RunStatus::Failed);
    assert_eq!(category(&out), "EXTERNAL_RESULTS_EMPTY");
    assert_eq!(source(&out), "configuration");
    assert_eq!(record(&env, &out)["reports"]["junit"]["test_count"], 0);
}

#[test]
fn non_zero_exit_fails_the_test() {
    let env = Env::new("exit");
    let out = env.run(&env.tool_target(), &[step(&["exit3"])]);
    assert_eq!(out.results.status, RunStatus::Failed);
    assert_eq!(category(&out), "EXTERNAL_RUN_FAILED");
    let msg = message(&out);
    assert!(msg.contains("exited with code 3"), "{msg}");
    let rec = record(&env, &out);
    assert_eq!(rec["trigger"]["exit_code"], 3);
    let log =
        std::fs::read_to_string(env.run_dir().join("logs/external/hil-job-step1-sim.log")).unwrap();
    assert!(log.contains("simulator crashed"), "{log}");
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie waiting for a reaper that is not ours counts as gone.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn hanging_command_times_out_and_leaves_no_process() {
    let env = Env::new("hang");
    let target = json!({
        "work_root": env.work(),
        "argv_prefix": ["sh", "-c", "echo $$ > pids; sleep 60 & echo $! >> pids; wait"],
    });
    let started = Instant::now();
    let out = env.run(&target, &[json!({"target": "sim", "timeout_ms": 300})]);
    let took = started.elapsed();
    assert_eq!(out.results.status, RunStatus::Failed);
    assert_eq!(category(&out), "EXTERNAL_RUN_TIMEOUT");
    assert_eq!(source(&out), "bench_infrastructure");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let pids: Vec<u32> = std::fs::read_to_string(env.work().join("pids"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in pids {
        assert!(!alive(p), "process {p} is still running");
    }
    let rec = record(&env, &out);
    assert_eq!(rec["trigger"]["timed_out"], true);
}

#[test]
fn output_flood_is_capped() {
    let env = Env::new("flood");
    let mut target = env.tool_target();
    target["max_log_bytes"] = 65536.into();
    let out = env.run(&target, &[json!({"target": "sim", "args": ["flood"]})]);
    assert_eq!(
        out.results.status,
        RunStatus::Passed,
        "{:?}",
        out.results.failure
    );
    let size = std::fs::metadata(env.run_dir().join("logs/external/hil-job-step1-sim.log"))
        .unwrap()
        .len();
    assert!((65536..65536 + 4096).contains(&size), "log is {size} bytes");
    let rec = record(&env, &out);
    assert_eq!(rec["trigger"]["output_truncated"], true);
}

#[test]
fn log_and_artifact_caps_truncate_and_skip() {
    let env = Env::new("caps");
    let mut target = env.tool_target();
    target["max_logs"] = 2.into();
    target["max_log_bytes"] = 150.into();
    target["max_log_total_bytes"] = 200.into();
    target["max_artifact_bytes"] = 1000.into();
    let mut s = step(&["logs"]);
    s["logs"] = json!(["out/one.log", "out/two.log", "out/three.log"]);
    s["artifacts"] = json!(["out/art"]);
    let out = env.run(&target, &[s]);
    assert_eq!(
        out.results.status,
        RunStatus::Passed,
        "{:?}",
        out.results.failure
    );
    let rec = record(&env, &out);
    let logs = rec["logs"].as_array().unwrap();
    assert_eq!(logs[0]["size_bytes"], 150);
    assert_eq!(logs[0]["truncated"], true);
    assert_eq!(logs[1]["size_bytes"], 50, "{logs:?}");
    assert_eq!(logs[1]["truncated"], true);
    assert_eq!(logs[2]["skipped"], true);
    assert!(logs[2]["note"].as_str().unwrap().contains("max_logs"));
    let arts = rec["artifacts"].as_array().unwrap();
    let big = arts
        .iter()
        .find(|a| a["name"] == "out/art/big.bin")
        .unwrap();
    assert_eq!(big["skipped"], true);
    assert!(big["note"].as_str().unwrap().contains("max_artifact_bytes"));
    let small = arts
        .iter()
        .find(|a| a["name"] == "out/art/small.bin")
        .unwrap();
    assert_eq!(small["size_bytes"], 10);
    assert!(
        !env.run_dir()
            .join("external-artifacts/sim/out/art/big.bin")
            .exists()
    );
}

#[test]
fn dotdot_log_path_is_a_security_violation() {
    let env = Env::new("dotdot");
    std::fs::write(env.dir.join("secret.txt"), "top secret").unwrap();
    let mut s = step(&["pass"]);
    s["logs"] = json!(["../secret.txt"]);
    let out = env.run(&env.tool_target(), &[s]);
    assert_eq!(out.results.status, RunStatus::Failed);
    assert_eq!(category(&out), "EXTERNAL_OUTPUT_SECURITY_VIOLATION");
    assert_eq!(source(&out), "configuration");
    assert!(
        !env.run_dir()
            .join("logs/external/sim-1-secret.txt")
            .exists()
    );
}

#[test]
fn dotdot_report_path_is_refused_before_the_run() {
    let env = Env::new("dotdot-junit");
    let mut s = step(&["marker"]);
    s["junit"] = "../report.xml".into();
    let out = env.run(&env.tool_target(), &[s]);
    assert_eq!(out.results.status, RunStatus::Error);
    assert_eq!(out.exit_code, 3);
    assert!(!env.work().join("ran.marker").exists());
}

#[test]
fn symlinked_report_outside_the_root_is_a_security_violation() {
    let env = Env::new("symlink");
    let outside = env.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        outside.join("report.xml"),
        r#"<testsuite><testcase name="x"/></testsuite>"#,
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, env.work().join("link")).unwrap();
    let mut s = step(&["marker"]);
    s["junit"] = "link/report.xml".into();
    let out = env.run(&env.tool_target(), &[s]);
    assert_eq!(out.results.status, RunStatus::Failed);
    assert_eq!(category(&out), "EXTERNAL_OUTPUT_SECURITY_VIOLATION");
    let msg = message(&out);
    assert!(msg.contains("escapes"), "{msg}");
    let rec = record(&env, &out);
    assert!(rec["tests"].as_array().unwrap().is_empty());
}

#[test]
fn symlink_inside_an_artifact_directory_cannot_escape() {
    let env = Env::new("symlink-art");
    std::fs::write(env.dir.join("secret.txt"), "top secret").unwrap();
    std::fs::create_dir_all(env.work().join("arts")).unwrap();
    std::fs::write(env.work().join("arts/ok.txt"), "fine").unwrap();
    std::os::unix::fs::symlink(env.dir.join("secret.txt"), env.work().join("arts/leak.txt"))
        .unwrap();
    let mut s = step(&["marker"]);
    s["artifacts"] = json!(["arts"]);
    let out = env.run(&env.tool_target(), &[s]);
    assert_eq!(category(&out), "EXTERNAL_OUTPUT_SECURITY_VIOLATION");
    assert!(
        !env.run_dir()
            .join("external-artifacts/sim/arts/leak.txt")
            .exists()
    );
}

#[test]
fn symlinked_cwd_outside_the_work_root_does_not_run() {
    let env = Env::new("symlink-cwd");
    let outside = env.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, env.work().join("elsewhere")).unwrap();
    let mut s = step(&["marker"]);
    s["cwd"] = "elsewhere".into();
    let out = env.run(&env.tool_target(), &[s]);
    assert_eq!(category(&out), "EXTERNAL_OUTPUT_SECURITY_VIOLATION");
    assert!(!outside.join("ran.marker").exists());
}

#[test]
fn argument_outside_the_patterns_is_a_configuration_error() {
    let env = Env::new("args");
    let out = env.run(&env.tool_target(), &[step(&["marker", "--evil;rm"])]);
    assert_eq!(out.results.status, RunStatus::Error);
    assert_eq!(
        hilt_runner::classify::exit_code(out.results.status, out.results.failure.as_ref()),
        3
    );
    assert_eq!(out.exit_code, 3);
    assert!(out.results.tests.is_empty());
    assert!(!env.work().join("ran.marker").exists());
}

#[test]
fn cancel_stops_a_long_command() {
    let env = Env::new("cancel");
    let target = json!({"work_root": env.work(), "argv_prefix": ["sleep", "60"]});
    let opts = env.options(&target, &[json!({"target": "sim", "timeout_ms": 120000})]);
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        c2.cancel();
    });
    let started = Instant::now();
    let out = hilt_runner::run(&opts, &mut hilt_runner::Quiet, &cancel).unwrap();
    canceller.join().unwrap();
    assert_eq!(out.results.status, RunStatus::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// HTTP mode against a tiny HTTP/1.1 server
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

type Handler = dyn Fn(&Request) -> (u16, String) + Send + Sync;

struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(handler: Box<Handler>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(req) = read_request(&stream) {
                    seen.lock().unwrap().push(req.clone());
                    let (code, body) = handler(&req);
                    let mut s = stream;
                    let _ = write!(
                        s,
                        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.flush();
                }
            }
        });
        Server { port, requests }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/api", self.port)
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A job service: POST /api/jobs → {"job_id": "j1"}; GET /api/jobs/j1 → `running` for the
/// first poll, then `last`.
fn job_service(last: &'static str) -> Server {
    let polls = AtomicUsize::new(0);
    Server::start(Box::new(move |req| {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/api/jobs") => (202, r#"{"job_id": "j1"}"#.to_string()),
            ("GET", "/api/jobs/j1") => {
                let n = polls.fetch_add(1, Ordering::SeqCst);
                let status = if n == 0 { "running" } else { last };
                (200, format!(r#"{{"job": {{"status": "{status}"}}}}"#))
            }
            _ => (404, "{}".to_string()),
        }
    }))
}

/// An environment variable that is set, with a value usable as a header.
fn header_env_var() -> (String, String) {
    ["HOME", "USER", "LOGNAME", "PATH", "CARGO_PKG_NAME"]
        .iter()
        .find_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
                .map(|v| (k.to_string(), v))
        })
        .expect("one of HOME, USER, LOGNAME, PATH set")
}

fn http_target(env: &Env, server: &Server) -> Value {
    json!({"work_root": env.work(), "base_url": server.base()})
}

fn http_step(server: &Server, env_var: &str) -> Value {
    json!({
        "target": "sim",
        "timeout_ms": 20000,
        "http": {
            "url": format!("{}/jobs", server.base()),
            "headers": {"Accept": "application/json", "Authorization": "Bearer plain-secret"},
            "headers_env": {"X-Token": env_var},
            "json": {"suite": "smoke", "firmware": "5.1.0"},
            "poll": {
                "url": format!("{}/jobs/{{job_id}}", server.base()),
                "interval_ms": 500,
                "status_json_path": "job.status",
            },
        },
    })
}

#[test]
fn http_job_that_passes() {
    let env = Env::new("http-pass");
    let server = job_service("passed");
    let (var, value) = header_env_var();
    let out = env.run(&http_target(&env, &server), &[http_step(&server, &var)]);
    assert_eq!(
        out.results.status,
        RunStatus::Passed,
        "{:?}",
        out.results.failure
    );

    let reqs = server.requests.lock().unwrap().clone();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/api/jobs");
    let body: Value = serde_json::from_str(&reqs[0].body).unwrap();
    assert_eq!(body["suite"], "smoke");
    let token = reqs[0]
        .headers
        .iter()
        .find(|(k, _)| k == "x-token")
        .unwrap();
    assert_eq!(token.1, value);
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert!(reqs[1..].iter().all(|r| r.path == "/api/jobs/j1"));

    let rec = record(&env, &out);
    assert_eq!(rec["trigger"]["type"], "http");
    assert_eq!(rec["trigger"]["method"], "POST");
    assert_eq!(rec["trigger"]["job_id"], "j1");
    assert_eq!(rec["trigger"]["status_code"], 202);
    assert_eq!(rec["trigger"]["headers"]["X-Token"], "***");
    assert_eq!(rec["trigger"]["headers"]["Authorization"], "***");
    assert_eq!(rec["trigger"]["headers"]["Accept"], "application/json");
    assert_eq!(rec["trigger"]["poll"]["attempts"], 2);
    assert_eq!(rec["trigger"]["poll"]["status_value"], "passed");
    let all = serde_json::to_string(&rec).unwrap();
    assert!(!all.contains("plain-secret"));
    let events = std::fs::read_to_string(env.run_dir().join("events.jsonl")).unwrap();
    assert!(!events.contains("plain-secret"));
    let log =
        std::fs::read_to_string(env.run_dir().join("logs/external/hil-job-step1-sim.log")).unwrap();
    assert!(log.contains("HTTP 202"), "{log}");
    assert!(!log.contains("plain-secret"));
}

#[test]
fn http_job_that_fails() {
    let env = Env::new("http-fail");
    let server = job_service("failed");
    let (var, _) = header_env_var();
    let out = env.run(&http_target(&env, &server), &[http_step(&server, &var)]);
    assert_eq!(out.results.status, RunStatus::Failed);
    assert_eq!(category(&out), "EXTERNAL_RUN_FAILED");
    let msg = message(&out);
    assert!(msg.contains("`j1`") && msg.contains("`failed`"), "{msg}");
    let rec = record(&env, &out);
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["trigger"]["headers"]["X-Token"], "***");
}

#[test]
fn http_job_that_never_finishes_times_out() {
    let env = Env::new("http-timeout");
    let server = job_service("running");
    let (var, _) = header_env_var();
    let mut s = http_step(&server, &var);
    s["timeout_ms"] = 1200.into();
    let started = Instant::now();
    let out = env.run(&http_target(&env, &server), &[s]);
    assert_eq!(category(&out), "EXTERNAL_RUN_TIMEOUT");
    assert!(message(&out).contains("running"), "{}", message(&out));
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn unreachable_service_is_bench_infrastructure() {
    let env = Env::new("http-down");
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}/api");
    let target = json!({"work_root": env.work(), "base_url": base});
    let s = json!({"target": "sim", "timeout_ms": 5000, "http": {"url": format!("{base}/jobs")}});
    let out = env.run(&target, &[s]);
    assert_eq!(out.results.status, RunStatus::Failed);
    assert_eq!(category(&out), "EXTERNAL_RUN_FAILED");
    assert_eq!(source(&out), "bench_infrastructure");
    assert!(message(&out).contains("cannot reach"), "{}", message(&out));
}

#[test]
fn http_url_outside_base_url_is_refused() {
    let env = Env::new("http-base");
    let server = job_service("passed");
    let (var, _) = header_env_var();
    let mut s = http_step(&server, &var);
    s["http"]["url"] = format!("{}x/jobs", server.base()).into();
    let out = env.run(&http_target(&env, &server), &[s]);
    assert_eq!(out.results.status, RunStatus::Error);
    assert_eq!(out.exit_code, 3);
    assert!(server.requests.lock().unwrap().is_empty());
}

#[test]
fn missing_header_env_variable_fails_before_any_request() {
    let env = Env::new("http-env");
    let server = job_service("passed");
    let s = http_step(&server, "HILT_TEST_VARIABLE_THAT_IS_NOT_SET");
    let out = env.run(&http_target(&env, &server), &[s]);
    assert_eq!(out.results.status, RunStatus::Failed);
    assert_eq!(category(&out), "EXTERNAL_RUN_FAILED");
    assert_eq!(source(&out), "configuration");
    assert!(
        message(&out).contains("HILT_TEST_VARIABLE_THAT_IS_NOT_SET"),
        "{}",
        message(&out)
    );
    assert!(server.requests.lock().unwrap().is_empty());
}
