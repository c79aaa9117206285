//! The checks themselves, in the spec's order: static checks, then (optionally) opening
//! hardware, reading inputs and taking readings.

use std::path::Path;

use hilt_hw::ResourceKind;
use hilt_hw::drivers::{Probe, SelfCheck};
use hilt_hw::process::which;
use hilt_model::bench::{Bench, GpioBackend, ResetMethod, Transport, tool_for};
use hilt_model::run::Category;
use hilt_model::{LoadError, LoadOptions};

use super::{Check, SelfTestOptions};
use crate::logfile::LogFile;

pub fn run(path: &Path, opts: &SelfTestOptions) -> Vec<Check> {
    let mut out = Vec::new();
    if !path.is_file() {
        out.push(Check::fail(
            "bench_yaml_exists",
            "bench.yaml exists",
            "CONFIG_ERROR",
            format!("{} does not exist", path.display()),
            "check the bench file path",
        ));
        return out;
    }
    let loaded = match hilt_model::load_bench(path, LoadOptions::default()) {
        Ok(b) => b,
        Err(e @ LoadError::Invalid { .. }) => {
            out.push(Check::fail(
                "bench_yaml_valid",
                "bench.yaml is valid",
                "CONFIG_ERROR",
                e.to_string(),
                "run `hilt validate --bench <file>` and fix the errors",
            ));
            return out;
        }
        Err(e) => {
            out.push(Check::fail(
                "bench_yaml_load",
                "bench.yaml loads",
                "CONFIG_ERROR",
                e.to_string(),
                "check that the file is readable",
            ));
            return out;
        }
    };
    let bench = &loaded.value;
    out.push(
        Check::pass(
            "bench_yaml_loaded",
            "bench.yaml loaded",
            format!("bench `{}` loaded", bench.bench.name),
        )
        .optional(),
    );
    match bench.defaults.as_ref().and_then(|d| d.node.as_ref()) {
        Some(n) => out.push(
            Check::pass(
                "default_node",
                "default node",
                format!("default node `{n}`"),
            )
            .optional(),
        ),
        None if bench.nodes.is_empty() => {}
        None => out.push(Check::warn(
            "default_node",
            "default node",
            "CONFIG_WARNING",
            "defaults.node is not set",
        )),
    }
    for (i, w) in loaded.warnings.iter().enumerate() {
        out.push(Check::warn(
            format!("bench_warning_{i}"),
            "bench warning",
            "CONFIG_WARNING",
            w.to_string(),
        ));
    }
    static_node_checks(bench, &mut out);
    for (name, r) in &bench.resources {
        out.push(
            Check::pass(
                format!("resource.{name}"),
                format!("resource {name}"),
                format!("{} ({})", r.kind, r.driver.type_name()),
            )
            .detail("resource", name.clone())
            .detail("kind", r.kind.clone())
            .detail("driver_type", r.driver.type_name()),
        );
    }
    if opts.open_hardware {
        hardware_checks(bench, opts, &mut out);
    }
    host_checks(bench, path, opts, &mut out);
    out
}

/// A device node that must exist: pass, or fail with the fix.
fn node_check(id: &str, title: &str, path: &str, fix: &str) -> Check {
    if Path::new(path).exists() {
        Check::pass(id, title, format!("device {path}"))
    } else {
        Check::fail(
            id,
            title,
            "TRANSPORT_OPEN_FAILED",
            format!("device {path} does not exist"),
            fix,
        )
    }
}

/// Each remote host: its chain; with `--open-hardware`, a connection through the chain
/// and `true` on the host (nothing else is run).
fn host_checks(bench: &Bench, path: &Path, opts: &SelfTestOptions, out: &mut Vec<Check>) {
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    for (name, h) in &bench.hosts {
        let hops: Vec<String> = h
            .transport
            .hops()
            .iter()
            .enumerate()
            .map(|(i, hop)| hop.label(i))
            .collect();
        let id = format!("host.{name}");
        let title = format!("host {name}");
        if !opts.open_hardware {
            out.push(
                Check::pass(
                    id,
                    title,
                    format!(
                        "{}@{}:{} (not connected: pass --open-hardware)",
                        h.username, h.hostname, h.port
                    ),
                )
                .detail("hops", hops),
            );
            continue;
        }
        let _ = std::fs::create_dir_all(&opts.log_dir);
        let cancel = hilt_hw::CancelToken::new();
        let check = match hilt_hw::ssh::self_test(bench, name, &dir, &opts.log_dir, &cancel) {
            Ok(()) => Check::pass(id, title, "connected through the chain and ran `true`"),
            Err(e) => {
                let category = match e.kind {
                    hilt_hw::ssh::SshErrorKind::Auth => "REMOTE_AUTH_FAILED",
                    hilt_hw::ssh::SshErrorKind::HostKey => "REMOTE_HOST_KEY_MISMATCH",
                    _ => "REMOTE_HOST_UNREACHABLE",
                };
                Check::fail(
                    id,
                    title,
                    category,
                    e.message.clone(),
                    "check the named host or hop, its credentials and the known_hosts file",
                )
                .detail("failed_at", e.at.clone())
            }
        };
        out.push(check.detail("hops", hops));
    }
}

fn tool_check(id: String, title: String, tool: &str) -> Check {
    match which(tool) {
        Some(p) => Check::pass(id, title, format!("{tool} found at {}", p.display())),
        None => Check::fail(
            id,
            title,
            "FLASH_TOOL_UNAVAILABLE",
            format!("`{tool}` is not on PATH"),
            install_hint(tool),
        ),
    }
}

/// How to get a missing tool; the exact install line where hilt knows it.
fn install_hint(tool: &str) -> String {
    match tool {
        "qemu-system-arm" => format!("install it with: {}", hilt_hw::qemu::INSTALL_QEMU),
        _ => format!("install {tool} or add it to PATH"),
    }
}

fn looks_like_device(port: &str) -> bool {
    port.starts_with("/dev/") || (port.len() > 3 && port[..3].eq_ignore_ascii_case("com"))
}

fn static_node_checks(bench: &Bench, out: &mut Vec<Check>) {
    for (n, node) in &bench.nodes {
        if let Some(f) = &node.flash {
            out.push(Check::pass(
                format!("node.{n}.flash.backend"),
                format!("{n} flash backend"),
                f.backend.name(),
            ));
            out.push(tool_check(
                format!("node.{n}.flash.tool"),
                format!("{n} flash tool"),
                f.backend.tool(),
            ));
        }
        match node.reset.method {
            ResetMethod::None => out.push(Check::skip(
                format!("node.{n}.reset"),
                format!("{n} reset"),
                "reset method none",
            )),
            ResetMethod::Gpio => out.push(Check::pass(
                format!("node.{n}.reset"),
                format!("{n} reset"),
                "GPIO reset line",
            )),
            m => {
                out.push(Check::pass(
                    format!("node.{n}.reset"),
                    format!("{n} reset"),
                    m.as_str(),
                ));
                out.push(tool_check(
                    format!("node.{n}.reset.tool"),
                    format!("{n} reset tool"),
                    tool_for(m.as_str()),
                ));
            }
        }
        for (t, tr) in &node.transports {
            let id = format!("node.{n}.transport.{t}");
            let title = format!("{n}.{t} transport");
            let c = match tr {
                Transport::Uart { port, .. }
                | Transport::ModbusRtu { port, .. }
                | Transport::Slcan { port, .. } => {
                    if looks_like_device(port) && !Path::new(port).exists() {
                        Check::fail(
                            &id,
                            &title,
                            "TRANSPORT_OPEN_FAILED",
                            format!("port {port} does not exist"),
                            "plug the device in or fix the port path",
                        )
                    } else {
                        Check::pass(&id, &title, format!("port {port}"))
                    }
                }
                Transport::Can { interface, .. } => {
                    let sys = Path::new("/sys/class/net").join(interface);
                    if !sys.exists() {
                        Check::fail(
                            &id,
                            &title,
                            "TRANSPORT_OPEN_FAILED",
                            format!("CAN interface {interface} does not exist"),
                            "bring the CAN adapter up",
                        )
                    } else if std::fs::read_to_string(sys.join("operstate"))
                        .map(|s| s.trim() == "down")
                        .unwrap_or(false)
                    {
                        Check::fail(
                            &id,
                            &title,
                            "TRANSPORT_OPEN_FAILED",
                            format!("CAN interface {interface} is down"),
                            format!("ip link set {interface} up type can bitrate <rate>"),
                        )
                    } else {
                        Check::pass(&id, &title, format!("interface {interface}"))
                    }
                }
                // BenchCI warns "unknown transport type" here, so a bench with a Modbus
                // TCP device could never be healthy; the endpoint is reached with
                // `--open-hardware`.
                Transport::ModbusTcp { host, port, .. } => {
                    Check::pass(&id, &title, format!("endpoint {host}:{port}"))
                }
                // BenchCI warns "unknown transport type" for I2C and SPI too; hilt checks
                // the device node (or names the simulator, reached with `--open-hardware`).
                Transport::I2c { sim: Some(sim), .. } | Transport::Spi { sim: Some(sim), .. } => {
                    Check::pass(&id, &title, format!("simulated bus {sim}"))
                }
                Transport::I2c { bus, .. } => node_check(
                    &id,
                    &title,
                    &hilt_hw::i2c::linux::device_path(*bus),
                    "enable the I2C adapter and load i2c-dev (`modprobe i2c-dev`), or fix `bus`",
                ),
                Transport::Spi { bus, device, .. } => node_check(
                    &id,
                    &title,
                    &hilt_hw::spi::linux::device_path(*bus, *device),
                    "enable the SPI controller and bind spidev to the chip select, or fix `bus`/`device`",
                ),
            };
            out.push(c.detail("node", n.clone()).detail("transport", t.clone()));
        }
        for (l, line) in &node.gpio {
            match &line.backend {
                GpioBackend::LocalGpio { chip, .. }
                    if !chip.starts_with(hilt_hw::gpiochip::SIM_PREFIX)
                        && !Path::new(chip).exists() =>
                {
                    out.push(Check::fail(
                        format!("node.{n}.gpio.{l}"),
                        format!("{n}.{l} GPIO"),
                        "GPIO_LINE_UNREACHABLE",
                        format!("GPIO chip {chip} does not exist"),
                        "check the chip path",
                    ))
                }
                GpioBackend::RemoteGpio { token_env, .. }
                    if std::env::var_os(token_env).is_none() =>
                {
                    out.push(Check::fail(
                        format!("node.{n}.gpio.{l}.token"),
                        format!("{n}.{l} remote GPIO token"),
                        "GPIO_LINE_UNREACHABLE",
                        format!("environment variable {token_env} is not set"),
                        format!("export {token_env}=<agent token>"),
                    ))
                }
                b => out.push(Check::pass(
                    format!("node.{n}.gpio.{l}"),
                    format!("{n}.{l} GPIO"),
                    b.name(),
                )),
            }
        }
    }
}

/// A driver's self-test probe as a check record under `prefix`.
fn probe_check(prefix: &str, p: SelfCheck) -> Check {
    let id = format!("{prefix}.{}", p.id);
    match p.outcome {
        Probe::Pass(m) => {
            let c = Check::pass(id, p.title, m);
            // Readings are informative: an instrument that reads is not required to.
            if p.id == "measurement.read" {
                c.optional()
            } else {
                c
            }
        }
        Probe::Skip(m) => Check::skip(id, p.title, m),
        Probe::NoReadback(m) => Check::warn(id, p.title, "POWER_READBACK_UNAVAILABLE", m),
        Probe::Failed(e) => {
            let category = e
                .kind()
                .map(crate::classify::unavailable)
                .unwrap_or(Category::Cancelled);
            let fix = match e.kind() {
                Some(ResourceKind::Gpio) => "check the GPIO chip and lines",
                Some(ResourceKind::Power) => {
                    "check the controller's settings and that it is reachable"
                }
                Some(ResourceKind::Measurement) => "check the instrument's settings",
                Some(ResourceKind::Serial) => "check the cable and the port path",
                Some(ResourceKind::Modbus) => {
                    "check the port or address, the slave's power and its wiring"
                }
                Some(ResourceKind::I2c) => {
                    "check that the I2C bus exists (`ls /dev/i2c-*`, `modprobe i2c-dev`) or the simulator runs"
                }
                Some(ResourceKind::Spi) => {
                    "check that the spidev node exists (`ls /dev/spidev*`) or the simulator runs"
                }
                Some(ResourceKind::Can) => {
                    "check the adapter's port or the interface, its bit rate and the bus wiring"
                }
                None => "run the self-test again",
            };
            Check::fail(id, p.title, category.as_str(), e.to_string(), fix)
        }
    }
}

fn hardware_checks(bench: &Bench, opts: &SelfTestOptions, out: &mut Vec<Check>) {
    let _ = std::fs::create_dir_all(&opts.log_dir);
    let mut main_log = LogFile::open(&opts.log_dir.join("self-test.log")).ok();
    if let Some(l) = &mut main_log {
        l.line(&format!(
            "SELF_TEST_START open_hardware=true read_inputs={} read_measurements={}",
            opts.read_inputs, opts.read_measurements
        ));
    }
    out.push(
        Check::pass(
            "hardware_open_mode",
            "hardware open mode",
            "opening hardware without driving it",
        )
        .optional()
        .detail("log_dir", opts.log_dir.display().to_string())
        .detail("read_inputs", opts.read_inputs)
        .detail("read_measurements", opts.read_measurements),
    );
    for (n, node) in &bench.nodes {
        for (t, tr) in &node.transports {
            let id = format!("node.{n}.transport.{t}.open");
            let log_path = opts
                .log_dir
                .join("nodes")
                .join(n)
                .join(format!("transport-{t}.log"));
            let mut log = LogFile::open(&log_path).ok();
            let mut note = |s: &str| {
                if let Some(l) = &mut log {
                    l.line(s);
                }
            };
            note("SELF_TEST_START");
            let mut extra: Vec<Check> = Vec::new();
            let c = match tr {
                // The pty of an emulated board exists only while its emulator runs (started
                // by the run); the board's own checks cover the emulator.
                Transport::Uart { .. } if tr.qemu_board().is_some() => Check::skip(
                    &id,
                    format!("open {n}.{t}"),
                    format!(
                        "the UART of emulated board `{}`: its pty exists while the emulator runs",
                        tr.qemu_board().unwrap_or_default()
                    ),
                ),
                Transport::Uart {
                    port,
                    baud,
                    bytesize,
                    parity,
                    stopbits,
                    ..
                } => {
                    note("OPEN_ATTEMPT");
                    let settings = hilt_hw::serial::SerialSettings {
                        port: port.clone(),
                        baud: *baud,
                        bytesize: *bytesize,
                        parity: *parity,
                        stopbits: *stopbits,
                    };
                    match hilt_hw::serial::open(&settings) {
                        Ok(p) => {
                            note("OPEN_OK");
                            drop(p);
                            note("CLOSE_OK");
                            Check::pass(&id, format!("open {n}.{t}"), format!("opened {port}"))
                        }
                        Err(e) => {
                            note(&format!("OPEN_FAILED {e}"));
                            Check::fail(
                                &id,
                                format!("open {n}.{t}"),
                                "TRANSPORT_OPEN_FAILED",
                                e.to_string(),
                                "check the cable, the port path and that no other program holds it",
                            )
                        }
                    }
                }
                other if hilt_hw::drivers::transport_driver(other.backend()).is_some() => {
                    // The driver's own probe: opening connects (TCP) or opens the port
                    // (RTU, slcan: then the adapter's version); nothing reaches the device.
                    note("OPEN_ATTEMPT");
                    let probes = hilt_hw::drivers::transport_driver(other.backend())
                        .map(|d| d.self_test(n, t, other))
                        .unwrap_or_default();
                    let mut first = None;
                    for p in probes {
                        let (cid, title) = if p.id == "start" {
                            (id.clone(), format!("open {n}.{t}"))
                        } else {
                            (format!("node.{n}.transport.{t}.{}", p.id), p.title.clone())
                        };
                        let c = match p.outcome {
                            Probe::Pass(m) => {
                                note(&format!("{} OK {m}", p.id.to_uppercase()));
                                Check::pass(&cid, title, m)
                            }
                            Probe::Skip(m) | Probe::NoReadback(m) => Check::skip(&cid, title, m),
                            Probe::Failed(e) => {
                                note(&format!("{} FAILED {e}", p.id.to_uppercase()));
                                Check::fail(
                                    &cid,
                                    title,
                                    "TRANSPORT_OPEN_FAILED",
                                    e.to_string(),
                                    "check the port or address, that the device is powered and that no other program holds it",
                                )
                            }
                        };
                        match first {
                            None => first = Some(c),
                            Some(_) => extra.push(c),
                        }
                    }
                    note("CLOSE_OK");
                    first.unwrap_or_else(|| Check::skip(&id, format!("open {n}.{t}"), "no driver"))
                }
                other => Check::skip(
                    &id,
                    format!("open {n}.{t}"),
                    format!(
                        "`{}` transports are not opened by this build",
                        other.backend()
                    ),
                ),
            };
            for c in std::iter::once(c).chain(extra) {
                out.push(
                    c.detail("node", n.clone())
                        .detail("transport", t.clone())
                        .detail("log_path", log_path.display().to_string()),
                );
            }
        }
        if node.gpio.is_empty() {
            out.push(Check::skip(
                format!("node.{n}.gpio.start"),
                format!("{n} GPIO"),
                "no GPIO lines",
            ));
            continue;
        }
        let probes = hilt_hw::drivers::gpio_self_test(n, &node.gpio, opts.read_inputs);
        out.extend(
            probes
                .into_iter()
                .map(|p| probe_check(&format!("node.{n}"), p)),
        );
    }
    for (name, r) in &bench.resources {
        let Some(driver) = hilt_hw::drivers::resource_driver(r.driver.type_name()) else {
            // A power or measurement driver this build lacks cannot be started: say so.
            if let Err(e) = hilt_hw::drivers::open_resource(name, &r.driver)
                && (r.driver.is_power() || r.driver.is_measurement())
            {
                let kind = if r.driver.is_power() {
                    "power"
                } else {
                    "measurement"
                };
                out.push(probe_check(
                    &format!("resource.{name}"),
                    SelfCheck {
                        id: format!("{kind}.start"),
                        title: format!("start {name}"),
                        outcome: Probe::Failed(e),
                    },
                ));
            }
            continue;
        };
        {
            let read = match driver.kind() {
                ResourceKind::Measurement => opts.read_measurements,
                ResourceKind::Power
                | ResourceKind::Gpio
                | ResourceKind::Serial
                | ResourceKind::Modbus
                | ResourceKind::I2c
                | ResourceKind::Spi
                | ResourceKind::Can => opts.read_inputs,
            };
            let probes = driver.self_test(name, &r.driver, read);
            out.extend(
                probes
                    .into_iter()
                    .map(|p| probe_check(&format!("resource.{name}"), p)),
            );
        }
    }
    // One log per resource, beside the per-node transport logs.
    for name in bench.resources.keys() {
        let prefix = format!("resource.{name}.");
        if let Ok(mut log) = LogFile::open(
            &opts
                .log_dir
                .join("resources")
                .join(name)
                .join("self-test.log"),
        ) {
            log.line("SELF_TEST_START");
            for c in out.iter().filter(|c| c.id.starts_with(&prefix)) {
                log.line(&format!(
                    "{} {} {}",
                    c.status.to_uppercase(),
                    c.id,
                    c.message
                ));
            }
        }
    }
    if let Some(l) = &mut main_log {
        for c in out.iter() {
            l.line(&format!(
                "{} {} {}",
                c.status.to_uppercase(),
                c.id,
                c.message
            ));
        }
        l.line("SELF_TEST_END");
    }
}
