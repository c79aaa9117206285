//! Two runs on one bench, and Ctrl-C in the middle of a run.

mod common;

use std::time::{Duration, Instant};

use common::{Bench, assert_complete, json, last_run};
use predicates::prelude::*;

const SLOW: &str = "  - name: slow\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      - expect_uart: {node: dut, transport: console, contains: pong}\n      - sleep_ms: 1500\n";
const QUICK: &str = "  - name: quick\n    steps:\n      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n      - expect_uart: {node: dut, transport: console, contains: pong}\n";

fn wait_for_event(b: &Bench, event: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(entries) = std::fs::read_dir(b.path("results")) {
            for e in entries.flatten() {
                if std::fs::read_to_string(e.path().join("events.jsonl"))
                    .unwrap_or_default()
                    .contains(event)
                {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no {event} event within 10 s");
}

#[test]
fn second_run_fails_early_with_the_lock_holder_then_succeeds() {
    let b = Bench::start();
    let slow = b.suite("slow.yaml", SLOW);
    let quick = b.suite("quick.yaml", QUICK);
    let first = b.spawn_run(&slow, "results");
    wait_for_event(&b, "resource_locks.acquired");
    let started = Instant::now();
    let out = b
        .run_in(&quick, "second")
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "Resource is locked by another run",
        ))
        .stderr(predicate::str::contains(format!("pid {}", first.id())));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the second run waited instead of failing early"
    );
    let run = last_run(&b.path("second"));
    assert_complete(&run);
    let r = json(&run.join("results.json"));
    assert_eq!(r["failure"]["category"], "RESOURCE_LOCKED");
    assert_eq!(r["failure"]["source"], "bench_infrastructure");
    assert_eq!(r["failure"]["details"]["holder_pid"], first.id());
    // Nothing was touched: no transport was opened by the second run.
    assert!(!run.join("logs").exists(), "the locked run opened hardware");
    let _ = out;
    assert!(first.wait_with_output().unwrap().status.success());
    b.run_in(&quick, "third").assert().success();
}

#[test]
fn ctrl_c_cancels_cleanly_and_releases_locks() {
    let b = Bench::start();
    let slow = b.suite("slow.yaml", &SLOW.replace("1500", "30000"));
    let child = b.spawn_run(&slow, "results");
    wait_for_event(&b, "\"step_type\":\"sleep_ms\"");
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = last_run(&b.path("results"));
    assert_complete(&run);
    let r = json(&run.join("results.json"));
    assert_eq!(r["status"], "cancelled");
    assert!(r["finished_at"].is_string());
    let quick = b.suite("quick.yaml", QUICK);
    b.run_in(&quick, "after").assert().success();
}
