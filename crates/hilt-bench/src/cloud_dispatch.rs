//! `cloud-dispatch`: the whole cloud path with real agents on one `hilt server` (SQLite):
//! submit → the agent has started the run, and submit → the run is done, for
//! `hilt agent cloud` (long-poll) and for BenchCI's own cloud agent (`benchci agent cloud
//! --poll-interval-s 2`), each serving a simulated DUT on a pty (`hilt sim dut`). One run
//! at a time: a one-test suite, `ping` answered `pong`.
//!
//! "Started" is the timestamp of the run's first event as the agent wrote it (same host
//! clock as the submission); "done" is the moment the server reports the run finished to
//! a client polling it every 2 ms.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::agent_rig::Helper;
use crate::env::Env;
use crate::server_rig::{BOOT, Http, Rig, RigArgs, http};
use crate::stats::percentile;
use crate::table::Table;

#[derive(clap::Args)]
pub struct Args {
    /// Runs per agent, one at a time [default: 40, quick: 5].
    #[arg(long)]
    runs: Option<usize>,
}

const SUITE: &str = "version: 1\nsuite: {name: ping}\ntests:\n  - name: ping\n    steps:\n      \
    - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      \
    - expect_uart: {node: dut, transport: console, contains: \"pong\", within_ms: 2000}\n";

/// Milliseconds from `t0` to an RFC 3339 timestamp.
fn ms_since(t0: SystemTime, ts: &str) -> anyhow::Result<f64> {
    let at: jiff::Timestamp = ts.parse().with_context(|| format!("timestamp {ts:?}"))?;
    let t0 = jiff::Timestamp::try_from(t0)?;
    Ok(at.duration_since(t0).as_secs_f64() * 1e3)
}

struct Samples {
    started: Vec<f64>,
    done: Vec<f64>,
}

/// Submits `runs` runs to `bench` one at a time; returns the two latencies of each.
fn measure(admin: &Http, bench: &str, runs: usize) -> anyhow::Result<Samples> {
    let mut s = Samples {
        started: Vec::with_capacity(runs),
        done: Vec::with_capacity(runs),
    };
    for _ in 0..runs {
        let body = json!({"bench_id": bench, "suite_yaml": SUITE, "skip_flash": true});
        let t0 = SystemTime::now();
        let clock = Instant::now();
        let v = admin.call("POST", "/v1/runs", BOOT, None, Some(&body))?;
        let id = v["run_id"].as_str().context("run_id")?.to_string();
        let deadline = clock + Duration::from_secs(60);
        let run = loop {
            let v = admin.call("GET", &format!("/v1/runs/{id}"), BOOT, None, None)?;
            if v["status"] == "done" || v["status"] == "failed" {
                break v;
            }
            if Instant::now() > deadline {
                bail!("run {id} did not finish within 60 s: {v}");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let done = clock.elapsed().as_secs_f64() * 1e3;
        if run["status"] != "done" {
            bail!("run {id} failed: {run}");
        }
        let ev = admin.call("GET", &format!("/v1/runs/{id}/events"), BOOT, None, None)?;
        let first = ev["events"][0]["timestamp"]
            .as_str()
            .context("the run has no events")?;
        s.started.push(ms_since(t0, first)?);
        s.done.push(done);
    }
    Ok(s)
}

/// A child stopped when dropped.
struct Proc(Option<Child>);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            crate::child::terminate(c, Duration::from_secs(5));
        }
    }
}

fn agent_token(admin: &Http) -> anyhow::Result<String> {
    Ok(admin.call(
        "POST",
        "/v1/tokens",
        BOOT,
        None,
        Some(&json!({"workspace": "default", "kind": "agent"})),
    )?["token"]
        .as_str()
        .context("token")?
        .to_string())
}

/// Waits until the server lists `bench` healthy.
fn wait_healthy(admin: &Http, bench: &str, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = admin.call("GET", "/v1/benches", BOOT, None, None)?;
        let found = v["benches"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["bench_id"] == bench).cloned());
        if let Some(b) = found {
            if b["health_status"] == "healthy" {
                return Ok(());
            }
            if b["health_status"] != Value::Null {
                bail!("bench {bench} synced {}: {b}", b["health_status"]);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "bench {bench} never synced; agent log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A simulated DUT on its own pty link and a bench file on it.
fn device(env: &Env, dir: &Path) -> anyhow::Result<(Helper, std::path::PathBuf)> {
    let link = dir.join("dut.tty");
    let child = env
        .sim_dut(&link)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting hilt sim dut")?;
    let helper = Helper::new(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !link.exists() {
        if Instant::now() > deadline {
            bail!("the simulated DUT did not create {}", link.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let bench = dir.join("bench.yaml");
    std::fs::write(
        &bench,
        format!(
            "version: 1\nbench: {{name: cloud bench}}\ndefaults: {{node: dut}}\nnodes:\n  dut:\n    \
             kind: simulator\n    transports:\n      console: {{backend: uart, port: \"{}\", baud: 115200}}\n",
            link.display()
        ),
    )?;
    Ok((helper, bench))
}

fn spawn_agent(mut cmd: Command, dir: &Path) -> anyhow::Result<Proc> {
    let log = dir.join("agent.log");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(dir.join("agent.out"))?))
        .stderr(Stdio::from(std::fs::File::create(&log)?));
    Ok(Proc(Some(cmd.spawn().context("starting the cloud agent")?)))
}

pub fn run(env: &Env, a: &Args, quick: bool) -> anyhow::Result<Table> {
    let runs = crate::pick(a.runs, quick, 40, 5);
    let rig = Rig::start(env, "cloud-dispatch", &RigArgs::sqlite(), 20)?;
    let url = rig.servers[0].url.clone();
    let admin = http(&url);

    // hilt agent cloud.
    let dir = env.scratch("cloud-dispatch-hilt")?;
    let (_dut, bench) = device(env, &dir)?;
    let mut cmd = env.hilt();
    cmd.args(["agent", "cloud", "--bench"])
        .arg(&bench)
        .args(["--bench-id", "hilt-rig", "--work-dir"])
        .arg(dir.join("work"))
        .env("HILT_SERVER", &url)
        .env("HILT_AGENT_TOKEN", agent_token(&admin)?)
        .env("HILT_LOCK_DIR", dir.join("locks"))
        .env("HILT_LOG", "warn");
    let hilt_agent = spawn_agent(cmd, &dir)?;
    wait_healthy(&admin, "hilt-rig", &dir.join("agent.log"))?;
    let hilt = measure(&admin, "hilt-rig", runs)?;
    drop(hilt_agent);

    // BenchCI's cloud agent, polling every 2 s, on a device of its own.
    let benchci = match &env.benchci {
        Some(b) => {
            let dir = env.scratch("cloud-dispatch-benchci")?;
            let (_dut, bench) = device(env, &dir)?;
            let home = dir.join("home");
            std::fs::create_dir_all(&home)?;
            let mut cmd = Command::new(b);
            cmd.args(["agent", "cloud", "--bench"])
                .arg(&bench)
                .args(["--bench-id", "benchci-rig", "--poll-interval-s", "2"])
                .env("BENCHCI_API_URL", &url)
                .env("BENCHCI_AGENT_TOKEN", agent_token(&admin)?)
                .env("BENCHCI_LOCK_DIR", dir.join("locks"))
                .env("HOME", &home)
                .env_remove("BENCHCI_MACHINE_ID")
                .current_dir(&dir);
            let agent = spawn_agent(cmd, &dir)?;
            wait_healthy(&admin, "benchci-rig", &dir.join("agent.log"))?;
            let s = measure(&admin, "benchci-rig", runs)?;
            drop(agent);
            Some(s)
        }
        None => None,
    };

    let mut t = Table::new(
        format!("cloud-dispatch: one run at a time on hilt server (SQLite), {runs} runs per agent"),
        "benchci agent cloud (2 s poll)",
    );
    let rows = [
        ("submit → started p50 ms", false, 50.0, Some(50.0)),
        ("submit → started p99 ms", false, 99.0, None),
        ("submit → done p50 ms", true, 50.0, None),
        ("submit → done p99 ms", true, 99.0, None),
    ];
    let pick = |s: &Samples, done: bool| {
        if done {
            s.done.clone()
        } else {
            s.started.clone()
        }
    };
    for (name, done, p, target) in rows {
        let h = percentile(&pick(&hilt, done), p);
        let b = benchci.as_ref().map(|s| percentile(&pick(s, done), p));
        t.row(
            name,
            format!("{h:.1}"),
            b.map_or("not installed".into(), |b| format!("{b:.1}")),
            b.map_or("-".into(), |b| format!("{:.0}× sooner", b / h)),
            target.map_or(String::new(), |t| format!("≤ {t:.0} ms")),
            target.map(|t| h <= t),
        );
    }
    t.note("started = the agent's first event timestamp minus the submission time (same host clock); done = when a client polling every 2 ms sees the run finished");
    Ok(t)
}
