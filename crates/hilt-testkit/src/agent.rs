//! Shared fixtures: a real agent served in-process on 127.0.0.1:0 (its own tokio runtime),
//! benches (mock-only or wired to a simulated DUT), a small blocking HTTP client and a raw
//! socket client for requests no well-behaved client would send.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hilt_agent::{AgentError, AgentSettings, Control};
use hilt_hw::locks::LockConfig;
use hilt_sim::{DutConfig, SimDut, SimDutHandle};
use serde_json::{Value, json};

pub const TOKEN: &str = "t0k";

/// A temporary lab: work dir, lock dir, bench files, simulated DUTs.
pub struct Lab {
    pub dir: tempfile::TempDir,
    duts: Vec<SimDutHandle>,
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Lab {
    pub fn new() -> Lab {
        Lab {
            dir: tempfile::tempdir().unwrap(),
            duts: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn work_dir(&self) -> PathBuf {
        self.path("work")
    }

    /// A bench without serial ports: GPIO lines and a power outlet, all mocked in memory.
    /// Node and resource names carry `node` so two such benches never share a lock key.
    pub fn mock_bench(&self, file: &str, node: &str) -> PathBuf {
        let text = format!(
            "version: 1\nbench:\n  name: mock {node}\nnodes:\n  {node}:\n    kind: mcu\n    gpio:\n      \
             led: {{backend: mock_gpio, channel: 0, direction: output}}\n      \
             button: {{backend: mock_gpio, channel: 1, direction: input}}\n\
             resources:\n  {node}_mains:\n    kind: power_controller\n    \
             driver: {{type: mock_power, outlets: {{main: true}}}}\n"
        );
        let p = self.path(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Starts a simulated DUT (booted and ready) and writes a bench wired to it like
    /// `hilt demo`'s bench (UART console, reset/ready/LED lines, power outlet, shunt).
    pub fn sim_bench(&mut self, file: &str, node: &str) -> PathBuf {
        let port = self.path(&format!("{node}.tty"));
        let control = self.path(&format!("{node}.sock"));
        let dut = SimDut::start(DutConfig {
            link: Some(port.clone()),
            control: Some(control.clone()),
            ..DutConfig::default()
        })
        .unwrap();
        assert!(
            dut.wait_ready(Duration::from_secs(10)),
            "the simulated DUT did not boot"
        );
        self.duts.push(dut);
        let text = SIM_BENCH
            .replace("{{NODE}}", node)
            .replace("{{PORT}}", &port.display().to_string())
            .replace("{{CONTROL}}", &control.display().to_string());
        let p = self.path(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes agent.yaml registering `benches` (id, bench file); `extra` is appended
    /// verbatim (top-level keys such as `limits:`).
    pub fn agent_yaml(&self, benches: &[(&str, &Path)], extra: &str) -> PathBuf {
        let mut text = String::from("agent:\n  id: test-agent\n  name: Test Agent\nbenches:");
        if benches.is_empty() {
            text.push_str(" []\n");
        } else {
            text.push('\n');
            for (id, file) in benches {
                text.push_str(&format!(
                    "  - id: {id}\n    bench_file: {}\n    tags: [test]\n",
                    file.display()
                ));
            }
        }
        text.push_str(extra);
        let p = self.path("agent.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn settings(&self, config: Option<&Path>, locks: &str) -> AgentSettings {
        settings(
            &self.work_dir(),
            config,
            &self.path(locks),
            &self.path("restart-agent"),
        )
    }

    /// Starts an agent on this lab's work dir (standalone when `config` is `None`).
    pub fn start(&self, config: Option<&Path>) -> Agent {
        Agent::start(self.settings(config, "locks"))
    }
}

const SIM_BENCH: &str = r#"version: 1
bench:
  name: sim {{NODE}}
  description: Simulated DUT on a pseudo-terminal
defaults:
  node: {{NODE}}
  timeouts: {within_ms: 2000}
nodes:
  {{NODE}}:
    kind: simulator
    role: primary
    reset: {method: gpio, line: reset, pulse_ms: 5}
    transports:
      console: {backend: uart, port: "{{PORT}}", baud: 115200}
    gpio:
      reset:  {backend: mock_gpio, channel: 0, direction: output, sim_control: "{{CONTROL}}"}
      ready:  {backend: mock_gpio, channel: 1, direction: input, edge: both, sim_control: "{{CONTROL}}"}
      led:    {backend: mock_gpio, channel: 2, direction: input, edge: both, sim_control: "{{CONTROL}}"}
resources:
  {{NODE}}_mains:
    kind: power_controller
    driver: {type: mock_power, outlets: {dut: true}, sim_control: "{{CONTROL}}"}
  {{NODE}}_shunt:
    kind: measurement
    driver: {type: mock_measurement, value: 0.012, quantity: current, unit: A, noise: 0.0005}
"#;

/// Test settings: token [`TOKEN`], locks in `locks`, a private restart file (the default
/// lives in /tmp and is shared by name), the start-up self-test on.
pub fn settings(
    work_dir: &Path,
    config: Option<&Path>,
    locks: &Path,
    restart_file: &Path,
) -> AgentSettings {
    AgentSettings {
        work_dir: work_dir.to_path_buf(),
        config_path: config.map(Path::to_path_buf),
        token: Some(TOKEN.into()),
        self_test_read_inputs: false,
        self_test_read_measurements: false,
        self_test_on_start: true,
        lock_config: Some(LockConfig {
            dir: locks.to_path_buf(),
            enabled: true,
        }),
        restart_file: Some(restart_file.to_path_buf()),
        policy: Default::default(),
        overrides: Default::default(),
    }
}

/// A suite of the given YAML test list items.
pub fn suite(name: &str, tests_yaml: &str) -> String {
    format!("version: 1\nsuite:\n  name: {name}\ntests:\n{tests_yaml}")
}

/// One test that sleeps (no hardware touched, so no lock taken).
pub fn sleep_suite(ms: u64) -> String {
    suite(
        "sleepy",
        &format!("  - name: sleeps\n    steps:\n      - sleep_ms: {ms}\n"),
    )
}

/// ping → pong on a simulated DUT's console, then a pause.
pub fn ping_suite(node: &str, sleep_ms: u64) -> String {
    suite(
        "ping",
        &format!(
            "  - name: answers ping\n    steps:\n      \
             - send_uart: {{node: {node}, transport: console, data: \"ping\\n\"}}\n      \
             - expect_uart: {{node: {node}, transport: console, contains: \"pong\"}}\n      \
             - sleep_ms: {sleep_ms}\n"
        ),
    )
}

/// How a request authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    Token,
    None,
    /// The whole `Authorization` header value.
    Header(&'a str),
}

pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response ({}) is not JSON: {e}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status and the error body shape (`error` and `detail`, both strings).
    pub fn expect_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        let v = self.json();
        let err = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no `error` string in {v}"));
        assert!(v["detail"].is_string(), "no `detail` string in {v}");
        err.to_string()
    }
}

/// An agent served in-process; dropped = cancelled and shut down.
pub struct Agent {
    rt: Option<tokio::runtime::Runtime>,
    pub addr: SocketAddr,
    pub base: String,
    pub work_dir: PathBuf,
    control: tokio::sync::mpsc::Sender<Control>,
    server: Option<tokio::task::JoinHandle<Result<(), AgentError>>>,
    http: ureq::Agent,
}

impl Agent {
    pub fn start(settings: AgentSettings) -> Agent {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let work_dir = settings.work_dir.clone();
        let server = rt.spawn(hilt_agent::serve(listener, settings, rx));
        // No connection reuse: the server may close a connection whose request body it
        // refused without reading, and ureq does not retry a POST on a stale connection.
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build()
            .into();
        let mut agent = Agent {
            rt: Some(rt),
            addr,
            base: format!("http://{addr}"),
            work_dir,
            control: tx,
            server: Some(server),
            http,
        };
        agent.wait_healthy();
        agent
    }

    /// Polls `/health` until the agent answers (it answers once its start-up self-test is
    /// done); fails at once if `serve` returned.
    fn wait_healthy(&mut self) {
        let probe: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(500)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.server.as_ref().is_some_and(|s| s.is_finished()) {
                let server = self.server.take().unwrap();
                let res = self.rt().block_on(server);
                panic!("the agent stopped during start-up: {res:?}");
            }
            if let Ok(r) = probe.get(format!("{}/health", self.base)).call()
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the agent never answered /health"
            );
            // Only reached when a probe failed fast (not a timed-out wait): a short pause.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("agent runtime already gone")
    }

    /// Simulates a crash: every task of the agent is dropped at once, nothing is flushed.
    /// (Blocking threads executing runs are detached; they hold no lock in the tests that
    /// use this.)
    pub fn crash(mut self) {
        self.server = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    pub fn control(&self, c: Control) {
        self.rt().block_on(self.control.send(c)).unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        auth: Auth,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Resp {
        let url = self.url(path);
        let mut b = ureq::http::Request::builder().method(method).uri(&url);
        match auth {
            Auth::Token => b = b.header("Authorization", format!("Bearer {TOKEN}")),
            Auth::Header(h) => b = b.header("Authorization", h),
            Auth::None => {}
        }
        if let Some(ct) = content_type {
            b = b.header("Content-Type", ct);
        }
        let result = match body {
            Some(body) => self.http.run(b.body(body.to_vec()).unwrap()),
            None => self.http.run(b.body(()).unwrap()),
        };
        let mut r = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        Resp {
            status,
            content_type,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, Auth::Token, None, None)
    }

    pub fn post(&self, path: &str) -> Resp {
        self.request("POST", path, Auth::Token, None, None)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.request(
            "POST",
            path,
            Auth::Token,
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }

    pub fn get_json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// `POST /v1/runs/json` with skip_flash; returns the run id.
    pub fn submit(&self, bench_id: &str, suite_yaml: &str) -> String {
        let r = self.post_json(
            "/v1/runs/json",
            &json!({"bench_id": bench_id, "suite_yaml": suite_yaml, "skip_flash": true}),
        );
        assert_eq!(r.status, 200, "submit: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "queued");
        assert_eq!(v["mode"], "registered");
        assert_eq!(v["bench_id"], bench_id);
        v["run_id"].as_str().unwrap().to_string()
    }

    /// `POST /v1/runs` (uploaded bench, skip_flash); returns the run id.
    pub fn upload(&self, bench_yaml: &str, suite_yaml: &str) -> String {
        let (ct, body) = Multipart::new()
            .file("bench_yaml", "bench.yaml", bench_yaml.as_bytes())
            .file("suite_yaml", "suite.yaml", suite_yaml.as_bytes())
            .field("skip_flash", "true")
            .finish();
        let r = self.request("POST", "/v1/runs", Auth::Token, Some(&ct), Some(&body));
        assert_eq!(r.status, 200, "upload: {}", r.text());
        let v = r.json();
        assert_eq!(v["mode"], "uploaded");
        v["run_id"].as_str().unwrap().to_string()
    }

    pub fn run(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/runs/{id}"))
    }

    /// Polls the run until `pred` holds on it.
    pub fn wait_run(&self, id: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.run(id);
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never reached the expected state: {v}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls the run until it is done, failed or cancelled.
    /// Polls the run until it is done, failed or cancelled and its final event (the
    /// agent's run.finished/failed/cancelled, with `exit_code`) is recorded; returns the run.
    ///
    /// The two are awaited separately so that tests about other things do not trip over
    /// a status that turns terminal just before the final event is appended; the test
    /// `terminal_status_comes_with_its_final_event` checks that they come together.
    pub fn wait_finished(&self, id: &str) -> Value {
        let terminal =
            |v: &Value| matches!(v["status"].as_str(), Some("done" | "failed" | "cancelled"));
        self.wait_run(id, Duration::from_secs(60), terminal);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.events(id);
            if events.last().is_some_and(is_final) {
                return self.run(id);
            }
            assert!(
                Instant::now() < deadline,
                "run {id} is finished but its final event never came: {events:#?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn events(&self, id: &str) -> Vec<Value> {
        self.get_json(&format!("/v1/runs/{id}/events"))["events"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Reads `/v1/runs/{id}/events/stream` to its end; returns the events it carried.
    pub fn sse(&self, id: &str, after: Option<u64>) -> Vec<Value> {
        let path = match after {
            Some(a) => format!("/v1/runs/{id}/events/stream?after={a}"),
            None => format!("/v1/runs/{id}/events/stream"),
        };
        let r = self
            .http
            .get(self.url(&path))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers().get("content-type").unwrap().to_str().unwrap();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        let reader = BufReader::new(r.into_body().into_reader());
        let mut out = Vec::new();
        for line in reader.lines() {
            let line = line.unwrap();
            if let Some(data) = line.strip_prefix("data:") {
                out.push(serde_json::from_str(data.trim_start()).unwrap());
            }
        }
        out
    }

    pub fn metrics(&self) -> String {
        let r = self.request("GET", "/metrics", Auth::None, None, None);
        assert_eq!(r.status, 200);
        r.text()
    }

    pub fn run_dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.work_dir.join("runs"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let Some(rt) = self.rt.take() else {
            return;
        };
        // Cancel what still executes, then give serve() a moment to return.
        rt.block_on(async {
            let _ = self.control.send(Control::Cancel(15)).await;
            if let Some(server) = self.server.take() {
                let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
            }
        });
        rt.shutdown_timeout(Duration::from_secs(2));
    }
}

/// A multipart/form-data body built by hand (so tests can also build broken ones).
pub struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

impl Multipart {
    pub fn new() -> Multipart {
        Multipart {
            boundary: "hilt-test-boundary-7d1f0c2a".into(),
            body: Vec::new(),
        }
    }

    pub fn file(mut self, name: &str, filename: &str, data: &[u8]) -> Multipart {
        let ct = if filename.ends_with(".yaml") || filename.ends_with(".yml") {
            "application/x-yaml"
        } else {
            "application/octet-stream"
        };
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ct}\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    pub fn field(mut self, name: &str, value: &str) -> Multipart {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The bytes so far, without the closing delimiter (for streaming a huge last part).
    pub fn head(&self) -> &[u8] {
        &self.body
    }

    pub fn closing(&self) -> Vec<u8> {
        format!("--{}--\r\n", self.boundary).into_bytes()
    }

    pub fn finish(mut self) -> (String, Vec<u8>) {
        let end = self.closing();
        self.body.extend_from_slice(&end);
        (self.content_type(), self.body)
    }
}

/// Sends raw bytes on a fresh connection (the request should say `Connection: close`) and
/// returns the status code of the answer, `None` when the server closed or stayed silent.
pub fn raw_status(addr: SocketAddr, request: &[u8], timeout: Duration) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    // The server may answer (and close) before reading everything: a write error is fine.
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    parse_status(&buf)
}

pub fn parse_status(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// What [`stream_request`] saw.
pub struct Streamed {
    pub status: Option<u16>,
    /// Head and body of the answer.
    pub answer: Vec<u8>,
    /// Body bytes written when the first byte of the answer arrived.
    pub sent_at_answer: Option<u64>,
    /// Body bytes in the request.
    pub total: u64,
}

impl Streamed {
    pub fn json(&self) -> Value {
        let text = String::from_utf8_lossy(&self.answer);
        let body = text.find("\r\n\r\n").map(|i| &text[i + 4..]).unwrap_or("");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Sends `POST path` whose body is `prefix`, then `fill_len` copies of `fill`, then
/// `suffix`, written by a separate thread while this one reads the answer (a server may
/// answer and close before it has read everything, as it should for an oversized body).
pub fn stream_request(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    prefix: Vec<u8>,
    fill: u8,
    fill_len: u64,
    suffix: Vec<u8>,
) -> Streamed {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let total = prefix.len() as u64 + fill_len + suffix.len() as u64;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: {content_type}\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    );
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let sent_w = sent.clone();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![fill; 64 * 1024];
        let mut go = || -> std::io::Result<()> {
            writer.write_all(head.as_bytes())?;
            writer.write_all(&prefix)?;
            sent_w.fetch_add(prefix.len() as u64, Ordering::SeqCst);
            let mut left = fill_len;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                writer.write_all(&chunk[..n])?;
                sent_w.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
            writer.write_all(&suffix)?;
            sent_w.fetch_add(suffix.len() as u64, Ordering::SeqCst);
            Ok(())
        };
        let _ = go();
    });
    let mut reader = stream;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let mut sent_at_answer = None;
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                sent_at_answer.get_or_insert(sent.load(Ordering::SeqCst));
                answer.extend_from_slice(&buf[..n]);
            }
        }
    }
    let _ = reader.shutdown(std::net::Shutdown::Both);
    feeder.join().unwrap();
    Streamed {
        status: parse_status(&answer),
        answer,
        sent_at_answer,
        total,
    }
}

/// Peak resident set size of this process, in kB (`VmHWM`).
pub fn vm_hwm_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Event timestamps as instants.
pub fn ts(e: &Value) -> jiff::Timestamp {
    e["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("event without timestamp: {e}"))
        .parse()
        .unwrap_or_else(|err| panic!("bad timestamp in {e}: {err}"))
}

/// The agent's final event of a run: run.finished / run.failed / run.cancelled with
/// `exit_code` in its data (the runner's own run.finished has none).
pub fn is_final(e: &Value) -> bool {
    matches!(
        e["event_type"].as_str(),
        Some("run.finished" | "run.failed" | "run.cancelled")
    ) && e["data"].get("exit_code").is_some()
}

/// The first event of `kind`.
pub fn first<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {events:#?}"))
}

/// The last event of `kind`.
pub fn last<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .rev()
        .find(|e| e["event_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {events:#?}"))
}

/// A run's log holds exactly one `run.started` (if it ever left the queue) and exactly one
/// final event, which is the last one.
pub fn assert_one_start_one_end(events: &[Value]) {
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or(""))
        .collect();
    let started = kinds.iter().filter(|k| **k == "run.started").count();
    assert!(started <= 1, "more than one run.started: {kinds:?}");
    let finals = events
        .iter()
        .filter(|e| {
            matches!(
                e["event_type"].as_str(),
                Some("run.finished" | "run.failed" | "run.cancelled")
            )
        })
        .count();
    assert_eq!(finals, 1, "one final event expected: {kinds:?}");
    assert!(is_final(events.last().unwrap()), "{kinds:?}");
}
