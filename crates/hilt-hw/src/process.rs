//! Running external tools (flash tools, `run_external`) safely.
//!
//! A command is an argv, never a shell line. The child runs in its own process group with
//! stdin closed; stdout and stderr share one pipe whose bytes are appended to an output
//! file, capped at `max_output_bytes` (the rest is read and discarded so the child never
//! blocks). A timeout or cancellation sends SIGTERM to the whole group, then SIGKILL after
//! the grace period; the child is always reaped, and processes it left behind holding the
//! output pipe cannot keep [`run`] waiting.

pub(crate) mod capture;
mod group;
mod outcome;
mod which;

pub use outcome::CommandOutcome;
pub use which::which;

use crate::CancelToken;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// SIGTERM → SIGKILL delay used by [`CommandSpec::new`].
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// Timeout used by [`CommandSpec::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Output cap used by [`CommandSpec::new`].
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 64 * 1024 * 1024;

/// What to run and how.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    /// Program and arguments; the program is looked up in `PATH` (the one in `env` when
    /// given there) unless it contains a `/`, relative paths being taken from `cwd`.
    pub argv: Vec<String>,
    /// Working directory; the current one when `None`.
    pub cwd: Option<PathBuf>,
    /// Added to (or overriding) the inherited environment.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL on timeout or cancellation.
    pub grace: Duration,
    /// Combined stdout + stderr is appended here (created if missing).
    pub output: PathBuf,
    /// Bytes of child output written to `output` at most.
    pub max_output_bytes: u64,
}

impl CommandSpec {
    /// A spec with the default timeout, grace and output cap, no cwd and no extra env.
    pub fn new<S: Into<String>>(
        argv: impl IntoIterator<Item = S>,
        output: impl Into<PathBuf>,
    ) -> Self {
        CommandSpec {
            argv: argv.into_iter().map(Into::into).collect(),
            cwd: None,
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            grace: DEFAULT_GRACE,
            output: output.into(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run an empty command; help: give the program and its arguments as a list")]
    EmptyArgv,
    #[error(
        "program not found: {program} ({path_env_hint}); help: install it, add its directory \
         to PATH, or give its full path"
    )]
    NotFound {
        program: String,
        /// Where the program was looked for, e.g. `searched PATH=…` or `PATH is not set`.
        path_env_hint: String,
    },
    #[error("cannot start {program}: {source}; help: check that it is an executable for this host")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What failed, e.g. `open output file`.
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The token was already cancelled; nothing was started.
    #[error("not started: the run was cancelled")]
    Cancelled,
}

/// Runs `spec` to completion, timeout or cancellation and reports what happened.
///
/// A timeout or cancellation is not an error: the outcome says `timed_out` / `cancelled`
/// and carries the exit code of the killed child (`128 + signal`).
pub fn run(spec: &CommandSpec, cancel: &CancelToken) -> Result<CommandOutcome, ProcessError> {
    let program = spec.argv.first().ok_or(ProcessError::EmptyArgv)?;
    let cwd = match &spec.cwd {
        Some(dir) => std::path::absolute(dir),
        None => std::env::current_dir(),
    }
    .map_err(|source| ProcessError::Io {
        action: "resolve working directory",
        path: spec.cwd.clone().unwrap_or_default(),
        source,
    })?;
    if !cwd.is_dir() {
        return Err(ProcessError::Io {
            action: "use working directory",
            path: cwd,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not an existing directory"),
        });
    }
    let path_var: Option<OsString> = match spec.env.iter().rev().find(|(k, _)| k == "PATH") {
        Some((_, v)) => Some(v.into()),
        None => std::env::var_os("PATH"),
    };
    let resolved = which::resolve(program, path_var.as_deref(), &cwd)?;
    if cancel.is_cancelled() {
        return Err(ProcessError::Cancelled);
    }
    let io_err = |action: &'static str, path: &PathBuf| {
        let path = path.clone();
        move |source| ProcessError::Io {
            action,
            path,
            source,
        }
    };
    let output = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.output)
        .map_err(io_err("open output file", &spec.output))?;
    let (reader, writer) = std::io::pipe().map_err(io_err("create a pipe for", &resolved))?;
    let writer2 = writer
        .try_clone()
        .map_err(io_err("create a pipe for", &resolved))?;

    let mut command = Command::new(&resolved);
    command
        .arg0(program)
        .args(&spec.argv[1..])
        .current_dir(&cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .process_group(0);
    let started = Instant::now();
    let started_at = outcome::utc_now();
    let spawned = command.spawn();
    // The command holds the parent's copies of the pipe's write end: close them so that the
    // reader sees end-of-file once the child side is gone.
    drop(command);
    let mut child = spawned.map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        source,
    })?;
    let pgid = group::pgid_of(&child);
    let mut capture = capture::Capture::start(reader, output, spec.max_output_bytes);

    let deadline = started + spec.timeout;
    let mut timed_out = false;
    let mut cancelled = false;
    let finished = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok((status, None)),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
        } else if cancel.wait_timeout((deadline - now).min(group::POLL_SLICE)) {
            cancelled = true;
        } else {
            continue;
        }
        break group::terminate(&mut child, pgid, spec.grace)
            .map(|t| (t.status, Some(t.grace_end)));
    };
    let (status, grace_end) = match finished {
        Ok(done) => done,
        Err(source) => {
            group::kill_now(&mut child, pgid);
            capture.stop();
            return Err(ProcessError::Io {
                action: "wait for",
                path: resolved,
                source,
            });
        }
    };
    group::settle(&mut capture, pgid, spec.grace, grace_end);
    let captured = capture.stop();
    let signal = status.signal();
    Ok(CommandOutcome {
        argv: spec.argv.clone(),
        cwd,
        started_at,
        finished_at: outcome::utc_now(),
        duration_s: started.elapsed().as_secs_f64(),
        exit_code: status.code().unwrap_or_else(|| 128 + signal.unwrap_or(0)),
        signal,
        timed_out,
        cancelled,
        output_path: spec.output.clone(),
        output_bytes: captured.bytes,
        output_truncated: captured.truncated,
    })
}

#[cfg(test)]
mod tests;
