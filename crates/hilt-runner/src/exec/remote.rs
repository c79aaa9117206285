//! Steps on remote hosts over SSH (hilt extension, issue 14): `ssh_exec`, `upload`,
//! `download`. Hosts are opened on first use through `hilt_hw::ssh` and keep one
//! connection each until the run ends. Every remote command goes to `command_ledger.jsonl`
//! with its host and hop chain; every copy to `transfer_ledger.jsonl` with its size and the
//! SHA-256 of both ends. Environment values of a command are not recorded (only names).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, json};

use hilt_hw::ssh::{self, RemoteCommand, RemoteHost, RemoteProgram, SshError, SshErrorKind};
use hilt_model::run::{Category, Failure, Source, checks, now, round3};
use hilt_model::suite::{Download, SshExec, Upload};

use super::external::paths::slug;
use super::{Exec, StepError, StepResult};
use crate::plan::Resolved;
use crate::rundir::Ledger;
use crate::uart::Matcher;

/// Bytes of stdout read back for `expect_contains` / `expect_regex`.
const EXPECT_READ_CAP: u64 = 64 * 1024 * 1024;
/// Bytes of stderr quoted in a failure.
const TAIL: usize = 400;

/// The hosts a run has opened, and its transfer ledger (created on first copy).
#[derive(Default)]
pub struct Hosts {
    open: BTreeMap<String, Box<dyn RemoteHost>>,
    transfers: Option<Ledger>,
}

impl Hosts {
    /// Closes every connection.
    pub fn close(&mut self) {
        for h in self.open.values_mut() {
            h.close();
        }
        self.open.clear();
        if let Some(l) = &mut self.transfers {
            let _ = l.flush_buffer();
        }
    }
}

/// The failure for an SSH error, naming the host or hop that failed.
pub(super) fn ssh_failure(host: &str, chain: &[String], e: &SshError) -> StepError {
    let category = match e.kind {
        SshErrorKind::Unreachable | SshErrorKind::Local => Category::RemoteHostUnreachable,
        SshErrorKind::Auth => Category::RemoteAuthFailed,
        SshErrorKind::HostKey => Category::RemoteHostKeyMismatch,
        SshErrorKind::Transfer => Category::RemoteTransferFailed,
        SshErrorKind::Timeout => Category::StepTimeout,
        SshErrorKind::Cancelled => return StepError::Cancelled,
    };
    let mut f = Failure::new(category, e.message.clone())
        .with_detail("host", host.to_string())
        .with_detail("chain", chain.to_vec());
    if let Some(at) = &e.at {
        f = f.with_detail("failed_at", at.clone());
    }
    if e.kind == SshErrorKind::Timeout {
        f = f.with_source(Source::BenchInfrastructure);
    }
    StepError::Test(f)
}

impl Exec<'_> {
    /// The opened host `name` (opened, not yet connected, on first use).
    pub(super) fn host(&mut self, name: &str) -> Result<&mut Box<dyn RemoteHost>, StepError> {
        if !self.hosts.open.contains_key(name) {
            let h = ssh::open(self.bench, name, &self.opts.bench_dir)
                .map_err(|e| ssh_failure(name, &[], &e))?;
            self.hosts.open.insert(name.to_string(), h);
        }
        Ok(self.hosts.open.get_mut(name).expect("inserted above"))
    }

    /// Where a step's remote output goes; a resumed attempt writes beside the earlier one
    /// (`…-stepN.attemptA.stdout`), whose `ssh` may still be writing.
    fn step_files(&self, host: &str) -> (PathBuf, String) {
        let attempt = match self.journal.attempt {
            0 | 1 => String::new(),
            a => format!(".attempt{a}"),
        };
        let rel = format!(
            "logs/hosts/{}/{}-step{}{attempt}",
            slug(host),
            slug(&self.current_test),
            self.current_step
        );
        (self.dir.join(&rel), rel)
    }

    pub(super) fn ssh_exec(&mut self, s: &SshExec, resolved: &Resolved) -> StepResult {
        let (base, rel) = self.step_files(&s.host);
        if let Some(d) = base.parent() {
            std::fs::create_dir_all(d).map_err(|e| {
                StepError::Run(Failure::new(
                    Category::UnknownError,
                    format!("cannot create {}: {e}", d.display()),
                ))
            })?;
        }
        let stdout = PathBuf::from(format!("{}.stdout", base.display()));
        let stderr = PathBuf::from(format!("{}.stderr", base.display()));
        let what = match (&s.argv, &s.script) {
            (Some(a), _) => RemoteProgram::Argv(a.clone()),
            (None, Some(sc)) => RemoteProgram::Script(sc.clone()),
            (None, None) => RemoteProgram::Argv(Vec::new()),
        };
        let mut env: Vec<(String, String)> =
            s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(dest) = s.bundle.as_ref().and_then(|b| self.bundle_dests.get(b)) {
            env.push(("HILT_BUNDLE".into(), dest.clone()));
        }
        let env_names: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
        let cmd = RemoteCommand {
            what,
            cwd: s.cwd.clone(),
            env,
            timeout: Duration::from_millis(s.timeout_ms),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
            max_output_bytes: s.max_output_bytes,
        };
        let started_at = now();
        let cancel = self.cancel.clone();
        let test = self.current_test.clone();
        let step = self.current_step;
        let h = self.host(&s.host)?;
        let chain = h.chain().describe();
        let result = h.exec(&cmd, &cancel);
        let mut entry = json!({
            "type": "ssh_exec",
            "host": s.host,
            "chain": chain,
            "argv": s.argv,
            "script": s.script,
            "cwd": s.cwd,
            "env_names": env_names,
            "bundle": s.bundle,
            "test_name": test,
            "step_index": step,
            "attempt": self.journal.attempt,
            "started_at": started_at,
            "finished_at": now(),
            "stdout_file": format!("{rel}.stdout"),
            "stderr_file": format!("{rel}.stderr"),
        });
        let out = match result {
            Ok(o) => o,
            Err(e) => {
                entry["error"] = json!(e.message);
                entry["failed_at"] = json!(e.at);
                let _ = self.commands.append(&entry);
                return Err(ssh_failure(&s.host, &chain, &e));
            }
        };
        for (k, v) in [
            ("exit_code", json!(out.exit_code)),
            ("timed_out", json!(out.timed_out)),
            ("cancelled", json!(out.cancelled)),
            ("remote_killed", json!(out.remote_killed)),
            ("duration_s", json!(round3(out.duration.as_secs_f64()))),
            ("stdout_bytes", json!(out.stdout_bytes)),
            ("stderr_bytes", json!(out.stderr_bytes)),
            ("output_truncated", json!(out.output_truncated)),
        ] {
            entry[k] = v;
        }
        let _ = self.commands.append(&entry);
        if out.cancelled {
            return Err(StepError::Cancelled);
        }
        let program = s.argv.as_ref().and_then(|a| a.first().cloned());
        let detail = |f: Failure| {
            f.with_detail("host", s.host.clone())
                .with_detail("program", program.clone())
                .with_detail("chain", chain.clone())
                .with_detail("stdout_file", format!("{rel}.stdout"))
                .with_detail("stderr_file", format!("{rel}.stderr"))
                .with_suggestions([checks::SSH_COMMAND_OUTPUT])
        };
        if out.timed_out {
            let killed = if out.remote_killed {
                "its remote process group was killed"
            } else {
                "killing its remote process group FAILED"
            };
            return Err(StepError::Test(detail(
                Failure::new(
                    Category::StepTimeout,
                    format!(
                        "command on host `{}` did not finish within {} ms; {killed}",
                        s.host, s.timeout_ms
                    ),
                )
                .with_source(Source::TestLogic)
                .with_detail("remote_killed", out.remote_killed),
            )));
        }
        let code = out.exit_code.unwrap_or(-1);
        if code != s.expect_exit {
            return Err(StepError::Test(detail(Failure::new(
                Category::RemoteCommandFailed,
                format!(
                    "command on host `{}` exited with {code}, expected {}; stderr: {}",
                    s.host,
                    s.expect_exit,
                    tail(&stderr)
                ),
            ))));
        }
        if s.expect_contains.is_some() || resolved.matcher.is_some() {
            let text = read_capped(&stdout);
            if let Some(c) = &s.expect_contains
                && !contains(&text, c.as_bytes())
            {
                return Err(StepError::Test(detail(Failure::new(
                    Category::RemoteCommandFailed,
                    format!(
                        "stdout of the command on host `{}` does not contain {c:?}",
                        s.host
                    ),
                ))));
            }
            if let Some((Matcher::Regex(re), rule)) = &resolved.matcher
                && !re.is_match(&text)
            {
                return Err(StepError::Test(detail(Failure::new(
                    Category::RemoteCommandFailed,
                    format!(
                        "stdout of the command on host `{}` does not match {rule}",
                        s.host
                    ),
                ))));
            }
        }
        let mut data = Map::new();
        data.insert("host".into(), json!(s.host));
        data.insert("exit_code".into(), json!(code));
        data.insert("stdout_file".into(), json!(format!("{rel}.stdout")));
        data.insert("stderr_file".into(), json!(format!("{rel}.stderr")));
        Ok(data)
    }

    pub(super) fn upload(&mut self, s: &Upload) -> StepResult {
        let local = super::Exec::resolve(&self.opts.suite_dir, &s.src);
        if !local.is_file() {
            return Err(StepError::Test(
                Failure::new(
                    Category::ConfigError,
                    format!("upload source {} is not a readable file", local.display()),
                )
                .with_detail("host", s.host.clone()),
            ));
        }
        self.transfer("upload", &s.host, &local, &s.dest, s.timeout_ms, None)
    }

    pub(super) fn download(&mut self, s: &Download) -> StepResult {
        let rel = format!("remote-artifacts/{}/{}", slug(&s.host), s.dest);
        let local = self.dir.join(&rel);
        self.transfer("download", &s.host, &local, &s.src, s.timeout_ms, None)
            .map(|mut d| {
                d.insert("file".into(), json!(rel));
                d
            })
    }

    /// One verified copy, recorded in transfer_ledger.jsonl; `bundle` names the bundle a
    /// stage copies (the line then has no test or step).
    pub(super) fn transfer(
        &mut self,
        direction: &str,
        host: &str,
        local: &Path,
        remote: &str,
        timeout_ms: u64,
        bundle: Option<&str>,
    ) -> StepResult {
        let cancel = self.cancel.clone();
        let started_at = now();
        let timeout = Duration::from_millis(timeout_ms);
        let h = self.host(host)?;
        let chain = h.chain().describe();
        let result = if direction == "upload" {
            h.upload(local, remote, timeout, &cancel)
        } else {
            h.download(remote, local, timeout, &cancel)
        };
        let shown = match local.strip_prefix(&self.dir) {
            Ok(p) => p.display().to_string(),
            Err(_) => local.display().to_string(),
        };
        let mut entry = json!({
            "direction": direction,
            "host": host,
            "chain": chain,
            "local": shown,
            "remote": remote,
            "test_name": bundle.is_none().then_some(&self.current_test),
            "step_index": bundle.is_none().then_some(self.current_step),
            "bundle": bundle,
            "attempt": self.journal.attempt,
            "started_at": started_at,
            "finished_at": now(),
        });
        let outcome = match &result {
            Ok(t) => {
                for (k, v) in [
                    ("size_bytes", json!(t.bytes)),
                    ("local_sha256", json!(t.local_sha256)),
                    ("remote_sha256", json!(t.remote_sha256)),
                    ("verified", json!(t.local_sha256 == t.remote_sha256)),
                    ("duration_s", json!(round3(t.duration.as_secs_f64()))),
                ] {
                    entry[k] = v;
                }
                Ok(())
            }
            Err(e) => {
                entry["verified"] = json!(false);
                entry["error"] = json!(e.message);
                entry["failed_at"] = json!(e.at);
                Err(ssh_failure(host, &chain, e))
            }
        };
        if self.hosts.transfers.is_none() {
            self.hosts.transfers = Ledger::open(&self.dir.join("transfer_ledger.jsonl")).ok();
        }
        if let Some(l) = &mut self.hosts.transfers {
            let _ = l.append(&entry);
            let _ = l.flush_buffer();
        }
        outcome?;
        let mut data = Map::new();
        data.insert("host".into(), json!(host));
        if let Some(v) = entry.get("size_bytes") {
            data.insert("size_bytes".into(), v.clone());
        }
        if let Some(v) = entry.get("local_sha256") {
            data.insert("sha256".into(), v.clone());
        }
        if let Some(v) = entry.get("remote_sha256") {
            data.insert("remote_sha256".into(), v.clone());
        }
        Ok(data)
    }
}

fn read_capped(p: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(p) {
        let _ = f.take(EXPECT_READ_CAP).read_to_end(&mut buf);
    }
    buf
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn tail(p: &Path) -> String {
    let text = String::from_utf8_lossy(&read_capped(p)).trim().to_string();
    let start = text
        .char_indices()
        .rev()
        .nth(TAIL)
        .map(|(i, _)| i)
        .unwrap_or(0);
    let t = &text[start..];
    if t.is_empty() {
        "(empty)".to_string()
    } else {
        t.to_string()
    }
}
