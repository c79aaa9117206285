//! Long runs across interruptions, through the real binary: bundle-first staging over a
//! two-hop jump chain of real sshd instances on loopback, `hilt run` killed with SIGKILL in
//! the middle of the stage and of the execute phase, then `hilt runs resume` — completed
//! steps are not run again (each remote command appends to a counter file), stages
//! verified earlier are reused, ledgers have no duplicate lines, the results are complete.
//! Without sshd the SSH tests skip visibly (HILT_REQUIRE_PEERS=1 makes them fail).

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::sshd::{Lab, LabHilt, chain_bench, direct_bench, peers};
use common::{assert_complete, json};
use serde_json::Value;

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn lines(run: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(run.join(name))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect()
}

/// Every ledger line is unique (a repeated line would be a step recorded twice).
fn assert_no_duplicates(run: &Path) {
    for name in [
        "events.jsonl",
        "command_ledger.jsonl",
        "transfer_ledger.jsonl",
        "workflow_journal.jsonl",
    ] {
        let text = std::fs::read_to_string(run.join(name)).unwrap_or_default();
        let mut seen = HashSet::new();
        for l in text.lines() {
            assert!(seen.insert(l), "{name} has a duplicate line: {l}");
        }
    }
}

/// The one run directory under `results`, once it exists.
fn run_dir(results: &Path) -> PathBuf {
    let mut found = None;
    wait_for("the run directory", Duration::from_secs(20), || {
        found = std::fs::read_dir(results)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path());
        found.is_some()
    });
    found.unwrap()
}

fn journal_has(run: &Path, f: impl Fn(&Value) -> bool) -> bool {
    std::fs::read_to_string(run.join("workflow_journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|v| f(&v))
}

/// The platform words for this machine and for another one, as a bundle author writes them.
fn platforms() -> (&'static str, &'static str) {
    let m = Command::new("uname").arg("-m").output().unwrap();
    match String::from_utf8_lossy(&m.stdout).trim() {
        "aarch64" | "arm64" => ("linux/arm64", "linux/amd64"),
        _ => ("linux/amd64", "linux/arm64"),
    }
}

fn sha256(p: &Path) -> String {
    hilt_hw::ssh::sha256_file(p).unwrap().1
}

/// A chain lab: jump, jump, host; the bench is written.
fn chain_lab() -> Lab {
    let mut lab = Lab::new();
    let j1 = lab.sshd("PasswordAuthentication no");
    let j2 = lab.sshd("PasswordAuthentication no");
    let target = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[j1, j2, target]);
    chain_bench(&lab, j1, j2, target);
    lab
}

/// A remote counter file (the host is this machine, the file readable from here).
fn counter() -> PathBuf {
    let p = PathBuf::from(format!(
        "/tmp/hilt-resume-{}-{}.log",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

fn count(file: &Path, word: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == word)
        .count()
}

#[test]
fn sigkill_during_stage_then_resume_reuses_the_verified_stage() {
    if !peers() {
        return;
    }
    let lab = chain_lab();
    let (ours, other) = platforms();
    std::fs::write(lab.path("small.bin"), b"small bundle\n").unwrap();
    // Big enough that its copy through two hops is still under way when we kill.
    let big: Vec<u8> = (0..48u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(lab.path("big.bin"), &big).unwrap();
    let cnt = counter();
    let dest = format!("/tmp/hilt-bundles-{}", std::process::id());
    let suite = lab.write(
        "suite.yaml",
        &format!(
            "version: 1
suite: {{name: staged}}
bundles:
  small:
    dest: {dest}/small.bin
    candidates:
      - {{platform: {other}, path: small-other.bin, sha256: '{zero}'}}
      - {{platform: {ours}, path: missing-small.bin, sha256: '{zero}'}}
      - {{platform: {ours}, path: small.bin, sha256: '{small}'}}
  big:
    dest: {dest}/big.bin
    candidates:
      - {{platform: {ours}, path: big.bin, sha256: '{big}'}}
tests:
  - name: uses both
    steps:
      - ssh_exec: {{host: gateway, bundle: small, script: 'cmp -s \"$HILT_BUNDLE\" {dest}/small.bin && echo small >> {cnt}', timeout_ms: 20000}}
      - ssh_exec: {{host: gateway, bundle: big, script: 'test -s \"$HILT_BUNDLE\" && echo big >> {cnt}', timeout_ms: 20000}}
",
            zero = "0".repeat(64),
            small = sha256(&lab.path("small.bin")),
            big = sha256(&lab.path("big.bin")),
            cnt = cnt.display(),
        ),
    );
    let mut child = lab.spawn(&suite);
    let run = run_dir(&lab.path("results"));
    let end = Instant::now() + Duration::from_secs(60);
    while !journal_has(&run, |v| {
        v["t"] == "stage" && v["bundle"] == "small" && v["state"] == "done"
    }) {
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none() && Instant::now() < end,
            "no verified stage of `small` ({exited:?}); journal:\n{}\nevents:\n{}",
            std::fs::read_to_string(run.join("workflow_journal.jsonl")).unwrap_or_default(),
            std::fs::read_to_string(run.join("events.jsonl")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !journal_has(&run, |v| v["t"] == "end"),
        "the run ended before it was killed"
    );
    assert_eq!(
        count(&cnt, "small"),
        0,
        "a step ran before staging finished"
    );

    let out = lab.runs("resume", &run);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_complete(&run);
    assert_no_duplicates(&run);
    let results = json(&run.join("results.json"));
    assert_eq!(results["status"], "passed", "{stderr}");
    assert_eq!((count(&cnt, "small"), count(&cnt, "big")), (1, 1));

    // Each bundle was copied once, verified on both ends.
    let copies = lines(&run, "transfer_ledger.jsonl");
    for b in ["small", "big"] {
        let c: Vec<&Value> = copies.iter().filter(|t| t["bundle"] == b).collect();
        assert_eq!(c.len(), 1, "{b}: {copies:?}");
        assert_eq!(c[0]["verified"], true);
        assert_eq!(c[0]["local_sha256"], c[0]["remote_sha256"]);
    }
    let small_copy = copies.iter().find(|t| t["bundle"] == "small").unwrap();
    assert_eq!(small_copy["attempt"], 1);

    // The decisions and their basis are in the run manifest.
    let manifest = json(&run.join("run_manifest.json"));
    let staging = manifest["staging"].as_array().unwrap();
    let small = staging.iter().find(|s| s["bundle"] == "small").unwrap();
    assert_eq!(small["decision"], "reused", "{small}");
    assert_eq!(small["verified"], true);
    assert!(
        small["basis"].as_str().unwrap().contains("attempt 1"),
        "{small}"
    );
    let skipped = small["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{small}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not match")
    );
    assert!(skipped[1]["reason"].as_str().unwrap().contains("missing"));
    assert_eq!(small["candidate"]["index"], 2);
    let bigd = staging.iter().find(|s| s["bundle"] == "big").unwrap();
    assert_eq!(bigd["decision"], "prebuilt", "{bigd}");
    let attempts = manifest["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(attempts[0]["status"].is_null(), "attempt 1 was killed");
    assert_eq!(attempts[1]["status"], "passed");
    let _ = std::fs::remove_file(&cnt);
    let _ = std::fs::remove_dir_all(&dest);
}

#[test]
fn sigkill_during_execute_then_resume_runs_each_completed_step_once() {
    if !peers() {
        return;
    }
    let lab = chain_lab();
    std::fs::write(lab.path("payload.txt"), b"payload\n").unwrap();
    let cnt = counter();
    let c = cnt.display();
    let up = format!("/tmp/hilt-resume-up-{}.txt", std::process::id());
    let suite = lab.write(
        "suite.yaml",
        &format!(
            "version: 1
suite: {{name: interrupted}}
tests:
  - name: first
    steps:
      - ssh_exec: {{host: gateway, script: 'echo t1s1 >> {c}'}}
      - upload: {{host: gateway, src: payload.txt, dest: {up}}}
      - ssh_exec: {{host: gateway, script: 'echo t1s3 >> {c}'}}
  - name: second
    steps:
      - ssh_exec: {{host: gateway, script: 'echo t2s1 >> {c}'}}
      - ssh_exec: {{host: gateway, script: 'echo t2s2 >> {c}; [ $(grep -c t2s2 {c}) -gt 1 ] || sleep 20', timeout_ms: 60000}}
      - ssh_exec: {{host: gateway, script: 'echo t2s3 >> {c}'}}
  - name: third
    steps:
      - ssh_exec: {{host: gateway, script: 'echo t3s1 >> {c}'}}
"
        ),
    );
    let mut child = lab.spawn(&suite);
    let run = run_dir(&lab.path("results"));
    wait_for("the hanging step", Duration::from_secs(60), || {
        count(&cnt, "t2s2") == 1
    });
    child.kill().unwrap(); // SIGKILL, in the middle of step 2 of test 2
    child.wait().unwrap();

    // The stalled run says so, with the exact next command.
    let status = lab.runs("status", &run);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(5), "{text}");
    assert!(text.contains("Attention: stalled"), "{text}");
    assert!(
        text.contains(&format!("run:  hilt runs resume {}", run.display())),
        "{text}"
    );

    // recover executes nothing.
    let before = std::fs::read_to_string(run.join("command_ledger.jsonl")).unwrap();
    let rec = lab.runs("recover", &run);
    assert_eq!(
        rec.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(run.join("command_ledger.jsonl")).unwrap(),
        before
    );
    let summary = std::fs::read_to_string(run.join("recovery_summary.md")).unwrap();
    assert!(summary.contains("interrupted after step 1"), "{summary}");
    assert!(
        summary.contains(&format!("hilt runs resume {}", run.display())),
        "{summary}"
    );
    assert_eq!(count(&cnt, "t2s2"), 1, "recover ran something");

    let out = lab.runs("resume", &run);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1 test(s) kept"), "{stderr}");
    assert_complete(&run);
    assert_no_duplicates(&run);
    // Completed steps ran once; the interrupted one again; the rest once.
    for (word, n) in [
        ("t1s1", 1),
        ("t1s3", 1),
        ("t2s1", 1),
        ("t2s2", 2),
        ("t2s3", 1),
        ("t3s1", 1),
    ] {
        assert_eq!(count(&cnt, word), n, "{word}");
    }
    let results = json(&run.join("results.json"));
    assert_eq!(results["status"], "passed");
    let names: Vec<&str> = results["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second", "third"]);
    assert_eq!(results["summary"]["passed"], 3);
    // The upload was done once; the interrupted command has one ledger line per attempt.
    assert_eq!(lines(&run, "transfer_ledger.jsonl").len(), 1);
    let cmds = lines(&run, "command_ledger.jsonl");
    let t2s2: Vec<&Value> = cmds
        .iter()
        .filter(|c| c["test_name"] == "second" && c["step_index"] == 2)
        .collect();
    assert!(t2s2.len() <= 2, "{t2s2:?}");
    assert_eq!(t2s2.last().unwrap()["attempt"], 2);
    assert_eq!(cmds.iter().filter(|c| c["test_name"] == "first").count(), 2);
    // A second resume has nothing to do.
    let again = lab.runs("resume", &run);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to resume"));
    let _ = std::fs::remove_file(&cnt);
    let _ = std::fs::remove_file(&up);
}

#[test]
fn a_bundle_whose_checksum_differs_is_refused_and_a_fallback_is_recorded() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let port = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[port]);
    direct_bench(&lab, port, "lab-key");
    let (ours, other) = platforms();
    std::fs::write(lab.path("tool.bin"), b"the real tool\n").unwrap();
    let dest = format!("/tmp/hilt-bundle-fb-{}", std::process::id());
    let (out, run) = lab.run(&format!(
        "  - name: never runs
    steps:
      - ssh_exec: {{host: box, bundle: tool, argv: ['true']}}
bundles:
  tool:
    dest: {dest}/tool.bin
    candidates:
      - {{platform: {ours}, path: tool.bin, sha256: '{wrong}'}}
",
        wrong = "ab".repeat(32)
    ));
    assert_ne!(out.status.code(), Some(0));
    let results = json(&run.join("results.json"));
    assert_eq!(
        results["failure"]["category"], "BUNDLE_CHECKSUM_MISMATCH",
        "{}",
        results["failure"]
    );
    assert_eq!(results["failure"]["source"], "configuration");
    assert!(
        results["tests"].as_array().unwrap().is_empty(),
        "a test ran"
    );
    assert!(
        !run.join("transfer_ledger.jsonl").exists(),
        "something was copied"
    );
    let staging = json(&run.join("run_manifest.json"))["staging"].clone();
    assert_eq!(staging[0]["decision"], "refused", "{staging}");
    let status = json(&run.join("status.json"));
    assert_eq!(status["primary_alert"]["code"], "BUNDLE_CHECKSUM_MISMATCH");
    assert_eq!(
        status["primary_alert"]["next_diagnostic_command"],
        format!("sha256sum {}", lab.path("tool.bin").display())
    );

    // No candidate for this platform: the fallback builds it on the host, recorded.
    let (out, run) = lab.run(&format!(
        "  - name: uses the fallback
    steps:
      - ssh_exec: {{host: box, bundle: tool, script: 'cat \"$HILT_BUNDLE\"', expect_contains: built-on-host}}
bundles:
  tool:
    dest: {dest}/tool2.bin
    candidates:
      - {{platform: {other}, path: tool.bin, sha256: '{sum}'}}
    fallback: {{script: 'echo built-on-host > \"$HILT_BUNDLE_DEST\"'}}
",
        sum = sha256(&lab.path("tool.bin"))
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let staging = json(&run.join("run_manifest.json"))["staging"].clone();
    assert_eq!(staging[0]["decision"], "fallback", "{staging}");
    let basis = staging[0]["basis"].as_str().unwrap();
    assert!(
        basis.contains("does not match") && basis.contains("fallback"),
        "{basis}"
    );
    let _ = std::fs::remove_dir_all(&dest);
}
