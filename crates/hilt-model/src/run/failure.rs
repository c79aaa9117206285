//! The failure object of results.json (run-results spec §9).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Category, Check, Source};

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
                .map(|c| c.text().to_string())
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

    /// Puts checks the caller knows to be relevant in front of the category's defaults.
    /// A check already listed is not listed again (checks are written once, in
    /// [`super::checks`], so the same advice is always the same text).
    pub fn with_suggestions<I: IntoIterator<Item = Check>>(mut self, checks: I) -> Self {
        let mut all: Vec<String> = Vec::new();
        let first = checks.into_iter().map(|c| c.text().to_string());
        for s in first.chain(std::mem::take(&mut self.suggestions)) {
            if !all.contains(&s) {
                all.push(s);
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

#[cfg(test)]
mod check_tests {
    use super::*;
    use crate::run::checks;

    #[test]
    fn a_check_the_caller_adds_is_listed_once() {
        let f = Failure::new(Category::UartExpectationFailed, "nothing received")
            .with_suggestions([checks::DEVICE_POWERED, checks::UART_WIRING]);
        assert_eq!(
            f.suggestions,
            [
                checks::DEVICE_POWERED,
                checks::UART_WIRING,
                checks::FIRMWARE_PRINTS_TEXT,
                checks::OPEN_TRANSPORT_LOG
            ]
            .map(|c| c.text().to_string())
        );
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

    /// The catalogue holds no reworded copy: no check's content words are all in another,
    /// and no two share 3/4 of them ("Check baud rate, wiring and ground." next to "Check
    /// TX/RX wiring, ground and the baud rate." is what this keeps out).
    #[test]
    fn the_catalogue_has_no_reworded_copies() {
        for (i, a) in checks::ALL.iter().enumerate() {
            for b in &checks::ALL[i + 1..] {
                assert_ne!(a, b);
                let (x, y) = (content_words(a.text()), content_words(b.text()));
                let common = x.intersection(&y).count();
                let same = common == x.len()
                    || common == y.len()
                    || 4 * common >= 3 * x.len().max(y.len());
                assert!(!same, "{a:?} ~ {b:?}: say it once in run/checks.rs");
            }
        }
    }

    #[test]
    fn no_category_lists_a_check_twice() {
        for c in Category::ALL {
            let s = c.suggestions();
            for (i, a) in s.iter().enumerate() {
                assert!(!s[i + 1..].contains(a), "{}: {a} twice", c.as_str());
            }
        }
    }
}
