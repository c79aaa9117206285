//! Publishing runs (`publish:` targets, `hilt runs publish DIR`) through the real `hilt`
//! binary: a two-hop jump-chain run on loopback sshd publishes itself to a local bare git
//! repository (real git) exactly once; publishing again changes nothing; a remote branch
//! with foreign commits is left alone. `gh`: missing (PATH without it), and a small fake
//! `gh` on PATH only for "present but not logged in" and "reuse the existing pull request".

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{hilt, json, last_run};
use hilt_testkit::sshd::{Lab, peers};
use serde_json::Value;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare remote with `main` holding one commit, and a clone of it at `results`.
fn remote_and_clone(lab: &Lab) -> (PathBuf, PathBuf, String) {
    let bare = lab.path("remote.git");
    git(
        lab.dir.path(),
        &["init", "-q", "--bare", "-b", "main", "remote.git"],
    );
    let seed = lab.path("seed");
    git(lab.dir.path(), &["init", "-q", "-b", "main", "seed"]);
    std::fs::write(seed.join("README.md"), "results\n").unwrap();
    git(&seed, &["add", "README.md"]);
    git(&seed, &["commit", "-q", "-m", "start"]);
    git(&seed, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let main = git(&seed, &["rev-parse", "HEAD"]);
    git(
        lab.dir.path(),
        &["clone", "-q", bare.to_str().unwrap(), "results"],
    );
    (bare, lab.path("results"), main)
}

/// A passing two-hop run whose bench carries `publish`; returns the run directory.
fn chain_run(lab: &mut Lab, publish: &str) -> PathBuf {
    let j1 = lab.sshd("PasswordAuthentication no");
    let j2 = lab.sshd("PasswordAuthentication no");
    let target = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[j1, j2, target]);
    lab.chain_bench(j1, j2, target, publish);
    let suite = lab.write(
        "suite.yaml",
        "version: 1\nsuite: {name: remote checks}\ntests:\n  - name: through the chain\n    steps:\n      - ssh_exec: {host: gateway, argv: [uname, -s], expect_contains: Linux}\n",
    );
    let out = hilt()
        .env("HILT_LOCK_DIR", lab.path("locks"))
        .arg("run")
        .arg("--bench")
        .arg(lab.path("bench.yaml"))
        .arg("--suite")
        .arg(suite)
        .arg("--results-dir")
        .arg(lab.path("runs"))
        .output()
        .unwrap();
    let run = last_run(&lab.path("runs"));
    assert_eq!(
        json(&run.join("results.json"))["status"],
        "passed",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run
}

fn publish(run: &Path, path_env: Option<&str>, extra: &[&str]) -> (i32, String) {
    let mut c = hilt();
    c.args(["runs", "publish"]).arg(run).args(extra);
    if let Some(p) = path_env {
        c.env("PATH", p);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn target(run: &Path, name: &str) -> Value {
    json(&run.join("publish_ledger.json"))["targets"][name].clone()
}

#[test]
fn a_two_hop_run_publishes_to_a_bare_remote_exactly_once() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let (bare, clone, main) = remote_and_clone(&lab);
    let run = chain_run(
        &mut lab,
        "publish:\n  results:\n    repo: results\n    push: true\n    when: always\n",
    );
    let run_id = run.file_name().unwrap().to_string_lossy().to_string();
    let branch = format!("hilt-results/remote-checks/chain/{run_id}");

    // `hilt run` published by itself once the run directory was complete.
    let t = target(&run, "results");
    assert_eq!(t["state"], "pushed", "{t:#}");
    assert_eq!(t["branch"], branch.as_str());
    assert_eq!(t["remote"]["state"], "pushed");
    assert_eq!(
        t["attempts"][0]["actions"],
        serde_json::json!(["committed", "pushed"])
    );
    let commit = t["commit"].as_str().unwrap().to_string();
    let on_remote = git(&bare, &["rev-parse", &format!("refs/heads/{branch}")]);
    assert_eq!(on_remote, commit);
    // One commit on top of main, with the deterministic message and hilt's identity.
    assert_eq!(git(&bare, &["rev-parse", &format!("{commit}^")]), main);
    let msg = git(&bare, &["log", "-1", "--format=%an <%ae>%n%B", &commit]);
    assert!(
        msg.starts_with(&format!(
            "hilt <hilt@localhost>\nhilt: results of run {run_id} (remote checks on chain): passed, 1/1 passed"
        )),
        "{msg}"
    );
    // The whole run directory is there, except the ledger that records the copy.
    let files = git(&bare, &["ls-tree", "-r", "--name-only", &commit]);
    let prefix = format!("hilt-runs/remote-checks/{run_id}/");
    for f in [
        "results.json",
        "manifest.json",
        "command_ledger.jsonl",
        "inputs/bench.yaml",
        "evidence.html",
    ] {
        assert!(
            files.contains(&format!("{prefix}{f}")),
            "{f} not committed:\n{files}"
        );
    }
    assert!(!files.contains("publish_ledger.json"), "{files}");
    assert!(files.contains("README.md"), "the base's files are kept");
    let committed = git(&bare, &["show", &format!("{commit}:{prefix}results.json")]);
    assert_eq!(
        committed.as_bytes(),
        std::fs::read(run.join("results.json"))
            .unwrap()
            .trim_ascii_end()
    );
    // The clone's checkout is untouched.
    assert_eq!(git(&clone, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(git(&clone, &["status", "--porcelain"]), "");

    // Again: nothing to commit, nothing to push.
    let (code, text) = publish(&run, None, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("nothing to do"), "{text}");
    let t = target(&run, "results");
    assert_eq!(t["commit"], commit.as_str());
    assert_eq!(t["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(t["attempts"][1]["actions"], serde_json::json!([]));
    assert_eq!(git(&bare, &["rev-list", "--count", &branch]), "2");

    // From a clone without the branch: it continues from the remote's commit, no new one.
    git(&clone, &["branch", "-D", &branch]);
    let (code, text) = publish(&run, None, &[]);
    assert_eq!(code, 0, "{text}");
    let t = target(&run, "results");
    assert_eq!(t["commit"], commit.as_str());
    assert_eq!(t["attempts"][2]["actions"], serde_json::json!([]));
    assert_eq!(git(&clone, &["rev-parse", &branch]), commit);
    assert_eq!(git(&bare, &["rev-list", "--count", &branch]), "2");

    // Someone else's commit on the remote branch is never overwritten.
    let seed = lab.path("seed");
    git(&seed, &["commit", "-q", "--allow-empty", "-m", "foreign"]);
    git(
        &seed,
        &[
            "push",
            "-q",
            "--force",
            bare.to_str().unwrap(),
            &format!("HEAD:refs/heads/{branch}"),
        ],
    );
    let foreign = git(&seed, &["rev-parse", "HEAD"]);
    let (code, text) = publish(&run, None, &[]);
    assert_eq!(code, 5, "{text}");
    let t = target(&run, "results");
    assert_eq!(t["state"], "remote_mismatch", "{t:#}");
    assert!(
        t["remote"]["detail"]
            .as_str()
            .unwrap()
            .contains("never force-pushes")
    );
    assert_eq!(
        git(&bare, &["rev-parse", &format!("refs/heads/{branch}")]),
        foreign
    );
    // manifest.json does not list the ledger, so it still verifies.
    let manifest = json(&run.join("manifest.json"));
    assert!(!manifest.to_string().contains("publish_ledger.json"));
}

/// A directory holding only symlinks to the programs the run needs, and `gh` when given.
fn path_with(lab: &Lab, name: &str, gh: Option<&str>) -> String {
    let dir = lab.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    for p in ["git", "ssh", "sh"] {
        let real = hilt_hw::process::which(p).unwrap();
        std::os::unix::fs::symlink(real, dir.join(p)).unwrap();
    }
    if let Some(script) = gh {
        let f = dir.join("gh");
        std::fs::write(&f, script).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir.display().to_string()
}

#[test]
fn pull_requests_report_gh_missing_unauthenticated_and_reuse_an_existing_one() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let (_bare, _clone, _) = remote_and_clone(&lab);
    let run = chain_run(
        &mut lab,
        "publish:\n  pr:\n    repo: results\n    push: true\n    pull_request: {base: main}\n",
    );
    assert!(
        !run.join("publish_ledger.json").exists(),
        "when: manual publishes only on demand"
    );

    // No gh on PATH: committed and pushed, the pull request says why it is missing.
    let (code, text) = publish(&run, Some(&path_with(&lab, "bin-nogh", None)), &[]);
    assert_eq!(code, 5, "{text}");
    let t = target(&run, "pr");
    assert_eq!(t["state"], "pushed", "{t:#}");
    assert_eq!(t["pull_request"]["state"], "gh_missing");
    assert!(
        t["pull_request"]["detail"]
            .as_str()
            .unwrap()
            .contains("gh auth login")
    );

    // gh present but not logged in.
    let log = lab.path("gh.log");
    let unauth = format!(
        "#!/bin/sh\necho \"$*\" >> {}\nif [ \"$1 $2\" = 'auth status' ]; then echo 'You are not logged into any GitHub hosts.' >&2; exit 1; fi\nexit 3\n",
        log.display()
    );
    let (code, text) = publish(
        &run,
        Some(&path_with(&lab, "bin-unauth", Some(&unauth))),
        &[],
    );
    assert_eq!(code, 5, "{text}");
    let t = target(&run, "pr");
    assert_eq!(t["pull_request"]["state"], "gh_unauthenticated", "{t:#}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "auth status\n");

    // Logged in, and a pull request for the branch exists: reused, none created.
    std::fs::remove_file(&log).unwrap();
    let existing = format!(
        "#!/bin/sh\necho \"$*\" >> {}\ncase \"$1 $2\" in\n'auth status') exit 0;;\n'pr list') echo '[{{\"number\":42,\"state\":\"OPEN\",\"url\":\"https://github.com/lab/results/pull/42\"}}]'; exit 0;;\nesac\necho \"unexpected gh $*\" >&2; exit 9\n",
        log.display()
    );
    let (code, text) = publish(&run, Some(&path_with(&lab, "bin-pr", Some(&existing))), &[]);
    assert_eq!(code, 0, "{text}");
    let t = target(&run, "pr");
    assert_eq!(t["pull_request"]["state"], "reused", "{t:#}");
    assert_eq!(t["pull_request"]["number"], 42);
    assert_eq!(
        t["pull_request"]["url"],
        "https://github.com/lab/results/pull/42"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let branch = t["branch"].as_str().unwrap();
    assert_eq!(
        calls,
        format!(
            "auth status\npr list --head {branch} --state all --json number,url,state --limit 1\n"
        )
    );
    // Every attempt after the first found the commit and the push done.
    let attempts = t["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(
        attempts[0]["actions"],
        serde_json::json!(["committed", "pushed"])
    );
    assert_eq!(attempts[1]["actions"], serde_json::json!([]));
    assert_eq!(attempts[2]["actions"], serde_json::json!([]));
}

#[test]
fn unknown_targets_and_unfinished_runs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = publish(dir.path(), None, &[]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("error:"), "{text}");
    // A bench that declares a bad target is refused with located errors.
    std::fs::write(
        dir.path().join("bench.yaml"),
        "version: 1\nbench: {name: b}\nhosts:\n  h: {hostname: x, username: u, auth_ref: k, known_hosts: kh}\nauth_refs:\n  k: {type: ssh_agent}\npublish:\n  r:\n    repo: ''\n    branch: 'a/{sute}/../b'\n    pull_request: {}\n",
    )
    .unwrap();
    let out = hilt()
        .args(["validate", "--bench"])
        .arg(dir.path().join("bench.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{text}");
    for want in [
        "publish.r.repo: a publish target needs the path of a local git repository",
        "publish.r.branch: unknown placeholder `{sute}`",
        "publish.r.pull_request: a pull request needs the branch on the remote",
    ] {
        assert!(text.contains(want), "missing {want:?}:\n{text}");
    }
}
