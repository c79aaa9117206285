//! Measurement instruments: one numeric reading per call. Drivers live in `drivers/`.

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
