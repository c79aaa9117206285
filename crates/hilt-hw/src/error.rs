//! The one error type hardware drivers return; the runner maps it to a failure category
//! from the step it was serving (an open failure is always bench infrastructure).

#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// The resource could not be opened or started (port missing, busy, no permission).
    #[error("cannot open {what} {path}: {reason}")]
    Open {
        what: &'static str,
        path: String,
        reason: String,
    },
    /// An opened resource failed while in use.
    #[error("{what} failed: {reason}")]
    Io { what: &'static str, reason: String },
    /// The resource cannot do what was asked (e.g. no readback).
    #[error("{0}")]
    Unsupported(String),
    #[error("cancelled")]
    Cancelled,
}

impl HwError {
    pub fn io(what: &'static str, e: impl std::fmt::Display) -> HwError {
        HwError::Io {
            what,
            reason: e.to_string(),
        }
    }
}
