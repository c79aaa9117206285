//! Bearer-token check for every protected endpoint (constant-time comparison).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::error::ApiError;
use crate::state::Agent;

pub async fn require_token(State(agent): State<Arc<Agent>>, req: Request, next: Next) -> Response {
    if let Some(expected) = &agent.settings.token {
        let header = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(header) = header else {
            return ApiError::MissingToken.into_response();
        };
        let Some(given) = header.strip_prefix("Bearer ") else {
            return ApiError::MissingToken.into_response();
        };
        // Both sides trimmed: a configured token with stray spaces still matches, and an
        // empty configured token (whitespace only) never does.
        let expected = expected.trim();
        if expected.is_empty() || !constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
            return ApiError::BadToken.into_response();
        }
    }
    next.run(req).await
}

/// Compares without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
        assert!(!super::constant_time_eq(b"", b"a"));
    }
}
