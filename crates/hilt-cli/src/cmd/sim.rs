//! `hilt sim dut` (a simulated device on a pty) and `hilt sim http-relay` (a simulated
//! HTTP relay board), until Ctrl-C or SIGTERM.

use hilt_sim::{DutConfig, HttpRelayConfig, HttpRelaySim, SimDut};

use crate::cli::{SimDutArgs, SimHttpRelayArgs};

pub fn http_relay(a: SimHttpRelayArgs) -> anyhow::Result<i32> {
    let require_header = match a.require_header.as_deref().map(|h| h.split_once(':')) {
        None => None,
        Some(Some((k, v))) if !k.trim().is_empty() => {
            Some((k.trim().to_string(), v.trim().to_string()))
        }
        Some(_) => {
            eprintln!("error: --require-header must look like `Name: value`");
            return Ok(hilt_runner::classify::exit::USAGE);
        }
    };
    let cfg = HttpRelayConfig {
        latency_ms: a.latency_ms,
        require_header,
    };
    let sim = match HttpRelaySim::start(&a.bind, cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", a.bind);
            return Ok(hilt_runner::classify::exit::BENCH_ERROR);
        }
    };
    println!("{}", sim.base_url());
    eprintln!("simulated HTTP relay running; Ctrl-C to stop");
    wait_for_signal()?;
    sim.stop();
    Ok(0)
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_signal() -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    signals.forever().next();
    Ok(())
}

pub fn dut(a: SimDutArgs) -> anyhow::Result<i32> {
    let mut cfg = DutConfig {
        link: a.link,
        control: a.control,
        latency_ms: a.latency_ms,
        jitter_ms: a.jitter_ms,
        noise: a.noise,
        boot_ms: a.boot_ms,
        powered: !a.powered_off,
        seed: a.seed,
        ..DutConfig::default()
    };
    cfg.identity.serial_number = a.serial_number;
    let dut = match SimDut::start(cfg) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(hilt_runner::classify::exit::BENCH_ERROR);
        }
    };
    println!("{}", dut.port_path().display());
    if let Some(l) = dut.link_path() {
        eprintln!("link:    {} -> {}", l.display(), dut.port_path().display());
    }
    if let Some(c) = dut.control_path() {
        eprintln!("control: {}", c.display());
    }
    eprintln!("simulated DUT running; Ctrl-C to stop");
    wait_for_signal()?;
    dut.stop();
    Ok(0)
}
