//! Errors of the HTTP API: one JSON shape, `{"error": "...", "detail": "..."}` (both keys,
//! so BenchCI clients reading either find the text), and an exhaustive status mapping.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Missing Authorization header")]
    MissingToken,
    #[error("Invalid token")]
    BadToken,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken => StatusCode::UNAUTHORIZED,
            ApiError::BadToken => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            axum::Json(hilt_api::ErrorBody::new(self.to_string())),
        )
            .into_response()
    }
}

/// Turns axum's JSON extractor rejections into 400/422 with our body shape.
pub fn json_rejection(r: axum::extract::rejection::JsonRejection) -> ApiError {
    use axum::extract::rejection::JsonRejection as J;
    match r {
        J::JsonDataError(e) => {
            ApiError::Unprocessable(format!("invalid request body: {}", e.body_text()))
        }
        J::JsonSyntaxError(e) => ApiError::BadRequest(format!("malformed JSON: {}", e.body_text())),
        J::MissingJsonContentType(_) => {
            ApiError::BadRequest("expected Content-Type: application/json".into())
        }
        // The body limit (DefaultBodyLimit) surfaces here: 413, not 400.
        J::BytesRejection(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(format!("request body is too large: {}", e.body_text()))
        }
        J::BytesRejection(e) => {
            ApiError::BadRequest(format!("cannot read the request body: {}", e.body_text()))
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}
