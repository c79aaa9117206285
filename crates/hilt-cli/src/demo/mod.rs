//! The demo bench and suite `hilt demo` writes, with the simulated device's paths filled in.

use std::path::Path;

pub mod qemu;

pub const BENCH: &str = include_str!("bench.yaml");
pub const SUITE: &str = include_str!("suite.yaml");
pub const FAILING_TEST: &str = include_str!("fail.yaml");

/// The bench text wired to the simulated device's pty link and control socket.
pub fn bench(port: &Path, control: &Path) -> String {
    BENCH
        .replace("{{PORT}}", &port.display().to_string())
        .replace("{{CONTROL}}", &control.display().to_string())
}

pub fn suite(fail: bool) -> String {
    if fail {
        format!("{SUITE}{FAILING_TEST}")
    } else {
        SUITE.to_string()
    }
}
