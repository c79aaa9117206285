//! Which physical resources a suite needs, as lock specs (self-test-and-locks spec §3.2).
//! hilt also locks the transports of fuzz, I2C and SPI steps, and the canonical path of
//! serial ports reached through a symlink, closing BenchCI's gaps.

use std::collections::BTreeSet;

use hilt_hw::locks::{LockSpec, canonical_serial_key};
use hilt_model::bench::{Bench, FlashBackend, GpioBackend, ResourceDriver, Transport};
use hilt_model::suite::{Step, Suite};

pub fn collect(bench: &Bench, suite: &Suite, skip_flash: bool) -> Vec<LockSpec> {
    let mut specs = Vec::new();
    let mut gpio_nodes = BTreeSet::new();
    let mut flash_nodes = BTreeSet::new();
    for test in &suite.tests {
        for step in &test.steps {
            match step {
                Step::Flash(s) if !skip_flash => {
                    flash_nodes.insert(s.node.clone());
                }
                Step::Reset(s) => {
                    flash_nodes.insert(s.node.clone());
                }
                Step::GpioSet(_)
                | Step::GpioGet(_)
                | Step::GpioExpect(_)
                | Step::GpioWaitEdge(_) => {
                    if let Some(n) = step.node() {
                        gpio_nodes.insert(n.to_string());
                    }
                }
                Step::FaultInjectGpioGlitch(f) => {
                    gpio_nodes.insert(f.node.clone());
                    transport(bench, &f.recovery.node, &f.recovery.transport, &mut specs);
                }
                Step::FaultInjectPowerGlitch(f) => {
                    resource(bench, &f.resource, &mut specs);
                    transport(bench, &f.recovery.node, &f.recovery.transport, &mut specs);
                }
                Step::FaultInjectUartNoise(f) => {
                    transport(bench, &f.recovery.node, &f.recovery.transport, &mut specs);
                }
                Step::PowerSet(s) | Step::PowerExpect(s) => {
                    resource(bench, &s.resource, &mut specs)
                }
                Step::PowerCycle(s) => resource(bench, &s.resource, &mut specs),
                Step::Measure(m) => resource(bench, &m.resource, &mut specs),
                Step::RunExternal(r) => {
                    if let Some(t) = bench.safety.external.targets.get(&r.target) {
                        let key = t
                            .lock_key
                            .clone()
                            .unwrap_or_else(|| format!("external:{}", r.target));
                        specs.push(
                            LockSpec::new(
                                key,
                                format!("external target {}", r.target),
                                "external_target",
                            )
                            .with_detail("target", r.target.clone()),
                        );
                    }
                }
                _ => {}
            }
            if let (Some(n), Some(t)) = (step.node(), step.transport()) {
                transport(bench, n, t, &mut specs);
            }
        }
    }
    for (name, node) in &bench.nodes {
        if let Some(dut) = &node.dut
            && let Some(si) = &dut.self_identification
            && suite_uses_node(suite, name)
        {
            transport(bench, name, &si.transport, &mut specs);
        }
    }
    for n in &flash_nodes {
        flash(bench, n, &mut specs);
    }
    // Every GPIO line of every used node is opened, so every line is locked.
    for (name, node) in &bench.nodes {
        if !(gpio_nodes.contains(name) || (!node.gpio.is_empty() && suite_uses_node(suite, name))) {
            continue;
        }
        for (line, l) in &node.gpio {
            let (key, display) = match &l.backend {
                GpioBackend::LocalGpio { chip, line: n } => {
                    (format!("gpio:local:{chip}:{n}"), format!("{chip} line {n}"))
                }
                GpioBackend::RemoteGpio {
                    host,
                    port,
                    chip,
                    line: n,
                    ..
                } => {
                    let chip = chip.clone().unwrap_or_default();
                    let n = n.map(|n| n.to_string()).unwrap_or_default();
                    (
                        format!("gpio:remote:{host}:{port}:{chip}:{n}"),
                        format!("{host}:{port} {chip} line {n}"),
                    )
                }
                GpioBackend::MockGpio { channel, .. } => (
                    format!("gpio:mock:{name}:{channel}"),
                    format!("mock GPIO {name} channel {channel}"),
                ),
            };
            let channel = match &l.backend {
                GpioBackend::MockGpio { channel, .. } => Some(channel.to_string()),
                GpioBackend::LocalGpio { line: n, .. } => Some(n.to_string()),
                GpioBackend::RemoteGpio { line: n, .. } => n.map(|n| n.to_string()),
            };
            let mut spec = LockSpec::new(key, display, "gpio_line")
                .with_detail("node", name.clone())
                .with_detail("line", line.clone())
                .with_detail("backend", l.backend.name());
            if let Some(c) = channel {
                spec = spec.with_detail("channel", c);
            }
            specs.push(spec);
        }
    }
    specs
}

fn suite_uses_node(suite: &Suite, node: &str) -> bool {
    suite
        .tests
        .iter()
        .flat_map(|t| &t.steps)
        .any(|s| s.node() == Some(node))
}

fn serial(specs: &mut Vec<LockSpec>, port: &str, category: &str, spec: LockSpec) {
    if let Some(canon) = canonical_serial_key(port) {
        let mut extra = spec.clone();
        extra.key = canon;
        extra.category = category.to_string();
        specs.push(extra);
    }
    specs.push(spec);
}

fn transport(bench: &Bench, node: &str, name: &str, specs: &mut Vec<LockSpec>) {
    let Some(t) = bench.nodes.get(node).and_then(|n| n.transports.get(name)) else {
        return;
    };
    let with = |s: LockSpec| {
        s.with_detail("node", node.to_string())
            .with_detail("transport", name.to_string())
            .with_detail("backend", t.backend())
    };
    match t {
        Transport::Uart { port, .. } | Transport::ModbusRtu { port, .. } => {
            let spec = with(LockSpec::new(
                format!("serial:{port}"),
                port.clone(),
                "serial_transport",
            ));
            serial(specs, port, "serial_transport", spec);
        }
        Transport::ModbusTcp { host, port, .. } => specs.push(with(LockSpec::new(
            format!("tcp:{host}:{port}"),
            format!("{host}:{port}"),
            "network_transport",
        ))),
        Transport::Can { interface, .. } => specs.push(with(LockSpec::new(
            format!("can:{interface}"),
            interface.clone(),
            "can_transport",
        ))),
        Transport::I2c { bus, .. } => {
            specs.push(with(LockSpec::new(
                format!("transport:{node}:{name}"),
                format!("{node}.{name}"),
                "transport",
            )));
            specs.push(with(LockSpec::new(
                format!("i2c-bus:{bus}"),
                format!("/dev/i2c-{bus}"),
                "transport",
            )));
        }
        Transport::Spi { bus, device, .. } => {
            specs.push(with(LockSpec::new(
                format!("transport:{node}:{name}"),
                format!("{node}.{name}"),
                "transport",
            )));
            specs.push(with(LockSpec::new(
                format!("spi:{bus}.{device}"),
                format!("/dev/spidev{bus}.{device}"),
                "transport",
            )));
        }
    }
}

fn flash(bench: &Bench, node: &str, specs: &mut Vec<LockSpec>) {
    let Some(n) = bench.nodes.get(node) else {
        return;
    };
    let Some(f) = &n.flash else { return };
    let base = |key: String, display: String, cat: &str| {
        LockSpec::new(key, display, cat)
            .with_detail("node", node.to_string())
            .with_detail("backend", f.backend.name())
    };
    match &f.backend {
        FlashBackend::Esptool { port, .. } => {
            let spec = base(format!("serial:{port}"), port.clone(), "flash_serial");
            serial(specs, port, "flash_serial", spec);
        }
        FlashBackend::Cubeprog { port, serial } => {
            let sn = serial.clone().unwrap_or_else(|| "default".into());
            specs.push(base(
                format!("debugger:cubeprog:{port}:{sn}"),
                format!("STM32CubeProgrammer {port} {sn}"),
                "debug_probe",
            ));
        }
        FlashBackend::Jlink { device, serial, .. } => {
            let sn = serial.clone().unwrap_or_else(|| "default".into());
            specs.push(base(
                format!("debugger:jlink:{sn}:{device}"),
                format!("J-Link {sn}"),
                "debug_probe",
            ));
        }
        FlashBackend::Openocd {
            interface_cfg,
            target_cfg,
            probe_serial,
            probe_serial_cmd,
            ..
        } => {
            let spec = match probe_serial_cmd.as_ref().or(probe_serial.as_ref()) {
                Some(v) => base(
                    format!("debugger:openocd:{v}"),
                    format!("OpenOCD probe {v}"),
                    "debug_probe",
                ),
                None => base(
                    format!("debugger:openocd:{interface_cfg}:{target_cfg}"),
                    format!("OpenOCD {interface_cfg} {target_cfg}"),
                    "debug_probe",
                ),
            };
            specs.push(spec);
        }
    }
}

fn resource(bench: &Bench, name: &str, specs: &mut Vec<LockSpec>) {
    let Some(r) = bench.resources.get(name) else {
        return;
    };
    let with = |s: LockSpec| {
        s.with_detail("resource", name.to_string())
            .with_detail("driver_type", r.driver.type_name())
    };
    match &r.driver {
        ResourceDriver::GpioPower { chip, outlets, .. } => {
            for (outlet, line) in outlets {
                specs.push(
                    with(LockSpec::new(
                        format!("gpio:local:{chip}:{line}"),
                        format!("{chip} line {line}"),
                        "power_gpio_line",
                    ))
                    .with_detail("outlet", outlet.clone()),
                );
            }
        }
        ResourceDriver::UsbRelaySerial { port, .. } => {
            let spec = with(LockSpec::new(
                format!("serial:{port}"),
                port.clone(),
                "power_serial_relay",
            ));
            serial(specs, port, "power_serial_relay", spec);
        }
        ResourceDriver::HttpRelay {
            on_url, off_url, ..
        } => specs.push(with(LockSpec::new(
            format!("http_relay:{on_url}:{off_url}"),
            format!("HTTP relay {name}"),
            "power_http_relay",
        ))),
        ResourceDriver::HttpMeasurement { url, .. } => specs.push(with(LockSpec::new(
            format!("http_measurement:{url}"),
            format!("HTTP measurement {name}"),
            "measurement_http",
        ))),
        ResourceDriver::I2cPowerMonitor { bus, address, .. } => specs.push(with(LockSpec::new(
            format!("i2c:{bus}:{address}"),
            format!("/dev/i2c-{bus} 0x{address:02x}"),
            "measurement_i2c",
        ))),
        ResourceDriver::SerialMeasurement { port, .. } => {
            let spec = with(LockSpec::new(
                format!("serial:{port}"),
                port.clone(),
                "measurement_serial",
            ));
            serial(specs, port, "measurement_serial", spec);
        }
        ResourceDriver::ScriptMeasurement { command, .. } => specs.push(with(LockSpec::new(
            format!("script_measurement:{command}"),
            format!("script {name}"),
            "measurement_script",
        ))),
        d if d.is_measurement() => specs.push(with(LockSpec::new(
            format!("measurement:{name}"),
            format!("measurement {name}"),
            "measurement_resource",
        ))),
        _ => specs.push(with(LockSpec::new(
            format!("power:{name}"),
            format!("power {name}"),
            "power_resource",
        ))),
    }
}
