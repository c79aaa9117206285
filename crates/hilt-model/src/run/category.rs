//! Failure categories and their likely sources (run-results spec §9.1).

use serde::{Deserialize, Serialize};

use super::checks::{self, Check};

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
    ($($v:ident => $s:literal, $src:ident, $title:literal, $expl:literal, [$($sug:ident),*];)*) => {
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
            pub fn suggestions(self) -> &'static [Check] { match self { $(Category::$v => &[$(checks::$sug),*],)* } }
        }
    };
}

categories! {
    FlashFailed => "FLASH_FAILED", BenchInfrastructure, "Flashing failed",
        "The flash tool did not program the device.",
        [PROBE_CONNECTED, NODE_FLASH_SETTINGS, OPEN_FLASH_LOG];
    FlashToolUnavailable => "FLASH_TOOL_UNAVAILABLE", BenchInfrastructure, "Flash tool not available",
        "The flash tool the bench names could not be found or started.",
        [INSTALL_TOOL, RUN_SELF_TEST];
    ArtifactError => "ARTIFACT_ERROR", Configuration, "Firmware artifact problem",
        "The firmware artifact is missing, unreadable or of an unsupported type.",
        [PASS_ARTIFACT, ARTIFACT_TYPE];
    UartExpectationFailed => "UART_EXPECTATION_FAILED", Firmware, "UART expectation failed",
        "The device did not print the expected text in time.",
        [FIRMWARE_PRINTS_TEXT, UART_WIRING, OPEN_TRANSPORT_LOG];
    ModbusExpectationFailed => "MODBUS_EXPECTATION_FAILED", Firmware, "Modbus expectation failed",
        "The Modbus reply did not match the expectation.",
        [MODBUS_SETTINGS, RS485_WIRING];
    CanExpectationFailed => "CAN_EXPECTATION_FAILED", Firmware, "CAN expectation failed",
        "The expected CAN frame was not seen in time.",
        [CAN_INTERFACE, CAN_TERMINATION];
    I2cExpectationFailed => "I2C_EXPECTATION_FAILED", Firmware, "I2C expectation failed",
        "An I2C device did not answer, or answered with other bytes than expected.",
        [I2C_ADDRESS, I2C_WIRING, OPEN_TRANSPORT_LOG_BUS];
    SpiExpectationFailed => "SPI_EXPECTATION_FAILED", Firmware, "SPI expectation failed",
        "The bytes an SPI device returned did not match the expectation.",
        [SPI_SETTINGS, OPEN_TRANSPORT_LOG_BUS];
    GpioExpectationFailed => "GPIO_EXPECTATION_FAILED", Firmware, "GPIO expectation failed",
        "The expected GPIO level or edge was not observed.",
        [GPIO_CHIP_PATH, GPIO_POLARITY, OPEN_GPIO_LOG];
    MeasurementAssertionFailed => "MEASUREMENT_ASSERTION_FAILED", Firmware, "Measurement out of limits",
        "A measured value was outside the limits the suite sets.",
        [MEASUREMENT_LIMITS, INSTRUMENT_RANGE, OPEN_MEASUREMENT_LOG];
    FuzzOracleFailed => "FUZZ_ORACLE_FAILED", Firmware, "Fuzz oracle failed",
        "A fuzz case made the device misbehave.",
        [REPLAY_FUZZ_CASE];
    FaultRecoveryFailed => "FAULT_RECOVERY_FAILED", Firmware, "Device did not recover from an injected fault",
        "After the fault the device did not answer the recovery oracle in time.",
        [BROWN_OUT_HANDLING];
    ExternalRunFailed => "EXTERNAL_RUN_FAILED", Firmware, "External run failed",
        "The external simulator or HIL job reported failure.",
        [OPEN_EXTERNAL_LOG];
    RemoteCommandFailed => "REMOTE_COMMAND_FAILED", TestLogic, "Remote command failed",
        "A command on a remote host exited with an unexpected code or did not print the expected output.",
        [SSH_COMMAND_OUTPUT];
    RemoteHostUnreachable => "REMOTE_HOST_UNREACHABLE", BenchInfrastructure, "Remote host unreachable",
        "A host or jump hop of the SSH chain could not be reached.",
        [SSH_HOP_REACHABLE];
    RemoteAuthFailed => "REMOTE_AUTH_FAILED", BenchInfrastructure, "Remote login refused",
        "A host or jump hop of the SSH chain refused the credentials.",
        [SSH_CREDENTIALS];
    RemoteHostKeyMismatch => "REMOTE_HOST_KEY_MISMATCH", BenchInfrastructure, "Remote host key refused",
        "A host or jump hop presented a host key that is not in the known_hosts file, so the connection was refused.",
        [SSH_KNOWN_HOSTS];
    RemoteTransferFailed => "REMOTE_TRANSFER_FAILED", BenchInfrastructure, "Remote file transfer failed",
        "A file could not be copied to or from a remote host, or its checksum did not match after the copy.",
        [SSH_TRANSFER];
    BundleChecksumMismatch => "BUNDLE_CHECKSUM_MISMATCH", Configuration, "Bundle checksum mismatch",
        "A bundle file's SHA-256 differs from the one the suite declares, so it was refused and nothing was staged or run with it.",
        [BUNDLE_CHECKSUM];
    BundleUnavailable => "BUNDLE_UNAVAILABLE", Configuration, "No usable bundle for the host",
        "No candidate of the bundle matches the host's platform or exists, and the bundle has no fallback.",
        [BUNDLE_PLATFORM];
    UartFailed => "UART_FAILED", BenchInfrastructure, "UART I/O failed",
        "Reading from or writing to the serial port failed.",
        [PORT_FREE, USB_CABLE];
    CanFailed => "CAN_FAILED", BenchInfrastructure, "CAN I/O failed",
        "The CAN interface could not be used.",
        [CAN_INTERFACE];
    I2cFailed => "I2C_FAILED", BenchInfrastructure, "I2C I/O failed",
        "The I2C bus could not complete a transfer, or could not be opened.",
        [I2C_BUS_PRESENT, I2C_WIRING, OPEN_TRANSPORT_LOG_BUS];
    SpiFailed => "SPI_FAILED", BenchInfrastructure, "SPI I/O failed",
        "The SPI device could not be opened or a transfer failed.",
        [SPI_DEVICE_PRESENT, OPEN_TRANSPORT_LOG_BUS];
    FuzzTransportFailed => "FUZZ_TRANSPORT_FAILED", BenchInfrastructure, "Fuzz transport failed",
        "The transport failed during a fuzz campaign.",
        [FUZZ_TRANSPORT];
    GpioLineUnreachable => "GPIO_LINE_UNREACHABLE", BenchInfrastructure, "GPIO line unreachable",
        "A GPIO line could not be opened or driven.",
        [GPIO_CHIP_PATH, GPIO_LINE_FREE];
    PowerReadbackUnavailable => "POWER_READBACK_UNAVAILABLE", BenchInfrastructure, "Power readback unavailable",
        "The power controller cannot report the outlet state.",
        [POWER_READBACK];
    PowerControlFailed => "POWER_CONTROL_FAILED", BenchInfrastructure, "Power control failed",
        "The power controller did not switch or report as expected.",
        [RELAY_CONNECTED, POWER_NAMES, OPEN_POWER_LOG];
    PowerResourceUnavailable => "POWER_RESOURCE_UNAVAILABLE", BenchInfrastructure, "Power resource unavailable",
        "The power controller could not be started.",
        [RESOURCE_CONNECTION];
    MeasurementFailed => "MEASUREMENT_FAILED", BenchInfrastructure, "Measurement failed",
        "The instrument did not give a usable reading.",
        [INSTRUMENT_REACHABLE, OPEN_MEASUREMENT_LOG];
    MeasurementResourceUnavailable => "MEASUREMENT_RESOURCE_UNAVAILABLE", BenchInfrastructure, "Measurement resource unavailable",
        "The measurement instrument could not be started.",
        [RESOURCE_CONNECTION];
    TransportOpenFailed => "TRANSPORT_OPEN_FAILED", BenchInfrastructure, "Transport could not be opened",
        "A port the bench names could not be opened, so the device was never reached.",
        [PORT_PLUGGED_IN, PORT_PERMISSIONS, RUN_SELF_TEST_OPEN_HARDWARE];
    BenchSelfTestFailed => "BENCH_SELF_TEST_FAILED", BenchInfrastructure, "Bench self-test failed",
        "The bench self-test could not complete.",
        [SELF_TEST_LOCALLY];
    ResourceLocked => "RESOURCE_LOCKED", BenchInfrastructure, "Resource is locked by another run",
        "Another run on this machine holds a resource this suite needs, so nothing was touched.",
        [WAIT_FOR_LOCK, STALE_LOCKS];
    DutIdentityQueryFailed => "DUT_IDENTITY_QUERY_FAILED", BenchInfrastructure, "DUT identity query failed",
        "The device did not answer the identity query correctly.",
        [IDENTITY_ANSWER, IDENTITY_SETTINGS];
    FaultInjectionFailed => "FAULT_INJECTION_FAILED", BenchInfrastructure, "Fault injection failed",
        "The fault could not be injected.",
        [FAULT_POLICY];
    FaultRestoreFailed => "FAULT_RESTORE_FAILED", BenchInfrastructure, "Fault restore failed",
        "The bench could not restore the normal state after a fault.",
        [RESTORE_BY_HAND];
    ExternalRunTimeout => "EXTERNAL_RUN_TIMEOUT", BenchInfrastructure, "External run timed out",
        "The external command or job did not finish in time.",
        [EXTERNAL_TIMEOUT];
    DutIdentityMismatch => "DUT_IDENTITY_MISMATCH", Configuration, "Wrong device on the bench",
        "The device reported an identity different from the bench file.",
        [MOUNTED_BOARD];
    ExternalOutputSecurityViolation => "EXTERNAL_OUTPUT_SECURITY_VIOLATION", Configuration, "External output path refused",
        "An external output path escapes its allowed root.",
        [EXTERNAL_RELATIVE_PATHS];
    ExternalResultsEmpty => "EXTERNAL_RESULTS_EMPTY", Configuration, "External report has no tests",
        "A declared external report contained zero tests.",
        [EXTERNAL_REPORT_WRITTEN];
    ConfigError => "CONFIG_ERROR", Configuration, "Configuration error",
        "The bench or suite file is invalid or they do not fit together.",
        [VALIDATE, CONFIG_NAMES];
    ConfigWarning => "CONFIG_WARNING", Configuration, "Configuration warning",
        "The configuration is usable but suspicious.",
        [READ_WARNINGS];
    StepTimeout => "STEP_TIMEOUT", Unknown, "Step timed out",
        "A step did not finish within its time limit.",
        [STEP_TIMEOUT];
    RunTimeout => "RUN_TIMEOUT", Unknown, "Run exceeded the agent's time limit",
        "The run executed longer than the agent's maximum run time, so the agent cancelled it and released its locks.",
        [READ_LAST_EVENTS, RAISE_MAX_RUN_TIME];
    Cancelled => "CANCELLED", Unknown, "Run cancelled",
        "The run was interrupted before it finished.",
        [RERUN];
    UnknownError => "UNKNOWN_ERROR", Unknown, "Unexpected error",
        "An error hilt could not classify.",
        [READ_RAW_ERROR];
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
