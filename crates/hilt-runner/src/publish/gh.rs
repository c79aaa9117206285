//! Pull requests through the GitHub CLI (`gh`), run in the repository so it finds the
//! GitHub remote itself. An existing pull request for the branch — open, closed or merged —
//! is reused, so publishing again never opens a second one. Without `gh`, or with `gh`
//! not logged in, the state says so and nothing else is tried.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use hilt_hw::CancelToken;
use hilt_hw::process::{self, CommandSpec};

const TIMEOUT: Duration = Duration::from_secs(120);
const OUTPUT_CAP: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrState {
    /// The target asks for no pull request.
    NotRequested,
    /// Not tried: the branch is not on the remote.
    NotPushed,
    /// `gh` is not installed.
    GhMissing,
    /// `gh auth status` fails: not logged in.
    GhUnauthenticated,
    /// A pull request for the branch existed and is reused.
    Reused,
    /// This publish opened the pull request.
    Created,
    /// `gh` failed (the detail says how).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrOutcome {
    pub state: PrState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// `OPEN`, `CLOSED` or `MERGED`, as gh reports a reused pull request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl PrOutcome {
    pub fn just(state: PrState, detail: Option<String>) -> PrOutcome {
        PrOutcome {
            state,
            url: None,
            number: None,
            pr_state: None,
            detail,
        }
    }
}

pub struct PrRequest<'a> {
    pub branch: &'a str,
    pub base: Option<&'a str>,
    pub title: &'a str,
    pub body: &'a str,
    pub draft: bool,
}

fn gh(
    repo: &Path,
    scratch: &Path,
    args: &[&str],
    cancel: &CancelToken,
) -> Result<(bool, String), String> {
    let out = scratch.join("gh.out");
    let _ = std::fs::remove_file(&out);
    let mut argv = vec!["gh".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut spec = CommandSpec::new(argv, &out);
    spec.cwd = Some(repo.to_path_buf());
    spec.timeout = TIMEOUT;
    spec.max_output_bytes = OUTPUT_CAP;
    spec.env = vec![
        ("GH_PROMPT_DISABLED".into(), "1".into()),
        ("GH_NO_UPDATE_NOTIFIER".into(), "1".into()),
        ("NO_COLOR".into(), "1".into()),
    ];
    let o = process::run(&spec, cancel).map_err(|e| format!("cannot run gh: {e}"))?;
    let text = String::from_utf8_lossy(&std::fs::read(&out).unwrap_or_default()).into_owned();
    if o.timed_out {
        return Err(format!(
            "`gh {}` did not finish within {TIMEOUT:?}",
            args.join(" ")
        ));
    }
    Ok((o.success(), text))
}

pub(super) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// `gh auth status` in `repo`: whether it succeeded, and what it said.
pub(super) fn auth_status(
    repo: &Path,
    scratch: &Path,
    cancel: &CancelToken,
) -> Result<(bool, String), String> {
    gh(repo, scratch, &["auth", "status"], cancel)
}

/// The first pull request in `gh pr list --json` output.
fn first_pr(text: &str) -> Option<(u64, String, Option<String>)> {
    let start = text.find('[')?;
    let list: Vec<Value> = serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<Vec<Value>>()
        .next()?
        .ok()?;
    let pr = list.first()?;
    Some((
        pr["number"].as_u64()?,
        pr["url"].as_str()?.to_string(),
        pr["state"].as_str().map(str::to_string),
    ))
}

/// Finds or opens the pull request for `req.branch`.
pub fn ensure(repo: &Path, scratch: &Path, req: &PrRequest<'_>, cancel: &CancelToken) -> PrOutcome {
    if process::which("gh").is_none() {
        return PrOutcome::just(
            PrState::GhMissing,
            Some("the GitHub CLI `gh` is not on PATH; help: install gh (https://cli.github.com) and run `gh auth login`".into()),
        );
    }
    match auth_status(repo, scratch, cancel) {
        Ok((true, _)) => {}
        Ok((false, text)) => {
            return PrOutcome::just(
                PrState::GhUnauthenticated,
                Some(format!(
                    "gh is not logged in ({}); help: run `gh auth login` or set GH_TOKEN",
                    tail(&text)
                )),
            );
        }
        Err(e) => return PrOutcome::just(PrState::Failed, Some(e)),
    }
    let listed = gh(
        repo,
        scratch,
        &[
            "pr",
            "list",
            "--head",
            req.branch,
            "--state",
            "all",
            "--json",
            "number,url,state",
            "--limit",
            "1",
        ],
        cancel,
    );
    match listed {
        Ok((true, text)) => {
            if let Some((number, url, state)) = first_pr(&text) {
                return PrOutcome {
                    state: PrState::Reused,
                    url: Some(url),
                    number: Some(number),
                    pr_state: state,
                    detail: None,
                };
            }
            if !text.trim_start().starts_with('[') {
                return PrOutcome::just(
                    PrState::Failed,
                    Some(format!("cannot read gh pr list's answer: {}", tail(&text))),
                );
            }
        }
        Ok((false, text)) => {
            return PrOutcome::just(
                PrState::Failed,
                Some(format!("gh pr list failed: {}", tail(&text))),
            );
        }
        Err(e) => return PrOutcome::just(PrState::Failed, Some(e)),
    }
    let mut args = vec![
        "pr", "create", "--head", req.branch, "--title", req.title, "--body", req.body,
    ];
    if let Some(b) = req.base {
        args.extend(["--base", b]);
    }
    if req.draft {
        args.push("--draft");
    }
    match gh(repo, scratch, &args, cancel) {
        Ok((true, text)) => {
            let url = text
                .lines()
                .map(str::trim)
                .rfind(|l| l.starts_with("http"))
                .map(str::to_string);
            let number = url
                .as_deref()
                .and_then(|u| u.rsplit('/').next())
                .and_then(|n| n.parse().ok());
            PrOutcome {
                state: PrState::Created,
                url,
                number,
                pr_state: Some("OPEN".into()),
                detail: None,
            }
        }
        Ok((false, text)) => PrOutcome::just(
            PrState::Failed,
            Some(format!("gh pr create failed: {}", tail(&text))),
        ),
        Err(e) => PrOutcome::just(PrState::Failed, Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::first_pr;

    #[test]
    fn gh_pr_list_json_is_read() {
        assert_eq!(first_pr("[]"), None);
        assert_eq!(
            first_pr(r#"[{"number":7,"state":"MERGED","url":"https://github.com/o/r/pull/7"}]"#),
            Some((
                7,
                "https://github.com/o/r/pull/7".into(),
                Some("MERGED".into())
            ))
        );
    }
}
