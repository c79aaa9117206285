//! `scpi_power_supply_measurement`: a bench supply's voltage or current readback with
//! BenchCI's preset queries (generic/owon `MEAS:VOLT?`; rigol `:MEAS:VOLT? CH1`; keysight
//! `MEAS:VOLT? CH1`). hilt extension: `set_voltage` / `set_current` are applied when a
//! run opens the supply (channel selected first with `INST:NSEL <n>`), and the error queue
//! must be empty afterwards; the self-test never applies them.

use hilt_model::bench::{ResourceDriver as Params, ScpiPreset};

use super::scpi_measurement::{Conn, Meter};
use super::{Opened, Problem, ResourceDriver, SelfCheck, wrong_params};
use crate::locks::LockSpec;
use crate::scpi::ScpiLink;
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Measurement;

pub struct ScpiPowerSupply;

struct Psu<'a> {
    conn: Conn<'a>,
    preset: ScpiPreset,
    quantity: &'a str,
    unit: Option<&'a str>,
    channel: Option<u32>,
    set_voltage: Option<f64>,
    set_current: Option<f64>,
}

fn psu(params: &Params) -> Option<Psu<'_>> {
    match params {
        Params::ScpiPowerSupplyMeasurement {
            address,
            preset,
            quantity,
            unit,
            channel,
            set_voltage,
            set_current,
            timeout_ms,
            baudrate,
            bytesize,
            parity,
            stopbits,
            write_termination,
            read_termination,
        } => Some(Psu {
            conn: Conn {
                address,
                timeout_ms: *timeout_ms,
                baudrate: *baudrate,
                bytesize: *bytesize,
                parity,
                stopbits: *stopbits,
                write_termination,
                read_termination,
            },
            preset: *preset,
            quantity,
            unit: unit.as_deref(),
            channel: *channel,
            set_voltage: *set_voltage,
            set_current: *set_current,
        }),
        _ => None,
    }
}

/// The preset's readback query (BenchCI's table, channel token `CH<n>`).
pub fn preset_query(preset: ScpiPreset, quantity: &str, channel: Option<u32>) -> String {
    let q = if quantity == "current" {
        "CURR"
    } else {
        "VOLT"
    };
    let base = match preset {
        ScpiPreset::Generic | ScpiPreset::OwonSp => return format!("MEAS:{q}?"),
        ScpiPreset::RigolDpBasic => format!(":MEAS:{q}?"),
        ScpiPreset::KeysightBasic | ScpiPreset::KeysightE36300Basic => format!("MEAS:{q}?"),
    };
    match channel {
        Some(c) => format!("{base} CH{c}"),
        None => base,
    }
}

impl Psu<'_> {
    fn open(&self, resource: &str, apply: bool) -> Result<Meter, HwError> {
        let mut link = ScpiLink::open(&self.conn.settings(KIND, resource)?, KIND)?;
        if apply && (self.set_voltage.is_some() || self.set_current.is_some()) {
            if let Some(c) = self.channel {
                link.write(&format!("INST:NSEL {c}"))?;
            }
            if let Some(v) = self.set_voltage {
                link.write(&format!("VOLT {v}"))?;
            }
            if let Some(i) = self.set_current {
                link.write(&format!("CURR {i}"))?;
            }
            let errors = link.errors()?;
            if !errors.is_empty() {
                return Err(HwError::io(
                    KIND,
                    "SCPI power supply",
                    format!(
                        "{} refused the set points (voltage {:?} V, current {:?} A): {}",
                        link.address(),
                        self.set_voltage,
                        self.set_current,
                        errors.join("; ")
                    ),
                ));
            }
        }
        let default_unit = if self.quantity == "current" { "A" } else { "V" };
        Ok(Meter {
            link,
            query: preset_query(self.preset, self.quantity, self.channel),
            quantity: self.quantity.to_string(),
            unit: Some(self.unit.unwrap_or(default_unit).to_string()),
            backend: "scpi_power_supply_measurement",
        })
    }
}

impl ResourceDriver for ScpiPowerSupply {
    fn tag(&self) -> &'static str {
        "scpi_power_supply_measurement"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, params: &Params) -> Vec<Problem> {
        let Some(p) = psu(params) else {
            return Vec::new();
        };
        let mut out = p.conn.problems();
        for (field, v) in [
            ("set_voltage", p.set_voltage),
            ("set_current", p.set_current),
        ] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                out.push(Problem::new(field, "must be a finite number ≥ 0"));
            }
        }
        out
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        super::scpi_measurement::lock_specs(resource, params, psu(params).map(|p| p.conn.address))
    }

    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError> {
        let p = psu(params).ok_or_else(|| wrong_params(KIND, self.tag(), params))?;
        Ok(Opened::Instrument(Box::new(p.open(resource, true)?)))
    }

    /// Opens without applying set points, and with `read` takes one reading.
    fn self_test(&self, resource: &str, params: &Params, read: bool) -> Vec<SelfCheck> {
        use super::Probe;
        use crate::measurement::Instrument;
        let start = |outcome| SelfCheck {
            id: "measurement.start".into(),
            title: format!("start {resource}"),
            outcome,
        };
        let opened = psu(params)
            .ok_or_else(|| wrong_params(KIND, self.tag(), params))
            .and_then(|p| p.open(resource, false));
        let mut meter = match opened {
            Ok(m) => m,
            Err(e) => return vec![start(Probe::Failed(e))],
        };
        let mut out = vec![start(Probe::Pass(format!(
            "{} answered at {}",
            self.tag(),
            meter.link.address()
        )))];
        if read {
            out.push(SelfCheck {
                id: "measurement.read".into(),
                title: format!("read {resource}"),
                outcome: match meter.read() {
                    Ok(r) => Probe::Pass(format!("{} {}", r.value, r.unit.unwrap_or_default())),
                    Err(e) => Probe::Failed(e),
                },
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_queries_are_benchcis() {
        assert_eq!(
            preset_query(ScpiPreset::Generic, "voltage", Some(2)),
            "MEAS:VOLT?"
        );
        assert_eq!(
            preset_query(ScpiPreset::OwonSp, "current", None),
            "MEAS:CURR?"
        );
        assert_eq!(
            preset_query(ScpiPreset::RigolDpBasic, "current", Some(1)),
            ":MEAS:CURR? CH1"
        );
        assert_eq!(
            preset_query(ScpiPreset::RigolDpBasic, "voltage", None),
            ":MEAS:VOLT?"
        );
        assert_eq!(
            preset_query(ScpiPreset::KeysightE36300Basic, "voltage", Some(3)),
            "MEAS:VOLT? CH3"
        );
    }
}
