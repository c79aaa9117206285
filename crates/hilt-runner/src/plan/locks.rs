//! Lock specs from what a suite uses (self-test-and-locks spec §3.2). Resource and GPIO
//! drivers own their specs; transports, flash probes and external targets are here.
//! hilt also locks the transports of fuzz, I2C and SPI steps, and the canonical path of
//! serial ports reached through a symlink, closing BenchCI's gaps.

use hilt_hw::drivers::{gpio_driver, resource_driver};
use hilt_hw::locks::{LockSpec, canonical_serial_key};
use hilt_model::bench::{Bench, FlashBackend, Transport};

use super::uses::Uses;

pub fn specs(bench: &Bench, uses: &Uses) -> Vec<LockSpec> {
    let mut specs = Vec::new();
    for (node, name) in &uses.transports {
        transport(bench, node, name, &mut specs);
    }
    for node in &uses.flash_nodes {
        flash(bench, node, &mut specs);
    }
    for node in &uses.gpio_nodes {
        for (name, line) in &bench.nodes[node].gpio {
            if let Some(d) = gpio_driver(line.backend.name()) {
                specs.push(d.lock_spec(node, name, line));
            }
        }
    }
    for name in &uses.resources {
        if let Some(r) = bench.resources.get(name)
            && let Some(d) = resource_driver(r.driver.type_name())
        {
            specs.extend(d.lock_specs(name, &r.driver));
        }
    }
    for name in &uses.hosts {
        if let Some(h) = bench.hosts.get(name) {
            specs.push(hilt_hw::ssh::lock_spec(name, h));
        }
    }
    for target in &uses.external_targets {
        if let Some(t) = bench.safety.external.targets.get(target) {
            let key = t
                .lock_key
                .clone()
                .unwrap_or_else(|| format!("external:{target}"));
            specs.push(
                LockSpec::new(key, format!("external target {target}"), "external_target")
                    .with_detail("target", target.clone()),
            );
        }
    }
    specs
}

fn serial(specs: &mut Vec<LockSpec>, port: &str, spec: LockSpec) {
    if let Some(canon) = canonical_serial_key(port) {
        let mut extra = spec.clone();
        extra.key = canon;
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
        Transport::Uart { port, .. }
        | Transport::ModbusRtu { port, .. }
        | Transport::Slcan { port, .. } => {
            let spec = with(LockSpec::new(
                format!("serial:{port}"),
                port.clone(),
                "serial_transport",
            ));
            serial(specs, port, spec);
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
            specs.push(with(node_scoped(node, name)));
            specs.push(with(LockSpec::new(
                format!("i2c-bus:{bus}"),
                format!("/dev/i2c-{bus}"),
                "transport",
            )));
        }
        Transport::Spi { bus, device, .. } => {
            specs.push(with(node_scoped(node, name)));
            specs.push(with(LockSpec::new(
                format!("spi:{bus}.{device}"),
                format!("/dev/spidev{bus}.{device}"),
                "transport",
            )));
        }
    }
}

/// BenchCI's key for transports without a device identity.
fn node_scoped(node: &str, name: &str) -> LockSpec {
    LockSpec::new(
        format!("transport:{node}:{name}"),
        format!("{node}.{name}"),
        "transport",
    )
}

fn flash(bench: &Bench, node: &str, specs: &mut Vec<LockSpec>) {
    let Some(f) = bench.nodes.get(node).and_then(|n| n.flash.as_ref()) else {
        return;
    };
    let base = |key: String, display: String, cat: &str| {
        LockSpec::new(key, display, cat)
            .with_detail("node", node.to_string())
            .with_detail("backend", f.backend.name())
    };
    match &f.backend {
        // The board resource (a `qemu` driver) carries the lock.
        FlashBackend::Qemu { .. } => {}
        FlashBackend::Esptool { port, .. } => {
            let spec = base(format!("serial:{port}"), port.clone(), "flash_serial");
            serial(specs, port, spec);
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
