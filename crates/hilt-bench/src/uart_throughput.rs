//! `uart-throughput`: how fast an `expect_uart` finds a marker at the end of a large log
//! streamed over a real pty, hilt (`hilt run`, the whole runner) vs pexpect.
//!
//! Both readers are child processes that open the pty slave themselves; a writer thread in
//! this process waits until the slave is opened, then writes log lines into the master as
//! fast as the reader drains them, the marker last. Throughput is bytes written divided by
//! the time from the open to the match (hilt: the expect step's `step.finished` event;
//! pexpect: its own clock right after `expect` returned), so process start-up is excluded
//! for both. Peak RSS comes from `getrusage` of the reaped child. A bare read loop (`hilt-bench raw-read`) on the
//! same stream shows the ceiling the pty itself allows.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};

use crate::child;
use crate::env::{Env, read_json, run_args, run_dir};
use crate::stats::median;
use crate::stream::{END_REGEX, END_TEXT, StreamPty};
use crate::table::{Table, ratio};

const PEXPECT_READER: &str = include_str!("../../../scripts/bench/pexpect_reader.py");
/// hilt's search window (`hilt_runner::uart::BUFFER_BYTES`), given to pexpect for regexes.
const WINDOW: usize = hilt_runner::uart::BUFFER_BYTES;

pub struct Args {
    /// Stream size per run, in MB (10^6 bytes).
    pub mb: u64,
    pub trials: usize,
    /// Also stream this many GB through hilt alone and report its peak RSS.
    pub gb: Option<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Contains,
    Regex,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Contains => "contains",
            Mode::Regex => "regex",
        }
    }
}

struct Sample {
    mbps: f64,
    rss_mb: f64,
    /// Open of the port to exit of the reader process.
    open_to_exit_s: f64,
}

pub fn run(env: &Env, a: &Args) -> anyhow::Result<Table> {
    let bytes = a.mb * 1_000_000;
    let mut t = Table::new(
        format!(
            "uart-throughput: expect a marker at the end of a {} MB log over a pty (median of {})",
            a.mb, a.trials
        ),
        "pexpect 4.9 fdspawn",
    );
    let mut hilt_contains = Vec::new();
    for mode in [Mode::Contains, Mode::Regex] {
        let mut h = Vec::new();
        let mut p = Vec::new();
        for trial in 0..a.trials {
            h.push(hilt_trial(env, mode, bytes, trial)?);
            progress("hilt", mode.name(), h.last());
            if env.python.is_some() {
                p.push(pexpect_trial(env, mode, bytes, trial)?);
                progress("pexpect", mode.name(), p.last());
            }
        }
        let hm = median(&h.iter().map(|s| s.mbps).collect::<Vec<_>>());
        if mode == Mode::Contains {
            hilt_contains.push(hm);
        }
        let pm = (!p.is_empty()).then(|| median(&p.iter().map(|s| s.mbps).collect::<Vec<_>>()));
        t.row(
            format!("{} MB/s", mode.name()),
            format!("{hm:.0}"),
            pm.map_or("n/a".into(), |v| format!("{v:.0}")),
            ratio(hm, pm),
            "≥ 5×",
            pm.map(|v| hm / v >= 5.0),
        );
        let hr = h.iter().map(|s| s.rss_mb).fold(0.0, f64::max);
        let pr = p.iter().map(|s| s.rss_mb).fold(0.0, f64::max);
        t.row(
            format!("{} peak RSS MB", mode.name()),
            format!("{hr:.1}"),
            if p.is_empty() {
                "n/a".into()
            } else {
                format!("{pr:.1}")
            },
            if p.is_empty() {
                "-".into()
            } else {
                format!("{:.2}×", hr / pr)
            },
            "",
            None,
        );
        t.note(format!(
            "{}: open→exit of the reader process, median: hilt {:.2} s, pexpect {}",
            mode.name(),
            median(&h.iter().map(|s| s.open_to_exit_s).collect::<Vec<_>>()),
            if p.is_empty() {
                "n/a".into()
            } else {
                format!(
                    "{:.2} s",
                    median(&p.iter().map(|s| s.open_to_exit_s).collect::<Vec<_>>())
                )
            }
        ));
    }
    // What the kernel pty allows: a bare read loop (64 KiB reads, substring search).
    let mut g = Vec::new();
    for trial in 0..a.trials {
        g.push(raw_trial(env, bytes, trial)?);
        eprintln!("  uart-throughput: bare read loop {:.0} MB/s", g[trial]);
    }
    let gm = median(&g);
    t.row(
        "ceiling: bare read loop MB/s",
        format!("contains at {:.0}%", 100.0 * median(&hilt_contains) / gm),
        format!("{gm:.0}"),
        "",
        "",
        None,
    );
    if let Some(gb) = a.gb {
        let s = hilt_trial(env, Mode::Contains, gb * 1_000_000_000, 0)?;
        t.row(
            format!("{gb} GB stream, contains, MB/s"),
            format!("{:.0}", s.mbps),
            "not run",
            "-",
            "",
            None,
        );
        t.row(
            format!("{gb} GB stream, hilt peak RSS MB"),
            format!("{:.1}", s.rss_mb),
            "not run",
            "-",
            "< 50 MB",
            Some(s.rss_mb < 50.0),
        );
        t.note(format!(
            "{gb} GB: open→exit {:.1} s (includes writing and hashing the transport log)",
            s.open_to_exit_s
        ));
    }
    t.note("hilt = `hilt run` (release) with one expect_uart step; its transport log is written to disk as in any run. pexpect is given maxread=65536 and, for regexes, searchwindowsize=200000.");
    Ok(t)
}

fn progress(reader: &str, mode: &str, s: Option<&Sample>) {
    if let Some(s) = s {
        eprintln!(
            "  uart-throughput: {reader} {mode} {:.0} MB/s, peak RSS {:.1} MB, open→exit {:.2} s",
            s.mbps, s.rss_mb, s.open_to_exit_s
        );
    }
}

/// Feeds the stream while `reader` runs; returns what was written and how the reader ended.
fn drive(
    pty: &StreamPty,
    reader: &Command,
    stem: &Path,
    bytes: u64,
) -> anyhow::Result<(crate::stream::Written, child::Finished, Instant)> {
    let stop = AtomicBool::new(false);
    let proc = child::spawn(reader, stem).context("starting the reader")?;
    let (written, finished) = std::thread::scope(|s| {
        let feeder = s.spawn(|| pty.feed(bytes, &stop));
        let finished = child::finish(proc);
        stop.store(true, Ordering::Relaxed);
        (feeder.join().ok().flatten(), finished)
    });
    let finished = finished?;
    let ended = Instant::now();
    match written {
        Some(w) if finished.code == 0 => Ok((w, finished, ended)),
        _ => bail!(
            "the reader ended with code {} before the stream was written",
            finished.code
        ),
    }
}

fn hilt_trial(env: &Env, mode: Mode, bytes: u64, trial: usize) -> anyhow::Result<Sample> {
    let dir = env.scratch(&format!("throughput-hilt-{}-{trial}", mode.name()))?;
    let pty = StreamPty::open()?;
    let bench = dir.join("bench.yaml");
    let suite = dir.join("suite.yaml");
    std::fs::write(&bench, bench_yaml(&pty.path.display().to_string()))?;
    let rule = match mode {
        Mode::Contains => format!("contains: \"{END_TEXT}\""),
        Mode::Regex => format!("regex: \"{}\"", END_REGEX.replace('\\', "\\\\")),
    };
    std::fs::write(
        &suite,
        format!(
            "version: 1\nsuite: {{name: throughput}}\ntests:\n  - name: find the end marker\n    steps:\n      - expect_uart: {{node: dut, transport: console, {rule}, within_ms: 300000}}\n"
        ),
    )?;
    let mut cmd = env.hilt();
    run_args(&mut cmd, &bench, &suite, &dir.join("results"))
        .env("HILT_LOCK_DIR", dir.join("locks"));
    let (w, f, ended) = drive(&pty, &cmd, &dir.join("hilt"), bytes)?;
    let run = run_dir(&dir.join("results"))?;
    let matched_at = match_time(&run.join("events.jsonl"))?;
    let results = read_json(&run.join("results.json"))?;
    if results["status"] != "passed" {
        bail!("hilt run did not pass: {}", results["status"]);
    }
    let secs = matched_at
        .duration_since(w.opened_at)
        .unwrap_or_default()
        .as_secs_f64();
    let s = Sample {
        mbps: w.bytes as f64 / 1e6 / secs,
        rss_mb: f.rss_mb(),
        open_to_exit_s: (ended - w.opened).as_secs_f64(),
    };
    // The transport log is as large as the stream: do not let trials pile up.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(s)
}

fn pexpect_trial(env: &Env, mode: Mode, bytes: u64, trial: usize) -> anyhow::Result<Sample> {
    let dir = env.scratch(&format!("throughput-pexpect-{}-{trial}", mode.name()))?;
    let script = dir.join("pexpect_reader.py");
    std::fs::write(&script, PEXPECT_READER)?;
    let pty = StreamPty::open()?;
    let python = env.python.as_ref().context("no python")?;
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(&pty.path);
    match mode {
        Mode::Contains => cmd.args(["contains", END_TEXT, "0"]),
        Mode::Regex => cmd.args(["regex", END_REGEX, &WINDOW.to_string()]),
    };
    let stem = dir.join("pexpect");
    let (w, f, ended) = drive(&pty, &cmd, &stem, bytes)?;
    let out = std::fs::read_to_string(stem.with_extension("out"))?;
    let unix: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("match_unix="))
        .context("pexpect reader printed no match time")?
        .parse()?;
    let opened = w
        .opened_at
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs_f64();
    let secs = unix - opened;
    Ok(Sample {
        mbps: w.bytes as f64 / 1e6 / secs,
        rss_mb: f.rss_mb(),
        open_to_exit_s: (ended - w.opened).as_secs_f64(),
    })
}

/// `hilt-bench raw-read`: a bare read loop on the slave, the cost of the pty itself.
fn raw_trial(env: &Env, bytes: u64, trial: usize) -> anyhow::Result<f64> {
    let dir = env.scratch(&format!("throughput-raw-{trial}"))?;
    let pty = StreamPty::open()?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("raw-read").arg(&pty.path).arg(END_TEXT);
    let (w, _, ended) = drive(&pty, &cmd, &dir.join("raw"), bytes)?;
    Ok(w.bytes as f64 / 1e6 / (ended - w.opened).as_secs_f64())
}

/// Reads `port` until `needle` arrives (the body of `hilt-bench raw-read`).
pub fn raw_read(port: &Path, needle: &str) -> anyhow::Result<()> {
    use std::io::Read;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .open(port)
        .with_context(|| format!("opening {}", port.display()))?;
    let needle = needle.as_bytes();
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            bail!("end of file before the marker");
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.windows(needle.len()).any(|w| w == needle) {
            return Ok(());
        }
        let keep = needle.len().min(tail.len());
        tail.drain(..tail.len() - keep);
    }
}

pub fn bench_yaml(port: &str) -> String {
    format!(
        "version: 1\nbench: {{name: stream bench}}\nnodes:\n  dut:\n    kind: simulator\n    transports:\n      console: {{backend: uart, port: \"{port}\", baud: 115200}}\n"
    )
}

/// Wall-clock time of the first step that matched UART text.
fn match_time(events: &Path) -> anyhow::Result<SystemTime> {
    let text = std::fs::read_to_string(events)?;
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line)?;
        if e["event_type"] == "step.finished" && e["data"]["matched"].is_string() {
            let ts: jiff::Timestamp = e["timestamp"]
                .as_str()
                .context("event without timestamp")?
                .parse()?;
            return Ok(
                SystemTime::UNIX_EPOCH + Duration::from_nanos(ts.as_nanosecond().max(0) as u64)
            );
        }
    }
    bail!("no matching expect_uart step in {}", events.display())
}
