//! The wires around the DUT through the control socket (via `hilt_hw::sim_link::SimLink`)
//! and in-process controls; link and socket life cycle.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use common::{BANNER_END, Port, scratch, wait_for};
use hilt_hw::sim_link::{
    CHANNEL_BUTTON, CHANNEL_LED, CHANNEL_READY, CHANNEL_RESET, SimLink, SimLinkError,
};
use hilt_sim::{DutConfig, SimDut, SimDutHandle};

const T: Duration = Duration::from_secs(5);

fn start_with_socket(name: &str, config: DutConfig) -> (SimDutHandle, SimLink) {
    let dir = scratch(name);
    let dut = SimDut::start(DutConfig {
        control: Some(dir.join("ctl.sock")),
        ..config
    })
    .unwrap();
    let link = SimLink::connect(dut.control_path().unwrap()).unwrap();
    (dut, link)
}

#[test]
fn power_cycle_over_control_socket() {
    let (dut, link) = start_with_socket("power", DutConfig::default());
    let mut port = Port::open(dut.port_path());
    port.read_until(BANNER_END, T);
    assert!(link.power_get().unwrap());

    link.power_set(false).unwrap();
    assert!(!link.power_get().unwrap());
    assert!(!link.gpio_get(CHANNEL_READY).unwrap());
    port.send("ping\n");
    port.expect_silence(Duration::from_millis(150));

    link.power_set(true).unwrap();
    let banner = port.read_until(BANNER_END, T);
    assert!(banner.contains("reset cause: power-on"), "{banner}");
    assert!(link.gpio_get(CHANNEL_READY).unwrap());
    assert_eq!(port.ask("ping"), "pong");
    let state = link.state().unwrap();
    assert_eq!(state["boots"], 2);
    assert_eq!(state["powered"], true);
}

#[test]
fn ready_follows_boot() {
    let (_dut, link) = start_with_socket(
        "ready",
        DutConfig {
            powered: false,
            boot_ms: 100,
            ..DutConfig::default()
        },
    );
    assert!(!link.gpio_get(CHANNEL_READY).unwrap());
    let start = Instant::now();
    link.power_set(true).unwrap();
    assert!(!link.gpio_get(CHANNEL_READY).unwrap(), "still booting");
    wait_for(T, || link.gpio_get(CHANNEL_READY).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[test]
fn reset_hold_and_release_reboots() {
    let (dut, link) = start_with_socket("reset", DutConfig::default());
    let mut port = Port::open(dut.port_path());
    port.read_until(BANNER_END, T);
    assert_eq!(port.ask("led on"), "led=on");
    assert!(link.gpio_get(CHANNEL_LED).unwrap());

    link.gpio_set(CHANNEL_RESET, true).unwrap();
    assert!(link.gpio_get(CHANNEL_RESET).unwrap());
    assert!(!link.gpio_get(CHANNEL_READY).unwrap());
    assert!(!link.gpio_get(CHANNEL_LED).unwrap());
    port.send("ping\n");
    port.expect_silence(Duration::from_millis(100));

    link.gpio_set(CHANNEL_RESET, false).unwrap();
    let banner = port.read_until(BANNER_END, T);
    assert!(banner.contains("reset cause: reset-pin"), "{banner}");
    assert!(link.gpio_get(CHANNEL_READY).unwrap());
    assert_eq!(port.ask("led?"), "led=off");
}

#[test]
fn button_and_faults() {
    let (dut, link) = start_with_socket("button", DutConfig::default());
    let mut port = Port::open(dut.port_path());
    port.read_until(BANNER_END, T);
    assert_eq!(port.ask("btn?"), "btn=0");
    link.gpio_set(CHANNEL_BUTTON, true).unwrap();
    assert_eq!(port.ask("btn?"), "btn=1");

    let err = link.gpio_set(CHANNEL_READY, true).unwrap_err();
    assert!(matches!(err, SimLinkError::Rejected { .. }), "{err}");
    let err = link.gpio_get(17).unwrap_err();
    assert!(err.to_string().contains("no gpio channel 17"), "{err}");
    assert!(matches!(
        link.fault("explode"),
        Err(SimLinkError::Rejected { .. })
    ));

    link.fault("silent").unwrap();
    port.send("ping\n");
    port.expect_silence(Duration::from_millis(100));
    link.fault("clear").unwrap();
    assert_eq!(port.ask("ping"), "pong");

    link.fault("hang").unwrap();
    port.send("ping\n");
    port.expect_silence(Duration::from_millis(100));
    assert_eq!(link.state().unwrap()["hung"], true);
    link.gpio_set(CHANNEL_RESET, true).unwrap();
    link.gpio_set(CHANNEL_RESET, false).unwrap();
    port.read_until(BANNER_END, T);
    assert_eq!(port.ask("ping"), "pong");
}

#[test]
fn in_process_controls_match_socket() {
    let (dut, link) = start_with_socket("inproc", DutConfig::default());
    let controls = dut.controls();
    wait_for(T, || controls.gpio_get(CHANNEL_READY).unwrap());
    controls.power_set(false);
    assert!(!link.power_get().unwrap());
    controls.power_set(true);
    assert!(link.power_get().unwrap());
    controls.gpio_set(CHANNEL_BUTTON, true).unwrap();
    assert!(link.gpio_get(CHANNEL_BUTTON).unwrap());
    assert!(controls.gpio_set(CHANNEL_LED, true).is_err());
    assert_eq!(controls.request("power?"), "on");
}

#[test]
fn symlink_and_socket_removed_on_stop() {
    let dir = scratch("link");
    let link_path = dir.join("dut-uart");
    let sock = dir.join("ctl.sock");
    let dut = SimDut::start(DutConfig {
        link: Some(link_path.clone()),
        control: Some(sock.clone()),
        ..DutConfig::default()
    })
    .unwrap();
    assert_eq!(dut.link_path(), Some(link_path.as_path()));
    assert_eq!(std::fs::read_link(&link_path).unwrap(), dut.port_path());
    let mut port = Port::open(&link_path);
    port.read_until(BANNER_END, T);
    assert_eq!(port.ask("ping"), "pong");
    assert!(sock.exists());
    dut.stop();
    assert!(
        std::fs::symlink_metadata(&link_path).is_err(),
        "link removed"
    );
    assert!(!sock.exists(), "socket removed");
    let err = SimLink::connect(&sock).unwrap_err();
    assert!(matches!(err, SimLinkError::Connect { .. }));
    assert!(err.to_string().contains("not running"), "{err}");
}

#[test]
fn drop_stops_and_existing_symlink_is_replaced() {
    let dir = scratch("drop");
    let link_path = dir.join("dut-uart");
    std::os::unix::fs::symlink("/nonexistent/old-pty", &link_path).unwrap();
    let sock = dir.join("ctl.sock");
    {
        let dut = SimDut::start(DutConfig {
            link: Some(link_path.clone()),
            control: Some(sock.clone()),
            ..DutConfig::default()
        })
        .unwrap();
        assert_eq!(std::fs::read_link(&link_path).unwrap(), dut.port_path());
    }
    assert!(std::fs::symlink_metadata(&link_path).is_err());
    assert!(!sock.exists());
}

#[test]
fn refuses_to_replace_regular_file() {
    let dir = scratch("file");
    let link_path = dir.join("dut-uart");
    std::fs::write(&link_path, "keep me").unwrap();
    let err = SimDut::start(DutConfig {
        link: Some(link_path.clone()),
        ..DutConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("not a symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&link_path).unwrap(), "keep me");
}

#[test]
fn stale_socket_replaced_live_socket_refused() {
    let dir = scratch("stale");
    let sock = dir.join("ctl.sock");
    drop(UnixListener::bind(&sock).unwrap()); // leaves a stale socket file
    assert!(sock.exists());
    let dut = SimDut::start(DutConfig {
        control: Some(sock.clone()),
        ..DutConfig::default()
    })
    .unwrap();
    SimLink::connect(&sock).unwrap().ping().unwrap();

    let err = SimDut::start(DutConfig {
        control: Some(sock.clone()),
        ..DutConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("already serving"), "{err}");
    // The refused second sim must not have removed the live socket.
    SimLink::connect(&sock).unwrap().ping().unwrap();
    drop(dut);
}

#[test]
fn raw_protocol_and_bad_clients() {
    let (dut, link) = start_with_socket("raw", DutConfig::default());
    let path = dut.control_path().unwrap().to_path_buf();

    // A client that disconnects mid-line.
    let mut half = UnixStream::connect(&path).unwrap();
    half.write_all(b"power of").unwrap();
    drop(half);

    // Garbage, binary and overlong input get one-line errors.
    let stream = UnixStream::connect(&path).unwrap();
    stream.set_read_timeout(Some(T)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut ask = |req: &[u8]| {
        w.write_all(req).unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        line
    };
    assert_eq!(ask(b"power?\n"), "on\n");
    assert_eq!(ask(b"power?\r\n"), "on\n");
    assert!(ask(b"\xff\xfe\n").starts_with("error: "));
    assert!(ask(b"\n").starts_with("error: empty request"));
    assert!(ask(b"gpio set 1 1\n").starts_with("error: channel 1 (READY)"));
    assert!(ask(&[b'x'; 5000]).starts_with("error: request longer"));

    // The server is still fine for everyone else.
    assert!(link.power_get().unwrap());
}

#[test]
fn concurrent_clients() {
    let (dut, _link) = start_with_socket("many", DutConfig::default());
    let path = dut.control_path().unwrap().to_path_buf();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let link = SimLink::connect(&path).unwrap();
                for _ in 0..100 {
                    link.gpio_set(CHANNEL_BUTTON, i % 2 == 0).unwrap();
                    link.gpio_get(CHANNEL_BUTTON).unwrap();
                    assert!(link.power_get().unwrap());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
