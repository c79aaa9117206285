//! Connectivity of one host: its chain resolves, every credential it names is there, each
//! endpoint is reached in order (the first that fails is named, those after it are not
//! tried), a command runs, and the programs the suite's `ssh_exec` steps start exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hilt_hw::CancelToken;
use hilt_hw::ssh::{
    self, Auth, Chain, RemoteCommand, RemoteHost, RemoteProgram, SshErrorKind, shell_quote,
};
use hilt_model::bench::Bench;
use hilt_model::suite::{Step, Suite};

use super::{Check, Scope, Status};

const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// One host being checked: its chain, and its connection once made.
pub(super) struct Session<'a> {
    pub name: String,
    bench: &'a Bench,
    bench_dir: PathBuf,
    scratch: PathBuf,
    chain: Result<Chain, String>,
    host: Option<Box<dyn RemoteHost>>,
    /// Why the host cannot be used (set once connecting failed or was not tried).
    pub down: Option<String>,
    seq: u32,
}

fn fix_for(kind: SshErrorKind, what: &str, known_hosts: &Path) -> String {
    match kind {
        SshErrorKind::Unreachable => format!(
            "check that {what} is up and reachable from the previous hop (address, port, firewall, AllowTcpForwarding on the previous hop)"
        ),
        SshErrorKind::Auth => format!(
            "check the credentials {what} logs in with (its auth_ref) and that the user may log in there"
        ),
        SshErrorKind::HostKey => format!(
            "verify {what}'s host key out of band, then replace its line in {} (ssh-keyscan -p PORT HOST)",
            known_hosts.display()
        ),
        SshErrorKind::Timeout => {
            format!("{what} answered too slowly: check the network, or raise connect_timeout_s")
        }
        SshErrorKind::Local => "install the OpenSSH client (package openssh-client)".into(),
        SshErrorKind::Transfer | SshErrorKind::Cancelled => "run the check again".into(),
    }
}

impl<'a> Session<'a> {
    pub fn open(bench: &'a Bench, name: &str, bench_dir: &Path, scratch: &Path) -> Session<'a> {
        let chain =
            Chain::resolve(bench, name, &bench.hosts[name], bench_dir).map_err(|e| e.to_string());
        Session {
            name: name.to_string(),
            bench,
            bench_dir: bench_dir.to_path_buf(),
            scratch: scratch.to_path_buf(),
            chain,
            host: None,
            down: None,
            seq: 0,
        }
    }

    fn check(&self, what: &str, status: Status, detail: impl Into<String>) -> Check {
        Check::new(
            format!("connectivity.{}.{what}", self.name),
            Scope::Connectivity,
            status,
            detail,
        )
        .host(&self.name)
    }

    /// Credentials and known_hosts, then each endpoint in order, then a command.
    pub fn connectivity(&mut self, suite: Option<&Suite>, cancel: &CancelToken) -> Vec<Check> {
        let mut out = Vec::new();
        let chain = match &self.chain {
            Ok(c) => c.clone(),
            Err(e) => {
                out.push(self.check("chain", Status::Fail, e.clone()).fix("fix the host's auth_ref and hops in the bench (hilt validate --bench shows where)"));
                self.down = Some(format!("its chain does not resolve: {e}"));
                return out;
            }
        };
        let mut ready = true;
        for e in &chain.endpoints {
            let id = format!("auth.{}", e.label);
            let c = match &e.auth {
                Auth::KeyFile(p) if p.is_file() => self.check(&id, Status::Pass, format!("{} logs in with key file {}", e.describe(), p.display())),
                Auth::KeyFile(p) => self
                    .check(&id, Status::Fail, format!("{} logs in with key file {}, which does not exist", e.describe(), p.display()))
                    .fix("create the key (ssh-keygen) or fix the key_file path of its auth_ref"),
                Auth::Agent => match std::env::var_os("SSH_AUTH_SOCK") {
                    Some(s) if Path::new(&s).exists() => self.check(&id, Status::Pass, format!("{} logs in with the ssh-agent", e.describe())),
                    _ => self
                        .check(&id, Status::Fail, format!("{} logs in with the ssh-agent, but SSH_AUTH_SOCK names no agent socket", e.describe()))
                        .fix("start ssh-agent, `ssh-add` the key, and run hilt in that environment"),
                },
                Auth::PasswordEnv(v) if std::env::var_os(v).is_some() => {
                    self.check(&id, Status::Pass, format!("{} logs in with the password in ${v} (set)", e.describe()))
                }
                Auth::PasswordEnv(v) => self
                    .check(&id, Status::Fail, format!("{} logs in with password_env but the variable `{v}` is not set", e.describe()))
                    .fix(format!("export {v}=… (the password) in the environment hilt runs in")),
            };
            ready &= c.status == Status::Pass;
            out.push(c);
        }
        if let Err(e) = chain.password_env() {
            out.push(
                self.check("auth.password_env", Status::Fail, e.to_string())
                    .fix("use one password variable per chain (one auth_ref)"),
            );
            ready = false;
        }
        if chain.known_hosts.is_file() {
            out.push(self.check(
                "known_hosts",
                Status::Pass,
                format!("known_hosts {}", chain.known_hosts.display()),
            ));
        } else {
            out.push(
                self.check("known_hosts", Status::Fail, format!("known_hosts {} does not exist", chain.known_hosts.display()))
                    .fix("write the host keys of the host and every hop there (ssh-keyscan -p PORT HOST >> FILE, after verifying them)"),
            );
            ready = false;
        }
        if !ready {
            for e in &chain.endpoints {
                out.push(self.check(
                    &format!("reach.{}", e.label),
                    Status::Skip,
                    format!(
                        "{}: not tried, a credential or known_hosts is missing",
                        e.describe()
                    ),
                ));
            }
            out.push(self.check("exec", Status::Skip, "not tried: the host was not reached"));
            self.down = Some("a credential or known_hosts is missing".into());
            out.extend(self.commands(suite, cancel));
            return out;
        }
        let opened = ssh::open(self.bench, &self.name, &self.bench_dir)
            .and_then(|mut h| h.connect(cancel).map(|_| h));
        let last = chain.endpoints.len() - 1;
        match opened {
            Ok(h) => {
                self.host = Some(h);
                for (i, e) in chain.endpoints.iter().enumerate() {
                    let role = if i == last { "host" } else { "jump hop" };
                    out.push(self.check(
                        &format!("reach.{}", e.label),
                        Status::Pass,
                        format!("{role} {} reached", e.describe()),
                    ));
                }
            }
            Err(err) => {
                let failed = err
                    .at
                    .as_ref()
                    .and_then(|at| chain.endpoints.iter().position(|e| &e.label == at))
                    .unwrap_or(last);
                for (i, e) in chain.endpoints.iter().enumerate() {
                    let role = if i == last { "host" } else { "jump hop" };
                    let c = if i < failed {
                        self.check(
                            &format!("reach.{}", e.label),
                            Status::Pass,
                            format!("{role} {} reached", e.describe()),
                        )
                    } else if i == failed {
                        self.check(
                            &format!("reach.{}", e.label),
                            Status::Fail,
                            err.message.clone(),
                        )
                        .fix(fix_for(
                            err.kind,
                            &format!("{role} {}", e.describe()),
                            &chain.known_hosts,
                        ))
                    } else {
                        self.check(
                            &format!("reach.{}", e.label),
                            Status::Skip,
                            format!(
                                "{role} {}: not tried, {} failed",
                                e.describe(),
                                chain.endpoints[failed].label
                            ),
                        )
                    };
                    out.push(c);
                }
                self.down = Some(format!(
                    "{} failed: {}",
                    chain.endpoints[failed].label, err.message
                ));
            }
        }
        out.push(match self.run("true", cancel) {
            Ok((Some(0), _)) => self.check("exec", Status::Pass, "`true` ran on the host"),
            Ok((code, _)) => self
                .check("exec", Status::Fail, format!("`true` ended with {code:?}"))
                .fix("check the login shell of the user on the host"),
            Err(e) => self.check("exec", Status::Skip, format!("not tried: {e}")),
        });
        out.extend(self.commands(suite, cancel));
        out
    }

    /// Connects unless connected or known to be down.
    fn ensure(&mut self, cancel: &CancelToken) {
        if self.host.is_some() || self.down.is_some() {
            return;
        }
        match ssh::open(self.bench, &self.name, &self.bench_dir)
            .and_then(|mut h| h.connect(cancel).map(|_| h))
        {
            Ok(h) => self.host = Some(h),
            Err(e) => {
                self.down = Some(format!(
                    "{}: {}",
                    e.at.unwrap_or_else(|| self.name.clone()),
                    e.message
                ))
            }
        }
    }

    /// Runs a shell script on the host (connecting first): exit code and stdout.
    pub fn run(
        &mut self,
        script: &str,
        cancel: &CancelToken,
    ) -> Result<(Option<i32>, String), String> {
        self.ensure(cancel);
        if let Some(d) = &self.down {
            return Err(format!("host {} is not reachable ({d})", self.name));
        }
        let Some(h) = self.host.as_mut() else {
            return Err(format!("host {} was not connected", self.name));
        };
        self.seq += 1;
        let stdout = self
            .scratch
            .join(format!("{}-{}.stdout", self.name, self.seq));
        let stderr = self
            .scratch
            .join(format!("{}-{}.stderr", self.name, self.seq));
        let out = h
            .exec(
                &RemoteCommand {
                    what: RemoteProgram::Script(script.to_string()),
                    cwd: None,
                    env: Vec::new(),
                    timeout: PROBE_TIMEOUT,
                    stdout: stdout.clone(),
                    stderr,
                    max_output_bytes: 1024 * 1024,
                },
                cancel,
            )
            .map_err(|e| e.message)?;
        if out.timed_out {
            return Err(format!("no answer within {PROBE_TIMEOUT:?}"));
        }
        Ok((
            out.exit_code,
            std::fs::read_to_string(&stdout).unwrap_or_default(),
        ))
    }

    /// Looks `names` up on the host with `command -v`: `(name, Some(path) | None)`.
    pub fn which(
        &mut self,
        names: &[String],
        cancel: &CancelToken,
    ) -> Result<Vec<(String, Option<String>)>, String> {
        let mut script = String::from("for c in");
        for n in names {
            script.push(' ');
            script.push_str(&shell_quote(n));
        }
        script.push_str(
            "; do p=$(command -v \"$c\" 2>/dev/null) && echo \"ok $p\" || echo missing; done",
        );
        let (_, text) = self.run(&script, cancel)?;
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != names.len() {
            return Err(format!("unexpected answer to `command -v`: {text:?}"));
        }
        Ok(names
            .iter()
            .zip(lines)
            .map(|(n, l)| (n.clone(), l.strip_prefix("ok ").map(str::to_string)))
            .collect())
    }

    /// The programs (argv[0]) of the suite's `ssh_exec` steps on this host.
    fn commands(&mut self, suite: Option<&Suite>, cancel: &CancelToken) -> Vec<Check> {
        let Some(s) = suite else { return Vec::new() };
        let names: BTreeSet<String> = super::steps(s)
            .filter_map(|(_, _, st)| match st {
                Step::SshExec(x) if x.host == self.name => {
                    x.argv.as_ref().and_then(|a| a.first().cloned())
                }
                _ => None,
            })
            .collect();
        let names: Vec<String> = names.into_iter().collect();
        if names.is_empty() {
            return Vec::new();
        }
        match self.which(&names, cancel) {
            Ok(found) => found
                .into_iter()
                .map(|(n, p)| match p {
                    Some(p) => self.check(
                        &format!("command.{n}"),
                        Status::Pass,
                        format!("`{n}` is {p} on {}", self.name),
                    ),
                    None => self
                        .check(
                            &format!("command.{n}"),
                            Status::Fail,
                            format!(
                                "`{n}` (run by an ssh_exec step) is not found on {}",
                                self.name
                            ),
                        )
                        .fix(format!(
                            "install `{n}` on {} or fix the step's argv",
                            self.name
                        )),
                })
                .collect(),
            Err(e) => names
                .iter()
                .map(|n| {
                    self.check(
                        &format!("command.{n}"),
                        Status::Skip,
                        format!("not checked: {e}"),
                    )
                })
                .collect(),
        }
    }

    pub fn close(&mut self) {
        if let Some(h) = self.host.as_mut() {
            h.close();
        }
    }
}
