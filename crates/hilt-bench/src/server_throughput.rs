//! `server-throughput`: how many runs per second `hilt server` schedules end to end, and how
//! many events per second it ingests, through the real endpoints.
//!
//! - **Runs/s:** `--agents` simulated agents (one bench each) long-poll and complete what
//!   they get at once; 32 submitters keep `--in-flight` runs submitted and not yet
//!   completed (pinned to the benches round-robin, through the replicas in turn). Counted:
//!   runs completed in `--seconds` (each was submitted, claimed by its agent and completed),
//!   with submit → claimed latency.
//! - **Events/s:** `--event-runs` further agents each hold one run and post event batches
//!   of `--batch` events with `seq` (`POST /v1/agents/runs/{id}/events`, the fencing
//!   header, as `hilt agent cloud` sends them) back to back for `--seconds`. Counted: events
//!   acknowledged. Afterwards every run's stored events are read back and must be exactly
//!   the ones acknowledged, in order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::Semaphore;

use crate::env::Env;
use crate::server_rig::{BOOT, Rig, RigArgs};
use crate::sim_agents::{Api, SimAgent, raise_nofile, runtime};
use crate::stats::percentile;
use crate::table::Table;

#[derive(clap::Args)]
pub struct Args {
    /// Agents completing runs [default: 200, quick: 20].
    #[arg(long)]
    agents: Option<usize>,
    /// Runs submitted and not yet completed, at most.
    #[arg(long, default_value_t = 400)]
    in_flight: usize,
    /// Runs posting events at once [default: 50, quick: 10].
    #[arg(long)]
    event_runs: Option<usize>,
    /// Events per call (`hilt agent cloud` sends up to 500).
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Measured seconds of each phase [default: 20, quick: 5].
    #[arg(long)]
    seconds: Option<u64>,
    #[command(flatten)]
    rig: RigArgs,
}

struct RunsPhase {
    completed: u64,
    submitted: u64,
    window: f64,
    dispatch_ms: Vec<f64>,
    cpu: f64,
    /// This process (the simulated agents and submitters), CPU seconds.
    client_cpu: f64,
}

struct EventsPhase {
    acked: u64,
    window: f64,
    call_ms: Vec<f64>,
    cpu: f64,
    /// This process (the simulated agents), CPU seconds.
    client_cpu: f64,
    failed: u64,
}

pub fn run(env: &Env, a: &Args, quick: bool) -> anyhow::Result<Table> {
    let agents = crate::pick(a.agents, quick, 200, 20);
    let event_runs = crate::pick(a.event_runs, quick, 50, 10);
    let seconds = crate::pick(a.seconds, quick, 20, 5);
    raise_nofile();
    let rig = Rig::start(env, "server-throughput", &a.rig, 20)?;
    let urls = rig.urls();
    let rt = runtime()?;
    let (runs, events) = rt.block_on(async {
        let api = Api::new()?;
        let sims = SimAgent::register_many(&api, &urls, agents, 0, 16).await?;
        let runs = runs_phase(&rig, &api, &urls, &sims, a.in_flight.max(1), seconds).await?;
        let holders = SimAgent::register_many(&api, &urls, event_runs, agents, 16).await?;
        let events = events_phase(&rig, &api, &urls, &holders, a.batch.max(1), seconds).await?;
        anyhow::Ok((runs, events))
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));

    let runs_s = runs.completed as f64 / runs.window;
    let events_s = events.acked as f64 / events.window;
    let mut t = Table::new(
        format!(
            "server-throughput: runs scheduled and events ingested, {}",
            rig.label
        ),
        "target",
    );
    t.row(
        "runs/s (submit → claimed → completed)",
        format!("{runs_s:.0}"),
        "1000",
        crate::table::ratio(runs_s, Some(1000.0)),
        "≥ 1000",
        Some(runs_s >= 1000.0),
    );
    t.row(
        "runs submitted /s",
        format!("{:.0}", runs.submitted as f64 / runs.window),
        "",
        "",
        "",
        None,
    );
    t.row(
        "submit → claimed p50 / p99 ms (under that load)",
        format!(
            "{:.1} / {:.1}",
            percentile(&runs.dispatch_ms, 50.0),
            percentile(&runs.dispatch_ms, 99.0)
        ),
        "",
        "",
        "",
        None,
    );
    t.row(
        "server CPU during runs/s (of one core)",
        format!("{:.0}%", 100.0 * runs.cpu / runs.window),
        "",
        "",
        "",
        None,
    );
    t.row(
        "client CPU during runs/s (this process, same CPUs)",
        format!("{:.0}%", 100.0 * runs.client_cpu / runs.window),
        "",
        "",
        "",
        None,
    );
    t.row(
        format!("events/s ingested ({} per call)", a.batch),
        format!("{events_s:.0}"),
        "50000",
        crate::table::ratio(events_s, Some(50_000.0)),
        "≥ 50000",
        Some(events_s >= 50_000.0),
    );
    t.row(
        "event call p50 / p99 ms",
        format!(
            "{:.1} / {:.1}",
            percentile(&events.call_ms, 50.0),
            percentile(&events.call_ms, 99.0)
        ),
        "",
        "",
        "",
        None,
    );
    t.row(
        "server CPU during events/s (of one core)",
        format!("{:.0}%", 100.0 * events.cpu / events.window),
        "",
        "",
        "",
        None,
    );
    t.row(
        "client CPU during events/s (this process, same CPUs)",
        format!("{:.0}%", 100.0 * events.client_cpu / events.window),
        "",
        "",
        "",
        None,
    );
    t.row(
        "event calls failed",
        events.failed.to_string(),
        "",
        "",
        "0",
        Some(events.failed == 0),
    );
    t.note(format!(
        "{agents} agents, at most {} runs in flight, {event_runs} runs posting events, {seconds} s per phase; every stored event was read back and matched",
        a.in_flight
    ));
    t.note("client: this process (tokio, one reqwest pool); it shares the CPUs with the server");
    if a.rig.database == crate::server_rig::Database::Postgres {
        t.note("PostgreSQL: ANALYZE after the warm-up and before each window, as autovacuum does within the first minute of a new database (without statistics the planner treats every table as empty)");
    }
    t.note(rig.describe());
    Ok(t)
}

async fn runs_phase(
    rig: &Rig,
    api: &Api,
    urls: &[String],
    sims: &[Arc<SimAgent>],
    in_flight: usize,
    seconds: u64,
) -> anyhow::Result<RunsPhase> {
    let gate = Arc::new(Semaphore::new(in_flight));
    let submitted_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let dispatch_ms: Arc<Mutex<Vec<f64>>> = Arc::default();
    let completed = Arc::new(AtomicU64::new(0));
    let submitted = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for sim in sims {
        let (sim, api, gate) = (sim.clone(), api.clone(), gate.clone());
        let (at, ms, done, on) = (
            submitted_at.clone(),
            dispatch_ms.clone(),
            completed.clone(),
            measuring.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let held = match sim.next(&api).await {
                    Ok(Some(h)) => h,
                    Ok(None) => continue,
                    Err(e) => {
                        eprintln!("warning: agent {}: poll failed: {e}", sim.machine);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let t0 = at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&held.run_id);
                if let (Some(t0), true) = (t0, on.load(Ordering::Relaxed)) {
                    let v = t0.elapsed().as_secs_f64() * 1e3;
                    ms.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                }
                match sim.complete(&api, &held).await {
                    Ok(_) => {
                        if on.load(Ordering::Relaxed) {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => eprintln!("warning: agent {}: complete failed: {e}", sim.machine),
                }
                gate.add_permits(1);
            }
        }));
    }
    let next = Arc::new(AtomicU64::new(0));
    let mut submitters = Vec::new();
    for _ in 0..32 {
        let (api, gate, next, stop) = (api.clone(), gate.clone(), next.clone(), stop.clone());
        let (at, sent, on) = (submitted_at.clone(), submitted.clone(), measuring.clone());
        let urls = urls.to_vec();
        let benches: Vec<String> = sims.iter().map(|s| s.bench_id.clone()).collect();
        submitters.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(permit) = gate.acquire().await else {
                    return anyhow::Ok(());
                };
                permit.forget();
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let t0 = Instant::now();
                let id = api
                    .submit(&urls[i % urls.len()], &benches[i % benches.len()])
                    .await?;
                at.lock().unwrap_or_else(|e| e.into_inner()).insert(id, t0);
                if on.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        }));
    }
    // Warm-up, then the window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    rig.analyze()?;
    let cpu0 = rig.cpu_s();
    let client0 = crate::server_rig::cpu_seconds(std::process::id());
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let window = t0.elapsed().as_secs_f64();
    let cpu = rig.cpu_s() - cpu0;
    let client_cpu = crate::server_rig::cpu_seconds(std::process::id()) - client0;
    stop.store(true, Ordering::Relaxed);
    for s in submitters {
        s.await.context("submitter")??;
    }
    // Let the runs in flight drain, so the events phase has the server to itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    while gate.available_permits() < in_flight && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        t.abort();
    }
    let dispatch_ms = std::mem::take(&mut *dispatch_ms.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(RunsPhase {
        completed: completed.load(Ordering::Relaxed),
        submitted: submitted.load(Ordering::Relaxed),
        window,
        dispatch_ms,
        cpu,
        client_cpu,
    })
}

async fn events_phase(
    rig: &Rig,
    api: &Api,
    urls: &[String],
    holders: &[Arc<SimAgent>],
    batch: u64,
    seconds: u64,
) -> anyhow::Result<EventsPhase> {
    // Each holder takes one run.
    let mut held = Vec::new();
    for h in holders {
        let id = api.submit(&h.base, &h.bench_id).await?;
        let got = h.next(api).await?.context("the run was not assigned")?;
        if got.run_id != id {
            bail!("agent {} got run {} instead of {id}", h.machine, got.run_id);
        }
        held.push(got);
    }
    rig.analyze()?;
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = rig.cpu_s();
    let client0 = crate::server_rig::cpu_seconds(std::process::id());
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (h, run) in holders.iter().cloned().zip(held) {
        let (api, stop) = (api.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut next_seq, mut failed, mut ms) = (1u64, 0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let c0 = Instant::now();
                match h.events(&api, &run, next_seq, batch).await {
                    Ok(_) => {
                        ms.push(c0.elapsed().as_secs_f64() * 1e3);
                        next_seq += batch;
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("warning: agent {}: events failed: {e}", h.machine);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (h, run, next_seq - 1, failed, ms)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = 0;
    let mut failed = 0;
    let mut call_ms = Vec::new();
    let mut ended = Vec::new();
    for t in tasks {
        let (h, run, n, f, ms) = t.await.context("event task")?;
        acked += n;
        failed += f;
        call_ms.extend(ms);
        ended.push((h, run, n));
    }
    let window = t0.elapsed().as_secs_f64();
    let cpu = rig.cpu_s() - cpu0;
    let client_cpu = crate::server_rig::cpu_seconds(std::process::id()) - client0;
    // Every acknowledged event is stored once, in order.
    for (h, run, n) in &ended {
        let v = api
            .call(
                reqwest::Method::GET,
                &format!("{}/v1/runs/{}/events", urls[0], run.run_id),
                BOOT,
                None,
                None,
            )
            .await?;
        let list = v["events"]
            .as_array()
            .or_else(|| v.as_array())
            .context("events list")?;
        // `data.step` is the agent's seq; the server numbers what it stored from 1.
        let seqs: Vec<u64> = list
            .iter()
            .filter_map(|e| e["data"]["step"].as_u64())
            .collect();
        let want: Vec<u64> = (1..=*n).collect();
        if seqs != want {
            bail!(
                "run {}: {} events stored, {n} acknowledged, or not in order",
                run.run_id,
                seqs.len()
            );
        }
        h.complete(api, run).await?;
    }
    Ok(EventsPhase {
        acked,
        window,
        call_ms,
        cpu,
        client_cpu,
        failed,
    })
}
