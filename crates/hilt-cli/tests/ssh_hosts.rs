//! Remote hosts over SSH through the real `hilt` binary against real OpenSSH servers on
//! loopback (`hilt_testkit::sshd`): each test starts its own sshd instances (children of
//! the test, killed when it ends) on free high ports with a generated host key and client
//! key, logging in as the `hilt-test` user that `scripts/peers.sh` creates. Without sshd (or not as root, which
//! sshd needs to switch users) the tests skip visibly; with HILT_REQUIRE_PEERS=1 they fail.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::sshd::{LabHilt, chain_bench, direct_bench};
use common::{assert_complete, hilt, json, last_run};
use hilt_testkit::sshd::{Lab, USER, free_port, keygen, peers};
use serde_json::Value;

const AUTH: &str = Lab::AUTH;

fn ledger(run: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(run.join(name))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn failure(run: &Path, test: usize) -> Value {
    json(&run.join("results.json"))["tests"][test]["failure"].clone()
}

#[test]
fn direct_exec_captures_stdout_stderr_and_records_the_command() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let port = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[port]);
    direct_bench(&lab, port, "lab-key");
    let (out, run) = lab.run(
        "  - name: exec
    steps:
      - ssh_exec: {host: box, argv: [sh, -c, 'echo to-out; echo to-err >&2'], expect_contains: to-out}
      - ssh_exec: {host: box, script: 'echo \"$GREETING from $(pwd)\"', cwd: /tmp, env: {GREETING: hello}, expect_regex: '(?m)^hello from /tmp$'}
      - ssh_exec: {host: box, argv: [whoami], expect_contains: hilt-test}
      - ssh_exec: {host: box, argv: [sh, -c, 'head -c 5000000 /dev/zero; echo done >&2'], max_output_bytes: 1000}
  - name: wrong exit
    steps:
      - ssh_exec: {host: box, argv: [sh, -c, 'echo boom >&2; exit 3']}
",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_complete(&run);
    let results = json(&run.join("results.json"));
    assert_eq!(results["tests"][0]["passed"], true, "{stderr}");
    assert_eq!(results["tests"][1]["passed"], false);
    let f = failure(&run, 1);
    assert_eq!(f["category"], "REMOTE_COMMAND_FAILED");
    assert_eq!(f["source"], "test_logic");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains("exited with 3, expected 0") && msg.contains("boom"),
        "{msg}"
    );
    assert_ne!(out.status.code(), Some(0));

    let locks: Vec<&str> = results["resource_locks"]["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(locks, [format!("ssh:{USER}@127.0.0.1:{port}")]);
    let manifest = json(&run.join("run_manifest.json"));
    assert!(manifest["ledgers"]["transfer_ledger"].is_null());

    let host_logs = run.join("logs/hosts/box");
    let so = std::fs::read_to_string(host_logs.join("exec-step1.stdout")).unwrap();
    let se = std::fs::read_to_string(host_logs.join("exec-step1.stderr")).unwrap();
    assert_eq!((so.as_str(), se.as_str()), ("to-out\n", "to-err\n"));
    let cmds = ledger(&run, "command_ledger.jsonl");
    let remote: Vec<&Value> = cmds.iter().filter(|c| c["type"] == "ssh_exec").collect();
    assert_eq!(remote.len(), 5, "{cmds:?}");
    assert_eq!(remote[0]["host"], "box");
    assert_eq!(
        remote[0]["chain"],
        serde_json::json!([format!("box ({USER}@127.0.0.1:{port})")])
    );
    assert_eq!(remote[1]["env_names"], serde_json::json!(["GREETING"]));
    // A flood is cut at the cap and the command still ends normally.
    assert_eq!(remote[3]["output_truncated"], true);
    assert_eq!(remote[3]["stdout_bytes"], 1000);
    assert_eq!(remote[3]["exit_code"], 0);
    let flood = std::fs::metadata(host_logs.join("exec-step4.stdout"))
        .unwrap()
        .len();
    assert!(flood < 2000, "{flood} bytes kept");
    assert_eq!(remote[4]["exit_code"], 3);
}

#[test]
fn jump_chain_exec_crosses_both_hops() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    // The jumps log each forwarded connection's target (debug1).
    let j1 = lab.sshd("PasswordAuthentication no\nLogLevel DEBUG1");
    let j2 = lab.sshd("PasswordAuthentication no\nLogLevel DEBUG1");
    let target = lab.sshd("PasswordAuthentication no\nLogLevel VERBOSE");
    lab.known_hosts(&[j1, j2, target]);
    chain_bench(&lab, j1, j2, target);
    let (out, run) = lab.run(
        "  - name: through the chain
    steps:
      - ssh_exec: {host: gateway, argv: [uname, -s], expect_contains: Linux, timeout_ms: 20000}
      - ssh_exec: {host: gateway, argv: ['true']}
",
    );
    let results = json(&run.join("results.json"));
    assert_eq!(
        results["status"],
        "passed",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log1 = std::fs::read_to_string(lab.log(j1)).unwrap();
    let log2 = std::fs::read_to_string(lab.log(j2)).unwrap();
    assert!(
        log1.contains(&format!("target 127.0.0.1 port {j2}")),
        "the first hop did not forward to the second:\n{log1}"
    );
    assert!(
        log2.contains(&format!("target 127.0.0.1 port {target}")),
        "the second hop did not forward to the host:\n{log2}"
    );
    // One connection for both commands: the host saw a single login.
    let logt = std::fs::read_to_string(lab.log(target)).unwrap();
    assert_eq!(logt.matches("Accepted publickey").count(), 1, "{logt}");
    let cmds = ledger(&run, "command_ledger.jsonl");
    assert_eq!(
        cmds[0]["chain"],
        serde_json::json!([
            format!("bastion ({USER}@127.0.0.1:{j1})"),
            format!("inner ({USER}@127.0.0.1:{j2})"),
            format!("gateway ({USER}@127.0.0.1:{target})"),
        ])
    );
}

#[test]
fn a_hop_that_refuses_forwarding_breaks_the_chain() {
    // Negative control for the chain: the host itself is reachable from here, but not
    // through a first hop that refuses to forward, so a run that really uses the chain fails.
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let j1 = lab.sshd("PasswordAuthentication no\nAllowTcpForwarding no\nLogLevel VERBOSE");
    let j2 = lab.sshd("PasswordAuthentication no");
    let target = lab.sshd("PasswordAuthentication no\nLogLevel VERBOSE");
    lab.known_hosts(&[j1, j2, target]);
    chain_bench(&lab, j1, j2, target);
    let (_, run) = lab.run(
        "  - name: blocked
    steps:
      - ssh_exec: {host: gateway, argv: ['true']}
",
    );
    let f = failure(&run, 0);
    assert_eq!(f["category"], "REMOTE_HOST_UNREACHABLE", "{f}");
    assert_eq!(f["source"], "bench_infrastructure");
    // The first hop answers on its own; the chain breaks when it must forward to the next.
    assert_eq!(f["details"]["failed_at"], "inner", "{f}");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("forwarding failed"), "{msg}");
    let log1 = std::fs::read_to_string(lab.log(j1)).unwrap();
    assert!(log1.contains("refused local port forward"), "{log1}");
    let logt = std::fs::read_to_string(lab.log(target)).unwrap_or_default();
    assert!(!logt.contains("Accepted publickey"), "{logt}");
}

#[test]
fn upload_and_download_are_verified_and_ledgered() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let j1 = lab.sshd("PasswordAuthentication no");
    let j2 = lab.sshd("PasswordAuthentication no");
    let target = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[j1, j2, target]);
    chain_bench(&lab, j1, j2, target);
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(lab.path("bundle.bin"), &data).unwrap();
    let (_, sum) = hilt_hw::ssh::sha256_file(&lab.path("bundle.bin")).unwrap();
    let remote = format!("/tmp/hilt-upload-{}.bin", std::process::id());
    let (out, run) = lab.run(&format!(
        "  - name: copy
    steps:
      - upload: {{host: gateway, src: bundle.bin, dest: {remote}}}
      - ssh_exec: {{host: gateway, argv: [sha256sum, {remote}], expect_contains: {sum}}}
      - download: {{host: gateway, src: {remote}, dest: back/bundle.bin}}
      - ssh_exec: {{host: gateway, argv: [rm, -f, {remote}]}}
  - name: missing remote file
    steps:
      - download: {{host: gateway, src: /nonexistent/hilt-file, dest: x.bin}}
"
    ));
    let results = json(&run.join("results.json"));
    assert_eq!(
        results["tests"][0]["passed"],
        true,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = std::fs::read(run.join("remote-artifacts/gateway/back/bundle.bin")).unwrap();
    assert!(back == data, "downloaded bytes differ");
    let manifest = json(&run.join("run_manifest.json"));
    assert_eq!(
        manifest["ledgers"]["transfer_ledger"],
        "transfer_ledger.jsonl"
    );
    let t = ledger(&run, "transfer_ledger.jsonl");
    assert_eq!(t.len(), 3, "{t:?}");
    for (entry, dir) in t.iter().zip(["upload", "download"]) {
        assert_eq!(entry["direction"], dir);
        assert_eq!(entry["size_bytes"], data.len() as u64);
        assert_eq!(entry["local_sha256"], sum.as_str());
        assert_eq!(entry["remote_sha256"], sum.as_str());
        assert_eq!(entry["verified"], true);
        assert_eq!(entry["chain"].as_array().unwrap().len(), 3);
    }
    assert_eq!(t[2]["verified"], false);
    let f = failure(&run, 1);
    assert_eq!(f["category"], "REMOTE_TRANSFER_FAILED");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/hilt-file"),
        "{f}"
    );
}

#[test]
fn host_key_mismatch_on_a_hop_is_refused_and_names_it() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let j1 = lab.sshd("PasswordAuthentication no");
    let j2 = lab.sshd("PasswordAuthentication no");
    let target = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[j1, j2, target]);
    // The second hop's known key is another one.
    keygen(&lab.path("other_ed25519"));
    let other = std::fs::read_to_string(lab.path("other_ed25519.pub")).unwrap();
    let other: Vec<&str> = other.split_whitespace().take(2).collect();
    let kh = std::fs::read_to_string(lab.path("known_hosts")).unwrap();
    let kh: String = kh
        .lines()
        .map(|l| {
            if l.starts_with(&format!("[127.0.0.1]:{j2} ")) {
                format!("[127.0.0.1]:{j2} {}\n", other.join(" "))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(lab.path("known_hosts"), kh).unwrap();
    chain_bench(&lab, j1, j2, target);
    let (out, run) = lab.run(
        "  - name: refused
    steps:
      - ssh_exec: {host: gateway, argv: ['true']}
",
    );
    assert_ne!(out.status.code(), Some(0));
    let f = failure(&run, 0);
    assert_eq!(f["category"], "REMOTE_HOST_KEY_MISMATCH", "{f}");
    assert_eq!(f["source"], "bench_infrastructure");
    assert_eq!(f["details"]["failed_at"], "inner");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("jump hop inner ({USER}@127.0.0.1:{j2})")),
        "{msg}"
    );
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("REMOTE_HOST_KEY_MISMATCH"), "{shown}");
    // The host behind the refused hop was never logged into.
    let logt = std::fs::read_to_string(lab.log(target)).unwrap_or_default();
    assert!(!logt.contains("Accepted publickey"), "{logt}");
}

#[test]
fn an_unreachable_hop_is_named() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let j2 = lab.sshd("PasswordAuthentication no");
    let target = lab.sshd("PasswordAuthentication no");
    let dead = free_port();
    lab.known_hosts(&[dead, j2, target]);
    chain_bench(&lab, dead, j2, target);
    let (_, run) = lab.run(
        "  - name: down
    steps:
      - ssh_exec: {host: gateway, argv: ['true']}
",
    );
    let f = failure(&run, 0);
    assert_eq!(f["category"], "REMOTE_HOST_UNREACHABLE", "{f}");
    assert_eq!(f["details"]["failed_at"], "bastion");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains("after 2 attempts"),
        "retry policy not applied: {msg}"
    );
}

#[test]
fn timeout_kills_the_remote_process() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let port = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[port]);
    direct_bench(&lab, port, "lab-key");
    // A duration no other test uses, to find exactly this process on the "remote".
    let secs = 5000 + std::process::id() % 4000;
    let pattern = format!("sleep {secs}");
    let (_, run) = lab.run(&format!(
        "  - name: hangs
    steps:
      - ssh_exec: {{host: box, argv: [sh, -c, 'sleep {secs}; echo never'], timeout_ms: 1500}}
"
    ));
    let f = failure(&run, 0);
    assert_eq!(f["category"], "STEP_TIMEOUT", "{f}");
    assert_eq!(f["details"]["remote_killed"], true, "{f}");
    let left = Command::new("pgrep")
        .args(["-u", USER, "-f", &pattern])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "`{pattern}` still runs on the remote after the timeout: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    let cmds = ledger(&run, "command_ledger.jsonl");
    assert_eq!(cmds[0]["timed_out"], true);
}

#[test]
fn password_env_value_never_reaches_the_run_directory() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let port = lab.sshd("PasswordAuthentication yes\nLogLevel VERBOSE");
    lab.known_hosts(&[port]);
    direct_bench(&lab, port, "lab-pw");
    let (out, run) = lab.run(
        "  - name: password
    steps:
      - ssh_exec: {host: box, argv: ['true']}
",
    );
    // hilt-test has no valid password: the login is refused, after hilt (as the askpass
    // helper) handed the variable's value to ssh.
    let f = failure(&run, 0);
    assert_eq!(f["category"], "REMOTE_AUTH_FAILED", "{f}");
    let log = std::fs::read_to_string(lab.log(port)).unwrap();
    assert!(
        log.contains("Failed password for hilt-test"),
        "no password was offered:\n{log}"
    );
    let secret = "pw-never-in-files-7f3a";
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));
    let mut stack = vec![run.clone()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "the password is in {}",
                    p.display()
                );
            }
        }
    }
    assert!(files > 10, "only {files} files checked");
}

#[test]
fn a_wrong_auth_ref_is_a_located_configuration_error() {
    // No sshd needed: the bench is refused before anything connects.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("known_hosts"), "").unwrap();
    std::fs::write(dir.path().join("id"), "").unwrap();
    let bench = dir.path().join("bench.yaml");
    std::fs::write(
        &bench,
        "version: 1
bench: {name: typo}
auth_refs:
  lab-key: {type: key_file, path: id}
hosts:
  gateway:
    hostname: 10.0.0.12
    username: tester
    auth_ref: lab-kee
    known_hosts: known_hosts
    transport:
      type: jump_chain
      hops:
        - {name: bastion, port: 22, username: tester, auth_ref: lab-key}
  nokeys:
    hostname: 10.0.0.13
    username: tester
    auth_ref: lab-key
",
    )
    .unwrap();
    let suite = dir.path().join("suite.yaml");
    std::fs::write(
        &suite,
        "version: 1\nsuite: {name: s}\ntests:\n  - name: t\n    steps:\n      - ssh_exec: {host: gateway, argv: ['true']}\n      - ssh_exec: {host: gatway, argv: ['true']}\n",
    )
    .unwrap();
    let out = hilt()
        .arg("run")
        .arg("--bench")
        .arg(&bench)
        .arg("--suite")
        .arg(&suite)
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    let b = bench.display().to_string();
    for want in [
        format!("{b}:9:15: hosts.gateway.auth_ref: unknown auth_ref `lab-kee`"),
        "did you mean `lab-key`?".to_string(),
        format!("{b}:14:11: hosts.gateway.transport.hops[0]: hop bastion has no `hostname`"),
        format!("{b}:16:5: hosts.nokeys: a host needs a `known_hosts` file"),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    let run = last_run(&dir.path().join("results"));
    assert_eq!(
        json(&run.join("results.json"))["failure"]["category"],
        "CONFIG_ERROR"
    );

    // With the bench fixed, the suite's misspelt host is located in the suite.
    let fixed = std::fs::read_to_string(&bench)
        .unwrap()
        .replace("lab-kee", "lab-key")
        .replace("{name: bastion,", "{name: bastion, hostname: 10.0.0.1,");
    let fixed = fixed[..fixed.find("  nokeys:").unwrap()].to_string();
    std::fs::write(&bench, fixed).unwrap();
    let out = hilt()
        .args(["validate", "--bench"])
        .arg(&bench)
        .arg("--suite")
        .arg(&suite)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    let s = suite.display().to_string();
    assert!(
        text.contains(&format!("{s}:7:")) && text.contains("unknown host `gatway`"),
        "{text}"
    );
    assert!(text.contains("did you mean `gateway`?"), "{text}");
}

fn remote_running(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-u", USER, "-f", pattern])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty())
}

#[test]
fn cancel_kills_the_remote_process() {
    if !peers() {
        return;
    }
    let mut lab = Lab::new();
    let j1 = lab.sshd("PasswordAuthentication no");
    let target = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[j1, target]);
    lab.write(
        "bench.yaml",
        &format!(
            "version: 1\nbench: {{name: one hop}}\n{AUTH}hosts:\n  box:\n    hostname: 127.0.0.1\n    port: {target}\n    username: {USER}\n    auth_ref: lab-key\n    known_hosts: known_hosts\n    transport:\n      type: jump_chain\n      hops: [{{hostname: 127.0.0.1, port: {j1}, username: {USER}, auth_ref: lab-key}}]\n"
        ),
    );
    let secs = 9000 + std::process::id() % 900;
    let pattern = format!("sleep {secs}");
    let suite = lab.write(
        "suite.yaml",
        &format!(
            "version: 1\nsuite: {{name: cancel}}\ntests:\n  - name: long\n    steps:\n      - ssh_exec: {{host: box, argv: [sh, -c, 'sleep {secs} | cat'], timeout_ms: 600000}}\n"
        ),
    );
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("hilt"))
        .env("HILT_LOCK_DIR", lab.path("locks"))
        .env("NO_COLOR", "1")
        .arg("run")
        .arg("--bench")
        .arg(lab.path("bench.yaml"))
        .arg("--suite")
        .arg(&suite)
        .arg("--results-dir")
        .arg(lab.path("results"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while !remote_running(&pattern) {
        assert!(Instant::now() < end, "the remote command never started");
        assert!(child.try_wait().unwrap().is_none(), "hilt ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "hilt did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !remote_running(&pattern),
        "`{pattern}` (and its pipeline) still runs on the remote after cancel"
    );
    let run = last_run(&lab.path("results"));
    assert_eq!(json(&run.join("results.json"))["status"], "cancelled");
    let cmds = ledger(&run, "command_ledger.jsonl");
    assert_eq!(cmds[0]["cancelled"], true, "{cmds:?}");
    assert_eq!(cmds[0]["remote_killed"], true, "{cmds:?}");
    assert_eq!(cmds[0]["chain"].as_array().unwrap().len(), 2);
}

#[test]
fn a_missing_password_variable_is_named_before_connecting() {
    // No sshd needed: the host is refused before ssh is started.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("known_hosts"), "").unwrap();
    std::fs::write(dir.path().join("id"), "").unwrap();
    std::fs::write(
        dir.path().join("bench.yaml"),
        "version: 1
bench: {name: pw}
auth_refs:
  key: {type: key_file, path: id}
  jump-pw: {type: password_env, value: HILT_TEST_UNSET_JUMP_PASSWORD}
hosts:
  gateway:
    hostname: 127.0.0.1
    port: 1
    username: tester
    auth_ref: key
    known_hosts: known_hosts
    transport:
      type: jump_chain
      hops: [{name: bastion, hostname: 127.0.0.1, port: 1, username: tester, auth_ref: jump-pw}]
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("suite.yaml"),
        "version: 1\nsuite: {name: s}\ntests:\n  - name: t\n    steps:\n      - ssh_exec: {host: gateway, argv: ['true']}\n",
    )
    .unwrap();
    let out = hilt()
        .env_remove("HILT_TEST_UNSET_JUMP_PASSWORD")
        .arg("run")
        .arg("--bench")
        .arg(dir.path().join("bench.yaml"))
        .arg("--suite")
        .arg(dir.path().join("suite.yaml"))
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let run = last_run(&dir.path().join("results"));
    let f = failure(&run, 0);
    assert_eq!(f["category"], "REMOTE_AUTH_FAILED", "{f}");
    assert_eq!(f["details"]["failed_at"], "bastion");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("variable `HILT_TEST_UNSET_JUMP_PASSWORD` is not set"),
        "{f}"
    );
}
