//! `server-agents`: many simulated cloud agents heartbeating and long-polling one `hilt
//! server`, and whether it stays responsive. Each agent (`sim_agents`) heartbeats every
//! `--heartbeat-s` (the `hilt agent cloud` default is 10 s) and keeps one long-poll open
//! (the server answers an empty one after its 20 s wait and the agent polls again at
//! once), both started at a random offset so the load is even. After a warm-up of one
//! long-poll period, for `--seconds`: the server's CPU time and memory (from `/proc`),
//! heartbeats answered per second, refused or failed calls, and a probe client measuring
//! `/health` and submit → assigned (a run pinned to a random agent's bench) every 200 ms
//! on its own connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::env::Env;
use crate::server_rig::{Rig, RigArgs};
use crate::sim_agents::{Api, CallError, SimAgent, raise_nofile, runtime};
use crate::stats::percentile;
use crate::table::Table;

#[derive(clap::Args)]
pub struct Args {
    /// Simulated agents [default: 10000, quick: 300].
    #[arg(long)]
    agents: Option<usize>,
    /// Seconds between an agent's heartbeats.
    #[arg(long, default_value_t = 10.0)]
    heartbeat_s: f64,
    /// The measured window, after the warm-up [default: 60, quick: 10].
    #[arg(long)]
    seconds: Option<u64>,
    /// The server's long-poll wait, seconds.
    #[arg(long, default_value_t = 20)]
    long_poll_s: u64,
    #[command(flatten)]
    rig: RigArgs,
}

#[derive(Default)]
struct Counters {
    heartbeats: AtomicU64,
    polls: AtomicU64,
    /// Answered 503 (over the connection cap).
    refused: AtomicU64,
    /// Any other non-2xx, or no answer.
    failed: AtomicU64,
}

impl Counters {
    fn error(&self, e: &CallError) {
        match e {
            CallError::Status(503, _) => self.refused.fetch_add(1, Ordering::Relaxed),
            CallError::Status(..) | CallError::Transport(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    fn snapshot(&self) -> [u64; 4] {
        [
            self.heartbeats.load(Ordering::Relaxed),
            self.polls.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        ]
    }
}

/// A pseudo-random fraction in [0, 1) from an index (no RNG dependency; only spreads start
/// times).
fn spread(i: usize) -> f64 {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    x as f64 / (1u64 << 53) as f64
}

struct Probes {
    health_ms: Vec<f64>,
    assign_ms: Vec<f64>,
    failed: usize,
}

pub fn run(env: &Env, a: &Args, quick: bool) -> anyhow::Result<Table> {
    let agents = crate::pick(a.agents, quick, 10_000, 300);
    let seconds = crate::pick(a.seconds, quick, 60, 10);
    let nofile = raise_nofile();
    let rig = Rig::start(env, "server-agents", &a.rig, a.long_poll_s)?;
    let urls = rig.urls();
    let heartbeat = Duration::from_secs_f64(a.heartbeat_s.max(0.01));
    let counters = Arc::new(Counters::default());
    let rt = runtime()?;
    let (probes, window, cpu, rss, setup) = rt.block_on(async {
        let api = Api::new()?;
        let t_setup = Instant::now();
        let sims = SimAgent::register_many(&api, &urls, agents, 0, 32).await?;
        let setup = t_setup.elapsed();
        let (got_tx, mut got_rx) = mpsc::unbounded_channel::<(String, Instant)>();
        let long_poll = Duration::from_secs(a.long_poll_s);
        for (i, sim) in sims.iter().enumerate() {
            let (s, hb_api, c) = (sim.clone(), api.clone(), counters.clone());
            tokio::spawn(async move {
                let api = hb_api;
                tokio::time::sleep(heartbeat.mul_f64(spread(i))).await;
                let mut tick = tokio::time::interval(heartbeat);
                loop {
                    tick.tick().await;
                    match s.heartbeat(&api).await {
                        Ok(_) => c.heartbeats.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            c.error(&e);
                            continue;
                        }
                    };
                }
            });
            let (s, api, c, tx) = (sim.clone(), api.clone(), counters.clone(), got_tx.clone());
            tokio::spawn(async move {
                tokio::time::sleep(long_poll.mul_f64(spread(i + agents))).await;
                loop {
                    match s.next(&api).await {
                        Ok(Some(held)) => {
                            c.polls.fetch_add(1, Ordering::Relaxed);
                            let _ = tx.send((held.run_id.clone(), Instant::now()));
                            if let Err(e) = s.complete(&api, &held).await {
                                c.error(&e);
                            }
                        }
                        Ok(None) => {
                            c.polls.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            c.error(&e);
                            // A real agent backs off after a failed call.
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
        }
        drop(got_tx);
        // Warm-up: every agent has heartbeated and is polling.
        tokio::time::sleep(long_poll.max(heartbeat) + Duration::from_secs(2)).await;
        let before = counters.snapshot();
        let cpu0 = rig.cpu_s();
        let client0 = crate::server_rig::cpu_seconds(std::process::id());
        let t0 = Instant::now();
        let probe_api = Api::new()?;
        let mut probes = Probes {
            health_ms: Vec::new(),
            assign_ms: Vec::new(),
            failed: 0,
        };
        let mut n = 0usize;
        while t0.elapsed() < Duration::from_secs(seconds) {
            n += 1;
            let base = &urls[n % urls.len()];
            let h0 = Instant::now();
            match probe_api
                .call(
                    reqwest::Method::GET,
                    &format!("{base}/health"),
                    "",
                    None,
                    None,
                )
                .await
            {
                Ok(_) => probes.health_ms.push(h0.elapsed().as_secs_f64() * 1e3),
                Err(_) => probes.failed += 1,
            }
            let target = &sims[(spread(n) * sims.len() as f64) as usize % sims.len()];
            let s0 = Instant::now();
            match probe_api.submit(base, &target.bench_id).await {
                Ok(id) => loop {
                    match tokio::time::timeout(Duration::from_secs(30), got_rx.recv()).await {
                        Ok(Some((got, at))) if got == id => {
                            probes
                                .assign_ms
                                .push(at.duration_since(s0).as_secs_f64() * 1e3);
                            break;
                        }
                        Ok(Some(_)) => continue,
                        Ok(None) | Err(_) => {
                            probes.failed += 1;
                            break;
                        }
                    }
                },
                Err(_) => probes.failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let window = t0.elapsed().as_secs_f64();
        let cpu = rig.cpu_s() - cpu0;
        let client_cpu = crate::server_rig::cpu_seconds(std::process::id()) - client0;
        let after = counters.snapshot();
        let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        anyhow::Ok((
            probes,
            window,
            (cpu, client_cpu, delta),
            rig.rss_mib(),
            setup,
        ))
    })?;
    // Stop every simulated agent before the server goes.
    rt.shutdown_timeout(Duration::from_secs(1));
    let (cpu, client_cpu, delta) = cpu;
    let expected_hb = agents as f64 / heartbeat.as_secs_f64();
    let hb_s = delta[0] as f64 / window;
    let mut t = Table::new(
        format!(
            "server-agents: {agents} agents heartbeating every {:.0} s and long-polling ({} s wait), {}",
            heartbeat.as_secs_f64(),
            a.long_poll_s,
            rig.label
        ),
        "the load's own rate",
    );
    t.row(
        "heartbeats answered /s",
        format!("{hb_s:.0}"),
        format!("{expected_hb:.0} sent"),
        format!("{:.0}%", 100.0 * hb_s / expected_hb),
        "all",
        Some(hb_s >= 0.95 * expected_hb),
    );
    t.row(
        "long-polls answered /s",
        format!("{:.0}", delta[1] as f64 / window),
        format!(
            "{:.0} (agents / wait)",
            agents as f64 / a.long_poll_s as f64
        ),
        "",
        "",
        None,
    );
    t.row(
        "calls refused (503) / failed",
        format!("{} / {}", delta[2], delta[3]),
        "0",
        "",
        "0",
        Some(delta[2] + delta[3] == 0),
    );
    t.row(
        "server CPU (of one core)",
        format!("{:.0}%", 100.0 * cpu / window),
        "",
        "",
        "",
        None,
    );
    t.row(
        "client CPU (this process: the simulated agents, same CPUs)",
        format!("{:.0}%", 100.0 * client_cpu / window),
        "",
        "",
        "",
        None,
    );
    t.row(
        "server RSS / peak MiB",
        format!("{:.0} / {:.0}", rss, rig.peak_rss_mib()),
        "",
        "",
        "",
        None,
    );
    let hp50 = percentile(&probes.health_ms, 50.0);
    let hp99 = percentile(&probes.health_ms, 99.0);
    t.row(
        "probe /health p50 / p99 ms",
        format!("{hp50:.2} / {hp99:.2}"),
        "",
        "",
        "p99 ≤ 50 ms",
        Some(hp99 <= 50.0),
    );
    let ap50 = percentile(&probes.assign_ms, 50.0);
    let ap99 = percentile(&probes.assign_ms, 99.0);
    t.row(
        "probe submit → assigned p50 / p99 ms",
        format!("{ap50:.2} / {ap99:.2}"),
        "",
        "",
        "p50 ≤ 5, p99 ≤ 50 ms",
        Some(ap50 <= 5.0 && ap99 <= 50.0),
    );
    t.row(
        "probes failed",
        probes.failed.to_string(),
        "",
        "",
        "0",
        Some(probes.failed == 0),
    );
    t.note(format!(
        "{} probe rounds in {window:.0} s; registering the agents (token + heartbeat + sync each) took {:.1} s",
        probes.health_ms.len(),
        setup.as_secs_f64()
    ));
    t.note(format!(
        "client: this process (tokio, one reqwest pool), open-file limit {nofile}; it shares the CPUs with the server"
    ));
    t.note(format!(
        "server connection cap: {}",
        a.rig
            .max_connections
            .map_or("the default".to_string(), |n| format!(
                "--max-connections {n}"
            ))
    ));
    t.note(rig.describe());
    Ok(t)
}
