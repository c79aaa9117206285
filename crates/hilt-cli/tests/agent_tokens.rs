//! The agent's token from the environment, through the real binary: an empty
//! `HILT_AGENT_TOKEN` is unset (it neither hides `BENCHCI_AGENT_TOKEN` nor turns auth off),
//! a configured token is trimmed like the presented one, and a whitespace-only one is
//! refused at start.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Agent {
    child: Child,
    addr: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(work: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hilt"));
    c.args(["agent", "serve", "--host", "127.0.0.1", "--port", "0"])
        .arg("--work-dir")
        .arg(work)
        .arg("--no-self-test")
        .env_remove("HILT_AGENT_TOKEN")
        .env_remove("BENCHCI_AGENT_TOKEN")
        .env_remove("HILT_AGENT_CONFIG")
        .env_remove("BENCHCI_AGENT_CONFIG")
        .env("HILT_LOCK_DIR", work.join("locks"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn start(work: &std::path::Path, env: &[(&str, &str)]) -> (Agent, String) {
    let mut child = command(work, env).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on http://") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the agent never printed its address");
    let addr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    (Agent { child, addr }, line)
}

/// Status code of `GET path`, with `Authorization: Bearer <token>` when given.
fn get(addr: &str, path: &str, token: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {out:?}"))
}

#[test]
fn empty_hilt_token_does_not_hide_the_benchci_token() {
    let d = tempfile::tempdir().unwrap();
    let (a, line) = start(
        d.path(),
        &[("HILT_AGENT_TOKEN", ""), ("BENCHCI_AGENT_TOKEN", "s3cret")],
    );
    assert!(line.contains("auth on"), "{line}");
    assert_eq!(get(&a.addr, "/v1/benches", None), 401);
    assert_eq!(get(&a.addr, "/v1/benches", Some("wrong")), 403);
    assert_eq!(get(&a.addr, "/v1/benches", Some("s3cret")), 200);
}

#[test]
fn configured_token_with_surrounding_spaces_is_trimmed() {
    let d = tempfile::tempdir().unwrap();
    let (a, line) = start(d.path(), &[("HILT_AGENT_TOKEN", "  s3cret \t")]);
    assert!(line.contains("auth on"), "{line}");
    assert_eq!(get(&a.addr, "/v1/benches", Some("s3cret")), 200);
    assert_eq!(get(&a.addr, "/v1/benches", None), 401);
}

#[test]
fn whitespace_only_token_is_refused_at_start() {
    let d = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = command(d.path(), &[("HILT_AGENT_TOKEN", "   ")])
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("HILT_AGENT_TOKEN holds only whitespace"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
