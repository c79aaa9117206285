//! An oversized upload is refused while it streams in: the agent (in this process, alone
//! in this test binary so the peak-RSS measurement is not disturbed) never buffers it.

use hilt_testkit::agent as common;

use std::time::Instant;

use common::{Lab, Multipart};

/// A 50 MB artifact against a 1 MB limit: refused with 413 while it streams in, without the
/// agent (which runs in this process) buffering it.
#[test]
fn oversized_artifact_is_refused_while_streaming() {
    const TOTAL: u64 = 50 * 1024 * 1024;
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(
        &[("m1", &bench)],
        "limits: {max_yaml_bytes: 1000, max_artifact_bytes: 1000000}\n",
    );
    let agent = lab.start(Some(&cfg));
    let bench = std::fs::read_to_string(&bench).unwrap();
    let m = Multipart::new()
        .file("bench_yaml", "bench.yaml", bench.as_bytes())
        .file(
            "suite_yaml",
            "suite.yaml",
            common::sleep_suite(1).as_bytes(),
        );
    let mut head = m.head().to_vec();
    head.extend_from_slice(
        b"--hilt-test-boundary-7d1f0c2a\r\nContent-Disposition: form-data; name=\"artifact\"; filename=\"fw.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n",
    );
    let mut tail = b"\r\n".to_vec();
    tail.extend_from_slice(&m.closing());

    let hwm_before = common::vm_hwm_kb();
    let started = Instant::now();
    let s = common::stream_request(
        agent.addr,
        "/v1/runs",
        &m.content_type(),
        head,
        0,
        TOTAL,
        tail,
    );
    let hwm_after = common::vm_hwm_kb();
    assert_eq!(
        s.status,
        Some(413),
        "after {:?}: {}",
        started.elapsed(),
        String::from_utf8_lossy(&s.answer)
    );
    assert!(s.json()["error"].as_str().unwrap().contains("artifact"));
    let sent_at_answer = s.sent_at_answer.unwrap();
    assert!(
        sent_at_answer < s.total,
        "the answer came only after the whole body ({sent_at_answer} bytes) was sent"
    );
    if let (Some(a), Some(b)) = (hwm_before, hwm_after) {
        assert!(
            b.saturating_sub(a) < 40 * 1024,
            "peak RSS grew by {} kB while refusing a 50 MB upload",
            b - a
        );
    }
    assert!(agent.run_dirs().is_empty(), "{:?}", agent.run_dirs());
    // The agent is fine afterwards.
    assert_eq!(agent.get("/health").status, 200);
}
