//! The remote side of a publish: where the branch stands on the remote, and a push that is
//! only ever a creation or a fast-forward (never forced). A remote branch that has commits
//! hilt's branch does not contain is reported as `remote_mismatch` and left alone.

use serde::Serialize;

use super::git::{Git, GitError, NETWORK_TIMEOUT};

/// Where the branch stands on the remote after this publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteState {
    /// The target does not push.
    NotRequested,
    /// The remote does not have the branch (or the repository has no such remote).
    RemoteMissing,
    /// The remote could not be reached.
    RemoteUnreachable,
    /// The remote branch has commits that are not on hilt's branch.
    RemoteMismatch,
    /// The push was refused or failed (the detail says why).
    PushFailed,
    /// The remote branch is hilt's commit.
    Pushed,
}

/// The remote named `name`: its URL (credentials removed) or why there is none.
pub fn url(git: &Git, name: &str) -> Result<Result<String, String>, GitError> {
    let said = git.call(
        &git.repo,
        &["remote", "get-url", "--", name],
        &[],
        NETWORK_TIMEOUT,
    )?;
    if !said.ok {
        return Ok(Err(format!(
            "the repository {} has no remote `{name}`",
            git.repo.display()
        )));
    }
    Ok(Ok(redact(said.text.lines().next().unwrap_or("").trim())))
}

/// A URL without its user-info (`https://token@host/…` → `https://host/…`).
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        return format!("{scheme}://{host}");
    }
    url.to_string()
}

/// The commit the remote's `refs/heads/<branch>` points at (`None`: no such branch).
pub fn tip(
    git: &Git,
    remote: &str,
    branch: &str,
) -> Result<Result<Option<String>, String>, GitError> {
    let reference = format!("refs/heads/{branch}");
    let said = git.call(
        &git.repo,
        &["ls-remote", "--", remote, &reference],
        &[],
        NETWORK_TIMEOUT,
    )?;
    if !said.ok {
        return Ok(Err(format!(
            "cannot reach remote `{remote}`: {}",
            said.tail()
        )));
    }
    Ok(Ok(said.text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let oid = w.next()?;
        (w.next()? == reference).then(|| oid.to_ascii_lowercase())
    })))
}

/// What the push did.
pub struct Pushed {
    pub state: RemoteState,
    /// A push was made by this publish.
    pub pushed_now: bool,
    pub remote_commit: Option<String>,
    pub detail: Option<String>,
}

/// Brings the remote branch to `commit` when that is a creation or a fast-forward.
pub fn push(
    git: &Git,
    remote: &str,
    branch: &str,
    commit: &str,
    remote_tip: Option<&str>,
) -> Result<Pushed, GitError> {
    let reference = format!("refs/heads/{branch}");
    if remote_tip == Some(commit) {
        return Ok(Pushed {
            state: RemoteState::Pushed,
            pushed_now: false,
            remote_commit: Some(commit.to_string()),
            detail: None,
        });
    }
    if let Some(r) = remote_tip {
        if !git.has(r)? {
            // Fetch it to compare; a failure leaves it unknown (then it is not ours).
            let _ = git.call(
                &git.repo,
                &["fetch", "--no-tags", "--quiet", remote, &reference],
                &[],
                NETWORK_TIMEOUT,
            )?;
        }
        if !git.has(r)? || !git.is_ancestor(r, commit)? {
            return Ok(Pushed {
                state: RemoteState::RemoteMismatch,
                pushed_now: false,
                remote_commit: Some(r.to_string()),
                detail: Some(format!(
                    "remote branch {branch} is at {r}, which is not an ancestor of {commit}; \
                     hilt never force-pushes"
                )),
            });
        }
    }
    let refspec = format!("{commit}:{reference}");
    let said = git.call(
        &git.repo,
        &["push", "--quiet", "--no-verify", "--", remote, &refspec],
        &[],
        NETWORK_TIMEOUT,
    )?;
    if !said.ok {
        return Ok(Pushed {
            state: RemoteState::PushFailed,
            pushed_now: false,
            remote_commit: remote_tip.map(str::to_string),
            detail: Some(format!("git push failed: {}", said.tail())),
        });
    }
    Ok(Pushed {
        state: RemoteState::Pushed,
        pushed_now: true,
        remote_commit: Some(commit.to_string()),
        detail: None,
    })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_leave_urls() {
        assert_eq!(
            redact("https://x-access-token:abc@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(redact("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(redact("/srv/git/r.git"), "/srv/git/r.git");
        assert_eq!(redact("ssh://git@host/r"), "ssh://host/r");
    }
}
