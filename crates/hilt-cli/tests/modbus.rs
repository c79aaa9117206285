//! The Modbus steps through the real `hilt` binary: against hilt's simulated slaves (TCP
//! and RTU over a pty, in-process and as `hilt sim modbus`), and against an independent
//! peer, pymodbus, over TCP and RTU. pymodbus comes from the peers venv
//! (`scripts/peers.sh`); without it those tests skip with a message, unless
//! HILT_REQUIRE_PEERS=1, when they fail.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::hilt;
use common::hw::{SimProcess, run_results, validate_error, write_suite_tests};
use hilt_sim::{ModbusBind, ModbusSim, ModbusSimConfig, RegisterMap};
use serde_json::Value;

const MAP: &str = "slaves:
  1:
    holding_registers: {0: [1234, 5678], 10: [0, 0, 0]}
    input_registers: {0: [42, 43, 44]}
    coils: {0: [false, false, false, false]}
    discrete_inputs: {0: [true, false, true]}
";

fn map() -> RegisterMap {
    RegisterMap::parse(MAP, "map.yaml").unwrap()
}

/// A bench with one Modbus transport `field` on node `dut`.
fn write_bench(dir: &Path, transport: &str) -> PathBuf {
    let p = dir.join("bench.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nbench: {{name: modbus rig}}\nnodes:\n  dut:\n    kind: plc\n    transports:\n      field: {transport}\n"
        ),
    )
    .unwrap();
    p
}

fn write_suite(dir: &Path, tests: &[(&str, &[&str])]) -> PathBuf {
    write_suite_tests(dir, "modbus", tests)
}

fn tcp_transport(addr: &str) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    format!("{{backend: modbus_tcp, host: \"{host}\", port: {port}, timeout_ms: 300}}")
}

fn rtu_transport(port: &Path) -> String {
    format!(
        "{{backend: modbus_rtu, port: \"{}\", baud: 19200, timeout_ms: 300}}",
        port.display()
    )
}

/// A suite of tests, each `(name, steps)`; steps are YAML flow maps, one per line.
/// Every step kind against a slave: writes, then reads that must see them.
const ALL_STEPS: &[&str] = &[
    "modbus_read_holding_registers: {node: dut, transport: field, address: 0, count: 2, expect: [1234, 5678]}",
    "modbus_write_single_register: {node: dut, transport: field, address: 10, value: 215}",
    "modbus_write_multiple_registers: {node: dut, transport: field, slave: 1, address: 11, values: [7, 65535]}",
    "modbus_read_holding_registers: {node: dut, transport: field, address: 10, count: 3, expect: [215, 7, 65535]}",
    "modbus_write_single_coil: {node: dut, transport: field, address: 1, value: true}",
    "modbus_write_multiple_coils: {node: dut, transport: field, address: 2, values: [false, true]}",
    "modbus_read_coils: {node: dut, transport: field, address: 0, count: 4, expect: [false, true, false, true]}",
    "modbus_read_input_registers: {node: dut, transport: field, address: 0, count: 3, expect: [42, 43, 44]}",
    "modbus_read_discrete_inputs: {node: dut, transport: field, address: 0, count: 3, expect: [true, false, true]}",
];

fn assert_all_steps_passed(code: i32, run: &Path, r: &Value) {
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["status"], "passed");
    let log = std::fs::read_to_string(run.join("logs/nodes/dut/transport-field.log")).unwrap();
    assert!(
        log.contains("READ_HOLDING_REGISTERS slave 1 address 10 count 3")
            && log.contains("OK values=[215, 7, 65535]"),
        "{log}"
    );
}

#[test]
fn every_step_runs_against_the_sim_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let sim = ModbusSim::start(
        ModbusBind::Tcp("127.0.0.1:0".into()),
        map(),
        ModbusSimConfig { latency_ms: 2 },
    )
    .unwrap();
    let bench = write_bench(dir.path(), &tcp_transport(sim.address()));
    let suite = write_suite(dir.path(), &[("all", ALL_STEPS)]);
    let (code, run, r) = run_results(dir.path(), &bench, &suite);
    assert_all_steps_passed(code, &run, &r);
    assert_eq!(sim.holding_register(1, 10), Some(215));
    assert_eq!(sim.holding_register(1, 12), Some(65535));
    assert_eq!(sim.coil(1, 3), Some(true));
    let functions: Vec<u8> = sim.requests().iter().map(|(_, f)| *f).collect();
    assert_eq!(functions, [3, 6, 16, 3, 5, 15, 1, 4, 2]);
    let locks = r["resource_locks"]["locks"].as_array().unwrap();
    assert!(
        locks.iter().any(|l| l["category"] == "network_transport"
            && l["key"] == format!("tcp:{}", sim.address())),
        "{locks:#?}"
    );
}

#[test]
fn every_step_runs_against_the_sim_over_rtu_on_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyMODBUS");
    let sim = ModbusSim::start(
        ModbusBind::Rtu(Some(link.clone())),
        map(),
        ModbusSimConfig::default(),
    )
    .unwrap();
    let bench = write_bench(dir.path(), &rtu_transport(&link));
    let suite = write_suite(dir.path(), &[("all", ALL_STEPS)]);
    let (code, run, r) = run_results(dir.path(), &bench, &suite);
    assert_all_steps_passed(code, &run, &r);
    assert_eq!(sim.holding_register(1, 11), Some(7));
    let locks = r["resource_locks"]["locks"].as_array().unwrap();
    assert!(
        locks.iter().any(|l| l["category"] == "serial_transport"),
        "{locks:#?}"
    );
}

/// `hilt sim modbus` on the test's register map, as a separate process.
fn start_sim(dir: &Path, bus: &[&str]) -> SimProcess {
    let map = dir.join("map.yaml");
    std::fs::write(&map, MAP).unwrap();
    let args = [&["modbus", "--map", map.to_str().unwrap()][..], bus].concat();
    SimProcess::start(&args, "")
}

#[test]
fn an_exception_is_the_devices_answer_and_fails_only_its_test() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = start_sim(dir.path(), &["--tcp", "127.0.0.1:0"]);
    let bench = write_bench(dir.path(), &tcp_transport(&sim.address));
    let suite = write_suite(
        dir.path(),
        &[
            (
                "unmapped address",
                &[
                    "modbus_read_holding_registers: {node: dut, transport: field, address: 100, count: 2, expect: [0, 0]}",
                ],
            ),
            (
                "mismatch",
                &[
                    "modbus_read_input_registers: {node: dut, transport: field, address: 0, count: 1, expect: [41]}",
                ],
            ),
            (
                "still runs",
                &[
                    "modbus_write_single_register: {node: dut, transport: field, address: 10, value: 9}",
                ],
            ),
        ],
    );
    let (code, run, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["status"], "failed");
    let tests = r["tests"].as_array().unwrap();
    let failure = &tests[0]["failure"];
    assert_eq!(
        failure["category"], "MODBUS_EXPECTATION_FAILED",
        "{failure:#}"
    );
    assert_eq!(failure["source"], "firmware");
    let msg = failure["message"].as_str().unwrap();
    assert!(
        msg.contains("read holding registers (slave 1 address 100 count 2) on dut.field")
            && msg.contains("exception 0x02 (illegal data address)"),
        "{msg}"
    );
    let msg = tests[1]["failure"]["message"].as_str().unwrap();
    assert!(msg.contains("expected [41], got [42]"), "{msg}");
    assert_eq!(tests[2]["passed"], true, "{:#}", tests[2]);
    assert_eq!(sim.control("get 1 hr 10"), "9");
    let log = std::fs::read_to_string(run.join("logs/nodes/dut/transport-field.log")).unwrap();
    assert!(log.contains("ERROR exception 0x02"), "{log}");

    // On demand: the slave answers the next request with "slave device busy".
    assert_eq!(sim.control("fault exception:6"), "ok");
    let suite = write_suite(
        dir.path(),
        &[(
            "busy",
            &["modbus_write_single_coil: {node: dut, transport: field, address: 0, value: true}"],
        )],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 1);
    let msg = r["tests"][0]["failure"]["message"].as_str().unwrap();
    assert!(msg.contains("slave device busy"), "{msg}");
    assert_eq!(sim.control("get 1 coil 0"), "false");
    assert!(
        sim.control("fault sparks")
            .starts_with("error: unknown fault")
    );
}

#[test]
fn silence_is_a_timeout_and_a_bad_crc_is_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyRTU");
    let mut sim = start_sim(dir.path(), &["--rtu", link.to_str().unwrap()]);
    let bench = write_bench(dir.path(), &rtu_transport(&link));
    // Slave 9 is not on the bus: nobody answers.
    let suite = write_suite(
        dir.path(),
        &[
            (
                "nobody home",
                &[
                    "modbus_read_coils: {node: dut, transport: field, slave: 9, address: 0, count: 1, expect: [false]}",
                ],
            ),
            ("never runs", &["sleep_ms: 1"]),
        ],
    );
    let started = Instant::now();
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(code, 5, "a firmware run error: {r:#}");
    assert_eq!(r["status"], "error");
    assert_eq!(r["failure"]["category"], "MODBUS_EXPECTATION_FAILED");
    assert_eq!(r["failure"]["source"], "firmware");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("slave 9") && msg.contains("no reply within 300 ms"),
        "{msg}"
    );

    // A reply with a broken CRC: noise, baud or wiring, so the bench's problem.
    assert_eq!(sim.control("fault garble"), "ok");
    let suite = write_suite(
        dir.path(),
        &[(
            "noisy",
            &[
                "modbus_read_holding_registers: {node: dut, transport: field, address: 0, count: 2, expect: [1234, 5678]}",
            ],
        )],
    );
    let (code, run, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "a bench run error: {r:#}");
    assert_eq!(r["failure"]["category"], "MODBUS_EXPECTATION_FAILED");
    assert_eq!(r["failure"]["source"], "bench_infrastructure");
    assert!(
        r["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("CRC mismatch"),
        "{r:#}"
    );
    assert_eq!(
        r["failure"]["artifacts"]["transport_log"],
        run.join("logs/nodes/dut/transport-field.log")
            .display()
            .to_string()
    );
    // The next transaction is clean again.
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
}

#[test]
fn an_unreachable_endpoint_is_a_transport_that_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bind one, note it, close it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let bench = write_bench(dir.path(), &tcp_transport(&addr));
    let suite = write_suite(
        dir.path(),
        &[(
            "t",
            &["modbus_write_single_register: {node: dut, transport: field, address: 1, value: 2}"],
        )],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "TRANSPORT_OPEN_FAILED");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(msg.contains(&addr), "{msg}");
}

#[test]
fn bad_parameters_are_reported_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let bench = write_bench(dir.path(), "{backend: modbus_tcp, host: \"plc/1\"}");
    let suite = write_suite(
        dir.path(),
        &[(
            "t",
            &[
                "modbus_write_single_register: {node: dut, transport: field, address: 1, value: 70000}",
                "modbus_read_holding_registers: {node: dut, transport: field, address: 65535, count: 2, expect: [1, 2]}",
                "modbus_read_coils: {node: dut, transport: field, address: 0, count: 3, expect: [true]}",
            ],
        )],
    );
    let err = validate_error(&bench, &suite);
    for want in [
        "suite.yaml:6:88: tests[0].steps[0].modbus_write_single_register.value: 70000 does not fit a 16-bit register (0..=65535)",
        "suite.yaml:7:93: tests[0].steps[1].modbus_read_holding_registers.count: 2 items from address 65535 run past the last address (65535)",
        "suite.yaml:8:88: tests[0].steps[2].modbus_read_coils.expect: has 1 values but `count` is 3",
        "bench.yaml:7:42: nodes.dut.transports.field.host: `plc/1` is not a host name or address",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 3);
    assert_eq!(r["failure"]["category"], "CONFIG_ERROR");
}

// ---------------------------------------------------------------------------------------
// pymodbus, the independent peer.

/// The peers venv's Python with pymodbus, or `None` after saying why the test skips.
fn pymodbus() -> Option<PathBuf> {
    let venv = std::env::var_os("HILT_PY_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/hilt-venv")));
    let python = venv.map(|v| v.join("bin/python")).filter(|p| p.is_file());
    let ok = python.as_ref().is_some_and(|p| {
        std::process::Command::new(p)
            .args(["-c", "import pymodbus, serial"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if ok {
        return python;
    }
    assert!(
        std::env::var("HILT_REQUIRE_PEERS").as_deref() != Ok("1"),
        "pymodbus is required (HILT_REQUIRE_PEERS=1) but not in the peers venv: run scripts/peers.sh"
    );
    eprintln!("skipping: pymodbus not installed in the peers venv (run scripts/peers.sh)");
    None
}

/// A pymodbus 3.x server: slave 1 with hr 0..99 = [1234, 5678, 0…], ir = 42, coils false,
/// discrete inputs true. Addresses from 100 on answer exception 2.
const PY_SERVER: &str = r#"
import sys
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusDeviceContext, ModbusServerContext
from pymodbus.server import StartTcpServer, StartSerialServer
from pymodbus import FramerType
blk = lambda vals: ModbusSequentialDataBlock(1, vals)
dev = ModbusDeviceContext(hr=blk([1234, 5678] + [0]*98), ir=blk([42]*100), co=blk([False]*100), di=blk([True]*100))
ctx = ModbusServerContext(devices={1: dev}, single=False)
if sys.argv[1] == "tcp":
    StartTcpServer(context=ctx, address=("127.0.0.1", int(sys.argv[2])))
else:
    StartSerialServer(context=ctx, port=sys.argv[2], framer=FramerType.RTU, baudrate=19200)
"#;

const PEER_STEPS: &[&str] = &[
    "modbus_read_holding_registers: {node: dut, transport: field, address: 0, count: 2, expect: [1234, 5678]}",
    "modbus_write_single_register: {node: dut, transport: field, address: 1, value: 999}",
    "modbus_write_multiple_registers: {node: dut, transport: field, address: 5, values: [1, 2, 3]}",
    "modbus_read_holding_registers: {node: dut, transport: field, address: 0, count: 8, expect: [1234, 999, 0, 0, 0, 1, 2, 3]}",
    "modbus_read_input_registers: {node: dut, transport: field, address: 0, count: 3, expect: [42, 42, 42]}",
    "modbus_write_single_coil: {node: dut, transport: field, address: 3, value: true}",
    "modbus_write_multiple_coils: {node: dut, transport: field, address: 9, values: [true, false, true]}",
    "modbus_read_coils: {node: dut, transport: field, address: 0, count: 12, expect: [false, false, false, true, false, false, false, false, false, true, false, true]}",
    "modbus_read_discrete_inputs: {node: dut, transport: field, address: 0, count: 2, expect: [true, true]}",
];

/// The exception test that follows the passing one against every peer.
const PEER_EXCEPTION: &[&str] = &[
    "modbus_read_holding_registers: {node: dut, transport: field, address: 150, count: 1, expect: [0]}",
];

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_peer(python: &Path, dir: &Path, args: &[&str]) -> Peer {
    let script = dir.join("server.py");
    std::fs::write(&script, PY_SERVER).unwrap();
    Peer(
        std::process::Command::new(python)
            .arg(&script)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn assert_peer_results(code: i32, r: &Value) {
    assert_eq!(code, 1, "{r:#}");
    let tests = r["tests"].as_array().unwrap();
    assert_eq!(tests[0]["passed"], true, "{:#}", tests[0]);
    let f = &tests[1]["failure"];
    assert_eq!(f["category"], "MODBUS_EXPECTATION_FAILED");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("exception 0x02 (illegal data address)"),
        "{f:#}"
    );
}

#[test]
fn pymodbus_over_tcp_agrees() {
    let Some(python) = pymodbus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _peer = start_peer(&python, dir.path(), &["tcp", &port.to_string()]);
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "pymodbus did not start listening"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let bench = write_bench(
        dir.path(),
        &format!("{{backend: modbus_tcp, host: 127.0.0.1, port: {port}, timeout_ms: 2000}}"),
    );
    let suite = write_suite(
        dir.path(),
        &[("peer", PEER_STEPS), ("exception", PEER_EXCEPTION)],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_peer_results(code, &r);
}

/// Two ptys joined back to back (what `socat pty pty` does): bytes written to one's
/// slave come out of the other's.
struct PtyPair {
    paths: [PathBuf; 2],
    _slaves: [OwnedFd; 2],
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PtyPair {
    fn new() -> PtyPair {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let open = || {
            let p = nix::pty::openpty(None, None).unwrap();
            let mut t = nix::sys::termios::tcgetattr(&p.slave).unwrap();
            nix::sys::termios::cfmakeraw(&mut t);
            nix::sys::termios::tcsetattr(&p.slave, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
            let path = nix::unistd::ttyname(&p.slave).unwrap();
            (std::fs::File::from(p.master), p.slave, path)
        };
        let (mut a, sa, pa) = open();
        let (mut b, sb, pb) = open();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(std::sync::atomic::Ordering::SeqCst) {
                let (ra, rb) = {
                    let mut fds = [
                        PollFd::new(a.as_fd(), PollFlags::POLLIN),
                        PollFd::new(b.as_fd(), PollFlags::POLLIN),
                    ];
                    if poll(&mut fds, PollTimeout::from(50u16)).is_err() {
                        continue;
                    }
                    let ready =
                        |f: &PollFd| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
                    (ready(&fds[0]), ready(&fds[1]))
                };
                if ra && let Ok(n) = a.read(&mut buf) {
                    let _ = b.write_all(&buf[..n]);
                }
                if rb && let Ok(n) = b.read(&mut buf) {
                    let _ = a.write_all(&buf[..n]);
                }
            }
        });
        PtyPair {
            paths: [pa, pb],
            _slaves: [sa, sb],
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends one RTU request to slave 1 until an answer comes back: the peer is serving.
fn wait_for_rtu_peer(port: &Path) {
    use hilt_hw::modbus::frame;
    let settings = hilt_hw::serial::SerialSettings {
        port: port.display().to_string(),
        baud: 19200,
        bytesize: 8,
        parity: hilt_model::bench::Parity::N,
        stopbits: 1.0,
    };
    let mut p = hilt_hw::serial::open(&settings).unwrap();
    let req = frame::rtu_frame(
        1,
        &frame::Request::ReadHoldingRegisters {
            address: 0,
            count: 1,
        }
        .encode(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "pymodbus RTU server never answered"
        );
        p.write_all_bytes(&req).unwrap();
        let mut buf = [0u8; 64];
        if p.read_timeout(&mut buf, Duration::from_millis(300))
            .unwrap()
            > 0
        {
            // Let the rest of the reply arrive and drop it.
            std::thread::sleep(Duration::from_millis(100));
            let _ = p.read_timeout(&mut buf, Duration::from_millis(10));
            return;
        }
    }
}

#[test]
fn pymodbus_over_rtu_on_a_pty_agrees() {
    let Some(python) = pymodbus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pair = PtyPair::new();
    let _peer = start_peer(
        &python,
        dir.path(),
        &["rtu", pair.paths[0].to_str().unwrap()],
    );
    wait_for_rtu_peer(&pair.paths[1]);
    let bench = write_bench(
        dir.path(),
        &format!(
            "{{backend: modbus_rtu, port: \"{}\", baud: 19200, timeout_ms: 2000}}",
            pair.paths[1].display()
        ),
    );
    let suite = write_suite(
        dir.path(),
        &[("peer", PEER_STEPS), ("exception", PEER_EXCEPTION)],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_peer_results(code, &r);
}

#[test]
fn the_self_test_reaches_modbus_transports_without_sending_anything() {
    let dir = tempfile::tempdir().unwrap();
    let sim = ModbusSim::start(
        ModbusBind::Tcp("127.0.0.1:0".into()),
        map(),
        ModbusSimConfig::default(),
    )
    .unwrap();
    let link = dir.path().join("ttyRTU");
    let rtu = ModbusSim::start(
        ModbusBind::Rtu(Some(link.clone())),
        map(),
        ModbusSimConfig::default(),
    )
    .unwrap();
    let bench = dir.path().join("bench.yaml");
    let write = |tcp: &str| {
        std::fs::write(
            &bench,
            format!(
                "version: 1\nbench: {{name: plc rig}}\ndefaults: {{node: dut}}\nnodes:\n  dut:\n    kind: plc\n    transports:\n      lan: {}\n      field: {}\n",
                tcp_transport(tcp),
                rtu_transport(&link)
            ),
        )
        .unwrap();
    };
    let self_test = || {
        let out = hilt()
            .args(["bench", "self-test", "--open-hardware", "--json", "--bench"])
            .arg(&bench)
            .arg("--log-dir")
            .arg(dir.path().join("health"))
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), report)
    };
    let check = |r: &Value, id: &str| -> Value {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check {id}: {r:#}"))
    };
    write(sim.address());
    let (code, r) = self_test();
    assert_eq!(code, Some(0), "{r:#}");
    // BenchCI warns "unknown transport type" for modbus_tcp, so it is never healthy.
    assert_eq!(r["health_status"], "healthy", "{r:#}");
    assert_eq!(check(&r, "node.dut.transport.lan")["status"], "pass");
    assert_eq!(check(&r, "node.dut.transport.lan.open")["status"], "pass");
    assert_eq!(check(&r, "node.dut.transport.field.open")["status"], "pass");
    assert!(sim.requests().is_empty() && rtu.requests().is_empty());

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    write(&closed);
    let (code, r) = self_test();
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(r["health_status"], "failing");
    let c = check(&r, "node.dut.transport.lan.open");
    assert_eq!(c["status"], "fail");
    assert_eq!(c["category"], "TRANSPORT_OPEN_FAILED", "{c:#}");
}

#[test]
fn a_reply_cut_short_over_tcp_is_the_line_and_a_bad_map_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = start_sim(dir.path(), &["--tcp", "127.0.0.1:0"]);
    let bench = write_bench(dir.path(), &tcp_transport(&sim.address));
    let suite = write_suite(
        dir.path(),
        &[(
            "cut",
            &[
                "modbus_read_holding_registers: {node: dut, transport: field, address: 0, count: 2, expect: [1234, 5678]}",
            ],
        )],
    );
    // The next reply stops after its MBAP header.
    assert_eq!(sim.control("fault garble"), "ok");
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["source"], "bench_infrastructure");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(
        msg.contains("incomplete reply: 7 bytes, then nothing for the rest of 300 ms"),
        "{msg}"
    );
    // Slow answers: past the transport's timeout it is silence.
    assert_eq!(sim.control("latency 400"), "ok");
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 5, "{r:#}");
    assert!(
        r["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("no reply within 300 ms")
    );
    assert_eq!(sim.control("latency 0"), "ok");
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(
        code, 0,
        "the late answer was not taken for the next one: {r:#}"
    );

    let map = dir.path().join("bad.yaml");
    std::fs::write(&map, "slaves:\n  1:\n    coils: {0: [true, 2]}\n").unwrap();
    let out = hilt()
        .args(["sim", "modbus", "--tcp", "127.0.0.1:0", "--map"])
        .arg(&map)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("bad.yaml:3:23: slaves.1.coils.0[1]: 2 is not true or false"),
        "{err}"
    );
}
