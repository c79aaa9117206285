//! A run's event as the agent serves it (agent-api spec §5): the runner's event with the
//! agent's sequence number.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunEvent {
    /// hilt extension: 1, 2, 3… within the run (`?after=N` and SSE ids use it).
    #[serde(default)]
    pub seq: u64,
    pub timestamp: String,
    pub event_type: String,
    pub message: Option<String>,
    /// Event-specific values (agent-api spec §5 lists them per type).
    #[schema(value_type = Object, additional_properties)]
    #[serde(default)]
    pub data: Map<String, Value>,
}

impl RunEvent {
    /// The agent's final event of a run: a terminal type carrying `exit_code` (the
    /// runner's own final event is folded into it).
    pub fn is_final(&self) -> bool {
        matches!(
            self.event_type.as_str(),
            "run.finished" | "run.failed" | "run.cancelled"
        ) && self.data.contains_key("exit_code")
    }
}
