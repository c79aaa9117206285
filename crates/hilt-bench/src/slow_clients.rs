//! `hilt-bench agent-slow-clients`: `/health` latency of a real `hilt agent serve` with no
//! other client, then while N loopback connections hold the agent by never finishing their
//! headers (the slowloris pattern). Each probe opens a new connection, as a monitoring
//! check would. Loopback only; the slow connections are closed at the end.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::agent_proc::{Agent, Kind, Setup};
use crate::env::Env;
use crate::stats::{micros, percentile};
use crate::table::Table;

pub struct Args {
    pub slow: usize,
    pub probes: usize,
}

fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
            hard
        }
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// A hilt agent with no bench, auth off, self-test off, a header timeout longer than the
/// measurement (every slow connection is still open while /health is probed) and room
/// for `slow` connections.
fn start(env: &Env, slow: usize) -> anyhow::Result<Agent> {
    let root = env.scratch("agent-slow-clients")?;
    let config = root.join("agent.yaml");
    std::fs::write(
        &config,
        "agent: {id: hilt-bench-slow-clients, name: hilt-bench-slow-clients}\nbenches: []\n",
    )?;
    let setup = Setup {
        env,
        benchci: None,
        config: &config,
        root: &root,
    };
    let extra = [
        "--header-timeout-ms".to_string(),
        "120000".to_string(),
        "--max-connections".to_string(),
        (slow + 256).to_string(),
    ];
    let (mut agent, _) = Agent::spawn_with(&setup, Kind::Hilt, "agent", false, &extra)?;
    agent.wait_healthy(Duration::from_secs(30))?;
    Ok(agent)
}

/// One `/health` on a new connection; its latency.
fn probe(addr: SocketAddr) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut buf = Vec::with_capacity(1024);
    s.read_to_end(&mut buf)?;
    let d = t.elapsed();
    if !buf.starts_with(b"HTTP/1.1 200") {
        bail!(
            "/health answered {:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(60)])
        );
    }
    Ok(d)
}

fn probes(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<f64>> {
    for _ in 0..20 {
        probe(addr)?; // warm-up
    }
    (0..n).map(|_| probe(addr).map(micros)).collect()
}

pub fn run(env: &Env, a: &Args) -> anyhow::Result<Table> {
    let limit = raise_nofile();
    if limit < (a.slow as u64) + 256 {
        bail!(
            "the open-file limit ({limit}) is too low for {} slow connections",
            a.slow
        );
    }
    let agent = start(env, a.slow)?;
    let addr = agent.addr();
    let idle = probes(addr, a.probes)?;
    let mut slow = Vec::with_capacity(a.slow);
    for i in 0..a.slow {
        let mut s = TcpStream::connect(addr).with_context(|| format!("slow connection {i}"))?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: ")?;
        slow.push(s);
    }
    let opened = Instant::now();
    let loaded = probes(addr, a.probes)?;
    let measured_in = opened.elapsed();
    drop(slow);
    let mut t = Table::new(
        format!(
            "agent /health with {} slow connections open (new connection per probe, loopback)",
            a.slow
        ),
        "no other client",
    );
    for (case, p) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        let h = percentile(&loaded, p);
        let b = percentile(&idle, p);
        let target = if case == "p99" { "< 1000 µs" } else { "" };
        t.row(
            format!("/health {case}"),
            format!("{h:.0} µs"),
            format!("{b:.0} µs"),
            crate::table::ratio(h, Some(b)),
            target,
            (case == "p99").then_some(h < 1000.0),
        );
    }
    t.note(format!(
        "{} probes each; the slow connections were all open during the {:.1} s of probing (header timeout 120 s)",
        a.probes,
        measured_in.as_secs_f64()
    ));
    Ok(t)
}
