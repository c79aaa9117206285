//! `agent-plain`: the agent as a plain client sees it. A trivial registered-bench run
//! (send `PING`, expect `PONG`) against a device written in Python on a pty
//! (`scripts/bench/py_device.py`), submitted and then polled every 5 ms by a client that
//! opens a new TCP connection for every HTTP call (`Connection: close`, no keep-alive),
//! against `hilt agent serve` and BenchCI 2.0.1's `benchci agent serve` on the same device,
//! interleaved (runs alternate which agent goes first). Prints submit → done p50/p90/p99
//! for both and the ratio, plus where the time goes: the agent's own event timeline and the
//! latency of one status GET on a fresh connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::agent_bench::{timeline, ts_secs};
use crate::agent_http::Api;
use crate::agent_proc::Kind;
use crate::agent_rig::Rig;
use crate::env::Env;
use crate::stats::{median, percentile};
use crate::table::Table;

/// The Python device, embedded so the benchmark runs from any directory.
pub const PY_DEVICE: &str = include_str!("../../../scripts/bench/py_device.py");

const BENCH_ID: &str = "board";

const SUITE: &str = "version: 1
suite: {name: plain ping, version: \"1.0\"}
tests:
  - name: answers ping
    steps:
      - send_uart: {node: board, transport: console, data: \"PING\\r\\n\"}
      - expect_uart: {node: board, transport: console, contains: \"PONG\", within_ms: 2000}
";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Measured runs per agent [default: 30, quick: 5].
    #[arg(long)]
    runs: Option<usize>,
    /// Status poll interval of the client, ms.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
}

/// A client with no connection reuse: every call connects, sends one request with
/// `Connection: close`, reads to EOF.
#[derive(Clone, Copy)]
pub struct Plain {
    addr: SocketAddr,
}

impl Plain {
    pub fn new(port: u16) -> Plain {
        Plain {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// One request on a fresh connection; the status code and the body.
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut s =
            TcpStream::connect(self.addr).with_context(|| format!("connect {}", self.addr))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.addr
        )
        .into_bytes();
        if method == "POST" {
            req.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        s.write_all(&req)?;
        let mut raw = Vec::with_capacity(2048);
        s.read_to_end(&mut raw)?;
        parse_response(&raw).with_context(|| format!("{method} {path}"))
    }

    fn json(&self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<Value> {
        let (status, b) = self.call(method, path, body)?;
        if status != 200 {
            bail!(
                "{method} {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&b)
            );
        }
        Ok(serde_json::from_slice(&b)?)
    }
}

/// A whole HTTP/1.1 response read to EOF: status and body (content-length, chunked, or
/// everything after the head).
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of the response head")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let rest = &raw[end + 4..];
    let header = |k: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(k)
                .map(|v| v.trim_start_matches(':').trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut out = Vec::new();
        let mut r = rest;
        loop {
            let nl = r
                .windows(2)
                .position(|w| w == b"\r\n")
                .context("bad chunk")?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&r[..nl])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim(),
                16,
            )?;
            r = &r[nl + 2..];
            if size == 0 {
                return Ok((status, out));
            }
            out.extend_from_slice(r.get(..size).context("short chunk")?);
            r = r.get(size + 2..).context("short chunk")?;
        }
    }
    let body = match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) => rest.get(..n).context("short body")?.to_vec(),
        None => rest.to_vec(),
    };
    Ok((status, body))
}

struct Sample {
    /// POST sent → the GET that shows `done` has been read, ms.
    wall: f64,
    /// The agent's own created_at → finished_at, ms.
    server: f64,
    /// The POST, on its fresh connection, ms.
    post: f64,
    /// Each status GET, on its fresh connection, ms.
    gets: Vec<f64>,
    id: String,
}

fn one_run(c: Plain, kind: Kind, body: &[u8], poll: Duration) -> anyhow::Result<Sample> {
    let t = Instant::now();
    let r = c.json("POST", "/v1/runs/json", body)?;
    let post = t.elapsed().as_secs_f64() * 1e3;
    let id = r["run_id"].as_str().context("no run_id")?.to_string();
    let path = format!("/v1/runs/{id}");
    let mut gets = Vec::new();
    loop {
        let g = Instant::now();
        let v = c.json("GET", &path, b"")?;
        gets.push(g.elapsed().as_secs_f64() * 1e3);
        match v["status"].as_str().unwrap_or("") {
            "done" => {
                let wall = t.elapsed().as_secs_f64() * 1e3;
                let server = match (ts_secs(&v["created_at"]), ts_secs(&v["finished_at"])) {
                    (Some(a), Some(z)) => (z - a) * 1e3,
                    _ => f64::NAN,
                };
                return Ok(Sample {
                    wall,
                    server,
                    post,
                    gets,
                    id,
                });
            }
            "failed" | "cancelled" => bail!("{} run {id} did not pass: {v}", kind.name()),
            _ => {}
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("{} run {id} did not finish within 60 s", kind.name());
        }
        std::thread::sleep(poll);
    }
}

pub fn run(env: &Env, a: &Args, quick: bool) -> anyhow::Result<Table> {
    let runs = a.runs.unwrap_or(if quick { 5 } else { 30 }).max(1);
    let poll = Duration::from_millis(a.poll_ms);
    let mut rig = Rig::new(env, "agent-plain")?;
    let script = rig.dir.join("py_device.py");
    std::fs::write(&script, PY_DEVICE)?;
    let link = rig.dir.join("board.tty");
    let python = rig.benchci.with_file_name("python");
    let mut dev = std::process::Command::new(if python.is_file() {
        python.as_path()
    } else {
        std::path::Path::new("python3")
    });
    dev.arg(&script).arg("--link").arg(&link);
    rig.device(
        dev,
        &link,
        "the Python device",
        "device.log",
        Duration::from_secs(10),
    )?;
    rig.register(
        &format!(
            "version: 1\nbench: {{name: python device bench}}\nnodes:\n  board:\n    kind: mcu\n    transports:\n      console: {{backend: uart, port: \"{}\", baud: 115200}}\n",
            link.display()
        ),
        "hilt-bench-plain",
        BENCH_ID,
        "",
    )?;
    eprintln!("agent-plain: starting both agents");
    let (mut h, mut b) = rig.start_both(env)?;
    let body = serde_json::to_vec(
        &json!({"bench_id": BENCH_ID, "suite_yaml": SUITE, "skip_flash": true}),
    )?;
    let (hc, bc) = (Plain::new(h.port), Plain::new(b.port));
    eprintln!("agent-plain: {runs} runs per agent, alternating, polled every {poll:?}");
    // Warm-up, not counted.
    for _ in 0..2 {
        one_run(hc, Kind::Hilt, &body, poll)?;
    }
    one_run(bc, Kind::Benchci, &body, poll)?;
    let (mut hs, mut bs) = (Vec::new(), Vec::new());
    for r in 0..runs {
        if r % 2 == 0 {
            hs.push(one_run(hc, Kind::Hilt, &body, poll)?);
            bs.push(one_run(bc, Kind::Benchci, &body, poll)?);
        } else {
            bs.push(one_run(bc, Kind::Benchci, &body, poll)?);
            hs.push(one_run(hc, Kind::Hilt, &body, poll)?);
        }
    }
    // Status GET latency on a fresh connection, with nothing running: the client's side of
    // the budget.
    let idle_get = |c: Plain, id: &str| -> anyhow::Result<Vec<f64>> {
        (0..50)
            .map(|_| {
                let t = Instant::now();
                c.json("GET", &format!("/v1/runs/{id}"), b"")?;
                Ok(t.elapsed().as_secs_f64() * 1e3)
            })
            .collect()
    };
    let (hg, bg) = (idle_get(hc, &hs[0].id)?, idle_get(bc, &bs[0].id)?);

    let col = |v: &[Sample], f: fn(&Sample) -> f64| v.iter().map(f).collect::<Vec<f64>>();
    let (hw, bw) = (col(&hs, |s| s.wall), col(&bs, |s| s.wall));
    let mut t = Table::new(
        format!(
            "agent-plain: submit → done, PING/PONG on a Python pty device, registered bench, new connection per HTTP call, status polled every {} ms, {runs} runs per agent interleaved",
            a.poll_ms
        ),
        "BenchCI 2.0.1 agent",
    );
    for (q, target) in [(50.0, true), (90.0, false), (99.0, false)] {
        let (x, y) = (percentile(&hw, q), percentile(&bw, q));
        t.row(
            format!("submit → done p{q:.0} ms"),
            format!("{x:.1}"),
            format!("{y:.1}"),
            format!("{:.1}× faster", y / x),
            if target { "≥ 20× faster" } else { "" },
            target.then_some(y / x >= 20.0),
        );
    }
    let (hsv, bsv) = (col(&hs, |s| s.server), col(&bs, |s| s.server));
    t.row(
        "diagnostic: created_at → finished_at p50 ms (agent's own clock)",
        format!("{:.1}", median(&hsv)),
        format!("{:.1}", median(&bsv)),
        format!("{:.1}×", median(&bsv) / median(&hsv)),
        "",
        None,
    );
    t.row(
        "diagnostic: POST /v1/runs/json p50 ms (fresh connection)",
        format!("{:.2}", median(&col(&hs, |s| s.post))),
        format!("{:.2}", median(&col(&bs, |s| s.post))),
        "",
        "",
        None,
    );
    let all_gets = |v: &[Sample]| {
        v.iter()
            .flat_map(|s| s.gets.iter().copied())
            .collect::<Vec<_>>()
    };
    let (hga, bga) = (all_gets(&hs), all_gets(&bs));
    t.row(
        "diagnostic: GET /v1/runs/{id} p50 / p90 ms during runs (fresh connection)",
        format!("{:.2} / {:.2}", median(&hga), percentile(&hga, 90.0)),
        format!("{:.2} / {:.2}", median(&bga), percentile(&bga, 90.0)),
        "",
        "",
        None,
    );
    t.row(
        "diagnostic: GET /v1/runs/{id} p50 / p90 ms, agent idle (fresh connection, 50 calls)",
        format!("{:.2} / {:.2}", median(&hg), percentile(&hg, 90.0)),
        format!("{:.2} / {:.2}", median(&bg), percentile(&bg, 90.0)),
        "",
        "",
        None,
    );
    t.row(
        "diagnostic: polls per run, p50",
        format!("{:.0}", median(&col(&hs, |s| s.gets.len() as f64))),
        format!("{:.0}", median(&col(&bs, |s| s.gets.len() as f64))),
        "",
        "",
        None,
    );
    let ids = |v: &[Sample]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    t.note(format!(
        "hilt event timeline, median ms after run.queued: {}",
        timeline(&Api::new(h.port), &ids(&hs))
    ));
    t.note(format!(
        "BenchCI event timeline, median ms after run.queued: {}",
        timeline(&Api::new(b.port), &ids(&bs))
    ));
    t.note(format!(
        "submit → done, every run, ms: hilt {}; BenchCI {}",
        list(&hw),
        list(&bw)
    ));
    t.note("Device: scripts/bench/py_device.py (Python, select() loop, replies at once). Bench: one uart node on its pty. Both agents serve the same agent.yaml on 127.0.0.1 with auth off, each with its own port, work dir, HOME and lock dir. The client connects anew for the POST and for every GET (Connection: close) and sleeps the poll interval after each GET that is not terminal. Warm-up runs (2 hilt, 1 BenchCI) are not counted.");
    h.stop();
    b.kill();
    Ok(t)
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_eof_bodies() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(r, (200, b"{}".to_vec()));
        let r = parse_response(
            b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r, (404, b"abcd".to_vec()));
        let r = parse_response(b"HTTP/1.1 200 OK\r\n\r\nrest").unwrap();
        assert_eq!(r, (200, b"rest".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn one_connection_per_call() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = l.accept().unwrap();
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut b = [0u8; 512];
                    let n = s.read(&mut b).unwrap();
                    seen.extend_from_slice(&b[..n]);
                }
                assert!(String::from_utf8_lossy(&seen).contains("Connection: close"));
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
                    .unwrap();
            }
        });
        let c = Plain::new(port);
        assert_eq!(c.json("GET", "/a", b"").unwrap()["ok"], true);
        assert_eq!(c.json("POST", "/b", b"{}").unwrap()["ok"], true);
        server.join().unwrap();
    }
}
