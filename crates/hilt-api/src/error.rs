//! The one error shape: `{"error", "detail"}` (BenchCI clients read either).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The same text (BenchCI's framework errors use `detail`).
    pub detail: String,
}

impl ErrorBody {
    pub fn new(text: impl Into<String>) -> ErrorBody {
        let error = text.into();
        ErrorBody {
            detail: error.clone(),
            error,
        }
    }
}
