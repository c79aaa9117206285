//! `mock_measurement`: a fixed value, optionally with uniform noise of ± `noise`.

use hilt_model::bench::ResourceDriver as Params;

use super::{Opened, Problem, ResourceDriver, resource_lock, wrong_params};
use crate::locks::LockSpec;
use crate::measurement::{Instrument, Reading};
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Measurement;

pub struct MockMeasurement;

impl ResourceDriver for MockMeasurement {
    fn tag(&self) -> &'static str {
        "mock_measurement"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, params: &Params) -> Vec<Problem> {
        match params {
            Params::MockMeasurement { value, noise, .. } => {
                let mut out = Vec::new();
                if !value.is_finite() {
                    out.push(Problem::new("value", "must be a finite number"));
                }
                if noise.is_some_and(|n| !n.is_finite()) {
                    out.push(Problem::new("noise", "must be a finite number"));
                }
                out
            }
            _ => Vec::new(),
        }
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        vec![resource_lock(
            resource,
            params,
            format!("measurement:{resource}"),
            format!("measurement {resource}"),
            "measurement_resource",
        )]
    }

    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError> {
        let Params::MockMeasurement {
            value,
            quantity,
            unit,
            noise,
        } = params
        else {
            return Err(wrong_params(KIND, self.tag(), params));
        };
        Ok(Opened::Instrument(Box::new(Mock {
            value: *value,
            quantity: quantity.clone(),
            unit: unit.clone(),
            noise: noise.unwrap_or(0.0).abs(),
            rng: seed_from(resource),
        })))
    }
}

fn seed_from(s: &str) -> u64 {
    s.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    }) | 1
}

struct Mock {
    value: f64,
    quantity: String,
    unit: Option<String>,
    noise: f64,
    rng: u64,
}

impl Instrument for Mock {
    fn read(&mut self) -> Result<Reading, HwError> {
        let mut value = self.value;
        if self.noise > 0.0 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
            value += (unit * 2.0 - 1.0) * self.noise;
        }
        Ok(Reading {
            value,
            unit: self.unit.clone(),
            quantity: self.quantity.clone(),
            backend: "mock_measurement".into(),
            address: None,
            query: None,
            raw_response: None,
        })
    }
}
