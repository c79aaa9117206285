//! Real OpenSSH servers on loopback for the remote-host tests: each `Lab` starts its own
//! sshd instances (children of the test, killed on drop) on free high ports with a
//! generated host key and client key, logging in as the `hilt-test` user that
//! `scripts/peers.sh` creates. [`peers`] says whether they can run here (sshd, the ssh
//! client, the user, root — sshd switches users); under HILT_REQUIRE_PEERS=1 it fails.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{hilt, last_run};

pub const SSHD: &str = "/usr/sbin/sshd";
pub const USER: &str = "hilt-test";

/// Whether the peers are here; panics under HILT_REQUIRE_PEERS=1 when they are not.
pub fn peers() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let user = Command::new("id")
        .arg(USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let ssh = Command::new("ssh")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing: Vec<&str> = [
        (!Path::new(SSHD).is_file()).then_some("openssh-server"),
        (!ssh).then_some("openssh-client"),
        (!user).then_some("user hilt-test"),
        (!root).then_some("root (sshd switches users)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("HILT_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!(
            "ssh peers missing: {} — run scripts/peers.sh as root (HILT_REQUIRE_PEERS=1)",
            missing.join(", ")
        );
    }
    eprintln!(
        "skipping: ssh peers missing ({}); run scripts/peers.sh as root",
        missing.join(", ")
    );
    false
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen failed");
}

/// A temp dir with keys and some sshd instances; they are killed on drop.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub sshd: Vec<(u16, Child)>,
}

impl Lab {
    pub fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        // sshd reads authorized_keys as the login user.
        Command::new("chmod")
            .arg("755")
            .arg(dir.path())
            .status()
            .unwrap();
        keygen(&dir.path().join("host_ed25519"));
        keygen(&dir.path().join("client_ed25519"));
        std::fs::copy(
            dir.path().join("client_ed25519.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        Lab {
            dir,
            sshd: Vec::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts an sshd on a free port; `extra` lines go into its config.
    pub fn sshd(&mut self, extra: &str) -> u16 {
        let port = free_port();
        let d = self.dir.path().display();
        let conf = self.path(&format!("sshd_{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile none\n\
                 UsePAM no\nPermitRootLogin no\nAllowUsers {USER}\nAuthorizedKeysFile {d}/authorized_keys\n\
                 StrictModes no\nKbdInteractiveAuthentication no\n{extra}\n"
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&conf)
            .arg("-E")
            .arg(self.log(port))
            // Its session processes must not hold the test's output open after it ends.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.sshd.push((port, child));
        // Ready when *this* sshd says it listens (another process could hold the port).
        let end = Instant::now() + Duration::from_secs(10);
        let ready = format!("Server listening on 127.0.0.1 port {port}");
        loop {
            let log = std::fs::read_to_string(self.log(port)).unwrap_or_default();
            if log.contains(&ready) && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            let exited = self.sshd.last_mut().unwrap().1.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < end,
                "sshd on {port} did not start ({exited:?}):\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        port
    }

    pub fn log(&self, port: u16) -> PathBuf {
        self.path(&format!("sshd_{port}.log"))
    }

    /// known_hosts with the lab's host key for every port.
    pub fn known_hosts(&self, ports: &[u16]) {
        let key = std::fs::read_to_string(self.path("host_ed25519.pub")).unwrap();
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        let text: String = ports
            .iter()
            .map(|p| format!("[127.0.0.1]:{p} {}\n", key.join(" ")))
            .collect();
        std::fs::write(self.path("known_hosts"), text).unwrap();
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `hilt run`; returns its output and the run directory.
    pub fn run(&self, suite_steps: &str) -> (std::process::Output, PathBuf) {
        let suite = self.write(
            "suite.yaml",
            &format!("version: 1\nsuite: {{name: remote}}\ntests:\n{suite_steps}"),
        );
        let out = hilt()
            .env("HILT_LOCK_DIR", self.path("locks"))
            .env("LAB_PASSWORD", "pw-never-in-files-7f3a")
            .arg("run")
            .arg("--bench")
            .arg(self.path("bench.yaml"))
            .arg("--suite")
            .arg(suite)
            .arg("--results-dir")
            .arg(self.path("results"))
            .output()
            .unwrap();
        let run = last_run(&self.path("results"));
        (out, run)
    }

    /// `hilt run` of a whole suite file in the background (to be killed mid-run).
    pub fn spawn(&self, suite: &Path) -> Child {
        Command::new(assert_cmd::cargo::cargo_bin("hilt"))
            .env_remove("BENCHCI_LOCK_DIR")
            .env("HILT_LOCK_DIR", self.path("locks"))
            .env("LAB_PASSWORD", "pw-never-in-files-7f3a")
            .env("NO_COLOR", "1")
            .arg("run")
            .arg("--bench")
            .arg(self.path("bench.yaml"))
            .arg("--suite")
            .arg(suite)
            .arg("--results-dir")
            .arg(self.path("results"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `hilt runs <what> DIR` with this lab's environment.
    pub fn runs(&self, what: &str, dir: &Path) -> std::process::Output {
        hilt()
            .env("HILT_LOCK_DIR", self.path("locks"))
            .env("LAB_PASSWORD", "pw-never-in-files-7f3a")
            .args(["runs", what])
            .arg(dir)
            .output()
            .unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in &mut self.sshd {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub const AUTH: &str = "auth_refs:\n  lab-key: {type: key_file, path: client_ed25519}\n  lab-pw: {type: password_env, value: LAB_PASSWORD}\n";

pub fn direct_bench(lab: &Lab, port: u16, auth: &str) {
    lab.write(
        "bench.yaml",
        &format!(
            "version: 1\nbench: {{name: hosts only}}\n{AUTH}hosts:\n  box:\n    hostname: 127.0.0.1\n    port: {port}\n    username: {USER}\n    auth_ref: {auth}\n    known_hosts: known_hosts\n"
        ),
    );
}

pub fn chain_bench(lab: &Lab, j1: u16, j2: u16, target: u16) {
    lab.write(
        "bench.yaml",
        &format!(
            "version: 1
bench: {{name: chain}}
{AUTH}hosts:
  gateway:
    hostname: 127.0.0.1
    port: {target}
    username: {USER}
    auth_ref: lab-key
    known_hosts: known_hosts
    retry: {{attempts: 2, backoff_ms: 100}}
    transport:
      type: jump_chain
      hops:
        - {{name: bastion, hostname: 127.0.0.1, port: {j1}, username: {USER}, auth_ref: lab-key}}
        - {{name: inner, hostname: 127.0.0.1, port: {j2}, username: {USER}, auth_ref: lab-key}}
"
        ),
    );
}
