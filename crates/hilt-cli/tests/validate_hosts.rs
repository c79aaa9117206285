//! `hilt validate --scope …` through the real binary: connectivity through a two-hop
//! chain of loopback sshd (`hilt_testkit::sshd`), the commands and uploads a suite needs,
//! publish prerequisites, and the JSON report — a hop that is down is named and the exit
//! code is non-zero; a missing password variable or repository is a failed check in the
//! report, never an abort.

mod common;

use std::path::Path;

use common::{hilt, json};
use hilt_testkit::sshd::{Lab, USER, free_port, peers};
use serde_json::Value;

fn validate(lab: &Lab, scope: &str, report: &Path) -> (i32, String) {
    let out = hilt()
        .current_dir(lab.dir.path())
        .args(["validate", "--bench"])
        .arg(lab.path("bench.yaml"))
        .arg("--suite")
        .arg(lab.path("suite.yaml"))
        .args(["--scope", scope, "--report"])
        .arg(report)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn suite(lab: &Lab, extra_steps: &str) {
    lab.write(
        "suite.yaml",
        &format!(
            "version: 1\nsuite: {{name: s}}\ntests:\n  - name: t\n    steps:\n      - ssh_exec: {{host: gateway, argv: [uname, -s]}}\n      - upload: {{host: gateway, src: tool.bin, dest: /tmp/hilt-validate-{}.bin}}\n{extra_steps}",
            std::process::id()
        ),
    );
}

#[test]
fn a_hop_that_is_down_is_named_in_the_report_and_fails_the_check() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let j1 = lab.sshd("PasswordAuthentication no");
    let j2 = lab.sshd("PasswordAuthentication no");
    let target = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[j1, j2, target]);
    lab.chain_bench(j1, j2, target, "");
    std::fs::write(lab.path("tool.bin"), vec![7u8; 12345]).unwrap();
    suite(&lab, "");
    let report = lab.path("report.json");

    // Everything up: exit 0, each hop reached, the command and the upload predicted.
    let (code, text) = validate(&lab, "all", &report);
    assert_eq!(code, 0, "{text}");
    let r = json(&report);
    assert_eq!(r["ok"], true);
    assert_eq!(r["schema_version"], "hilt.validate_report.v1");
    for id in [
        "config.files",
        "connectivity.gateway.auth.bastion",
        "connectivity.gateway.known_hosts",
        "connectivity.gateway.reach.bastion",
        "connectivity.gateway.reach.inner",
        "connectivity.gateway.reach.gateway",
        "connectivity.gateway.exec",
        "connectivity.gateway.command.uname",
        "staging.gateway.tool.sha256sum",
        "staging.gateway.upload.tests[0].steps[1]",
    ] {
        assert_eq!(check(&r, id)["status"], "pass", "{id}: {r:#}");
    }
    let up = check(&r, "staging.gateway.upload.tests[0].steps[1]");
    assert!(
        up["detail"].as_str().unwrap().contains("12345 bytes"),
        "{up}"
    );
    assert_eq!(check(&r, "publish.targets")["status"], "skip");
    assert_eq!(
        check(&r, "connectivity.gateway.reach.inner")["detail"],
        format!("jump hop inner ({USER}@127.0.0.1:{j2}) reached")
    );

    // A missing program and a missing upload source are failed checks with a fix.
    std::fs::remove_file(lab.path("tool.bin")).unwrap();
    suite(
        &lab,
        "      - ssh_exec: {host: gateway, argv: [hilt-no-such-tool]}\n",
    );
    let (code, text) = validate(&lab, "all", &report);
    assert_eq!(code, 4, "{text}");
    let r = json(&report);
    let c = check(&r, "connectivity.gateway.command.hilt-no-such-tool");
    assert_eq!(c["status"], "fail");
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("install `hilt-no-such-tool`"),
        "{c}"
    );
    assert_eq!(
        check(&r, "staging.gateway.upload.tests[0].steps[1]")["status"],
        "fail"
    );
    assert!(
        text.contains("FAIL connectivity.gateway.command.hilt-no-such-tool"),
        "{text}"
    );

    // The second hop goes down: it is named, the first passes, the host is not tried.
    suite(&lab, "");
    std::fs::write(lab.path("tool.bin"), b"x").unwrap();
    lab.stop(j2);
    let (code, text) = validate(&lab, "connectivity", &report);
    assert_eq!(code, 4, "{text}");
    let r = json(&report);
    assert_eq!(r["ok"], false);
    assert_eq!(
        check(&r, "connectivity.gateway.reach.bastion")["status"],
        "pass"
    );
    let inner = check(&r, "connectivity.gateway.reach.inner");
    assert_eq!(inner["status"], "fail", "{r:#}");
    assert_eq!(inner["host"], "gateway");
    assert!(
        inner["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("jump hop inner ({USER}@127.0.0.1:{j2})")),
        "{inner}"
    );
    assert!(
        inner["fix"].as_str().unwrap().contains("reachable"),
        "{inner}"
    );
    assert_eq!(
        check(&r, "connectivity.gateway.reach.gateway")["status"],
        "skip"
    );
    assert_eq!(
        check(&r, "connectivity.gateway.command.uname")["status"],
        "skip"
    );
    assert!(r["summary"]["required_failed"].as_u64().unwrap() >= 1);
}

#[test]
fn a_missing_password_variable_and_repository_give_a_structured_report() {
    // No sshd needed: nothing is reachable, and nothing aborts.
    let lab_dir = tempfile::tempdir().unwrap();
    let d = lab_dir.path();
    std::fs::write(d.join("known_hosts"), "").unwrap();
    std::fs::write(d.join("id"), "").unwrap();
    let dead = free_port();
    std::fs::write(
        d.join("bench.yaml"),
        format!(
            "version: 1
bench: {{name: pw}}
auth_refs:
  key: {{type: key_file, path: id}}
  jump-pw: {{type: password_env, value: HILT_TEST_UNSET_VALIDATE_PASSWORD}}
hosts:
  gateway:
    hostname: 127.0.0.1
    port: {dead}
    username: tester
    auth_ref: key
    known_hosts: known_hosts
    transport:
      type: jump_chain
      hops: [{{name: bastion, hostname: 127.0.0.1, port: {dead}, username: tester, auth_ref: jump-pw}}]
publish:
  results: {{repo: no-such-repo, push: true}}
"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("suite.yaml"),
        "version: 1\nsuite: {name: s}\ntests:\n  - name: t\n    steps:\n      - ssh_exec: {host: gateway, argv: [uname]}\n",
    )
    .unwrap();
    // No --report: the report goes to the bench's results directory.
    let out = hilt()
        .current_dir(d)
        .env_remove("HILT_TEST_UNSET_VALIDATE_PASSWORD")
        .args([
            "validate",
            "--bench",
            "bench.yaml",
            "--suite",
            "suite.yaml",
            "--scope",
            "all",
            "--json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = json(&d.join("benchci-results/validate-report.json"));
    assert_eq!(printed["checks"], r["checks"]);
    let pw = check(&r, "connectivity.gateway.auth.bastion");
    assert_eq!(pw["status"], "fail");
    assert!(
        pw["detail"]
            .as_str()
            .unwrap()
            .contains("variable `HILT_TEST_UNSET_VALIDATE_PASSWORD` is not set"),
        "{pw}"
    );
    assert!(
        pw["fix"]
            .as_str()
            .unwrap()
            .starts_with("export HILT_TEST_UNSET_VALIDATE_PASSWORD=")
    );
    for id in [
        "connectivity.gateway.reach.bastion",
        "connectivity.gateway.reach.gateway",
        "connectivity.gateway.command.uname",
    ] {
        assert_eq!(check(&r, id)["status"], "skip", "{id}");
    }
    assert_eq!(check(&r, "publish.results.git")["status"], "pass");
    let repo = check(&r, "publish.results.repo");
    assert_eq!(repo["status"], "fail");
    assert_eq!(repo["target"], "results");
    assert!(
        repo["detail"].as_str().unwrap().contains("no-such-repo"),
        "{repo}"
    );
    assert_eq!(check(&r, "publish.results.remote")["status"], "skip");

    // Without --scope, validate behaves as before: the files are valid.
    let out = hilt()
        .current_dir(d)
        .args(["validate", "--bench", "bench.yaml", "--suite", "suite.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_files_are_reported_and_nothing_else_is_tried() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("bench.yaml"),
        "version: 1\nbench: {name: b}\n",
    )
    .unwrap();
    let report = d.path().join("r.json");
    let out = hilt()
        .args(["validate", "--bench"])
        .arg(d.path().join("bench.yaml"))
        .args(["--scope", "connectivity", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let r = json(&report);
    assert_eq!(r["checks"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(check(&r, "config.files")["status"], "fail");
}
