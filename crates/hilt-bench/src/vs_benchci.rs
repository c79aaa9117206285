//! `vs-benchci`: one bench and suite that BenchCI 2.0.1 and hilt both run unchanged
//! (UART against a simulated DUT in its own process, mock GPIO, mock power, mock
//! measurement), timed end to end as child processes, plus a shape diff of the two
//! results.json files and of the run-directory file sets.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::child;
use crate::env::{Env, read_json, run_args, run_dir};
use crate::stats::median;
use crate::table::Table;

const BENCH: &str = include_str!("../../../scripts/bench/compat/bench.yaml");
const SUITE: &str = include_str!("../../../scripts/bench/compat/suite.yaml");

pub struct Args {
    pub runs: usize,
}

struct Sample {
    wall: f64,
    rss_mb: f64,
}

pub fn run(env: &Env, a: &Args) -> anyhow::Result<Table> {
    let Some(benchci) = env.benchci.clone() else {
        bail!("benchci is not installed; help: run scripts/bench/venv.sh");
    };
    let dir = env.scratch("vs-benchci")?;
    let link = dir.join("dut.tty");
    let mut sim = env.sim_dut(&link);
    sim.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let sim = sim.spawn().context("starting `hilt sim dut`")?;
    let result = measure(env, &benchci, &dir, &link, a);
    child::terminate(sim, Duration::from_secs(2));
    result
}

fn measure(env: &Env, benchci: &Path, dir: &Path, link: &Path, a: &Args) -> anyhow::Result<Table> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !link.exists() {
        if Instant::now() > deadline {
            bail!("the simulated DUT did not create {}", link.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let it boot (30 ms) before the first run, as a real bench would be.
    std::thread::sleep(Duration::from_millis(100));
    let bench = dir.join("bench.yaml");
    let suite = dir.join("suite.yaml");
    std::fs::write(
        &bench,
        BENCH.replace("{{PORT}}", &link.display().to_string()),
    )?;
    std::fs::write(&suite, SUITE)?;

    // Diagnostic: hilt with fsync turned into a no-op, when eatmydata is installed.
    let eatmydata = which("eatmydata");
    let tool = |name: &str, run: usize| -> anyhow::Result<(Sample, PathBuf)> {
        let d = dir.join(format!("{name}-{run}"));
        std::fs::create_dir_all(&d)?;
        let mut cmd = if name == "hilt" {
            let mut c = env.hilt();
            c.env("HILT_LOCK_DIR", d.join("locks"));
            c
        } else if name == "hilt-nosync" {
            let mut c = Command::new(eatmydata.as_ref().expect("checked"));
            c.arg(&env.hilt).env("HILT_LOCK_DIR", d.join("locks"));
            c
        } else {
            let mut c = Command::new(benchci);
            c.env("BENCHCI_LOCK_DIR", d.join("locks"));
            c
        };
        run_args(&mut cmd, &bench, &suite, &d.join("results")).env("TMPDIR", &d);
        let f = child::run(&cmd, &d.join(name))?;
        if f.code != 0 {
            bail!(
                "{name} run failed with code {}; see {}",
                f.code,
                d.display()
            );
        }
        Ok((
            Sample {
                wall: f.wall.as_secs_f64(),
                rss_mb: f.rss_mb(),
            },
            run_dir(&d.join("results"))?,
        ))
    };

    // Warm-up (page cache, Python bytecode cache), not counted.
    tool("benchci", 999)?;
    tool("hilt", 999)?;
    let mut b = Vec::new();
    let mut h = Vec::new();
    let mut nosync = Vec::new();
    let mut breakdown = Vec::new();
    let mut last = (PathBuf::new(), PathBuf::new());
    for r in 0..a.runs {
        // Alternate who goes first.
        let order = if r % 2 == 0 {
            ["benchci", "hilt"]
        } else {
            ["hilt", "benchci"]
        };
        for name in order {
            let (s, d) = tool(name, r)?;
            if name == "hilt" {
                breakdown.push(phases(&d.join("events.jsonl"), s.wall)?);
                h.push(s);
                last.1 = d;
            } else {
                b.push(s);
                last.0 = d;
            }
        }
        if eatmydata.is_some() {
            nosync.push(tool("hilt-nosync", r)?.0);
        }
    }
    let wall = |v: &[Sample]| median(&v.iter().map(|s| s.wall).collect::<Vec<_>>());
    let rss = |v: &[Sample]| median(&v.iter().map(|s| s.rss_mb).collect::<Vec<_>>());
    let (hw, bw, hr, br) = (wall(&h), wall(&b), rss(&h), rss(&b));
    let mut t = Table::new(
        format!(
            "vs-benchci: same bench + suite (5 tests: UART, GPIO, power, measurement), end to end (median of {})",
            a.runs
        ),
        "BenchCI 2.0.1",
    );
    t.row(
        "wall s",
        format!("{hw:.3}"),
        format!("{bw:.3}"),
        format!("{:.1}× faster", bw / hw),
        "≥ 15× faster",
        Some(bw / hw >= 15.0),
    );
    t.row(
        "peak RSS MB",
        format!("{hr:.1}"),
        format!("{br:.1}"),
        format!("{:.2} of BenchCI", hr / br),
        "≤ 0.25",
        Some(hr / br <= 0.25),
    );
    if !nosync.is_empty() {
        let nw = wall(&nosync);
        t.row(
            "diagnostic: hilt wall s with fsync disabled (eatmydata)",
            format!("{nw:.3}"),
            format!("{bw:.3}"),
            format!("{:.1}× faster", bw / nw),
            "",
            None,
        );
    }
    let col = |i: usize| 1000.0 * median(&breakdown.iter().map(|p| p[i]).collect::<Vec<_>>());
    t.note(format!(
        "hilt wall breakdown, median ms: before run.started (exec, load, validate) + after run.finished (manifests, exit) {:.1}; setup to first test (locks, ports, first fsyncs) {:.1}; tests {:.1}; closing ports {:.1}; documents to run.finished {:.1}",
        col(0),
        col(1),
        col(2),
        col(3),
        col(4)
    ));
    let diffs = crate::shape::diff(
        &read_json(&last.0.join("results.json"))?,
        &read_json(&last.1.join("results.json"))?,
    );
    let unexpected = diffs.iter().filter(|d| !d.by_design()).count();
    t.row(
        "results.json shape differences",
        format!("{unexpected} (+{} by design)", diffs.len() - unexpected),
        "",
        "",
        "0",
        Some(unexpected == 0),
    );
    for d in diffs {
        let tag = if d.by_design() { " (by design)" } else { "" };
        t.note(format!("results.json: {}{tag}", d.text));
    }
    let (fb, fh) = (files(&last.0)?, files(&last.1)?);
    let missing: Vec<_> = fb.difference(&fh).cloned().collect();
    let extra: Vec<_> = fh.difference(&fb).cloned().collect();
    t.row(
        "BenchCI run-dir files missing in hilt",
        missing.len().to_string(),
        "",
        "",
        "0",
        Some(missing.is_empty()),
    );
    if !missing.is_empty() {
        t.note(format!(
            "missing in hilt's run directory: {}",
            missing.join(", ")
        ));
    }
    if !extra.is_empty() {
        t.note(format!(
            "hilt-only files (extensions): {}",
            extra.join(", ")
        ));
    }
    t.note("Both run as child processes against `hilt sim dut` in a separate process; each tool has its own lock directory; runs alternate which tool goes first.");
    Ok(t)
}

/// Where hilt's wall time went, from its events (seconds): outside the events, setup,
/// tests, closing ports, documents.
fn phases(events: &Path, wall: f64) -> anyhow::Result<[f64; 5]> {
    let text = std::fs::read_to_string(events)?;
    let mut first = None;
    let mut last = None;
    let mut first_test = None;
    let mut last_test = None;
    let mut stopped = None;
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line)?;
        let ts: jiff::Timestamp = e["timestamp"].as_str().context("no timestamp")?.parse()?;
        let secs = ts.as_nanosecond() as f64 / 1e9;
        first.get_or_insert(secs);
        last = Some(secs);
        match e["event_type"].as_str().unwrap_or("") {
            "test.started" => {
                first_test.get_or_insert(secs);
            }
            "test.finished" => last_test = Some(secs),
            t if t.ends_with(".stopped") => stopped = Some(secs),
            _ => {}
        }
    }
    let (Some(a), Some(z), Some(ft), Some(lt), Some(st)) =
        (first, last, first_test, last_test, stopped)
    else {
        bail!("incomplete events in {}", events.display());
    };
    Ok([wall - (z - a), ft - a, lt - ft, st - lt, z - st])
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Relative paths of the files in a run directory.
fn files(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeSet<String>) -> std::io::Result<()> {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            if p.is_dir() {
                walk(root, &p, out)?;
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.insert(rel.display().to_string());
            }
        }
        Ok(())
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out)?;
    Ok(out)
}
