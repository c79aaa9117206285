//! [`RemoteHost`] over the system OpenSSH client: a generated ssh_config (see `chain.rs`)
//! in a private directory, one ControlMaster connection per host kept as a child process,
//! and every command, copy and kill multiplexed over it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use hilt_model::bench::Host;

use super::chain::{Chain, TARGET};
use super::child::{self, Waited};
use super::diagnose;
use super::{
    ExecOutcome, RemoteCommand, RemoteHost, RemoteProgram, SshError, SshErrorKind, Transfer,
    shell_quote,
};
use crate::CancelToken;
use crate::process::capture::Capture;

/// The variable naming the password variable for `hilt`'s askpass mode.
pub const ASKPASS_VAR: &str = "HILT_ASKPASS_ENV";
/// Time allowed for killing a remote process group after a timeout or cancel.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

static SEQ: AtomicU64 = AtomicU64::new(0);

pub struct SystemSsh {
    name: String,
    chain: Chain,
    /// Private (0700) directory: ssh_config, control socket, scratch files.
    dir: tempfile::TempDir,
    config: PathBuf,
    control: PathBuf,
    master: Option<Child>,
    password_env: Option<String>,
}

impl SystemSsh {
    pub fn new(name: &str, _host: &Host, chain: Chain) -> Result<SystemSsh, SshError> {
        let local = |m: String| SshError::new(SshErrorKind::Local, None, m);
        let password_env = chain
            .password_env()
            .map_err(|e| SshError::new(SshErrorKind::Auth, Some(e.at.clone()), e.to_string()))?
            .map(str::to_string);
        if let Some(var) = &password_env
            && std::env::var_os(var).is_none()
        {
            let at = chain
                .endpoints
                .iter()
                .find(|e| matches!(&e.auth, super::chain::Auth::PasswordEnv(v) if v == var))
                .map(|e| e.label.clone());
            return Err(SshError::new(
                SshErrorKind::Auth,
                at.clone(),
                format!(
                    "{} logs in with password_env but the variable `{var}` is not set",
                    at.unwrap_or_default()
                ),
            ));
        }
        // Short: a control socket path must fit in sun_path (108 bytes).
        let tmp = std::env::temp_dir();
        let tmp = if tmp.as_os_str().len() > 60 {
            PathBuf::from("/tmp")
        } else {
            tmp
        };
        let dir = tempfile::Builder::new()
            .prefix("hilt-ssh-")
            .tempdir_in(tmp)
            .map_err(|e| local(format!("cannot create a private directory for ssh: {e}")))?;
        let control = dir.path().join("cm");
        let config = dir.path().join("ssh_config");
        let text = chain
            .ssh_config(&control)
            .map_err(|e| SshError::new(SshErrorKind::Local, Some(e.at.clone()), e.to_string()))?;
        std::fs::write(&config, text)
            .map_err(|e| local(format!("cannot write {}: {e}", config.display())))?;
        Ok(SystemSsh {
            name: name.to_string(),
            chain,
            dir,
            config,
            control,
            master: None,
            password_env,
        })
    }

    /// The generated ssh_config (for evidence; it holds no secret).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(&self.config);
        self.ssh_env(&mut c);
        c
    }

    /// The master connection outlives nothing: under `setpriv --pdeathsig KILL` (when
    /// present) it dies with the hilt that started it, even a SIGKILLed one, instead of
    /// holding its sessions on every hop open until the network drops them.
    fn ssh_master(&self) -> Command {
        let mut c = match crate::process::which("setpriv") {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--", "ssh"]);
                c
            }
            None => Command::new("ssh"),
        };
        c.arg("-F").arg(&self.config);
        self.ssh_env(&mut c);
        c
    }

    fn ssh_env(&self, c: &mut Command) {
        if let Some(var) = &self.password_env {
            match std::env::current_exe() {
                Ok(exe) => {
                    c.env("SSH_ASKPASS", exe);
                }
                Err(_) => {
                    c.env("SSH_ASKPASS", "hilt");
                }
            }
            c.env("SSH_ASKPASS_REQUIRE", "force").env(ASKPASS_VAR, var);
        }
    }

    fn spawn_err(e: std::io::Error) -> SshError {
        SshError::new(
            SshErrorKind::Local,
            None,
            format!(
                "cannot start ssh: {e}; help: install the OpenSSH client (package openssh-client)"
            ),
        )
    }

    fn master_alive(&mut self) -> bool {
        match &mut self.master {
            Some(m) => matches!(m.try_wait(), Ok(None)) && self.control.exists(),
            None => false,
        }
    }

    /// One attempt at the master connection.
    fn start_master(&mut self, cancel: &CancelToken) -> Result<(), SshError> {
        let err_path = self.dir.path().join("master.stderr");
        let err = File::create(&err_path).map_err(|e| {
            SshError::new(
                SshErrorKind::Local,
                None,
                format!("cannot create {}: {e}", err_path.display()),
            )
        })?;
        let mut cmd = self.ssh_master();
        cmd.args(["-M", "-N", "-o", "ControlPersist=no", TARGET])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        let mut m = child::spawn(&mut cmd).map_err(Self::spawn_err)?;
        let n = self.chain.endpoints.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(self.chain.connect_timeout_s * n + 10);
        loop {
            if self.control.exists() {
                self.master = Some(m);
                return Ok(());
            }
            if let Ok(Some(_)) = m.try_wait() {
                break;
            }
            if Instant::now() >= deadline {
                child::terminate(&mut m);
                break;
            }
            if cancel.wait_timeout(Duration::from_millis(10)) {
                child::terminate(&mut m);
                return Err(SshError::new(
                    SshErrorKind::Cancelled,
                    None,
                    "cancelled while connecting",
                ));
            }
        }
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        Err(self.diagnose(&stderr, cancel))
    }

    /// Finds the first endpoint of the chain that fails on its own.
    fn diagnose(&self, stderr: &str, cancel: &CancelToken) -> SshError {
        for i in 0..self.chain.endpoints.len() {
            let alias = self.chain.endpoints[i].alias.clone();
            let mut cmd = self.ssh();
            cmd.args(["-o", "ControlPath=none", &alias, "true"]);
            let out = child::output(
                &mut cmd,
                Stdio::null(),
                self.dir.path(),
                diagnose::probe_timeout(&self.chain, i),
                cancel,
            );
            match out {
                Ok(o) if o.status.is_some_and(|s| s.success()) => continue,
                Ok(o) if o.cancelled => {
                    return SshError::new(
                        SshErrorKind::Cancelled,
                        None,
                        "cancelled while connecting",
                    );
                }
                Ok(o) => {
                    let text = String::from_utf8_lossy(&o.stderr).to_string();
                    let text = if o.status.is_none() {
                        format!(
                            "{text}no answer within {:?}",
                            diagnose::probe_timeout(&self.chain, i)
                        )
                    } else {
                        text
                    };
                    return diagnose::error_at(&self.chain, i, &text);
                }
                Err(e) => return Self::spawn_err(e),
            }
        }
        let kind = diagnose::kind_of(stderr);
        SshError::new(
            kind,
            None,
            format!(
                "connecting to host `{}` failed, but every endpoint answered when probed alone: {}",
                self.name,
                diagnose::summary(stderr)
            ),
        )
    }

    /// Kills the remote process group recorded in `pidfile` (TERM, up to 2 s, KILL).
    fn kill_remote(&mut self, pidfile: &str) -> bool {
        // `kill -SIG -PGID` without `--`: dash's kill does not accept `--`.
        let script = format!(
            "f={pf}; [ -f \"$f\" ] || exit 0; p=$(cat \"$f\"); [ -n \"$p\" ] || exit 0; \
             kill -TERM -\"$p\" 2>/dev/null; i=0; \
             while kill -0 -\"$p\" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; \
             kill -KILL -\"$p\" 2>/dev/null; i=0; \
             while kill -0 -\"$p\" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; \
             rm -f \"$f\"; ! kill -0 -\"$p\" 2>/dev/null",
            pf = shell_quote(pidfile)
        );
        let mut cmd = self.ssh();
        cmd.args([
            "-T",
            TARGET,
            "--",
            &format!("exec sh -c {}", shell_quote(&script)),
        ]);
        // Runs even when the step was cancelled: a fresh token.
        child::output(
            &mut cmd,
            Stdio::null(),
            self.dir.path(),
            KILL_TIMEOUT,
            &CancelToken::new(),
        )
        .is_ok_and(|o| o.status.is_some_and(|s| s.success()))
    }

    /// Runs a short remote shell script with `args`; stdin from `stdin`.
    fn script(
        &mut self,
        script: &str,
        args: &[&str],
        stdin: Stdio,
        timeout: Duration,
        cancel: &CancelToken,
    ) -> Result<child::Output, SshError> {
        let mut remote = format!("exec sh -c {} sh", shell_quote(script));
        for a in args {
            remote.push(' ');
            remote.push_str(&shell_quote(a));
        }
        let mut cmd = self.ssh();
        cmd.args(["-T", TARGET, "--", &remote]);
        let out = child::output(&mut cmd, stdin, self.dir.path(), timeout, cancel)
            .map_err(Self::spawn_err)?;
        if out.cancelled {
            return Err(SshError::new(SshErrorKind::Cancelled, None, "cancelled"));
        }
        if out.status.is_none() {
            return Err(SshError::new(
                SshErrorKind::Timeout,
                Some(self.name.clone()),
                format!("no answer from host `{}` within {timeout:?}", self.name),
            ));
        }
        self.check_connection(&out, cancel)?;
        Ok(out)
    }

    /// Exit status 255 with the master gone means the connection broke.
    fn check_connection(
        &mut self,
        out: &child::Output,
        cancel: &CancelToken,
    ) -> Result<(), SshError> {
        if out.status.and_then(|s| s.code()) == Some(255) && !self.master_alive() {
            self.master = None;
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            return Err(self.diagnose(&stderr, cancel));
        }
        Ok(())
    }
}

fn transfer_err(message: String, at: &str) -> SshError {
    SshError::new(SshErrorKind::Transfer, Some(at.to_string()), message)
}

/// `wc -c` then `sha256sum` output: size and hex digest.
fn parse_size_and_sum(stdout: &[u8]) -> Option<(u64, String)> {
    let text = String::from_utf8_lossy(stdout);
    let mut lines = text.lines();
    let size = lines.next()?.trim().parse().ok()?;
    let sum = lines
        .next()?
        .split_whitespace()
        .next()?
        .to_ascii_lowercase();
    (sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit())).then_some((size, sum))
}

/// Copies `file` into `sink` while hashing it: size and SHA-256 of what was sent.
fn feed(file: File, mut sink: std::io::PipeWriter) -> std::io::Result<(u64, String)> {
    use std::io::Write;
    let mut f = BufReader::with_capacity(256 * 1024, file);
    let mut h = Sha256::new();
    let mut n = 0u64;
    loop {
        let buf = f.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        h.update(buf);
        sink.write_all(buf)?;
        n += buf.len() as u64;
        let len = buf.len();
        f.consume(len);
    }
    Ok((n, hex::encode(h.finalize())))
}

/// Size and SHA-256 of a local file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = BufReader::with_capacity(256 * 1024, File::open(path)?);
    let mut h = Sha256::new();
    let mut n = 0u64;
    loop {
        let buf = f.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        h.update(buf);
        n += buf.len() as u64;
        let len = buf.len();
        f.consume(len);
    }
    Ok((n, hex::encode(h.finalize())))
}

impl RemoteHost for SystemSsh {
    fn name(&self) -> &str {
        &self.name
    }

    fn chain(&self) -> &Chain {
        &self.chain
    }

    fn connect(&mut self, cancel: &CancelToken) -> Result<(), SshError> {
        if self.master_alive() {
            return Ok(());
        }
        if let Some(mut m) = self.master.take() {
            child::terminate(&mut m);
        }
        let _ = std::fs::remove_file(&self.control);
        let mut last = None;
        for attempt in 1..=self.chain.attempts {
            match self.start_master(cancel) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind == SshErrorKind::Unreachable && attempt < self.chain.attempts => {
                    last = Some(e);
                    if cancel.wait_timeout(Duration::from_millis(self.chain.backoff_ms)) {
                        return Err(SshError::new(
                            SshErrorKind::Cancelled,
                            None,
                            "cancelled while connecting",
                        ));
                    }
                }
                Err(mut e) => {
                    if attempt > 1 {
                        e.message = format!("{} (after {attempt} attempts)", e.message);
                    }
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| SshError::new(SshErrorKind::Unreachable, None, "not connected")))
    }

    fn exec(&mut self, cmd: &RemoteCommand, cancel: &CancelToken) -> Result<ExecOutcome, SshError> {
        self.connect(cancel)?;
        let local = |m: String| SshError::new(SshErrorKind::Local, None, m);
        let token = format!(
            "hilt-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            jiff::Timestamp::now().as_nanosecond()
        );
        let pidfile = format!("/tmp/{token}.pid");
        let mut body = String::new();
        if let Some(cwd) = &cmd.cwd {
            body.push_str(&format!("cd {} && ", shell_quote(cwd)));
        }
        for (k, v) in &cmd.env {
            body.push_str(&format!("{k}={} ", shell_quote(v)));
        }
        match &cmd.what {
            RemoteProgram::Argv(argv) => {
                body.push_str("exec");
                for a in argv {
                    body.push(' ');
                    body.push_str(&shell_quote(a));
                }
            }
            RemoteProgram::Script(s) => body.push_str(&format!("exec sh -c {}", shell_quote(s))),
        }
        // sshd starts a command without a terminal in a new session, so the shell's pid is
        // the process group of everything the command starts: that group is what a timeout
        // or cancel kills.
        let inner = format!(
            "echo $$ > {pf}; ({body}); rc=$?; rm -f {pf}; exit $rc",
            pf = shell_quote(&pidfile)
        );
        let remote = format!("exec sh -c {}", shell_quote(&inner));
        let open = |p: &Path| {
            File::create(p).map_err(|e| local(format!("cannot create {}: {e}", p.display())))
        };
        let pipe = || std::io::pipe().map_err(|e| local(format!("cannot create a pipe: {e}")));
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let mut c = self.ssh();
        c.args(["-T", TARGET, "--", &remote])
            .stdin(Stdio::null())
            .stdout(out_w)
            .stderr(err_w);
        let started = Instant::now();
        let spawned = child::spawn(&mut c);
        // Close the parent's write ends so the readers see end-of-file.
        drop(c);
        let child = spawned.map_err(Self::spawn_err)?;
        // Each stream is capped (the rest is read and discarded, so ssh never blocks).
        let mut out_cap = Capture::start(out_r, open(&cmd.stdout)?, cmd.max_output_bytes);
        let mut err_cap = Capture::start(err_r, open(&cmd.stderr)?, cmd.max_output_bytes);
        let waited = child::wait(child, started + cmd.timeout, cancel)
            .map_err(|e| local(format!("cannot wait for ssh: {e}")))?;
        let (exit_code, timed_out, cancelled, remote_killed) = match waited {
            Waited::Exited(status) => (status.code(), false, false, false),
            Waited::TimedOut(mut c) => {
                let killed = self.kill_remote(&pidfile);
                child::terminate(&mut c);
                (None, true, false, killed)
            }
            Waited::Cancelled(mut c) => {
                let killed = self.kill_remote(&pidfile);
                child::terminate(&mut c);
                (None, false, true, killed)
            }
        };
        out_cap.wait_eof(Duration::from_secs(2));
        err_cap.wait_eof(Duration::from_secs(2));
        let (out, err) = (out_cap.stop(), err_cap.stop());
        if exit_code == Some(255) && !self.master_alive() {
            self.master = None;
            let stderr = std::fs::read_to_string(&cmd.stderr).unwrap_or_default();
            return Err(self.diagnose(&stderr, cancel));
        }
        Ok(ExecOutcome {
            exit_code,
            timed_out,
            cancelled,
            remote_killed,
            duration: started.elapsed(),
            stdout_bytes: out.bytes,
            stderr_bytes: err.bytes,
            output_truncated: out.truncated || err.truncated,
        })
    }

    fn upload(
        &mut self,
        local: &Path,
        remote: &str,
        timeout: Duration,
        cancel: &CancelToken,
    ) -> Result<Transfer, SshError> {
        let name = self.name.clone();
        let file = File::open(local)
            .map_err(|e| transfer_err(format!("cannot read {}: {e}", local.display()), &name))?;
        self.connect(cancel)?;
        let started = Instant::now();
        // The local SHA-256 is taken from the bytes as they are sent: the file is read once,
        // and hashing overlaps the transfer.
        let (reader, writer) = std::io::pipe()
            .map_err(|e| transfer_err(format!("cannot create a pipe: {e}"), &name))?;
        let feeder = std::thread::spawn(move || feed(file, writer));
        let out = self.script(
            "cat > \"$1\" && wc -c < \"$1\" && sha256sum < \"$1\"",
            &[remote],
            Stdio::from(reader),
            timeout,
            cancel,
        );
        // The pipe's reading end is closed once the script returns, so the feeder ends.
        let fed = feeder.join();
        let out = out?;
        if !out.status.is_some_and(|s| s.success()) {
            return Err(transfer_err(
                format!(
                    "writing {remote} on host `{name}` failed: {}",
                    diagnose::summary(&String::from_utf8_lossy(&out.stderr))
                ),
                &name,
            ));
        }
        let (size, local_sum) = match fed {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                return Err(transfer_err(
                    format!("cannot read {}: {e}", local.display()),
                    &name,
                ));
            }
            Err(_) => {
                return Err(transfer_err(
                    format!("reading {} stopped unexpectedly", local.display()),
                    &name,
                ));
            }
        };
        let (rsize, rsum) = parse_size_and_sum(&out.stdout).ok_or_else(|| {
            transfer_err(
                format!("host `{name}` did not report the size and sha256 of {remote} (is sha256sum installed?)"),
                &name,
            )
        })?;
        if rsize != size || rsum != local_sum {
            return Err(transfer_err(
                format!(
                    "upload to {remote} on host `{name}` does not match: local {size} bytes sha256 {local_sum}, remote {rsize} bytes sha256 {rsum}"
                ),
                &name,
            ));
        }
        Ok(Transfer {
            bytes: size,
            local_sha256: local_sum,
            remote_sha256: rsum,
            duration: started.elapsed(),
        })
    }

    fn download(
        &mut self,
        remote: &str,
        local: &Path,
        timeout: Duration,
        cancel: &CancelToken,
    ) -> Result<Transfer, SshError> {
        let name = self.name.clone();
        self.connect(cancel)?;
        let started = Instant::now();
        let out = self.script(
            "wc -c < \"$1\" && sha256sum < \"$1\"",
            &[remote],
            Stdio::null(),
            timeout,
            cancel,
        )?;
        let Some((rsize, rsum)) = out
            .status
            .is_some_and(|s| s.success())
            .then(|| parse_size_and_sum(&out.stdout))
            .flatten()
        else {
            return Err(transfer_err(
                format!(
                    "cannot read {remote} on host `{name}`: {}",
                    diagnose::summary(&String::from_utf8_lossy(&out.stderr))
                ),
                &name,
            ));
        };
        let parent = local.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| transfer_err(format!("cannot create {}: {e}", parent.display()), &name))?;
        let part = tempfile::NamedTempFile::new_in(parent).map_err(|e| {
            transfer_err(format!("cannot write in {}: {e}", parent.display()), &name)
        })?;
        let sink = part.reopen().map_err(|e| {
            transfer_err(format!("cannot write in {}: {e}", parent.display()), &name)
        })?;
        let err_path = self.dir.path().join("download.stderr");
        let err = File::create(&err_path).map_err(|e| {
            transfer_err(format!("cannot create {}: {e}", err_path.display()), &name)
        })?;
        let mut c = self.ssh();
        c.args([
            "-T",
            TARGET,
            "--",
            &format!("exec cat -- {}", shell_quote(remote)),
        ])
        .stdin(Stdio::null())
        .stdout(sink)
        .stderr(err);
        let child = child::spawn(&mut c).map_err(Self::spawn_err)?;
        let rest = timeout.saturating_sub(started.elapsed());
        match child::wait(child, Instant::now() + rest, cancel)
            .map_err(|e| transfer_err(format!("cannot wait for ssh: {e}"), &name))?
        {
            Waited::Exited(s) if s.success() => {}
            Waited::Exited(_) => {
                let mut stderr = String::new();
                let _ = File::open(&err_path).and_then(|mut f| f.read_to_string(&mut stderr));
                return Err(transfer_err(
                    format!(
                        "reading {remote} on host `{name}` failed: {}",
                        diagnose::summary(&stderr)
                    ),
                    &name,
                ));
            }
            Waited::TimedOut(mut c) => {
                child::terminate(&mut c);
                return Err(SshError::new(
                    SshErrorKind::Timeout,
                    Some(name.clone()),
                    format!(
                        "download of {remote} from host `{name}` did not finish within {timeout:?}"
                    ),
                ));
            }
            Waited::Cancelled(mut c) => {
                child::terminate(&mut c);
                return Err(SshError::new(SshErrorKind::Cancelled, None, "cancelled"));
            }
        }
        let (size, local_sum) = sha256_file(part.path()).map_err(|e| {
            transfer_err(
                format!("cannot read back {}: {e}", part.path().display()),
                &name,
            )
        })?;
        if size != rsize || local_sum != rsum {
            return Err(transfer_err(
                format!(
                    "download of {remote} from host `{name}` does not match: remote {rsize} bytes sha256 {rsum}, local {size} bytes sha256 {local_sum}"
                ),
                &name,
            ));
        }
        part.persist(local).map_err(|e| {
            transfer_err(
                format!("cannot write {}: {}", local.display(), e.error),
                &name,
            )
        })?;
        Ok(Transfer {
            bytes: size,
            local_sha256: local_sum,
            remote_sha256: rsum,
            duration: started.elapsed(),
        })
    }

    fn close(&mut self) {
        if let Some(mut m) = self.master.take() {
            child::terminate(&mut m);
        }
    }
}

impl Drop for SystemSsh {
    fn drop(&mut self) {
        self.close();
    }
}
