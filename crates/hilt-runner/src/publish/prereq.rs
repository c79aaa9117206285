//! What a publish target needs before a run publishes to it, for `hilt validate --scope
//! publish`: git, the repository, its base, the remote (reached, not written) when the
//! target pushes, and `gh` installed and logged in when it opens pull requests.

use hilt_hw::CancelToken;

use super::ResolvedTarget;
use super::git::{Git, NETWORK_TIMEOUT, find_git};
use super::{gh, remote};

/// One prerequisite: `ok` is `None` when it was not checked (the detail says why).
#[derive(Debug, Clone, PartialEq)]
pub struct Prereq {
    pub what: &'static str,
    pub ok: Option<bool>,
    pub detail: String,
    pub fix: Option<String>,
}

fn p(
    what: &'static str,
    ok: Option<bool>,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Prereq {
    Prereq {
        what,
        ok,
        detail: detail.into(),
        fix,
    }
}

pub fn prerequisites(t: &ResolvedTarget, cancel: &CancelToken) -> Vec<Prereq> {
    let mut out = Vec::new();
    let wants_pr = t.target.pull_request.is_some();
    let skip_rest = |out: &mut Vec<Prereq>, why: &str| {
        out.push(p("base", None, format!("not checked: {why}"), None));
        if t.target.push {
            out.push(p("remote", None, format!("not checked: {why}"), None));
        }
    };
    match find_git() {
        Ok(path) => out.push(p(
            "git",
            Some(true),
            format!("git is {}", path.display()),
            None,
        )),
        Err(e) => {
            out.push(p(
                "git",
                Some(false),
                e.message,
                Some("install git (apt-get install git)".into()),
            ));
            out.push(p("repo", None, "not checked: git is missing", None));
            skip_rest(&mut out, "git is missing");
        }
    }
    if out[0].ok == Some(true) {
        match Git::open(&t.repo, cancel) {
            Err(e) => {
                out.push(p("repo", Some(false), e.message, Some(format!("clone the results repository to {} or fix `repo` (relative to the {} file)", t.repo.display(), t.declared_in))));
                skip_rest(&mut out, "the repository is missing");
            }
            Ok(git) => {
                out.push(p(
                    "repo",
                    Some(true),
                    format!(
                        "{} is a git repository ({})",
                        t.repo.display(),
                        git.git_dir.display()
                    ),
                    None,
                ));
                let base = t.target.base.as_deref().unwrap_or("HEAD");
                out.push(match git.commit_of(base) {
                    Ok(Some(c)) => p(
                        "base",
                        Some(true),
                        format!("new branches start from {base} ({c})"),
                        None,
                    ),
                    Ok(None) if t.target.base.is_none() => p(
                        "base",
                        Some(true),
                        "the repository has no commit yet: the first publish makes a root commit",
                        None,
                    ),
                    Ok(None) => p(
                        "base",
                        Some(false),
                        format!("base `{base}` is not a commit of {}", t.repo.display()),
                        Some("fetch that branch into the repository, or fix `base`".into()),
                    ),
                    Err(e) => p("base", Some(false), e.message, None),
                });
                if t.target.push {
                    let name = t.target.remote_name();
                    out.push(match remote::url(&git, name) {
                        Err(e) => p("remote", Some(false), e.message, None),
                        Ok(Err(why)) => p("remote", Some(false), why, Some(format!("git -C {} remote add {name} URL", t.repo.display()))),
                        Ok(Ok(url)) => match git.call(&git.repo, &["ls-remote", "--heads", "--", name], &[], NETWORK_TIMEOUT) {
                            Ok(s) if s.ok => p("remote", Some(true), format!("remote `{name}` ({url}) answers"), None),
                            Ok(s) => p("remote", Some(false), format!("remote `{name}` ({url}) cannot be reached: {}", s.tail()), Some("check the URL, the network and the credentials git uses for it".into())),
                            Err(e) => p("remote", Some(false), e.message, None),
                        },
                    });
                }
            }
        }
    }
    if wants_pr {
        match hilt_hw::process::which("gh") {
            None => {
                out.push(p(
                    "gh",
                    Some(false),
                    "the GitHub CLI `gh` is not on PATH (pull_request asks for it)",
                    Some("install gh (https://cli.github.com)".into()),
                ));
                out.push(p("gh_auth", None, "not checked: gh is missing", None));
            }
            Some(path) => {
                out.push(p(
                    "gh",
                    Some(true),
                    format!("gh is {}", path.display()),
                    None,
                ));
                let scratch = tempfile::tempdir();
                out.push(match scratch.map_err(|e| e.to_string()).and_then(|d| gh::auth_status(&t.repo, d.path(), cancel)) {
                    Ok((true, _)) => p("gh_auth", Some(true), "gh is logged in", None),
                    Ok((false, text)) => p("gh_auth", Some(false), format!("gh is not logged in: {}", gh::tail(&text)), Some("run `gh auth login` (or set GH_TOKEN) for the account that opens the pull requests".into())),
                    Err(e) => p("gh_auth", Some(false), e, None),
                });
            }
        }
    }
    out
}
