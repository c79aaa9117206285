//! `run` against real processes.

use super::*;
use std::path::Path;

fn spec(dir: &Path, argv: &[&str], timeout_ms: u64) -> CommandSpec {
    let mut s = CommandSpec::new(argv.iter().copied(), dir.join("out.log"));
    s.timeout = Duration::from_millis(timeout_ms);
    s.grace = Duration::from_millis(500);
    s
}

fn output(o: &CommandOutcome) -> String {
    String::from_utf8_lossy(&std::fs::read(&o.output_path).unwrap()).into_owned()
}

/// `true` when `pid` no longer exists or is a zombie that is not ours to reap (a
/// reparented grandchild waiting for init).
fn gone_or_orphan_zombie(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn exit_code_and_combined_output() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(
        tmp.path(),
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        10_000,
    );
    let o = run(&s, &CancelToken::new()).unwrap();
    assert_eq!(o.exit_code, 3);
    assert_eq!(o.signal, None);
    assert!(!o.success() && !o.timed_out && !o.cancelled);
    assert_eq!(output(&o), "out\nerr\n");
    assert_eq!(o.output_bytes, 8);
    assert!(!o.output_truncated);

    // Appends, and a zero exit is a success.
    let o = run(
        &spec(tmp.path(), &["echo", "again"], 10_000),
        &CancelToken::new(),
    )
    .unwrap();
    assert!(o.success());
    assert_eq!(output(&o), "out\nerr\nagain\n");
    assert_eq!(o.output_bytes, 6);
}

#[test]
fn env_cwd_and_ledger_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut s = spec(tmp.path(), &["sh", "-c", "echo \"$HILT_T\"; pwd"], 10_000);
    s.cwd = Some(work.clone());
    s.env.push(("HILT_T".into(), "value".into()));
    let o = run(&s, &CancelToken::new()).unwrap();
    let real = std::fs::canonicalize(&work).unwrap();
    assert_eq!(output(&o), format!("value\n{}\n", real.display()));
    assert_eq!(o.cwd, work);
    let entry = o.ledger_entry();
    let keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "argv",
            "cwd",
            "started_at",
            "finished_at",
            "exit_code",
            "signal",
            "timed_out",
            "cancelled",
            "output_file",
            "output_bytes",
            "output_truncated"
        ]
    );
    assert_eq!(entry["argv"][0], "sh");
    assert_eq!(entry["exit_code"], 0);
    assert!(entry["started_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn timeout_sends_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let o = run(
        &spec(tmp.path(), &["sleep", "30"], 200),
        &CancelToken::new(),
    )
    .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(o.timed_out && !o.cancelled && !o.success());
    assert_eq!(o.signal, Some(15));
    assert_eq!(o.exit_code, 143);
}

#[test]
fn sigterm_ignored_gets_sigkill_after_grace() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec(tmp.path(), &["sh", "-c", "trap '' TERM; sleep 30"], 200);
    s.grace = Duration::from_millis(300);
    let start = Instant::now();
    let o = run(&s, &CancelToken::new()).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(o.timed_out);
    assert_eq!(o.signal, Some(9));
    assert_eq!(o.exit_code, 137);
}

#[test]
fn cancel_from_another_thread() {
    let tmp = tempfile::tempdir().unwrap();
    let token = CancelToken::new();
    let remote = token.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        remote.cancel();
    });
    let start = Instant::now();
    let o = run(&spec(tmp.path(), &["sleep", "30"], 30_000), &token).unwrap();
    canceller.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(o.cancelled && !o.timed_out);
    assert_eq!(o.exit_code, 143);
}

#[test]
fn cancelled_before_start_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let token = CancelToken::new();
    token.cancel();
    let s = spec(tmp.path(), &["sh", "-c", "echo ran"], 1_000);
    assert!(matches!(run(&s, &token), Err(ProcessError::Cancelled)));
    assert!(!s.output.exists());
}

#[test]
fn output_flood_is_capped_and_timeout_still_ends_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec(tmp.path(), &["yes"], 300);
    s.max_output_bytes = 64 * 1024;
    let start = Instant::now();
    let o = run(&s, &CancelToken::new()).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(o.timed_out);
    assert!(o.output_truncated);
    assert_eq!(o.output_bytes, 64 * 1024);
    let text = output(&o);
    assert!(text.starts_with("y\ny\n"));
    assert!(
        text.ends_with("the rest was discarded]\n"),
        "{}",
        &text[text.len() - 80..]
    );
    assert!(text.len() < 64 * 1024 + 200);
}

#[test]
fn grandchild_is_killed_with_the_group() {
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let o = run(
        &spec(tmp.path(), &["sh", "-c", "sleep 30 & echo $!; wait"], 300),
        &CancelToken::new(),
    )
    .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(o.timed_out);
    let grandchild: u32 = output(&o).trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !gone_or_orphan_zombie(grandchild) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        gone_or_orphan_zombie(grandchild),
        "grandchild {grandchild} survived"
    );
}

#[test]
fn leftover_holding_the_pipe_does_not_hang_a_normal_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let o = run(
        &spec(
            tmp.path(),
            &["sh", "-c", "sleep 30 & echo $!; exit 0"],
            10_000,
        ),
        &CancelToken::new(),
    )
    .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(o.success());
    let leftover: u32 = output(&o).trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !gone_or_orphan_zombie(leftover) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone_or_orphan_zombie(leftover));
}

#[test]
fn child_is_reaped() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(
        &spec(tmp.path(), &["sh", "-c", "echo $$"], 10_000),
        &CancelToken::new(),
    )
    .unwrap();
    let pid: i32 = output(&o).trim().parse().unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "zombie left");
    // Not our child any more: already waited for.
    assert_eq!(
        nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG)
        ),
        Err(nix::errno::Errno::ECHILD)
    );
}

#[test]
fn missing_program_and_empty_argv() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec(tmp.path(), &["hilt-no-such-tool-xyz", "--version"], 1_000);
    match run(&s, &CancelToken::new()) {
        Err(e @ ProcessError::NotFound { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("hilt-no-such-tool-xyz") && msg.contains("PATH"),
                "{msg}"
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let s = spec(tmp.path(), &["./missing-tool"], 1_000);
    assert!(matches!(
        run(&s, &CancelToken::new()),
        Err(ProcessError::NotFound { .. })
    ));
    let s = spec(tmp.path(), &[], 1_000);
    assert!(matches!(
        run(&s, &CancelToken::new()),
        Err(ProcessError::EmptyArgv)
    ));
}

#[test]
fn relative_program_runs_from_cwd() {
    let tmp = tempfile::tempdir().unwrap();
    let tool = tmp.path().join("tool.sh");
    std::fs::write(&tool, "#!/bin/sh\necho \"tool $1\"\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut s = spec(tmp.path(), &["./tool.sh", "x"], 10_000);
    s.cwd = Some(tmp.path().to_path_buf());
    let o = run(&s, &CancelToken::new()).unwrap();
    assert_eq!(output(&o), "tool x\n");
}

#[test]
fn missing_cwd_is_reported_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec(tmp.path(), &["echo", "x"], 1_000);
    s.cwd = Some(tmp.path().join("nope"));
    let err = run(&s, &CancelToken::new()).unwrap_err();
    assert!(
        err.to_string().starts_with("cannot use working directory"),
        "{err}"
    );
}
