//! HTTPS end to end: a throwaway CA and server certificate made with the `openssl` CLI,
//! nginx as the TLS-terminating reverse proxy (as a deployment has it) in front of
//! `hilt agent serve`, `hilt server` and an HTTP relay board, and the real `hilt` binary
//! trusting the CA through `HILT_CA_FILE`. Without the CA, or under another host name, the
//! client fails at once with the certificate problem named.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server::{agent_token, client_cmd, json_out, text};
use common::{Bench, json, last_run};
use hilt_sim::{HttpRelayConfig, HttpRelaySim};
use hilt_testkit::agent::TOKEN;
use hilt_testkit::peers;
use serde_json::Value;

/// A CA and a server certificate for IP 127.0.0.1 only (so 127.0.0.2 is "another name").
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn make_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=hilt test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(d, &ca);
    let mut req = vec!["req", "-nodes"];
    req.extend(ec);
    req.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(d, &req);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
    Pki { dir }
}

/// nginx terminating TLS on 127.0.0.1:port and 127.0.0.2:port, proxying to `upstream`;
/// one process (`master_process off`), so killing it on drop leaves no worker behind.
struct Nginx {
    child: Child,
    port: u16,
    _prefix: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
    /// The same proxy under a name its certificate is not for.
    fn other_name_url(&self) -> String {
        format!("https://127.0.0.2:{}", self.port)
    }
}

/// nginx, or `None` (skipped visibly) when it is not installed and peers are not required.
fn nginx_binary() -> Option<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if peers::on_path("nginx").is_none() && sbin.is_file() {
        return Some(sbin);
    }
    peers::program(
        "nginx",
        "apt-get install nginx (scripts/peers.sh installs it)",
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_nginx(bin: &Path, pki: &Pki, upstream: &str) -> Nginx {
    let prefix = tempfile::tempdir().unwrap();
    let p = prefix.path();
    std::fs::create_dir_all(p.join("tmp")).unwrap();
    let port = free_port();
    let upstream = upstream.trim_start_matches("http://").trim_end_matches('/');
    let conf = format!(
        r#"daemon off;
master_process off;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {p}/tmp/body;
  proxy_temp_path {p}/tmp/proxy;
  fastcgi_temp_path {p}/tmp/fastcgi;
  uwsgi_temp_path {p}/tmp/uwsgi;
  scgi_temp_path {p}/tmp/scgi;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port} ssl;
    listen 127.0.0.2:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://{upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 300s;
    }}
  }}
}}
"#,
        p = p.display(),
        cert = pki.path("server.pem").display(),
        key = pki.path("server.key").display(),
    );
    std::fs::write(p.join("nginx.conf"), conf).unwrap();
    let mut child = Command::new(bin)
        .arg("-p")
        .arg(p)
        .arg("-e")
        .arg(p.join("error.log"))
        .arg("-c")
        .arg(p.join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Some(s) = child.try_wait().unwrap() {
            panic!(
                "nginx exited ({s}): {}",
                std::fs::read_to_string(p.join("error.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "nginx did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx {
        child,
        port,
        _prefix: prefix,
    }
}

/// `hilt agent serve` (in-process, from the test kit) with the demo bench as `demo`.
fn start_agent(bench: &Bench, work: &Path) -> hilt_testkit::agent::Agent {
    let config = work.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "agent: {{id: tls-agent, name: tls agent}}\nbenches:\n  - {{id: demo, bench_file: {:?}, tags: [sim]}}\n",
            bench.bench.display().to_string()
        ),
    )
    .unwrap();
    let settings = hilt_testkit::agent::settings(
        &work.join("work"),
        Some(&config),
        &bench.path("locks"),
        &work.join("restart"),
    );
    hilt_testkit::agent::Agent::start(settings)
}

const PING: &str = "  - name: answers ping
    steps:
      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}
      - expect_uart: {node: dut, transport: console, contains: \"pong\"}
";

/// `hilt run --agent URL` against the registered demo bench; `ca`: HILT_CA_FILE.
fn remote_run(bench: &Bench, url: &str, ca: Option<&Path>, results: &str) -> std::process::Output {
    let suite = bench.suite("ping.yaml", PING);
    let mut c = common::hilt();
    c.env("HILT_LOCK_DIR", bench.path("locks"))
        .env_remove("HILT_CA_FILE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("HILT_AGENT_TOKEN")
        .env_remove("BENCHCI_AGENT_TOKEN")
        .args([
            "run",
            "--agent",
            url,
            "--token",
            TOKEN,
            "--bench-id",
            "demo",
        ])
        .arg("--suite")
        .arg(&suite)
        .arg("--results-dir")
        .arg(bench.path(results));
    if let Some(ca) = ca {
        c.env("HILT_CA_FILE", ca);
    }
    c.output().unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn agent_behind_nginx_runs_over_https_and_certificate_problems_are_named() {
    let Some(bin) = nginx_binary() else { return };
    let pki = make_pki();
    let bench = Bench::start();
    let work = tempfile::tempdir().unwrap();
    let agent = start_agent(&bench, work.path());
    let proxy = start_nginx(&bin, &pki, &agent.base);

    // (a) the whole run through the proxy: submit, live events, results download.
    let o = remote_run(&bench, &proxy.url(), Some(&pki.ca()), "results");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let run = last_run(&bench.path("results"));
    let results = json(&run.join("results.json"));
    assert_eq!(results["status"], "passed", "{results:#}");
    assert!(run.join("events.jsonl").is_file());

    // (d) without the CA: not trusted, the host named, HILT_CA_FILE as the fix, at once.
    let t = Instant::now();
    let o = remote_run(&bench, &proxy.url(), None, "untrusted");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("certificate not trusted"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{}", proxy.port)), "{err}");
    assert!(err.contains("HILT_CA_FILE"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());

    // (e) the certificate is for 127.0.0.1, not 127.0.0.2.
    let o = remote_run(&bench, &proxy.other_name_url(), Some(&pki.ca()), "other");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("name mismatch"), "{err}");
    assert!(err.contains(&format!("127.0.0.2:{}", proxy.port)), "{err}");

    // A CA file that is not there is named, with the variable.
    let missing = pki.path("nope.pem");
    let o = remote_run(&bench, &proxy.url(), Some(&missing), "missing");
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("HILT_CA_FILE") && err.contains("nope.pem"),
        "{err}"
    );

    // SSL_CERT_FILE is honoured when HILT_CA_FILE is unset.
    let suite = bench.suite("ping2.yaml", PING);
    let o = common::hilt()
        .env("HILT_LOCK_DIR", bench.path("locks"))
        .env_remove("HILT_CA_FILE")
        .env("SSL_CERT_FILE", pki.ca())
        .args([
            "run",
            "--agent",
            &proxy.url(),
            "--token",
            TOKEN,
            "--bench-id",
            "demo",
        ])
        .arg("--suite")
        .arg(&suite)
        .arg("--results-dir")
        .arg(bench.path("ssl-cert-file"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn cloud_agent_takes_and_completes_a_run_through_https() {
    let Some(bin) = nginx_binary() else { return };
    let pki = make_pki();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, url) = common::server::start_server(
        &dir.join("data"),
        None,
        &["--bind", "127.0.0.1:0", "--long-poll-s", "5"],
    );
    let proxy = start_nginx(&bin, &pki, &url);
    let https = proxy.url();
    let token = agent_token(&url);
    let sim = Bench::start();
    let locks = sim.path("locks");
    let cloud_agent = |work: &Path, ca: Option<&Path>| {
        std::fs::create_dir_all(work).unwrap();
        let mut c = common::server::hilt();
        c.args(["agent", "cloud", "--bench"])
            .arg(&sim.bench)
            .args(["--bench-id", "tls-a", "--agent-name", "lab-tls"])
            .args(["--tag", "sim", "--heartbeat-s", "0.5", "--work-dir"])
            .arg(work)
            .env("HILT_SERVER", &https)
            .env("HILT_AGENT_TOKEN", &token)
            .env_remove("HILT_CA_FILE")
            .env_remove("SSL_CERT_FILE")
            .env("HILT_LOCK_DIR", &locks)
            .env("HOME", work)
            .env("HILT_LOG", "info")
            .stdout(std::fs::File::create(work.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(work.join("stderr.log")).unwrap());
        if let Some(ca) = ca {
            c.env("HILT_CA_FILE", ca);
        }
        common::server::Proc(c.spawn().unwrap())
    };

    // Without the CA the agent says why it cannot reach the server (and keeps retrying).
    let untrusted = dir.join("agent-untrusted");
    let mut agent = cloud_agent(&untrusted, None);
    let ulog = || std::fs::read_to_string(untrusted.join("stderr.log")).unwrap_or_default();
    let host = format!("certificate not trusted for 127.0.0.1:{}", proxy.port);
    common::cloud::wait_for("the untrusted certificate named", 30, &ulog, || {
        ulog().contains(&host).then_some(())
    });
    assert!(ulog().contains("HILT_CA_FILE"), "{}", ulog());
    agent.kill9();
    drop(agent);

    let work = dir.join("agent");
    let _agent = cloud_agent(&work, Some(&pki.ca()));
    let log = || std::fs::read_to_string(work.join("stderr.log")).unwrap_or_default();
    // The agent registers through the proxy (heartbeat, bench sync with its self-test).
    let row = common::cloud::wait_for("bench tls-a synced over https", 60, &log, || {
        common::cloud::bench_row(&url, "tls-a").filter(|b| b["health_status"] != Value::Null)
    });
    assert_eq!(row["health_status"], "healthy", "{row}\n{}", log());
    let suite = common::cloud::suite(dir, "quick", 0);
    // Submitted and awaited through the proxy as well.
    let o = client_cmd(
        &https,
        &[
            "runs",
            "submit",
            "--bench-id",
            "tls-a",
            "--suite",
            suite.to_str().unwrap(),
            "--json",
            "--timeout-s",
            "120",
            "--wait",
        ],
    )
    .env("HILT_CA_FILE", pki.ca())
    .env_remove("SSL_CERT_FILE")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\nagent:\n{}", text(&o), log());
    let run = json_out(&o);
    assert_eq!(run["status"], "done", "{run}\n{}", log());
    assert_eq!(run["exit_code"], 0, "{run}");
}

#[test]
fn http_relay_at_an_https_url() {
    let Some(bin) = nginx_binary() else { return };
    let pki = make_pki();
    let sim = HttpRelaySim::start(
        "127.0.0.1:0",
        HttpRelayConfig {
            latency_ms: 2,
            require_header: None,
        },
    )
    .unwrap();
    let proxy = start_nginx(&bin, &pki, &sim.base_url());
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench.yaml");
    std::fs::write(
        &bench,
        r#"version: 1
bench: {name: relay rig}
nodes:
  dut:
    kind: mcu
    gpio: {led: {backend: mock_gpio, channel: 1, direction: input}}
resources:
  mains:
    kind: power_controller
    driver:
      type: http_relay
      outlets: {dut: "3"}
      on_url: "BASE/relay/{channel}/on"
      off_url: "BASE/relay/{channel}/set/{value}"
      get_url: "BASE/relay/{channel}"
      method: POST
      on_settle_ms: 0
      off_settle_ms: 0
"#
        .replace("BASE", &proxy.url()),
    )
    .unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(
        &suite,
        "version: 1\nsuite: {name: relay}\ntests:\n  - name: power\n    steps:\n      - power_set: {resource: mains, outlet: dut, state: true}\n      - power_expect: {resource: mains, outlet: dut, state: true}\n",
    )
    .unwrap();
    let run = |ca: Option<&Path>, results: &str| {
        let mut c = common::hilt();
        c.env("HILT_LOCK_DIR", dir.path().join("locks"))
            .env_remove("HILT_CA_FILE")
            .env_remove("SSL_CERT_FILE")
            .args(["run", "--bench"])
            .arg(&bench)
            .arg("--suite")
            .arg(&suite)
            .arg("--results-dir")
            .arg(dir.path().join(results));
        if let Some(ca) = ca {
            c.env("HILT_CA_FILE", ca);
        }
        let o = c.output().unwrap();
        let run = last_run(&dir.path().join(results));
        (o, json(&run.join("results.json")))
    };
    let (o, r) = run(Some(&pki.ca()), "results");
    assert_eq!(o.status.code(), Some(0), "{r:#}\n{}", stderr(&o));
    assert_eq!(r["status"], "passed");
    assert_eq!(sim.channel("3"), Some(true));

    // Without the CA the relay is unreachable with the certificate named.
    let (o, r) = run(None, "untrusted");
    assert_ne!(o.status.code(), Some(0), "{r:#}");
    let text = r.to_string();
    assert!(text.contains("certificate not trusted"), "{r:#}");
    assert!(text.contains(&format!("127.0.0.1:{}", proxy.port)), "{r:#}");
}
