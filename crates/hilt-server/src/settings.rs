//! Server settings, resolved once by the binary (flag > environment > default).

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Run files: firmware submitted with runs, results archives uploaded by agents.
    pub data_dir: PathBuf,
    /// `sqlite://PATH`; default `<data_dir>/hilt-server.db`.
    pub database: Option<String>,
    /// SQLite only: flush every commit to disk (`synchronous = FULL`). Otherwise
    /// (`NORMAL`, the default) a commit survives a crash or kill of the server but may be
    /// lost with the last ones on a power loss or OS crash; on disk this is several times
    /// more commits per second.
    pub sqlite_full_sync: bool,
    /// `HILT_SERVER_BOOTSTRAP_TOKEN`: ensures workspace `default` and an admin user token
    /// with this value.
    pub bootstrap_token: Option<String>,
    /// Longest wait of `GET /v1/agents/assignments/next` before it answers
    /// `{"assignment": null}` (BenchCI's cloud agent gives up on a call after 30 s).
    pub long_poll: Duration,
    /// On a store several replicas share (PostgreSQL), a long-poll claims again this often
    /// even when no wake-up came: the safety net under cross-replica notifications.
    pub recheck: Duration,
    /// An agent silent this long loses its runs' leases: they fail with exit code -1.
    pub lease: Duration,
    /// How long an agent has to end a run whose cancel was requested before the server
    /// records it cancelled anyway (later reports on it are then refused).
    pub cancel_grace: Duration,
    /// Agents silent this long are removed with their benches (their runs are kept).
    pub agent_forget_after: Duration,
    /// Largest firmware image submitted with a run (decoded bytes).
    pub max_firmware_bytes: u64,
    /// Largest results archive an agent may upload.
    pub max_artifacts_bytes: u64,
    /// `--artifacts`: where firmware and results archives are kept: `None` = the data dir,
    /// a directory, or `s3://BUCKET[/PREFIX]` (endpoint and credentials from the `AWS_*`
    /// environment variables).
    pub artifacts: Option<String>,
    /// S3 settings on top of the environment, as `object_store` config keys
    /// (`aws_endpoint_url`, `aws_access_key_id`, …): tests set them here because a test
    /// process cannot change its environment safely; the binary leaves this empty.
    pub s3_options: Vec<(String, String)>,
    /// Ended runs created longer ago than this are pruned with their artifacts.
    pub retain_age: Duration,
    /// Ended runs beyond the newest this many of their workspace are pruned (`None`: no
    /// count limit).
    pub retain_runs: Option<u64>,
    /// How often the retention sweeper looks for runs to prune.
    pub retention_every: Duration,
    /// Serve `/metrics` without a token (for a scraper on a private network); otherwise it
    /// needs an admin user token.
    pub metrics_public: bool,
    /// Most open client connections (every long-polling agent holds one); more are
    /// answered 503 and closed at once. Lowered to fit the open-file limit.
    pub max_connections: u64,
}

impl ServerSettings {
    pub fn new(data_dir: PathBuf) -> ServerSettings {
        ServerSettings {
            data_dir,
            database: None,
            sqlite_full_sync: false,
            bootstrap_token: None,
            long_poll: Duration::from_secs(20),
            recheck: Duration::from_secs(5),
            lease: Duration::from_secs(180),
            cancel_grace: Duration::from_secs(60),
            agent_forget_after: Duration::from_secs(7 * 24 * 3600),
            max_firmware_bytes: 200 * 1024 * 1024,
            max_artifacts_bytes: 512 * 1024 * 1024,
            artifacts: None,
            s3_options: Vec::new(),
            retain_age: Duration::from_secs(30 * 24 * 3600),
            retain_runs: None,
            retention_every: Duration::from_secs(60),
            metrics_public: false,
            max_connections: hilt_model::agent::AgentLimits::default().max_connections,
        }
    }

    pub fn database_url(&self) -> String {
        self.database.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("hilt-server.db").display()
            )
        })
    }
}
