//! `publish_ledger.json`: per target, where its publish stands (`state`), the commit,
//! the remote and the pull request, and every attempt with the actions it took (an
//! attempt that found everything done records none). Rewritten atomically after each
//! target.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use hilt_hw::CancelToken;

use super::commit::{self, CommitInput};
use super::gh::{self, PrOutcome, PrRequest, PrState};
use super::git::Git;
use super::remote::{self, RemoteState};
use super::{ResolvedTarget, RunFacts, branch_and_path};

/// Attempts kept per target (the oldest are dropped).
const MAX_ATTEMPTS: usize = 100;

/// Where a target's publish stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Nothing was committed (the detail says why).
    Failed,
    /// Committed on the local branch; the target does not push.
    Committed,
    /// Committed; the remote does not have the branch (push failed or no such remote).
    RemoteMissing,
    /// Committed; the remote could not be reached.
    RemoteUnreachable,
    /// Committed; the remote branch has commits that are not hilt's (never overwritten).
    RemoteMismatch,
    /// Committed; the push was refused.
    PushFailed,
    /// Committed and the remote branch is the commit.
    Pushed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteRecord {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub state: RemoteState,
    /// The remote branch's commit after this attempt.
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub at: String,
    pub state: TargetState,
    /// `committed`, `pushed`, `pull_request_created`: what this attempt changed.
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetRecord {
    pub declared_in: String,
    pub repo: String,
    pub branch: String,
    pub path: String,
    pub message: String,
    pub state: TargetState,
    pub commit: Option<String>,
    pub tree: Option<String>,
    pub remote: RemoteRecord,
    pub pull_request: PrOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Earlier attempts are kept as they were written.
    pub attempts: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishLedger {
    pub schema_version: String,
    pub run_id: String,
    pub updated_at: String,
    pub targets: BTreeMap<String, TargetRecord>,
    /// Targets recorded earlier that this publish did not touch, as they were.
    #[serde(skip)]
    pub earlier: BTreeMap<String, Value>,
}

impl PublishLedger {
    /// The ledger in `path`, or a new one (an unreadable ledger is kept aside, not lost).
    pub fn load(path: &Path, run_id: &str) -> PublishLedger {
        let mut l = PublishLedger {
            schema_version: "hilt.publish_ledger.v1".into(),
            run_id: run_id.to_string(),
            updated_at: hilt_model::run::now(),
            targets: BTreeMap::new(),
            earlier: BTreeMap::new(),
        };
        if let Ok(bytes) = std::fs::read(path) {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => {
                    if let Some(t) = v["targets"].as_object() {
                        l.earlier = t.clone().into_iter().collect();
                    }
                }
                Err(_) => {
                    let aside = path.with_extension(format!(
                        "json.unreadable-{}",
                        jiff::Timestamp::now().as_second()
                    ));
                    let _ = std::fs::rename(path, aside);
                }
            }
        }
        l
    }

    /// Writes the ledger (earlier targets not published now kept as they were).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut v = serde_json::to_value(self).map_err(std::io::Error::other)?;
        if let Some(t) = v["targets"].as_object_mut() {
            for (k, old) in &self.earlier {
                if !t.contains_key(k) {
                    t.insert(k.clone(), old.clone());
                }
            }
        }
        let mut text = serde_json::to_vec_pretty(&v).map_err(std::io::Error::other)?;
        text.push(b'\n');
        crate::rundir::write_atomic(path, &text, true)
    }
}

/// Publishes to one target; never fails as a whole: what went wrong is its state.
pub(super) fn publish_target(
    dir: &Path,
    t: &ResolvedTarget,
    facts: &RunFacts,
    earlier: Option<&Value>,
    cancel: &CancelToken,
) -> TargetRecord {
    let (branch, path) = branch_and_path(t, facts);
    let message = facts.message(&path);
    let mut attempts: Vec<Value> = earlier
        .and_then(|e| e["attempts"].as_array())
        .cloned()
        .unwrap_or_default();
    let remote_name = t.target.remote_name().to_string();
    let mut rec = TargetRecord {
        declared_in: t.declared_in.to_string(),
        repo: t.repo.display().to_string(),
        branch: branch.clone(),
        path: path.clone(),
        message: message.clone(),
        state: TargetState::Failed,
        commit: None,
        tree: None,
        remote: RemoteRecord {
            name: remote_name.clone(),
            url: None,
            state: RemoteState::NotRequested,
            commit: None,
            detail: None,
        },
        pull_request: PrOutcome::just(PrState::NotRequested, None),
        detail: None,
        attempts: Vec::new(),
    };
    let mut actions: Vec<String> = Vec::new();
    let result = (|| -> Result<(), String> {
        let git = Git::open(&t.repo, cancel).map_err(|e| e.to_string())?;
        let ok = git
            .call(
                &t.repo,
                &["check-ref-format", &format!("refs/heads/{branch}")],
                &[],
                super::git::NETWORK_TIMEOUT,
            )
            .map_err(|e| e.to_string())?;
        if !ok.ok {
            return Err(format!(
                "`{branch}` is not a valid branch name; help: change `branch`"
            ));
        }
        // Where the remote stands, before committing: a branch published from another
        // clone continues from the remote's commit instead of forking it.
        let mut remote_tip: Option<String> = None;
        let mut remote_err: Option<(RemoteState, String)> = None;
        if t.target.push {
            match remote::url(&git, &remote_name).map_err(|e| e.to_string())? {
                Err(why) => remote_err = Some((RemoteState::RemoteMissing, why)),
                Ok(url) => {
                    rec.remote.url = Some(url);
                    match remote::tip(&git, &remote_name, &branch).map_err(|e| e.to_string())? {
                        Ok(tip) => remote_tip = tip,
                        Err(why) => remote_err = Some((RemoteState::RemoteUnreachable, why)),
                    }
                }
            }
        }
        let c = commit::commit(
            &git,
            &CommitInput {
                run_dir: dir,
                include: &t.target.include,
                branch: &branch,
                path: &path,
                base: t.target.base.as_deref(),
                message: &message,
                remote: remote_tip.as_deref().map(|tip| (remote_name.as_str(), tip)),
                facts,
            },
        )
        .map_err(|e| e.to_string())?;
        if c.created {
            actions.push("committed".into());
        }
        rec.commit = Some(c.commit.clone());
        rec.tree = Some(c.tree.clone());
        rec.state = TargetState::Committed;
        if !t.target.push {
            return Ok(());
        }
        if let Some((state, why)) = remote_err {
            rec.remote.state = state;
            rec.remote.detail = Some(why.clone());
            rec.state = match state {
                RemoteState::RemoteUnreachable => TargetState::RemoteUnreachable,
                _ => TargetState::RemoteMissing,
            };
            if t.target.pull_request.is_some() {
                rec.pull_request = PrOutcome::just(PrState::NotPushed, None);
            }
            return Ok(());
        }
        let p = remote::push(
            &git,
            &remote_name,
            &branch,
            &c.commit,
            remote_tip.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        if p.pushed_now {
            actions.push("pushed".into());
        }
        rec.remote.state = p.state;
        rec.remote.commit = p.remote_commit;
        rec.remote.detail = p.detail;
        rec.state = match p.state {
            RemoteState::Pushed => TargetState::Pushed,
            RemoteState::RemoteMismatch => TargetState::RemoteMismatch,
            RemoteState::PushFailed => TargetState::PushFailed,
            RemoteState::RemoteMissing => TargetState::RemoteMissing,
            RemoteState::RemoteUnreachable => TargetState::RemoteUnreachable,
            RemoteState::NotRequested => TargetState::Committed,
        };
        if let Some(pr) = &t.target.pull_request {
            if rec.state != TargetState::Pushed {
                rec.pull_request = PrOutcome::just(PrState::NotPushed, None);
                return Ok(());
            }
            let title = pr
                .title
                .clone()
                .unwrap_or_else(|| message.lines().next().unwrap_or_default().to_string());
            let out = gh::ensure(
                &t.repo,
                &git.scratch(""),
                &PrRequest {
                    branch: &branch,
                    base: pr.base.as_deref(),
                    title: &title,
                    body: &message,
                    draft: pr.draft,
                },
                cancel,
            );
            if out.state == PrState::Created {
                actions.push("pull_request_created".into());
            }
            rec.pull_request = out;
        }
        Ok(())
    })();
    if let Err(e) = result {
        rec.detail = Some(e);
    }
    let detail = rec
        .detail
        .clone()
        .or_else(|| rec.remote.detail.clone())
        .or_else(|| rec.pull_request.detail.clone());
    attempts.push(
        serde_json::to_value(Attempt {
            at: hilt_model::run::now(),
            state: rec.state,
            actions,
            detail,
        })
        .unwrap_or_default(),
    );
    let drop = attempts.len().saturating_sub(MAX_ATTEMPTS);
    attempts.drain(..drop);
    rec.attempts = attempts;
    rec
}
