//! Turning errors into failures, and outcomes into exit codes.

use hilt_hw::can::CanError;
use hilt_hw::i2c::I2cError;
use hilt_hw::modbus::{FrameError, ModbusError};
use hilt_hw::spi::SpiError;
use hilt_hw::{HwError, ResourceKind};
use hilt_model::run::{Category, Failure, RunStatus, Source};

/// Exit codes of `hilt run`, one per outcome class. 0, 1, 2 and 130 are BenchCI's.
pub mod exit {
    pub const PASSED: i32 = 0;
    pub const TESTS_FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const CONFIG_ERROR: i32 = 3;
    pub const BENCH_ERROR: i32 = 4;
    pub const RUN_ERROR: i32 = 5;
    pub const INTERNAL: i32 = 70;
    pub const INTERRUPTED: i32 = 130;
}

/// The exit code for a finished run.
pub fn exit_code(status: RunStatus, failure: Option<&Failure>) -> i32 {
    match status {
        RunStatus::Passed => exit::PASSED,
        RunStatus::Failed => exit::TESTS_FAILED,
        RunStatus::Cancelled => exit::INTERRUPTED,
        RunStatus::Error => match failure.map(|f| f.source) {
            Some(Source::Configuration) => exit::CONFIG_ERROR,
            Some(Source::BenchInfrastructure) | Some(Source::AgentCloud) => exit::BENCH_ERROR,
            Some(Source::Firmware) | Some(Source::TestLogic) | Some(Source::Unknown) | None => {
                exit::RUN_ERROR
            }
        },
    }
}

/// A hardware error as a failure: the category follows from what went wrong and the kind
/// of resource it happened on.
pub fn hw_failure(err: &HwError) -> Failure {
    use ResourceKind::{Can, Gpio, I2c, Measurement, Modbus, Power, Serial, Spi};
    let category = match err {
        HwError::Cancelled => Category::Cancelled,
        HwError::Open { kind, .. } => match kind {
            Serial | Modbus | I2c | Spi | Can => Category::TransportOpenFailed,
            Gpio => Category::GpioLineUnreachable,
            Power => Category::PowerResourceUnavailable,
            Measurement => Category::MeasurementResourceUnavailable,
        },
        // A failure in use, or a request for something the resource does not have (an
        // outlet, a line).
        HwError::Io { kind, .. } | HwError::Unsupported { kind, .. } => match kind {
            Serial => Category::UartFailed,
            Gpio => Category::GpioLineUnreachable,
            Power => Category::PowerControlFailed,
            Measurement => Category::MeasurementFailed,
            I2c => Category::I2cFailed,
            Spi => Category::SpiFailed,
            Can => Category::CanFailed,
            // BenchCI has no Modbus I/O category; the connection failing is the bench's.
            Modbus => {
                return Failure::new(Category::ModbusExpectationFailed, err.to_string())
                    .with_source(Source::BenchInfrastructure);
            }
        },
        HwError::NoReadback { kind, .. } => match kind {
            Power => Category::PowerReadbackUnavailable,
            Gpio => Category::GpioLineUnreachable,
            Serial => Category::UartFailed,
            Measurement => Category::MeasurementFailed,
            Modbus => Category::ModbusExpectationFailed,
            I2c => Category::I2cFailed,
            Spi => Category::SpiFailed,
            Can => Category::CanFailed,
        },
    };
    Failure::new(category, err.to_string())
}

/// A CAN transport that failed in use (`what`: `send_can id=0x123 on dut.bus`) as a
/// failure that ends the run: `CAN_FAILED`, source bench infrastructure — the adapter
/// refusing a frame or not answering, a bus in an error state (wiring, termination, bit
/// rate, or a node flooding it), unreadable bytes, a failed port ([`hw_failure`]).
/// `None` when the step was cancelled.
pub fn can_failure(err: &CanError, what: &str) -> Option<Failure> {
    let f = |explanation: &str| {
        Failure::new(Category::CanFailed, format!("{what}: {err}"))
            .with_source(Source::BenchInfrastructure)
            .with_explanation(explanation)
    };
    Some(match err {
        CanError::Refused { .. } => f(
            "The CAN adapter refused the request: its channel is not open, its transmit buffer is full, or it does not support what was asked.",
        ),
        CanError::Bus { .. } => f(
            "The CAN bus is in an error state, so frames cannot be exchanged: check the bit rate of every node, the termination (120 Ω at both ends) and the wiring.",
        ),
        CanError::NoAnswer { .. } => f("The CAN adapter stopped answering on its serial port."),
        CanError::Garbled { .. } => f(
            "The CAN adapter sent bytes that are not slcan messages: a wrong serial speed, another program on the port, or a faulty cable.",
        ),
        CanError::Io(e) => {
            let mut x = hw_failure(e);
            x.message = format!("{what}: {}", x.message);
            x
        }
        CanError::Cancelled => return None,
    })
}

/// How a failed Modbus transaction ends its step.
pub enum ModbusOutcome {
    /// The test fails, the run goes on: the device answered, and its answer is wrong.
    Test(Failure),
    /// The run stops: the device or the line cannot be talked to.
    Run(Failure),
    Cancelled,
}

/// A failed Modbus transaction as a failure. `what` says which request it was
/// (`read holding registers slave 1 address 100 count 2 on dut.field`).
///
/// - an exception response is the device's answer to a valid request: a test failure,
///   `MODBUS_EXPECTATION_FAILED`, source firmware (BenchCI aborts the run here);
/// - a reply with a good CRC but the wrong shape is the firmware's: a run error, firmware;
/// - no reply at all: a run error, firmware (as BenchCI: the device is silent — wrong
///   slave id, not running — and every later request would wait as long);
/// - a CRC error or a reply cut short is the line's (noise, baud, wiring, termination):
///   a run error, source bench infrastructure;
/// - the connection or port failing is the bench's ([`hw_failure`]).
pub fn modbus_failure(err: &ModbusError, what: &str) -> ModbusOutcome {
    let failure = |source: Source| {
        Failure::new(Category::ModbusExpectationFailed, format!("{what}: {err}"))
            .with_source(source)
    };
    match err {
        ModbusError::Exception { .. } => ModbusOutcome::Test(failure(Source::Firmware)),
        ModbusError::Frame(FrameError::Malformed(_)) => {
            ModbusOutcome::Run(failure(Source::Firmware))
        }
        ModbusError::Timeout { received: 0, .. } => ModbusOutcome::Run(failure(Source::Firmware)),
        ModbusError::Timeout { .. } | ModbusError::Frame(FrameError::Crc { .. }) => {
            ModbusOutcome::Run(failure(Source::BenchInfrastructure))
        }
        ModbusError::Io(e) => {
            let mut f = hw_failure(e);
            f.message = format!("{what}: {}", f.message);
            ModbusOutcome::Run(f)
        }
        ModbusError::Cancelled => ModbusOutcome::Cancelled,
    }
}

/// How a failed I2C or SPI transfer ends its step.
pub enum BusOutcome {
    /// The test fails, the run goes on: the device itself answered wrongly or not at all.
    Test(Failure),
    /// The run stops: the bus or the link to it cannot be used.
    Run(Failure),
}

/// A failed I2C transfer as a failure. `what` names the request
/// (`read register 0x00 of 0x48 on dut.sensors`).
///
/// - no acknowledge: the device did not answer its address (not running, held in reset,
///   wrong part fitted) — a test failure, `I2C_EXPECTATION_FAILED`, source firmware
///   (BenchCI raises and ends the run);
/// - a clock held past the timeout, a bus error, lost arbitration, a device node or
///   simulator link that failed: the bus cannot be used — a run error, `I2C_FAILED`,
///   bench infrastructure;
/// - a transfer the adapter cannot make: a run error, `I2C_FAILED`, configuration.
pub fn i2c_failure(err: &I2cError, what: &str) -> BusOutcome {
    let message = format!("{what}: {err}");
    match err {
        I2cError::Nack { .. } => {
            BusOutcome::Test(Failure::new(Category::I2cExpectationFailed, message))
        }
        I2cError::Timeout { .. } | I2cError::Bus { .. } | I2cError::Io(_) => {
            BusOutcome::Run(Failure::new(Category::I2cFailed, message))
        }
        I2cError::Unsupported(_) => BusOutcome::Run(
            Failure::new(Category::I2cFailed, message).with_source(Source::Configuration),
        ),
    }
}

/// A failed SPI transfer as a failure: SPI has no acknowledge, so every error is the
/// bench's (a missing device node, a failed link: `SPI_FAILED`, bench infrastructure) or
/// the configuration's (a length that is not a whole number of words: `SPI_FAILED`,
/// configuration); only a mismatch of the bytes is the firmware's (the step's own test).
pub fn spi_failure(err: &SpiError, what: &str) -> BusOutcome {
    let message = format!("{what}: {err}");
    match err {
        SpiError::NoDevice(_) | SpiError::Timeout { .. } | SpiError::Io(_) => {
            BusOutcome::Run(Failure::new(Category::SpiFailed, message))
        }
        SpiError::Unsupported(_) => BusOutcome::Run(
            Failure::new(Category::SpiFailed, message).with_source(Source::Configuration),
        ),
    }
}

/// The category of a resource that failed to start (self-test `*.start` checks).
pub fn unavailable(kind: ResourceKind) -> Category {
    match kind {
        ResourceKind::Serial
        | ResourceKind::Modbus
        | ResourceKind::I2c
        | ResourceKind::Spi
        | ResourceKind::Can => Category::TransportOpenFailed,
        ResourceKind::Gpio => Category::GpioLineUnreachable,
        ResourceKind::Power => Category::PowerResourceUnavailable,
        ResourceKind::Measurement => Category::MeasurementResourceUnavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_code() {
        let cfg = Failure::new(Category::ConfigError, "x");
        let bench = Failure::new(Category::ResourceLocked, "x");
        let fw = Failure::new(Category::MeasurementAssertionFailed, "x");
        assert_eq!(exit_code(RunStatus::Passed, None), 0);
        assert_eq!(exit_code(RunStatus::Failed, Some(&fw)), 1);
        assert_eq!(exit_code(RunStatus::Error, Some(&cfg)), 3);
        assert_eq!(exit_code(RunStatus::Error, Some(&bench)), 4);
        assert_eq!(exit_code(RunStatus::Error, Some(&fw)), 5);
        assert_eq!(exit_code(RunStatus::Cancelled, None), 130);
    }

    #[test]
    fn hardware_errors_are_classified_by_kind() {
        let open = |kind| HwError::open(kind, "x", "p", "r");
        assert_eq!(
            hw_failure(&open(ResourceKind::Serial)).category,
            Category::TransportOpenFailed
        );
        assert_eq!(
            hw_failure(&open(ResourceKind::Gpio)).category,
            Category::GpioLineUnreachable
        );
        assert_eq!(
            hw_failure(&open(ResourceKind::Power)).category,
            Category::PowerResourceUnavailable
        );
        assert_eq!(
            hw_failure(&open(ResourceKind::Measurement)).category,
            Category::MeasurementResourceUnavailable
        );
        let io = HwError::io(ResourceKind::Power, "relay", "HTTP 503");
        assert_eq!(hw_failure(&io).category, Category::PowerControlFailed);
        let nr = HwError::NoReadback {
            kind: ResourceKind::Power,
            reason: "no get_url".into(),
        };
        assert_eq!(hw_failure(&nr).category, Category::PowerReadbackUnavailable);
        assert_eq!(
            hw_failure(&HwError::Cancelled).category,
            Category::Cancelled
        );
    }
}
