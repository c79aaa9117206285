//! Remote GPIO sessions (placeholder until the sessions module lands).

use std::time::Duration;

pub struct Sessions {
    _idle: Duration,
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions { _idle: idle }
    }

    pub fn count(&self) -> usize {
        0
    }
}

/// Closes idle sessions periodically (placeholder until the sessions module lands).
pub async fn sweeper(_agent: std::sync::Arc<crate::state::Agent>) {}
