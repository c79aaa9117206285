//! The failure object of results.json (run-results spec §9).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Category, Source};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub category: Category,
    pub source: Source,
    pub title: String,
    pub message: String,
    pub explanation: String,
    pub suggestions: Vec<String>,
    pub failed_step: FailedStep,
    pub artifacts: Map<String, Value>,
    pub details: Map<String, Value>,
    pub raw_error: String,
}

/// Where the failure happened. Null/empty entries are dropped when serialized.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailedStep {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps_total: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_name: Option<String>,
}

impl Failure {
    /// A failure with the category's defaults; `suggestions` come first, then the
    /// category's own, de-duplicated.
    pub fn new(category: Category, message: impl Into<String>) -> Failure {
        let message = message.into();
        Failure {
            category,
            source: category.default_source(),
            title: category.title().to_string(),
            explanation: category.explanation().to_string(),
            suggestions: category
                .suggestions()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            failed_step: FailedStep::default(),
            artifacts: Map::new(),
            details: Map::new(),
            raw_error: message.clone(),
            message,
        }
    }

    pub fn with_source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    pub fn with_explanation(mut self, e: impl Into<String>) -> Self {
        self.explanation = e.into();
        self
    }

    /// Adds caller-supplied checks in front of the category's defaults. A default that says
    /// the same as a check already listed (see [`near_duplicate`]) is left out: the
    /// caller's, more specific wording wins.
    pub fn with_suggestions<I: IntoIterator<Item = String>>(mut self, s: I) -> Self {
        let mut all: Vec<String> = Vec::new();
        for d in s.into_iter().chain(std::mem::take(&mut self.suggestions)) {
            if !all.iter().any(|a| near_duplicate(a, &d)) {
                all.push(d);
            }
        }
        self.suggestions = all;
        self
    }

    pub fn with_artifact(mut self, key: &str, path: impl Into<String>) -> Self {
        self.artifacts
            .insert(key.to_string(), Value::String(path.into()));
        self
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        let v = value.into();
        if !v.is_null() {
            self.details.insert(key.to_string(), v);
        }
        self
    }

    /// `"<title>: <message>"`, or just the title when they say the same.
    pub fn summary(&self) -> String {
        if self.message.is_empty() || self.message == self.title {
            self.title.clone()
        } else {
            format!("{}: {}", self.title, self.message)
        }
    }
}

/// Words that carry no meaning for comparing two checks.
const FILLER: &[&str] = &[
    "a", "an", "and", "the", "of", "to", "is", "are", "it", "its", "that", "this", "on", "in",
    "for", "or", "with", "check", "make", "sure", "see", "if", "be", "not",
];

fn content_words(s: &str) -> std::collections::BTreeSet<String> {
    s.split(|c: char| !c.is_alphanumeric() && c != '`' && c != '_' && c != '.')
        .map(|w| w.trim_matches('.').to_lowercase())
        .filter(|w| !w.is_empty() && !FILLER.contains(&w.as_str()))
        .collect()
}

/// Whether two checks say essentially the same thing: the content words of one are all in
/// the other ("Check baud rate, wiring and ground." and "Check TX/RX wiring, ground and the
/// baud rate."), or they share at least 3/4 of their content words.
pub fn near_duplicate(a: &str, b: &str) -> bool {
    let (x, y) = (content_words(a), content_words(b));
    if x.is_empty() || y.is_empty() {
        return a.trim().eq_ignore_ascii_case(b.trim());
    }
    let common = x.intersection(&y).count();
    common == x.len() || common == y.len() || 4 * common >= 3 * x.len().max(y.len())
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[test]
    fn the_uart_wiring_checks_are_one() {
        let f =
            Failure::new(Category::UartExpectationFailed, "nothing received").with_suggestions([
                "Check that the device is powered and out of reset.".to_string(),
                "Check TX/RX wiring, ground and the baud rate.".to_string(),
            ]);
        let wiring: Vec<&String> = f
            .suggestions
            .iter()
            .filter(|s| s.contains("wiring"))
            .collect();
        assert_eq!(wiring.len(), 1, "{:#?}", f.suggestions);
        assert_eq!(wiring[0], "Check TX/RX wiring, ground and the baud rate.");
    }

    #[test]
    fn different_checks_are_kept() {
        assert!(!near_duplicate(
            "Check chip and line numbers.",
            "Check active_high and bias."
        ));
        assert!(!near_duplicate(
            "Check that the port exists and is not used by another program.",
            "Check the USB cable and adapter."
        ));
    }

    /// No category lists two checks that say the same, and no caller-supplied check
    /// survives next to a default that repeats it.
    #[test]
    fn no_failure_lists_near_duplicate_checks() {
        for c in Category::ALL {
            let s = c.suggestions();
            for (i, a) in s.iter().enumerate() {
                for b in &s[i + 1..] {
                    assert!(!near_duplicate(a, b), "{}: {a:?} ~ {b:?}", c.as_str());
                }
            }
            // Every other category's checks offered as caller-supplied ones.
            for other in Category::ALL {
                let f = Failure::new(*c, "m")
                    .with_suggestions(other.suggestions().iter().map(|s| s.to_string()));
                for (i, a) in f.suggestions.iter().enumerate() {
                    for b in &f.suggestions[i + 1..] {
                        assert!(
                            !near_duplicate(a, b),
                            "{} + {}: {a:?} ~ {b:?}",
                            c.as_str(),
                            other.as_str()
                        );
                    }
                }
            }
        }
    }
}
