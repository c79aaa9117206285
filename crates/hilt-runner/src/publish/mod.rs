//! Publishing a run (hilt extension, issue 14): each publish target of the bench or suite
//! gets the run directory committed on a deterministic branch of a local git repository
//! (`commit.rs`), optionally pushed (`remote.rs`, never forced) and proposed as a pull
//! request (`gh.rs`). `publish_ledger.json` in the run directory records each target's
//! state and every attempt. Publishing again changes nothing that is already done: the
//! same content on the branch makes no commit, a remote already at the commit gets no
//! push, and a pull request that exists for the branch is reused.

mod commit;
mod gh;
mod git;
mod ledger;
mod prereq;
mod remote;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use hilt_hw::CancelToken;
use hilt_model::bench::Bench;
use hilt_model::publish::{DEFAULT_BRANCH, DEFAULT_PATH, PublishTarget, PublishWhen, expand};
use hilt_model::run::RunStatus;
use hilt_model::suite::Suite;

pub use commit::{AUTHOR_EMAIL, AUTHOR_NAME};
pub use gh::PrState;
pub use git::find_git;
pub use ledger::{Attempt, PublishLedger, TargetRecord, TargetState};
pub use prereq::{Prereq, prerequisites};
pub use remote::RemoteState;

/// The ledger's file name in the run directory. It is not part of the published copy
/// (it records that copy) nor of manifest.json (it changes after the run).
pub const LEDGER_FILE: &str = "publish_ledger.json";

/// A target with its repository path resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTarget {
    pub name: String,
    pub target: PublishTarget,
    /// Absolute path of the repository.
    pub repo: PathBuf,
    /// `bench` or `suite`: the file that declares it.
    pub declared_in: &'static str,
}

/// The bench's targets, then the suite's (a suite target replaces the bench's of the
/// same name). Relative repository paths are taken from the declaring file's directory.
pub fn targets(
    bench: Option<(&Bench, &Path)>,
    suite: Option<(&Suite, &Path)>,
) -> Vec<ResolvedTarget> {
    let mut out: BTreeMap<String, ResolvedTarget> = BTreeMap::new();
    let mut add = |map: &BTreeMap<String, PublishTarget>, file: &Path, declared_in| {
        let base = crate::rundir::absolute(file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (name, t) in map {
            let repo = Path::new(&t.repo);
            let repo = if repo.is_absolute() {
                repo.to_path_buf()
            } else {
                base.join(repo)
            };
            out.insert(
                name.clone(),
                ResolvedTarget {
                    name: name.clone(),
                    target: t.clone(),
                    repo,
                    declared_in,
                },
            );
        }
    };
    if let Some((b, f)) = bench {
        add(&b.publish, f, "bench");
    }
    if let Some((s, f)) = suite {
        add(&s.publish, f, "suite");
    }
    out.into_values().collect()
}

/// What a publish needs to know about the run, read from its directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFacts {
    pub run_id: String,
    pub suite: String,
    pub bench: String,
    pub status: String,
    pub passed: u64,
    pub total: u64,
    /// `finished_at` as Unix seconds: the date of the commit.
    pub finished_unix: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "{} has no readable results.json ({reason}); help: publish a run directory that has finished (or run `hilt runs recover` on it)",
        dir.display()
    )]
    NoResults { dir: PathBuf, reason: String },
    #[error("no publish target named {0}; help: the run's bench and suite declare: {1}")]
    UnknownTarget(String, String),
    #[error(
        "the run's bench and suite declare no publish targets; help: add a `publish:` entry to bench.yaml or suite.yaml (see README, \"Publishing results\")"
    )]
    NoTargets,
    #[error("cannot write {}: {source}", path.display())]
    Ledger {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RunFacts {
    pub fn read(dir: &Path) -> Result<RunFacts, PublishError> {
        let no = |reason: String| PublishError::NoResults {
            dir: dir.to_path_buf(),
            reason,
        };
        let text = std::fs::read(dir.join("results.json")).map_err(|e| no(e.to_string()))?;
        let r: Value = serde_json::from_slice(&text).map_err(|e| no(e.to_string()))?;
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        let manifest_id = std::fs::read(dir.join("run_manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
            .and_then(|v| v["run_id"].as_str().map(str::to_string));
        let dir_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let run_id = r["run_id"]
            .as_str()
            .map(str::to_string)
            .or(manifest_id)
            .filter(|s| !s.is_empty())
            .unwrap_or(dir_name);
        let finished = r["finished_at"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .ok_or_else(|| no("no finished_at: the run has not finished".into()))?;
        Ok(RunFacts {
            run_id,
            suite: s("suite"),
            bench: s("bench"),
            status: s("status"),
            passed: r["summary"]["passed"].as_u64().unwrap_or(0),
            total: r["summary"]["total"].as_u64().unwrap_or(0),
            finished_unix: finished.as_second(),
        })
    }

    /// The deterministic commit message.
    pub fn message(&self, path: &str) -> String {
        format!(
            "hilt: results of run {} ({} on {}): {}, {}/{} passed\n\nSuite: {}\nBench: {}\nRun: {}\nStatus: {}\nPath: {}\n",
            self.run_id,
            self.suite,
            self.bench,
            self.status,
            self.passed,
            self.total,
            self.suite,
            self.bench,
            self.run_id,
            self.status,
            path
        )
    }
}

/// `s` as one safe part of a ref name and a path: letters, digits, `.`, `_`, `-` (others
/// become `-`), no leading or trailing `.`/`-`, never empty.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        // `..` is not allowed in a ref name; runs of `-` read badly.
        if (c == '-' || c == '.') && out.ends_with(c) {
            continue;
        }
        out.push(c);
    }
    let t = out.trim_matches(|c| matches!(c, '-' | '.'));
    let t = t.strip_suffix(".lock").unwrap_or(t);
    if t.is_empty() {
        "run".into()
    } else {
        t.to_string()
    }
}

/// The branch and path of `t` for this run.
pub fn branch_and_path(t: &ResolvedTarget, facts: &RunFacts) -> (String, String) {
    let (s, b, r, n) = (
        slug(&facts.suite),
        slug(&facts.bench),
        slug(&facts.run_id),
        slug(&t.name),
    );
    let branch = expand(
        t.target.branch.as_deref().unwrap_or(DEFAULT_BRANCH),
        &s,
        &b,
        &r,
        &n,
    );
    let path = expand(
        t.target.path.as_deref().unwrap_or(DEFAULT_PATH),
        &s,
        &b,
        &r,
        &n,
    );
    (branch, path)
}

/// Publishes the run in `dir` to `targets` (all of them), updating the ledger after each.
pub fn publish(
    dir: &Path,
    targets: &[ResolvedTarget],
    cancel: &CancelToken,
) -> Result<PublishLedger, PublishError> {
    let facts = RunFacts::read(dir)?;
    let path = dir.join(LEDGER_FILE);
    let mut ledger = PublishLedger::load(&path, &facts.run_id);
    for t in targets {
        let record = ledger::publish_target(dir, t, &facts, ledger.earlier.get(&t.name), cancel);
        ledger.targets.insert(t.name.clone(), record);
        ledger.updated_at = hilt_model::run::now();
        ledger.save(&path).map_err(|source| PublishError::Ledger {
            path: path.clone(),
            source,
        })?;
    }
    Ok(ledger)
}

/// Picks `names` out of `all` (every target when `names` is empty).
pub fn select(
    all: Vec<ResolvedTarget>,
    names: &[String],
) -> Result<Vec<ResolvedTarget>, PublishError> {
    if all.is_empty() {
        return Err(PublishError::NoTargets);
    }
    if names.is_empty() {
        return Ok(all);
    }
    let known = all
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|t| &t.name == n)
                .cloned()
                .ok_or_else(|| PublishError::UnknownTarget(n.clone(), known.clone()))
        })
        .collect()
}

/// The runner's publish step: the targets whose `when` matches the run's status, once the
/// run directory is complete. `None` when no target publishes automatically.
pub fn after_run(
    dir: &Path,
    bench: (&Bench, &Path),
    suite: (&Suite, &Path),
    status: RunStatus,
    cancel: &CancelToken,
) -> Option<Result<PublishLedger, PublishError>> {
    let chosen: Vec<ResolvedTarget> = targets(Some(bench), Some(suite))
        .into_iter()
        .filter(|t| match t.target.when {
            PublishWhen::Manual => false,
            PublishWhen::Always => matches!(
                status,
                RunStatus::Passed | RunStatus::Failed | RunStatus::Error
            ),
            PublishWhen::Passed => status == RunStatus::Passed,
        })
        .collect();
    if chosen.is_empty() {
        return None;
    }
    Some(publish(dir, &chosen, cancel))
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn names_become_ref_safe_parts() {
        assert_eq!(slug("remote suite"), "remote-suite");
        assert_eq!(slug("a..b//c"), "a.b-c");
        assert_eq!(slug("..x.lock"), "x");
        assert_eq!(slug("ünï"), "n");
        assert_eq!(slug(""), "run");
        assert_eq!(slug("20261203-114001"), "20261203-114001");
    }
}
