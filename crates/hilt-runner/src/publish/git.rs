//! git through `hilt_hw::process::run` (own process group, deadline, output cap): one
//! repository, its git directory resolved once, a scratch directory for the temporary
//! index files and the captured output of each call. Prompts are off (a missing
//! credential fails instead of waiting), messages are in English (they are parsed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hilt_hw::CancelToken;
use hilt_hw::process::{self, CommandSpec, ProcessError};

/// Local operations (add, write-tree, commit-tree…).
const LOCAL_TIMEOUT: Duration = Duration::from_secs(300);
/// Operations that reach the remote (ls-remote, fetch, push).
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(300);
/// Output kept of one git call.
const OUTPUT_CAP: u64 = 4 * 1024 * 1024;

/// A git call that did not succeed, with what git said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct GitError {
    pub message: String,
}

impl GitError {
    pub fn new(message: impl Into<String>) -> GitError {
        GitError {
            message: message.into(),
        }
    }
}

/// What one git call printed (stdout and stderr together) and how it ended.
pub struct Said {
    pub ok: bool,
    pub exit_code: i32,
    pub text: String,
}

impl Said {
    /// The first word of the first line that is an object name.
    pub fn oid(&self) -> Option<String> {
        self.text.lines().find_map(|l| {
            let w = l.split_whitespace().next()?;
            ((w.len() == 40 || w.len() == 64) && w.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| w.to_ascii_lowercase())
        })
    }

    /// The last non-empty lines, for messages.
    pub fn tail(&self) -> String {
        let lines: Vec<&str> = self
            .text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        lines[lines.len().saturating_sub(3)..].join(" / ")
    }
}

pub struct Git {
    /// Absolute git directory (`.git`, a linked worktree's, or a bare repository).
    pub git_dir: PathBuf,
    /// The repository as given (a work tree or a bare repository).
    pub repo: PathBuf,
    scratch: tempfile::TempDir,
    seq: std::cell::Cell<u32>,
    cancel: CancelToken,
}

/// `git` on PATH, or a message saying how to get it.
pub fn find_git() -> Result<PathBuf, GitError> {
    process::which("git").ok_or_else(|| {
        GitError::new("git is not installed (not on PATH); help: install git (apt-get install git)")
    })
}

impl Git {
    /// Opens the repository at `repo` (a work tree or a bare repository).
    pub fn open(repo: &Path, cancel: &CancelToken) -> Result<Git, GitError> {
        find_git()?;
        if !repo.is_dir() {
            return Err(GitError::new(format!(
                "repository {} does not exist; help: clone the results repository there, or fix `repo`",
                repo.display()
            )));
        }
        let scratch = tempfile::Builder::new()
            .prefix("hilt-publish-")
            .tempdir()
            .map_err(|e| GitError::new(format!("cannot create a scratch directory: {e}")))?;
        let mut g = Git {
            git_dir: PathBuf::new(),
            repo: repo.to_path_buf(),
            scratch,
            seq: std::cell::Cell::new(0),
            cancel: cancel.clone(),
        };
        let said = g.call(
            repo,
            &["rev-parse", "--absolute-git-dir"],
            &[],
            LOCAL_TIMEOUT,
        )?;
        let dir = said.text.lines().last().unwrap_or("").trim().to_string();
        if !said.ok || dir.is_empty() {
            return Err(GitError::new(format!(
                "{} is not a git repository: {}; help: `git clone` the results repository there",
                repo.display(),
                said.tail()
            )));
        }
        g.git_dir = PathBuf::from(dir);
        Ok(g)
    }

    /// A path in the scratch directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// Runs git in `cwd` with `env`; a git that could not run is an error, a git that
    /// failed is a `Said` with `ok: false`.
    pub fn call(
        &self,
        cwd: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Said, GitError> {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let out = self.scratch.path().join(format!("git-{n}.out"));
        let mut argv = vec![
            "git".to_string(),
            "-c".into(),
            "core.autocrlf=false".into(),
            "-c".into(),
            "core.safecrlf=false".into(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let mut spec = CommandSpec::new(argv, &out);
        spec.cwd = Some(cwd.to_path_buf());
        spec.timeout = timeout;
        spec.max_output_bytes = OUTPUT_CAP;
        spec.env = [
            ("GIT_TERMINAL_PROMPT", "0"),
            ("GCM_INTERACTIVE", "never"),
            ("LC_ALL", "C"),
        ]
        .iter()
        .chain(env)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if !self.git_dir.as_os_str().is_empty() {
            spec.env
                .push(("GIT_DIR".into(), self.git_dir.display().to_string()));
        }
        let outcome = process::run(&spec, &self.cancel).map_err(|e| match e {
            ProcessError::Cancelled => GitError::new("cancelled"),
            other => GitError::new(format!("cannot run git: {other}")),
        })?;
        let text = String::from_utf8_lossy(&std::fs::read(&out).unwrap_or_default()).into_owned();
        let _ = std::fs::remove_file(&out);
        if outcome.timed_out {
            return Err(GitError::new(format!(
                "`git {}` did not finish within {timeout:?}",
                args.join(" ")
            )));
        }
        if outcome.cancelled {
            return Err(GitError::new("cancelled"));
        }
        Ok(Said {
            ok: outcome.success(),
            exit_code: outcome.exit_code,
            text,
        })
    }

    /// [`call`](Self::call) in the repository, failing unless git succeeds.
    pub fn must(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Said, GitError> {
        self.must_in(&self.repo, args, env, LOCAL_TIMEOUT)
    }

    pub fn must_in(
        &self,
        cwd: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Said, GitError> {
        let said = self.call(cwd, args, env, timeout)?;
        if !said.ok {
            return Err(GitError::new(format!(
                "`git {}` failed (exit {}): {}",
                args.join(" "),
                said.exit_code,
                said.tail()
            )));
        }
        Ok(said)
    }

    /// The commit `rev` names, if it names one.
    pub fn commit_of(&self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let said = self.call(
            &self.repo,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
            &[],
            LOCAL_TIMEOUT,
        )?;
        Ok(if said.ok { said.oid() } else { None })
    }

    /// The tree of commit `c`.
    pub fn tree_of(&self, c: &str) -> Result<String, GitError> {
        let spec = format!("{c}^{{tree}}");
        self.must(&["rev-parse", "--verify", &spec], &[])?
            .oid()
            .ok_or_else(|| GitError::new(format!("no tree for {c}")))
    }

    /// Whether object `oid` is in the repository.
    pub fn has(&self, oid: &str) -> Result<bool, GitError> {
        Ok(self
            .call(&self.repo, &["cat-file", "-e", oid], &[], LOCAL_TIMEOUT)?
            .ok)
    }

    /// Whether `a` is an ancestor of (or equal to) `b`.
    pub fn is_ancestor(&self, a: &str, b: &str) -> Result<bool, GitError> {
        let said = self.call(
            &self.repo,
            &["merge-base", "--is-ancestor", a, b],
            &[],
            LOCAL_TIMEOUT,
        )?;
        match said.exit_code {
            0 => Ok(true),
            1 => Ok(false),
            _ => Err(GitError::new(format!(
                "cannot compare {a} and {b}: {}",
                said.tail()
            ))),
        }
    }
}
