//! evidence.json and metadata.json (run-results spec §7); evidence.html is `report::page`.

use std::path::Path;

use serde_json::{Map, Value, json};

use hilt_model::run::{RunResults, now};
use hilt_model::suite::Suite;

/// Inputs of the evidence report that results.json does not carry.
pub struct EvidenceInputs<'a> {
    pub suite: &'a Suite,
    pub bench_path: String,
    pub bench_sha256: Option<String>,
    pub suite_path: String,
    pub suite_sha256: Option<String>,
    pub firmware: Value,
    /// `{git_commit, git_branch, git_remote, git_dirty}`, from [`git_info`].
    pub source: Value,
}

/// The evidence object in BenchCI's key order: results.json embeds it as it is (results.json
/// keeps insertion order); evidence.json is written through [`sort_keys`].
pub fn evidence(r: &RunResults, inp: &EvidenceInputs) -> Value {
    let failure = r.failure.as_ref();
    let mut tests = Vec::new();
    for t in &inp.suite.tests {
        let res = r.tests.iter().find(|x| x.name == t.name);
        tests.push(json!({
            "name": t.name,
            "status": res.map(|x| if x.passed { "passed" } else { "failed" }).unwrap_or("not_run"),
            "passed": res.map(|x| x.passed),
            "duration_s": res.map(|x| x.duration_s),
            "test_case_id": t.test_case_id,
            "requirement_ids": t.requirement_ids,
            "risk_ids": t.risk_ids,
            "tags": t.tags,
            "failure_category": res.and_then(|x| x.failure.as_ref()).map(|f| f.category.as_str()),
            "failure_title": res.and_then(|x| x.failure.as_ref()).map(|f| f.title.clone()),
            "fault_injections": res.map(|x| x.fault_injections.clone()).unwrap_or_default(),
        }));
    }
    let s = &inp.suite.suite;
    let union = |f: &dyn Fn(&hilt_model::suite::Test) -> &Vec<String>, first: &Vec<String>| {
        let mut all: Vec<String> = first.clone();
        for t in &inp.suite.tests {
            for x in f(t) {
                if !all.contains(x) {
                    all.push(x.clone());
                }
            }
        }
        all
    };
    let test_case_ids: Vec<String> = inp
        .suite
        .tests
        .iter()
        .filter_map(|t| t.test_case_id.clone())
        .collect();
    let snapshot = |name: &str| {
        Path::new(&r.results_dir)
            .join("inputs")
            .join(name)
            .display()
            .to_string()
    };
    let files = hilt_files(Path::new(&r.results_dir));
    json!({
        "schema_version": "benchci.evidence.v1",
        "generated_at": now(),
        "run": {"run_id": r.run_id, "mode": r.run_mode, "status": r.status.as_str(), "started_at": r.started_at,
                "finished_at": r.finished_at, "duration_s": r.duration_s},
        "workspace": {},
        "bench": {"name": r.bench, "bench_id": null, "agent_id": null, "config_path": inp.bench_path,
                  "config_sha256": inp.bench_sha256, "snapshot_path": snapshot("bench.yaml")},
        "suite": {"name": r.suite, "version": s.version, "release_id": s.release_id, "path": inp.suite_path,
                  "sha256": inp.suite_sha256, "snapshot_path": snapshot("suite.yaml")},
        "firmware": inp.firmware,
        "duts": r.duts,
        "source": inp.source,
        "ci": ci_info(),
        "environment": environment(),
        "result": {"status": r.status.as_str(), "summary": r.summary,
                   "failure_category": failure.map(|f| f.category.as_str()),
                   "failure_title": failure.map(|f| f.title.clone()), "failure": failure,
                   "metrics": r.metrics, "measurements": r.measurements, "fuzz": r.fuzz,
                   "fault_injections": r.fault_injections},
        "metrics": r.metrics,
        "measurements": r.measurements,
        "fuzz": r.fuzz,
        "fault_injections": r.fault_injections,
        // BenchCI: null when no external step ran.
        "external_results": if r.external_results["steps"].as_array().is_some_and(|s| !s.is_empty()) { r.external_results.clone() } else { Value::Null },
        "traceability": {
            "suite": {"name": s.name, "version": s.version, "release_id": s.release_id, "description": s.description,
                      "requirement_ids": s.requirement_ids, "risk_ids": s.risk_ids, "tags": s.tags},
            "requirement_ids": union(&|t| &t.requirement_ids, &s.requirement_ids),
            "test_case_ids": test_case_ids,
            "risk_ids": union(&|t| &t.risk_ids, &s.risk_ids),
            "tags": union(&|t| &t.tags, &s.tags),
            "tests": tests,
        },
        "artifacts": {"root_dir": r.results_dir, "files": files},
    })
}

/// metadata.json: the same schema, a subset of the evidence keys.
pub fn metadata(evidence: &Value) -> Value {
    let keys = [
        "schema_version",
        "generated_at",
        "run",
        "bench",
        "suite",
        "firmware",
        "duts",
        "source",
        "ci",
        "environment",
        "traceability",
        "metrics",
        "measurements",
        "fuzz",
        "fault_injections",
        "external_results",
        "artifacts",
    ];
    let m: Map<String, Value> = keys
        .iter()
        .filter_map(|k| evidence.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    sort_keys(Value::Object(m))
}

fn hilt_files(root: &Path) -> Vec<String> {
    crate::rundir::manifest::list_files(root, &["manifest.json"]).unwrap_or_default()
}

/// Recursively sorts object keys (evidence, metadata and manifests use sorted keys).
pub fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether `git` could find a repository for `dir`: `GIT_DIR` is set, or `dir` or one of
/// its ancestors holds a `.git` entry or is itself a bare repository (`HEAD`, `objects/`,
/// `refs/`). When this is false no `git` process is started: outside a repository (an
/// agent's run directory, for one) that saves a fork and exec at the end of every run.
fn may_be_in_git_repo(dir: &Path) -> bool {
    if std::env::var_os("GIT_DIR").is_some() {
        return true;
    }
    let dir = crate::rundir::absolute(dir);
    dir.ancestors().any(|d| {
        d.join(".git").symlink_metadata().is_ok()
            || (d.join("HEAD").is_file() && d.join("objects").is_dir() && d.join("refs").is_dir())
    })
}

/// Git facts about the suite's directory (run in the background while the suite runs).
pub fn git_info(dir: &Path) -> Value {
    let commit = may_be_in_git_repo(dir)
        .then(|| git(dir, &["rev-parse", "HEAD"]))
        .flatten();
    if commit.is_none() {
        return json!({"git_commit": null, "git_branch": null, "git_remote": null, "git_dirty": null});
    }
    let dirty = git(dir, &["status", "--porcelain"]).map(|s| !s.is_empty());
    json!({"git_commit": commit, "git_branch": git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]),
           "git_remote": git(dir, &["config", "--get", "remote.origin.url"]), "git_dirty": dirty})
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

fn ci_info() -> Value {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let forced = env("HILT_IS_CI").or_else(|| env("BENCHCI_IS_CI"));
    let none =
        json!({"ci_provider": null, "ci_job_url": null, "ci_run_id": null, "ci_job_id": null});
    if forced.as_deref().is_some_and(|v| !truthy(v)) {
        return none;
    }
    let (provider, url, run, job) = if env("GITHUB_ACTIONS").is_some() {
        let url = match (
            env("GITHUB_SERVER_URL"),
            env("GITHUB_REPOSITORY"),
            env("GITHUB_RUN_ID"),
        ) {
            (Some(s), Some(r), Some(i)) => Some(format!("{s}/{r}/actions/runs/{i}")),
            _ => None,
        };
        (
            "github_actions",
            url,
            env("GITHUB_RUN_ID"),
            env("GITHUB_JOB"),
        )
    } else if env("GITLAB_CI").is_some() {
        (
            "gitlab_ci",
            env("CI_JOB_URL"),
            env("CI_PIPELINE_ID"),
            env("CI_JOB_ID"),
        )
    } else if env("BITBUCKET_BUILD_NUMBER").is_some() {
        (
            "bitbucket_pipelines",
            None,
            env("BITBUCKET_BUILD_NUMBER"),
            env("BITBUCKET_STEP_UUID"),
        )
    } else if env("CIRCLECI").is_some() {
        (
            "circleci",
            env("CIRCLE_BUILD_URL"),
            env("CIRCLE_WORKFLOW_ID"),
            env("CIRCLE_BUILD_NUM"),
        )
    } else if env("TRAVIS").is_some() {
        (
            "travis_ci",
            env("TRAVIS_JOB_WEB_URL"),
            env("TRAVIS_BUILD_ID"),
            env("TRAVIS_JOB_ID"),
        )
    } else if env("BUILDKITE").is_some() {
        (
            "buildkite",
            env("BUILDKITE_BUILD_URL"),
            env("BUILDKITE_BUILD_ID"),
            env("BUILDKITE_JOB_ID"),
        )
    } else if env("JENKINS_URL").is_some() {
        (
            "jenkins",
            env("BUILD_URL"),
            env("BUILD_ID"),
            env("BUILD_NUMBER"),
        )
    } else if env("TF_BUILD").is_some() {
        (
            "azure_pipelines",
            None,
            env("BUILD_BUILDID"),
            env("SYSTEM_JOBID"),
        )
    } else if env("CODEBUILD_BUILD_ID").is_some() {
        (
            "aws_codebuild",
            env("CODEBUILD_BUILD_URL"),
            env("CODEBUILD_BUILD_ID"),
            None,
        )
    } else if env("CI").is_some() || forced.is_some() {
        ("generic_ci", None, None, None)
    } else {
        return none;
    };
    json!({"ci_provider": provider, "ci_job_url": url, "ci_run_id": run, "ci_job_id": job})
}

fn environment() -> Value {
    let uname = nix::sys::utsname::uname().ok();
    let s = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uname.as_ref().map(|u| f(u).to_string_lossy().into_owned())
    };
    json!({
        "benchci_version": format!("hilt {}", env!("CARGO_PKG_VERSION")),
        "hilt_version": env!("CARGO_PKG_VERSION"),
        "python": null,
        "platform": format!("{}-{}", s(|u| u.sysname()).unwrap_or_default(), s(|u| u.release()).unwrap_or_default()),
        "system": s(|u| u.sysname()),
        "machine": s(|u| u.machine()),
        "node": s(|u| u.nodename()),
        "cwd": std::env::current_dir().ok().map(|p| p.display().to_string()),
    })
}

#[cfg(test)]
mod git_tests {
    use super::*;

    #[test]
    fn outside_a_repository_no_git_is_needed() {
        let root = std::env::temp_dir().join(format!(
            "hilt-git-probe-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let t = Scratch(root);
        let inner = t.path().join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        // The temp dir is not in a repository (unless the system's is, which then says so).
        let expected = may_be_in_git_repo(t.path());
        assert_eq!(may_be_in_git_repo(&inner), expected);
        std::fs::create_dir(t.path().join("a/.git")).unwrap();
        assert!(may_be_in_git_repo(&inner));
        let bare = t.path().join("bare.git");
        for d in ["objects", "refs"] {
            std::fs::create_dir_all(bare.join(d)).unwrap();
        }
        std::fs::write(bare.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        assert!(may_be_in_git_repo(&bare));
        if !expected {
            assert_eq!(git_info(t.path())["git_commit"], Value::Null);
        }
    }

    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
