//! Checks on a bench file alone.

use crate::bench::{Bench, Direction, FlashBackend, ResetMethod, ResourceDriver, Transport};
use crate::diag::Diags;

use super::{positive, range};

const POWER_KINDS: &[&str] = &[
    "power_controller",
    "relay_controller",
    "power_supply",
    "emulator",
];

pub fn bench(d: &mut Diags, b: &Bench) {
    if b.bench.name.trim().is_empty() {
        d.error("bench.name", "must not be empty");
    }
    if b.nodes.is_empty() && b.hosts.is_empty() {
        d.error("nodes", "a bench needs at least one node or host");
    }
    super::hosts::hosts(d, b);
    super::publish::publish(d, &b.publish);
    if let Some(defaults) = &b.defaults {
        if let Some(n) = &defaults.node
            && !b.nodes.contains_key(n)
        {
            d.error(
                "defaults.node",
                format!("node `{n}` is not defined under `nodes`"),
            );
        }
        if let Some(t) = &defaults.timeouts
            && let Some(w) = t.within_ms
        {
            positive(d, "defaults.timeouts.within_ms", w);
        }
    }
    for (name, node) in &b.nodes {
        let p = format!("nodes.{name}");
        if node.flash.is_none() && node.transports.is_empty() && node.gpio.is_empty() {
            d.error(
                &p,
                "a node needs at least one of `flash`, `transports`, `gpio`",
            );
        }
        for (t, tr) in &node.transports {
            transport(d, &format!("{p}.transports.{t}"), tr);
            if let Some(board) = tr.qemu_board() {
                qemu_board(d, b, &format!("{p}.transports.{t}.port"), board);
            }
        }
        if let Some(FlashBackend::Qemu { board }) = node.flash.as_ref().map(|f| &f.backend) {
            qemu_board(d, b, &format!("{p}.flash.board"), board);
        }
        for (l, line) in &node.gpio {
            let lp = format!("{p}.gpio.{l}");
            if line.direction == Direction::Output {
                if line.bias.is_some() {
                    d.warn(
                        &format!("{lp}.bias"),
                        "bias has no effect on an output line",
                    );
                }
                if line.edge.is_some() {
                    d.warn(
                        &format!("{lp}.edge"),
                        "edge has no effect on an output line",
                    );
                }
            }
            if let crate::bench::GpioBackend::RemoteGpio {
                port, token_env, ..
            } = &line.backend
            {
                range(d, &format!("{lp}.port"), *port as u64, 1, 65535);
                if token_env.trim().is_empty() {
                    d.warn(&format!("{lp}.token_env"), "token_env is empty");
                }
            }
        }
        if let Some(flash) = &node.flash {
            if let Some(a) = &flash.artifact
                && a.to_ascii_lowercase().ends_with(".bin")
                && flash.address.is_none()
            {
                d.error(
                    &format!("{p}.flash.address"),
                    "a `.bin` artifact needs `address`",
                );
            }
            if node.reset.method != ResetMethod::None
                && node.reset.method != ResetMethod::Gpio
                && node.reset.method.as_str() != flash.backend.name()
            {
                d.warn(
                    &format!("{p}.reset.method"),
                    format!(
                        "reset method `{}` differs from flash backend `{}`",
                        node.reset.method.as_str(),
                        flash.backend.name()
                    ),
                );
            }
            if let FlashBackend::Jlink { interface, .. } = &flash.backend
                && interface != "SWD"
                && interface != "JTAG"
            {
                d.error(&format!("{p}.flash.interface"), "must be `SWD` or `JTAG`");
            }
        }
        match node.reset.method {
            ResetMethod::None => {}
            ResetMethod::Gpio => match &node.reset.line {
                None => d.error(&format!("{p}.reset"), "method `gpio` needs `line` (an output line of this node)"),
                Some(l) => match node.gpio.get(l) {
                    Some(line) if line.direction == Direction::Output => {}
                    Some(_) => d.error(&format!("{p}.reset.line"), format!("line `{l}` must be an output")),
                    None => d.error(&format!("{p}.reset.line"), format!("line `{l}` is not defined under `gpio`")),
                },
            },
            m if node.flash.is_none() => d.error(
                &format!("{p}.reset.method"),
                format!("reset method `{}` reuses the node's `flash` settings, but the node has no `flash` block", m.as_str()),
            ),
            _ => {}
        }
        if let Some(dut) = &node.dut
            && let Some(si) = &dut.self_identification
        {
            let sp = format!("{p}.dut.self_identification");
            match node.transports.get(&si.transport) {
                Some(Transport::Uart { .. }) => {}
                Some(_) => d.error(
                    &format!("{sp}.transport"),
                    format!("transport `{}` must be a `uart` transport", si.transport),
                ),
                None => d.error(
                    &format!("{sp}.transport"),
                    format!(
                        "transport `{}` is not defined on node `{name}`",
                        si.transport
                    ),
                ),
            }
            range(
                d,
                &format!("{sp}.query"),
                si.query.chars().count() as u64,
                1,
                1024,
            );
            range(d, &format!("{sp}.within_ms"), si.within_ms, 1, 300_000);
        }
    }
    for (name, r) in &b.resources {
        resource(d, &format!("resources.{name}"), r);
    }
    safety(d, b);
}

fn transport(d: &mut Diags, p: &str, t: &Transport) {
    match t {
        Transport::Uart {
            bytesize, stopbits, ..
        } => {
            range(d, &format!("{p}.bytesize"), *bytesize as u64, 5, 8);
            if ![1.0, 1.5, 2.0].contains(stopbits) {
                d.error(&format!("{p}.stopbits"), "must be 1, 1.5 or 2");
            }
        }
        Transport::ModbusRtu { default_slave, .. } => range(
            d,
            &format!("{p}.default_slave"),
            *default_slave as u64,
            1,
            247,
        ),
        Transport::ModbusTcp {
            port,
            default_slave,
            ..
        } => {
            range(d, &format!("{p}.port"), *port as u64, 1, 65535);
            range(
                d,
                &format!("{p}.default_slave"),
                *default_slave as u64,
                1,
                247,
            );
        }
        Transport::Can {
            bitrate,
            fd,
            data_bitrate,
            filters,
            ..
        }
        | Transport::Slcan {
            bitrate,
            fd,
            data_bitrate,
            filters,
            ..
        } => {
            positive(d, &format!("{p}.bitrate"), *bitrate);
            if let Some(db) = data_bitrate {
                if !fd {
                    d.error(&format!("{p}.data_bitrate"), "only allowed with `fd: true`");
                }
                positive(d, &format!("{p}.data_bitrate"), *db);
            }
            for (i, f) in filters.iter().enumerate() {
                let max = if f.extended { 0x1FFF_FFFF } else { 0x7FF };
                range(d, &format!("{p}.filters[{i}].id"), f.id as u64, 0, max);
                range(d, &format!("{p}.filters[{i}].mask"), f.mask as u64, 0, max);
            }
        }
        Transport::I2c { timeout_ms, .. } => positive(d, &format!("{p}.timeout_ms"), *timeout_ms),
        Transport::Spi {
            mode,
            bits_per_word,
            ..
        } => {
            range(d, &format!("{p}.mode"), *mode as u64, 0, 3);
            range(
                d,
                &format!("{p}.bits_per_word"),
                *bits_per_word as u64,
                4,
                32,
            );
        }
    }
}

/// `board` must name a `qemu` resource.
fn qemu_board(d: &mut Diags, b: &Bench, field: &str, board: &str) {
    match b.resources.get(board) {
        Some(r) if matches!(r.driver, ResourceDriver::Qemu { .. }) => {}
        Some(r) => d.error(
            field,
            format!(
                "resource `{board}` has driver `{}`; an emulated board needs driver `qemu`",
                r.driver.type_name()
            ),
        ),
        None => d.error(
            field,
            format!("resource `{board}` is not defined under `resources` (a `qemu` board)"),
        ),
    }
}

fn resource(d: &mut Diags, p: &str, r: &crate::bench::Resource) {
    if r.driver.is_power() && !POWER_KINDS.contains(&r.kind.as_str()) && r.kind != "measurement" {
        d.warn(
            &format!("{p}.kind"),
            format!(
                "kind `{}` with power driver `{}`; expected one of {}",
                r.kind,
                r.driver.type_name(),
                POWER_KINDS.join(", ")
            ),
        );
    }
    let dp = format!("{p}.driver");
    match &r.driver {
        ResourceDriver::GpioPower { outlets, .. } => {
            if outlets.is_empty() {
                d.error(&format!("{dp}.outlets"), "needs at least one outlet");
            }
            for (o, line) in outlets {
                range(
                    d,
                    &format!("{dp}.outlets.{o}"),
                    *line as u64,
                    1,
                    u32::MAX as u64,
                );
            }
        }
        ResourceDriver::HttpRelay {
            outlets, method, ..
        } => {
            if outlets.is_empty() {
                d.error(&format!("{dp}.outlets"), "needs at least one outlet");
            }
            if !["GET", "POST", "PUT"].contains(&method.to_ascii_uppercase().as_str()) {
                d.error(&format!("{dp}.method"), "must be GET, POST or PUT");
            }
        }
        ResourceDriver::UsbRelaySerial {
            outlets,
            on_commands,
            off_commands,
            ..
        } => {
            for (o, ch) in outlets {
                range(
                    d,
                    &format!("{dp}.outlets.{o}"),
                    *ch as u64,
                    1,
                    u32::MAX as u64,
                );
                for (cmds, key) in [(on_commands, "on_commands"), (off_commands, "off_commands")] {
                    if !cmds.contains_key(&ch.to_string()) {
                        d.error(
                            &format!("{dp}.{key}"),
                            format!("no command for channel {ch} (outlet `{o}`)"),
                        );
                    }
                }
            }
        }
        ResourceDriver::I2cPowerMonitor {
            address, quantity, ..
        } => {
            range(d, &format!("{dp}.address"), *address as u64, 0x03, 0x77);
            if !["voltage", "current", "power"].contains(&quantity.as_str()) {
                d.error(
                    &format!("{dp}.quantity"),
                    "must be voltage, current or power",
                );
            }
        }
        ResourceDriver::ScpiPowerSupplyMeasurement {
            quantity, channel, ..
        } => {
            if !["voltage", "current"].contains(&quantity.as_str()) {
                d.error(&format!("{dp}.quantity"), "must be current or voltage");
            }
            if let Some(c) = channel {
                range(d, &format!("{dp}.channel"), *c as u64, 1, u32::MAX as u64);
            }
        }
        ResourceDriver::SerialMeasurement {
            response_regex: Some(re),
            ..
        } => {
            if let Err(e) = regex::Regex::new(re) {
                d.error(
                    &format!("{dp}.response_regex"),
                    format!("invalid regex: {e}"),
                );
            }
        }
        _ => {}
    }
}

fn safety(d: &mut Diags, b: &Bench) {
    let fi = &b.safety.fault_injection;
    for (i, rule) in fi.power.iter().enumerate() {
        let p = format!("safety.fault_injection.power[{i}]");
        range(d, &format!("{p}.max_off_ms"), rule.max_off_ms, 1, 60_000);
        match b.resources.get(&rule.resource) {
            Some(r) if r.driver.is_power() => {
                if !r.driver.outlet_names().contains(&rule.outlet) {
                    d.error(
                        &format!("{p}.outlet"),
                        format!(
                            "resource `{}` has no outlet `{}`",
                            rule.resource, rule.outlet
                        ),
                    );
                }
            }
            Some(_) => d.error(
                &format!("{p}.resource"),
                format!("resource `{}` is not a power driver", rule.resource),
            ),
            None => d.error(
                &format!("{p}.resource"),
                format!("resource `{}` is not defined", rule.resource),
            ),
        }
    }
    for (i, rule) in fi.gpio.iter().enumerate() {
        let p = format!("safety.fault_injection.gpio[{i}]");
        range(
            d,
            &format!("{p}.max_duration_ms"),
            rule.max_duration_ms,
            1,
            60_000,
        );
        match b.nodes.get(&rule.node).map(|n| n.gpio.get(&rule.line)) {
            None => d.error(
                &format!("{p}.node"),
                format!("node `{}` is not defined", rule.node),
            ),
            Some(None) => d.error(
                &format!("{p}.line"),
                format!(
                    "line `{}` is not defined on node `{}`",
                    rule.line, rule.node
                ),
            ),
            Some(Some(l)) if l.direction != Direction::Output => d.error(
                &format!("{p}.line"),
                format!("line `{}` must be an output", rule.line),
            ),
            _ => {}
        }
    }
    for (i, rule) in fi.uart.iter().enumerate() {
        let p = format!("safety.fault_injection.uart[{i}]");
        range(
            d,
            &format!("{p}.max_total_bytes"),
            rule.max_total_bytes,
            1,
            4096,
        );
        match b
            .nodes
            .get(&rule.node)
            .map(|n| n.transports.get(&rule.transport))
        {
            None => d.error(
                &format!("{p}.node"),
                format!("node `{}` is not defined", rule.node),
            ),
            Some(Some(Transport::Uart { .. })) => {}
            Some(Some(_)) => d.error(&format!("{p}.transport"), "must name a `uart` transport"),
            Some(None) => d.error(
                &format!("{p}.transport"),
                format!(
                    "transport `{}` is not defined on node `{}`",
                    rule.transport, rule.node
                ),
            ),
        }
    }
    for (name, t) in &b.safety.external.targets {
        let p = format!("safety.external.targets.{name}");
        if !t.work_root.starts_with('/') {
            d.error(&format!("{p}.work_root"), "must be an absolute path");
        }
        if let Some(o) = &t.output_root
            && !o.starts_with('/')
        {
            d.error(&format!("{p}.output_root"), "must be an absolute path");
        }
        if t.argv_prefix.is_empty() && t.base_url.is_none() {
            d.error(&p, "a target needs `argv_prefix` or `base_url` (or both)");
        }
        if t.max_poll_interval_ms < 500 {
            d.error(&format!("{p}.max_poll_interval_ms"), "must be at least 500");
        }
        for (i, pat) in t.arg_patterns.iter().enumerate() {
            if let Err(e) = regex::Regex::new(&format!("^(?:{pat})$")) {
                d.error(
                    &format!("{p}.arg_patterns[{i}]"),
                    format!("invalid regex: {e}"),
                );
            }
        }
    }
}
