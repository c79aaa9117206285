//! `hilt sim dut`: a simulated device on a pty, until Ctrl-C.

use hilt_hw::CancelToken;
use hilt_sim::{DutConfig, SimDut};

use crate::cli::SimDutArgs;

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
    let cancel = CancelToken::new();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let c2 = cancel.clone();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            c2.cancel();
        }
    });
    while !cancel.wait_timeout(std::time::Duration::from_secs(3600)) {}
    dut.stop();
    Ok(0)
}
