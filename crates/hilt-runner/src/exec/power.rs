//! power_set, power_cycle, power_expect.

use std::time::Duration;

use hilt_model::run::{Category, Failure};
use hilt_model::suite::{PowerCycle, PowerSet};

use super::{Exec, StepError, StepResult};
use crate::classify::hw_failure;
use crate::data;

impl Exec<'_> {
    pub(super) fn power_log_path(&self, res: &str) -> String {
        self.logs_dir()
            .join("resources")
            .join(res)
            .join("power.log")
            .display()
            .to_string()
    }

    /// Switches an outlet and waits the driver's settle time.
    pub fn power_switch(&mut self, res: &str, outlet: &str, on: bool) -> Result<(), StepError> {
        let log_path = self.power_log_path(res);
        let p = self.session.power.get_mut(res).ok_or_else(|| {
            StepError::Run(Failure::new(
                Category::PowerResourceUnavailable,
                format!("power resource `{res}` is not open"),
            ))
        })?;
        p.log
            .line(&format!("SET {outlet} {}", if on { "on" } else { "off" }));
        p.switch.set(outlet, on).map_err(|e| {
            StepError::Run(
                hw_failure(&e)
                    .with_detail("resource", res.to_string())
                    .with_detail("outlet", outlet.to_string())
                    .with_artifact("power_log", log_path),
            )
        })?;
        let (on_ms, off_ms) = p.switch.settle_ms();
        self.sleep(Duration::from_millis(if on { on_ms } else { off_ms }))
    }

    pub(super) fn power_set(&mut self, s: &PowerSet) -> StepResult {
        self.power_switch(&s.resource, &s.outlet, s.state)?;
        Ok(data!("resource_name" => s.resource, "outlet" => s.outlet, "state" => s.state))
    }

    pub(super) fn power_cycle(&mut self, s: &PowerCycle) -> StepResult {
        self.power_switch(&s.resource, &s.outlet, false)?;
        self.sleep(Duration::from_millis(s.off_ms))?;
        self.power_switch(&s.resource, &s.outlet, true)?;
        self.sleep(Duration::from_millis(s.on_settle_ms))?;
        Ok(
            data!("resource_name" => s.resource, "outlet" => s.outlet, "off_ms" => s.off_ms, "on_settle_ms" => s.on_settle_ms),
        )
    }

    pub(super) fn power_expect(&mut self, s: &PowerSet) -> StepResult {
        let log_path = self.power_log_path(&s.resource);
        let p = self.session.power.get_mut(&s.resource).ok_or_else(|| {
            StepError::Run(Failure::new(
                Category::PowerResourceUnavailable,
                format!("power resource `{}` is not open", s.resource),
            ))
        })?;
        let state = p.switch.get(&s.outlet).map_err(|e| {
            StepError::Run(hw_failure(&e).with_artifact("power_log", log_path.clone()))
        })?;
        p.log.line(&format!(
            "GET {} {}",
            s.outlet,
            match state {
                Some(true) => "on",
                Some(false) => "off",
                None => "unknown",
            }
        ));
        match state {
            None => Err(StepError::Run(
                Failure::new(
                    Category::PowerReadbackUnavailable,
                    format!(
                        "power resource `{}` cannot report outlet `{}`",
                        s.resource, s.outlet
                    ),
                )
                .with_artifact("power_log", log_path),
            )),
            // BenchCI treats a mismatch as a run error; so does hilt, to keep exit codes equal.
            Some(v) if v != s.state => Err(StepError::Run(
                Failure::new(
                    Category::PowerControlFailed,
                    format!(
                        "outlet {}.{} is {} but {} was expected",
                        s.resource,
                        s.outlet,
                        on_off(v),
                        on_off(s.state)
                    ),
                )
                .with_artifact("power_log", log_path),
            )),
            Some(v) => Ok(data!("resource_name" => s.resource, "outlet" => s.outlet, "state" => v)),
        }
    }
}

fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}
