//! The set-up shared by the agent comparisons (`agent`, `agent-plain`): a scratch
//! directory, a device process that puts a pty link in it, a bench file on that link, one
//! agent.yaml registering the bench, and both agents (hilt's and BenchCI's) serving it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::agent_proc::{Agent, Kind, Setup};
use crate::child;
use crate::env::Env;

/// A helper child process (the device), stopped when dropped.
pub struct Helper(Option<Child>);

impl Helper {
    pub fn new(c: Child) -> Helper {
        Helper(Some(c))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            child::terminate(c, Duration::from_secs(2));
        }
    }
}

/// A scratch directory with a device on a pty link and its bench registered in
/// `agent.yaml`, built in three steps: [`Rig::new`], [`Rig::device`], [`Rig::register`].
pub struct Rig {
    pub dir: PathBuf,
    pub benchci: PathBuf,
    pub config: PathBuf,
    device: Option<Helper>,
}

impl Rig {
    /// A fresh scratch directory `scratch`; fails when BenchCI is not installed.
    pub fn new(env: &Env, scratch: &str) -> anyhow::Result<Rig> {
        let Some(benchci) = env.benchci.clone() else {
            bail!("benchci is not installed; help: run scripts/bench/venv.sh");
        };
        let dir = env.scratch(scratch)?;
        let config = dir.join("agent.yaml");
        Ok(Rig {
            dir,
            benchci,
            config,
            device: None,
        })
    }

    /// Starts the device (`what` in errors; stderr to `<dir>/<log>`) and waits up to
    /// `within` for it to create `link`. The device is stopped when the rig is dropped.
    pub fn device(
        &mut self,
        mut cmd: Command,
        link: &Path,
        what: &str,
        log: &str,
        within: Duration,
    ) -> anyhow::Result<()> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(self.dir.join(log))?));
        self.device = Some(Helper(Some(
            cmd.spawn().with_context(|| format!("starting {what}"))?,
        )));
        let deadline = Instant::now() + within;
        while !link.exists() {
            if Instant::now() > deadline {
                bail!("{what} did not create {}", link.display());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Writes `bench_yaml` as bench.yaml and an agent.yaml (agent `<name>-<pid>`) that
    /// registers it as `bench_id`, with `extra` appended to the bench's entry.
    pub fn register(
        &self,
        bench_yaml: &str,
        name: &str,
        bench_id: &str,
        extra: &str,
    ) -> anyhow::Result<()> {
        std::fs::write(self.dir.join("bench.yaml"), bench_yaml)?;
        let name = format!("{name}-{}", std::process::id());
        std::fs::write(
            &self.config,
            format!(
                "agent: {{id: {name}, name: {name}}}\nbenches:\n  - {{id: {bench_id}, bench_file: bench.yaml{extra}}}\n"
            ),
        )?;
        Ok(())
    }

    pub fn setup<'a>(&'a self, env: &'a Env) -> Setup<'a> {
        Setup {
            env,
            benchci: Some(&self.benchci),
            config: &self.config,
            root: &self.dir,
        }
    }

    /// Starts hilt's agent, then BenchCI's (self-test on), each serving once `/health`
    /// answers.
    pub fn start_both(&self, env: &Env) -> anyhow::Result<(Agent, Agent)> {
        let setup = self.setup(env);
        let (mut h, _) = Agent::spawn(&setup, Kind::Hilt, "hilt", true)?;
        h.wait_healthy(Duration::from_secs(60))?;
        let (mut b, _) = Agent::spawn(&setup, Kind::Benchci, "benchci", true)?;
        b.wait_healthy(Duration::from_secs(120))?;
        Ok((h, b))
    }
}
