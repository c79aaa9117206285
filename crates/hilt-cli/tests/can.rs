//! The CAN steps (`send_can`, `expect_can`) through the real `hilt` binary: over an slcan
//! adapter simulated on a pty (in-process and as `hilt sim slcan`), with its faults, bad
//! parameters, the self-test; python-can's slcan interface (the independent peer, from
//! the peers venv) talking to `hilt sim slcan` both ways; and SocketCAN, which needs a
//! CAN interface: this kernel has none (no `vcan` module), so that test says why it
//! skips — HILT_REQUIRE_PEERS does not force it, a missing kernel feature is no peer.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::hilt;
use common::hw::{SimProcess, run_results, validate_error, write_suite_tests};
use hilt_sim::{SlcanSim, SlcanSimConfig};
use serde_json::Value;

fn sim(latency_ms: u64, heartbeat_ms: u64, dir: &Path) -> (SlcanSim, PathBuf) {
    let link = dir.join("ttyCAN");
    let s = SlcanSim::start(
        Some(link.clone()),
        SlcanSimConfig {
            latency_ms,
            heartbeat_ms,
        },
    )
    .unwrap();
    (s, link)
}

fn slcan_transport(port: &Path, extra: &str) -> String {
    format!(
        "{{backend: slcan, port: \"{}\", bitrate: 500000, timeout_ms: 300{extra}}}",
        port.display()
    )
}

fn write_bench(dir: &Path, transport: &str) -> PathBuf {
    let p = dir.join("bench.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nbench: {{name: can rig}}\nnodes:\n  dut:\n    kind: ecu\n    transports:\n      bus: {transport}\n"
        ),
    )
    .unwrap();
    p
}

fn failure(r: &Value) -> &Value {
    &r["tests"][0]["failure"]
}

const ROUND_TRIPS: &[&str] = &[
    "send_can: {node: dut, transport: bus, frame: {id: 0x7E0, data: \"22 F1 90\"}}",
    "expect_can: {node: dut, transport: bus, within_ms: 500, frame: {id: 0x7E8, data: \"62 F1 90\"}}",
    "send_can: {node: dut, transport: bus, frame: {id: 0x321, data: \"01 02 03 04\"}}",
    "expect_can: {node: dut, transport: bus, within_ms: 500, frame: {id: 0x300, id_mask: 0x700, data: \"01 00\", data_mask: \"FF 00\", allow_extra_data: true}}",
    "send_can: {node: dut, transport: bus, frame: {id: 0x18DA00F1, extended: true, data: \"\"}}",
    "expect_can: {node: dut, transport: bus, within_ms: 500, frame: {id: 0x18DAF100, extended: true, data: \"\"}}",
    "send_can: {node: dut, transport: bus, frame: {id: 0x321, fd: true, bitrate_switch: true, data: \"00 01 02 03 04 05 06 07 08 09 0A 0B\"}}",
    "expect_can: {node: dut, transport: bus, within_ms: 500, frame: {id: 0x322, fd: true, bitrate_switch: true, data: \"00 01 02 03\", allow_extra_data: true}}",
    "expect_can: {node: dut, transport: bus, within_ms: 1000, frame: {id: 0x701, data: \"00 05\", data_mask: \"00 FF\"}}",
];

#[test]
fn send_and_expect_against_the_simulated_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, link) = sim(2, 100, dir.path());
    let bench = write_bench(
        dir.path(),
        &slcan_transport(&link, ", fd: true, data_bitrate: 2000000"),
    );
    let suite = write_suite_tests(dir.path(), "can", &[("round trips", ROUND_TRIPS)]);
    let (code, run, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["status"], "passed");
    let frames = sim.control("frames");
    assert!(
        frames.contains("t7E0322F190")
            && frames.contains("T18DA00F10")
            && frames.contains("b3219000102030405060708090A0B"),
        "{frames}"
    );
    let log = std::fs::read_to_string(run.join("logs/nodes/dut/transport-bus.log")).unwrap();
    assert!(log.contains("START slcan"), "{log}");
    assert!(
        log.contains(
            "SEND id=0x7E0 extended=False fd=False brs=False esi=False dlc=3 data=22 F1 90"
        ),
        "{log}"
    );
    assert!(
        log.contains("RECV id=0x7E8 extended=False fd=False"),
        "{log}"
    );
    assert!(log.contains("EXPECT_OK id=0x701"), "{log}");
    let locks = r["resource_locks"]["locks"].as_array().unwrap();
    assert!(
        locks
            .iter()
            .any(|l| l["key"] == format!("serial:{}", link.display())),
        "the adapter's port is locked like any serial port: {locks:#?}"
    );
    assert!(
        sim.control("state").contains("open=false"),
        "closed at the end"
    );
}

#[test]
fn a_missed_expectation_says_what_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, link) = sim(1, 0, dir.path());
    let bench = write_bench(dir.path(), &slcan_transport(&link, ""));
    let suite = write_suite_tests(
        dir.path(),
        "can",
        &[
            (
                "wrong answer",
                &[
                    "send_can: {node: dut, transport: bus, frame: {id: 0x7E0, data: \"22 F1 90\"}}",
                    "expect_can: {node: dut, transport: bus, within_ms: 300, frame: {id: 0x7E8, data: \"62 F1 91\"}}",
                ],
            ),
            (
                "silence",
                &["expect_can: {node: dut, transport: bus, within_ms: 200, frame: {id: 0x7E8}}"],
            ),
        ],
    );
    let (code, _run, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 1, "{r:#}");
    let f = failure(&r);
    assert_eq!(f["category"], "CAN_EXPECTATION_FAILED", "{f:#}");
    assert_eq!(f["source"], "firmware");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains("CAN expectation timed out on dut.bus: id=0x7E8")
            && msg.contains("data=62 F1 91")
            && msg.contains("received_count=1")
            && msg.contains("last seen: id=0x7E8 extended=False fd=False brs=False esi=False dlc=3 data=62 F1 90"),
        "{msg}"
    );
    // Nothing at all on the bus points at the bench, as a silent UART does.
    let f = &r["tests"][1]["failure"];
    assert_eq!(f["category"], "CAN_EXPECTATION_FAILED", "{f:#}");
    assert_eq!(f["source"], "bench_infrastructure");
    assert!(f["message"].as_str().unwrap().contains("received_count=0"));
}

#[test]
fn bus_faults_noise_and_lost_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, link) = sim(1, 0, dir.path());
    let bench = write_bench(dir.path(), &slcan_transport(&link, ""));
    let request: &[&str] = &[
        "send_can: {node: dut, transport: bus, frame: {id: 0x7E0, data: \"10 01\"}}",
        "expect_can: {node: dut, transport: bus, within_ms: 300, frame: {id: 0x7E8, data: \"50 01\"}}",
    ];
    let suite = write_suite_tests(dir.path(), "can", &[("request", request)]);

    // Error frames: the adapter refuses the frame and its flags say why.
    assert_eq!(sim.control("fault error-frames"), "ok error-frames");
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    let f = failure(&r);
    assert_eq!(f["category"], "CAN_FAILED", "{f:#}");
    assert_eq!(f["source"], "bench_infrastructure");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("error warning, bus error (status flags 0x84)"),
        "{f:#}"
    );

    // Bus-off: nothing arrives and the adapter reports it.
    sim.control("fault bus-off");
    let listen = write_suite_tests(
        dir.path(),
        "can",
        &[(
            "listen",
            &["expect_can: {node: dut, transport: bus, within_ms: 200, frame: {id: 0x701}}"],
        )],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &listen);
    assert_eq!(code, 4, "{r:#}");
    let f = failure(&r);
    assert_eq!(f["category"], "CAN_FAILED", "{f:#}");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("the bus reports error warning, error passive, bus error"),
        "{f:#}"
    );

    // Garbage on the line is logged and skipped; a lost answer is a missed expectation.
    sim.control("fault clear");
    sim.control("fault garbage");
    let suite = write_suite_tests(dir.path(), "can", &[("request", request)]);
    let (code, run, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    let log = std::fs::read_to_string(run.join("logs/nodes/dut/transport-bus.log")).unwrap();
    assert!(log.contains("GARBAGE"), "{log}");
    sim.control("fault drop 1");
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(failure(&r)["source"], "bench_infrastructure", "{r:#}");
}

#[test]
fn bad_parameters_are_located_and_a_missing_adapter_is_the_bench() {
    let dir = tempfile::tempdir().unwrap();
    let bench = write_bench(
        dir.path(),
        "{backend: slcan, port: /dev/ttyACM-none, bitrate: 333000}",
    );
    let suite = write_suite_tests(
        dir.path(),
        "can",
        &[(
            "t",
            &["send_can: {node: dut, transport: bus, frame: {id: 0x123, data: \"ZZ\"}}"],
        )],
    );
    let err = validate_error(&bench, &suite);
    assert!(
        err.contains("bench.yaml:7:") && err.contains("333000 is not a bit rate"),
        "{err}"
    );
    assert!(
        err.contains("suite.yaml:") && err.contains("`ZZ` is not a hex byte"),
        "{err}"
    );

    let bench = write_bench(
        dir.path(),
        "{backend: slcan, port: /dev/ttyACM-none, bitrate: 500000}",
    );
    let suite = write_suite_tests(
        dir.path(),
        "can",
        &[(
            "t",
            &["send_can: {node: dut, transport: bus, frame: {id: 0x123}}"],
        )],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "TRANSPORT_OPEN_FAILED", "{r:#}");
    assert!(
        r["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("/dev/ttyACM-none")
    );
}

#[test]
fn sim_process_self_test_and_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttySLCAN");
    let mut sim = SimProcess::start(
        &[
            "slcan",
            "--pty",
            link.to_str().unwrap(),
            "--heartbeat-ms",
            "50",
        ],
        "/dev/",
    );
    let bench = write_bench(dir.path(), &slcan_transport(&link, ""));
    let out = hilt()
        .args(["bench", "self-test", "--open-hardware", "--json", "--bench"])
        .arg(&bench)
        .arg("--log-dir")
        .arg(dir.path().join("health"))
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    let check = |id: &str| {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check {id}: {r:#}"))
    };
    assert_eq!(check("node.dut.transport.bus.open")["status"], "pass");
    let v = check("node.dut.transport.bus.version");
    assert_eq!(v["status"], "pass", "{v:#}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("1013") || v.to_string().contains("1013"),
        "{v:#}"
    );
    // Non-destructive: the channel was never opened, nothing went on the bus.
    assert!(
        sim.control("state").contains("open=false delivered=0")
            || sim.control("state").contains("open=false")
    );
    assert_eq!(sim.control("frames"), "frames");

    let out = hilt()
        .env("HILT_LOCK_DIR", dir.path().join("locks"))
        .args(["doctor", "--bench"])
        .arg(&bench)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1013"), "{text}");

    // And a run through the sim process, heartbeat included.
    let suite = write_suite_tests(dir.path(), "can", &[("rt", ROUND_TRIPS[..2].as_ref())]);
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
}

// ---------------------------------------------------------------------------------------
// python-can, the independent peer.

/// The peers venv's Python with python-can, or `None` after saying why the test skips.
fn python_can() -> Option<PathBuf> {
    let venv = std::env::var_os("HILT_PY_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/hilt-venv")));
    let python = venv.map(|v| v.join("bin/python")).filter(|p| p.is_file());
    let ok = python.as_ref().is_some_and(|p| {
        std::process::Command::new(p)
            .args(["-c", "import can, serial"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if ok {
        return python;
    }
    assert!(
        !hilt_testkit::peers::required(),
        "python-can is required (HILT_REQUIRE_PEERS=1) but not in the peers venv: run scripts/peers.sh"
    );
    eprintln!("skipping: python-can not installed in the peers venv (run scripts/peers.sh)");
    None
}

/// python-can's slcan bus against the adapter: version, a request and its answer, the
/// heartbeat, an extended and a CAN FD echo. Prints one JSON line of what it saw.
const PY_PEER: &str = r#"
import json, sys, time, can
bus = can.Bus(interface="slcan", channel=sys.argv[1], bitrate=500000, data_bitrate=2000000,
              sleep_after_open=0)
out = {"version": list(bus.get_version(2.0))}
def wait(pred, t=2.0):
    end = time.time() + t
    while time.time() < end:
        m = bus.recv(0.2)
        if m is not None and pred(m):
            return m
    return None
def desc(m):
    return None if m is None else {"id": m.arbitration_id, "ext": m.is_extended_id, "fd": m.is_fd,
                                   "brs": m.bitrate_switch, "data": m.data.hex()}
bus.send(can.Message(arbitration_id=0x7E0, is_extended_id=False, data=bytes([0x22, 0xF1, 0x90])))
out["answer"] = desc(wait(lambda m: m.arbitration_id == 0x7E8))
out["heartbeat"] = desc(wait(lambda m: m.arbitration_id == 0x701))
bus.send(can.Message(arbitration_id=0x18DA00F1, is_extended_id=True, data=b"\x01\x02"))
out["extended"] = desc(wait(lambda m: m.arbitration_id == 0x18DAF100))
bus.send(can.Message(arbitration_id=0x321, is_extended_id=False, is_fd=True, bitrate_switch=True,
                     data=bytes(range(12))))
out["fd"] = desc(wait(lambda m: m.arbitration_id == 0x322))
bus.shutdown()
print(json.dumps(out), flush=True)
"#;

#[test]
fn python_can_talks_to_the_simulated_adapter_both_ways() {
    let Some(python) = python_can() else { return };
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyPYCAN");
    let mut sim = SimProcess::start(
        &[
            "slcan",
            "--pty",
            link.to_str().unwrap(),
            "--heartbeat-ms",
            "50",
        ],
        "/dev/",
    );
    let out = std::process::Command::new(python)
        .args(["-c", PY_PEER])
        .arg(&link)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python-can peer failed: {stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {stderr}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(seen["version"], serde_json::json!([10, 13]), "{seen:#}");
    assert_eq!(seen["answer"]["data"], "62f190", "{seen:#}");
    assert_eq!(
        seen["heartbeat"]["data"].as_str().unwrap().len(),
        4,
        "{seen:#}"
    );
    assert_eq!(seen["extended"]["ext"], true, "{seen:#}");
    assert_eq!(seen["extended"]["data"], "0102", "{seen:#}");
    assert_eq!(seen["fd"]["fd"], true, "{seen:#}");
    assert_eq!(seen["fd"]["brs"], true, "{seen:#}");
    assert_eq!(seen["fd"]["data"], "000102030405060708090a0b", "{seen:#}");
    // hilt's codec read python-can's frames as python-can meant them.
    let frames = sim.control("frames");
    assert!(
        frames.contains("t7E0322F190")
            && frames.contains("T18DA00F120102")
            && frames.contains("b3219000102030405060708090A0B"),
        "{frames}"
    );
}

// ---------------------------------------------------------------------------------------
// SocketCAN.

#[test]
fn socketcan_needs_an_interface() {
    let dir = tempfile::tempdir().unwrap();
    // A missing interface is the bench's, said plainly (this works on every kernel).
    let bench = write_bench(
        dir.path(),
        "{backend: can, interface: hiltcan9, bitrate: 500000}",
    );
    let suite = write_suite_tests(
        dir.path(),
        "can",
        &[(
            "t",
            &["send_can: {node: dut, transport: bus, frame: {id: 0x123}}"],
        )],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "TRANSPORT_OPEN_FAILED", "{r:#}");
    assert!(
        r["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("no such network interface"),
        "{r:#}"
    );

    // Frames over a virtual interface, when the kernel has one. Not forced by
    // HILT_REQUIRE_PEERS: what is missing is a kernel feature, not a peer to install.
    if !Path::new("/sys/class/net/vcan0").exists() {
        eprintln!(
            "skipping the SocketCAN round trip: no vcan0 interface (this kernel has no CAN support; \
             on one that has: `modprobe vcan && ip link add vcan0 type vcan && ip link set vcan0 up`)"
        );
        return;
    }
    let p = dir.path().join("bench.yaml");
    std::fs::write(
        &p,
        "version: 1\nbench: {name: vcan}\nnodes:\n  dut:\n    kind: ecu\n    transports:\n      a: {backend: can, interface: vcan0, bitrate: 500000}\n      b: {backend: can, interface: vcan0, bitrate: 500000}\n",
    )
    .unwrap();
    let suite = write_suite_tests(
        dir.path(),
        "can",
        &[(
            "vcan",
            &[
                "send_can: {node: dut, transport: a, frame: {id: 0x123, data: \"01 02\"}}",
                "expect_can: {node: dut, transport: b, within_ms: 500, frame: {id: 0x123, data: \"01 02\"}}",
            ],
        )],
    );
    std::thread::sleep(Duration::from_millis(1));
    let (code, _, r) = run_results(dir.path(), &p, &suite);
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn fuzz_can_campaigns_run_on_the_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, link) = sim(1, 0, dir.path());
    let bench = write_bench(dir.path(), &slcan_transport(&link, ""));
    // The ECU answers every frame to 0x7E0 on 0x7E8: a campaign on that id passes, one
    // whose oracle waits for 0x7E9 fails on its first case.
    let answered = "fuzz_can: {node: dut, transport: bus, seed: 42, iterations: 12, id_min: 0x7E0, id_max: 0x7E0, \
                    min_data_length: 1, max_data_length: 8, response_within_ms: 300, \
                    expect_response: {id: 0x7E8, data: \"\", allow_extra_data: true}}";
    let unanswered = "fuzz_can: {node: dut, transport: bus, seed: 42, iterations: 3, id_min: 0x7E0, id_max: 0x7E0, \
                      min_data_length: 1, response_within_ms: 150, \
                      expect_response: {id: 0x7E9, data: \"\", allow_extra_data: true}}";
    let suite = write_suite_tests(
        dir.path(),
        "can fuzz",
        &[("answered", &[answered]), ("unanswered", &[unanswered])],
    );
    let (code, run, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["tests"][0]["passed"], true, "{r:#}");
    let c = &r["tests"][0]["fuzz"][0];
    assert_eq!(c["seed"], 42);
    assert_eq!(c["cases_executed"], 12, "{c:#}");
    assert_eq!(r["tests"][1]["passed"], false, "{r:#}");
    assert_eq!(
        r["tests"][1]["failure"]["category"], "FUZZ_ORACLE_FAILED",
        "{r:#}"
    );
    // Every case reached the bus through the adapter and is in the transport log.
    let frames = sim.control("frames");
    assert!(frames.matches("t7E0").count() >= 12, "{frames}");
    let log = std::fs::read_to_string(run.join("logs/nodes/dut/transport-bus.log")).unwrap();
    assert!(log.contains("FUZZ_SEND id=0x7E0"), "{log}");
    assert!(log.contains("RECV id=0x7E8"), "{log}");
}
