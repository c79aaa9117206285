//! `agent`: `hilt agent serve` against BenchCI 2.0.1's own agent (`benchci agent serve`),
//! side by side in one run, on the same bench: a simulated DUT (`hilt sim dut`, its own
//! process) on a pty with a uart transport, mock GPIO, mock power and a mock instrument
//! (the compat bench of `vs-benchci`, free of hilt-only keys), registered in one agent.yaml
//! that both agents load. Each agent has its own port, work directory, HOME and lock
//! directory. Nothing executes on the DUT from both agents at once.
//!
//! 1. submit → terminal state of a one-test suite (ping/pong), sequential, polled every 2 ms;
//! 2. idle RSS after start-up and one `/health`, and cold start to the first 200 on `/health`;
//! 3. `/health` latency under an open-loop load (fixed schedule, keep-alive connections);
//! 4. N runs queued behind a long run (acceptance time), then cancelled (hilt);
//! 5. `artifacts.zip` of a results directory holding a large incompressible file, streamed,
//!    against `cp -r` of the same directory.
//!
//! Each part prints its own table; the table returned is the recap of every target.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::agent_http::{Api, Conn};
use crate::agent_proc::{self, Agent, Kind, Setup};
use crate::agent_rig::Rig;
use crate::env::Env;
use crate::stats::{median, percentile};
use crate::table::Table;

const BENCH: &str = include_str!("../../../scripts/bench/compat/bench.yaml");

const PING_SUITE: &str = "version: 1
suite: {name: agent ping, version: \"1.0\"}
tests:
  - name: answers ping
    steps:
      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}
      - expect_uart: {node: dut, transport: console, contains: \"pong\", within_ms: 2000}
";

/// Holds the bench for up to 10 minutes: the DUT never prints this.
const BLOCK_SUITE: &str = "version: 1
suite: {name: agent blocker, version: \"1.0\"}
tests:
  - name: waits
    steps:
      - expect_uart: {node: dut, transport: console, contains: \"never printed by the DUT\", within_ms: 600000}
";

const BENCH_ID: &str = "sim";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Sequential runs per agent for submit → terminal state [default: 20, quick: 3].
    #[arg(long)]
    runs: Option<usize>,
    /// Cold starts per agent and mode [default: 5, quick: 1].
    #[arg(long)]
    starts: Option<usize>,
    /// /health load, requests per second [default: 1000].
    #[arg(long)]
    rate: Option<u64>,
    /// /health load duration, seconds [default: 10, quick: 2].
    #[arg(long)]
    secs: Option<u64>,
    /// Runs submitted in the queueing test [default: 1000, quick: 100].
    #[arg(long)]
    queued: Option<usize>,
    /// Size of the large file in the results directory for artifacts.zip, MB [default: 512, quick: 32].
    #[arg(long)]
    zip_mb: Option<u64>,
    /// Downloads (and cp -r copies) per tool [default: 3, quick: 1].
    #[arg(long)]
    zip_trials: Option<usize>,
    /// Rounds of the queueing test for hilt (BenchCI: 1) [default: 3, quick: 1].
    #[arg(long)]
    queue_trials: Option<usize>,
}

struct P {
    runs: usize,
    starts: usize,
    rate: u64,
    secs: u64,
    queued: usize,
    zip_mb: u64,
    zip_trials: usize,
    queue_trials: usize,
}

/// One target across the parts, for the recap table.
struct Target {
    case: String,
    hilt: String,
    benchci: String,
    ratio: String,
    target: String,
    met: Option<bool>,
}

pub fn run(env: &Env, a: &Args, quick: bool) -> anyhow::Result<Table> {
    let q =
        |v: Option<usize>, full: usize, short: usize| v.unwrap_or(if quick { short } else { full });
    let p = P {
        runs: q(a.runs, 20, 3).max(1),
        starts: q(a.starts, 5, 1).max(1),
        rate: a.rate.unwrap_or(1000).max(1),
        secs: a.secs.unwrap_or(if quick { 2 } else { 10 }).max(1),
        queued: q(a.queued, 1000, 100).max(1),
        zip_mb: a.zip_mb.unwrap_or(if quick { 32 } else { 512 }),
        zip_trials: q(a.zip_trials, 3, 1).max(1),
        queue_trials: q(a.queue_trials, 3, 1).max(1),
    };
    let mut rig = Rig::new(env, "agent")?;
    let dir = rig.dir.clone();
    let link = dir.join("dut.tty");
    let mut sim = env.sim_dut(&link);
    sim.arg("--control").arg(dir.join("dut.sock"));
    rig.device(
        sim,
        &link,
        "the simulated DUT (`hilt sim dut`)",
        "sim.log",
        Duration::from_secs(5),
    )?;
    // Let it boot (30 ms), as a real bench would be.
    std::thread::sleep(Duration::from_millis(100));
    rig.register(
        &BENCH.replace("{{PORT}}", &link.display().to_string()),
        "hilt-bench-agent",
        BENCH_ID,
        ", tags: [sim]",
    )?;
    let setup = rig.setup(env);
    let mut targets = Vec::new();
    let show = |t: &mut Table| {
        t.note(format!("load average at the end: {}", crate::loadavg()));
        println!("{}", t.render());
    };

    eprintln!("agent: cold starts ({} per agent and mode)", p.starts);
    let cold = cold_starts(&setup, p.starts)?;

    eprintln!("agent: starting both agents");
    let (mut h, mut b) = rig.start_both(env)?;
    let mut t = memory_and_start(&h, &b, &cold, p.starts, &mut targets)?;
    show(&mut t);

    eprintln!(
        "agent: /health under {} req/s for {} s (hilt, then BenchCI)",
        p.rate, p.secs
    );
    let mut t = health_latency(&h, &b, &p, &mut targets)?;
    show(&mut t);

    eprintln!(
        "agent: submit → terminal, {} runs per agent, alternating",
        p.runs
    );
    let (mut t, last) = submit_to_terminal(&h, &b, &p, &mut targets)?;
    show(&mut t);

    eprintln!("agent: artifacts.zip with a {} MB file", p.zip_mb);
    let py = rig.benchci.with_file_name("python");
    let mut t = artifacts_zip(&h, &b, &last, &p, &dir, &py, &mut targets)?;
    show(&mut t);

    eprintln!("agent: {} runs queued (hilt, then BenchCI)", p.queued);
    let mut t = queueing(&mut h, &mut b, &p, &mut targets)?;
    show(&mut t);

    h.stop();
    b.kill();
    let mut recap = Table::new(
        "agent: recap of the targets (hilt agent vs BenchCI agent, same bench, same run)",
        "BenchCI 2.0.1 agent",
    );
    for x in targets {
        recap.row(x.case, x.hilt, x.benchci, x.ratio, x.target, x.met);
    }
    recap.note(format!(
        "Both agents serve the same agent.yaml (bench `{BENCH_ID}`: uart on a `hilt sim dut` pty, mock GPIO/power/measurement), on 127.0.0.1 with auth off; each has its own port, work dir, HOME and lock dir."
    ));
    Ok(recap)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------
// 2. cold start and idle memory

struct Cold {
    hilt_self_test: Vec<f64>,
    hilt_no_self_test: Vec<f64>,
    benchci: Vec<f64>,
}

/// Spawn → first 200 on `/health`, in ms; each start gets a fresh work directory.
fn cold_starts(s: &Setup, n: usize) -> anyhow::Result<Cold> {
    let mut c = Cold {
        hilt_self_test: Vec::new(),
        hilt_no_self_test: Vec::new(),
        benchci: Vec::new(),
    };
    let one = |kind: Kind, label: String, self_test: bool| -> anyhow::Result<f64> {
        let (mut a, started) = Agent::spawn(s, kind, &label, self_test)?;
        let ok = a.wait_healthy(Duration::from_secs(120))?;
        let t = ms(ok - started);
        a.stop();
        Ok(t)
    };
    // Warm-up (page cache, Python bytecode), not counted.
    one(Kind::Hilt, "cold-warmup-hilt".into(), true)?;
    one(Kind::Benchci, "cold-warmup-benchci".into(), true)?;
    for i in 0..n {
        c.hilt_self_test
            .push(one(Kind::Hilt, format!("cold-hilt-{i}"), true)?);
        c.hilt_no_self_test
            .push(one(Kind::Hilt, format!("cold-hilt-nst-{i}"), false)?);
        c.benchci
            .push(one(Kind::Benchci, format!("cold-benchci-{i}"), true)?);
    }
    Ok(c)
}

fn memory_and_start(
    h: &Agent,
    b: &Agent,
    cold: &Cold,
    starts: usize,
    targets: &mut Vec<Target>,
) -> anyhow::Result<Table> {
    for a in [h, b] {
        let mut c = Conn::connect(a.addr())?;
        let (status, _) = c.get("/health")?;
        if status != 200 {
            bail!("{} /health answered {status}", a.kind.name());
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let (hr, br) = (h.rss_kib() as f64 / 1024.0, b.rss_kib() as f64 / 1024.0);
    let (hh, bh) = (h.hwm_kib() as f64 / 1024.0, b.hwm_kib() as f64 / 1024.0);
    let mut t = Table::new(
        format!("agent: idle memory and cold start (cold start: median of {starts})"),
        "BenchCI 2.0.1 agent",
    );
    let frac = hr / br;
    t.row(
        "idle RSS MiB (after start-up + one /health)",
        format!("{hr:.1}"),
        format!("{br:.1}"),
        format!("{frac:.3} of BenchCI"),
        "≤ 0.20 of BenchCI",
        Some(frac <= 0.2),
    );
    t.row(
        "peak RSS so far (VmHWM) MiB",
        format!("{hh:.1}"),
        format!("{bh:.1}"),
        format!("{:.3} of BenchCI", hh / bh),
        "",
        None,
    );
    targets.push(Target {
        case: "idle RSS MiB".into(),
        hilt: format!("{hr:.1}"),
        benchci: format!("{br:.1}"),
        ratio: format!("{frac:.3} of BenchCI"),
        target: "≤ 0.20".into(),
        met: Some(frac <= 0.2),
    });
    let (hs, hn, bs) = (
        median(&cold.hilt_self_test),
        median(&cold.hilt_no_self_test),
        median(&cold.benchci),
    );
    t.row(
        "cold start → first 200 /health, ms (default: self-test at start-up)",
        format!("{hs:.1}"),
        format!("{bs:.1}"),
        format!("{:.1}× faster", bs / hs),
        "≤ 50 ms",
        Some(hs <= 50.0),
    );
    t.row(
        "cold start → first 200 /health, ms (hilt --no-self-test)",
        format!("{hn:.1}"),
        "(no such option)",
        format!("{:.1}× faster", bs / hn),
        "≤ 50 ms",
        Some(hn <= 50.0),
    );
    targets.push(Target {
        case: "cold start ms (self-test)".into(),
        hilt: format!("{hs:.1}"),
        benchci: format!("{bs:.1}"),
        ratio: format!("{:.1}× faster", bs / hs),
        target: "≤ 50 ms".into(),
        met: Some(hs <= 50.0),
    });
    targets.push(Target {
        case: "cold start ms (--no-self-test)".into(),
        hilt: format!("{hn:.1}"),
        benchci: "-".into(),
        ratio: format!("{:.1}× faster", bs / hn),
        target: "≤ 50 ms".into(),
        met: Some(hn <= 50.0),
    });
    let range = |v: &[f64]| {
        format!(
            "{:.1}–{:.1}",
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max)
        )
    };
    t.note(format!(
        "cold start ranges, ms: hilt {} (self-test), {} (--no-self-test); BenchCI {}",
        range(&cold.hilt_self_test),
        range(&cold.hilt_no_self_test),
        range(&cold.benchci)
    ));
    t.note("Cold start: from just before spawn() to the first 200 on GET /health, probing with a fresh connection every 0.5 ms; each start has a fresh work directory; one warm-up start each, not counted. BenchCI always self-tests its registered benches before serving.");
    t.note(format!("RSS: VmRSS of the agent process and its descendants (processes counted: hilt {}, BenchCI {}; BenchCI's is the Python interpreter running `benchci agent serve`), read 300 ms after one GET /health.", h.procs(), b.procs()));
    Ok(t)
}

// ---------------------------------------------------------------------------------------
// 3. /health under open-loop load

struct Load {
    /// From the scheduled send time to the full response, µs.
    lat: Vec<f64>,
    /// From the actual send to the full response, µs.
    service: Vec<f64>,
    /// How late the client thread woke up for its slot, µs.
    wake: Vec<f64>,
    errors: usize,
    unsent: usize,
    wall: Duration,
}

const LOAD_THREADS: usize = 8;

/// `rate` GET /health per second for `secs`, each request at its scheduled instant
/// (`t0 + i/rate`), taken by whichever of `LOAD_THREADS` keep-alive connections is free;
/// a request that cannot go out on time is late, and its lateness counts in its latency.
fn open_loop(addr: std::net::SocketAddr, rate: u64, secs: u64) -> anyhow::Result<Load> {
    let total = (rate * secs) as usize;
    let period = 1e9 / rate as f64;
    let mut conns = Vec::new();
    for _ in 0..LOAD_THREADS {
        let mut c = Conn::connect(addr)?;
        for _ in 0..20 {
            c.get("/health")?;
        }
        conns.push(c);
    }
    let next = AtomicUsize::new(0);
    let t0 = Instant::now() + Duration::from_millis(20);
    let hard_stop = t0 + Duration::from_secs(secs * 3 + 10);
    let results: Vec<(Vec<[f64; 3]>, usize, usize, Instant)> = std::thread::scope(|s| {
        let hs: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                let next = &next;
                s.spawn(move || {
                    // Wake-ups as close to the slot as the kernel allows.
                    let _ = nix::sys::prctl::set_timerslack(1);
                    let mut out = Vec::with_capacity(total / LOAD_THREADS + 16);
                    let (mut errors, mut unsent) = (0, 0);
                    let mut last = Instant::now();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        let sched = t0 + Duration::from_nanos((i as f64 * period) as u64);
                        let now = Instant::now();
                        if now > hard_stop {
                            unsent += 1;
                            continue;
                        }
                        if sched > now {
                            std::thread::sleep(sched - now);
                        }
                        let sent = Instant::now();
                        match c.get_retry("/health") {
                            Ok((200, _)) => {
                                let done = Instant::now();
                                last = done;
                                out.push([
                                    (done - sched).as_secs_f64() * 1e6,
                                    (done - sent).as_secs_f64() * 1e6,
                                    sent.saturating_duration_since(sched).as_secs_f64() * 1e6,
                                ]);
                            }
                            _ => errors += 1,
                        }
                    }
                    (out, errors, unsent, last)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("load thread panicked"))
            .collect()
    });
    let mut l = Load {
        lat: Vec::new(),
        service: Vec::new(),
        wake: Vec::new(),
        errors: 0,
        unsent: 0,
        wall: Duration::ZERO,
    };
    for (out, e, u, last) in results {
        for [a, b, c] in out {
            l.lat.push(a);
            l.service.push(b);
            l.wake.push(c);
        }
        l.errors += e;
        l.unsent += u;
        l.wall = l.wall.max(last.saturating_duration_since(t0));
    }
    Ok(l)
}

fn health_latency(h: &Agent, b: &Agent, p: &P, targets: &mut Vec<Target>) -> anyhow::Result<Table> {
    let hl = open_loop(h.addr(), p.rate, p.secs)?;
    std::thread::sleep(Duration::from_millis(500));
    let bl = open_loop(b.addr(), p.rate, p.secs)?;
    let mut t = Table::new(
        format!(
            "agent: GET /health latency, open loop at {} req/s for {} s ({} keep-alive connections), from the scheduled send time",
            p.rate, p.secs, LOAD_THREADS
        ),
        "BenchCI 2.0.1 agent",
    );
    let f = |v: &[f64], q: f64| percentile(v, q) / 1000.0;
    let row = |t: &mut Table, name: &str, q: f64, target: &str, met: Option<bool>| {
        let (x, y) = (f(&hl.lat, q), f(&bl.lat, q));
        t.row(
            name,
            format!("{x:.3}"),
            format!("{y:.3}"),
            format!("{:.1}× lower", y / x),
            target,
            met,
        );
    };
    row(&mut t, "p50 ms", 50.0, "", None);
    let hp99 = f(&hl.lat, 99.0);
    row(&mut t, "p99 ms", 99.0, "≤ 1 ms", Some(hp99 <= 1.0));
    row(&mut t, "p99.9 ms", 99.9, "", None);
    row(&mut t, "max ms", 100.0, "", None);
    let done = |l: &Load| {
        format!(
            "{}/{} ok, {} errors, {} unsent; {:.0} req/s",
            l.lat.len(),
            p.rate * p.secs,
            l.errors,
            l.unsent,
            l.lat.len() as f64 / l.wall.as_secs_f64().max(1e-9)
        )
    };
    t.row("completed", done(&hl), done(&bl), "", "", None);
    t.row(
        "diagnostic: service time p99 ms (from the actual send)",
        format!("{:.3}", f(&hl.service, 99.0)),
        format!("{:.3}", f(&bl.service, 99.0)),
        "",
        "",
        None,
    );
    t.row(
        "diagnostic: client wake-up lateness p99 ms (included above)",
        format!("{:.3}", f(&hl.wake, 99.0)),
        format!("{:.3}", f(&bl.wake, 99.0)),
        "",
        "",
        None,
    );
    let bp99 = f(&bl.lat, 99.0);
    targets.push(Target {
        case: format!("/health p99 ms at {} req/s", p.rate),
        hilt: format!("{hp99:.3}"),
        benchci: format!("{bp99:.3}"),
        ratio: format!("{:.1}× lower", bp99 / hp99),
        target: "≤ 1 ms".into(),
        met: Some(hp99 <= 1.0),
    });
    t.note("Open loop: request i is due at t0 + i/rate and goes out on whichever connection is free; latency runs from the due time, so a slow answer delays the requests queued behind it and is counted (no coordinated omission). Client threads sleep to their slot with 1 ns timer slack; their wake-up lateness is part of the figures. hilt first, then BenchCI, each agent idle otherwise.");
    Ok(t)
}

// ---------------------------------------------------------------------------------------
// 1. submit → terminal state

struct RunSample {
    wall: f64,
    server: f64,
    polls: usize,
    id: String,
}

pub(crate) fn ts_secs(v: &Value) -> Option<f64> {
    let t: jiff::Timestamp = v.as_str()?.parse().ok()?;
    Some(t.as_nanosecond() as f64 / 1e9)
}

fn submit_body(suite: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"bench_id": BENCH_ID, "suite_yaml": suite, "skip_flash": true}))
        .expect("serializable")
}

/// One run: POST /v1/runs/json, then GET /v1/runs/{id} every 2 ms until done or failed.
fn one_run(api: &Api, kind: Kind, body: &[u8]) -> anyhow::Result<RunSample> {
    let t = Instant::now();
    let r = api.post_json("/v1/runs/json", body)?;
    let id = r["run_id"].as_str().context("no run_id")?.to_string();
    let mut polls = 0;
    loop {
        let v = api.get_json(&format!("/v1/runs/{id}"))?;
        polls += 1;
        match v["status"].as_str().unwrap_or("") {
            "done" => {
                let wall = t.elapsed().as_secs_f64();
                let server = match (ts_secs(&v["created_at"]), ts_secs(&v["finished_at"])) {
                    (Some(a), Some(z)) => z - a,
                    _ => f64::NAN,
                };
                return Ok(RunSample {
                    wall,
                    server,
                    polls,
                    id,
                });
            }
            "failed" => bail!(
                "{} run {id} failed: {}",
                kind.name(),
                serde_json::to_string(&v).unwrap_or_default()
            ),
            _ => {}
        }
        if t.elapsed() > Duration::from_secs(120) {
            bail!("{} run {id} did not finish within 120 s", kind.name());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Median offset (ms after the first event) of each event of a run, in order, for the runs
/// whose event sequence matches the first one's.
pub(crate) fn timeline(api: &Api, ids: &[String]) -> String {
    let mut seqs: Vec<Vec<(String, f64)>> = Vec::new();
    for id in ids {
        let Ok(v) = api.get_json(&format!("/v1/runs/{id}/events")) else {
            continue;
        };
        let evs = v["events"].as_array().cloned().unwrap_or_default();
        let mut t0 = None;
        let seq: Vec<(String, f64)> = evs
            .iter()
            .filter_map(|e| {
                let t = ts_secs(&e["timestamp"])?;
                let a = *t0.get_or_insert(t);
                Some((e["event_type"].as_str()?.to_string(), (t - a) * 1e3))
            })
            .collect();
        seqs.push(seq);
    }
    let Some(first) = seqs.first().cloned() else {
        return "no events".into();
    };
    let names: Vec<&String> = first.iter().map(|(n, _)| n).collect();
    let same: Vec<&Vec<(String, f64)>> = seqs
        .iter()
        .filter(|s| s.iter().map(|(n, _)| n).collect::<Vec<_>>() == names)
        .collect();
    (0..names.len())
        .map(|i| {
            let v: Vec<f64> = same.iter().map(|s| s[i].1).collect();
            format!("{} {:.1}", names[i], median(&v))
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

fn submit_to_terminal(
    h: &Agent,
    b: &Agent,
    p: &P,
    targets: &mut Vec<Target>,
) -> anyhow::Result<(Table, [String; 2])> {
    let body = submit_body(PING_SUITE);
    let (ha, ba) = (Api::new(h.port), Api::new(b.port));
    // Warm-up, not counted.
    let wh = one_run(&ha, Kind::Hilt, &body)?;
    let wb = one_run(&ba, Kind::Benchci, &body)?;
    let (mut hs, mut bs) = (Vec::new(), Vec::new());
    for r in 0..p.runs {
        if r % 2 == 0 {
            hs.push(one_run(&ha, Kind::Hilt, &body)?);
            bs.push(one_run(&ba, Kind::Benchci, &body)?);
        } else {
            bs.push(one_run(&ba, Kind::Benchci, &body)?);
            hs.push(one_run(&ha, Kind::Hilt, &body)?);
        }
    }
    let wall = |v: &[RunSample]| median(&v.iter().map(|s| s.wall * 1e3).collect::<Vec<_>>());
    let total = |v: &[RunSample]| v.iter().map(|s| s.wall).sum::<f64>();
    let server = |v: &[RunSample]| median(&v.iter().map(|s| s.server * 1e3).collect::<Vec<_>>());
    let polls = |v: &[RunSample]| median(&v.iter().map(|s| s.polls as f64).collect::<Vec<_>>());
    let (hw, bw) = (wall(&hs), wall(&bs));
    let mut t = Table::new(
        format!(
            "agent: submit → terminal state, one-test suite (send_uart ping / expect_uart pong), registered bench, {} sequential runs per agent, polled every 2 ms",
            p.runs
        ),
        "BenchCI 2.0.1 agent",
    );
    t.row(
        "median ms (POST /v1/runs/json → GET shows done)",
        format!("{hw:.1}"),
        format!("{bw:.1}"),
        format!("{:.1}× faster", bw / hw),
        "≥ 20× faster",
        Some(bw / hw >= 20.0),
    );
    let (ht, bt) = (total(&hs), total(&bs));
    t.row(
        format!("total s for {} runs", p.runs),
        format!("{ht:.3}"),
        format!("{bt:.3}"),
        format!("{:.1}× faster", bt / ht),
        "",
        None,
    );
    let (hsv, bsv) = (server(&hs), server(&bs));
    t.row(
        "diagnostic: median ms created_at → finished_at (agent's own clock)",
        format!("{hsv:.1}"),
        format!("{bsv:.1}"),
        format!("{:.1}× faster", bsv / hsv),
        "",
        None,
    );
    t.row(
        "diagnostic: median polls per run",
        format!("{:.0}", polls(&hs)),
        format!("{:.0}", polls(&bs)),
        "",
        "",
        None,
    );
    targets.push(Target {
        case: "submit → terminal, median ms".into(),
        hilt: format!("{hw:.1}"),
        benchci: format!("{bw:.1}"),
        ratio: format!("{:.1}× faster", bw / hw),
        target: "≥ 20× faster".into(),
        met: Some(bw / hw >= 20.0),
    });
    let [mk, cr, du] = fs_probe(&h.work, 100)?;
    t.row(
        "diagnostic: the work dirs' file system, median ms: mkdir / create a file / durable 1 KiB write",
        format!("{mk:.3} / {cr:.3} / {du:.3}"),
        "",
        "",
        "",
        None,
    );
    let count = |d: &Path| count_entries(d);
    t.row(
        "diagnostic: files + directories in one finished run directory",
        count(&h.work.join("runs").join(&hs[0].id)).to_string(),
        count(&b.work.join("runs").join(&bs[0].id)).to_string(),
        "",
        "",
        None,
    );
    let ids = |v: &[RunSample]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    t.note(format!(
        "hilt event timeline, median ms after run.queued: {}",
        timeline(&ha, &ids(&hs))
    ));
    t.note(format!(
        "BenchCI event timeline, median ms after run.queued: {}",
        timeline(&ba, &ids(&bs))
    ));
    t.note("Runs alternate which agent goes first; one warm-up run each, not counted. The client's GET every 2 ms is the only other traffic. Every run must end `done`.");
    let last = [
        hs.last().map_or(wh.id, |s| s.id.clone()),
        bs.last().map_or(wb.id, |s| s.id.clone()),
    ];
    Ok((t, last))
}

// ---------------------------------------------------------------------------------------
// 5. artifacts.zip

/// `mb` MB of xorshift output: incompressible for deflate.
fn write_random(path: &Path, mb: u64) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mb {
        for c in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        f.write_all(&buf)?;
    }
    f.flush()?;
    Ok(())
}

fn dir_bytes(d: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => n += dir_bytes(&p),
                Ok(t) if t.is_file() => n += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    n
}

/// Files and directories below `d`.
fn count_entries(d: &Path) -> usize {
    std::fs::read_dir(d).map_or(0, |rd| {
        rd.flatten()
            .map(|e| {
                1 + if e.file_type().is_ok_and(|t| t.is_dir()) {
                    count_entries(&e.path())
                } else {
                    0
                }
            })
            .sum()
    })
}

/// Ends with an end-of-central-directory record, and (when Python is at hand) lists the
/// big file.
fn check_zip(path: &Path, python: &Path) -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let tail = len.min(65_536);
    f.seek(SeekFrom::Start(len - tail))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    if !buf.windows(4).any(|w| w == b"PK\x05\x06") {
        bail!("{} is not a complete zip", path.display());
    }
    if python.is_file() {
        let out = Command::new(python)
            .args(["-m", "zipfile", "-l"])
            .arg(path)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains("big.bin") {
            bail!(
                "{} does not list big.bin: {}{}",
                path.display(),
                text,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

struct Download {
    secs: f64,
    bytes: u64,
    /// Highest VmRSS of the agent seen during the download (sampled every 5 ms), KiB.
    peak_rss: u64,
    hwm_before: u64,
    hwm_after: u64,
    cpu: f64,
}

fn download(a: &Agent, id: &str, out: &Path, python: &Path) -> anyhow::Result<Download> {
    let api = Api::new(a.port);
    let hwm_before = a.hwm_kib();
    let cpu0 = a.cpu();
    let stop = AtomicBool::new(false);
    let peak = AtomicU64::new(0);
    let pid = a.pid;
    let (secs, bytes) = std::thread::scope(|s| -> anyhow::Result<(f64, u64)> {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if let Some(k) = agent_proc::status_kib(pid, "VmRSS:") {
                    peak.fetch_max(k, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let t = Instant::now();
        let mut f = std::fs::File::create(out)?;
        let r = api.download(&format!("/v1/runs/{id}/artifacts.zip"), &mut f);
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        Ok((secs, r?))
    })?;
    let cpu = (a.cpu() - cpu0).as_secs_f64();
    check_zip(out, python)?;
    Ok(Download {
        secs,
        bytes,
        peak_rss: peak.load(Ordering::Relaxed),
        hwm_before,
        hwm_after: a.hwm_kib(),
        cpu,
    })
}

#[allow(clippy::too_many_arguments)]
fn artifacts_zip(
    h: &Agent,
    b: &Agent,
    last: &[String; 2],
    p: &P,
    dir: &Path,
    python: &Path,
    targets: &mut Vec<Target>,
) -> anyhow::Result<Table> {
    let hres = h.work.join("runs").join(&last[0]).join("results");
    let bres = b.work.join("runs").join(&last[1]).join("results");
    for d in [&hres, &bres] {
        if !d.is_dir() {
            bail!("no results directory at {}", d.display());
        }
    }
    write_random(&hres.join("big.bin"), p.zip_mb)?;
    // The same inode in both results directories: same bytes, same page-cache state.
    std::fs::hard_link(hres.join("big.bin"), bres.join("big.bin"))?;
    let src = dir_bytes(&hres);
    let out = dir.join("downloads");
    std::fs::create_dir_all(&out)?;
    let mut cp = Vec::new();
    let mut hd = Vec::new();
    let mut bd = Vec::new();
    // Warm-up copy (page cache), not counted.
    let warm = out.join("cp-warmup");
    let st = Command::new("cp")
        .arg("-r")
        .arg(&hres)
        .arg(&warm)
        .status()?;
    if !st.success() {
        bail!("cp -r failed");
    }
    std::fs::remove_dir_all(&warm)?;
    for i in 0..p.zip_trials {
        let dest = out.join(format!("cp-{i}"));
        let t = Instant::now();
        let st = Command::new("cp")
            .arg("-r")
            .arg(&hres)
            .arg(&dest)
            .status()?;
        cp.push(t.elapsed().as_secs_f64());
        if !st.success() {
            bail!("cp -r failed");
        }
        std::fs::remove_dir_all(&dest)?;
        let z = out.join(format!("hilt-{i}.zip"));
        hd.push(download(h, &last[0], &z, python)?);
        std::fs::remove_file(&z)?;
    }
    // BenchCI deflates at Python zipfile's default level: one download is plenty.
    let z = out.join("benchci.zip");
    bd.push(download(b, &last[1], &z, python)?);
    std::fs::remove_file(&z)?;
    // What a stream without zip could reach here: the big file through loopback TCP.
    let mut ceiling = Vec::new();
    for i in 0..p.zip_trials {
        let dst = out.join(format!("loopback-{i}"));
        ceiling.push(loopback_copy(&hres.join("big.bin"), &dst)?);
        std::fs::remove_file(&dst)?;
    }

    let mb = src as f64 / 1e6;
    let cps = median(&cp);
    let med =
        |v: &[Download], f: fn(&Download) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    let (hs, bs) = (med(&hd, |d| d.secs), med(&bd, |d| d.secs));
    let share = cps / hs;
    let mut t = Table::new(
        format!(
            "agent: GET artifacts.zip of a finished run whose results dir holds {} MB of random data ({mb:.0} MB in all), streamed to a file, vs `cp -r` of that dir (median of {}; BenchCI 1)",
            p.zip_mb, p.zip_trials
        ),
        "BenchCI 2.0.1 agent",
    );
    t.row(
        "download s",
        format!("{hs:.3}"),
        format!("{bs:.3}"),
        format!("{:.1}× faster", bs / hs),
        "",
        None,
    );
    t.row(
        format!(
            "MB/s of the results dir (cp -r: {:.0} MB/s, {cps:.3} s)",
            mb / cps
        ),
        format!("{:.0}", mb / hs),
        format!("{:.0}", mb / bs),
        format!(
            "{:.0}% of cp (BenchCI {:.0}%)",
            share * 100.0,
            cps / bs * 100.0
        ),
        "≥ 80% of cp -r",
        Some(share >= 0.8),
    );
    targets.push(Target {
        case: format!("artifacts.zip ({} MB) speed vs cp -r", p.zip_mb),
        hilt: format!("{:.0} MB/s", mb / hs),
        benchci: format!("{:.0} MB/s", mb / bs),
        ratio: format!("{:.0}% of cp", share * 100.0),
        target: "≥ 80% of cp".into(),
        met: Some(share >= 0.8),
    });
    let kib = |k: u64| k as f64 / 1024.0;
    let mem = |v: &[Download]| {
        let d = &v[v.len() - 1];
        format!(
            "{:.1} (VmHWM {:.1} → {:.1})",
            kib(v.iter().map(|d| d.peak_rss).max().unwrap_or(0)),
            kib(v[0].hwm_before),
            kib(d.hwm_after)
        )
    };
    t.row(
        "agent RSS MiB during download, peak sampled every 5 ms (VmHWM before → after)",
        mem(&hd),
        mem(&bd),
        "",
        "bounded",
        None,
    );
    t.row(
        "diagnostic: agent CPU s per download (user + sys), % of the download time",
        format!(
            "{:.2} ({:.0}%)",
            med(&hd, |d| d.cpu),
            100.0 * med(&hd, |d| d.cpu / d.secs)
        ),
        format!(
            "{:.2} ({:.0}%)",
            med(&bd, |d| d.cpu),
            100.0 * med(&bd, |d| d.cpu / d.secs)
        ),
        "",
        "",
        None,
    );
    t.row(
        "diagnostic: zip size / source size",
        format!("{:.4}", hd[0].bytes as f64 / src as f64),
        format!("{:.4}", bd[0].bytes as f64 / src as f64),
        "",
        "",
        None,
    );
    let big_mb = p.zip_mb as f64 * (1u64 << 20) as f64 / 1e6;
    let lc = median(&ceiling);
    t.row(
        "diagnostic: ceiling without zip or HTTP: big file → loopback TCP → file, one thread each end, MB/s",
        format!("{:.0}", big_mb / lc),
        "",
        format!("{:.0}% of cp", (big_mb / lc) / (mb / cps) * 100.0),
        "",
        None,
    );
    t.note("hilt streams the zip while writing it (deflate level 1, zip64); BenchCI's zip is Python zipfile. The data is incompressible, so deflate costs CPU and saves nothing. The file is in the page cache for every reader (written just before, one warm-up cp not counted); cp and the download both write their output to the same file system.");
    Ok(t)
}

/// `src` → loopback TCP → `dst`, 256 KiB reads and writes, a thread at each end; seconds.
fn loopback_copy(src: &Path, dst: &Path) -> anyhow::Result<f64> {
    use std::io::Read;
    fn pump(from: &mut dyn Read, to: &mut dyn Write) -> std::io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = from.read(&mut buf)?;
            if n == 0 {
                return to.flush();
            }
            to.write_all(&buf[..n])?;
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let src = src.to_path_buf();
    let t = Instant::now();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = l.accept()?;
        pump(&mut std::fs::File::open(src)?, &mut s)
    });
    let mut c = std::net::TcpStream::connect(addr)?;
    pump(&mut c, &mut std::fs::File::create(dst)?)?;
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    Ok(t.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------
// 4. queueing

const SUBMITTERS: usize = 4;

fn wait_status(api: &Api, id: &str, want: &[&str], timeout: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let v = api.get_json(&format!("/v1/runs/{id}"))?;
        if want.contains(&v["status"].as_str().unwrap_or("")) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("run {id} still {} after {timeout:?}", v["status"]);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `n` POSTs from `SUBMITTERS` threads; returns the total time, the per-request times (ms)
/// and the run ids.
fn flood(
    api: &Api,
    n: usize,
    path: impl Fn(usize, &[String]) -> (String, Vec<u8>) + Sync,
    ids_in: &[String],
) -> anyhow::Result<(f64, Vec<f64>, Vec<String>)> {
    let next = AtomicUsize::new(0);
    let lat = Mutex::new(Vec::with_capacity(n));
    let ids = Mutex::new(Vec::with_capacity(n));
    let err: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..SUBMITTERS {
            let api = api.clone();
            let (next, lat, ids, err, path) = (&next, &lat, &ids, &err, &path);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (p, body) = path(i, ids_in);
                    let t = Instant::now();
                    match api.post_json(&p, &body) {
                        Ok(v) => {
                            lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1e3);
                            if let Some(id) = v["run_id"].as_str() {
                                ids.lock().unwrap().push(id.to_string());
                            }
                        }
                        Err(e) => {
                            err.lock().unwrap().get_or_insert(e);
                            next.store(n, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }
    });
    let total = t.elapsed().as_secs_f64();
    if let Some(e) = err.into_inner().unwrap() {
        return Err(e);
    }
    Ok((total, lat.into_inner().unwrap(), ids.into_inner().unwrap()))
}

struct QueueRound {
    total: f64,
    lat: Vec<f64>,
    depth: u64,
    /// CPU seconds during the submissions: the agent's, and this client's.
    cpu: (f64, f64),
    /// hilt: cancelling the queued runs (s), and the running one until the agent is idle (s).
    cancel: Option<(f64, f64)>,
}

/// One round: a blocker that holds the bench, `n` submissions behind it; then (hilt) cancel
/// them all and wait until the agent is idle, or (BenchCI, no cancel endpoint) kill it.
fn queue_round(a: &mut Agent, n: usize) -> anyhow::Result<QueueRound> {
    let ping = submit_body(PING_SUITE);
    let block = submit_body(BLOCK_SUITE);
    let submit = |_: usize, _: &[String]| ("/v1/runs/json".to_string(), ping.clone());
    let api = Api::new(a.port);
    let blocker = api.post_json("/v1/runs/json", &block)?;
    let bid = blocker["run_id"].as_str().context("no run_id")?.to_string();
    wait_status(&api, &bid, &["running"], Duration::from_secs(30))?;
    let (cpu0, me0) = (a.cpu(), agent_proc::cpu_time(std::process::id()));
    let (total, lat, ids) = flood(&api, n, submit, &[])?;
    let cpu = (
        (a.cpu() - cpu0).as_secs_f64(),
        (agent_proc::cpu_time(std::process::id()) - me0).as_secs_f64(),
    );
    let depth = api.get_json("/health")?["queue_depth"]
        .as_u64()
        .unwrap_or(0);
    if a.kind == Kind::Benchci {
        // No cancel endpoint, and state lives in memory: stopping the agent ends them.
        a.kill();
        return Ok(QueueRound {
            total,
            lat,
            depth,
            cpu,
            cancel: None,
        });
    }
    let (ct, _, _) = flood(
        &api,
        ids.len(),
        |i, ids| (format!("/v1/runs/{}/cancel", ids[i]), Vec::new()),
        &ids,
    )?;
    let t = Instant::now();
    api.post_json(&format!("/v1/runs/{bid}/cancel"), b"")?;
    wait_status(&api, &bid, &["failed", "done"], Duration::from_secs(30))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = api.get_json("/health")?;
        if v["queue_depth"].as_u64() == Some(0) && v["active_runs"].as_u64() == Some(0) {
            break;
        }
        if Instant::now() > deadline {
            bail!("hilt agent not idle 30 s after cancelling everything: {v}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let idle = t.elapsed().as_secs_f64();
    let sample = api.get_json(&format!("/v1/runs/{}", ids[ids.len() / 2]))?;
    if sample["cancelled"] != json!(true) {
        bail!("a cancelled run does not say so: {sample}");
    }
    Ok(QueueRound {
        total,
        lat,
        depth,
        cpu,
        cancel: Some((ct, idle)),
    })
}

/// What the file system under `dir` charges for the operations every submission makes,
/// median ms of `n` each: creating a directory, creating an empty file, and a durable
/// 1 KiB write to an existing file (write + fdatasync, then fsync of its directory).
fn fs_probe(dir: &Path, n: usize) -> anyhow::Result<[f64; 3]> {
    let d = dir.join("fs-probe");
    std::fs::create_dir_all(&d)?;
    let (mut mk, mut cr, mut du) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let t = Instant::now();
        std::fs::create_dir(d.join(format!("d{i}")))?;
        mk.push(ms(t.elapsed()));
        let t = Instant::now();
        let mut f = std::fs::File::create(d.join(format!("f{i}")))?;
        cr.push(ms(t.elapsed()));
        let t = Instant::now();
        f.write_all(&[b'x'; 1024])?;
        f.sync_data()?;
        std::fs::File::open(&d)?.sync_all()?;
        du.push(ms(t.elapsed()));
    }
    std::fs::remove_dir_all(&d)?;
    Ok([median(&mk), median(&cr), median(&du)])
}

fn queueing(
    h: &mut Agent,
    b: &mut Agent,
    p: &P,
    targets: &mut Vec<Target>,
) -> anyhow::Result<Table> {
    let n = p.queued;
    let mut hr = Vec::new();
    for _ in 0..p.queue_trials {
        hr.push(queue_round(h, n)?);
    }
    let br = queue_round(b, n)?;
    let totals: Vec<f64> = hr.iter().map(|r| r.total).collect();
    let ht = median(&totals);
    let bt = br.total;
    let hl: Vec<f64> = hr.iter().flat_map(|r| r.lat.iter().copied()).collect();
    let bl = &br.lat;
    let mut t = Table::new(
        format!(
            "agent: {n} runs queued behind a running one (POST /v1/runs/json from {SUBMITTERS} keep-alive connections; hilt median of {} rounds, BenchCI 1)",
            p.queue_trials
        ),
        "BenchCI 2.0.1 agent",
    );
    t.row(
        format!("{n} submissions accepted, total s"),
        format!("{ht:.3}"),
        format!("{bt:.3}"),
        format!("{:.2}× (BenchCI / hilt)", bt / ht),
        "< 1 s",
        Some(ht < 1.0),
    );
    targets.push(Target {
        case: format!("{n} runs queued, s"),
        hilt: format!("{ht:.3}"),
        benchci: format!("{bt:.3}"),
        ratio: format!("{:.2}× (BenchCI / hilt)", bt / ht),
        target: "< 1 s".into(),
        met: Some(ht < 1.0),
    });
    if hr.len() > 1 {
        t.note(format!(
            "hilt rounds, s: {}",
            totals
                .iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    t.row(
        "per submission p50 / p99 ms",
        format!(
            "{:.2} / {:.2}",
            percentile(&hl, 50.0),
            percentile(&hl, 99.0)
        ),
        format!("{:.2} / {:.2}", percentile(bl, 50.0), percentile(bl, 99.0)),
        "",
        "",
        None,
    );
    t.row(
        "queue_depth afterwards (/health)",
        hr.iter()
            .map(|r| r.depth.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        br.depth.to_string(),
        "",
        n.to_string(),
        None,
    );
    let hcpu =
        |f: fn(&(f64, f64)) -> f64| median(&hr.iter().map(|r| f(&r.cpu)).collect::<Vec<_>>());
    t.row(
        "diagnostic: CPU s during the submissions, agent + this client",
        format!("{:.2} + {:.2}", hcpu(|c| c.0), hcpu(|c| c.1)),
        format!("{:.2} + {:.2}", br.cpu.0, br.cpu.1),
        "",
        "",
        None,
    );
    let cancels: Vec<(f64, f64)> = hr.iter().filter_map(|r| r.cancel).collect();
    t.row(
        format!("cancel the {n} queued runs, total s"),
        format!(
            "{:.3}",
            median(&cancels.iter().map(|c| c.0).collect::<Vec<_>>())
        ),
        "(no cancel endpoint)",
        "",
        "",
        None,
    );
    t.row(
        "cancel the running one → agent idle, s",
        format!(
            "{:.3}",
            median(&cancels.iter().map(|c| c.1).collect::<Vec<_>>())
        ),
        "(killed instead)",
        "",
        "",
        None,
    );
    let [mk, cr, du] = fs_probe(&h.work, 100)?;
    t.row(
        "diagnostic: this file system, median ms: mkdir / create a file / durable 1 KiB write (fdatasync + directory fsync)",
        format!("{mk:.3} / {cr:.3} / {du:.3}"),
        "",
        "",
        "",
        None,
    );
    t.note("The running run waits for a line the DUT never prints (within_ms 600000), so every submission queues behind it on the bench. hilt acknowledges a run only once its record.json is on disk (file and directory fsync); BenchCI keeps runs in memory and acknowledges before anything is durable. hilt's runs are then cancelled (POST /v1/runs/{id}/cancel); BenchCI has no cancel endpoint, so its agent is killed.");
    Ok(t)
}
