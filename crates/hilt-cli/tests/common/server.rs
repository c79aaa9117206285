//! `hilt server` as a child process for the server tests: started on a data dir, ready
//! once it prints "listening on", and driven with the bootstrap (admin) token.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The bootstrap (admin) token every test server starts with.
pub const BOOT: &str = "server-boot-token";

/// A child process killed when the test ends, however it ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGKILL, then reaps the process.
    pub fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn stop(&mut self, what: &str) -> ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "SIGTERM did not stop {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The real `hilt` binary with no server, token or machine id from the caller's env.
pub fn hilt() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("hilt"));
    c.env("NO_COLOR", "1")
        .env_remove("HILT_SERVER")
        .env_remove("HILT_TOKEN")
        .env_remove("HILT_AGENT_TOKEN")
        .env_remove("BENCHCI_AGENT_TOKEN")
        .env_remove("BENCHCI_API_URL")
        .env_remove("HILT_MACHINE_ID")
        .env_remove("BENCHCI_MACHINE_ID")
        .stdin(Stdio::null());
    c
}

/// `hilt server ARGS… --data-dir DATA [--database DB]` (`db`: PostgreSQL, else SQLite in
/// `data`), its stderr on the test's; returns the process and its URL.
pub fn start_server(data: &Path, db: Option<&str>, args: &[&str]) -> (Proc, String) {
    start_server_to(data, db, args, Stdio::inherit())
}

/// The same with the server's stderr sent to `stderr`.
pub fn start_server_to(
    data: &Path,
    db: Option<&str>,
    args: &[&str],
    stderr: Stdio,
) -> (Proc, String) {
    let mut cmd = hilt();
    cmd.arg("server").args(args).arg("--data-dir").arg(data);
    if let Some(url) = db {
        cmd.args(["--database", url]);
    }
    let mut child = cmd
        .env("HILT_SERVER_BOOTSTRAP_TOKEN", BOOT)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("hilt server did not print its address");
    (Proc(child), url)
}

/// A client command with HILT_SERVER and the bootstrap (admin) token, not yet run.
pub fn client_cmd(url: &str, args: &[&str]) -> Command {
    let mut c = hilt();
    c.args(args).env("HILT_SERVER", url).env("HILT_TOKEN", BOOT);
    c
}

/// The same, run to its end.
pub fn client(url: &str, args: &[&str]) -> Output {
    client_cmd(url, args).output().unwrap()
}

/// Exit code, stdout and stderr of a command, for failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A command's stdout as JSON.
pub fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

/// A new agent token of the default workspace (`hilt tokens create --kind agent`).
pub fn agent_token(url: &str) -> String {
    let o = client(
        url,
        &[
            "tokens",
            "create",
            "--workspace",
            "default",
            "--kind",
            "agent",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// GET with the admin token. Reading every list through `hilt` would need a command per
/// route, so this is a plain HTTP request.
pub fn server_get(url: &str, path: &str) -> Value {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {BOOT}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

/// `hilt agent cloud --bench BENCH --bench-id ID --tag TAG` with its own work dir (also its
/// HOME) under `dir`, logging to `stdout.log` / `stderr.log` there.
pub fn start_agent(
    dir: &Path,
    url: &str,
    token: &str,
    bench: &Path,
    id: &str,
    tag: &str,
    locks: &Path,
) -> Proc {
    let work = dir.join(format!("agent-{id}"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(locks).unwrap();
    Proc(
        hilt()
            .args(["agent", "cloud", "--bench"])
            .arg(bench)
            .args(["--bench-id", id, "--agent-name", &format!("lab-{id}")])
            .args(["--tag", tag, "--heartbeat-s", "0.5", "--work-dir"])
            .arg(&work)
            .env("HILT_SERVER", url)
            .env("HILT_AGENT_TOKEN", token)
            .env("HILT_LOCK_DIR", locks)
            .env("HOME", &work)
            .env("HILT_LOG", "info")
            .stdout(std::fs::File::create(work.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(work.join("stderr.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}
