//! The emulated board for the agent and server tests (`qemu_agent.rs`,
//! `server_fleet_e2e.rs`): hilt's own firmware built once per test binary, a bench file for
//! QEMU's lm3s6965evb, and the check that no emulator outlives a test. Skips visibly without
//! QEMU or the cross compiler; fails instead under HILT_REQUIRE_PEERS=1 (as `qemu_board.rs`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const QEMU: &str = "qemu-system-arm";
const GCC: &str = "arm-none-eabi-gcc";

/// The v1 and v2 firmware images; `None` (after saying why) when the emulator or the
/// compiler is missing.
pub fn firmware() -> Option<&'static (PathBuf, PathBuf)> {
    static BUILT: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let missing: Vec<_> = [QEMU, GCC]
                .into_iter()
                .filter(|t| hilt_hw::process::which(t).is_none())
                .collect();
            if !missing.is_empty() {
                if std::env::var_os("HILT_REQUIRE_PEERS").is_some_and(|v| !v.is_empty()) {
                    panic!(
                        "{} missing but HILT_REQUIRE_PEERS is set: run scripts/peers.sh",
                        missing.join(", ")
                    );
                }
                eprintln!(
                    "skipping: {} not installed (run scripts/peers.sh)",
                    missing.join(", ")
                );
                return None;
            }
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-firmware");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware/build.sh");
            let status = std::process::Command::new("bash")
                .arg(script)
                .arg(&out)
                .status()
                .expect("running firmware/build.sh");
            assert!(status.success(), "firmware/build.sh failed: {status}");
            Some((out.join("hilt-fw-v1.elf"), out.join("hilt-fw-v2.elf")))
        })
        .as_ref()
}

/// A marker passed to QEMU (`-name`) so a test finds exactly its own emulators.
pub fn marker(name: &str) -> String {
    format!("hilt-test-{name}-{}", std::process::id())
}

/// `dir/qemu-bench.yaml`: one emulated board, its console over a pty, flashed by the run's
/// artifact, reset through QMP.
pub fn bench(dir: &Path, marker: &str) -> PathBuf {
    bench_file(&dir.join("qemu-bench.yaml"), marker, "")
}

/// The same bench at `path`, with `driver_extra` (indented YAML lines) added to the board's
/// driver; `marker` is passed to QEMU (`-name`) so a test finds exactly its own emulators.
pub fn bench_file(path: &Path, marker: &str, driver_extra: &str) -> PathBuf {
    let text = format!(
        r#"version: 1
bench: {{name: qemu rig}}
defaults:
  node: dut
  timeouts: {{within_ms: 5000}}
nodes:
  dut:
    kind: mcu
    flash: {{backend: qemu, board: board}}
    reset: {{method: qemu}}
    transports:
      console: {{backend: uart, port: "qemu:board"}}
resources:
  board:
    kind: emulator
    driver:
      type: qemu
      extra_args: ["-name", "{marker}"]
{driver_extra}"#
    );
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// Flash the run's artifact and see v1 boot, ping → pong, reset and boot again.
pub const SUITE: &str = r#"version: 1
suite: {name: qemu board}
tests:
  - name: flash boots v1
    steps:
      - flash: {node: dut}
      - expect_uart: {node: dut, transport: console, contains: "HILT-QEMU DUT v1.0.0"}
      - expect_uart: {node: dut, transport: console, contains: "ready"}
  - name: ping pong
    steps:
      - send_uart: {node: dut, transport: console, data: "ping\n"}
      - expect_uart: {node: dut, transport: console, contains: "pong"}
  - name: reset reboots
    steps:
      - send_uart: {node: dut, transport: console, data: "reg write 5 4660\n"}
      - expect_uart: {node: dut, transport: console, contains: "ok"}
      - reset: {node: dut}
      - expect_uart: {node: dut, transport: console, contains: "HILT-QEMU DUT v1.0.0"}
      - send_uart: {node: dut, transport: console, data: "reg read 5\n"}
      - expect_uart: {node: dut, transport: console, contains: "reg[0x05]=0x0000"}
"#;

/// Pids of processes whose command line has `marker` as one argument.
pub fn emulators(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&marker.as_bytes()) && pid != std::process::id() {
            out.push(pid);
        }
    }
    out
}

/// Waits (bounded, 5 s) for the emulators with `marker` to be gone; fails if any is left.
pub fn assert_emulator_gone_soon(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !emulators(marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_no_emulator(marker);
}

/// Fails if an emulator with `marker` runs now.
pub fn assert_no_emulator(marker: &str) {
    let left = emulators(marker);
    assert!(left.is_empty(), "emulator processes left behind: {left:?}");
}
