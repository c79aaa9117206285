//! The clap surface of `hilt server` and of the commands that talk to a server
//! (`hilt workspaces`, `hilt tokens`, `hilt agents`, `hilt runs
//! submit|show|list|events|cancel|download`).

use std::path::PathBuf;

use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};

#[derive(Args)]
pub struct ServerArgs {
    /// Address to listen on (port 0 picks a free port; the URL is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub bind: String,
    /// Run files (submitted firmware, uploaded results) and the default SQLite database
    /// (default: HILT_SERVER_DATA_DIR, else ~/hilt-server).
    #[arg(long, env = "HILT_SERVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (default: sqlite://<data-dir>/hilt-server.db).
    #[arg(long, env = "HILT_SERVER_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// How the SQLite database commits: `normal` survives a crash or kill of the server
    /// but may lose the last commits on a power loss or OS crash; `full` flushes every
    /// commit to disk first (several times fewer commits per second on disk). Ignored
    /// with PostgreSQL, whose own settings decide.
    #[arg(long, value_enum, default_value_t = SqliteSync::Normal)]
    pub sqlite_synchronous: SqliteSync,
    /// Longest wait of an agent's assignment long-poll, seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=25))]
    pub long_poll_s: u64,
    /// With PostgreSQL (several replicas may share it): a waiting long-poll claims again
    /// this often even without a wake-up, in case a notification from another replica was
    /// lost, seconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub recheck_s: u64,
    /// An agent silent this long loses its runs (failed, exit code -1), seconds.
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_s: u64,
    /// Largest results archive an agent may upload, bytes.
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    pub max_artifacts_bytes: u64,
    /// Where firmware and results archives are kept: a directory, or
    /// s3://BUCKET[/PREFIX] with endpoint, region and credentials from AWS_ENDPOINT_URL,
    /// AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (default: the data dir).
    #[arg(long, env = "HILT_SERVER_ARTIFACTS", value_name = "URL")]
    pub artifacts: Option<String>,
    /// Ended runs older than this many days are deleted with their artifacts.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=36500))]
    pub retain_days: u64,
    /// Keep at most this many runs per workspace: older ended runs are deleted with their
    /// artifacts (default: no limit).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub retain_runs: Option<u64>,
    /// Serve /metrics without a token (otherwise it needs an admin token).
    #[arg(long)]
    pub metrics_public: bool,
    /// How long an agent has to stop a cancelled run before it is recorded cancelled
    /// anyway, seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub cancel_grace_s: u64,
    /// Remove agents (and their benches; runs are kept) silent this long: a number with
    /// a unit, s, m, h or d (`7d`, `36h`).
    #[arg(long, default_value = "7d", value_parser = parse_span)]
    pub agent_forget_after: Duration,
    /// Most open client connections; more are answered 503 and closed at once. Every
    /// long-polling agent holds one. Lowered to fit the open-file limit (raised to its
    /// hard maximum at start).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(16..))]
    pub max_connections: u64,
}

/// SQLite's `synchronous` setting for the server's database.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    Normal,
    Full,
}

/// `90s`, `15m`, `36h`, `7d` (a bare number is seconds).
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 15m, 36h or 7d"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use s, m, h or d"
            ));
        }
    };
    if n == 0 {
        return Err("the duration must be more than zero".into());
    }
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Which server to ask, with which token.
#[derive(Args)]
pub struct ServerConn {
    /// The server (http://host:port).
    #[arg(long, env = "HILT_SERVER", value_name = "URL")]
    pub server: String,
    /// A user token of the server.
    #[arg(long, env = "HILT_TOKEN", value_name = "T", hide_env_values = true)]
    pub token: String,
    /// Print the server's JSON answer.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum WorkspacesCommand {
    /// Create a workspace (needs an admin token).
    Create {
        name: String,
        #[command(flatten)]
        conn: ServerConn,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TokenKindArg {
    Agent,
    User,
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create a token; the secret is printed once on stdout.
    Create {
        #[arg(long)]
        workspace: String,
        #[arg(long, value_enum)]
        kind: TokenKindArg,
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Revoke a token by its id.
    Revoke {
        id: String,
        #[command(flatten)]
        conn: ServerConn,
    },
}

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["bench_id", "tags", "capabilities"])))]
pub struct RunsSubmitArgs {
    /// The bench, by the id its agent synced.
    #[arg(long, value_name = "ID", conflicts_with_all = ["tags", "capabilities"])]
    pub bench_id: Option<String>,
    /// Any bench carrying all these tags (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub tags: Vec<String>,
    /// Any bench with all these capabilities (comma-separated: gpio, power, measurements,
    /// transport:<t>, flash:<backend>, power:<backend>, measurement:<backend>).
    #[arg(long, value_delimiter = ',', value_name = "C,D")]
    pub capabilities: Vec<String>,
    /// Higher runs first; first come, first served within a priority.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,
    /// The suite file.
    #[arg(long, short = 's')]
    pub suite: PathBuf,
    /// Firmware to flash (.elf, .hex or .bin).
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// Skip `flash` steps.
    #[arg(long)]
    pub skip_flash: bool,
    /// Wait until the run ends, showing its queue reason while queued and its events while
    /// running; the exit code is then the run's (0 done, 1 tests failed, 3 configuration,
    /// 4 agent lost, 5 other failure, 130 cancelled).
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds (exit 5).
    #[arg(long, default_value_t = 3600)]
    pub timeout_s: u64,
    #[command(flatten)]
    pub conn: ServerConn,
}

#[derive(Subcommand)]
pub enum AgentsCommand {
    /// One line per cloud agent: id, name, machine, last seen, online or lost.
    List(ServerConn),
}
