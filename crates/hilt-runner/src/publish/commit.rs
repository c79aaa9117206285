//! The commit: the run directory becomes a tree (a temporary index whose work tree is the
//! run directory, so nothing is copied and no checkout is touched), grafted at the target's
//! path onto the branch's current tree, and committed only when that changes the tree.
//! Author, committer and dates are fixed by the run, so the same run on the same parent is
//! always the same commit.

use std::path::Path;

use super::git::{Git, GitError, NETWORK_TIMEOUT};
use super::{LEDGER_FILE, RunFacts};

/// The commit hilt made or found for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub commit: String,
    pub tree: String,
    pub parent: Option<String>,
    /// A new commit was made by this publish.
    pub created: bool,
    /// Where the branch came from before this publish: `local`, `remote`, `base`, `root`.
    pub started_from: &'static str,
}

/// Identity of the commits hilt makes.
pub const AUTHOR_NAME: &str = "hilt";
pub const AUTHOR_EMAIL: &str = "hilt@localhost";

pub struct CommitInput<'a> {
    pub run_dir: &'a Path,
    pub include: &'a [String],
    pub branch: &'a str,
    pub path: &'a str,
    pub base: Option<&'a str>,
    pub message: &'a str,
    /// The remote branch tip, when the remote was asked (its object may not be here yet).
    pub remote: Option<(&'a str, &'a str)>,
    pub facts: &'a RunFacts,
}

/// The tree of the run directory (the publish ledger excluded: it records this copy).
fn run_tree(git: &Git, run_dir: &Path, include: &[String]) -> Result<String, GitError> {
    let index = git.scratch("run.index");
    let index_s = index.display().to_string();
    let work = run_dir.display().to_string();
    let env = [
        ("GIT_INDEX_FILE", index_s.as_str()),
        ("GIT_WORK_TREE", work.as_str()),
    ];
    let mut args: Vec<String> = ["add", "--all", "--force", "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if include.is_empty() {
        args.push(".".into());
    } else {
        let present: Vec<&String> = include
            .iter()
            .filter(|i| run_dir.join(i.as_str()).exists())
            .collect();
        if present.is_empty() {
            return Err(GitError::new(format!(
                "none of the included entries ({}) is in {}",
                include.join(", "),
                run_dir.display()
            )));
        }
        args.extend(present.into_iter().cloned());
    }
    args.push(format!(":(exclude){LEDGER_FILE}"));
    // A local run's archive repeats the directory (and is written after the automatic
    // publish, so including it would make a later `hilt runs publish` a second commit).
    args.push(format!(":(exclude){}", crate::rundir::zip::LOCAL_ZIP));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    git.must_in(run_dir, &args, &env, NETWORK_TIMEOUT)?;
    git.must_in(run_dir, &["write-tree"], &env, NETWORK_TIMEOUT)?
        .oid()
        .ok_or_else(|| GitError::new("git write-tree printed no tree"))
}

/// `parent`'s tree with `path` replaced by `sub`.
fn graft(git: &Git, parent: Option<&str>, path: &str, sub: &str) -> Result<String, GitError> {
    let index = git.scratch("graft.index");
    let _ = std::fs::remove_file(&index);
    let index_s = index.display().to_string();
    // `rm --cached` needs some work tree; an empty one is never read.
    let empty = git.scratch("empty");
    std::fs::create_dir_all(&empty)
        .map_err(|e| GitError::new(format!("cannot create {}: {e}", empty.display())))?;
    let work = empty.display().to_string();
    let env = [
        ("GIT_INDEX_FILE", index_s.as_str()),
        ("GIT_WORK_TREE", work.as_str()),
    ];
    match parent {
        Some(p) => git.must_in(&empty, &["read-tree", p], &env, NETWORK_TIMEOUT)?,
        None => git.must_in(&empty, &["read-tree", "--empty"], &env, NETWORK_TIMEOUT)?,
    };
    git.must_in(
        &empty,
        &["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", path],
        &env,
        NETWORK_TIMEOUT,
    )?;
    let prefix = format!("{path}/");
    git.must_in(
        &empty,
        &["read-tree", &format!("--prefix={prefix}"), sub],
        &env,
        NETWORK_TIMEOUT,
    )?;
    git.must_in(&empty, &["write-tree"], &env, NETWORK_TIMEOUT)?
        .oid()
        .ok_or_else(|| GitError::new("git write-tree printed no tree"))
}

/// Commits the run on the branch unless the branch already holds exactly this content.
pub fn commit(git: &Git, input: &CommitInput<'_>) -> Result<Committed, GitError> {
    let reference = format!("refs/heads/{}", input.branch);
    let local = git.commit_of(&reference)?;
    let (parent, started_from) = match (&local, input.remote) {
        (Some(l), _) => (Some(l.clone()), "local"),
        (None, Some((remote, tip))) => {
            if !git.has(tip)? {
                git.must_in(
                    &git.repo,
                    &["fetch", "--no-tags", "--quiet", remote, &reference],
                    &[],
                    NETWORK_TIMEOUT,
                )?;
            }
            (Some(tip.to_string()), "remote")
        }
        (None, None) => match git.commit_of(input.base.unwrap_or("HEAD"))? {
            Some(b) => (Some(b), "base"),
            None if input.base.is_some() => {
                return Err(GitError::new(format!(
                    "base `{}` is not a commit of {}",
                    input.base.unwrap_or_default(),
                    git.repo.display()
                )));
            }
            None => (None, "root"),
        },
    };
    let sub = run_tree(git, input.run_dir, input.include)?;
    let tree = graft(git, parent.as_deref(), input.path, &sub)?;
    if let Some(p) = &parent
        && git.tree_of(p)? == tree
    {
        if local.is_none() {
            git.must(&["update-ref", &reference, p, ""], &[])?;
        }
        return Ok(Committed {
            commit: p.clone(),
            tree,
            parent: None,
            created: false,
            started_from,
        });
    }
    let date = format!("@{} +0000", input.facts.finished_unix);
    let env = [
        ("GIT_AUTHOR_NAME", AUTHOR_NAME),
        ("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL),
        ("GIT_AUTHOR_DATE", date.as_str()),
        ("GIT_COMMITTER_NAME", AUTHOR_NAME),
        ("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL),
        ("GIT_COMMITTER_DATE", date.as_str()),
    ];
    let mut args = vec!["commit-tree", "--no-gpg-sign", tree.as_str()];
    if let Some(p) = &parent {
        args.extend(["-p", p.as_str()]);
    }
    args.extend(["-m", input.message]);
    let commit = git
        .must(&args, &env)?
        .oid()
        .ok_or_else(|| GitError::new("git commit-tree printed no commit"))?;
    // Compare-and-swap: a concurrent publish to the same branch makes this fail, not lose.
    let old = local.clone().unwrap_or_default();
    git.must(
        &[
            "update-ref",
            "-m",
            "hilt publish",
            &reference,
            &commit,
            &old,
        ],
        &[],
    )?;
    Ok(Committed {
        commit,
        tree,
        parent,
        created: true,
        started_from,
    })
}
