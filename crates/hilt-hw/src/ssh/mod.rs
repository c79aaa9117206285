//! Remote hosts over SSH (hilt extension, issue 14): the [`RemoteHost`] trait the runner's
//! `ssh_exec` / `upload` / `download` steps use, and its one implementation, [`SystemSsh`],
//! which drives the system OpenSSH client with a generated `ssh_config` (ProxyJump chains
//! with per-hop credentials, strict known_hosts, one ControlMaster connection reused by
//! every command). See ARCHITECTURE.md "Remote hosts: why the system ssh".

mod chain;
mod child;
mod diagnose;
mod system;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hilt_model::bench::{Bench, Host};

use crate::CancelToken;
use crate::locks::LockSpec;

pub use chain::{Auth, Chain, ChainError, Endpoint};
pub use system::{ASKPASS_VAR, SystemSsh, sha256_file};

/// A command to run on a remote host.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteCommand {
    /// What runs: a program with arguments, or a shell script for `sh -c`.
    pub what: RemoteProgram,
    pub cwd: Option<String>,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Where the command's stdout and stderr are written, separately.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Bytes kept of each of stdout and stderr; the rest is read and discarded.
    pub max_output_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RemoteProgram {
    Argv(Vec<String>),
    Script(String),
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutcome {
    /// The remote exit code (`128 + signal` when killed; `None` when it never reported one).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    /// The remote process group was killed (after a timeout or cancel).
    pub remote_killed: bool,
    pub duration: Duration,
    /// Bytes kept in the stdout / stderr files (the truncation marker not counted).
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Output beyond `max_output_bytes` was discarded.
    pub output_truncated: bool,
}

/// A verified copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    pub bytes: u64,
    pub local_sha256: String,
    pub remote_sha256: String,
    pub duration: Duration,
}

/// What went wrong, typed: the runner maps each kind to a failure category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshErrorKind {
    /// A host or hop did not answer (refused, timed out, name not resolved, dropped).
    Unreachable,
    /// A host or hop refused the credentials, or a credential is missing.
    Auth,
    /// A host key is unknown or differs from known_hosts.
    HostKey,
    /// The copy failed or its checksums differ.
    Transfer,
    /// The step's time limit expired.
    Timeout,
    Cancelled,
    /// The local `ssh` could not be started or a local file could not be used.
    Local,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SshError {
    pub kind: SshErrorKind,
    /// The host or hop that failed (its label), when one did.
    pub at: Option<String>,
    pub message: String,
}

impl SshError {
    pub fn new(kind: SshErrorKind, at: Option<String>, message: impl Into<String>) -> SshError {
        SshError {
            kind,
            at,
            message: message.into(),
        }
    }

    fn local(message: impl Into<String>) -> SshError {
        SshError::new(SshErrorKind::Local, None, message)
    }
}

/// A Linux machine reached over SSH. Implementations keep one connection and reuse it.
pub trait RemoteHost: Send {
    /// The host's name in the bench.
    fn name(&self) -> &str;
    /// The chain crossed to reach it: every hop, then the host.
    fn chain(&self) -> &Chain;
    /// Connects (with the host's retry policy) unless already connected.
    fn connect(&mut self, cancel: &CancelToken) -> Result<(), SshError>;
    fn exec(&mut self, cmd: &RemoteCommand, cancel: &CancelToken) -> Result<ExecOutcome, SshError>;
    /// Copies `local` to the remote path `remote`, checking size and SHA-256 on both ends.
    fn upload(
        &mut self,
        local: &Path,
        remote: &str,
        timeout: Duration,
        cancel: &CancelToken,
    ) -> Result<Transfer, SshError>;
    /// Copies the remote path `remote` to `local`, checking size and SHA-256 on both ends.
    fn download(
        &mut self,
        remote: &str,
        local: &Path,
        timeout: Duration,
        cancel: &CancelToken,
    ) -> Result<Transfer, SshError>;
    /// Closes the connection (also done on drop).
    fn close(&mut self);
}

/// Opens (without connecting) the bench's host `name`; relative key and known_hosts paths
/// are taken from `bench_dir`.
pub fn open(bench: &Bench, name: &str, bench_dir: &Path) -> Result<Box<dyn RemoteHost>, SshError> {
    let host = bench
        .hosts
        .get(name)
        .ok_or_else(|| SshError::local(format!("the bench defines no host `{name}`")))?;
    let chain = Chain::resolve(bench, name, host, bench_dir)
        .map_err(|e| SshError::new(SshErrorKind::Auth, Some(e.at.clone()), e.to_string()))?;
    Ok(Box::new(SystemSsh::new(name, host, chain)?))
}

/// The lock a run holds on a host: one per `user@hostname:port` of the target.
pub fn lock_spec(name: &str, host: &Host) -> LockSpec {
    LockSpec::new(
        format!("ssh:{}@{}:{}", host.username, host.hostname, host.port),
        format!("{}@{}:{}", host.username, host.hostname, host.port),
        "remote_host",
    )
    .with_detail("host", name.to_string())
}

/// The non-destructive self-test: connect through the chain and run `true`.
pub fn self_test(
    bench: &Bench,
    name: &str,
    bench_dir: &Path,
    scratch: &Path,
    cancel: &CancelToken,
) -> Result<(), SshError> {
    let mut h = open(bench, name, bench_dir)?;
    h.connect(cancel)?;
    let out = h.exec(
        &RemoteCommand {
            what: RemoteProgram::Argv(vec!["true".into()]),
            cwd: None,
            env: Vec::new(),
            timeout: Duration::from_secs(30),
            stdout: scratch.join(format!("selftest-{name}.stdout")),
            stderr: scratch.join(format!("selftest-{name}.stderr")),
            max_output_bytes: 64 * 1024,
        },
        cancel,
    )?;
    h.close();
    match out.exit_code {
        Some(0) => Ok(()),
        other => Err(SshError::new(
            SshErrorKind::Unreachable,
            Some(name.to_string()),
            format!("`true` on host `{name}` ended with {other:?}"),
        )),
    }
}

/// Quotes one word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote("a 'b' $HOME `x` \\")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a 'b' $HOME `x` \\");
    }
}
