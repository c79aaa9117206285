//! Readiness checks for `hilt validate --scope` (issue 14): what a run will need from the
//! machines around it, checked without running the suite. `hosts.rs` connects through
//! each host's chain (naming the hop that fails) and probes the remote commands the suite
//! runs; `staging.rs` predicts the suite's copies (local sources, `sha256sum`, the remote
//! directory, whether the host already holds the file); `publish.rs` checks each publish
//! target's repository, remote and `gh`. Every check is one entry of the report; nothing
//! aborts it: an unreachable host or a missing password variable is a failed check.

mod hosts;
mod publish;
mod staging;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use hilt_hw::CancelToken;
use hilt_model::bench::Bench;
use hilt_model::suite::{Step, Suite};

/// Which checks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The bench and suite files themselves (always checked first).
    Config,
    Connectivity,
    Staging,
    Publish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Not checked: not applicable, or something it depends on failed (the detail says).
    Skip,
}

/// One check of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Stable id: `<scope>.<host or target>.<what>`.
    pub id: String,
    pub scope: Scope,
    /// The host (connectivity, staging) or publish target the check concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub status: Status,
    /// A failure of a required check makes `hilt validate` exit non-zero.
    pub required: bool,
    pub detail: String,
    /// What to do when it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn new(
        id: impl Into<String>,
        scope: Scope,
        status: Status,
        detail: impl Into<String>,
    ) -> Check {
        Check {
            id: id.into(),
            scope,
            host: None,
            target: None,
            status,
            required: true,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn host(mut self, h: &str) -> Check {
        self.host = Some(h.to_string());
        self
    }

    pub fn target(mut self, t: &str) -> Check {
        self.target = Some(t.to_string());
        self
    }

    pub fn fix(mut self, f: impl Into<String>) -> Check {
        self.fix = Some(f.into());
        self
    }

    pub fn optional(mut self) -> Check {
        self.required = false;
        self
    }
}

/// What to check and where the files are.
pub struct Inputs<'a> {
    pub bench: &'a Bench,
    pub bench_path: &'a Path,
    pub suite: Option<(&'a Suite, &'a Path)>,
    /// Hosts to check (empty: those the suite uses, or every host without a suite).
    pub hosts: &'a [String],
    pub connectivity: bool,
    pub staging: bool,
    pub publish: bool,
}

fn dir_of(p: &Path) -> PathBuf {
    crate::rundir::absolute(p)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The hosts the checks are about, in bench order; unknown names are failed checks.
fn chosen_hosts(i: &Inputs<'_>, out: &mut Vec<Check>) -> Vec<String> {
    if !i.hosts.is_empty() {
        let mut known = Vec::new();
        for h in i.hosts {
            if i.bench.hosts.contains_key(h) {
                known.push(h.clone());
            } else {
                let names: Vec<&str> = i.bench.hosts.keys().map(String::as_str).collect();
                out.push(
                    Check::new(
                        format!("config.host.{h}"),
                        Scope::Config,
                        Status::Fail,
                        format!("the bench defines no host `{h}`"),
                    )
                    .host(h)
                    .fix(format!(
                        "use one of: {}",
                        if names.is_empty() {
                            "(none)".into()
                        } else {
                            names.join(", ")
                        }
                    )),
                );
            }
        }
        return known;
    }
    match i.suite {
        Some((s, _)) => {
            let used: BTreeSet<&str> = steps(s).filter_map(|(_, _, st)| remote_host(st)).collect();
            i.bench
                .hosts
                .keys()
                .filter(|h| used.contains(h.as_str()))
                .cloned()
                .collect()
        }
        None => i.bench.hosts.keys().cloned().collect(),
    }
}

/// Every step with its test and step index.
pub(crate) fn steps(s: &Suite) -> impl Iterator<Item = (usize, usize, &Step)> {
    s.tests
        .iter()
        .enumerate()
        .flat_map(|(ti, t)| t.steps.iter().enumerate().map(move |(si, st)| (ti, si, st)))
}

fn remote_host(s: &Step) -> Option<&str> {
    match s {
        Step::SshExec(x) => Some(&x.host),
        Step::Upload(x) => Some(&x.host),
        Step::Download(x) => Some(&x.host),
        _ => None,
    }
}

/// Runs the asked scopes and returns every check, in order.
pub fn check(i: &Inputs<'_>, cancel: &CancelToken) -> Vec<Check> {
    let mut out = Vec::new();
    let bench_dir = dir_of(i.bench_path);
    let hosts = chosen_hosts(i, &mut out);
    let scratch = tempfile::Builder::new().prefix("hilt-validate-").tempdir();
    let scratch = match scratch {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::new(
                "config.scratch",
                Scope::Config,
                Status::Fail,
                format!("cannot create a scratch directory: {e}"),
            ));
            return out;
        }
    };
    if (i.connectivity || i.staging) && hosts.is_empty() && i.hosts.is_empty() {
        let why = if i.bench.hosts.is_empty() {
            "the bench has no hosts"
        } else {
            "the suite uses no host"
        };
        let scope = if i.connectivity {
            Scope::Connectivity
        } else {
            Scope::Staging
        };
        out.push(Check::new(
            format!("{}.hosts", scope_name(scope)),
            scope,
            Status::Skip,
            why,
        ));
    }
    for h in &hosts {
        let mut session = hosts::Session::open(i.bench, h, &bench_dir, scratch.path());
        if i.connectivity {
            out.extend(session.connectivity(i.suite.map(|(s, _)| s), cancel));
        }
        if i.staging {
            match i.suite {
                Some((s, p)) => out.extend(staging::staging(&mut session, s, &dir_of(p), cancel)),
                None => out.push(
                    Check::new(
                        format!("staging.{h}"),
                        Scope::Staging,
                        Status::Skip,
                        "staging is predicted from a suite's upload and download steps",
                    )
                    .host(h)
                    .fix("pass --suite"),
                ),
            }
        }
        session.close();
    }
    if i.publish {
        out.extend(publish::publish(i.bench, i.bench_path, i.suite, cancel));
    }
    out
}

pub fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Config => "config",
        Scope::Connectivity => "connectivity",
        Scope::Staging => "staging",
        Scope::Publish => "publish",
    }
}
