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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// hilt extension: strictly increasing within a run, starting at 1.
    pub seq: u64,
    pub timestamp: String,
    pub event_type: String,
    pub message: Option<String>,
    pub data: Map<String, Value>,
}
