//! hilt extension: publish targets (issue 14). A run's directory is committed into a local
//! git repository on a deterministic branch, optionally pushed and proposed as a pull
//! request. Declared under `publish:` in bench.yaml or suite.yaml (a suite's target
//! replaces the bench's target of the same name). Not part of the BenchCI format.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The placeholders `branch` and `path` may use.
pub const PLACEHOLDERS: &[&str] = &["{suite}", "{bench}", "{run_id}", "{target}"];
/// The branch a target publishes to when it names none.
pub const DEFAULT_BRANCH: &str = "hilt-results/{suite}/{bench}/{run_id}";
/// The directory inside the repository when a target names none.
pub const DEFAULT_PATH: &str = "hilt-runs/{suite}/{run_id}";
/// The remote pushed to when `push` is set without `remote`.
pub const DEFAULT_REMOTE: &str = "origin";

/// Where a run's results are committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PublishTarget {
    /// A local git repository (a clone or a worktree of one); relative paths are taken from
    /// the directory of the file that declares the target. Its checkout is never touched:
    /// hilt writes objects and the branch ref only.
    pub repo: String,
    /// Branch the results are committed on, with `{suite}`, `{bench}`, `{run_id}`,
    /// `{target}` (each made safe for a ref name). Default `hilt-results/{suite}/{bench}/{run_id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Directory inside the repository that receives the run directory, with the same
    /// placeholders. Default `hilt-runs/{suite}/{run_id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where a new branch starts (a branch, tag or commit of the repository); default its
    /// `HEAD`. An empty repository gets a root commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Push the branch (never forced) to `remote`.
    #[serde(default)]
    pub push: bool,
    /// The repository's remote to push to; default `origin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Open a pull request for the branch with the GitHub CLI (`gh`) after pushing, or
    /// reuse the one that exists. Needs `push: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequest>,
    /// When `hilt run` publishes by itself: `manual` (only `hilt runs publish DIR`, the
    /// default), `always`, or `passed`.
    #[serde(default)]
    pub when: PublishWhen,
    /// Top-level entries of the run directory to commit (files or directories); default
    /// all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
}

impl PublishTarget {
    pub fn remote_name(&self) -> &str {
        self.remote.as_deref().unwrap_or(DEFAULT_REMOTE)
    }
}

/// A pull request for a published branch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PullRequest {
    /// The branch the pull request merges into; default the repository's default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Title; default the commit message's first line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Open it as a draft.
    #[serde(default)]
    pub draft: bool,
}

/// When `hilt run` publishes a target at the end of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublishWhen {
    /// Only when asked: `hilt runs publish DIR`.
    #[default]
    Manual,
    /// After every run that reached its results.
    Always,
    /// After runs whose status is `passed`.
    Passed,
}

/// `s` with every placeholder replaced (the caller makes the values safe).
pub fn expand(template: &str, suite: &str, bench: &str, run_id: &str, target: &str) -> String {
    template
        .replace("{suite}", suite)
        .replace("{bench}", bench)
        .replace("{run_id}", run_id)
        .replace("{target}", target)
}

/// The `{…}` words of `template` that are not placeholders.
pub fn unknown_placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        match after.find('}') {
            Some(end) => {
                let word = &after[..=end];
                if !PLACEHOLDERS.contains(&word) {
                    out.push(word.to_string());
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push(after.to_string());
                break;
            }
        }
    }
    out
}

/// A relative path without `..`, absolute parts or empty components.
pub fn is_plain_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/')
            .all(|c| !c.is_empty() && c != ".." && c != "." && !c.contains('\\'))
}
