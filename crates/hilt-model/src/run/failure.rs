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

    /// Adds caller-supplied checks in front of the category's defaults.
    pub fn with_suggestions<I: IntoIterator<Item = String>>(mut self, s: I) -> Self {
        let mut all: Vec<String> = s.into_iter().collect();
        for d in std::mem::take(&mut self.suggestions) {
            if !all.contains(&d) {
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
