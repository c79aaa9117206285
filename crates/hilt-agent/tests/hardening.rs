//! Hardening found by trying the agent as an attacker and as a careless client would: bad
//! query values, hostile file names, oversized GPIO sessions, runs that would never end.
//! Each answer is a 4xx with the JSON error shape, never a 5xx, a hang or a leak.

use hilt_testkit::agent as common;

use std::time::{Duration, Instant};

use common::{Auth, Lab};

#[test]
fn unknown_state_filter_is_a_400_naming_the_valid_states() {
    let lab = Lab::new();
    let agent = lab.start(None);
    let r = agent.request("GET", "/v1/runs?state=bogus", Auth::Token, None, None);
    let err = r.expect_error(400);
    assert!(err.contains("bogus"), "{err}");
    for s in [
        "queued",
        "preparing",
        "running",
        "uploading_artifacts",
        "done",
        "failed",
        "cancelled",
    ] {
        assert!(err.contains(s), "{err} does not name {s}");
        let ok = agent.request(
            "GET",
            &format!("/v1/runs?state={s}"),
            Auth::Token,
            None,
            None,
        );
        assert_eq!(ok.status, 200, "{s}: {}", ok.text());
    }
}

/// Raises this process's soft open-file limit to the hard one (the test holds both ends of
/// thousands of loopback connections).
fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    hard
}

/// Opens `n` loopback connections that send the start of a request and never finish its
/// headers.
fn slow_connections(addr: std::net::SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    (0..n)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(addr)
                .unwrap_or_else(|e| panic!("slow connection {i}: {e}"));
            s.write_all(b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect()
}

/// True once the server has closed `s` (EOF or reset), false if it is still open after
/// `wait`.
fn closed_by_server(s: &mut std::net::TcpStream, wait: Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

#[test]
fn slow_clients_do_not_stop_health_and_are_closed_after_the_header_timeout() {
    const SLOW: usize = 2000;
    let hard = raise_nofile();
    assert!(
        hard >= 2 * SLOW as u64 + 512,
        "the open-file hard limit ({hard}) is too low for this test"
    );
    let lab = Lab::new();
    let cfg = lab.agent_yaml(&[], "limits: {header_read_timeout_ms: 15000}\n");
    let agent = lab.start(Some(&cfg));
    let started = Instant::now();
    let mut slow = slow_connections(agent.addr, SLOW);
    // While all of them are open (the timeout has not passed yet), /health answers.
    for i in 0..20 {
        assert_eq!(
            common::raw_status(agent.addr, HEALTH, Duration::from_secs(5)),
            Some(200),
            "/health request {i} with {SLOW} slow connections open"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "setting up took {:?}: the slow connections may have been closed already, so the check above proved nothing",
        started.elapsed()
    );
    // After the header timeout every slow connection is closed by the agent.
    let deadline = started + Duration::from_secs(60);
    for (i, s) in slow.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            closed_by_server(s, left.max(Duration::from_millis(1))),
            "slow connection {i} still open {:?} after it was made",
            started.elapsed()
        );
    }
    assert_eq!(
        common::raw_status(agent.addr, HEALTH, Duration::from_secs(5)),
        Some(200)
    );
}

#[test]
fn connections_over_the_cap_are_refused_at_once_and_slots_come_back() {
    let lab = Lab::new();
    let cfg = lab.agent_yaml(
        &[],
        "limits: {max_connections: 20, header_read_timeout_ms: 60000}\n",
    );
    let agent = lab.start(Some(&cfg));
    let slow = slow_connections(agent.addr, 20);
    // Once the agent has accepted all 20 (they count from accept on), the next connection
    // is answered 503 at once instead of waiting for a slot.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = Instant::now();
        match common::raw_status(agent.addr, HEALTH, Duration::from_secs(5)) {
            Some(503) => {
                assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
                break;
            }
            other => assert!(
                Instant::now() < deadline,
                "a connection over the cap must be answered 503, got {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(slow);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match common::raw_status(agent.addr, HEALTH, Duration::from_secs(5)) {
            Some(200) => break,
            other => assert!(
                Instant::now() < deadline,
                "slots never came back: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_stalled_upload_is_cut_off_with_408_and_leaves_nothing_behind() {
    use std::io::{Read, Write};
    let lab = Lab::new();
    let cfg = lab.agent_yaml(&[], "limits: {body_read_timeout_s: 1}\n");
    let agent = lab.start(Some(&cfg));
    let mp = common::Multipart::new()
        .file("bench_yaml", "bench.yaml", b"version: 1\n")
        .file(
            "suite_yaml",
            "suite.yaml",
            common::sleep_suite(1).as_bytes(),
        );
    let head = mp.head().to_vec();
    let mut s = std::net::TcpStream::connect(agent.addr).unwrap();
    write!(
        s,
        "POST /v1/runs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        common::TOKEN,
        mp.content_type(),
        head.len() + 100_000
    )
    .unwrap();
    s.write_all(&head).unwrap();
    // ... and nothing more: the agent must give up on the body.
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert_eq!(
        common::parse_status(&buf),
        Some(408),
        "after {:?}: {}",
        t.elapsed(),
        String::from_utf8_lossy(&buf)
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(text.contains("request body stalled"), "{text}");
    assert!(agent.run_dirs().is_empty(), "{:?}", agent.run_dirs());
}

/// File and id names a hostile or careless client may send.
fn nasty_names() -> Vec<String> {
    let mut v: Vec<String> = vec![
        "fw.bin".into(),
        "..".into(),
        "../fw.bin".into(),
        "a/b.bin".into(),
        "a\\b.bin".into(),
        "fw\u{0}.bin".into(),
        "%2e%2e%2ffw.bin".into(),
        "fw%00.bin".into(),
        "ファームウェア.bin".into(),
        "🔥🔥🔥.bin".into(),
        "fw\r\nX-Evil: 1.bin".into(),
        " .bin".into(),
        ".bin".into(),
        "".into(),
    ];
    for len in [250, 255, 256, 300, 1000, 4096, 10_000] {
        v.push(format!("{}.bin", "a".repeat(len - 4)));
        v.push(format!("{}.bin", "é".repeat(len / 2)));
    }
    v
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn any_artifact_or_id_name_is_answered_2xx_or_4xx_never_5xx() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));
    let bench_text = std::fs::read_to_string(lab.mock_bench("up.yaml", "up")).unwrap();
    for name in nasty_names() {
        // Multipart upload: the artifact part's file name.
        let (ct, body) = common::Multipart::new()
            .file("bench_yaml", "bench.yaml", bench_text.as_bytes())
            .file(
                "suite_yaml",
                "suite.yaml",
                common::sleep_suite(1).as_bytes(),
            )
            .file("artifact", &name.replace('"', "%22"), b"\x7fELF")
            .field("skip_flash", "true")
            .finish();
        let r = agent.request("POST", "/v1/runs", Auth::Token, Some(&ct), Some(&body));
        assert!(
            r.status < 500,
            "multipart {name:?}: {} {}",
            r.status,
            r.text()
        );
        if r.status >= 400 {
            r.expect_error(r.status);
        }
        // JSON submission: artifact_filename and artifact_relpath.
        for key in ["artifact_filename", "artifact_relpath"] {
            let r = agent.post_json(
                "/v1/runs/json",
                &serde_json::json!({"bench_id": "m1", "suite_yaml": common::sleep_suite(1),
                    "skip_flash": true, key: name, "artifact_base64": "f0VMRg=="}),
            );
            assert!(
                r.status < 500,
                "json {key} {name:?}: {} {}",
                r.status,
                r.text()
            );
        }
        // The name as an id in every GET that takes one.
        let enc = percent_encode(&name);
        for path in [
            format!("/v1/runs/{enc}"),
            format!("/v1/runs/{enc}/events"),
            format!("/v1/runs/{enc}/artifacts.zip"),
            format!("/v1/benches/{enc}"),
            format!("/v1/benches/{enc}/health"),
        ] {
            let r = agent.request("GET", &path, Auth::Token, None, None);
            assert!(r.status < 500, "GET {path}: {} {}", r.status, r.text());
        }
    }
    // Let the accepted runs finish so the agent shuts down cleanly.
    for r in agent.get_json("/v1/runs?limit=1000")["runs"]
        .as_array()
        .unwrap()
        .clone()
    {
        agent.wait_finished(r["run_id"].as_str().unwrap());
    }
}

#[test]
fn a_run_over_the_maximum_run_time_is_cancelled_recorded_failed_and_frees_its_lock() {
    let lab = Lab::new();
    let cfg = lab.agent_yaml(&[], "limits: {max_run_time_s: 1}\n");
    let agent = lab.start(Some(&cfg));
    let bench = std::fs::read_to_string(lab.mock_bench("up.yaml", "up")).unwrap();
    let started = Instant::now();
    let long = agent.upload(&bench, &common::sleep_suite(600_000));
    // Queued behind it on the shared uploaded-bench lock.
    let next = agent.upload(&bench, &common::sleep_suite(1));
    let v = agent.wait_finished(&long);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(v["status"], "failed", "{v:#}");
    assert_eq!(v["failure"]["category"], "RUN_TIMEOUT", "{v:#}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("maximum run time of 1 s"),
        "{v:#}"
    );
    assert_eq!(v["exit_code"], 5, "{v:#}");
    assert_eq!(agent.wait_finished(&next)["status"], "done");
}

/// Without an artifact and without skip_flash, a suite that never flashes is accepted (and
/// passes) on both submission paths; one with a flash step is refused (api_errors.rs).
#[test]
fn a_suite_without_a_flash_step_needs_no_artifact() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));
    let r = agent.post_json(
        "/v1/runs/json",
        &serde_json::json!({"bench_id": "m1", "suite_yaml": common::sleep_suite(1)}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = agent.wait_finished(r.json()["run_id"].as_str().unwrap());
    assert_eq!(v["status"], "done", "{v:#}");
    let up = std::fs::read_to_string(lab.mock_bench("up.yaml", "up")).unwrap();
    let (ct, body) = common::Multipart::new()
        .file("bench_yaml", "bench.yaml", up.as_bytes())
        .file(
            "suite_yaml",
            "suite.yaml",
            common::sleep_suite(1).as_bytes(),
        )
        .finish();
    let r = agent.request("POST", "/v1/runs", Auth::Token, Some(&ct), Some(&body));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = agent.wait_finished(r.json()["run_id"].as_str().unwrap());
    assert_eq!(v["status"], "done", "{v:#}");
}

fn lock_files(lab: &Lab) -> usize {
    std::fs::read_dir(lab.path("locks"))
        .map(|d| d.flatten().count())
        .unwrap_or(0)
}

fn gpio_start(agent: &common::Agent, chip: &str, lines: std::ops::Range<u32>) -> common::Resp {
    let lines: serde_json::Map<String, serde_json::Value> = lines
        .map(|n| (n.to_string(), serde_json::json!({"direction": "output"})))
        .collect();
    agent.post_json(
        "/v1/gpio/session/start",
        &serde_json::json!({"chip": chip, "lines": lines}),
    )
}

#[test]
fn gpio_sessions_are_bounded_per_request_and_per_agent_without_leaving_lock_files() {
    let lab = Lab::new();
    let cfg = lab.agent_yaml(
        &[],
        "limits: {max_gpio_lines_per_session: 8, max_gpio_sessions: 2, max_gpio_lines_total: 10}\n",
    );
    let agent = lab.start(Some(&cfg));
    let before = lock_files(&lab);
    // One request with 30,000 lines: refused before any lock or line is taken.
    let r = gpio_start(&agent, "sim:huge", 0..30_000);
    let err = r.expect_error(413);
    assert!(err.contains("at most 8 lines"), "{err}");
    assert_eq!(lock_files(&lab), before);

    let a = gpio_start(&agent, "sim:a", 0..8);
    assert_eq!(a.status, 200, "{}", a.text());
    let after_a = lock_files(&lab);
    // 8 + 3 lines would exceed the total of 10.
    let err = gpio_start(&agent, "sim:b", 0..3).expect_error(429);
    assert!(err.contains("max_gpio_lines_total"), "{err}");
    assert_eq!(lock_files(&lab), after_a);
    let b = gpio_start(&agent, "sim:b", 0..2);
    assert_eq!(b.status, 200, "{}", b.text());
    let after_b = lock_files(&lab);
    // A third session: over the session limit.
    let err = gpio_start(&agent, "sim:c", 0..1).expect_error(429);
    assert!(err.contains("max_gpio_sessions"), "{err}");
    assert_eq!(lock_files(&lab), after_b);
    // Stopping one frees its room.
    let id = a.json()["session_id"].as_str().unwrap().to_string();
    let stop = agent.post_json(
        "/v1/gpio/session/stop",
        &serde_json::json!({"session_id": id}),
    );
    assert_eq!(stop.status, 200, "{}", stop.text());
    let c = gpio_start(&agent, "sim:c", 0..1);
    assert_eq!(c.status, 200, "{}", c.text());
}
