//! The clap surface of `hilt server` and of the commands that talk to a server
//! (`hilt workspaces`, `hilt tokens`, `hilt runs submit|show|list|events`).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

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
    /// Longest wait of an agent's assignment long-poll, seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=25))]
    pub long_poll_s: u64,
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
pub struct RunsSubmitArgs {
    /// The bench, by the id its agent synced.
    #[arg(long, value_name = "ID")]
    pub bench_id: String,
    /// The suite file.
    #[arg(long, short = 's')]
    pub suite: PathBuf,
    /// Firmware to flash (.elf, .hex or .bin).
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// Skip `flash` steps.
    #[arg(long)]
    pub skip_flash: bool,
    /// Wait until the run ends; the exit code is then the run's (0 done, 1 tests failed,
    /// 4 agent lost, 5 other failure).
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds (exit 5).
    #[arg(long, default_value_t = 3600)]
    pub timeout_s: u64,
    #[command(flatten)]
    pub conn: ServerConn,
}
