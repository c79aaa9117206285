//! measure and assert_metric.
//!
//! Difference from BenchCI, on purpose: a reading outside the suite's limits fails the *test*
//! (category MEASUREMENT_ASSERTION_FAILED) and the run continues, instead of aborting the
//! run with status `error`. A unit mismatch or an unknown metric still aborts the run.

use hilt_model::run::{Category, Failure, Metric};
use hilt_model::suite::{AssertMetric, Assertion, Measure};

use super::{Exec, StepError, StepResult};
use crate::classify::hw_failure;
use crate::data;

/// Checks `v` against the assertion; `Err` carries the violated rule. `Ok` carries the rule
/// text (or None when there are no limits).
pub fn check(a: &Assertion, v: f64) -> Result<Option<String>, String> {
    let mut rules = Vec::new();
    let mut broken = Vec::new();
    let mut rule = |ok: bool, text: String| {
        if !ok {
            broken.push(text.clone());
        }
        rules.push(text);
    };
    if let Some(x) = a.expect_less_than {
        rule(v < x, format!("< {x}"));
    }
    if let Some(x) = a.expect_less_than_or_equal {
        rule(v <= x, format!("<= {x}"));
    }
    if let Some(x) = a.expect_greater_than {
        rule(v > x, format!("> {x}"));
    }
    if let Some(x) = a.expect_greater_than_or_equal {
        rule(v >= x, format!(">= {x}"));
    }
    if let Some(x) = a.expect_equal {
        rule(
            (v - x).abs() <= a.tolerance,
            format!("== {x} ± {}", a.tolerance),
        );
    }
    if broken.is_empty() {
        Ok((!rules.is_empty()).then(|| rules.join(" and ")))
    } else {
        Err(broken.join(" and "))
    }
}

impl Exec<'_> {
    pub(super) fn measure(&mut self, m: &Measure) -> StepResult {
        let log_path = self
            .logs_dir()
            .join("resources")
            .join(&m.resource)
            .join("measurement.log")
            .display()
            .to_string();
        let inst = self
            .session
            .instruments
            .get_mut(&m.resource)
            .ok_or_else(|| {
                StepError::Run(Failure::new(
                    Category::MeasurementResourceUnavailable,
                    format!("measurement resource `{}` is not open", m.resource),
                ))
            })?;
        let r = inst.inst.read().map_err(|e| {
            StepError::Run(hw_failure(&e).with_artifact("measurement_log", log_path.clone()))
        })?;
        inst.log.line(&format!(
            "READ value={} unit={} quantity={}",
            r.value,
            r.unit.as_deref().unwrap_or("-"),
            r.quantity
        ));
        if let Some(want) = &m.unit
            && r.unit.as_deref() != Some(want.as_str())
        {
            return Err(StepError::Run(
                Failure::new(
                    Category::MeasurementFailed,
                    format!(
                        "resource `{}` reported unit {:?} but the step expects {want:?}",
                        m.resource,
                        r.unit.as_deref().unwrap_or("none")
                    ),
                )
                .with_source(hilt_model::run::Source::Configuration)
                .with_artifact("measurement_log", log_path),
            ));
        }
        let name = m.record_as.clone().unwrap_or_else(|| m.resource.clone());
        let verdict = check(&m.assertion, r.value);
        let metric = Metric {
            name: name.clone(),
            resource: Some(m.resource.clone()),
            value: r.value,
            unit: r.unit.clone(),
            quantity: Some(r.quantity.clone()),
            timestamp: hilt_model::run::now(),
            backend: Some(r.backend.clone()),
            address: r.address.clone(),
            query: r.query.clone(),
            raw_response: r.raw_response.clone(),
            assertion: match &verdict {
                Ok(rule) => rule.clone(),
                Err(rule) => Some(format!("{rule} (violated)")),
            },
        };
        self.record(metric);
        match verdict {
            Ok(_) => Ok(
                data!("resource_name" => m.resource, "metric" => name, "value" => r.value, "unit" => r.unit),
            ),
            Err(rule) => Err(StepError::Test(
                Failure::new(
                    Category::MeasurementAssertionFailed,
                    format!(
                        "{name} = {} {} violates {rule}",
                        r.value,
                        r.unit.as_deref().unwrap_or("")
                    )
                    .replace("  ", " "),
                )
                .with_artifact("measurement_log", log_path)
                .with_detail("metric", name)
                .with_detail("value", r.value),
            )),
        }
    }

    pub(super) fn assert_metric(&mut self, a: &AssertMetric) -> StepResult {
        let Some(metric) = self.metrics.get(&a.name) else {
            let known: Vec<&str> = self.metrics.keys().map(String::as_str).collect();
            return Err(StepError::Run(
                Failure::new(
                    Category::MeasurementFailed,
                    format!(
                        "unknown metric `{}`: no earlier `measure` in this run recorded it",
                        a.name
                    ),
                )
                .with_source(hilt_model::run::Source::Configuration)
                .with_detail("known_metrics", known.join(", ")),
            ));
        };
        let v = metric["value"].as_f64().unwrap_or(f64::NAN);
        match check(&a.assertion, v) {
            Ok(_) => Ok(data!("metric" => a.name, "value" => v)),
            Err(rule) => Err(StepError::Test(
                Failure::new(
                    Category::MeasurementAssertionFailed,
                    format!("metric {} = {v} violates {rule}", a.name),
                )
                .with_detail("metric", a.name.clone()),
            )),
        }
    }

    fn record(&mut self, m: Metric) {
        if let Ok(v) = serde_json::to_value(&m) {
            self.metrics.insert(m.name.clone(), v);
        }
        self.measurements.push(m.clone());
        self.test_measurements.push(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let a = Assertion {
            expect_less_than: Some(0.015),
            expect_greater_than: Some(0.0),
            ..Default::default()
        };
        assert_eq!(check(&a, 0.01), Ok(Some("< 0.015 and > 0".into())));
        assert_eq!(check(&a, 0.02), Err("< 0.015".into()));
        let e = Assertion {
            expect_equal: Some(3.3),
            tolerance: 0.1,
            ..Default::default()
        };
        assert!(check(&e, 3.35).is_ok());
        assert!(check(&e, 3.5).is_err());
        assert_eq!(check(&Assertion::default(), 1.0), Ok(None));
    }
}
