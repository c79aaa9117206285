//! `http_relay`: a relay board switched by HTTP requests (bench-format spec §4).
//!
//! `on_url` / `off_url` (and `get_url` for readback) are templates with `{outlet}`,
//! `{channel}`, `{state}` (`true`/`false`) and `{value}` (`1`/`0`); switching sends
//! `method` (GET, POST or PUT, no body) with `headers`; any 2xx answer is success.
//! Readback GETs `get_url` and matches the lower-cased body, else any value of a JSON
//! object, against `on_values` / `off_values`. Without `get_url` the driver reports the
//! last state it set, and nothing before the first switch.

use std::collections::BTreeMap;

use hilt_model::bench::ResourceDriver as Params;

use super::{Opened, Problem, ResourceDriver, resource_lock, wrong_params};
use crate::locks::LockSpec;
use crate::power::PowerSwitch;
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Power;
const PLACEHOLDERS: &[&str] = &["outlet", "channel", "state", "value"];

pub struct HttpRelay;

impl ResourceDriver for HttpRelay {
    fn tag(&self) -> &'static str {
        "http_relay"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, params: &Params) -> Vec<Problem> {
        let Params::HttpRelay {
            on_url,
            off_url,
            get_url,
            timeout_ms,
            ..
        } = params
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (field, url) in [
            ("on_url", Some(on_url)),
            ("off_url", Some(off_url)),
            ("get_url", get_url.as_ref()),
        ] {
            if let Some(url) = url
                && let Err(p) = check_template(url)
            {
                out.push(Problem {
                    field: field.into(),
                    ..p
                });
            }
        }
        if *timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        out
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        let (on, off) = match params {
            Params::HttpRelay {
                on_url, off_url, ..
            } => (on_url.as_str(), off_url.as_str()),
            _ => ("", ""),
        };
        vec![resource_lock(
            resource,
            params,
            format!("http_relay:{on}:{off}"),
            format!("HTTP relay {resource}"),
            "power_http_relay",
        )]
    }

    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError> {
        let Params::HttpRelay {
            outlets,
            on_url,
            off_url,
            get_url,
            method,
            headers,
            timeout_ms,
            on_values,
            off_values,
            on_settle_ms,
            off_settle_ms,
        } = params
        else {
            return Err(wrong_params(KIND, self.tag(), params));
        };
        for url in [Some(on_url), Some(off_url), get_url.as_ref()]
            .into_iter()
            .flatten()
        {
            check_template(url)
                .map_err(|p| HwError::open(KIND, "HTTP relay", resource, p.message))?;
        }
        let agent = crate::http::agent(*timeout_ms);
        Ok(Opened::Power(Box::new(Relay {
            resource: resource.to_string(),
            agent,
            outlets: outlets.clone(),
            on_url: on_url.clone(),
            off_url: off_url.clone(),
            get_url: get_url.clone(),
            method: method.to_ascii_uppercase(),
            headers: headers.clone(),
            on_values: lower(on_values),
            off_values: lower(off_values),
            settle: (*on_settle_ms, *off_settle_ms),
            last: BTreeMap::new(),
        })))
    }
}

fn lower(v: &[String]) -> Vec<String> {
    v.iter().map(|s| s.trim().to_ascii_lowercase()).collect()
}

/// A URL template must be `http://` or `https://` (TLS: `tls.rs`) and use only the known
/// placeholders.
fn check_template(url: &str) -> Result<(), Problem> {
    let rest = crate::http::after_scheme(url).ok_or_else(|| {
        Problem::new("", format!("`{url}` is not an http:// or https:// URL"))
            .with_help("for example https://relay.lab/relay/{channel}/on")
    })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(Problem::new("", format!("`{url}` has no host")));
    }
    let mut tail = url;
    while let Some(open) = tail.find('{') {
        let after = &tail[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(Problem::new("", format!("`{url}` has an unclosed `{{`")));
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(
                Problem::new("", format!("unknown placeholder `{{{name}}}` in `{url}`"))
                    .with_help("placeholders: {outlet}, {channel}, {state}, {value}"),
            );
        }
        tail = &after[close + 1..];
    }
    Ok(())
}

struct Relay {
    resource: String,
    agent: ureq::Agent,
    outlets: BTreeMap<String, String>,
    on_url: String,
    off_url: String,
    get_url: Option<String>,
    method: String,
    headers: BTreeMap<String, String>,
    on_values: Vec<String>,
    off_values: Vec<String>,
    settle: (u64, u64),
    last: BTreeMap<String, bool>,
}

impl Relay {
    fn channel(&self, outlet: &str) -> Result<&str, HwError> {
        self.outlets.get(outlet).map(String::as_str).ok_or_else(|| {
            HwError::unsupported(
                KIND,
                format!("HTTP relay {} has no outlet `{outlet}`", self.resource),
            )
        })
    }

    fn url(template: &str, outlet: &str, channel: &str, on: Option<bool>) -> String {
        let mut s = template
            .replace("{outlet}", outlet)
            .replace("{channel}", channel);
        if let Some(on) = on {
            s = s
                .replace("{state}", if on { "true" } else { "false" })
                .replace("{value}", if on { "1" } else { "0" });
        }
        s
    }

    /// Sends one request; a non-2xx status is an error naming the URL and the answer.
    fn request(&self, method: &str, url: &str) -> Result<String, HwError> {
        crate::http::request(&self.agent, method, url, &self.headers)
            .map_err(|e| HwError::io(KIND, "HTTP relay", format!("{method} {url}: {e}")))
    }

    /// Reads `on`/`off` out of a readback body.
    fn parse_state(&self, body: &str) -> Option<bool> {
        let matches = |v: &str| {
            let v = v.trim().to_ascii_lowercase();
            if self.on_values.contains(&v) {
                Some(true)
            } else if self.off_values.contains(&v) {
                Some(false)
            } else {
                None
            }
        };
        if let Some(s) = matches(body) {
            return Some(s);
        }
        match serde_json::from_str::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(m)) => m.values().find_map(|v| match v {
                serde_json::Value::String(s) => matches(s),
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
                    matches(&v.to_string())
                }
                _ => None,
            }),
            _ => None,
        }
    }
}

impl PowerSwitch for Relay {
    fn set(&mut self, outlet: &str, on: bool) -> Result<(), HwError> {
        let channel = self.channel(outlet)?;
        let template = if on { &self.on_url } else { &self.off_url };
        let url = Relay::url(template, outlet, channel, Some(on));
        self.request(&self.method, &url)?;
        self.last.insert(outlet.to_string(), on);
        Ok(())
    }

    fn get(&mut self, outlet: &str) -> Result<Option<bool>, HwError> {
        let channel = self.channel(outlet)?;
        let Some(template) = &self.get_url else {
            return Ok(self.last.get(outlet).copied());
        };
        let url = Relay::url(template, outlet, channel, None);
        let body = self.request("GET", &url)?;
        self.parse_state(&body).map(Some).ok_or_else(|| {
            let text = body.trim();
            HwError::io(
                KIND,
                "HTTP relay readback",
                format!(
                    "GET {url} answered `{}`, which is neither an on value ({}) nor an off value ({})",
                    &text[..text.floor_char_boundary(200)],
                    self.on_values.join(", "),
                    self.off_values.join(", ")
                ),
            )
        })
    }

    fn settle_ms(&self) -> (u64, u64) {
        self.settle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked() {
        assert!(check_template("http://relay/{channel}/{value}").is_ok());
        assert!(check_template("http:///x").is_err());
        assert!(check_template("https://relay/{channel}").is_ok());
        assert!(check_template("ftp://relay/{channel}").is_err());
        let e = check_template("http://relay/{chan}").unwrap_err();
        assert!(e.message.contains("{chan}"), "{}", e.message);
        assert!(check_template("http://relay/{channel").is_err());
    }

    #[test]
    fn urls_are_filled_in() {
        assert_eq!(
            Relay::url(
                "http://r/{outlet}/{channel}?s={state}&v={value}",
                "dut",
                "3",
                Some(true)
            ),
            "http://r/dut/3?s=true&v=1"
        );
        assert_eq!(
            Relay::url("http://r/{channel}?s={state}", "dut", "3", Some(false)),
            "http://r/3?s=false"
        );
    }
}
