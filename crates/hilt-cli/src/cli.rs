//! The command-line surface (clap derive). Every command has `--help`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "hilt",
    version,
    about = "Hardware-in-the-loop test runner: run YAML test suites against devices on a bench."
)]
#[command(
    after_help = "Exit codes: 0 passed, 1 tests failed, 2 usage error, 3 configuration error,\n4 bench infrastructure error, 5 other run error, 70 internal error, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a suite on a bench and write a run directory.
    Run(RunArgs),
    /// Check bench and suite files without touching hardware.
    Validate(ValidateArgs),
    /// Create a demo bench and suite, start a simulated device, and run the suite.
    Demo(DemoArgs),
    /// Write a starter bench.yaml and suite.yaml for a common board (--preset).
    Init(crate::cmd::init::InitArgs),
    /// What a bench needs from this machine: serial ports, tools, a bench's resources.
    Doctor(crate::cmd::doctor::DoctorArgs),
    /// Read a measurement instrument of a bench (under the run's resource locks).
    Measure(crate::cmd::measure::MeasureArgs),
    /// Simulated hardware for demos and tests.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Inspect run directories.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Bench health without running a suite.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The agent next to the hardware: serve the HTTP API, or query one.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Benches registered on an agent.
    #[command(subcommand)]
    Benches(BenchesCommand),
    /// The central server: workspaces, tokens, cloud agents, runs by bench id or tags.
    Server(crate::server_cli::ServerArgs),
    /// Workspaces of a server.
    #[command(subcommand)]
    Workspaces(crate::server_cli::WorkspacesCommand),
    /// Tokens of a server (agent and user/CI tokens).
    #[command(subcommand)]
    Tokens(crate::server_cli::TokensCommand),
    /// Cloud agents of a server.
    #[command(subcommand)]
    Agents(crate::server_cli::AgentsCommand),
    /// Print the JSON Schema of a file format (for editors).
    Schema {
        #[arg(value_enum)]
        kind: SchemaKind,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
#[command(group(ArgGroup::new("bench_source").required(true).args(["bench", "bench_id"])))]
pub struct RunArgs {
    /// The bench file (what is wired to the device); uploaded to the agent with --agent.
    #[arg(long, short = 'b')]
    pub bench: Option<PathBuf>,
    /// A bench registered on the agent (needs --agent).
    #[arg(long, value_name = "ID", requires = "agent")]
    pub bench_id: Option<String>,
    /// Run on this agent (http://host:port or https://host:port) instead of locally: live progress, results
    /// downloaded into --results-dir (default benchci-results).
    #[arg(long, value_name = "URL")]
    pub agent: Option<String>,
    /// Bearer token for the agent (default: HILT_AGENT_TOKEN, then BENCHCI_AGENT_TOKEN).
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// The suite file (the tests).
    #[arg(long, short = 's')]
    pub suite: PathBuf,
    /// Firmware to flash (.elf, .hex or .bin); overrides the bench's flash.artifact.
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// Skip `flash` steps.
    #[arg(long)]
    pub skip_flash: bool,
    /// Print every step as it runs.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Root directory for results; a timestamped run directory is created inside.
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Also write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Also write a CTRF JSON report here.
    #[arg(long)]
    pub ctrf: Option<PathBuf>,
    /// Print results.json to stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Treat warnings (unknown keys, duplicate keys) as errors.
    #[arg(long)]
    pub strict: bool,
    /// Do not write artifacts.zip (the run directory as one archive) at the end.
    #[arg(long)]
    pub no_zip: bool,
}

#[derive(Args)]
pub struct ValidateArgs {
    #[arg(long, short = 'b')]
    pub bench: PathBuf,
    /// Also check this suite against the bench.
    #[arg(long, short = 's')]
    pub suite: Option<PathBuf>,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// Print diagnostics as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also check what a run needs around the bench (hilt extension): `connectivity`
    /// (each host's chain, hop by hop, and the commands the suite runs there), `staging`
    /// (the suite's uploads), `publish` (publish targets), or `all`. Writes a JSON report
    /// with one entry per check; exits 4 when a required check fails.
    #[arg(long, value_enum)]
    pub scope: Option<crate::cmd::validate_scopes::ScopeArg>,
    /// Check only this host (repeatable; default the hosts the suite uses, or all).
    #[arg(long, value_name = "NAME", requires = "scope")]
    pub host: Vec<String>,
    /// Where the JSON report goes (default `<artifacts.root_dir>/validate-report.json`,
    /// the bench's results directory).
    #[arg(long, value_name = "FILE", requires = "scope")]
    pub report: Option<PathBuf>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Directory for the demo bench, suite, simulated device and results.
    #[arg(long, default_value = "hilt-demo")]
    pub dir: PathBuf,
    /// Add a test that fails on purpose, to show how a failure is explained.
    #[arg(long)]
    pub fail: bool,
    /// Run real firmware on an emulated Cortex-M board (QEMU lm3s6965evb) instead of the
    /// simulated device: flash, boot, commands, reset, a second firmware version and a
    /// firmware fault. Needs qemu-system-arm and gcc-arm-none-eabi.
    #[arg(long, conflicts_with = "fail")]
    pub qemu: bool,
}

#[derive(Subcommand)]
pub enum SimCommand {
    /// Run a simulated device on a pseudo-terminal until interrupted.
    Dut(SimDutArgs),
    /// Run a simulated HTTP relay board (for `http_relay` power resources) until interrupted.
    HttpRelay(SimHttpRelayArgs),
    /// Run simulated Modbus slaves (TCP or RTU on a pty) from a register map until
    /// interrupted. Faults on demand: one command per line on stdin (`fault
    /// exception:2`, `fault silence 3`, `fault garble`, `latency 50`, `get 1 hr 10`),
    /// answered on stdout.
    #[command(group(ArgGroup::new("bus").required(true).args(["tcp", "rtu"])))]
    Modbus(SimModbusArgs),
    /// Run a simulated SCPI instrument (a three-channel supply and voltmeter) on a raw TCP
    /// socket until interrupted. Faults on demand, one command per line on stdin (`fault
    /// garbage`, `fault silence`, `latency 50`, `load 10`, `get`), answered on stdout.
    Scpi(SimScpiArgs),
    /// Run a simulated I2C bus and SPI bus (for `i2c`/`spi` transports and
    /// `i2c_power_monitor` with `sim: host:port`) until interrupted: a TMP102 at 0x48,
    /// 24C02/24C32 EEPROMs at 0x50/0x57, INA226/INA260 at 0x40/0x41, an SPI NOR flash on
    /// chip select 0 and a register sensor on 1. Faults on demand, one command per line on
    /// stdin (`nack 0x48 3`, `remove 0x50`, `stretch 200`, `arbitration 1`, `temp 31.5`,
    /// `supply 5 0.25`, `status`), answered on stdout.
    Bus(SimBusArgs),
    /// Run a simulated slcan USB-CAN adapter on a pseudo-terminal, with a CAN bus behind it
    /// holding one ECU: a frame to 0x7E0 is answered on 0x7E8 (first byte + 0x40), 0x321
    /// is echoed on 0x322, extended 0x18DA00F1 on 0x18DAF100, and a heartbeat goes out on
    /// 0x701. Faults on demand, one command per line on stdin (`fault bus-off`, `fault
    /// error-frames`, `fault drop 3`, `fault garbage`, `fault clear`, `latency 5`,
    /// `heartbeat 0`, `send t1232AABB`, `frames`, `state`), answered on stdout.
    Slcan(SimSlcanArgs),
}

#[derive(Args)]
pub struct SimBusArgs {
    /// Address to listen on (port 0 picks a free port; `host:port` is printed on stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Hold the clock this long on every I2C transfer (clock stretching), in ms.
    #[arg(long, default_value_t = 0)]
    pub stretch_ms: u64,
}

#[derive(Args)]
pub struct SimSlcanArgs {
    /// Create this symlink to the adapter's pty (the pty path is printed on stdout).
    #[arg(long, value_name = "PTY-LINK")]
    pub pty: Option<PathBuf>,
    /// One-way bus latency in ms (an answer comes after twice this).
    #[arg(long, default_value_t = 1)]
    pub latency_ms: u64,
    /// Heartbeat period of the ECU in ms (0: no heartbeat).
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
}

#[derive(Args)]
pub struct SimScpiArgs {
    /// Address to listen on (port 0 picks a free port; `tcp://ADDR` is printed on stdout).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:5025",
        conflicts_with = "serial"
    )]
    pub tcp: String,
    /// Serve on a new pseudo-terminal instead, linked from this path (`serial://PATH` is
    /// printed on stdout).
    #[arg(long, value_name = "PTY-LINK")]
    pub serial: Option<PathBuf>,
    /// Delay before each answer, in ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

#[derive(Args)]
pub struct SimModbusArgs {
    /// Serve Modbus TCP on this address (port 0 picks a free port; the address is printed
    /// on stdout).
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<String>,
    /// Serve Modbus RTU on a new pseudo-terminal, linked from this path (the pty path is
    /// printed on stdout).
    #[arg(long, value_name = "PTY-LINK")]
    pub rtu: Option<PathBuf>,
    /// The register map (YAML or JSON): `slaves: {1: {holding_registers: {0: [1, 2]}, …}}`.
    #[arg(long, value_name = "FILE")]
    pub map: PathBuf,
    /// Delay before each answer, in ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

#[derive(Args)]
pub struct SimHttpRelayArgs {
    /// Address to listen on (port 0 picks a free port; the URL is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: String,
    /// Delay before each answer, in ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Refuse relay requests (401) without this header, as `Name: value`.
    #[arg(long)]
    pub require_header: Option<String>,
}

#[derive(Args)]
pub struct SimDutArgs {
    /// Create this symlink to the pty (a stable path for bench files).
    #[arg(long)]
    pub link: Option<PathBuf>,
    /// Listen on this Unix socket for power/GPIO/fault control (`sim_control` in bench files).
    #[arg(long)]
    pub control: Option<PathBuf>,
    /// Delay before each reply, in ms.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra random delay 0..jitter, in ms.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Probability (0..1) that an output line carries a garbage byte.
    #[arg(long, default_value_t = 0.0)]
    pub noise: f64,
    /// Time from power-on/reset to the `ready` banner, in ms.
    #[arg(long, default_value_t = 30)]
    pub boot_ms: u64,
    /// Start unpowered (waiting for `power on` on the control socket).
    #[arg(long)]
    pub powered_off: bool,
    /// Seed for jitter and noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Serial number the device reports when asked `BENCHCI_ID?`.
    #[arg(long, default_value = "SIM-0001")]
    pub serial_number: String,
    /// Plant a bug for fuzzing: a command line longer than N bytes crashes the firmware
    /// (HardFault, then a watchdog reboot).
    #[arg(long, value_name = "N")]
    pub crash_on_line_over: Option<usize>,
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Summarise a run directory: phase, progress, verdict, what to do next.
    ///
    /// Exit code: a finished run's own exit code (0 passed, 1 tests failed, 3 configuration
    /// error, 4 bench infrastructure error, 5 other run error, 130 cancelled); 0 while the
    /// run is still running with a live heartbeat; 5 when it stalled (its process is gone or
    /// its heartbeat is stale); 3 when DIR is not a run directory.
    Status {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Commit a finished run into the git repositories its bench and suite declare under
    /// `publish:` (deterministic branch and message), push and open pull requests as they
    /// ask; state in DIR/publish_ledger.json. Running it again changes nothing already done.
    ///
    /// Exit code: 0 when every target reached what it asks for, 5 otherwise (the ledger
    /// says which state each target is in), 3 when DIR or the targets cannot be read.
    Publish(crate::cmd::publish::PublishArgs),
    /// Continue an interrupted run in its directory from the first incomplete step:
    /// finished tests keep their results, finished steps and verified stages are not run
    /// again, ledgers are appended to. Exit code: the run's, as `hilt run`; 0 when there is
    /// nothing to resume; 3 when DIR is not a run directory or its inputs changed; 5 while
    /// the run's own process is still alive.
    Resume {
        dir: PathBuf,
        /// Print every step as it runs.
        #[arg(long, short)]
        verbose: bool,
        /// Print results.json at the end.
        #[arg(long)]
        json: bool,
    },
    /// Write recovery_summary.md, repair damaged files (originals kept beside them),
    /// backfill an older layout and refresh status.json — executing nothing.
    Recover {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Submit a run to a server by bench id or tags (HILT_SERVER, HILT_TOKEN).
    Submit(crate::server_cli::RunsSubmitArgs),
    /// Cancel a run of a server: a queued run at once, a running one through its agent.
    Cancel {
        id: String,
        #[command(flatten)]
        conn: crate::server_cli::ServerConn,
    },
    /// Download the results archive of a finished run of a server.
    Download {
        id: String,
        /// Where to write the zip (default hilt_<run_id>_artifacts.zip).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: crate::server_cli::ServerConn,
    },
    /// One run of a server.
    Show {
        id: String,
        #[command(flatten)]
        conn: crate::server_cli::ServerConn,
    },
    /// The newest runs of a server's workspace.
    List(crate::server_cli::ServerConn),
    /// The events of a run on a server.
    Events {
        id: String,
        #[command(flatten)]
        conn: crate::server_cli::ServerConn,
    },
}

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Serve the BenchCI-compatible HTTP API (token from HILT_AGENT_TOKEN or BENCHCI_AGENT_TOKEN).
    Serve(AgentServeArgs),
    /// Ask an agent how it is: exit 0 when it answers ok, 4 when unreachable.
    Health(AgentHealthArgs),
    /// Serve benches for a server (hilt server, or a BenchCI cloud backend): outbound HTTP
    /// only; long-polls for assignments and runs them (agent-api §6, plus --config).
    Cloud(AgentCloudArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("benches").required(true).args(["bench", "config"])))]
pub struct AgentCloudArgs {
    /// The server (http://host:port or https://…; default: HILT_SERVER, else BENCHCI_API_URL).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Serve this one bench file (BenchCI's form).
    #[arg(long, short = 'b', conflicts_with = "config")]
    pub bench: Option<PathBuf>,
    /// Serve every bench of this agent.yaml, one worker per bench.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The bench id to report (--bench; default: a slug of the bench name).
    #[arg(long, value_name = "ID", requires = "bench")]
    pub bench_id: Option<String>,
    /// A tag of the bench (repeat for several; with --config added to every bench).
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    #[arg(long, value_name = "P", requires = "bench")]
    pub hardware_profile: Option<String>,
    #[arg(long, value_name = "R", requires = "bench")]
    pub hardware_revision: Option<String>,
    /// The name shown on the server (default: agent.yaml's agent name, else the host name).
    #[arg(long, value_name = "N")]
    pub agent_name: Option<String>,
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// Agent token of the server (default: HILT_AGENT_TOKEN, then BENCHCI_AGENT_TOKEN).
    #[arg(long, value_name = "T", hide_env_values = true)]
    pub token: Option<String>,
    /// Machine id sent on every call (default: HILT_MACHINE_ID, BENCHCI_MACHINE_ID, else one
    /// generated once and kept in <work-dir>/machine_id).
    #[arg(long, value_name = "ID")]
    pub machine_id: Option<String>,
    /// Machine name (default: HILT_MACHINE_NAME, BENCHCI_MACHINE_NAME, else the host name).
    #[arg(long, value_name = "N")]
    pub machine_name: Option<String>,
    /// Accepted for BenchCI compatibility: hilt long-polls, so this is only the pause after
    /// a server that answers an empty poll at once.
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    pub poll_interval_s: f64,
    /// Seconds between heartbeats (they renew the leases of running assignments; keep well
    /// below the server's --lease-s).
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub heartbeat_s: f64,
    /// A bench failing its self-test is tested again after this many seconds, then after
    /// twice as long each time (up to 10 minutes), and serves again once it passes.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub retest_s: f64,
    /// How long end-of-run reports (events, results archive, completion) are retried while
    /// the server is unreachable, seconds.
    #[arg(long, value_name = "S", default_value_t = 900)]
    pub report_timeout_s: u64,
    /// Runs (cloud-runs/<run_id>/), bench health, the machine id (default ~/hilt-agent-results).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct AgentHealthArgs {
    /// The agent (http://host:port or https://host:port).
    pub url: String,
    /// Bearer token (default: HILT_AGENT_TOKEN, then BENCHCI_AGENT_TOKEN).
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Print the agent's /health document as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum BenchesCommand {
    /// One line per bench: id, name, status, health, transports (of an agent), or health,
    /// status, tags, agent and last seen (of a server).
    List(BenchesConn),
    /// One bench in detail (of a server: with its warnings and health history).
    Show {
        /// The bench id.
        id: String,
        #[command(flatten)]
        conn: BenchesConn,
    },
}

/// Which agent (`--agent`) or server (`--server`, HILT_SERVER) to ask.
#[derive(Args)]
pub struct BenchesConn {
    /// The agent (http://host:port or https://host:port).
    #[arg(long, value_name = "URL")]
    pub agent: Option<String>,
    /// A hilt server (http://host:port or https://host:port), when no --agent is given.
    #[arg(long, env = "HILT_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token (agent: default HILT_AGENT_TOKEN, then BENCHCI_AGENT_TOKEN; server:
    /// default HILT_TOKEN).
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Print the JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// Which agent to ask.
pub struct AgentConn {
    pub agent: String,
    pub token: Option<String>,
    pub json: bool,
}

#[derive(Args)]
pub struct AgentServeArgs {
    /// Address to bind. Binding beyond loopback without a token needs --insecure.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// agent.yaml (default: HILT_AGENT_CONFIG, BENCHCI_AGENT_CONFIG, or <work-dir>/agent.yaml if present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Runs, health logs and GPIO session logs (default ~/hilt-agent-results).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Allow serving without a token on a non-loopback address (anyone who can reach the
    /// port can then run commands through uploaded benches).
    #[arg(long)]
    pub insecure: bool,
    /// Skip the start-up self-test of registered benches.
    #[arg(long)]
    pub no_self_test: bool,
    /// Keep at most this many finished runs on disk, oldest removed first (default:
    /// agent.yaml `retention.max_runs`, else 5000; 0 = no limit).
    #[arg(long, value_name = "N")]
    pub keep_runs: Option<u64>,
    /// Remove finished runs older than this many days (default: agent.yaml
    /// `retention.max_age_days`, else 30; 0 = no limit).
    #[arg(long, value_name = "DAYS")]
    pub keep_days: Option<u64>,
    /// What a stopping agent does with queued runs: cancel them (default) or keep them for
    /// the next start (default: agent.yaml `on_shutdown`, else cancel).
    #[arg(long, value_enum)]
    pub on_shutdown: Option<OnShutdownArg>,
    /// Close a connection that has not sent a request's complete headers within this many
    /// milliseconds (default: agent.yaml `limits.header_read_timeout_ms`, else 10000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_ms: Option<u64>,
    /// Cut off (408) a request body that sends nothing for this many seconds (default:
    /// `limits.body_read_timeout_s`, else 30).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_s: Option<u64>,
    /// Most open client connections; more get 503 and are closed (default:
    /// `limits.max_connections`, else 4096; always below the open-file limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Cancel a run executing longer than this many seconds and record it failed with
    /// RUN_TIMEOUT; 0 = no limit (default: `limits.max_run_time_s`, else 86400).
    #[arg(long, value_name = "S")]
    pub max_run_time_s: Option<u64>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OnShutdownArg {
    Cancel,
    Keep,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Non-destructive self-test: never flashes, resets, switches relays or drives outputs.
    SelfTest(SelfTestArgs),
}

#[derive(Args)]
pub struct SelfTestArgs {
    #[arg(long, short = 'b')]
    pub bench: PathBuf,
    /// Also open every transport, GPIO line, power controller and instrument.
    #[arg(long)]
    pub open_hardware: bool,
    /// Read GPIO inputs and power readback (needs --open-hardware).
    #[arg(long, requires = "open_hardware")]
    pub read_inputs: bool,
    /// Take one reading per instrument (needs --open-hardware).
    #[arg(long, requires = "open_hardware")]
    pub read_measurements: bool,
    /// Where logs of opened hardware go.
    #[arg(long, default_value = "bench-health")]
    pub log_dir: PathBuf,
    /// Write the full report here.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Print the full report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    Bench,
    Suite,
}
