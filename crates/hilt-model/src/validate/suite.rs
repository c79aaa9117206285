//! Checks on a suite file alone.

use crate::diag::Diags;
use crate::suite::{Assertion, CanFrameRule, FuzzCommon, Recovery, Step, Suite};
use crate::yaml::{push_index, push_key};

use super::{parse_hex_bytes, positive, range};

pub fn suite(d: &mut Diags, s: &Suite) {
    if s.suite.name.trim().is_empty() {
        d.error("suite.name", "must not be empty");
    }
    super::publish::publish(d, &s.publish);
    // One buffer for every step's path (a suite may have tens of thousands of steps).
    let mut p = String::new();
    for (ti, test) in s.tests.iter().enumerate() {
        p.clear();
        p.push_str("tests");
        push_index(&mut p, ti);
        if test.name.trim().is_empty() {
            d.error(&format!("{p}.name"), "must not be empty");
        }
        p.push_str(".steps");
        let tp = p.len();
        for (si, step) in test.steps.iter().enumerate() {
            p.truncate(tp);
            push_index(&mut p, si);
            push_key(&mut p, step.type_name());
            check_step(d, &p, step);
        }
    }
    super::bundles::bundles(d, s);
}

fn within(d: &mut Diags, p: &str, w: Option<u64>) {
    if w == Some(0) {
        positive(d, &format!("{p}.within_ms"), 0);
    }
}

fn hex(d: &mut Diags, p: &str, s: &str, allow_empty: bool) -> usize {
    match parse_hex_bytes(s) {
        Ok(b) if b.is_empty() && !allow_empty => {
            d.error(p, "needs at least one byte");
            0
        }
        Ok(b) => b.len(),
        Err(e) => {
            d.error(p, e);
            0
        }
    }
}

fn slave(d: &mut Diags, p: &str, s: Option<u32>) {
    if let Some(s) = s {
        range(d, &format!("{p}.slave"), s as u64, 1, 247);
    }
}

// Protocol limits of one Modbus request (application protocol §6).
const MAX_READ_REGISTERS: u32 = 125;
const MAX_READ_BITS: u32 = 2000;
const MAX_WRITE_REGISTERS: u32 = 123;
const MAX_WRITE_BITS: u32 = 1968;

/// `address` and `count` of one Modbus request: addresses are 16-bit, and one request
/// reads or writes at most `max` items. (hilt checks before the run what BenchCI
/// leaves to the device or to pymodbus.)
fn span(d: &mut Diags, p: &str, address: u32, count: u32, max: u32) {
    span_of(d, p, "count", address, count, max)
}

fn span_of(d: &mut Diags, p: &str, what: &str, address: u32, count: u32, max: u32) {
    if address > 0xFFFF {
        d.error_help(
            &format!("{p}.address"),
            format!("{address} is out of range: Modbus addresses are 0..=65535"),
            "use the protocol address (0-based), not a 40001-style register number",
        );
        return;
    }
    if count == 0 || count > max {
        d.error(
            &format!("{p}.{what}"),
            format!("one request carries 1..={max} items, not {count}"),
        );
    } else if address + count > 0x1_0000 {
        d.error(
            &format!("{p}.{what}"),
            format!("{count} items from address {address} run past the last address (65535)"),
        );
    }
}

/// A 16-bit register value.
fn register(d: &mut Diags, p: &str, v: i64) {
    if !(0..=0xFFFF).contains(&v) {
        d.error_help(
            p,
            format!("{v} does not fit a 16-bit register (0..=65535)"),
            "write negative numbers as their two's complement (-1 is 65535)",
        );
    }
}

/// A read can only pass when `expect` has one value per item read.
fn expect_len(d: &mut Diags, p: &str, n: usize, count: u32) {
    if n > 0 && n != count as usize {
        d.error(
            &format!("{p}.expect"),
            format!("has {n} values but `count` is {count}: the step could never pass"),
        );
    }
}

fn check_step(d: &mut Diags, p: &str, step: &Step) {
    match step {
        Step::SshExec(s) => match (&s.argv, &s.script) {
            (Some(_), Some(_)) | (None, None) => {
                d.error(p, "give exactly one of `argv` and `script`")
            }
            (Some(a), None) if a.is_empty() => {
                d.error(&format!("{p}.argv"), "argv must name a program")
            }
            _ if s.timeout_ms == 0 => d.error(&format!("{p}.timeout_ms"), "must be greater than 0"),
            _ => {}
        },
        Step::Download(s) => {
            let dest = std::path::Path::new(&s.dest);
            if s.dest.is_empty()
                || dest.is_absolute()
                || dest
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                d.error_help(
                    &format!("{p}.dest"),
                    format!("`{}` must be a relative path without `..`", s.dest),
                    "downloads land under the run's artifacts/remote/<host>/ directory",
                );
            }
        }
        Step::Upload(_) => {}
        Step::SendUart(s) => {
            if s.data.is_empty() {
                d.error(&format!("{p}.data"), "must not be empty");
            }
        }
        Step::ExpectUart(s) => {
            match (&s.contains, &s.regex) {
                (Some(_), Some(_)) | (None, None) => {
                    d.error(p, "needs exactly one of `contains` or `regex`")
                }
                // The pattern is compiled once, by the runner's plan, which reports a bad
                // one at this same place.
                (None, Some(_)) | (Some(_), None) => {}
            }
            within(d, p, s.within_ms);
        }
        Step::GpioExpect(s) => within(d, p, s.within_ms),
        Step::GpioWaitEdge(s) => within(d, p, s.within_ms),
        Step::Measure(m) => assertion(d, p, &m.assertion),
        Step::AssertMetric(m) => {
            if m.name.trim().is_empty() {
                d.error(&format!("{p}.name"), "must not be empty");
            }
            assertion(d, p, &m.assertion)
        }
        Step::RunExternal(r) => {
            if let Some(cwd) = &r.cwd
                && (cwd.starts_with('/') || cwd.split('/').any(|c| c == ".."))
            {
                d.error(&format!("{p}.cwd"), "must be a relative path without `..`");
            }
            for (field, v) in [("source", &r.source), ("framework", &r.framework)] {
                if v.as_ref().is_some_and(|v| v.chars().count() > 64) {
                    d.error(&format!("{p}.{field}"), "at most 64 characters");
                }
            }
            for (field, v) in [("junit", &r.junit), ("ctrf", &r.ctrf)] {
                if let Some(v) = v
                    && (v.starts_with('/') || v.split('/').any(|c| c == ".."))
                {
                    d.error(
                        &format!("{p}.{field}"),
                        "must be a relative path without `..`",
                    );
                }
            }
            positive(d, &format!("{p}.timeout_ms"), r.timeout_ms);
            if let Some(h) = &r.http {
                if !r.args.is_empty() {
                    d.error(
                        &format!("{p}.args"),
                        "must be empty in HTTP mode (`http` is set)",
                    );
                }
                if let Some(poll) = &h.poll
                    && poll.interval_ms < 500
                {
                    d.error(
                        &format!("{p}.http.poll.interval_ms"),
                        "must be at least 500",
                    );
                }
            }
        }
        Step::ModbusReadHoldingRegisters(m) | Step::ModbusReadInputRegisters(m) => {
            slave(d, p, m.slave);
            span(d, p, m.address, m.count, MAX_READ_REGISTERS);
            if m.expect.is_empty() {
                d.error(&format!("{p}.expect"), "needs at least one value");
            }
            for (i, v) in m.expect.iter().enumerate() {
                register(d, &format!("{p}.expect[{i}]"), *v);
            }
            expect_len(d, p, m.expect.len(), m.count);
        }
        Step::ModbusReadCoils(m) | Step::ModbusReadDiscreteInputs(m) => {
            slave(d, p, m.slave);
            span(d, p, m.address, m.count, MAX_READ_BITS);
            if m.expect.is_empty() {
                d.error(&format!("{p}.expect"), "needs at least one value");
            }
            expect_len(d, p, m.expect.len(), m.count);
        }
        Step::ModbusWriteSingleRegister(m) => {
            slave(d, p, m.slave);
            span(d, p, m.address, 1, 1);
            register(d, &format!("{p}.value"), m.value);
        }
        Step::ModbusWriteSingleCoil(m) => {
            slave(d, p, m.slave);
            span(d, p, m.address, 1, 1);
        }
        Step::ModbusWriteMultipleRegisters(m) => {
            slave(d, p, m.slave);
            if m.values.is_empty() {
                d.error(&format!("{p}.values"), "needs at least one value");
            } else {
                let n = m.values.len().min(u32::MAX as usize) as u32;
                span_of(d, p, "values", m.address, n, MAX_WRITE_REGISTERS);
            }
            for (i, v) in m.values.iter().enumerate() {
                register(d, &format!("{p}.values[{i}]"), *v);
            }
        }
        Step::ModbusWriteMultipleCoils(m) => {
            slave(d, p, m.slave);
            if m.values.is_empty() {
                d.error(&format!("{p}.values"), "needs at least one value");
            } else {
                let n = m.values.len().min(u32::MAX as usize) as u32;
                span_of(d, p, "values", m.address, n, MAX_WRITE_BITS);
            }
        }
        Step::I2cScan(s) => {
            range(
                d,
                &format!("{p}.start_address"),
                s.start_address as u64,
                0x03,
                0x77,
            );
            range(
                d,
                &format!("{p}.end_address"),
                s.end_address as u64,
                0x03,
                0x77,
            );
            if s.start_address > s.end_address {
                d.error(p, "start_address must not exceed end_address");
            }
        }
        Step::I2cWriteRegister(w) => {
            range(d, &format!("{p}.address"), w.address as u64, 0x03, 0x77);
            range(d, &format!("{p}.register"), w.register as u64, 0, 0xFFFF);
            match &w.value {
                crate::suite::ByteOrBytes::One(v) => {
                    range(d, &format!("{p}.value"), *v as u64, 0, 0xFF)
                }
                crate::suite::ByteOrBytes::Many(v) if v.is_empty() || v.len() > 256 => {
                    d.error(&format!("{p}.value"), "needs 1..256 bytes")
                }
                crate::suite::ByteOrBytes::Many(v) => {
                    for (i, b) in v.iter().enumerate() {
                        range(d, &format!("{p}.value[{i}]"), *b as u64, 0, 0xFF);
                    }
                }
            }
        }
        Step::I2cReadRegister(r) | Step::I2cExpect(r) => {
            range(d, &format!("{p}.address"), r.address as u64, 0x03, 0x77);
            range(d, &format!("{p}.register"), r.register as u64, 0, 0xFFFF);
            range(d, &format!("{p}.length"), r.length as u64, 1, 32);
            match &r.expect {
                Some(e) if e.len() != r.length as usize => d.error(
                    &format!("{p}.expect"),
                    format!("has {} bytes but length is {}", e.len(), r.length),
                ),
                None if matches!(step, Step::I2cExpect(_)) => d.error(p, "`expect` is required"),
                _ => {}
            }
        }
        Step::SpiTransfer(s) | Step::SpiExpect(s) => {
            let n = hex(d, &format!("{p}.data"), &s.data, false);
            match &s.expect {
                Some(e) => {
                    let m = hex(d, &format!("{p}.expect"), e, false);
                    if m != n && m > 0 && n > 0 {
                        d.error(
                            &format!("{p}.expect"),
                            format!("has {m} bytes but data has {n}"),
                        );
                    }
                }
                None if matches!(step, Step::SpiExpect(_)) => d.error(p, "`expect` is required"),
                None => {}
            }
        }
        Step::SendCan(s) => {
            can_frame(
                d,
                &format!("{p}.frame"),
                s.frame.id,
                s.frame.extended,
                s.frame.fd,
                &s.frame.data,
            );
            if !s.frame.fd && (s.frame.bitrate_switch || s.frame.error_state_indicator) {
                d.error(
                    &format!("{p}.frame"),
                    "bitrate_switch / error_state_indicator need `fd: true`",
                );
            }
        }
        Step::ExpectCan(s) => {
            within(d, p, s.within_ms);
            can_rule(d, &format!("{p}.frame"), &s.frame);
        }
        Step::FuzzUart(f) => {
            fuzz(d, p, &f.common);
            range(d, &format!("{p}.max_length"), f.max_length, 0, 4096);
            if f.min_length > f.max_length {
                d.error(p, "min_length must not exceed max_length");
            }
            if f.mode != "ascii" && f.mode != "hex" {
                d.error(&format!("{p}.mode"), "must be `ascii` or `hex`");
            }
            for (field, re) in [
                ("fail_regex", &f.fail_regex),
                ("heartbeat_expect_regex", &f.heartbeat_expect_regex),
            ] {
                if let Some(Err(e)) = re.as_deref().map(regex::bytes::Regex::new) {
                    d.error(&format!("{p}.{field}"), format!("not a valid regex: {e}"));
                }
            }
            let hb = f.heartbeat_command.is_some();
            let n = f.heartbeat_expect_contains.is_some() as u8
                + f.heartbeat_expect_regex.is_some() as u8;
            if (hb && n != 1) || (!hb && n > 0) {
                d.error(p, "heartbeat_command needs exactly one of heartbeat_expect_contains / heartbeat_expect_regex, and vice versa");
            }
        }
        Step::FuzzCan(f) => {
            fuzz(d, p, &f.common);
            let max = if f.fd { 64 } else { 8 };
            range(
                d,
                &format!("{p}.max_data_length"),
                f.max_data_length as u64,
                0,
                max,
            );
            if f.id_min > f.id_max {
                d.error(p, "id_min must not exceed id_max");
            }
        }
        Step::FuzzModbus(f) => {
            fuzz(d, p, &f.common);
            slave(d, p, f.slave);
            range(d, &format!("{p}.count_max"), f.count_max as u64, 1, 125);
            range(d, &format!("{p}.count_min"), f.count_min as u64, 1, 125);
            range(
                d,
                &format!("{p}.address_max"),
                f.address_max as u64,
                0,
                0xFFFF,
            );
            range(d, &format!("{p}.value_max"), f.value_max as u64, 0, 0xFFFF);
            for (lo, hi, a, b) in [
                ("address_min", "address_max", f.address_min, f.address_max),
                ("count_min", "count_max", f.count_min, f.count_max),
                ("value_min", "value_max", f.value_min, f.value_max),
            ] {
                if a > b {
                    d.error(&format!("{p}.{lo}"), format!("{lo} must not exceed {hi}"));
                }
            }
            if f.operations.is_empty() {
                d.error(&format!("{p}.operations"), "needs at least one operation");
            }
            for (i, op) in f.operations.iter().enumerate() {
                if ![
                    "read_holding_registers",
                    "write_single_register",
                    "read_coils",
                    "write_single_coil",
                ]
                .contains(&op.as_str())
                {
                    d.error(
                        &format!("{p}.operations[{i}]"),
                        format!("unknown operation `{op}`"),
                    );
                }
            }
        }
        Step::FaultInjectPowerGlitch(f) => {
            range(d, &format!("{p}.off_ms"), f.off_ms, 1, 60_000);
            recovery(d, &format!("{p}.recovery"), &f.recovery);
        }
        Step::FaultInjectGpioGlitch(f) => {
            range(d, &format!("{p}.duration_ms"), f.duration_ms, 1, 60_000);
            recovery(d, &format!("{p}.recovery"), &f.recovery);
        }
        Step::FaultInjectUartNoise(f) => {
            let n = hex(d, &format!("{p}.data"), &f.data, false) as u64;
            range(d, &format!("{p}.repeat"), f.repeat, 1, 4096);
            if n * f.repeat > 4096 {
                d.error(
                    p,
                    format!("data × repeat is {} bytes; at most 4096", n * f.repeat),
                );
            }
            recovery(d, &format!("{p}.recovery"), &f.recovery);
        }
        Step::SleepMs(_)
        | Step::Reset(_)
        | Step::Flash(_)
        | Step::GpioSet(_)
        | Step::GpioGet(_)
        | Step::PowerSet(_)
        | Step::PowerCycle(_)
        | Step::PowerExpect(_) => {}
    }
}

fn assertion(d: &mut Diags, p: &str, a: &Assertion) {
    let ranged = a.expect_less_than.is_some()
        || a.expect_less_than_or_equal.is_some()
        || a.expect_greater_than.is_some()
        || a.expect_greater_than_or_equal.is_some();
    if a.expect_equal.is_some() && ranged {
        d.error(p, "`expect_equal` cannot be combined with the range fields");
    }
    if a.tolerance < 0.0 {
        d.error(&format!("{p}.tolerance"), "must not be negative");
    }
}

fn can_frame(d: &mut Diags, p: &str, id: u32, extended: bool, fd: bool, data: &str) {
    let max = if extended { 0x1FFF_FFFF } else { 0x7FF };
    range(d, &format!("{p}.id"), id as u64, 0, max);
    let n = hex(d, &format!("{p}.data"), data, true) as u64;
    range(d, &format!("{p}.data"), n, 0, if fd { 64 } else { 8 });
}

fn can_rule(d: &mut Diags, p: &str, r: &CanFrameRule) {
    can_frame(d, p, r.id, r.extended, r.fd, &r.data);
    if let Some(m) = &r.data_mask {
        let a = parse_hex_bytes(&r.data).map(|v| v.len()).unwrap_or(0);
        let b = hex(d, &format!("{p}.data_mask"), m, true);
        if a != b {
            d.error(
                &format!("{p}.data_mask"),
                "must have the same length as `data`",
            );
        }
    }
}

fn fuzz(d: &mut Diags, p: &str, c: &FuzzCommon) {
    if let Some(s) = c.seed {
        range(d, &format!("{p}.seed"), s, 0, u32::MAX as u64);
    }
    range(d, &format!("{p}.iterations"), c.iterations, 1, 10_000);
    range(
        d,
        &format!("{p}.max_duration_ms"),
        c.max_duration_ms,
        1,
        3_600_000,
    );
    range(
        d,
        &format!("{p}.inter_case_delay_ms"),
        c.inter_case_delay_ms,
        0,
        60_000,
    );
}

fn recovery(d: &mut Diags, p: &str, r: &Recovery) {
    if r.kind != "uart" {
        d.error(&format!("{p}.type"), "only `uart` recovery oracles exist");
    }
    range(
        d,
        &format!("{p}.send"),
        r.send.chars().count() as u64,
        1,
        1024,
    );
    range(
        d,
        &format!("{p}.expect_contains"),
        r.expect_contains.chars().count() as u64,
        1,
        1024,
    );
    range(d, &format!("{p}.within_ms"), r.within_ms, 1, 300_000);
}
