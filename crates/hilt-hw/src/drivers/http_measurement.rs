//! `http_measurement`: one `GET url` per reading. The body is a bare number, or a JSON
//! object whose `value_field` holds the value (a number or a numeric string) and whose
//! `unit_field` may hold the unit (it wins over the bench's `unit`, as in BenchCI).

use std::collections::BTreeMap;

use hilt_model::bench::ResourceDriver as Params;
use serde_json::Value;

use super::{Opened, Problem, ResourceDriver, resource_lock, wrong_params};
use crate::locks::LockSpec;
use crate::measurement::{Instrument, Reading};
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Measurement;

pub struct HttpMeasurement;

impl ResourceDriver for HttpMeasurement {
    fn tag(&self) -> &'static str {
        "http_measurement"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, params: &Params) -> Vec<Problem> {
        let Params::HttpMeasurement {
            url, timeout_ms, ..
        } = params
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let rest = crate::http::after_scheme(url);
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            out.push(
                Problem::new(
                    "url",
                    format!("`{url}` is not an http:// or https:// URL with a host"),
                )
                .with_help("for example https://meter.lab/api/voltage"),
            );
        }
        if *timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        out
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        let url = match params {
            Params::HttpMeasurement { url, .. } => url.clone(),
            _ => String::new(),
        };
        vec![resource_lock(
            resource,
            params,
            format!("http_measurement:{url}"),
            format!("measurement {resource}"),
            "measurement_http",
        )]
    }

    fn open(&self, _resource: &str, params: &Params) -> Result<Opened, HwError> {
        let Params::HttpMeasurement {
            url,
            quantity,
            unit,
            value_field,
            unit_field,
            headers,
            timeout_ms,
        } = params
        else {
            return Err(wrong_params(KIND, self.tag(), params));
        };
        let agent = crate::http::agent(*timeout_ms);
        Ok(Opened::Instrument(Box::new(Http {
            agent,
            url: url.clone(),
            quantity: quantity.clone(),
            unit: unit.clone(),
            value_field: value_field.clone(),
            unit_field: unit_field.clone(),
            headers: headers.clone(),
        })))
    }
}

struct Http {
    agent: ureq::Agent,
    url: String,
    quantity: String,
    unit: Option<String>,
    value_field: String,
    unit_field: String,
    headers: BTreeMap<String, String>,
}

/// The value and unit in a body; `Err` says what is wrong with it.
fn parse_body(
    body: &str,
    value_field: &str,
    unit_field: &str,
) -> Result<(f64, Option<String>), String> {
    let text = body.trim();
    if let Ok(v) = text.parse::<f64>() {
        return Ok((v, None)).and_then(|(v, u)| finite(v).map(|v| (v, u)));
    }
    let short = &text[..text.floor_char_boundary(120)];
    let json: Value = serde_json::from_str(text)
        .map_err(|_| format!("body {short:?} is neither a number nor JSON"))?;
    let Value::Object(o) = &json else {
        return match json.as_f64() {
            Some(v) => finite(v).map(|v| (v, None)),
            None => Err(format!("body {short:?} is not a number or a JSON object")),
        };
    };
    let v = match o.get(value_field) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("body {short:?} has no numeric `{value_field}`"))?;
    let unit = match o.get(unit_field) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    finite(v).map(|v| (v, unit))
}

fn finite(v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{v} is not a finite reading"))
    }
}

impl Instrument for Http {
    fn read(&mut self) -> Result<Reading, HwError> {
        let fail = |e: &dyn std::fmt::Display| {
            HwError::io(KIND, "HTTP measurement", format!("GET {}: {e}", self.url))
        };
        let body = crate::http::request(&self.agent, "GET", &self.url, &self.headers)
            .map_err(|e| fail(&e))?;
        let (value, unit) =
            parse_body(&body, &self.value_field, &self.unit_field).map_err(|e| fail(&e))?;
        Ok(Reading {
            value,
            unit: unit.or_else(|| self.unit.clone()),
            quantity: self.quantity.clone(),
            backend: "http_measurement".into(),
            address: Some(self.url.clone()),
            query: None,
            raw_response: Some(body.trim().chars().take(200).collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_body;

    #[test]
    fn bodies() {
        assert_eq!(parse_body(" 0.042\n", "value", "unit"), Ok((0.042, None)));
        assert_eq!(
            parse_body(r#"{"value": 1.5, "unit": "V"}"#, "value", "unit"),
            Ok((1.5, Some("V".into())))
        );
        assert_eq!(
            parse_body(r#"{"mA": "12.5"}"#, "mA", "unit"),
            Ok((12.5, None))
        );
        assert!(
            parse_body("<html>", "value", "unit")
                .unwrap_err()
                .contains("neither")
        );
        assert!(
            parse_body(r#"{"v": 1}"#, "value", "unit")
                .unwrap_err()
                .contains("no numeric `value`")
        );
        assert!(parse_body("NaN", "value", "unit").is_err());
    }
}
