//! `mock_power`: outlet states in memory, or the power of a simulated DUT (`sim_control`).

use std::collections::BTreeMap;

use hilt_model::bench::ResourceDriver as Params;

use super::{Opened, ResourceDriver, resource_lock, wrong_params};
use crate::locks::LockSpec;
use crate::power::PowerSwitch;
use crate::sim_link::SimLink;
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Power;

pub struct MockPower;

impl ResourceDriver for MockPower {
    fn tag(&self) -> &'static str {
        "mock_power"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        vec![resource_lock(
            resource,
            params,
            format!("power:{resource}"),
            format!("power {resource}"),
            "power_resource",
        )]
    }

    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError> {
        let Params::MockPower {
            outlets,
            on_settle_ms,
            off_settle_ms,
            sim_control,
        } = params
        else {
            return Err(wrong_params(KIND, self.tag(), params));
        };
        let link = match sim_control {
            Some(path) => Some(SimLink::connect(path).map_err(|e| {
                HwError::open(
                    KIND,
                    "simulated power switch",
                    format!("{resource} via {path}"),
                    e,
                )
            })?),
            None => None,
        };
        let mut states = outlets.clone();
        if let Some(link) = &link {
            // The switch reports what the simulated device really has.
            let on = link
                .power_get()
                .map_err(|e| HwError::io(KIND, "simulated power switch", e))?;
            states.values_mut().for_each(|v| *v = on);
        }
        Ok(Opened::Power(Box::new(Switch {
            states,
            settle: (*on_settle_ms, *off_settle_ms),
            link,
        })))
    }
}

struct Switch {
    states: BTreeMap<String, bool>,
    settle: (u64, u64),
    link: Option<SimLink>,
}

fn no_outlet(outlet: &str) -> HwError {
    HwError::unsupported(KIND, format!("no outlet `{outlet}`"))
}

impl PowerSwitch for Switch {
    fn set(&mut self, outlet: &str, on: bool) -> Result<(), HwError> {
        let Some(state) = self.states.get_mut(outlet) else {
            return Err(no_outlet(outlet));
        };
        if let Some(link) = &self.link {
            link.power_set(on)
                .map_err(|e| HwError::io(KIND, "simulated power switch", e))?;
        }
        *state = on;
        Ok(())
    }

    fn get(&mut self, outlet: &str) -> Result<Option<bool>, HwError> {
        if !self.states.contains_key(outlet) {
            return Err(no_outlet(outlet));
        }
        if let Some(link) = &self.link {
            let on = link
                .power_get()
                .map_err(|e| HwError::io(KIND, "simulated power switch", e))?;
            return Ok(Some(on));
        }
        Ok(self.states.get(outlet).copied())
    }

    fn settle_ms(&self) -> (u64, u64) {
        self.settle
    }
}
