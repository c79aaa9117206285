//! `hilt sim dut` (a simulated device on a pty), `hilt sim http-relay` (a simulated HTTP
//! relay board), `modbus`, `scpi` and `slcan` (a USB-CAN adapter with an ECU behind it),
//! until Ctrl-C or SIGTERM.

use std::io::{BufRead, Write};

use hilt_sim::{
    BusSim, DutConfig, HttpRelayConfig, HttpRelaySim, ModbusBind, ModbusSim, ModbusSimConfig,
    RegisterMap, ScpiSim, SimDut,
};

use crate::cli::{
    SimBusArgs, SimDutArgs, SimHttpRelayArgs, SimModbusArgs, SimScpiArgs, SimSlcanArgs,
};

pub fn slcan(a: SimSlcanArgs) -> anyhow::Result<i32> {
    let cfg = hilt_sim::SlcanSimConfig {
        latency_ms: a.latency_ms,
        heartbeat_ms: a.heartbeat_ms,
    };
    let sim = match hilt_sim::SlcanSim::start(a.pty, cfg) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(hilt_runner::classify::exit::BENCH_ERROR);
        }
    };
    println!("{}", sim.port_path().display());
    if let Some(l) = sim.link_path() {
        eprintln!("link: {} -> {}", l.display(), sim.port_path().display());
    }
    eprintln!("simulated slcan adapter running; commands on stdin; Ctrl-C to stop");
    control_from_stdin(std::sync::Arc::downgrade(&sim), |s, l| s.control(l));
    wait_for_signal()?;
    drop(sim);
    Ok(0)
}

pub fn scpi(a: SimScpiArgs) -> anyhow::Result<i32> {
    let started = match &a.serial {
        Some(link) => ScpiSim::start_serial(Some(link.clone())).map_err(|e| e.to_string()),
        None => ScpiSim::start(&a.tcp).map_err(|e| format!("cannot listen on {}: {e}", a.tcp)),
    };
    let sim = match started {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(hilt_runner::classify::exit::BENCH_ERROR);
        }
    };
    if a.latency_ms > 0 {
        sim.control(&format!("latency {}", a.latency_ms));
    }
    println!("{}", sim.address());
    eprintln!("simulated SCPI instrument running; commands on stdin; Ctrl-C to stop");
    control_from_stdin(std::sync::Arc::downgrade(&sim), |s, l| s.control(l));
    wait_for_signal()?;
    drop(sim);
    Ok(0)
}

pub fn bus(a: SimBusArgs) -> anyhow::Result<i32> {
    let sim = match BusSim::start(&a.listen) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", a.listen);
            return Ok(hilt_runner::classify::exit::BENCH_ERROR);
        }
    };
    if a.stretch_ms > 0 {
        let answer = sim.control(&format!("stretch {}", a.stretch_ms));
        if answer.starts_with("error") {
            eprintln!("{answer}");
            return Ok(hilt_runner::classify::exit::USAGE);
        }
    }
    println!("{}", sim.address());
    eprintln!("simulated I2C/SPI bus running; commands on stdin; Ctrl-C to stop");
    control_from_stdin(std::sync::Arc::downgrade(&sim), |s, l| s.control(l));
    wait_for_signal()?;
    drop(sim);
    Ok(0)
}

/// Control commands from stdin, answered on stdout; at its end the sim keeps running
/// until a signal.
fn control_from_stdin<T: Send + Sync + 'static>(
    sim: std::sync::Weak<T>,
    run: fn(&T, &str) -> String,
) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let Some(sim) = sim.upgrade() else { break };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", run(&sim, line.trim()));
            let _ = out.flush();
        }
    });
}

pub fn modbus(a: SimModbusArgs) -> anyhow::Result<i32> {
    let file = a.map.display().to_string();
    let text = match hilt_model::load::read_capped(&a.map, 16 * 1024 * 1024) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            eprintln!("error: cannot read the register map {file}: {e}");
            return Ok(hilt_runner::classify::exit::CONFIG_ERROR);
        }
    };
    let map = match RegisterMap::parse(&text, &file) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(hilt_runner::classify::exit::CONFIG_ERROR);
        }
    };
    let bind = match (a.tcp, a.rtu) {
        (Some(addr), _) => ModbusBind::Tcp(addr),
        (None, link) => ModbusBind::Rtu(link),
    };
    let cfg = ModbusSimConfig {
        latency_ms: a.latency_ms,
    };
    let sim = match ModbusSim::start(bind, map, cfg) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(hilt_runner::classify::exit::BENCH_ERROR);
        }
    };
    println!("{}", sim.address());
    if let Some(l) = sim.link_path() {
        eprintln!("link: {} -> {}", l.display(), sim.address());
    }
    eprintln!("simulated Modbus slaves running; commands on stdin; Ctrl-C to stop");
    control_from_stdin(std::sync::Arc::downgrade(&sim), |s, l| s.control(l));
    wait_for_signal()?;
    drop(sim);
    Ok(0)
}

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
        crash_on_line_over: a.crash_on_line_over,
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
