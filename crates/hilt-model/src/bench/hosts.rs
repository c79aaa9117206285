//! hilt extension: remote hosts reached over SSH, directly or through a jump chain, and
//! the authentication references they share (issue 14). Not part of the BenchCI format.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

/// A way to authenticate, defined once under `auth_refs` and named by hosts and hops.
/// Secrets are never written into the bench: `password_env` names an environment variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthRef {
    /// A private key file (relative paths are taken from the bench file's directory).
    KeyFile {
        /// Path of the private key; it must exist and not be readable by others.
        path: String,
    },
    /// The keys of the running ssh-agent (`SSH_AUTH_SOCK` of the hilt process).
    SshAgent {},
    /// A password read from an environment variable when connecting; the value itself is
    /// never stored, logged or written to the run directory.
    PasswordEnv {
        /// Name of the environment variable holding the password.
        value: String,
    },
}

impl AuthRef {
    /// The `type` tag as written in YAML.
    pub fn type_name(&self) -> &'static str {
        match self {
            AuthRef::KeyFile { .. } => "key_file",
            AuthRef::SshAgent {} => "ssh_agent",
            AuthRef::PasswordEnv { .. } => "password_env",
        }
    }
}

/// A Linux machine of the bench reached over SSH.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Host {
    /// Address or DNS name, as seen from the last hop (or from hilt for `direct`).
    #[serde(default)]
    pub hostname: String,
    /// SSH port.
    #[serde(default = "defaults::u16_::<22>")]
    pub port: u16,
    /// Login user.
    #[serde(default)]
    pub username: String,
    /// Name of an entry of `auth_refs`.
    #[serde(default)]
    pub auth_ref: String,
    /// known_hosts file holding the host keys of this host and of every hop (relative
    /// paths are taken from the bench file's directory). Host keys are always checked
    /// strictly: an unknown or changed key refuses the connection.
    #[serde(default)]
    pub known_hosts: Option<String>,
    /// Seconds to wait for each TCP connection of the chain.
    #[serde(default = "defaults::u64_::<10>")]
    pub connect_timeout_s: u64,
    /// How often to try connecting before the host counts as unreachable.
    #[serde(default)]
    pub retry: Retry,
    /// `direct`, or `jump_chain` through an ordered list of hops.
    #[serde(default)]
    pub transport: HostTransport,
}

/// Connection attempts and the pause between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Retry {
    /// Attempts in total (1 = no retry).
    #[serde(default = "defaults::u32_::<1>")]
    pub attempts: u32,
    /// Pause between attempts, in milliseconds.
    #[serde(default = "defaults::u64_::<500>")]
    pub backoff_ms: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 1,
            backoff_ms: 500,
        }
    }
}

/// How the host is reached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostTransport {
    /// hilt connects to the host itself.
    #[default]
    Direct,
    /// hilt connects to the first hop, from it to the next, …, and from the last hop to
    /// the host (OpenSSH `ProxyJump`).
    JumpChain {
        /// The jump hosts in the order they are crossed.
        #[serde(default)]
        hops: Vec<Hop>,
    },
}

impl HostTransport {
    /// The hops, empty for `direct`.
    pub fn hops(&self) -> &[Hop] {
        match self {
            HostTransport::Direct => &[],
            HostTransport::JumpChain { hops } => hops,
        }
    }
}

/// One jump host of a chain, with its own credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Hop {
    /// A label for messages and ledgers (`hop1`, `hop2`… when omitted).
    #[serde(default)]
    pub name: Option<String>,
    /// Address or DNS name, as seen from the previous hop.
    #[serde(default)]
    pub hostname: String,
    /// SSH port.
    #[serde(default = "defaults::u16_::<22>")]
    pub port: u16,
    /// Login user on the hop.
    #[serde(default)]
    pub username: String,
    /// Name of an entry of `auth_refs`.
    #[serde(default)]
    pub auth_ref: String,
}

impl Hop {
    /// The hop's label: its `name`, else `hop<N>` (1-based).
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("hop{}", index + 1))
    }
}
