//! `gpio_power`: outlets switched by GPIO lines driving relays (`chip`, `outlets: {name:
//! line}`), through the same chips as GPIO lines ([`open_chip`]: `/dev/gpiochipN` or a
//! `sim:<name>` chip of this process).
//!
//! With `initial_state` set, every outlet's line is requested as an output at that logical
//! state when the run opens the resource. Without it the level is truly left alone (BenchCI
//! requests the line at logical off, cutting power; bench-format §4): a line is requested
//! only by the first `set` of its outlet, and until then the outlet has no readback. Reads
//! are the level the line drives. The self-test checks the chip and the line numbers
//! without requesting any line, so it can never switch an outlet.

use std::collections::BTreeMap;

use hilt_model::bench::{Direction, ResourceDriver as Params};

use super::{Opened, Probe, Problem, ResourceDriver, SelfCheck, resource_lock, wrong_params};
use crate::gpiochip::{ChipLines, GpioChip, LineRequest, open_chip};
use crate::locks::LockSpec;
use crate::power::PowerSwitch;
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Power;

pub struct GpioPower;

struct Outlet {
    line: u32,
    /// Requested on the first set (or at open with `initial_state`).
    handle: Option<Box<dyn ChipLines>>,
}

struct Switch {
    resource: String,
    chip: Box<dyn GpioChip>,
    active_high: bool,
    outlets: BTreeMap<String, Outlet>,
    settle: (u64, u64),
}

/// The `gpio_power` fields of a driver block.
struct Settings<'a> {
    chip: &'a str,
    outlets: &'a BTreeMap<String, u32>,
    active_high: bool,
    initial: Option<bool>,
    settle: (u64, u64),
}

fn params(p: &Params) -> Option<Settings<'_>> {
    match p {
        Params::GpioPower {
            chip,
            outlets,
            active_high,
            initial_state,
            on_settle_ms,
            off_settle_ms,
        } => Some(Settings {
            chip: chip.as_str(),
            outlets,
            active_high: *active_high,
            initial: *initial_state,
            settle: (*on_settle_ms, *off_settle_ms),
        }),
        _ => None,
    }
}

fn requests(outlets: &BTreeMap<String, u32>) -> Vec<LineRequest> {
    outlets
        .values()
        .map(|l| LineRequest::new(*l, Direction::Output))
        .collect()
}

/// Opens the chip and checks every outlet's line without requesting any.
fn checked_chip(
    resource: &str,
    chip: &str,
    outlets: &BTreeMap<String, u32>,
) -> Result<Box<dyn GpioChip>, HwError> {
    let fail = |e: String| HwError::open(KIND, "GPIO power lines of", resource, e);
    let c = open_chip(chip).map_err(|e| fail(e.to_string()))?;
    c.check(&requests(outlets))
        .map_err(|e| fail(e.to_string()))?;
    Ok(c)
}

impl Switch {
    fn physical(&self, on: bool) -> bool {
        on == self.active_high
    }

    fn outlet(&mut self, name: &str) -> Result<&mut Outlet, HwError> {
        let names: Vec<String> = self.outlets.keys().cloned().collect();
        self.outlets.get_mut(name).ok_or_else(|| {
            HwError::unsupported(
                KIND,
                format!(
                    "gpio_power has no outlet `{name}` (outlets: {})",
                    names.join(", ")
                ),
            )
        })
    }
}

impl PowerSwitch for Switch {
    fn set(&mut self, outlet: &str, on: bool) -> Result<(), HwError> {
        let level = self.physical(on);
        let resource = self.resource.clone();
        let chip_path = self.chip.path().to_string();
        let line = self.outlet(outlet)?.line;
        if self.outlets[outlet].handle.is_none() {
            let h = self
                .chip
                .request(
                    &[LineRequest::new(line, Direction::Output)],
                    super::local_gpio::CONSUMER,
                )
                .map_err(|e| {
                    HwError::io(
                        KIND,
                        "GPIO power line request",
                        format!("{resource}.{outlet} (line {line} of {chip_path}): {e}"),
                    )
                })?;
            self.outlet(outlet)?.handle = Some(h);
        }
        let o = self.outlet(outlet)?;
        let Some(h) = o.handle.as_mut() else {
            return Err(HwError::io(KIND, "GPIO power", "line not requested"));
        };
        h.set(line, level)
            .map_err(|e| HwError::io(KIND, "GPIO power", format!("{resource}.{outlet}: {e}")))
    }

    fn get(&mut self, outlet: &str) -> Result<Option<bool>, HwError> {
        let active_high = self.active_high;
        let resource = self.resource.clone();
        let o = self.outlet(outlet)?;
        let line = o.line;
        let Some(h) = o.handle.as_mut() else {
            return Err(HwError::NoReadback {
                kind: KIND,
                reason: format!(
                    "{resource}.{outlet} has not been switched yet and `initial_state` is unset: \
                     its line is left untouched, so its level is unknown"
                ),
            });
        };
        let level = h.get(line).map_err(|e| {
            HwError::io(
                KIND,
                "GPIO power readback",
                format!("{resource}.{outlet}: {e}"),
            )
        })?;
        Ok(Some(level == active_high))
    }

    fn settle_ms(&self) -> (u64, u64) {
        self.settle
    }
}

impl ResourceDriver for GpioPower {
    fn tag(&self) -> &'static str {
        "gpio_power"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, p: &Params) -> Vec<Problem> {
        let Some(Settings { chip, outlets, .. }) = params(p) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if chip.trim().is_empty() {
            out.push(Problem::new(
                "chip",
                "must name a GPIO chip (`/dev/gpiochip0`)",
            ));
        }
        let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
        for (name, line) in outlets {
            if let Some(other) = seen.insert(*line, name) {
                out.push(Problem::new(
                    format!("outlets.{name}"),
                    format!(
                        "line {line} is already outlet `{other}`; each outlet needs its own line"
                    ),
                ));
            }
        }
        out
    }

    fn lock_specs(&self, resource: &str, p: &Params) -> Vec<LockSpec> {
        let Some(Settings { chip, outlets, .. }) = params(p) else {
            return Vec::new();
        };
        outlets
            .iter()
            .map(|(outlet, line)| {
                resource_lock(
                    resource,
                    p,
                    format!("gpio:local:{chip}:{line}"),
                    format!("{chip} line {line}"),
                    "power_gpio_line",
                )
                .with_detail("outlet", outlet.clone())
            })
            .collect()
    }

    fn open(&self, resource: &str, p: &Params) -> Result<Opened, HwError> {
        let Some(Settings {
            chip,
            outlets,
            active_high,
            initial,
            settle,
        }) = params(p)
        else {
            return Err(wrong_params(KIND, self.tag(), p));
        };
        let mut sw = Switch {
            resource: resource.to_string(),
            chip: checked_chip(resource, chip, outlets)?,
            active_high,
            outlets: outlets
                .iter()
                .map(|(n, l)| {
                    (
                        n.clone(),
                        Outlet {
                            line: *l,
                            handle: None,
                        },
                    )
                })
                .collect(),
            settle,
        };
        if let Some(on) = initial {
            let names: Vec<String> = sw.outlets.keys().cloned().collect();
            for o in names {
                sw.set(&o, on).map_err(|e| {
                    HwError::open(KIND, "GPIO power outlet", format!("{resource}.{o}"), e)
                })?;
            }
        }
        Ok(Opened::Power(Box::new(sw)))
    }

    /// Checks the chip and lines; requests nothing (a request drives the line).
    fn self_test(&self, resource: &str, p: &Params, read: bool) -> Vec<SelfCheck> {
        let Some(Settings { chip, outlets, .. }) = params(p) else {
            return Vec::new();
        };
        let mut out = vec![SelfCheck {
            id: "power.start".into(),
            title: format!("start {resource}"),
            outcome: match checked_chip(resource, chip, outlets) {
                Ok(_) => Probe::Pass(format!(
                    "{chip}: lines {:?} available",
                    outlets.values().collect::<Vec<_>>()
                )),
                Err(e) => Probe::Failed(e),
            },
        }];
        if read {
            for outlet in outlets.keys() {
                out.push(SelfCheck {
                    id: format!("power.{outlet}.read"),
                    title: format!("read {resource}.{outlet}"),
                    outcome: Probe::Skip("not read: requesting a power line would drive it".into()),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpiochip::sim_chip;

    fn p(chip: &str, initial: Option<bool>, active_high: bool) -> Params {
        Params::GpioPower {
            chip: chip.into(),
            outlets: BTreeMap::from([("dut".to_string(), 2), ("fan".to_string(), 4)]),
            active_high,
            initial_state: initial,
            on_settle_ms: 0,
            off_settle_ms: 0,
        }
    }

    fn switch(params: &Params) -> Box<dyn PowerSwitch> {
        match GpioPower.open("relay", params).unwrap() {
            Opened::Power(s) => s,
            Opened::Instrument(_) => panic!("a power switch"),
        }
    }

    #[test]
    fn without_initial_state_nothing_is_requested_until_a_set() {
        let chip = sim_chip("gpio-power-lazy");
        let mut sw = switch(&p("sim:gpio-power-lazy", None, true));
        assert!(!chip.is_requested(2) && !chip.is_requested(4));
        assert!(matches!(sw.get("dut"), Err(HwError::NoReadback { .. })));
        sw.set("dut", true).unwrap();
        assert!(chip.is_requested(2) && !chip.is_requested(4));
        assert!(chip.level(2));
        assert_eq!(sw.get("dut").unwrap(), Some(true));
        sw.set("dut", false).unwrap();
        assert!(!chip.level(2));
        assert_eq!(sw.get("dut").unwrap(), Some(false));
        drop(sw);
        assert!(!chip.is_requested(2));
    }

    #[test]
    fn initial_state_and_active_low() {
        let chip = sim_chip("gpio-power-low");
        let mut sw = switch(&p("sim:gpio-power-low", Some(true), false));
        // Active low: on is physical 0.
        assert!(chip.is_requested(2) && chip.is_requested(4));
        assert!(!chip.level(2));
        assert_eq!(sw.get("fan").unwrap(), Some(true));
        sw.set("fan", false).unwrap();
        assert!(chip.level(4));
        assert!(matches!(
            sw.set("pump", true),
            Err(HwError::Unsupported { .. })
        ));
    }

    #[test]
    fn the_self_test_requests_nothing_and_checks_lines() {
        let chip = sim_chip("gpio-power-selftest");
        let checks = GpioPower.self_test(
            "relay",
            &p("sim:gpio-power-selftest", Some(true), true),
            true,
        );
        assert!(matches!(checks[0].outcome, Probe::Pass(_)));
        assert!(matches!(checks[1].outcome, Probe::Skip(_)));
        assert!(!chip.is_requested(2));
        let mut far = p("sim:gpio-power-selftest", None, true);
        if let Params::GpioPower { outlets, .. } = &mut far {
            outlets.insert("far".into(), 10_000);
        }
        let checks = GpioPower.self_test("relay", &far, false);
        assert!(matches!(
            &checks[0].outcome,
            Probe::Failed(HwError::Open { .. })
        ));
    }

    #[test]
    fn checks_and_locks() {
        let mut dup = p("", None, true);
        if let Params::GpioPower { outlets, .. } = &mut dup {
            outlets.insert("dup".into(), 2);
        }
        let fields: Vec<String> = GpioPower.check(&dup).into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["chip", "outlets.dut"]);
        let keys: Vec<String> = GpioPower
            .lock_specs("relay", &p("/dev/gpiochip0", None, true))
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(
            keys,
            ["gpio:local:/dev/gpiochip0:2", "gpio:local:/dev/gpiochip0:4"]
        );
    }
}
