//! The firmware's command interpreter: one received line → replies queued on the UART.

use std::io::Write as _;
use std::time::Duration;

use crate::firmware::{FIRMWARE_VERSION, Firmware, REGISTER_COUNT};
use crate::state::ResetCause;

/// Most lines one `flood` may ask for.
pub const MAX_FLOOD: u64 = 1_000_000;

impl Firmware {
    /// Executes one command line (terminator already stripped) received at `now`. The
    /// interpreter is an `impl` of the firmware it drives, so the firmware needs no path
    /// into this module and the dependency runs one way (commands → firmware).
    pub(crate) fn execute(&mut self, now: Duration, line: &str) {
        let fw = self;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return;
        }
        let (cmd, rest) = match trimmed.split_once(char::is_whitespace) {
            Some((cmd, rest)) => (cmd, rest),
            None => (trimmed, ""),
        };
        let args: Vec<&str> = rest.split_whitespace().collect();
        let due = fw.out.reply_due(now);
        let reply: String = match (cmd, args.as_slice()) {
            ("ping", []) => "pong".into(),
            ("version", []) => format!("version {FIRMWARE_VERSION}"),
            ("echo", _) => echo_text(line),
            ("add" | "sub" | "mul" | "div", [a, b]) => arithmetic(cmd, a, b),
            ("add" | "sub" | "mul" | "div", _) => format!("error: usage: {cmd} A B"),
            ("led", [state @ ("on" | "off")]) => {
                fw.led = *state == "on";
                led_reply(fw.led)
            }
            ("led", _) => "error: usage: led on|off".into(),
            ("led?", []) => led_reply(fw.led),
            ("reg", ["read", addr]) => match parse_addr(addr) {
                Ok(a) => format!("reg[0x{a:02X}]=0x{:04X}", fw.regs[a]),
                Err(e) => e,
            },
            ("reg", ["write", addr, value]) => match (parse_addr(addr), parse_value(value)) {
                (Ok(a), Ok(v)) => {
                    fw.regs[a] = v;
                    "ok".into()
                }
                (Err(e), _) | (_, Err(e)) => e,
            },
            ("reg", _) => "error: usage: reg read <addr> | reg write <addr> <value>".into(),
            ("hang", []) => {
                fw.hung = true;
                return;
            }
            ("reboot", []) => {
                fw.out.line(due, "rebooting");
                fw.start_boot(now, ResetCause::Soft);
                return;
            }
            ("crash", []) => {
                fw.out.line(due, "HardFault at 0x08001234");
                fw.crash(now);
                return;
            }
            ("BENCHCI_ID?", []) => format!("BENCHCI_ID: {}", fw.id_json),
            ("btn?", []) => format!("btn={}", u8::from(fw.button)),
            ("uptime", []) => {
                let ms = fw.uptime(now).unwrap_or_default().as_millis();
                format!("uptime_ms={ms}")
            }
            ("flood", [n]) => match n.parse::<u64>() {
                Ok(n) if n <= MAX_FLOOD => {
                    flood(fw, due, n);
                    return;
                }
                _ => format!("error: flood count must be a number from 0 to {MAX_FLOOD}"),
            },
            ("flood", _) => "error: usage: flood <n>".into(),
            (
                "ping" | "version" | "led?" | "hang" | "reboot" | "crash" | "BENCHCI_ID?" | "btn?"
                | "uptime",
                _,
            ) => format!("error: {cmd} takes no arguments"),
            _ => format!("error: unknown command '{cmd}'"),
        };
        fw.out.line(due, &reply);
    }
}

/// `echo <text>` answers the text exactly as typed after the first space.
fn echo_text(line: &str) -> String {
    let line = line.trim_start();
    let rest = &line["echo".len()..];
    rest.strip_prefix([' ', '\t']).unwrap_or(rest).to_string()
}

fn led_reply(on: bool) -> String {
    format!("led={}", if on { "on" } else { "off" })
}

fn arithmetic(cmd: &str, a: &str, b: &str) -> String {
    let (a, b) = match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(_), _) => return format!("error: not an integer: '{a}'"),
        (_, Err(_)) => return format!("error: not an integer: '{b}'"),
    };
    let result = match cmd {
        "add" => a.checked_add(b),
        "sub" => a.checked_sub(b),
        "mul" => a.checked_mul(b),
        _ if b == 0 => return "error: division by zero".into(),
        _ => a.checked_div(b),
    };
    match result {
        Some(r) => format!("= {r}"),
        None => "error: overflow".into(),
    }
}

/// Decimal or `0x` hex.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn parse_addr(text: &str) -> Result<usize, String> {
    match parse_number(text) {
        Some(a) if a < REGISTER_COUNT as u64 => Ok(a as usize),
        Some(_) => Err(format!(
            "error: register address {text} out of range (0x00..0x{:02X})",
            REGISTER_COUNT - 1
        )),
        None => Err(format!("error: invalid register address '{text}'")),
    }
}

fn parse_value(text: &str) -> Result<u16, String> {
    match parse_number(text) {
        Some(v) => u16::try_from(v)
            .map_err(|_| format!("error: register value {text} out of range (0..0xFFFF)")),
        None => Err(format!("error: invalid register value '{text}'")),
    }
}

fn flood(fw: &mut Firmware, due: Duration, n: u64) {
    fw.out.bulk(due, n, |i, buf| {
        // io::Write into a Vec cannot fail.
        let _ = write!(buf, "log line {i} lorem ipsum dolor sit amet");
    });
}

/// Used by tests to build expected flood output.
#[cfg(test)]
pub(crate) fn flood_line(i: u64) -> String {
    format!("log line {i} lorem ipsum dolor sit amet")
}
