//! A synced bench's health judged per resource: its effective status (healthy, degraded,
//! failing, unknown — or `malformed`, never scheduled) and what each warning or failing
//! check concerns, so a degraded bench still takes suites that do not touch the broken part.

use hilt_api::CloudBench;
use serde_json::Value;

/// The statuses a bench may report; anything else is `malformed`.
const KNOWN: [&str; 4] = ["healthy", "degraded", "failing", "unknown"];

/// The bench's health status as the scheduler sees it: `None` when the bench reports no
/// health at all, `malformed` when the report is not a compact health object or its two
/// statuses (`health_status`, `health.status`) disagree, or its check lists are not lists
/// of checks with an `id`.
pub fn status(b: &CloudBench) -> Option<String> {
    let inner = match b.rest.get("health") {
        None | Some(Value::Null) => None,
        Some(Value::Object(h)) => {
            // The check lists must be lists of checks with an id, or the warnings could
            // not be judged per resource.
            let checks_ok = ["failing_checks", "warning_checks"]
                .iter()
                .all(|k| match h.get(*k) {
                    None | Some(Value::Null) => true,
                    Some(Value::Array(items)) => items
                        .iter()
                        .all(|c| c.get("id").is_some_and(Value::is_string)),
                    Some(_) => false,
                });
            match h.get("status") {
                Some(Value::String(s)) if checks_ok => Some(s.clone()),
                _ => return Some("malformed".into()),
            }
        }
        Some(_) => return Some("malformed".into()),
    };
    let status = match (b.health_status.clone(), inner) {
        (Some(a), Some(b)) if a != b => return Some("malformed".into()),
        (a, b) => a.or(b)?,
    };
    Some(if KNOWN.contains(&status.as_str()) {
        status
    } else {
        "malformed".into()
    })
}

/// One warning or failing check: (check id, what it concerns, message).
pub type Concern = (String, String, Option<String>);

/// The warning and failing checks of the compact health (self-test-and-locks §2) with what
/// each concerns.
pub fn concerns(b: &CloudBench) -> Vec<Concern> {
    let Some(h) = b.rest.get("health").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out: Vec<Concern> = Vec::new();
    for key in ["failing_checks", "warning_checks"] {
        for check in h.get(key).and_then(Value::as_array).into_iter().flatten() {
            let Some(id) = check.get("id").and_then(Value::as_str) else {
                continue;
            };
            if out.iter().any(|(c, _, _)| c == id) {
                continue;
            }
            let message = check
                .get("message")
                .or_else(|| check.get("title"))
                .and_then(Value::as_str)
                .map(str::to_string);
            out.push((
                id.to_string(),
                concern_of(id, check.get("details")),
                message,
            ));
        }
    }
    out
}

/// What a check concerns, from its `details` (`resource`, `node`, `transport`) or else its
/// id (`resource.<r>…`, `node.<n>.transport.<t>…`, `node.<n>.gpio…`, `node.<n>.flash…`,
/// `node.<n>.reset…`, `node.<n>…`); `bench` for a check about the bench as a whole.
pub fn concern_of(id: &str, details: Option<&Value>) -> String {
    let detail = |k: &str| details.and_then(|d| d.get(k)).and_then(Value::as_str);
    if let Some(r) = detail("resource") {
        return format!("resource:{r}");
    }
    let parts: Vec<&str> = id.split('.').collect();
    match parts.as_slice() {
        ["resource", r, ..] => format!("resource:{r}"),
        ["node", n, "transport", t, ..] => format!("transport:{n}.{t}"),
        ["node", n, "gpio", ..] => format!("gpio:{n}"),
        ["node", n, "flash" | "reset", ..] => format!("flash:{n}"),
        ["node", n, ..] => match (detail("transport"), detail("node")) {
            (Some(t), _) => format!("transport:{n}.{t}"),
            _ => format!("node:{n}"),
        },
        _ => match (detail("node"), detail("transport")) {
            (Some(n), Some(t)) => format!("transport:{n}.{t}"),
            (Some(n), None) => format!("node:{n}"),
            _ => "bench".into(),
        },
    }
}

/// The labels a bench offers: `tag:<t>` for its tags, `cap:<c>` for its capabilities
/// (`gpio`, `power`, `measurements`, `transport:<t>`, `flash:<b>`, `power:<b>`,
/// `measurement:<b>`).
pub fn labels(b: &CloudBench) -> Vec<String> {
    let mut out: Vec<String> = b.tags.iter().map(|t| format!("tag:{}", t.trim())).collect();
    if let Some(c) = b.rest.get("capabilities").and_then(Value::as_object) {
        let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
        for (key, cap) in [
            ("has_gpio", "gpio"),
            ("has_power", "power"),
            ("has_measurements", "measurements"),
        ] {
            if flag(key) {
                out.push(format!("cap:{cap}"));
            }
        }
        for (key, prefix) in [
            ("transports", "transport"),
            ("flash_backends", "flash"),
            ("power_backends", "power"),
            ("measurement_backends", "measurement"),
        ] {
            for v in c.get(key).and_then(Value::as_array).into_iter().flatten() {
                if let Some(s) = v.as_str() {
                    out.push(format!("cap:{prefix}:{s}"));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bench(v: Value) -> CloudBench {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn status_is_malformed_when_unclear() {
        let s = |v| status(&bench(v));
        assert_eq!(s(json!({"bench_id": "a"})), None);
        assert_eq!(
            s(json!({"bench_id": "a", "health_status": "healthy"})).as_deref(),
            Some("healthy")
        );
        assert_eq!(
            s(json!({"bench_id": "a", "health": {"status": "degraded"}})).as_deref(),
            Some("degraded")
        );
        for bad in [
            json!({"bench_id": "a", "health": "ok"}),
            json!({"bench_id": "a", "health": {"status": 3}}),
            json!({"bench_id": "a", "health_status": "fine"}),
            json!({"bench_id": "a", "health_status": "healthy", "health": {"status": "failing"}}),
            json!({"bench_id": "a", "health": {"status": "degraded", "warning_checks": "psu"}}),
            json!({"bench_id": "a", "health": {"status": "degraded", "warning_checks": [{"x": 1}]}}),
        ] {
            assert_eq!(s(bad.clone()).as_deref(), Some("malformed"), "{bad}");
        }
    }

    #[test]
    fn concerns_name_the_part_of_the_bench() {
        assert_eq!(concern_of("resource.psu.power.start", None), "resource:psu");
        assert_eq!(
            concern_of("node.dut.transport.console.open", None),
            "transport:dut.console"
        );
        assert_eq!(concern_of("node.dut.gpio.led", None), "gpio:dut");
        assert_eq!(concern_of("node.dut.flash.tool", None), "flash:dut");
        assert_eq!(concern_of("node.dut.reset.tool", None), "flash:dut");
        assert_eq!(concern_of("default_node", None), "bench");
        assert_eq!(
            concern_of("x", Some(&json!({"resource": "meter"}))),
            "resource:meter"
        );
    }

    #[test]
    fn labels_cover_tags_and_capabilities() {
        let b = bench(json!({"bench_id": "a", "tags": ["stm32"], "capabilities":
            {"transports": ["uart"], "has_gpio": true, "power_backends": ["mock_power"]}}));
        assert_eq!(
            labels(&b),
            [
                "cap:gpio",
                "cap:power:mock_power",
                "cap:transport:uart",
                "tag:stm32"
            ]
        );
    }
}
