//! Failure categories and their likely sources (run-results spec §9.1).

use serde::{Deserialize, Serialize};

/// Who most likely has to act on a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Firmware,
    TestLogic,
    BenchInfrastructure,
    AgentCloud,
    Configuration,
    Unknown,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Firmware => "firmware",
            Source::TestLogic => "test_logic",
            Source::BenchInfrastructure => "bench_infrastructure",
            Source::AgentCloud => "agent_cloud",
            Source::Configuration => "configuration",
            Source::Unknown => "unknown",
        }
    }

    /// The label people read: `Bench infrastructure`, `Firmware`, …
    pub fn label(self) -> &'static str {
        match self {
            Source::Firmware => "Firmware",
            Source::TestLogic => "Test logic",
            Source::BenchInfrastructure => "Bench infrastructure",
            Source::AgentCloud => "Agent/cloud",
            Source::Configuration => "Configuration",
            Source::Unknown => "Unknown",
        }
    }
}

macro_rules! categories {
    ($($v:ident => $s:literal, $src:ident, $title:literal, $expl:literal, [$($sug:literal),*];)*) => {
        /// Every failure category hilt emits; the strings are BenchCI's.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Category { $(#[serde(rename = $s)] $v,)* }

        impl Category {
            pub const ALL: &'static [Category] = &[$(Category::$v,)*];

            pub fn as_str(self) -> &'static str { match self { $(Category::$v => $s,)* } }

            /// The source this category implies unless a caller knows better.
            pub fn default_source(self) -> Source { match self { $(Category::$v => Source::$src,)* } }

            pub fn title(self) -> &'static str { match self { $(Category::$v => $title,)* } }

            pub fn explanation(self) -> &'static str { match self { $(Category::$v => $expl,)* } }

            /// Default checks to suggest, after any the caller supplies.
            pub fn suggestions(self) -> &'static [&'static str] { match self { $(Category::$v => &[$($sug),*],)* } }
        }
    };
}

categories! {
    FlashFailed => "FLASH_FAILED", BenchInfrastructure, "Flashing failed",
        "The flash tool did not program the device.",
        ["Check that the debug probe is connected and the target is powered.", "Check the node's flash settings in bench.yaml.", "Open flash.log for the tool's own error."];
    FlashToolUnavailable => "FLASH_TOOL_UNAVAILABLE", BenchInfrastructure, "Flash tool not available",
        "The flash tool the bench names could not be found or started.",
        ["Install the tool on this machine or fix PATH.", "Run `hilt bench self-test --bench <file>`."];
    ArtifactError => "ARTIFACT_ERROR", Configuration, "Firmware artifact problem",
        "The firmware artifact is missing, unreadable or of an unsupported type.",
        ["Pass --artifact or set flash.artifact.", "Use an .elf, .hex or .bin file (.bin needs flash.address)."];
    UartExpectationFailed => "UART_EXPECTATION_FAILED", Firmware, "UART expectation failed",
        "The device did not print the expected text in time.",
        ["Check that the firmware prints the expected text.", "Check baud rate, wiring and ground.", "Open the transport log to see what the device did print."];
    ModbusExpectationFailed => "MODBUS_EXPECTATION_FAILED", Firmware, "Modbus expectation failed",
        "The Modbus reply did not match the expectation.",
        ["Check slave id, baud, parity and register address.", "Check RS-485 wiring and termination."];
    CanExpectationFailed => "CAN_EXPECTATION_FAILED", Firmware, "CAN expectation failed",
        "The expected CAN frame was not seen in time.",
        ["Check the interface and bitrate.", "Check bus termination."];
    GpioExpectationFailed => "GPIO_EXPECTATION_FAILED", Firmware, "GPIO expectation failed",
        "The expected GPIO level or edge was not observed.",
        ["Check chip and line numbers.", "Check active_high and bias.", "Open gpio.log."];
    MeasurementAssertionFailed => "MEASUREMENT_ASSERTION_FAILED", Firmware, "Measurement out of limits",
        "A measured value was outside the limits the suite sets.",
        ["Compare the reading with the limits and units in the suite.", "Check the instrument's range and wiring.", "Open measurement.log."];
    FuzzOracleFailed => "FUZZ_ORACLE_FAILED", Firmware, "Fuzz oracle failed",
        "A fuzz case made the device misbehave.",
        ["Replay the failing case from the fuzz log with its seed."];
    FaultRecoveryFailed => "FAULT_RECOVERY_FAILED", Firmware, "Device did not recover from an injected fault",
        "After the fault the device did not answer the recovery oracle in time.",
        ["Check the firmware's brown-out and watchdog handling."];
    ExternalRunFailed => "EXTERNAL_RUN_FAILED", Firmware, "External run failed",
        "The external simulator or HIL job reported failure.",
        ["Open the external log and parsed report."];
    UartFailed => "UART_FAILED", BenchInfrastructure, "UART I/O failed",
        "Reading from or writing to the serial port failed.",
        ["Check that the port exists and is not used by another program.", "Check the USB cable and adapter."];
    CanFailed => "CAN_FAILED", BenchInfrastructure, "CAN I/O failed",
        "The CAN interface could not be used.",
        ["Check that the interface is up and the bitrate matches."];
    FuzzTransportFailed => "FUZZ_TRANSPORT_FAILED", BenchInfrastructure, "Fuzz transport failed",
        "The transport failed during a fuzz campaign.",
        ["Check the transport, then replay with the recorded seed."];
    GpioLineUnreachable => "GPIO_LINE_UNREACHABLE", BenchInfrastructure, "GPIO line unreachable",
        "A GPIO line could not be opened or driven.",
        ["Check the GPIO chip path and line numbers.", "Check that no other process holds the line."];
    PowerReadbackUnavailable => "POWER_READBACK_UNAVAILABLE", BenchInfrastructure, "Power readback unavailable",
        "The power controller cannot report the outlet state.",
        ["Configure readback for the controller, or use power_set instead of power_expect."];
    PowerControlFailed => "POWER_CONTROL_FAILED", BenchInfrastructure, "Power control failed",
        "The power controller did not switch or report as expected.",
        ["Check that the relay/controller is connected.", "Check the resource and outlet names.", "Open power.log."];
    PowerResourceUnavailable => "POWER_RESOURCE_UNAVAILABLE", BenchInfrastructure, "Power resource unavailable",
        "The power controller could not be started.",
        ["Check the controller's connection settings in bench.yaml."];
    MeasurementFailed => "MEASUREMENT_FAILED", BenchInfrastructure, "Measurement failed",
        "The instrument did not give a usable reading.",
        ["Check the resource settings and that the instrument is reachable.", "Open measurement.log."];
    MeasurementResourceUnavailable => "MEASUREMENT_RESOURCE_UNAVAILABLE", BenchInfrastructure, "Measurement resource unavailable",
        "The measurement instrument could not be started.",
        ["Check the instrument's connection settings in bench.yaml."];
    TransportOpenFailed => "TRANSPORT_OPEN_FAILED", BenchInfrastructure, "Transport could not be opened",
        "A port the bench names could not be opened, so the device was never reached.",
        ["Check that the device is plugged in and the port path is right (ls -l the path).", "Check permissions (dialout group) and that no other program holds the port.", "Run `hilt bench self-test --bench <file> --open-hardware`."];
    BenchSelfTestFailed => "BENCH_SELF_TEST_FAILED", BenchInfrastructure, "Bench self-test failed",
        "The bench self-test could not complete.",
        ["Run `hilt bench self-test` locally and read its log."];
    ResourceLocked => "RESOURCE_LOCKED", BenchInfrastructure, "Resource is locked by another run",
        "Another run on this machine holds a resource this suite needs, so nothing was touched.",
        ["Wait for the other run to finish, or check who holds it (the lock file names the pid and run).", "A lock of a process that has died frees itself; do not delete lock files while a run is active."];
    DutIdentityQueryFailed => "DUT_IDENTITY_QUERY_FAILED", BenchInfrastructure, "DUT identity query failed",
        "The device did not answer the identity query correctly.",
        ["Check that the firmware answers the identity query.", "Check the self_identification settings."];
    FaultInjectionFailed => "FAULT_INJECTION_FAILED", BenchInfrastructure, "Fault injection failed",
        "The fault could not be injected.",
        ["Check the bench's fault-injection policy and the resource."];
    FaultRestoreFailed => "FAULT_RESTORE_FAILED", BenchInfrastructure, "Fault restore failed",
        "The bench could not restore the normal state after a fault.",
        ["Check the power or GPIO resource by hand before the next run."];
    ExternalRunTimeout => "EXTERNAL_RUN_TIMEOUT", BenchInfrastructure, "External run timed out",
        "The external command or job did not finish in time.",
        ["Raise timeout_ms (within the target's max_timeout_ms) or check the external tool."];
    DutIdentityMismatch => "DUT_IDENTITY_MISMATCH", Configuration, "Wrong device on the bench",
        "The device reported an identity different from the bench file.",
        ["Check which board is mounted, or update nodes.<node>.dut in bench.yaml."];
    ExternalOutputSecurityViolation => "EXTERNAL_OUTPUT_SECURITY_VIOLATION", Configuration, "External output path refused",
        "An external output path escapes its allowed root.",
        ["Use relative paths under the target's roots."];
    ExternalResultsEmpty => "EXTERNAL_RESULTS_EMPTY", Configuration, "External report has no tests",
        "A declared external report contained zero tests.",
        ["Check the report path and the external tool's output."];
    ConfigError => "CONFIG_ERROR", Configuration, "Configuration error",
        "The bench or suite file is invalid or they do not fit together.",
        ["Run `hilt validate --bench <bench> --suite <suite>`.", "Check node, transport, line and resource names."];
    ConfigWarning => "CONFIG_WARNING", Configuration, "Configuration warning",
        "The configuration is usable but suspicious.",
        ["Run `hilt validate` and read the warnings."];
    StepTimeout => "STEP_TIMEOUT", Unknown, "Step timed out",
        "A step did not finish within its time limit.",
        ["Check the step's timeout and the device's state."];
    RunTimeout => "RUN_TIMEOUT", Unknown, "Run exceeded the agent's time limit",
        "The run executed longer than the agent's maximum run time, so the agent cancelled it and released its locks.",
        ["Read the last events to see which step was still running.", "Raise limits.max_run_time_s in agent.yaml (or --max-run-time-s) if the suite really runs this long."];
    Cancelled => "CANCELLED", Unknown, "Run cancelled",
        "The run was interrupted before it finished.",
        ["Re-run the suite when ready."];
    UnknownError => "UNKNOWN_ERROR", Unknown, "Unexpected error",
        "An error hilt could not classify.",
        ["Read raw_error and the run's logs."];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_serde() {
        for c in Category::ALL {
            let s = serde_json::to_string(c).unwrap();
            assert_eq!(s, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Category>(&s).unwrap(), *c);
            assert!(!c.suggestions().is_empty());
        }
    }
}
