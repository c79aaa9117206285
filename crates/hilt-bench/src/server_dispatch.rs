//! `server-dispatch`: how long a run waits between its submission and the moment a cloud
//! agent has it, on `hilt server` (SQLite, or PostgreSQL with one or more replicas) with N
//! simulated agents long-polling. Beside it, what a fixed poll interval gives (BenchCI's
//! cloud agent polls every 2 s): on average half the interval, at worst all of it, plus one
//! request.
//!
//! Each simulated agent (`sim_agents`, async) has its own agent token, machine id and one
//! healthy bench, talks to replica `i % replicas`, and loops: long-poll
//! `GET /v1/agents/assignments/next`; on an assignment, note the time and complete the run
//! at once. The driver submits one run at a time to a bench picked round-robin, through the
//! replicas in turn (so with two replicas half the runs are submitted on the replica the
//! agent is not polling), and waits for that run's agent to report it.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use crate::env::Env;
use crate::server_rig::{Rig, RigArgs};
use crate::sim_agents::{Api, SimAgent, raise_nofile, runtime};
use crate::stats::percentile;
use crate::table::Table;

#[derive(clap::Args)]
pub struct Args {
    /// Simulated agents long-polling [default: 1000, quick: 20].
    #[arg(long)]
    agents: Option<usize>,
    /// Runs dispatched, one at a time [default: 500, quick: 50].
    #[arg(long)]
    runs: Option<usize>,
    #[command(flatten)]
    rig: RigArgs,
}

pub fn run(env: &Env, a: &Args, quick: bool) -> anyhow::Result<Table> {
    let agents = crate::pick(a.agents, quick, 1000, 20);
    let runs = crate::pick(a.runs, quick, 500, 50);
    raise_nofile();
    let rig = Rig::start(env, "server-dispatch", &a.rig, 20)?;
    let urls = rig.urls();
    let samples = runtime()?.block_on(async {
        let api = Api::new()?;
        let sims = SimAgent::register_many(&api, &urls, agents, 0, 16).await?;
        let (got_tx, mut got_rx) = mpsc::unbounded_channel::<(String, Instant)>();
        for sim in &sims {
            let (sim, api, tx) = (sim.clone(), api.clone(), got_tx.clone());
            tokio::spawn(async move {
                loop {
                    let held = match sim.next(&api).await {
                        Ok(Some(h)) => h,
                        Ok(None) => continue,
                        Err(e) => {
                            eprintln!("warning: agent {}: poll failed: {e}", sim.machine);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    };
                    if tx.send((held.run_id.clone(), Instant::now())).is_err() {
                        return;
                    }
                    if let Err(e) = sim.complete(&api, &held).await {
                        eprintln!("warning: agent {}: complete failed: {e}", sim.machine);
                    }
                }
            });
        }
        drop(got_tx);
        // Let every agent reach its long-poll before timing.
        tokio::time::sleep(Duration::from_millis(1000 + agents as u64)).await;
        let mut samples = Vec::with_capacity(runs);
        for i in 0..runs {
            let bench = &sims[i % sims.len()].bench_id;
            let t0 = Instant::now();
            let id = api.submit(&urls[i % urls.len()], bench).await?;
            loop {
                let (got, at) = tokio::time::timeout(Duration::from_secs(30), got_rx.recv())
                    .await
                    .context("no agent got the run within 30 s")?
                    .context("every agent stopped")?;
                if got == id {
                    samples.push(at.duration_since(t0).as_secs_f64() * 1e3);
                    break;
                }
            }
        }
        anyhow::Ok(samples)
    })?;
    let p50 = percentile(&samples, 50.0);
    let p99 = percentile(&samples, 99.0);
    let mut t = Table::new(
        format!(
            "server-dispatch: submit → agent has the run ({agents} agents long-polling, {runs} runs, {})",
            rig.label
        ),
        "2 s poll interval (BenchCI)",
    );
    t.row(
        "p50 ms",
        format!("{p50:.2}"),
        "1000 (mean wait)",
        format!("{:.0}× sooner", 1000.0 / p50),
        "≤ 5 ms",
        Some(p50 <= 5.0),
    );
    t.row(
        "p99 ms",
        format!("{p99:.2}"),
        "1980",
        format!("{:.0}× sooner", 1980.0 / p99),
        "≤ 50 ms",
        Some(p99 <= 50.0),
    );
    t.row(
        "max ms",
        format!("{:.2}", percentile(&samples, 100.0)),
        "2000",
        "",
        "",
        None,
    );
    t.note("latency includes the submission's own HTTP round trip and database write; the baseline column is what a 2 s poll interval gives (uniform wait), not a measurement");
    t.note(rig.describe());
    Ok(t)
}
