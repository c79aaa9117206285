//! The `remote_gpio` backend through the real binaries: `hilt agent serve` (a child
//! process) serves `/v1/gpio` on a `sim:loopback…` chip, whose output line 2k drives input
//! line 2k+1 50 ms later, and `hilt run` drives the lines of a bench node through it.
//! Failures: the agent down, a wrong token, and `token_env` unset.

mod common;

use std::path::{Path, PathBuf};

use common::{hilt, json, last_run};
use hilt_testkit::process::{Layout, TOKEN, unique, write_agent_yaml};

const TOKEN_ENV: &str = "HILT_TEST_REMOTE_GPIO_TOKEN";

fn write_bench(dir: &Path, port: u16, token_env: &str) -> PathBuf {
    let line = |n: u32, dir: &str, extra: &str| {
        format!(
            "{{backend: remote_gpio, host: 127.0.0.1, port: {port}, token_env: {token_env}, \
             chip: \"sim:loopback-cli\", line: {n}, direction: {dir}{extra}}}"
        )
    };
    let text = format!(
        "version: 1\nbench: {{name: remote rig}}\ndefaults: {{node: dut}}\nnodes:\n  dut:\n    kind: mcu\n    gpio:\n      \
         led: {}\n      led_seen: {}\n      nreset: {}\n      nreset_seen: {}\n",
        line(4, "output", ""),
        line(5, "input", ", edge: both"),
        line(6, "output", ", active_high: false"),
        line(7, "input", ", edge: both"),
    );
    let p = dir.join("bench.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn write_suite(dir: &Path, steps: &str) -> PathBuf {
    let p = dir.join("suite.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nsuite: {{name: remote gpio}}\ntests:\n  - name: lines\n    steps:\n{steps}"
        ),
    )
    .unwrap();
    p
}

/// `hilt run` with the token variable set to `token` (unset with `None`).
fn run_hilt(dir: &Path, bench: &Path, suite: &Path, token: Option<&str>) -> (i32, String, PathBuf) {
    let mut c = hilt();
    c.env("HILT_LOCK_DIR", dir.join("locks"))
        .args(["run", "--bench"])
        .arg(bench)
        .arg("--suite")
        .arg(suite)
        .arg("--results-dir")
        .arg(dir.join("results"));
    match token {
        Some(t) => c.env(TOKEN_ENV, t),
        None => c.env_remove(TOKEN_ENV),
    };
    let out = c.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    (
        code,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        last_run(&dir.join("results")),
    )
}

fn agent(root: &Path) -> hilt_testkit::process::AgentProc {
    let l = Layout::new(root, &unique("hilt-remote-gpio"));
    write_agent_yaml(&l.config(), &l.name, &[]);
    l.start()
}

fn port_of(a: &hilt_testkit::process::AgentProc) -> u16 {
    a.base.rsplit(':').next().unwrap().parse().unwrap()
}

const STEPS: &str = "      - gpio_get: {node: dut, line: led_seen, expect: false}
      - gpio_expect: {node: dut, line: nreset_seen, value: true, within_ms: 2000}
      - gpio_set: {node: dut, line: led, value: true}
      - gpio_wait_edge: {node: dut, line: led_seen, edge: rising, within_ms: 2000}
      - gpio_expect: {node: dut, line: led_seen, value: true, within_ms: 2000}
      - gpio_set: {node: dut, line: nreset, value: true}
      - gpio_wait_edge: {node: dut, line: nreset_seen, edge: falling, within_ms: 2000}
      - gpio_get: {node: dut, line: nreset_seen, expect: false}
      - gpio_set: {node: dut, line: led, value: false}
      - gpio_expect: {node: dut, line: led_seen, value: false, within_ms: 2000}
";

#[test]
fn gpio_steps_drive_a_remote_agents_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let a = agent(&tmp.path().join("agent"));
    let dir = tmp.path().join("client");
    std::fs::create_dir_all(&dir).unwrap();
    let bench = write_bench(&dir, port_of(&a), TOKEN_ENV);
    let suite = write_suite(&dir, STEPS);
    let (code, err, run) = run_hilt(&dir, &bench, &suite, Some(TOKEN));
    let r = json(&run.join("results.json"));
    assert_eq!(code, 0, "{err}\n{r:#}\nagent log:\n{}", a.log());
    let locks = &r["resource_locks"]["locks"];
    let keys: Vec<&str> = locks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["key"].as_str())
        .collect();
    let want = format!("gpio:remote:127.0.0.1:{}:sim:loopback-cli:4", port_of(&a));
    assert!(keys.contains(&want.as_str()), "{keys:?}");
    // The edge waits ran on the agent (wait_edge), not as sampled gets.
    let logs = session_logs(&tmp.path().join("agent"));
    assert!(logs.contains("wait_edge 5 edge=rising"), "{logs}");
    assert!(
        logs.contains("wait_edge 7 edge=falling"),
        "active-low: logical rising is physical falling\n{logs}"
    );
    // The session was stopped at the end of the run: a new one can take the same lines;
    // an edge that never comes is a GPIO expectation failure after within_ms.
    let suite = write_suite(
        &dir,
        "      - gpio_wait_edge: {node: dut, line: led_seen, edge: rising, within_ms: 700}\n",
    );
    let started = std::time::Instant::now();
    let (code, err, run) = run_hilt(&dir, &bench, &suite, Some(TOKEN));
    let r = json(&run.join("results.json"));
    assert_eq!(code, 1, "{err}\n{r:#}");
    assert_eq!(r["failure"]["category"], "GPIO_EXPECTATION_FAILED", "{r:#}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(700));
}

/// Every GPIO session log the agent wrote under its root.
fn session_logs(root: &Path) -> String {
    let mut out = String::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().contains("gpio") {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    out
}

#[test]
fn self_test_opens_the_remote_lines_without_driving_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let a = agent(&tmp.path().join("agent"));
    let bench = write_bench(tmp.path(), port_of(&a), TOKEN_ENV);
    let out = hilt()
        .env(TOKEN_ENV, TOKEN)
        .env("HILT_LOCK_DIR", tmp.path().join("locks"))
        .args([
            "bench",
            "self-test",
            "--open-hardware",
            "--read-inputs",
            "--json",
            "--bench",
        ])
        .arg(&bench)
        .arg("--log-dir")
        .arg(tmp.path().join("health"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["health_status"], "healthy", "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    let check = |id: &str| {
        checks
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id}: {report:#}"))
    };
    assert_eq!(check("node.dut.gpio.start")["status"], "pass");
    assert_eq!(check("node.dut.gpio.led_seen.read")["status"], "pass");
    // Only the inputs were requested: no output was driven.
    let logs = session_logs(&tmp.path().join("agent"));
    assert!(
        logs.contains("lines=[5:input,edge=both 7:input,edge=both]"),
        "{logs}"
    );
    // A node with only outputs: the agent is asked for health, no line is taken.
    let text = std::fs::read_to_string(&bench).unwrap();
    let outputs_only: String = text
        .lines()
        .filter(|l| !l.contains("direction: input"))
        .map(|l| format!("{l}\n"))
        .collect();
    let outs = tmp.path().join("outputs.yaml");
    std::fs::write(&outs, outputs_only).unwrap();
    let out = hilt()
        .env(TOKEN_ENV, TOKEN)
        .env("HILT_LOCK_DIR", tmp.path().join("locks"))
        .args([
            "bench",
            "self-test",
            "--open-hardware",
            "--read-inputs",
            "--json",
            "--bench",
        ])
        .arg(&outs)
        .arg("--log-dir")
        .arg(tmp.path().join("health"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["health_status"], "healthy", "{report:#}");
    // Without the token the static check fails, naming the variable.
    let out = hilt()
        .env_remove(TOKEN_ENV)
        .env("HILT_LOCK_DIR", tmp.path().join("locks"))
        .args(["bench", "self-test", "--json", "--bench"])
        .arg(&bench)
        .arg("--log-dir")
        .arg(tmp.path().join("health"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("node.dut.gpio.led.token"), "{text}");
    assert!(text.contains(TOKEN_ENV), "{text}");
}

#[test]
fn a_wrong_token_is_a_clear_refusal_naming_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let a = agent(&tmp.path().join("agent"));
    let dir = tmp.path().join("client");
    std::fs::create_dir_all(&dir).unwrap();
    let port = port_of(&a);
    let bench = write_bench(&dir, port, TOKEN_ENV);
    let suite = write_suite(&dir, STEPS);
    let (code, err, run) = run_hilt(&dir, &bench, &suite, Some("not-the-token"));
    let r = json(&run.join("results.json"));
    assert_eq!(code, 4, "bench infrastructure exit code: {err}\n{r:#}");
    assert_eq!(r["failure"]["category"], "GPIO_LINE_UNREACHABLE", "{r:#}");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "the remote GPIO agent at 127.0.0.1:{port} refused the token from `{TOKEN_ENV}` (HTTP 403 on /v1/gpio/session/start): Invalid token"
        )),
        "{msg}"
    );
}

#[test]
fn an_agent_that_is_down_is_bench_infrastructure_naming_host_and_port() {
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bench = write_bench(tmp.path(), port, TOKEN_ENV);
    let suite = write_suite(tmp.path(), STEPS);
    let (code, err, run) = run_hilt(tmp.path(), &bench, &suite, Some(TOKEN));
    let r = json(&run.join("results.json"));
    assert_eq!(code, 4, "{err}\n{r:#}");
    assert_eq!(r["failure"]["source"], "bench_infrastructure", "{r:#}");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "the remote GPIO agent at 127.0.0.1:{port} is not reachable"
        )),
        "{msg}"
    );
}

#[test]
fn an_unset_token_env_is_a_located_configuration_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bench = write_bench(tmp.path(), 8090, TOKEN_ENV);
    let suite = write_suite(tmp.path(), STEPS);
    let (code, err, run) = run_hilt(tmp.path(), &bench, &suite, None);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!(
            "bench.yaml:8:75: nodes.dut.gpio.led.token_env: environment variable `{TOKEN_ENV}` (named by token_env) is not set"
        )),
        "{err}"
    );
    let r = json(&run.join("results.json"));
    assert_eq!(r["failure"]["category"], "CONFIG_ERROR");
}
