//! Run events (agent-api spec §5), with hilt's additive sequence number.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Event types the runner emits, as constants so callers cannot misspell them.
pub struct EventKind;

impl EventKind {
    pub const RUN_STARTED: &'static str = "run.started";
    pub const RUN_FINISHED: &'static str = "run.finished";
    pub const RUN_FAILED: &'static str = "run.failed";
    pub const RUN_CANCELLED: &'static str = "run.cancelled";
    pub const RUN_SKIP_FLASH: &'static str = "run.skip_flash_enabled";
    pub const LOCKS_ACQUIRED: &'static str = "resource_locks.acquired";
    pub const LOCKS_RELEASED: &'static str = "resource_locks.released";
    pub const TRANSPORT_STARTING: &'static str = "transport.starting";
    pub const TRANSPORT_STARTED: &'static str = "transport.started";
    pub const TRANSPORT_STOPPED: &'static str = "transport.stopped";
    pub const GPIO_STARTING: &'static str = "gpio.starting";
    pub const GPIO_STARTED: &'static str = "gpio.started";
    pub const GPIO_STOPPED: &'static str = "gpio.stopped";
    pub const POWER_STARTED: &'static str = "power.started";
    pub const POWER_STOPPED: &'static str = "power.stopped";
    pub const MEASUREMENT_STARTED: &'static str = "measurement.started";
    pub const MEASUREMENT_STOPPED: &'static str = "measurement.stopped";
    pub const DUT_ID_STARTED: &'static str = "dut.identity_query_started";
    pub const DUT_ID_FINISHED: &'static str = "dut.identity_query_finished";
    pub const DUT_ID_WARNING: &'static str = "dut.identity_query_warning";
    pub const TEST_STARTED: &'static str = "test.started";
    pub const TEST_FINISHED: &'static str = "test.finished";
    pub const STEP_STARTED: &'static str = "step.started";
    pub const STEP_FINISHED: &'static str = "step.finished";
    pub const STEP_FAILED: &'static str = "step.failed";
    pub const STEP_SKIPPED: &'static str = "step.skipped";
    pub const FLASH_STARTED: &'static str = "flash.started";
    pub const FLASH_FINISHED: &'static str = "flash.finished";
    pub const FLASH_FAILED: &'static str = "flash.failed";
    pub const RESET_STARTED: &'static str = "reset.started";
    pub const RESET_FINISHED: &'static str = "reset.finished";
    pub const RESET_SKIPPED: &'static str = "reset.skipped";
    pub const EXTERNAL_STARTED: &'static str = "external.started";
    pub const EXTERNAL_FINISHED: &'static str = "external.finished";
    pub const EXTERNAL_FAILED: &'static str = "external.failed";
    pub const PHASE_STARTED: &'static str = "phase.started";
    pub const PHASE_FINISHED: &'static str = "phase.finished";
}

/// One event of a run: the runner's, the agent's and every client's type (the agent API
/// serves it as `RunEvent`). BenchCI agents send no `seq` (it reads as 0 then).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = RunEvent)]
pub struct Event {
    /// hilt extension: strictly increasing within a run, starting at 1.
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub timestamp: String,
    pub event_type: String,
    #[serde(default)]
    pub message: Option<String>,
    /// Event-specific values (agent-api spec §5 lists them per type).
    #[serde(default)]
    #[schema(value_type = Object, additional_properties)]
    pub data: Map<String, Value>,
}

impl Event {
    /// The agent's final event of a run: a terminal type carrying `exit_code` (the
    /// runner's own final event is folded into it by the agent).
    pub fn is_final(&self) -> bool {
        matches!(
            self.event_type.as_str(),
            EventKind::RUN_FINISHED | EventKind::RUN_FAILED | EventKind::RUN_CANCELLED
        ) && self.data.contains_key("exit_code")
    }
}
