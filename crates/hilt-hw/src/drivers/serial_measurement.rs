//! `serial_measurement`: a simple (non-SCPI) serial sensor. Per reading: drop stale
//! input, send `command` (when set, exactly as written), read one line (or what arrived
//! within `timeout_ms`, at most `read_size` bytes), and take the value from
//! `response_regex` (the `value` group, else group 1, else the match) or the first
//! number. The port is opened when the run opens the resource and held until it ends.

use std::time::{Duration, Instant};

use hilt_model::bench::ResourceDriver as Params;
use regex::Regex;

use super::{Opened, Problem, ResourceDriver, resource_lock, wrong_params};
use crate::locks::LockSpec;
use crate::measurement::{Instrument, Reading};
use crate::scpi::{parse_number, parse_parity};
use crate::serial::{SerialPort, SerialSettings};
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Measurement;

pub struct SerialMeasurement;

impl ResourceDriver for SerialMeasurement {
    fn tag(&self) -> &'static str {
        "serial_measurement"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, params: &Params) -> Vec<Problem> {
        let Params::SerialMeasurement {
            port,
            baud,
            timeout_ms,
            parity,
            read_size,
            ..
        } = params
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if port.trim().is_empty() {
            out.push(Problem::new("port", "must name a serial port"));
        }
        if *baud == 0 {
            out.push(Problem::new("baud", "must be greater than 0"));
        }
        if *timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        if parse_parity(parity).is_none() {
            out.push(Problem::new(
                "parity",
                format!("`{parity}` is not N, E, O, M or S"),
            ));
        }
        if *read_size == 0 {
            out.push(Problem::new("read_size", "must be greater than 0"));
        }
        out
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        let port = match params {
            Params::SerialMeasurement { port, .. } => port.clone(),
            _ => String::new(),
        };
        vec![resource_lock(
            resource,
            params,
            format!("serial:{port}"),
            port,
            "measurement_serial",
        )]
    }

    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError> {
        let Params::SerialMeasurement {
            port,
            baud,
            command,
            response_regex,
            quantity,
            unit,
            timeout_ms,
            bytesize,
            parity,
            stopbits,
            read_size,
        } = params
        else {
            return Err(wrong_params(KIND, self.tag(), params));
        };
        let bad = |r: String| HwError::open(KIND, "serial sensor", resource, r);
        let regex = response_regex
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| bad(format!("invalid response_regex: {e}")))?;
        let settings = SerialSettings {
            port: port.clone(),
            baud: *baud,
            bytesize: *bytesize,
            parity: parse_parity(parity).ok_or_else(|| bad(format!("parity `{parity}`")))?,
            stopbits: *stopbits,
        };
        let serial = crate::serial::open_as(&settings, KIND, "serial sensor")?;
        Ok(Opened::Instrument(Box::new(Sensor {
            port: serial,
            path: port.clone(),
            command: command.clone(),
            regex,
            quantity: quantity.clone(),
            unit: unit.clone(),
            timeout: Duration::from_millis((*timeout_ms).max(1)),
            read_size: (*read_size).max(1) as usize,
        })))
    }
}

struct Sensor {
    port: Box<dyn SerialPort>,
    path: String,
    command: Option<String>,
    regex: Option<Regex>,
    quantity: String,
    unit: Option<String>,
    timeout: Duration,
    read_size: usize,
}

/// The value in a response, by regex or as the first number.
fn value_of(regex: Option<&Regex>, text: &str) -> Result<f64, String> {
    let raw = match regex {
        Some(re) => {
            let c = re
                .captures(text)
                .ok_or_else(|| format!("response {text:?} does not match `{}`", re.as_str()))?;
            c.name("value")
                .or_else(|| c.get(1))
                .or_else(|| c.get(0))
                .map(|m| m.as_str())
                .unwrap_or("")
                .to_string()
        }
        None => text.to_string(),
    };
    raw.trim()
        .parse::<f64>()
        .ok()
        .or_else(|| parse_number(&raw))
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("response {text:?} holds no number"))
}

impl Instrument for Sensor {
    fn read(&mut self) -> Result<Reading, HwError> {
        let fail = |e: String| HwError::io(KIND, "serial sensor", format!("{}: {e}", self.path));
        // Stale input is not this reading's answer.
        crate::serial::drain(&mut *self.port).map_err(|e| fail(e.to_string()))?;
        if let Some(c) = &self.command {
            self.port
                .write_all_bytes(c.as_bytes())
                .map_err(|e| fail(format!("cannot send the command: {e}")))?;
        }
        let deadline = Instant::now() + self.timeout;
        let mut buf = [0u8; 512];
        let mut got = Vec::new();
        while !got.contains(&b'\n') && got.len() < self.read_size {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let n = self
                .port
                .read_timeout(&mut buf, left)
                .map_err(|e| fail(e.to_string()))?;
            got.extend_from_slice(&buf[..n]);
        }
        let line_end = got
            .iter()
            .position(|b| *b == b'\n')
            .map_or(got.len(), |i| i + 1);
        got.truncate(line_end.min(self.read_size));
        if got.is_empty() {
            return Err(fail(format!(
                "no response within {} ms",
                self.timeout.as_millis()
            )));
        }
        let text = String::from_utf8_lossy(&got).trim().to_string();
        let value = value_of(self.regex.as_ref(), &text).map_err(fail)?;
        Ok(Reading {
            value,
            unit: self.unit.clone(),
            quantity: self.quantity.clone(),
            backend: "serial_measurement".into(),
            address: Some(self.path.clone()),
            query: self.command.clone(),
            raw_response: Some(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_by_regex_or_first_number() {
        let re = Regex::new(r"T=(?P<value>[-\d.]+)C").unwrap();
        assert_eq!(value_of(Some(&re), "ok T=21.5C"), Ok(21.5));
        let re1 = Regex::new(r"= (\d+)").unwrap();
        assert_eq!(value_of(Some(&re1), "= 42"), Ok(42.0));
        assert_eq!(value_of(None, "V:3.31"), Ok(3.31));
        assert!(
            value_of(Some(&re1), "error")
                .unwrap_err()
                .contains("does not match")
        );
        assert!(value_of(None, "no digits").is_err());
    }
}
