//! `runs-status`: `hilt runs status DIR` on a run directory whose ledgers hold 100,000
//! lines each (events.jsonl, command_ledger.jsonl, transfer_ledger.jsonl), as a finished
//! run and as a stalled one (status.json says running, its process is gone). The run
//! directory is a real `hilt run` of a mock bench with the ledgers then grown to size.
//! Status reads only status.json, results.json and the last 64 KiB of each ledger, so its
//! cost should not grow with the ledgers.

use std::io::Write;
use std::path::Path;

use anyhow::bail;

use crate::child;
use crate::env::{Env, read_json, run_args, run_dir};
use crate::stats::median;
use crate::table::Table;

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Lines in each ledger [default: 100000, quick: 10000].
    #[arg(long)]
    lines: Option<usize>,
    /// Runs per variant [default: 20, quick: 3].
    #[arg(long)]
    runs: Option<usize>,
}

const BENCH: &str = "version: 1\nbench: {name: status bench}\nnodes:\n  dut:\n    kind: mcu\n    gpio: {led: {backend: mock_gpio, channel: 1, direction: input}}\n";
const SUITE: &str =
    "version: 1\nsuite: {name: status}\ntests:\n  - name: t\n    steps:\n      - sleep_ms: 1\n";

/// Appends `n` realistic lines to a ledger (about 300 bytes each).
fn grow(path: &Path, n: usize, kind: &str) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?,
    );
    for i in 0..n {
        let line = match kind {
            "events" => format!(
                "{{\"seq\":{},\"timestamp\":\"2026-12-03T10:00:00.000000Z\",\"type\":\"step.finished\",\"message\":null,\"data\":{{\"test_name\":\"t\",\"step_index\":{i},\"step_type\":\"ssh_exec\",\"host\":\"gateway\",\"exit_code\":0}}}}",
                1_000_000 + i
            ),
            "commands" => format!(
                "{{\"type\":\"ssh_exec\",\"host\":\"gateway\",\"chain\":[\"bastion (t@10.0.0.1:22)\",\"gateway (t@10.0.0.12:22)\"],\"argv\":[\"true\"],\"test_name\":\"t\",\"step_index\":{i},\"attempt\":1,\"exit_code\":0,\"duration_s\":0.004}}"
            ),
            _ => format!(
                "{{\"direction\":\"upload\",\"host\":\"gateway\",\"local\":\"f{i}\",\"remote\":\"/tmp/f{i}\",\"size_bytes\":1024,\"local_sha256\":\"{:064x}\",\"remote_sha256\":\"{:064x}\",\"verified\":true,\"attempt\":1}}",
                i, i
            ),
        };
        writeln!(f, "{line}")?;
    }
    f.flush()?;
    Ok(())
}

fn status_once(env: &Env, dir: &Path, stem: &Path, want: i32) -> anyhow::Result<f64> {
    let mut cmd = env.hilt();
    cmd.arg("runs").arg("status").arg(dir);
    let f = child::run(&cmd, stem)?;
    if f.code != want {
        bail!(
            "hilt runs status exited {} (expected {want}); see {}",
            f.code,
            stem.with_extension("out").display()
        );
    }
    Ok(f.wall.as_secs_f64())
}

pub fn run(env: &Env, a: &Args, quick: bool) -> anyhow::Result<Table> {
    let n = a.lines.unwrap_or(if quick { 10_000 } else { 100_000 });
    let runs = a.runs.unwrap_or(if quick { 3 } else { 20 }).max(1);
    let scratch = env.scratch("runs-status")?;
    let (bench, suite) = (scratch.join("bench.yaml"), scratch.join("suite.yaml"));
    std::fs::write(&bench, BENCH)?;
    std::fs::write(&suite, SUITE)?;
    let mut cmd = env.hilt();
    run_args(&mut cmd, &bench, &suite, &scratch.join("results"))
        .env("HILT_LOCK_DIR", scratch.join("locks"));
    let f = child::run(&cmd, &scratch.join("run"))?;
    if f.code != 0 {
        bail!("the setup run exited {}", f.code);
    }
    let done = run_dir(&scratch.join("results"))?;
    grow(&done.join("events.jsonl"), n, "events")?;
    grow(&done.join("command_ledger.jsonl"), n, "commands")?;
    grow(&done.join("transfer_ledger.jsonl"), n, "transfers")?;
    let bytes: u64 = [
        "events.jsonl",
        "command_ledger.jsonl",
        "transfer_ledger.jsonl",
    ]
    .iter()
    .map(|l| {
        std::fs::metadata(done.join(l))
            .map(|m| m.len())
            .unwrap_or(0)
    })
    .sum();
    // The same directory as a stalled run: status.json running, its process gone.
    let stalled = scratch.join("stalled");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&done)
        .arg(&stalled)
        .status()?;
    if !cp.success() {
        bail!("cp -a failed");
    }
    let mut snap = read_json(&stalled.join("status.json"))?;
    snap["state"] = "running".into();
    snap["exit_code"] = serde_json::Value::Null;
    snap["monitoring"]["pid"] = (u32::MAX - 1).into();
    std::fs::write(stalled.join("status.json"), snap.to_string())?;

    let mut finished = Vec::new();
    let mut stall = Vec::new();
    for r in 0..runs {
        finished.push(status_once(
            env,
            &done,
            &scratch.join(format!("done-{r}")),
            0,
        )?);
        stall.push(status_once(
            env,
            &stalled,
            &scratch.join(format!("stalled-{r}")),
            5,
        )?);
    }
    let (fm, sm) = (median(&finished), median(&stall));
    let mut t = Table::new(
        format!(
            "runs-status: `hilt runs status` with {n} lines in each of 3 ledgers ({:.1} MB), median of {runs}",
            bytes as f64 / 1e6
        ),
        "none (absolute target)",
    );
    t.row(
        "finished run: wall ms",
        format!("{:.1}", fm * 1e3),
        "",
        "",
        "< 200 ms",
        Some(fm < 0.200),
    );
    t.row(
        "stalled run (alerts, paths): wall ms",
        format!("{:.1}", sm * 1e3),
        "",
        "",
        "< 200 ms",
        Some(sm < 0.200),
    );
    t.note(format!(
        "all runs, finished (ms): {}",
        finished
            .iter()
            .map(|x| format!("{:.1}", x * 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    Ok(t)
}
