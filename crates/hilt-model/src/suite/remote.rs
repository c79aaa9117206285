//! hilt extension: steps on remote hosts over SSH (issue 14). Not part of BenchCI.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

/// Runs a command on a host of the bench and checks how it ended.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SshExec {
    /// A host of the bench's `hosts`.
    pub host: String,
    /// Program and arguments, each quoted for the remote shell. Give `argv` or `script`.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// A POSIX shell script run with `sh -c`. Give `argv` or `script`.
    #[serde(default)]
    pub script: Option<String>,
    /// Remote working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Environment variables set for the remote command (written to the ledgers: no secrets).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Time limit in milliseconds; on expiry the remote process group is killed.
    #[serde(default = "defaults::u64_::<30000>")]
    pub timeout_ms: u64,
    /// Expected exit code.
    #[serde(default)]
    pub expect_exit: i32,
    /// Text stdout must contain.
    #[serde(default)]
    pub expect_contains: Option<String>,
    /// Regular expression stdout must match.
    #[serde(default)]
    pub expect_regex: Option<String>,
    /// Bytes kept of each of stdout and stderr (default 16 MiB); a command that prints
    /// more keeps running, the rest is discarded and the ledger says `output_truncated`.
    #[serde(default = "defaults::u64_::<16777216>")]
    pub max_output_bytes: u64,
    /// A bundle of the suite's `bundles` this command needs: the stage phase copies it to
    /// the host (verified) before any test runs; the command sees its remote path in
    /// `HILT_BUNDLE`.
    #[serde(default)]
    pub bundle: Option<String>,
}

/// Copies a local file to a host, verifying its SHA-256 on both ends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Upload {
    /// A host of the bench's `hosts`.
    pub host: String,
    /// Local file (relative paths are taken from the suite file's directory).
    pub src: String,
    /// Remote path of the copy (its directory must exist).
    pub dest: String,
    /// Time limit in milliseconds.
    #[serde(default = "defaults::u64_::<300000>")]
    pub timeout_ms: u64,
}

/// Copies a remote file into the run directory, verifying its SHA-256 on both ends.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Download {
    /// A host of the bench's `hosts`.
    pub host: String,
    /// Remote file.
    pub src: String,
    /// Destination inside the run's `artifacts/remote/<host>/` directory (relative, no `..`).
    pub dest: String,
    /// Time limit in milliseconds.
    #[serde(default = "defaults::u64_::<300000>")]
    pub timeout_ms: u64,
}
