//! The DUT over its pseudo-terminal: banner, commands, latency, throughput.

mod common;

use std::time::{Duration, Instant};

use common::{BANNER_END, Port};
use hilt_sim::{DutConfig, SimDut};

const T: Duration = Duration::from_secs(5);

#[test]
fn banner_then_ping_pong() {
    let dut = SimDut::start(DutConfig::default()).unwrap();
    let mut port = Port::open(dut.port_path());
    let banner = port.read_until(BANNER_END, T);
    assert_eq!(
        banner,
        "HILT-SIM DUT v1.4.2\r\nreset cause: power-on\r\nready\r\n"
    );
    assert_eq!(port.ask("ping"), "pong");
    assert_eq!(port.ask("version"), "version 1.4.2");
    assert_eq!(port.ask("add 40 2"), "= 42");
    assert_eq!(port.ask("led on"), "led=on");
    assert_eq!(port.ask("nope"), "error: unknown command 'nope'");
    assert!(
        port.ask("BENCHCI_ID?")
            .starts_with("BENCHCI_ID: {\"schema_version\":\"1\"")
    );
    dut.stop();
}

#[test]
fn reboot_over_the_wire() {
    let dut = SimDut::start(DutConfig::default()).unwrap();
    let mut port = Port::open(dut.port_path());
    port.read_until(BANNER_END, T);
    assert_eq!(port.ask("reboot"), "rebooting");
    assert!(port.read_until(BANNER_END, T).contains("reset cause: soft"));
    assert_eq!(port.ask("crash"), "HardFault at 0x08001234");
    assert!(
        port.read_until(BANNER_END, T)
            .contains("reset cause: watchdog")
    );
    assert_eq!(port.ask("ping"), "pong");
}

#[test]
fn hang_stops_answers() {
    let dut = SimDut::start(DutConfig::default()).unwrap();
    let mut port = Port::open(dut.port_path());
    port.read_until(BANNER_END, T);
    port.send("hang\nping\n");
    port.expect_silence(Duration::from_millis(150));
    assert!(dut.controls().state().hung);
}

#[test]
fn port_survives_client_close_and_reopen() {
    let dut = SimDut::start(DutConfig::default()).unwrap();
    {
        let mut port = Port::open(dut.port_path());
        port.read_until(BANNER_END, T);
        assert_eq!(port.ask("ping"), "pong");
    }
    let mut port = Port::open(dut.port_path());
    assert_eq!(port.ask("echo again"), "again");
}

#[test]
fn latency_is_observed() {
    let dut = SimDut::start(DutConfig {
        latency_ms: 25,
        ..DutConfig::default()
    })
    .unwrap();
    let mut port = Port::open(dut.port_path());
    port.read_until(BANNER_END, T);
    for _ in 0..3 {
        let start = Instant::now();
        assert_eq!(port.ask("ping"), "pong");
        let rtt = start.elapsed();
        assert!(rtt >= Duration::from_millis(25), "{rtt:?}");
        assert!(rtt < Duration::from_millis(1000), "{rtt:?}");
    }
}

/// Jitter reaches the wire: replies never come before the configured latency. The upper
/// bound and the distribution of the delays are checked on the virtual clock
/// (`firmware_tests::jitter_covers_its_range_uniformly`, same configuration); on a real
/// clock an upper bound would only measure how busy the machine is.
#[test]
fn jitter_never_answers_early() {
    let dut = SimDut::start(DutConfig {
        latency_ms: 5,
        jitter_ms: 10,
        seed: 99,
        ..DutConfig::default()
    })
    .unwrap();
    let mut port = Port::open(dut.port_path());
    port.read_until(BANNER_END, T);
    for _ in 0..5 {
        let start = Instant::now();
        assert_eq!(port.ask("ping"), "pong");
        assert!(start.elapsed() >= Duration::from_millis(5));
    }
}

/// Every one of many back-to-back pings is answered, in order, with nothing left over.
/// How fast is measured by `hilt-bench roundtrip` (timing is never asserted in tests);
/// that a zero-latency reply is due at once is `firmware_tests::zero_latency_reply_is_due_at_once`.
#[test]
fn zero_latency_round_trips_all_answer() {
    let dut = SimDut::start(DutConfig::default()).unwrap();
    let mut port = Port::open(dut.port_path());
    port.read_until(BANNER_END, T);
    for i in 0..500 {
        assert_eq!(port.ask(&format!("echo {i}")), i.to_string());
        assert_eq!(port.ask("ping"), "pong");
    }
    port.expect_silence(Duration::from_millis(20));
}

#[test]
fn flood_throughput() {
    let dut = SimDut::start(DutConfig::default()).unwrap();
    let mut port = Port::open(dut.port_path());
    port.read_until(BANNER_END, T);
    let n = 100_000u64;
    let expected: usize = (0..n)
        .map(|i| format!("log line {i} lorem ipsum dolor sit amet\r\n").len())
        .sum();
    let start = Instant::now();
    port.send(&format!("flood {n}\n"));
    let bytes = port.read_bytes(expected, Duration::from_secs(60));
    let took = start.elapsed();
    eprintln!(
        "flood {n}: {} bytes in {took:?} ({:.1} MB/s)",
        bytes.len(),
        bytes.len() as f64 / took.as_secs_f64() / 1e6
    );
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], "log line 0 lorem ipsum dolor sit amet");
    assert_eq!(
        lines[n as usize - 1],
        format!("log line {} lorem ipsum dolor sit amet", n - 1)
    );
    assert_eq!(port.ask("ping"), "pong");
}

#[test]
fn config_noise_corrupts_output() {
    let dut = SimDut::start(DutConfig {
        noise: 1.0,
        ..DutConfig::default()
    })
    .unwrap();
    let mut port = Port::open(dut.port_path());
    for _ in 0..3 {
        port.read_until("\r\n", T); // banner lines, corrupted too
    }
    port.send("ping\n");
    let reply = port.read_until("\r\n", T);
    assert_ne!(reply, "pong\r\n");
}

#[test]
fn invalid_config_is_rejected() {
    let err = SimDut::start(DutConfig {
        noise: -0.1,
        ..DutConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("noise"), "{err}");
}
