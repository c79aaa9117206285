//! `scpi_measurement`: any SCPI instrument (a meter, a supply's readback) asked one query
//! per reading, over a raw TCP socket or a serial port. The reading carries the bench's
//! quantity and unit, the address, the query and the raw answer into results.json.

use std::time::Duration;

use hilt_model::bench::ResourceDriver as Params;

use super::{Opened, Problem, ResourceDriver, resource_lock, wrong_params};
use crate::locks::LockSpec;
use crate::measurement::{Instrument, Reading};
use crate::scpi::{ScpiLink, ScpiSettings, parse_address, parse_parity};
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Measurement;

pub struct ScpiMeasurement;

/// The connection fields both SCPI drivers share, as the bench writes them.
pub(super) struct Conn<'a> {
    pub address: &'a str,
    pub timeout_ms: u64,
    pub baudrate: u32,
    pub bytesize: u32,
    pub parity: &'a str,
    pub stopbits: f64,
    pub write_termination: &'a str,
    pub read_termination: &'a str,
}

impl Conn<'_> {
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Err(e) = parse_address(self.address) {
            out.push(Problem::new("address", e).with_help(
                "write `tcp://host:5025` for a LAN instrument or `serial:///dev/ttyUSB0` for a serial one",
            ));
        }
        if self.timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        if parse_parity(self.parity).is_none() {
            out.push(Problem::new(
                "parity",
                format!("`{}` is not N, E, O, M or S", self.parity),
            ));
        }
        if self.read_termination.is_empty() {
            out.push(Problem::new(
                "read_termination",
                "must not be empty: it ends each answer",
            ));
        }
        out
    }

    pub fn settings(&self, kind: ResourceKind, resource: &str) -> Result<ScpiSettings, HwError> {
        let bad = |r: String| HwError::open(kind, "SCPI instrument", resource, r);
        Ok(ScpiSettings {
            address: parse_address(self.address).map_err(bad)?,
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            write_termination: self.write_termination.to_string(),
            read_termination: self.read_termination.to_string(),
            baud: self.baudrate,
            bytesize: self.bytesize,
            parity: parse_parity(self.parity)
                .ok_or_else(|| bad(format!("parity `{}` is not N, E, O, M or S", self.parity)))?,
            stopbits: self.stopbits,
        })
    }
}

/// BenchCI's `measurement:<resource>` key, and for an instrument on a serial line also
/// `serial:<port>`, so it excludes every other user of that port (a UART, a relay board,
/// another instrument) as hilt's other serial drivers do.
pub(super) fn lock_specs(resource: &str, params: &Params, address: Option<&str>) -> Vec<LockSpec> {
    let mut out = vec![resource_lock(
        resource,
        params,
        format!("measurement:{resource}"),
        format!("measurement {resource}"),
        "measurement_resource",
    )];
    if let Some(Ok(crate::scpi::ScpiAddress::Serial { port })) = address.map(parse_address) {
        out.push(resource_lock(
            resource,
            params,
            format!("serial:{port}"),
            port,
            "measurement_serial",
        ));
    }
    out
}

fn conn(params: &Params) -> Option<(Conn<'_>, &str, &str, Option<&str>)> {
    match params {
        Params::ScpiMeasurement {
            address,
            query,
            quantity,
            unit,
            timeout_ms,
            baudrate,
            bytesize,
            parity,
            stopbits,
            write_termination,
            read_termination,
        } => Some((
            Conn {
                address,
                timeout_ms: *timeout_ms,
                baudrate: *baudrate,
                bytesize: *bytesize,
                parity,
                stopbits: *stopbits,
                write_termination,
                read_termination,
            },
            query,
            quantity,
            unit.as_deref(),
        )),
        _ => None,
    }
}

impl ResourceDriver for ScpiMeasurement {
    fn tag(&self) -> &'static str {
        "scpi_measurement"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, params: &Params) -> Vec<Problem> {
        let Some((c, query, ..)) = conn(params) else {
            return Vec::new();
        };
        let mut out = c.problems();
        if query.trim().is_empty() {
            out.push(Problem::new("query", "must not be empty"));
        }
        out
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        lock_specs(resource, params, conn(params).map(|c| c.0.address))
    }

    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError> {
        let Some((c, query, quantity, unit)) = conn(params) else {
            return Err(wrong_params(KIND, self.tag(), params));
        };
        let link = ScpiLink::open(&c.settings(KIND, resource)?, KIND)?;
        Ok(Opened::Instrument(Box::new(Meter {
            link,
            query: query.to_string(),
            quantity: quantity.to_string(),
            unit: unit.map(str::to_string),
            backend: self.tag(),
        })))
    }
}

/// One query per reading.
pub(super) struct Meter {
    pub link: ScpiLink,
    pub query: String,
    pub quantity: String,
    pub unit: Option<String>,
    pub backend: &'static str,
}

impl Instrument for Meter {
    fn read(&mut self) -> Result<Reading, HwError> {
        let (value, raw) = self.link.query_number(&self.query)?;
        Ok(Reading {
            value,
            unit: self.unit.clone(),
            quantity: self.quantity.clone(),
            backend: self.backend.into(),
            address: Some(self.link.address()),
            query: Some(self.query.clone()),
            raw_response: Some(raw),
        })
    }
}
