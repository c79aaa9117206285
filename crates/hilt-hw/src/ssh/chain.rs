//! A host's chain resolved for OpenSSH: every hop and the host with absolute credential
//! paths, and the `ssh_config` that describes them (ProxyJump from each hop to the next).
//! Options go in the file, not on the command line: `-o` options do not reach the ssh
//! processes ProxyJump starts for the hops, `-F` does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hilt_model::bench::{AuthRef, Bench, Host};

/// The ssh_config alias of the host itself.
pub const TARGET: &str = "hilt-target";

/// How one endpoint logs in, with paths made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    KeyFile(PathBuf),
    Agent,
    /// The NAME of the variable holding the password, never the password.
    PasswordEnv(String),
}

/// One hop of the chain, or the host itself (the last endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The `Host` alias in the generated ssh_config.
    pub alias: String,
    /// The name people read: the hop's `name` (or `hopN`), or the host's name.
    pub label: String,
    pub hostname: String,
    pub port: u16,
    pub username: String,
    pub auth: Auth,
}

impl Endpoint {
    /// `label (user@hostname:port)`, for messages and ledgers.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}@{}:{})",
            self.label, self.username, self.hostname, self.port
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The hops in the order they are crossed, then the host.
    pub endpoints: Vec<Endpoint>,
    pub known_hosts: PathBuf,
    pub connect_timeout_s: u64,
    pub attempts: u32,
    pub backoff_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ChainError {
    /// The host or hop label.
    pub at: String,
    pub message: String,
}

fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl Chain {
    pub fn resolve(
        bench: &Bench,
        name: &str,
        host: &Host,
        bench_dir: &Path,
    ) -> Result<Chain, ChainError> {
        let auth = |label: &str, r: &str| -> Result<Auth, ChainError> {
            let err = |message: String| ChainError {
                at: label.to_string(),
                message,
            };
            match bench.auth_refs.get(r) {
                None => Err(err(format!("unknown auth_ref `{r}`"))),
                Some(AuthRef::KeyFile { path }) => Ok(Auth::KeyFile(resolve_path(bench_dir, path))),
                Some(AuthRef::SshAgent {}) => Ok(Auth::Agent),
                Some(AuthRef::PasswordEnv { value }) => Ok(Auth::PasswordEnv(value.clone())),
            }
        };
        let mut endpoints = Vec::new();
        for (i, hop) in host.transport.hops().iter().enumerate() {
            let label = hop.label(i);
            endpoints.push(Endpoint {
                alias: format!("hilt-hop{}", i + 1),
                auth: auth(&label, &hop.auth_ref)?,
                label,
                hostname: hop.hostname.clone(),
                port: hop.port,
                username: hop.username.clone(),
            });
        }
        endpoints.push(Endpoint {
            alias: TARGET.into(),
            label: name.to_string(),
            hostname: host.hostname.clone(),
            port: host.port,
            username: host.username.clone(),
            auth: auth(name, &host.auth_ref)?,
        });
        let known_hosts = host.known_hosts.as_deref().ok_or_else(|| ChainError {
            at: name.to_string(),
            message: "no known_hosts file: host keys are checked strictly".into(),
        })?;
        Ok(Chain {
            endpoints,
            known_hosts: resolve_path(bench_dir, known_hosts),
            connect_timeout_s: host.connect_timeout_s,
            attempts: host.retry.attempts.max(1),
            backoff_ms: host.retry.backoff_ms,
        })
    }

    /// The host itself.
    pub fn target(&self) -> &Endpoint {
        self.endpoints.last().expect("a chain ends with its host")
    }

    /// Every hop's description then the host's, for ledgers.
    pub fn describe(&self) -> Vec<String> {
        self.endpoints.iter().map(Endpoint::describe).collect()
    }

    /// The one password variable the chain uses, if any. Different variables on one chain
    /// are refused: the askpass helper cannot tell the hops' prompts apart.
    pub fn password_env(&self) -> Result<Option<&str>, ChainError> {
        let mut found: Option<(&str, &Endpoint)> = None;
        for e in &self.endpoints {
            if let Auth::PasswordEnv(v) = &e.auth {
                match found {
                    Some((f, _)) if f != v => {
                        return Err(ChainError {
                            at: e.label.clone(),
                            message: format!(
                                "uses password variable `{v}` but an earlier hop uses `{f}`; \
                                 one chain can use one password variable"
                            ),
                        });
                    }
                    _ => found = Some((v, e)),
                }
            }
        }
        Ok(found.map(|(v, _)| v))
    }

    /// The ssh_config for this chain. `control_path` is the ControlMaster socket.
    pub fn ssh_config(&self, control_path: &Path) -> Result<String, ChainError> {
        let q = |label: &str, p: &Path| -> Result<String, ChainError> {
            let s = p.to_string_lossy();
            if s.contains('"') || s.contains('\n') || s.contains('%') {
                return Err(ChainError {
                    at: label.to_string(),
                    message: format!("path {s} contains `\"`, `%` or a line break"),
                });
            }
            Ok(format!("\"{s}\""))
        };
        let mut c =
            String::from("# Generated by hilt for one host; no secrets are written here.\n");
        let mut previous: Option<&str> = None;
        for e in &self.endpoints {
            let _ = writeln!(c, "Host {}", e.alias);
            let _ = writeln!(c, "  HostName {}", e.hostname);
            let _ = writeln!(c, "  Port {}", e.port);
            let _ = writeln!(c, "  User {}", e.username);
            match &e.auth {
                Auth::KeyFile(p) => {
                    let _ = writeln!(c, "  IdentityFile {}", q(&e.label, p)?);
                    c.push_str("  IdentitiesOnly yes\n  IdentityAgent none\n");
                    c.push_str("  PreferredAuthentications publickey\n  BatchMode yes\n");
                }
                Auth::Agent => {
                    c.push_str("  IdentityAgent SSH_AUTH_SOCK\n");
                    c.push_str("  PreferredAuthentications publickey\n  BatchMode yes\n");
                }
                Auth::PasswordEnv(_) => {
                    c.push_str("  PubkeyAuthentication no\n  IdentityAgent none\n");
                    c.push_str("  PreferredAuthentications password,keyboard-interactive\n");
                    c.push_str("  NumberOfPasswordPrompts 1\n  BatchMode no\n");
                }
            }
            if let Some(p) = previous {
                let _ = writeln!(c, "  ProxyJump {p}");
            }
            if e.alias == TARGET {
                // Only the host multiplexes: a hop probed on its own must never reach the
                // host's master connection.
                let _ = writeln!(c, "  ControlPath {}", q("control socket", control_path)?);
            }
            previous = Some(&e.alias);
        }
        c.push_str("Host *\n  ControlPath none\n  ControlMaster no\n");
        c.push_str("  StrictHostKeyChecking yes\n");
        let _ = writeln!(
            c,
            "  UserKnownHostsFile {}",
            q("known_hosts", &self.known_hosts)?
        );
        c.push_str("  GlobalKnownHostsFile /dev/null\n  CheckHostIP no\n  UpdateHostKeys no\n");
        let _ = writeln!(c, "  ConnectTimeout {}", self.connect_timeout_s);
        c.push_str("  ServerAliveInterval 10\n  ServerAliveCountMax 3\n");
        c.push_str("  ForwardAgent no\n  LogLevel ERROR\n");
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(yaml: &str) -> Bench {
        hilt_model::parse_bench(yaml, "bench.yaml", Default::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .value
    }

    const BENCH: &str = "version: 1
bench: {name: b}
auth_refs:
  key: {type: key_file, path: keys/id}
  pw: {type: password_env, value: JUMP_PW}
  pw2: {type: password_env, value: OTHER_PW}
  agent: {type: ssh_agent}
hosts:
  gw:
    hostname: 10.0.0.12
    username: tester
    auth_ref: key
    known_hosts: kh
    transport:
      type: jump_chain
      hops:
        - {name: bastion, hostname: bastion.lab, username: jump, auth_ref: pw}
        - {hostname: inner.lab, port: 2222, username: jump, auth_ref: agent}
";

    #[test]
    fn each_hop_jumps_from_the_previous_with_its_own_credentials() {
        let b = bench(BENCH);
        let c = Chain::resolve(&b, "gw", &b.hosts["gw"], Path::new("/lab")).unwrap();
        assert_eq!(
            c.describe(),
            [
                "bastion (jump@bastion.lab:22)",
                "hop2 (jump@inner.lab:2222)",
                "gw (tester@10.0.0.12:22)"
            ]
        );
        assert_eq!(c.password_env().unwrap(), Some("JUMP_PW"));
        let cfg = c.ssh_config(Path::new("/tmp/x/cm")).unwrap();
        let block = |alias: &str| -> String {
            let start = cfg.find(&format!("Host {alias}\n")).unwrap();
            let rest = &cfg[start + 1..];
            let end = rest.find("\nHost ").map(|e| e + 1).unwrap_or(rest.len());
            rest[..end].to_string()
        };
        let hop1 = block("hilt-hop1");
        assert!(hop1.contains("PreferredAuthentications password"), "{hop1}");
        assert!(!hop1.contains("ProxyJump"), "{hop1}");
        let hop2 = block("hilt-hop2");
        assert!(
            hop2.contains("IdentityAgent SSH_AUTH_SOCK") && hop2.contains("ProxyJump hilt-hop1")
        );
        let target = block("hilt-target");
        assert!(
            target.contains("IdentityFile \"/lab/keys/id\"")
                && target.contains("ProxyJump hilt-hop2")
        );
        assert!(target.contains("ControlPath \"/tmp/x/cm\""));
        assert!(!hop1.contains("ControlPath \"") && !hop2.contains("ControlPath \""));
        assert!(cfg.contains("StrictHostKeyChecking yes"));
        assert!(cfg.contains("UserKnownHostsFile \"/lab/kh\""));
        assert!(
            !cfg.contains("JUMP_PW"),
            "no variable names or secrets in the config"
        );
    }

    #[test]
    fn two_password_variables_on_one_chain_are_refused() {
        let b = bench(&BENCH.replace("auth_ref: agent", "auth_ref: pw2"));
        let c = Chain::resolve(&b, "gw", &b.hosts["gw"], Path::new("/lab")).unwrap();
        let e = c.password_env().unwrap_err();
        assert_eq!(e.at, "hop2");
        assert!(e.message.contains("OTHER_PW") && e.message.contains("JUMP_PW"));
    }
}
