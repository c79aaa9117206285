//! `hilt-bench`: benchmarks of hilt that print ratios against a baseline measured in the
//! same run (pexpect, raw pty I/O, BenchCI 2.0.1). Timing is reported, never asserted.
//!
//! Build hilt first (`cargo build --release -p hilt-cli`) and the baseline venv
//! (`scripts/bench/venv.sh`); `scripts/bench/run-all.sh` does both and runs `all`.

mod agent_bench;
mod agent_http;
mod agent_plain;
mod agent_proc;
mod agent_rig;
mod child;
mod cloud_dispatch;
mod demo;
mod env;
mod modbus_scpi;
mod qemu;
mod roundtrip;
mod runner_overhead;
mod runs_status;
mod server_agents;
mod server_dispatch;
mod server_rig;
mod server_throughput;
mod shape;
mod sim_agents;
mod slcan_throughput;
mod slow_clients;
mod ssh_speed;
mod stats;
mod stream;
mod suite_load;
mod table;
mod uart_throughput;
mod vs_benchci;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use env::Env;
use table::Table;

#[derive(Parser)]
#[command(
    name = "hilt-bench",
    version,
    about = "Benchmarks of hilt against baselines measured in the same run"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Short smoke variant that finishes in seconds (small sizes, one run each).
    #[arg(long, global = true)]
    quick: bool,
    /// The hilt binary under test [default: `hilt` next to this binary].
    #[arg(long, global = true, env = "HILT_BIN")]
    hilt: Option<PathBuf>,
    /// Venv holding pexpect and BenchCI [default: $HOME/.cache/hilt-bench-venv].
    #[arg(long, global = true, env = "HILT_BENCH_VENV")]
    venv: Option<PathBuf>,
    /// Where scratch directories are created [default: the system temp dir].
    #[arg(long, global = true)]
    work_dir: Option<PathBuf>,
    /// Keep the scratch directory (run directories, logs) for inspection.
    #[arg(long, global = true)]
    keep: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// expect_uart over a large pty stream: hilt vs pexpect (MB/s, peak RSS).
    UartThroughput {
        /// Stream size per run in MB [default: 256, quick: 8].
        #[arg(long)]
        mb: Option<u64>,
        /// Runs per reader and matcher [default: 3, quick: 1].
        #[arg(long)]
        trials: Option<usize>,
        /// Also stream this many GB through hilt and report its peak RSS.
        #[arg(long)]
        gb: Option<u64>,
    },
    /// ping → pong round trip against the simulated DUT: hilt's engine vs raw pty I/O.
    Roundtrip {
        /// Exchanges per round [default: 300, quick: 100].
        #[arg(long)]
        iterations: Option<usize>,
        /// Rounds, alternating hilt and raw [default: 20, quick: 2].
        #[arg(long)]
        rounds: Option<usize>,
    },
    /// Steps per second on trivial steps: hilt vs BenchCI.
    RunnerOverhead {
        /// Steps in the suite [default: 20000, quick: 5000].
        #[arg(long)]
        steps: Option<usize>,
        /// Runs per tool [default: 3, quick: 1].
        #[arg(long)]
        runs: Option<usize>,
    },
    /// Wall time of `hilt demo` vs `benchci demo`.
    Demo {
        /// Runs [default: 5, quick: 1].
        #[arg(long)]
        runs: Option<usize>,
    },
    /// Same bench + suite end to end: hilt vs BenchCI (time, memory, results shape).
    VsBenchci {
        /// Runs per tool [default: 7, quick: 1].
        #[arg(long)]
        runs: Option<usize>,
    },
    /// (internal) Runs a command, then writes its exit code, wall ns and peak RSS KiB.
    #[command(hide = true)]
    MeasureChild {
        report: PathBuf,
        program: std::ffi::OsString,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// (internal) Bare read loop used as the pty ceiling by uart-throughput.
    #[command(hide = true)]
    RawRead { port: PathBuf, needle: String },
    /// `hilt agent serve` vs BenchCI's agent: submit→done, memory, start, /health, queue, zip.
    Agent(agent_bench::Args),
    /// Agent `/health` p50/p99 while N slow connections (headers never finished) are open,
    /// against the same agent with none.
    AgentSlowClients {
        /// Slow connections held open [default: 2000, quick: 200].
        #[arg(long)]
        slow: Option<usize>,
        /// /health probes per phase [default: 2000, quick: 200].
        #[arg(long)]
        probes: Option<usize>,
    },
    /// The agent as a plain client sees it: PING/PONG on a Python pty device, a new
    /// connection per HTTP call, status polled every 5 ms; hilt vs BenchCI's agent.
    AgentPlain(agent_plain::Args),
    /// `hilt server`: submit → a long-polling cloud agent has the run, with N agents
    /// (SQLite, or PostgreSQL with one or more replicas).
    ServerDispatch(server_dispatch::Args),
    /// `hilt server` with 10,000 agents heartbeating and long-polling: CPU, RSS,
    /// heartbeats/s, and /health and submit → assigned probes during the load.
    ServerAgents(server_agents::Args),
    /// `hilt server`: runs/s scheduled end to end and events/s ingested.
    ServerThroughput(server_throughput::Args),
    /// `hilt server` with a real cloud agent: submit → started and submit → done, `hilt
    /// agent cloud` (long-poll) vs BenchCI's cloud agent (2 s poll).
    CloudDispatch(cloud_dispatch::Args),
    /// `hilt validate` of a generated 20,000-step suite vs `benchci validate`: wall, peak RSS.
    SuiteLoad(suite_load::Args),
    /// `hilt runs status` on a run directory with 100,000 lines in each ledger.
    RunsStatus(runs_status::Args),
    /// Modbus TCP reads (hilt's driver vs pymodbus vs a bare socket) and SCPI query round
    /// trips (hilt's link vs a bare socket) against the simulated devices.
    ModbusScpi {
        /// Transactions per client [default: 20000, quick: 1000].
        #[arg(long)]
        transactions: Option<usize>,
    },
    /// slcan frames received through hilt's driver over a pty vs the pty's raw bytes/s.
    SlcanThroughput {
        /// Frames per trial [default: 200000, quick: 20000].
        #[arg(long)]
        frames: Option<usize>,
        /// Trials [default: 5, quick: 1].
        #[arg(long)]
        trials: Option<usize>,
    },
    /// The QEMU board: boot/reset/flash → banner, and ping → pong vs the pty sim device.
    Qemu {
        /// Samples per lifecycle measurement [default: 20, quick: 3].
        #[arg(long)]
        runs: Option<usize>,
        /// ping → pong exchanges per round [default: 300, quick: 50].
        #[arg(long)]
        iterations: Option<usize>,
    },
    /// SSH through a 2-hop jump chain on loopback sshd: set-up and per-command cost of
    /// hilt's reused connection vs a fresh `ssh -J` per command, and hilt's verified upload
    /// vs `scp -J`.
    SshSpeed {
        /// Sequential `true` commands per side [default: 100, quick: 20].
        #[arg(long)]
        commands: Option<usize>,
        /// Upload size in MB [default: 200, quick: 20].
        #[arg(long)]
        mb: Option<u64>,
        /// Uploads per side [default: 5, quick: 1].
        #[arg(long)]
        uploads: Option<usize>,
    },
    /// Everything above (the 1 GB RSS run too, unless --quick).
    All,
}

/// 1-, 5- and 15-minute load averages: other work on the machine skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn pick<T>(v: Option<T>, quick: bool, full: T, short: T) -> T {
    v.unwrap_or(if quick { short } else { full })
}

fn main() {
    let cli = Cli::parse();
    if let Cmd::MeasureChild {
        report,
        program,
        args,
    } = &cli.cmd
    {
        match child::measure_child(report, program, args) {
            Ok(code) => std::process::exit(code),
            Err(e) => {
                eprintln!("error: cannot run {}: {e}", program.to_string_lossy());
                std::process::exit(127);
            }
        }
    }
    if let Cmd::RawRead { port, needle } = &cli.cmd {
        if let Err(e) = uart_throughput::raw_read(port, needle) {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let env = match Env::discover(
        cli.hilt.clone(),
        cli.venv.clone(),
        cli.work_dir.clone(),
        cli.keep,
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    let q = cli.quick;
    let jobs: Vec<Cmd> = match cli.cmd {
        Cmd::All => vec![
            Cmd::UartThroughput {
                mb: None,
                trials: None,
                gb: (!q).then_some(1),
            },
            Cmd::Roundtrip {
                iterations: None,
                rounds: None,
            },
            Cmd::RunnerOverhead {
                steps: None,
                runs: None,
            },
            Cmd::Demo { runs: None },
            Cmd::VsBenchci { runs: None },
        ],
        one => vec![one],
    };
    println!(
        "# hilt-bench{} — hilt: {}\n\n{} CPUs, load average at start: {}",
        if q { " --quick" } else { "" },
        env.hilt.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    if q {
        println!(
            "\nquick mode: a smoke test of the machinery; the figures are not representative."
        );
    }
    let mut failed = 0;
    let mut summary = Vec::new();
    for job in jobs {
        let started = std::time::Instant::now();
        let (name, result) = run_one(&env, job, q);
        match result {
            Ok(mut t) => {
                t.note(format!("load average at the end: {}", loadavg()));
                println!("{}", t.render());
                let (judged, met) = t.verdict();
                summary.push(format!(
                    "{name}: {met}/{judged} targets met ({:.1} s)",
                    started.elapsed().as_secs_f64()
                ));
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {name}: {e:#}");
                summary.push(format!("{name}: FAILED TO RUN: {e:#}"));
            }
        }
    }
    println!("\n## summary\n");
    for s in summary {
        println!("- {s}");
    }
    // Removes the scratch directory (process::exit skips destructors).
    drop(env);
    // Missed targets are reported, not failed on; only a benchmark that could not run fails.
    std::process::exit(if failed > 0 { 1 } else { 0 });
}

fn run_one(env: &Env, job: Cmd, q: bool) -> (&'static str, anyhow::Result<Table>) {
    match job {
        Cmd::ModbusScpi { transactions } => (
            "modbus-scpi",
            modbus_scpi::run(
                env,
                &modbus_scpi::Args {
                    transactions: pick(transactions, q, 20_000, 1000),
                },
            ),
        ),
        Cmd::SlcanThroughput { frames, trials } => (
            "slcan-throughput",
            slcan_throughput::run(
                env,
                &slcan_throughput::Args {
                    frames: pick(frames, q, 200_000, 20_000),
                    trials: pick(trials, q, 5, 1),
                },
            ),
        ),
        Cmd::UartThroughput { mb, trials, gb } => (
            "uart-throughput",
            uart_throughput::run(
                env,
                &uart_throughput::Args {
                    mb: pick(mb, q, 256, 8),
                    trials: pick(trials, q, 3, 1),
                    gb,
                },
            ),
        ),
        Cmd::Roundtrip { iterations, rounds } => (
            "roundtrip",
            roundtrip::run(
                env,
                &roundtrip::Args {
                    iterations: pick(iterations, q, 300, 100),
                    rounds: pick(rounds, q, 20, 2),
                },
            ),
        ),
        Cmd::RunnerOverhead { steps, runs } => (
            "runner-overhead",
            runner_overhead::run(
                env,
                &runner_overhead::Args {
                    steps: pick(steps, q, 20_000, 5000),
                    runs: pick(runs, q, 3, 1),
                },
            ),
        ),
        Cmd::Demo { runs } => (
            "demo",
            demo::run(
                env,
                &demo::Args {
                    runs: pick(runs, q, 5, 1),
                },
            ),
        ),
        Cmd::VsBenchci { runs } => (
            "vs-benchci",
            vs_benchci::run(
                env,
                &vs_benchci::Args {
                    runs: pick(runs, q, 7, 1),
                },
            ),
        ),
        Cmd::Agent(a) => ("agent", agent_bench::run(env, &a, q)),
        Cmd::AgentSlowClients { slow, probes } => (
            "agent-slow-clients",
            slow_clients::run(
                env,
                &slow_clients::Args {
                    slow: pick(slow, q, 2000, 200),
                    probes: pick(probes, q, 2000, 200),
                },
            ),
        ),
        Cmd::AgentPlain(a) => ("agent-plain", agent_plain::run(env, &a, q)),
        Cmd::SuiteLoad(a) => ("suite-load", suite_load::run(env, &a, q)),
        Cmd::RunsStatus(a) => ("runs-status", runs_status::run(env, &a, q)),
        Cmd::Qemu { runs, iterations } => (
            "qemu",
            qemu::run(
                env,
                &qemu::Args {
                    runs: pick(runs, q, 20, 3),
                    iterations: pick(iterations, q, 300, 50),
                },
            ),
        ),
        Cmd::ServerDispatch(a) => ("server-dispatch", server_dispatch::run(env, &a, q)),
        Cmd::ServerAgents(a) => ("server-agents", server_agents::run(env, &a, q)),
        Cmd::ServerThroughput(a) => ("server-throughput", server_throughput::run(env, &a, q)),
        Cmd::CloudDispatch(a) => ("cloud-dispatch", cloud_dispatch::run(env, &a, q)),
        Cmd::SshSpeed {
            commands,
            mb,
            uploads,
        } => (
            "ssh-speed",
            ssh_speed::run(
                env,
                &ssh_speed::Args {
                    commands: pick(commands, q, 100, 20),
                    mb: pick(mb, q, 200, 20),
                    uploads: pick(uploads, q, 5, 1),
                },
            ),
        ),
        Cmd::All | Cmd::RawRead { .. } | Cmd::MeasureChild { .. } => {
            ("all", Err(anyhow::anyhow!("not a benchmark")))
        }
    }
}
