//! Server settings, resolved once by the binary (flag > environment > default).

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Run files: firmware submitted with runs, results archives uploaded by agents.
    pub data_dir: PathBuf,
    /// `sqlite://PATH`; default `<data_dir>/hilt-server.db`.
    pub database: Option<String>,
    /// `HILT_SERVER_BOOTSTRAP_TOKEN`: ensures workspace `default` and an admin user token
    /// with this value.
    pub bootstrap_token: Option<String>,
    /// Longest wait of `GET /v1/agents/assignments/next` before it answers
    /// `{"assignment": null}` (BenchCI's cloud agent gives up on a call after 30 s).
    pub long_poll: Duration,
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
}

impl ServerSettings {
    pub fn new(data_dir: PathBuf) -> ServerSettings {
        ServerSettings {
            data_dir,
            database: None,
            bootstrap_token: None,
            long_poll: Duration::from_secs(20),
            lease: Duration::from_secs(180),
            cancel_grace: Duration::from_secs(60),
            agent_forget_after: Duration::from_secs(7 * 24 * 3600),
            max_firmware_bytes: 200 * 1024 * 1024,
            max_artifacts_bytes: 512 * 1024 * 1024,
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
