//! The one error shape: `{"error", "detail"}` (BenchCI clients read either).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The same text (BenchCI's framework errors use `detail`).
    pub detail: String,
    /// hilt extension: a machine-readable reason where a client must act on it
    /// (`run_cancelled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl ErrorBody {
    pub fn new(text: impl Into<String>) -> ErrorBody {
        let error = text.into();
        ErrorBody {
            detail: error.clone(),
            error,
            code: None,
        }
    }

    pub fn with_code(mut self, code: &str) -> ErrorBody {
        self.code = Some(code.to_string());
        self
    }
}
