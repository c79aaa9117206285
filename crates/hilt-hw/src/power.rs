//! Power switching (relays, controllable supplies).

use std::collections::BTreeMap;

use hilt_model::bench::ResourceDriver;

use crate::HwError;
use crate::sim_link::SimLink;

pub trait PowerSwitch: Send {
    fn set(&mut self, outlet: &str, on: bool) -> Result<(), HwError>;
    /// The outlet state from readback, or the last state set; `None` when unknown.
    fn get(&mut self, outlet: &str) -> Result<Option<bool>, HwError>;
    /// Settle times in ms after switching (on, off).
    fn settle_ms(&self) -> (u64, u64);
}

pub fn open(resource: &str, driver: &ResourceDriver) -> Result<Box<dyn PowerSwitch>, HwError> {
    match driver {
        ResourceDriver::MockPower {
            outlets,
            on_settle_ms,
            off_settle_ms,
            sim_control,
        } => {
            let link = match sim_control {
                Some(path) => Some(SimLink::connect(path).map_err(|e| HwError::Open {
                    what: "simulated power switch",
                    path: format!("{resource} via {path}"),
                    reason: e.to_string(),
                })?),
                None => None,
            };
            let mut states = outlets.clone();
            if let Some(link) = &link {
                // The switch reports what the simulated device really has.
                let on = link
                    .power_get()
                    .map_err(|e| HwError::io("simulated power switch", e))?;
                states.values_mut().for_each(|v| *v = on);
            }
            Ok(Box::new(MockPower {
                states,
                settle: (*on_settle_ms, *off_settle_ms),
                link,
            }))
        }
        other => Err(HwError::Open {
            what: "power resource",
            path: resource.to_string(),
            reason: format!(
                "driver `{}` is not supported by this build",
                other.type_name()
            ),
        }),
    }
}

/// `mock_power`: outlet states in memory, or the power of a simulated DUT.
pub struct MockPower {
    states: BTreeMap<String, bool>,
    settle: (u64, u64),
    link: Option<SimLink>,
}

impl PowerSwitch for MockPower {
    fn set(&mut self, outlet: &str, on: bool) -> Result<(), HwError> {
        let Some(state) = self.states.get_mut(outlet) else {
            return Err(HwError::Unsupported(format!("no outlet `{outlet}`")));
        };
        if let Some(link) = &self.link {
            link.power_set(on)
                .map_err(|e| HwError::io("simulated power switch", e))?;
        }
        *state = on;
        Ok(())
    }

    fn get(&mut self, outlet: &str) -> Result<Option<bool>, HwError> {
        if !self.states.contains_key(outlet) {
            return Err(HwError::Unsupported(format!("no outlet `{outlet}`")));
        }
        if let Some(link) = &self.link {
            let on = link
                .power_get()
                .map_err(|e| HwError::io("simulated power switch", e))?;
            return Ok(Some(on));
        }
        Ok(self.states.get(outlet).copied())
    }

    fn settle_ms(&self) -> (u64, u64) {
        self.settle
    }
}
