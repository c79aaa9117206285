//! Per-test steps with their timings, read back from the run's `events.jsonl`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use hilt_model::run::EventKind;
use jiff::Timestamp;
use serde_json::Value;

/// The page reads at most this much of the event log (a 20,000-step run logs a few MB).
const MAX_EVENT_BYTES: u64 = 16 << 20;
/// And shows at most this many steps in all; the rest are counted.
pub const MAX_STEPS: usize = 5_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped,
    /// Started, never finished (the run was cancelled or crashed there).
    Open,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub index: u64,
    pub kind: String,
    pub started: Option<Timestamp>,
    pub ms: Option<f64>,
    pub outcome: Outcome,
    /// A short `key=value` digest of what the step reported (matched text, outlet…).
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct TestTimes {
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Default)]
pub struct Timeline {
    pub tests: HashMap<String, TestTimes>,
    /// Steps beyond [`MAX_STEPS`], or beyond the part of the log that was read.
    pub steps_left_out: u64,
    pub truncated: bool,
}

/// Keys of a step event that say nothing a reader of the page needs.
const PLUMBING: &[&str] = &[
    "test_name",
    "test_index",
    "tests_total",
    "step_index",
    "steps_total",
    "step_type",
    // Shown with the outcome already.
    "failure",
    "error",
];

pub fn read(dir: &Path) -> Timeline {
    let mut t = Timeline::default();
    let Ok(f) = std::fs::File::open(dir.join("events.jsonl")) else {
        return t;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    t.truncated = len > MAX_EVENT_BYTES;
    let mut shown = 0usize;
    for line in BufReader::new(f.take(MAX_EVENT_BYTES)).lines() {
        let Ok(line) = line else { break };
        // Past the cap, step events are only counted, not parsed (a long run logs many).
        if shown >= MAX_STEPS && line.contains("\"step.") {
            if line.contains("\"step.started\"") {
                t.steps_left_out += 1;
            }
            continue;
        }
        let Ok(ev) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let kind = ev["event_type"].as_str().unwrap_or_default();
        let data = &ev["data"];
        let Some(test) = data["test_name"].as_str() else {
            continue;
        };
        let at = ev["timestamp"]
            .as_str()
            .and_then(|s| s.parse::<Timestamp>().ok());
        let entry = t.tests.entry(test.to_string()).or_default();
        match kind {
            EventKind::TEST_STARTED => entry.started = at,
            EventKind::TEST_FINISHED => entry.finished = at,
            EventKind::STEP_STARTED => {
                if shown >= MAX_STEPS {
                    t.steps_left_out += 1;
                    continue;
                }
                shown += 1;
                entry.steps.push(Step {
                    index: data["step_index"].as_u64().unwrap_or(0),
                    kind: data["step_type"].as_str().unwrap_or("step").to_string(),
                    started: at,
                    ms: None,
                    outcome: Outcome::Open,
                    detail: String::new(),
                });
            }
            EventKind::STEP_FINISHED | EventKind::STEP_FAILED | EventKind::STEP_SKIPPED => {
                let index = data["step_index"].as_u64().unwrap_or(0);
                let Some(step) = entry
                    .steps
                    .iter_mut()
                    .rev()
                    .find(|s| s.index == index && s.outcome == Outcome::Open)
                else {
                    continue;
                };
                step.ms = match (step.started, at) {
                    (Some(a), Some(b)) => Some(b.duration_since(a).as_secs_f64() * 1000.0),
                    _ => None,
                };
                step.outcome = match kind {
                    EventKind::STEP_FINISHED => Outcome::Passed,
                    EventKind::STEP_SKIPPED => Outcome::Skipped,
                    _ => Outcome::Failed(
                        ev["message"]
                            .as_str()
                            .or(data["error"].as_str())
                            .unwrap_or("failed")
                            .to_string(),
                    ),
                };
                step.detail = digest(data);
            }
            _ => {}
        }
    }
    t
}

/// `key=value` pairs of a step event's data, plumbing left out, each value cut short.
fn digest(data: &Value) -> String {
    let Some(map) = data.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(k, v)| !PLUMBING.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={}", cut(&v, 80))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_get_durations_outcomes_and_a_digest() {
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            r#"{"seq":1,"timestamp":"2026-01-01T00:00:00.000000Z","event_type":"test.started","data":{"test_name":"t"}}"#,
            r#"{"seq":2,"timestamp":"2026-01-01T00:00:00.000000Z","event_type":"step.started","data":{"test_name":"t","step_index":1,"step_type":"send_uart"}}"#,
            r#"{"seq":3,"timestamp":"2026-01-01T00:00:00.002500Z","event_type":"step.finished","data":{"test_name":"t","step_index":1,"step_type":"send_uart","node_name":"dut"}}"#,
            r#"{"seq":4,"timestamp":"2026-01-01T00:00:00.003000Z","event_type":"step.started","data":{"test_name":"t","step_index":2,"step_type":"expect_uart"}}"#,
            r#"{"seq":5,"timestamp":"2026-01-01T00:00:00.303000Z","event_type":"step.failed","message":"no PONG","data":{"test_name":"t","step_index":2}}"#,
            "not json",
            r#"{"seq":6,"timestamp":"2026-01-01T00:00:00.304000Z","event_type":"test.finished","data":{"test_name":"t"}}"#,
        ];
        std::fs::write(dir.path().join("events.jsonl"), lines.join("\n")).unwrap();
        let t = read(dir.path());
        let test = &t.tests["t"];
        assert!(test.started.is_some() && test.finished.is_some());
        assert_eq!(test.steps.len(), 2);
        assert_eq!(test.steps[0].outcome, Outcome::Passed);
        assert!((test.steps[0].ms.unwrap() - 2.5).abs() < 1e-6);
        assert_eq!(test.steps[0].detail, "node_name=dut");
        assert_eq!(test.steps[1].outcome, Outcome::Failed("no PONG".into()));
        assert!((test.steps[1].ms.unwrap() - 300.0).abs() < 1e-6);
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("héllo", 2), "hé…");
        assert_eq!(cut("hi", 5), "hi");
    }
}
