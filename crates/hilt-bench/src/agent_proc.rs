//! The two agents as child processes (`hilt agent serve`, `benchci agent serve`), each with
//! its own port, work directory, HOME and lock directory, and what /proc says about them.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::agent_http::healthy_once;
use crate::child;
use crate::env::Env;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Hilt,
    Benchci,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hilt => "hilt",
            Kind::Benchci => "benchci",
        }
    }
}

/// What an agent needs besides its kind: the shared agent.yaml and a scratch root.
pub struct Setup<'a> {
    pub env: &'a Env,
    pub benchci: Option<&'a Path>,
    pub config: &'a Path,
    pub root: &'a Path,
}

/// A running agent; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Agent {
    pub kind: Kind,
    pub port: u16,
    pub pid: u32,
    /// Its work directory (`runs/<id>/…` below it).
    pub work: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// Spawns an agent in a fresh directory `<root>/<label>` and returns at once (not yet
    /// serving) together with the instant just before the spawn.
    pub fn spawn(
        s: &Setup,
        kind: Kind,
        label: &str,
        self_test: bool,
    ) -> anyhow::Result<(Agent, Instant)> {
        Agent::spawn_with(s, kind, label, self_test, &[])
    }

    /// [`Agent::spawn`] with `extra` flags after the usual ones.
    pub fn spawn_with(
        s: &Setup,
        kind: Kind,
        label: &str,
        self_test: bool,
        extra: &[String],
    ) -> anyhow::Result<(Agent, Instant)> {
        let dir = s.root.join(label);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let home = dir.join("home");
        std::fs::create_dir_all(&home)?;
        let port = free_port()?;
        let log = dir.join("agent.log");
        let (mut cmd, work) = match kind {
            Kind::Hilt => {
                let work = dir.join("work");
                let mut c = s.env.hilt();
                c.args(["agent", "serve", "--host", "127.0.0.1", "--port"])
                    .arg(port.to_string())
                    .arg("--config")
                    .arg(s.config)
                    .arg("--work-dir")
                    .arg(&work);
                if !self_test {
                    c.arg("--no-self-test");
                }
                c.env("HILT_LOCK_DIR", dir.join("locks"));
                (c, work)
            }
            Kind::Benchci => {
                let Some(b) = s.benchci else {
                    bail!("benchci is not installed; help: run scripts/bench/venv.sh");
                };
                let mut c = Command::new(b);
                c.args(["agent", "serve", "--host", "127.0.0.1", "--port"])
                    .arg(port.to_string())
                    .env("BENCHCI_AGENT_CONFIG", s.config)
                    .env("BENCHCI_LOCK_DIR", dir.join("locks"));
                // BenchCI's work dir is fixed: ~/benchci-agent-results.
                (c, home.join("benchci-agent-results"))
            }
        };
        for v in [
            "HILT_AGENT_TOKEN",
            "BENCHCI_AGENT_TOKEN",
            "HILT_AGENT_CONFIG",
            "HILT_DISABLE_RESOURCE_LOCKS",
            "BENCHCI_DISABLE_RESOURCE_LOCKS",
            "HILT_AGENT_SELF_TEST_READ_INPUTS",
            "BENCHCI_AGENT_SELF_TEST_READ_INPUTS",
            "HILT_AGENT_SELF_TEST_READ_MEASUREMENTS",
            "BENCHCI_AGENT_SELF_TEST_READ_MEASUREMENTS",
        ] {
            cmd.env_remove(v);
        }
        if kind == Kind::Hilt {
            cmd.env_remove("BENCHCI_AGENT_CONFIG")
                .env_remove("BENCHCI_LOCK_DIR");
        } else {
            cmd.env_remove("HILT_LOCK_DIR");
        }
        cmd.args(extra);
        cmd.env("HOME", &home)
            .env("TMPDIR", &dir)
            .current_dir(&dir)
            .stdin(Stdio::null());
        let f = File::create(&log)?;
        cmd.stdout(Stdio::from(f.try_clone()?))
            .stderr(Stdio::from(f));
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting the {} agent", kind.name()))?;
        Ok((
            Agent {
                kind,
                port,
                pid: child.id(),
                work,
                log,
                child: Some(child),
            },
            started,
        ))
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Polls `GET /health` (fresh connection each time, ~0.5 ms apart) until it answers 200;
    /// returns the instant of the first 200.
    pub fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if healthy_once(self.addr()) {
                return Ok(Instant::now());
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                bail!(
                    "the {} agent exited ({st}) before serving; log:\n{}",
                    self.kind.name(),
                    tail(&self.log)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the {} agent did not answer /health within {timeout:?}; log:\n{}",
                    self.kind.name(),
                    tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Resident set of the agent and all its descendants, in KiB.
    pub fn rss_kib(&self) -> u64 {
        tree(self.pid)
            .into_iter()
            .map(|p| status_kib(p, "VmRSS:").unwrap_or(0))
            .sum()
    }

    /// How many processes [`Agent::rss_kib`] counts.
    pub fn procs(&self) -> usize {
        tree(self.pid).len()
    }

    /// The agent process's own peak resident set (VmHWM), in KiB.
    pub fn hwm_kib(&self) -> u64 {
        status_kib(self.pid, "VmHWM:").unwrap_or(0)
    }

    /// CPU time (user + system) the agent process has used so far.
    pub fn cpu(&self) -> Duration {
        cpu_time(self.pid)
    }

    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            child::terminate(c, Duration::from_secs(3));
        }
    }

    /// SIGKILL at once (for an agent with nothing worth draining).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn tail(log: &Path) -> String {
    let t = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A `/proc/<pid>/status` field in KiB.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `pid` and all its descendants.
fn tree(pid: u32) -> Vec<u32> {
    let mut parent: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(pp) = stat_fields(p).and_then(|f| f.get(1).and_then(|s| s.parse().ok())) {
                parent.push((p, pp));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(parent.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// Fields of `/proc/<pid>/stat` after the command name: [state, ppid, …].
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 1..];
    Some(after.split_whitespace().map(String::from).collect())
}

pub fn cpu_time(pid: u32) -> Duration {
    // utime and stime are fields 14 and 15 of stat: indices 11 and 12 after the name.
    let Some(f) = stat_fields(pid) else {
        return Duration::ZERO;
    };
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|s| s.parse::<u64>().ok()))
        .sum();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}
