//! evidence.html is a self-contained page a person would rather look at: the demo's
//! failing run, rendered by a real headless Chromium (Debian's `chromium`).

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin;

fn failing_demo(root: &Path) -> PathBuf {
    let out = Command::new(cargo_bin("hilt"))
        .args(["demo", "--fail", "--dir"])
        .arg(root.join("demo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let results = root.join("demo/results");
    let run = std::fs::read_dir(&results)
        .unwrap()
        .flatten()
        .next()
        .expect("a run directory")
        .path();
    assert!(run.join("evidence.html").is_file());
    run
}

fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let pat = format!("{attr}=\"");
    html.match_indices(&pat)
        .map(|(i, _)| {
            let rest = &html[i + pat.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

#[test]
fn the_page_explains_the_failure_and_links_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = failing_demo(tmp.path());
    let html = std::fs::read_to_string(run.join("evidence.html")).unwrap();
    // The verdict, the failure and its explanation, the checks, where it happened.
    assert!(html.contains("FAILED — demo smoke on hilt demo bench"));
    assert!(html.contains("UART expectation failed — likely source: Firmware"));
    assert!(
        html.contains("at test “reports firmware 9.9.9 (fails on purpose)”, step 2 (expect_uart)")
    );
    assert!(html.contains("Check that the firmware prints the expected text."));
    // The transport-log lines of the failing test: what the device answered instead.
    assert!(html.contains("logs/nodes/dut/transport-console.log"));
    assert!(html.contains("RX 15B version 1.4.2"));
    // Traceability ids, per-test steps with timings, the measurement against its limit.
    for id in ["REQ-DEMO-1", "TC-FAIL-001", "TC-PWR-001"] {
        assert!(html.contains(id), "{id}");
    }
    assert!(html.contains("<code>expect_uart</code>"));
    assert!(html.contains("idle_current") && html.contains("<svg"));
    // Self-contained: no scripts, no stylesheets or images from anywhere.
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("url("));
    assert!(attr_values(&html, "src").is_empty());
    // Every link is relative and names a file of the run (all of them exist once it ended).
    let hrefs = attr_values(&html, "href");
    assert!(hrefs.len() >= 15, "{hrefs:?}");
    for h in &hrefs {
        assert!(
            !h.contains(':') && !h.starts_with('/') && !h.contains(".."),
            "{h}"
        );
        assert!(run.join(h).is_file(), "link to a missing file: {h}");
    }
    for doc in [
        "results.json",
        "manifest.json",
        "events.jsonl",
        "inputs/suite.yaml",
    ] {
        assert!(hrefs.contains(&doc), "{doc} is not linked");
    }
}

#[test]
fn a_real_browser_renders_it() {
    let Some(chromium) = hilt_testkit::peers::program(
        "chromium",
        "apt-get install -y --no-install-recommends chromium (scripts/peers.sh does it)",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = failing_demo(tmp.path());
    let url = format!("file://{}", run.join("evidence.html").display());
    let profile = tmp.path().join("profile");
    let browser = |extra: &[&str]| {
        let out = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                // Nothing may be fetched: every host name fails to resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "chromium failed: {out:?}");
        out
    };
    // The DOM as the browser built it: the failing test's details are open.
    let dom = String::from_utf8(browser(&["--dump-dom"]).stdout).unwrap();
    assert!(
        dom.contains("FAILED — demo smoke on hilt demo bench"),
        "{dom}"
    );
    assert!(dom.contains("<details open=\"\">"));
    // And a screenshot a person would see.
    let shot = tmp.path().join("page.png");
    browser(&[
        "--hide-scrollbars",
        "--window-size=1200,1600",
        &format!("--screenshot={}", shot.display()),
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 20_000, "a blank page? {} bytes", png.len());
}
