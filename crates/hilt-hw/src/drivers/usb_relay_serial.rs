//! `usb_relay_serial` (`model: command_map`): a relay board on a serial port driven by
//! byte strings from the bench file. `on_commands` / `off_commands` / `get_commands` map
//! a channel to hex bytes (`A0 01 01 A2` or `A00101A2`); a readback answer matches
//! `on_response_values` / `off_response_values` as hex (`0101`, `01 01`) or as text,
//! case-insensitively, as in BenchCI. Without a get command the last state set is
//! reported.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hilt_model::bench::{Parity, ResourceDriver as Params};

use super::{Opened, Problem, ResourceDriver, resource_lock, wrong_params};
use crate::locks::LockSpec;
use crate::power::PowerSwitch;
use crate::serial::{SerialPort, SerialSettings};
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Power;
/// A readback answer is complete after this much silence following its first byte.
const ANSWER_GAP: Duration = Duration::from_millis(30);
/// Longest readback answer read (BenchCI reads 64 bytes).
const MAX_ANSWER: usize = 64;

pub struct UsbRelaySerial;

/// `A0 01 01 A2` or `A00101A2` → bytes (what Python's `bytes.fromhex` accepts, and
/// byte-separated tokens).
pub fn hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s.split_whitespace().collect();
    if digits.is_empty() {
        return Err("no bytes".into());
    }
    if !digits.len().is_multiple_of(2) || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("`{s}` is not hex bytes (e.g. `A0 01 01 A2`)"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

fn hex_spaced(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl ResourceDriver for UsbRelaySerial {
    fn tag(&self) -> &'static str {
        "usb_relay_serial"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, params: &Params) -> Vec<Problem> {
        let Params::UsbRelaySerial {
            model,
            port,
            baud,
            timeout_ms,
            on_commands,
            off_commands,
            get_commands,
            ..
        } = params
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if model != "command_map" {
            out.push(
                Problem::new(
                    "model",
                    format!("model `{model}` is not supported by this build"),
                )
                .with_help("use `model: command_map` with on_commands/off_commands"),
            );
        }
        if port.trim().is_empty() {
            out.push(Problem::new("port", "must name a serial port"));
        }
        if *baud == 0 {
            out.push(Problem::new("baud", "must be greater than 0"));
        }
        if *timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        for (name, map) in [
            ("on_commands", on_commands),
            ("off_commands", off_commands),
            ("get_commands", get_commands),
        ] {
            for (ch, hex) in map {
                if let Err(e) = hex_bytes(hex) {
                    out.push(Problem::new(format!("{name}.{ch}"), e));
                }
            }
        }
        out
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        let port = match params {
            Params::UsbRelaySerial { port, .. } => port.clone(),
            _ => String::new(),
        };
        vec![resource_lock(
            resource,
            params,
            format!("serial:{port}"),
            port,
            "power_serial_relay",
        )]
    }

    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError> {
        let Params::UsbRelaySerial {
            port,
            baud,
            timeout_ms,
            outlets,
            on_commands,
            off_commands,
            get_commands,
            on_response_values,
            off_response_values,
            on_settle_ms,
            off_settle_ms,
            ..
        } = params
        else {
            return Err(wrong_params(KIND, self.tag(), params));
        };
        let bad = |r: String| HwError::open(KIND, "serial relay board", resource, r);
        let bytes = |map: &BTreeMap<String, String>| -> Result<BTreeMap<String, Vec<u8>>, HwError> {
            map.iter()
                .map(|(ch, h)| Ok((ch.clone(), hex_bytes(h).map_err(&bad)?)))
                .collect()
        };
        let settings = SerialSettings {
            port: port.clone(),
            baud: *baud,
            bytesize: 8,
            parity: Parity::N,
            stopbits: 1.0,
        };
        let serial = crate::serial::open_as(&settings, KIND, "serial relay board")?;
        let lower = |v: &[String]| v.iter().map(|s| s.trim().to_lowercase()).collect();
        Ok(Opened::Power(Box::new(Board {
            port: serial,
            path: port.clone(),
            timeout: Duration::from_millis((*timeout_ms).max(1)),
            outlets: outlets.clone(),
            on: bytes(on_commands)?,
            off: bytes(off_commands)?,
            get: bytes(get_commands)?,
            on_values: lower(on_response_values),
            off_values: lower(off_response_values),
            settle: (*on_settle_ms, *off_settle_ms),
            last: BTreeMap::new(),
        })))
    }
}

struct Board {
    port: Box<dyn SerialPort>,
    path: String,
    timeout: Duration,
    outlets: BTreeMap<String, u32>,
    on: BTreeMap<String, Vec<u8>>,
    off: BTreeMap<String, Vec<u8>>,
    get: BTreeMap<String, Vec<u8>>,
    on_values: Vec<String>,
    off_values: Vec<String>,
    settle: (u64, u64),
    last: BTreeMap<String, bool>,
}

impl Board {
    fn fail(&self, e: impl std::fmt::Display) -> HwError {
        HwError::io(KIND, "serial relay board", format!("{}: {e}", self.path))
    }

    fn channel(&self, outlet: &str) -> Result<String, HwError> {
        self.outlets
            .get(outlet)
            .map(|c| c.to_string())
            .ok_or_else(|| {
                HwError::unsupported(
                    KIND,
                    format!(
                        "no outlet `{outlet}` on {} (outlets: {})",
                        self.path,
                        self.outlets.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), HwError> {
        crate::serial::drain(&mut *self.port).map_err(|e| self.fail(e))?;
        self.port.write_all_bytes(bytes).map_err(|e| self.fail(e))
    }

    /// The answer: bytes until a short silence after the first one, or the timeout.
    fn answer(&mut self) -> Result<Vec<u8>, HwError> {
        let deadline = Instant::now() + self.timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; MAX_ANSWER];
        while got.len() < MAX_ANSWER {
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = if got.is_empty() {
                left
            } else {
                left.min(ANSWER_GAP)
            };
            if wait.is_zero() {
                break;
            }
            let n = self
                .port
                .read_timeout(&mut buf, wait)
                .map_err(|e| self.fail(e))?;
            if n == 0 && !got.is_empty() {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.truncate(MAX_ANSWER);
        Ok(got)
    }

    fn parse(&self, answer: &[u8]) -> Option<bool> {
        let forms = [
            hex::encode(answer),
            hex_spaced(answer).to_lowercase(),
            String::from_utf8_lossy(answer).trim().to_lowercase(),
        ];
        if forms.iter().any(|f| self.on_values.contains(f)) {
            Some(true)
        } else if forms.iter().any(|f| self.off_values.contains(f)) {
            Some(false)
        } else {
            None
        }
    }
}

impl PowerSwitch for Board {
    fn set(&mut self, outlet: &str, on: bool) -> Result<(), HwError> {
        let ch = self.channel(outlet)?;
        let map = if on { &self.on } else { &self.off };
        let cmd = map.get(&ch).cloned().ok_or_else(|| {
            self.fail(format!(
                "no {} command for channel {ch}",
                if on { "on" } else { "off" }
            ))
        })?;
        self.send(&cmd)?;
        self.last.insert(outlet.to_string(), on);
        Ok(())
    }

    fn get(&mut self, outlet: &str) -> Result<Option<bool>, HwError> {
        let ch = self.channel(outlet)?;
        let Some(cmd) = self.get.get(&ch).cloned() else {
            return Ok(self.last.get(outlet).copied());
        };
        self.send(&cmd)?;
        let answer = self.answer()?;
        if answer.is_empty() {
            return Err(self.fail(format!(
                "no answer to the state query of channel {ch} within {} ms",
                self.timeout.as_millis()
            )));
        }
        match self.parse(&answer) {
            Some(s) => Ok(Some(s)),
            None => Err(HwError::NoReadback {
                kind: KIND,
                reason: format!(
                    "{}: channel {ch} answered {} ({:?}), which is in neither on_response_values nor off_response_values",
                    self.path,
                    hex_spaced(&answer),
                    String::from_utf8_lossy(&answer)
                ),
            }),
        }
    }

    fn settle_ms(&self) -> (u64, u64) {
        self.settle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(hex_bytes("A0 01 01 A2").unwrap(), [0xA0, 1, 1, 0xA2]);
        assert_eq!(hex_bytes("a00101a2").unwrap(), [0xA0, 1, 1, 0xA2]);
        assert!(hex_bytes("A0 1").is_err());
        assert!(hex_bytes("zz").is_err());
        assert!(hex_bytes("  ").is_err());
    }
}
