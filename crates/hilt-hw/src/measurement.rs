//! Measurement instruments: one numeric reading per call.

use hilt_model::bench::ResourceDriver;

use crate::HwError;

#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub value: f64,
    pub unit: Option<String>,
    pub quantity: String,
    pub backend: String,
    pub address: Option<String>,
    pub query: Option<String>,
    pub raw_response: Option<String>,
}

pub trait Instrument: Send {
    fn read(&mut self) -> Result<Reading, HwError>;
}

pub fn open(resource: &str, driver: &ResourceDriver) -> Result<Box<dyn Instrument>, HwError> {
    match driver {
        ResourceDriver::MockMeasurement {
            value,
            quantity,
            unit,
            noise,
        } => Ok(Box::new(MockInstrument {
            value: *value,
            quantity: quantity.clone(),
            unit: unit.clone(),
            noise: noise.unwrap_or(0.0).abs(),
            rng: seed_from(resource),
        })),
        other => Err(HwError::Open {
            what: "measurement resource",
            path: resource.to_string(),
            reason: format!(
                "driver `{}` is not supported by this build",
                other.type_name()
            ),
        }),
    }
}

fn seed_from(s: &str) -> u64 {
    s.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    }) | 1
}

/// `mock_measurement`: a fixed value, optionally with uniform noise of ± `noise`.
pub struct MockInstrument {
    value: f64,
    quantity: String,
    unit: Option<String>,
    noise: f64,
    rng: u64,
}

impl Instrument for MockInstrument {
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
